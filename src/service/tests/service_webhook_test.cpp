// hashsieve serve in-process (no workers, no crawler): the webhook's group
// commit seen from HTTP, the graceful stop with requests in flight, and the
// periodic queue sweep.
#include <gtest/gtest.h>
#include <httplib.h>
#include <stdlib.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "hashsieve/queue/job_queue.h"
#include "hashsieve/service/service.h"
#include "hashsieve/store/job_store.h"

namespace hashsieve::service {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "hashsieve-service-webhook-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() { fs::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::string digest(int i) {
  char hex[65];
  std::snprintf(hex, sizeof hex, "%064x", i + 1);
  return std::string("sha256:") + hex;
}

// An envelope of manifest pushes of `digests` to team/app.
std::string envelope(const std::vector<int>& digests) {
  nlohmann::json events = nlohmann::json::array();
  for (int d : digests) {
    events.push_back({{"id", "ev-" + std::to_string(d)},
                      {"action", "push"},
                      {"target",
                       {{"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                        {"size", 500},
                        {"digest", digest(d)},
                        {"repository", "team/app"},
                        {"tag", "t" + std::to_string(d)}}}});
  }
  return nlohmann::json{{"events", events}}.dump();
}

constexpr const char* kToken = "Bearer hook";
constexpr const char* kMediaType = "application/vnd.docker.distribution.events.v1+json";

ServiceConfig test_config(const std::string& data_dir) {
  ServiceConfig c;
  c.data_dir = data_dir;
  c.listen.port = 0;
  c.listen.threads = 10;
  c.webhook.token = kToken;
  c.api_tokens = {"api"};
  c.registry.host = "127.0.0.1:1";
  c.crawler.enabled = false;
  c.workers.count = 0;  // jobs stay in the queue, where the test counts them
  c.storage.fsync = false;
  return c;
}

struct Stores {
  std::unique_ptr<store::JobStore> jobs;
  std::unique_ptr<queue::JobQueue> queue;
};

// A second connection to the service's databases, as another process would.
Stores open_stores(const std::string& data_dir) {
  Stores s;
  auto jobs = store::open_sqlite_job_store(data_dir, nullptr, false);
  EXPECT_TRUE(jobs.ok());
  if (jobs.ok()) s.jobs = std::move(*jobs);
  queue::QueueOptions o;
  o.durability = queue::Durability::process_crash;
  auto q = queue::open_sqlite_queue(data_dir, o);
  EXPECT_TRUE(q.ok());
  if (q.ok()) s.queue = std::move(*q);
  return s;
}

TEST(ServiceWebhook, ConcurrentSendersGetTheirOwnDurableJobs) {
  TempDir dir;
  auto svc = Service::create(test_config(dir.path()));
  ASSERT_TRUE(svc.ok()) << svc.error().message();
  ASSERT_TRUE((*svc)->start().ok());
  const int port = (*svc)->port();
  constexpr int kSenders = 8;
  constexpr int kEnvelopes = 30;
  // Sender s, envelope k carries digest s·kEnvelopes + k, and every fifth
  // envelope also digest 10000 + k (the same for every sender: duplicates
  // racing in one batch).
  std::mutex mu;
  std::map<int, std::set<std::string>> ids_by_digest;
  std::atomic<int> not_accepted{0};
  std::vector<std::thread> senders;
  for (int s = 0; s < kSenders; ++s) {
    senders.emplace_back([&, s] {
      httplib::Client client("127.0.0.1", port);
      client.set_keep_alive(true);
      for (int k = 0; k < kEnvelopes; ++k) {
        std::vector<int> digests = {s * kEnvelopes + k};
        if (k % 5 == 0) digests.push_back(10000 + k);
        auto r = client.Post("/v1/registry/events", {{"Authorization", kToken}}, envelope(digests), kMediaType);
        if (!r || r->status != 202) {
          not_accepted.fetch_add(1);
          continue;
        }
        const auto body = nlohmann::json::parse(r->body);
        std::lock_guard lock(mu);
        EXPECT_EQ(body["jobs"].size(), digests.size());
        for (std::size_t i = 0; i < digests.size() && i < body["jobs"].size(); ++i) {
          EXPECT_EQ(body["jobs"][i]["digest"], digest(digests[i]));
          ids_by_digest[digests[i]].insert(body["jobs"][i]["job_id"].get<std::string>());
        }
      }
    });
  }
  for (auto& t : senders) t.join();
  (*svc)->stop();
  EXPECT_EQ(not_accepted.load(), 0);

  auto stores = open_stores(dir.path());
  ASSERT_TRUE(stores.jobs && stores.queue);
  std::set<std::string> all_ids;
  for (const auto& [d, ids] : ids_by_digest) {
    SCOPED_TRACE(digest(d));
    ASSERT_EQ(ids.size(), 1u) << "one digest, several jobs";
    all_ids.insert(*ids.begin());
    auto job = stores.jobs->get_job(std::stoll(*ids.begin()));
    ASSERT_TRUE(job.ok() && job->has_value());
    EXPECT_EQ((*job)->manifest_digest, digest(d));
    EXPECT_TRUE((*job)->published);
  }
  EXPECT_EQ(all_ids.size(), static_cast<std::size_t>(kSenders * kEnvelopes + (kEnvelopes + 4) / 5));
  auto stats = stores.queue->stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->ready, all_ids.size());  // one message per job: none lost, none doubled
}

TEST(ServiceWebhook, StopAnswersTheRequestsInFlightAndEvery202IsDurable) {
  TempDir dir;
  auto svc = Service::create(test_config(dir.path()));
  ASSERT_TRUE(svc.ok()) << svc.error().message();
  ASSERT_TRUE((*svc)->start().ok());
  const int port = (*svc)->port();
  std::atomic<int> next{0};
  std::atomic<int> accepted_total{0};
  std::mutex mu;
  std::set<int> accepted;
  std::vector<std::thread> senders;
  for (int s = 0; s < 6; ++s) {
    senders.emplace_back([&] {
      httplib::Client client("127.0.0.1", port);
      client.set_keep_alive(true);
      client.set_connection_timeout(std::chrono::seconds(2));
      client.set_read_timeout(std::chrono::seconds(10));
      for (int failures = 0; failures < 3;) {
        const int d = next.fetch_add(1);
        auto r = client.Post("/v1/registry/events", {{"Authorization", kToken}}, envelope({d}), kMediaType);
        if (r && r->status == 202) {
          std::lock_guard lock(mu);
          accepted.insert(d);
          accepted_total.fetch_add(1);
        } else {
          ++failures;  // the listener is closed: the registry would retry later
        }
      }
    });
  }
  while (accepted_total.load() < 50) std::this_thread::sleep_for(milliseconds(1));
  (*svc)->stop();  // with senders still sending
  for (auto& t : senders) t.join();

  auto stores = open_stores(dir.path());
  ASSERT_TRUE(stores.jobs && stores.queue);
  auto page = stores.jobs->list_jobs(store::JobFilter{std::nullopt, "team/app", 0, 100000});
  ASSERT_TRUE(page.ok());
  std::map<std::string, bool> published;  // digest -> published
  for (const auto& j : *page) published[j.manifest_digest] = j.published;
  for (int d : accepted) {
    // Every accepted push has its job, committed and published.
    const auto it = published.find(digest(d));
    ASSERT_NE(it, published.end()) << "a 202 for " << digest(d) << " without its job";
    EXPECT_TRUE(it->second) << digest(d);
  }
  auto stats = stores.queue->stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_GE(stats->ready, accepted.size());
}

TEST(ServiceWebhook, TheServiceSweepsUnpublishedJobsOnATimer) {
  TempDir dir;
  ServiceConfig config = test_config(dir.path());
  config.sweep.interval = std::chrono::seconds(1);
  config.sweep.orphan_grace = std::chrono::seconds(0);
  auto svc = Service::create(config);
  ASSERT_TRUE(svc.ok()) << svc.error().message();
  ASSERT_TRUE((*svc)->start().ok());
  // After start (so not start()'s one-off sweep): a row committed by another
  // front end that died before publishing it.
  auto stores = open_stores(dir.path());
  ASSERT_TRUE(stores.jobs && stores.queue);
  store::JobRequest r;
  r.repository = "team/app";
  r.manifest_digest = digest(7);
  r.reference = "127.0.0.1:1/team/app@" + r.manifest_digest;
  auto made = stores.jobs->create_or_get_job(r);
  ASSERT_TRUE(made.ok());
  ASSERT_FALSE(made->job.published);
  bool published = false;
  for (int i = 0; i < 100 && !published; ++i) {
    std::this_thread::sleep_for(milliseconds(100));
    auto job = stores.jobs->get_job(made->job.id);
    ASSERT_TRUE(job.ok() && job->has_value());
    published = (*job)->published;
  }
  (*svc)->stop();
  EXPECT_TRUE(published) << "no sweep within 10 s at sweep.interval 1 s";
  auto stats = stores.queue->stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->ready, 1u);
}

}  // namespace
}  // namespace hashsieve::service
