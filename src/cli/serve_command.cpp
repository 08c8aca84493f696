// `hashsieve serve --config FILE`: runs the registry service until SIGTERM or
// SIGINT, then shuts down gracefully (docs/service.md).
#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <string>
#include <vector>

#include "commands.h"
#include "hashsieve/service/config.h"
#include "hashsieve/service/service.h"

namespace hashsieve::cli {
namespace {

constexpr const char* kServeUsage =
    "usage: hashsieve serve [--config FILE]\n"
    "\n"
    "Runs the registry service: webhook POST /v1/registry/events, catalog\n"
    "crawler, scan workers, REST API (/v1/images, /v1/jobs, /v1/scans,\n"
    "/v1/refsets, /v1/containers), /healthz, /readyz, /metrics; with\n"
    "runtime.enabled also the running-container scanner, with the third-party\n"
    "scanners of scanners.* (ClamAV, YARA) on drifted files; a scanner that\n"
    "cannot be opened stops serve at start-up. Every option of\n"
    "FILE can also be set as HASHSIEVE_<KEY> (see docs/service.md).\n"
    "SIGTERM/SIGINT stop it gracefully.\n"
    "\n"
    "options:\n"
    "  --config FILE   YAML configuration (default: environment only)\n";

}  // namespace

int run_serve(const std::vector<std::string>& args) {
  std::string config_path;
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--help" || args[i] == "-h") {
      std::fputs(kServeUsage, stdout);
      return kExitOk;
    }
    if (args[i] == "--config" && i + 1 < args.size()) {
      config_path = args[++i];
    } else if (args[i].starts_with("--config=")) {
      config_path = args[i].substr(9);
    } else {
      std::fprintf(stderr, "hashsieve serve: unknown argument '%s'\n%s", args[i].c_str(), kServeUsage);
      return kExitUsage;
    }
  }
  auto config = service::load_config(config_path);
  if (!config) {
    std::fprintf(stderr, "hashsieve serve: %s\n", config.error().message().c_str());
    return kExitUsage;
  }
  // Block the stop signals in every thread (the service's threads inherit the
  // mask) and wait for them here, so shutdown runs in ordinary code.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  // A registry or client closing a connection must not kill the process.
  signal(SIGPIPE, SIG_IGN);

  auto svc = service::Service::create(std::move(*config));
  if (!svc) {
    std::fprintf(stderr, "hashsieve serve: %s\n", svc.error().message().c_str());
    return kExitFailure;
  }
  if (auto st = (*svc)->start(); !st) {
    std::fprintf(stderr, "hashsieve serve: %s\n", st.error().message().c_str());
    return kExitFailure;
  }
  int sig = 0;
  sigwait(&stop_signals, &sig);
  std::fprintf(stderr, "hashsieve serve: %s received, shutting down\n", sig == SIGTERM ? "SIGTERM" : "SIGINT");
  (*svc)->stop();
  return kExitOk;
}

}  // namespace hashsieve::cli
