#include <cstdio>
#include "commands.h"
namespace hashsieve::cli {
int run_hash(const std::vector<std::string>&) { std::fputs("hashsieve hash: not built yet\n", stderr); return kExitFailure; }
}  // namespace hashsieve::cli
