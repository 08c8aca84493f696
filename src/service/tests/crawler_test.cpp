#include "hashsieve/service/crawler.h"

#include <gtest/gtest.h>

#include <map>
#include <set>

#include "hashsieve/image/registry_catalog.h"

namespace hashsieve::service {
namespace {

class FakeCatalog final : public CatalogSource {
 public:
  std::map<std::string, std::map<std::string, std::string>> repos;  // repo -> tag -> digest
  std::set<std::string> broken_repos;
  Result<std::vector<std::string>> repositories(int) override {
    std::vector<std::string> out;
    for (const auto& [r, _] : repos) out.push_back(r);
    for (const auto& r : broken_repos) out.push_back(r);
    return out;
  }
  Result<std::vector<std::string>> tags(const std::string& repo) override {
    if (broken_repos.contains(repo)) return Error(ErrorCode::unavailable, "tags of " + repo + " failed");
    std::vector<std::string> out;
    for (const auto& [t, _] : repos.at(repo)) out.push_back(t);
    return out;
  }
  Result<std::string> resolve_digest(const std::string& repo, const std::string& tag) override {
    return repos.at(repo).at(tag);
  }
};

class FakeEnqueuer final : public ScanEnqueuer {
 public:
  std::set<std::pair<std::string, std::string>> jobs;
  Result<EnqueueOutcome> enqueue(const ScanRequest& r) override {
    const bool created = jobs.emplace(r.repository, r.digest).second;
    return EnqueueOutcome{std::to_string(jobs.size()), created};
  }
};

const std::string kA = "sha256:" + std::string(64, 'a');
const std::string kB = "sha256:" + std::string(64, 'b');

TEST(CrawlerTest, EnqueuesEveryTagOnceAndSkipsKnownDigests) {
  FakeCatalog catalog;
  catalog.repos["app"] = {{"1.0", kA}, {"latest", kA}, {"2.0", kB}};
  catalog.repos["base"] = {{"x", kA}};
  FakeEnqueuer enqueuer;
  auto first = crawl_once(catalog, enqueuer, 100);
  ASSERT_TRUE(first.ok()) << first.error().message();
  EXPECT_EQ(first->value.repositories, 2u);
  EXPECT_EQ(first->value.tags, 4u);
  EXPECT_EQ(first->value.enqueued, 3u);  // (app,A) (app,B) (base,A)
  EXPECT_EQ(first->value.known, 1u);
  auto second = crawl_once(catalog, enqueuer, 100);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->value.enqueued, 0u);
  EXPECT_EQ(second->value.known, 4u);
}

TEST(CrawlerTest, ABrokenRepositoryIsAWarningAndTheWalkGoesOn) {
  FakeCatalog catalog;
  catalog.repos["app"] = {{"1.0", kA}};
  catalog.broken_repos = {"broken"};
  FakeEnqueuer enqueuer;
  auto r = crawl_once(catalog, enqueuer, 10);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->value.enqueued, 1u);
  ASSERT_EQ(r->warnings.size(), 1u);
  EXPECT_NE(r->warnings[0].message.find("tags of broken failed"), std::string::npos) << r->warnings[0].message;
}

TEST(CrawlerTest, ThreadWalksOnStartAndOnTrigger) {
  FakeCatalog* catalog = new FakeCatalog();
  catalog->repos["app"] = {{"1.0", kA}};
  FakeEnqueuer enqueuer;
  std::mutex m;
  std::condition_variable cv;
  int walks = 0;
  CrawlerThread thread(std::unique_ptr<CatalogSource>(catalog), enqueuer, 10, std::chrono::hours(1),
                       [&](const Result<WithWarnings<CrawlStats>>&) {
                         std::lock_guard lock(m);
                         ++walks;
                         cv.notify_all();
                       });
  thread.start();
  {
    std::unique_lock lock(m);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(10), [&] { return walks >= 1; }));
  }
  thread.trigger();
  {
    std::unique_lock lock(m);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(10), [&] { return walks >= 2; }));
  }
  thread.stop();
  EXPECT_EQ(enqueuer.jobs.size(), 1u);
}

TEST(RegistryCatalogTest, ParseNextLink) {
  struct Case {
    std::string name;
    std::string header;
    std::optional<std::string> want;
  };
  const std::vector<Case> cases = {
      {"2.8 catalog", R"(</v2/_catalog?last=team%2Fapp&n=100>; rel="next")", "/v2/_catalog?last=team%2Fapp&n=100"},
      {"unquoted rel", "</v2/x/tags/list?n=2&last=b>; rel=next", "/v2/x/tags/list?n=2&last=b"},
      {"absolute url", R"(<http://r:5000/v2/_catalog?last=a&n=1>; rel="next")", "/v2/_catalog?last=a&n=1"},
      {"prev then next", R"(</v2/a>; rel="prev", </v2/b>; rel="next")", "/v2/b"},
      {"only prev", R"(</v2/a>; rel="prev")", std::nullopt},
      {"empty", "", std::nullopt},
      {"unterminated", "</v2/a; rel=next", std::nullopt},
      {"relative path refused", R"(<v2/a>; rel="next")", std::nullopt},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    EXPECT_EQ(image::parse_next_link(c.header), c.want);
  }
}

}  // namespace
}  // namespace hashsieve::service
