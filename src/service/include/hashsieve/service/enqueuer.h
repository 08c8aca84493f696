// Where scan requests go: the webhook, the crawler and POST /v1/scans all
// enqueue through this interface. The real one (service.cpp) records the job
// in the JobStore (idempotent by repository + digest) and publishes it on the
// durable JobQueue before returning, so a 202 means "persisted".
#pragma once

#include <string>

#include "hashsieve/core/result.h"

namespace hashsieve::service {

struct ScanRequest {
  std::string repository;
  std::string digest;
  std::string tag;     // informational
  std::string origin;  // "webhook", "crawler", "api"
};

struct EnqueueOutcome {
  std::string job_id;
  bool created = false;  // false: a job for this repository + digest already existed
};

class ScanEnqueuer {
 public:
  virtual ~ScanEnqueuer() = default;
  virtual Result<EnqueueOutcome> enqueue(const ScanRequest& request) = 0;
};

}  // namespace hashsieve::service
