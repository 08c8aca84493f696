// `hashsieve serve`: the registry service. One Service object owns the job
// store, the durable queue, the loaded reference sets, the worker pool, the
// catalog crawler and the HTTP server (webhook, REST API, health, metrics).
//
//   registry --notification--> POST /v1/registry/events --GroupCommitter--> queue.db
//   crawler  --catalog/tags/HEAD-------------------------^                   |
//   POST /v1/scans ---------------------------------------^                  v
//   WorkerPool (N threads) --scan--> store.db <-- GET /v1/images, /v1/jobs
//
// runtime.enabled: a thread runs the runtime scanner's loop
// (runtime::Runner, as `hashsieve runtime`) into the container store, read
// by GET /v1/containers.
//
// Every enqueue (webhook, crawler, POST /v1/scans) goes through one
// GroupCommitter (group_committer.h, ADR 0017); a sweep thread runs
// worker::sweep_queue every sweep.interval.
//
// start() returns once the listener is bound; stop() is the graceful
// shutdown: close the listener (requests in progress are answered), stop
// the crawler and the runtime scanner (after its tick in progress), let the committer commit what it accepted, stop the sweep,
// drain the workers within the configured deadline (unfinished jobs are
// released back to the queue).
#pragma once

#include <memory>
#include <string>

#include "hashsieve/core/result.h"
#include "hashsieve/service/config.h"
#include "hashsieve/service/metrics.h"

namespace hashsieve::service {

class Service {
 public:
  // Opens <data_dir>/store.db and queue.db, loads the reference sets.
  static Result<std::unique_ptr<Service>> create(ServiceConfig config);
  ~Service();  // stop() if running
  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;

  // Binds the listener, publishes orphaned jobs, starts the workers and the
  // crawler, then serves on a background thread.
  Status start();
  // Graceful, idempotent.
  void stop();

  int port() const;  // the bound port (config port 0 = any)
  // Asks the crawler for a walk now (no-op without a crawler).
  void trigger_crawl();
  MetricsRegistry& metrics();
  const ServiceConfig& config() const;

 private:
  Service();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace hashsieve::service
