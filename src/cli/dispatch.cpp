#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "commands.h"

namespace hashsieve::cli {
namespace {

constexpr std::string_view kUsage =
    "usage: hashsieve <command> [options]\n"
    "\n"
    "commands:\n"
    "  digest   make and compare SDBF digests (sdhash 3.4 compatible arguments)\n"
    "  hash     print every digest of each file (MD5, SHA-1, SHA-256, CRC32,\n"
    "           SDBF, TLSH, ssdeep) as one JSON object per line\n"
    "  refset   import, list, show, remove and look up reference sets\n"
    "           (NSRL RDS v3/v2, ClamAV, VirusShare, hash lists)\n"
    "  scan     scan an image (registry, docker-archive:, oci:, dir:) against\n"
    "           the reference sets: known, unknown, modified, suspicious, malicious\n"
    "  serve    run the registry service: webhook, catalog crawler, scan\n"
    "           workers, REST API and metrics (--config hashsieve.yaml)\n"
    "  runtime  scan the drift of running containers (Docker Engine API, Podman)\n"
    "  worker   consume scan jobs from the configured queue, no HTTP\n"
    "           (--config hashsieve.yaml; for many hosts, docs/scale-out.md)\n"
    "  version  print the version\n"
    "\n"
    "Run 'hashsieve <command> --help' for a command's options.\n";

}  // namespace

int run(int argc, char** argv) {
  if (argc < 2) {
    std::fputs(kUsage.data(), stderr);
    return kExitUsage;
  }
  std::string_view command = argv[1];
  std::vector<std::string> args(argv + 2, argv + argc);
  if (command == "digest") return run_digest(args);
  if (command == "hash") return run_hash(args);
  if (command == "refset") return run_refset(args);
  if (command == "scan") return run_scan(args);
  if (command == "serve") return run_serve(args);
  if (command == "runtime") return run_runtime(args);
  if (command == "worker") return run_worker(args);
  if (command == "version" || command == "--version") {
    std::puts("hashsieve " HASHSIEVE_VERSION);
    return kExitOk;
  }
  if (command == "help" || command == "--help" || command == "-h") {
    std::fputs(kUsage.data(), stdout);
    return kExitOk;
  }
  std::fprintf(stderr, "hashsieve: unknown command '%.*s'\n%s", static_cast<int>(command.size()),
               command.data(), kUsage.data());
  return kExitUsage;
}

}  // namespace hashsieve::cli
