#include "commands.h"

int main(int argc, char** argv) { return hashsieve::cli::run(argc, argv); }
