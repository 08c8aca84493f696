#include "hashsieve/service/crawler.h"

#include "hashsieve/image/registry_catalog.h"

namespace hashsieve::service {

Result<WithWarnings<CrawlStats>> crawl_once(CatalogSource& source, ScanEnqueuer& enqueuer, int page_size) {
  WithWarnings<CrawlStats> out;
  auto repositories = source.repositories(page_size);
  if (!repositories) return std::move(repositories).error().with_context("catalog crawl");
  for (const auto& repository : *repositories) {
    ++out.value.repositories;
    auto tags = source.tags(repository);
    if (!tags) {
      out.warnings.push_back(Warning{"catalog crawl: " + repository + ": " + tags.error().message()});
      continue;
    }
    for (const auto& tag : *tags) {
      ++out.value.tags;
      auto digest = source.resolve_digest(repository, tag);
      if (!digest) {
        out.warnings.push_back(Warning{"catalog crawl: " + repository + ":" + tag + ": " + digest.error().message()});
        continue;
      }
      auto outcome = enqueuer.enqueue(ScanRequest{repository, *digest, tag, "crawler"});
      if (!outcome) {
        // The store or queue failing is not a per-image problem: stop the walk.
        return std::move(outcome).error().with_context("catalog crawl: enqueue " + repository + "@" + *digest);
      }
      if (outcome->created) {
        ++out.value.enqueued;
      } else {
        ++out.value.known;
      }
    }
  }
  return out;
}

CrawlerThread::CrawlerThread(std::unique_ptr<CatalogSource> source, ScanEnqueuer& enqueuer, int page_size,
                             std::chrono::milliseconds interval, Observer observer)
    : source_(std::move(source)),
      enqueuer_(enqueuer),
      page_size_(page_size),
      interval_(interval),
      observer_(std::move(observer)) {}

CrawlerThread::~CrawlerThread() { stop(); }

void CrawlerThread::start() { thread_ = std::thread([this] { run(); }); }

void CrawlerThread::trigger() {
  {
    std::lock_guard lock(mutex_);
    triggered_ = true;
  }
  wake_.notify_all();
}

void CrawlerThread::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void CrawlerThread::run() {
  for (;;) {
    {
      std::lock_guard lock(mutex_);
      if (stopping_) return;
      triggered_ = false;
    }
    auto result = crawl_once(*source_, enqueuer_, page_size_);
    if (observer_) observer_(result);
    std::unique_lock lock(mutex_);
    wake_.wait_for(lock, interval_, [this] { return stopping_ || triggered_; });
    if (stopping_) return;
  }
}

namespace {

class RegistryCatalogSource final : public CatalogSource {
 public:
  explicit RegistryCatalogSource(std::unique_ptr<image::RegistryCatalog> catalog) : catalog_(std::move(catalog)) {}
  Result<std::vector<std::string>> repositories(int page_size) override { return catalog_->repositories(page_size); }
  Result<std::vector<std::string>> tags(const std::string& repository) override { return catalog_->tags(repository); }
  Result<std::string> resolve_digest(const std::string& repository, const std::string& tag) override {
    return catalog_->resolve_digest(repository, tag);
  }

 private:
  std::unique_ptr<image::RegistryCatalog> catalog_;
};

}  // namespace

Result<std::unique_ptr<CatalogSource>> make_registry_catalog_source(const std::string& registry, bool insecure,
                                                                    const std::string& username,
                                                                    const std::string& password,
                                                                    const std::string& token,
                                                                    const std::string& ca_file) {
  image::SourceOptions options;
  options.insecure = insecure;
  options.ca_file = ca_file;
  options.credentials.username = username;
  options.credentials.password = password;
  options.credentials.bearer_token = token;
  auto catalog = image::RegistryCatalog::create(registry, options);
  if (!catalog) return std::move(catalog).error();
  return std::unique_ptr<CatalogSource>(std::make_unique<RegistryCatalogSource>(std::move(*catalog)));
}

}  // namespace hashsieve::service
