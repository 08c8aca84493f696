#include <cstdio>
#include "commands.h"
namespace hashsieve::cli {
int run_digest(const std::vector<std::string>&) { std::fputs("hashsieve digest: not built yet\n", stderr); return kExitFailure; }
}  // namespace hashsieve::cli
