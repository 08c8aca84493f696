// The catalog crawler: walks the registry's catalog, every repository's tags,
// resolves each tag to its manifest digest and enqueues it, so an image whose
// notification was lost (registry restart, service down) is still scanned.
// Enqueueing is idempotent (repository + digest), so known images cost one
// HEAD request and no scan.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "hashsieve/core/result.h"
#include "hashsieve/service/enqueuer.h"

namespace hashsieve::service {

// What the crawler reads from a registry (image::RegistryCatalog in
// production; a fake in unit tests).
class CatalogSource {
 public:
  virtual ~CatalogSource() = default;
  virtual Result<std::vector<std::string>> repositories(int page_size) = 0;
  virtual Result<std::vector<std::string>> tags(const std::string& repository) = 0;
  virtual Result<std::string> resolve_digest(const std::string& repository, const std::string& tag) = 0;
};

struct CrawlStats {
  std::uint64_t repositories = 0;
  std::uint64_t tags = 0;
  std::uint64_t enqueued = 0;   // new jobs
  std::uint64_t known = 0;      // digests that already had a job
};

// One walk. A repository or tag that fails is a warning and the walk goes
// on; a catalog that cannot be listed is an error.
Result<WithWarnings<CrawlStats>> crawl_once(CatalogSource& source, ScanEnqueuer& enqueuer, int page_size);

// Runs crawl_once on start and every interval on its own thread until stop().
class CrawlerThread {
 public:
  using Observer = std::function<void(const Result<WithWarnings<CrawlStats>>&)>;
  CrawlerThread(std::unique_ptr<CatalogSource> source, ScanEnqueuer& enqueuer, int page_size,
                std::chrono::milliseconds interval, Observer observer);
  ~CrawlerThread();
  CrawlerThread(const CrawlerThread&) = delete;
  CrawlerThread& operator=(const CrawlerThread&) = delete;

  void start();
  // Wakes the thread now (e.g. a test or an operator asks for a walk).
  void trigger();
  // Stops after the current request; joins.
  void stop();

 private:
  void run();

  std::unique_ptr<CatalogSource> source_;
  ScanEnqueuer& enqueuer_;
  int page_size_;
  std::chrono::milliseconds interval_;
  Observer observer_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  bool triggered_ = false;
  std::thread thread_;
};

// The production CatalogSource over image::RegistryCatalog.
Result<std::unique_ptr<CatalogSource>> make_registry_catalog_source(const std::string& registry, bool insecure,
                                                                    const std::string& username,
                                                                    const std::string& password,
                                                                    const std::string& token,
                                                                    const std::string& ca_file);

}  // namespace hashsieve::service
