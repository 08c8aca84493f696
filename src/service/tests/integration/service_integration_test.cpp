// hashsieve serve against the real distribution registry (Debian
// docker-registry 2.8) configured to notify it: images built here as OCI
// layouts and pushed with skopeo must show up as reports in the REST API,
// whether the notification arrives or the service was down and the crawler
// has to catch up. Skips when docker-registry or skopeo is missing.
#include <gtest/gtest.h>
#include <httplib.h>

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "hashsieve/service/crawler.h"
#include "hashsieve/service/service.h"
#include "hashsieve/store/job_store.h"
#include "layer_test_util.h"
#include "oci_layout_writer.h"
#include "registry_fixture.h"

namespace hashsieve::service {
namespace {

namespace fs = std::filesystem;
using image::testing::Bytes;
using image::testing::LayerBlob;
using image::testing::OciLayoutWriter;
using image::testing::TarBuilder;
using nlohmann::json;
using testsupport::RegistryFixture;
using testsupport::RegistryNotifications;

constexpr const char* kHookToken = "Bearer hook-secret";
constexpr const char* kApiToken = "api-secret";

struct TempDir {
  fs::path path;
  TempDir() {
    std::string t = (fs::temp_directory_path() / "hashsieve-service-XXXXXX").string();
    if (::mkdtemp(t.data()) != nullptr) path = t;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

// A small distinct image (one layer) tagged `tag` in the layout at `dir`.
std::string write_image(const fs::path& dir, const std::string& tag) {
  OciLayoutWriter writer(dir);
  const Bytes tar = TarBuilder().file("etc/os-release", "ID=test\nNAME=" + tag + "\n").file("app/" + tag, tag).build();
  auto img = writer.image("linux", "amd64",
                          {LayerBlob{"application/vnd.oci.image.layer.v1.tar", tar, image::testing::sha256(tar)}});
  writer.tag(tag, image::media_type::kOciManifest, img.manifest);
  return img.manifest_digest;
}

ServiceConfig make_config(const fs::path& data_dir, int port, const std::string& registry_host) {
  ServiceConfig c;
  c.data_dir = data_dir.string();
  c.listen.port = port;
  c.listen.threads = 4;
  c.webhook.token = kHookToken;
  c.api_tokens = {kApiToken};
  c.registry.host = registry_host;
  c.registry.insecure = true;
  c.crawler.enabled = !registry_host.empty();
  c.crawler.interval = std::chrono::seconds(3600);  // tests trigger walks themselves
  c.workers.count = 2;
  c.workers.stop_deadline = std::chrono::seconds(10);
  return c;
}

class Api {
 public:
  explicit Api(int port) : client_("127.0.0.1", port) {
    client_.set_read_timeout(30, 0);
  }
  httplib::Result get(const std::string& path, bool auth = true) {
    httplib::Headers h;
    if (auth) h.emplace("Authorization", std::string("Bearer ") + kApiToken);
    return client_.Get(path.c_str(), h);
  }
  httplib::Result post_event(const std::string& body, const std::string& token = kHookToken,
                             const std::string& type = "application/vnd.docker.distribution.events.v1+json") {
    httplib::Headers h;
    if (!token.empty()) h.emplace("Authorization", token);
    return client_.Post("/v1/registry/events", h, body, type.c_str());
  }
  // Polls GET /v1/images/<digest> until 200 or the deadline.
  std::optional<json> wait_for_report(const std::string& digest, std::chrono::seconds deadline = std::chrono::seconds(90)) {
    const auto until = std::chrono::steady_clock::now() + deadline;
    while (std::chrono::steady_clock::now() < until) {
      if (auto r = get("/v1/images/" + digest); r && r->status == 200) return json::parse(r->body);
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    return std::nullopt;
  }

 private:
  httplib::Client client_;
};

std::size_t job_count(const fs::path& data_dir) {
  auto store = store::open_sqlite_job_store(data_dir.string());
  if (!store) return static_cast<std::size_t>(-1);
  auto counts = (*store)->count_jobs_by_state();
  if (!counts) return static_cast<std::size_t>(-1);
  std::size_t n = 0;
  for (auto c : *counts) n += c;
  return n;
}

std::string envelope_for(const std::string& repo, const std::string& digest, const std::string& action = "push") {
  return json{{"events",
               {{{"id", "e-" + digest.substr(7, 8)},
                 {"action", action},
                 {"target",
                  {{"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                   {"digest", digest},
                   {"repository", repo},
                   {"tag", "1.0"}}}}}}}
      .dump();
}

#define REQUIRE_TOOLS()                                                                  \
  do {                                                                                   \
    if (!testsupport::have_program("skopeo")) GTEST_SKIP() << "skopeo is not installed"; \
    if (!testsupport::have_program("docker-registry")) GTEST_SKIP() << "docker-registry is not installed"; \
  } while (0)

TEST(ServiceIntegrationTest, PushShowsUpAsReportViaNotification) {
  REQUIRE_TOOLS();
  TempDir data, layouts;
  const int port = testsupport::free_loopback_port();
  RegistryFixture registry;
  registry.notify({"http://127.0.0.1:" + std::to_string(port) + "/v1/registry/events", "Authorization", kHookToken});
  if (auto why = registry.start(); !why.empty()) GTEST_SKIP() << why;
  auto config = make_config(data.path, port, registry.host());
  config.crawler.enabled = false;  // only the notification can bring the image in
  auto svc = Service::create(config);
  ASSERT_TRUE(svc.ok()) << svc.error().message();
  ASSERT_TRUE((*svc)->start().ok());
  Api api(port);

  const std::string digest = write_image(layouts.path / "a", "v1");
  ASSERT_EQ(registry.push(layouts.path / "a", "v1", "team/app:1.0"), "");
  auto report = api.wait_for_report(digest);
  ASSERT_TRUE(report) << "no report for " << digest << "; registry log:\n" << registry.log();
  EXPECT_EQ((*report)["repository"], "team/app");
  EXPECT_TRUE((*report)["report"].is_object());
  auto job = api.get("/v1/jobs/" + std::to_string((*report)["job_id"].get<std::int64_t>()));
  ASSERT_TRUE(job);
  ASSERT_EQ(job->status, 200) << job->body;
  EXPECT_EQ(json::parse(job->body)["state"], "done");
  EXPECT_EQ(json::parse(job->body)["source"], "webhook");

  auto list = api.get("/v1/images?repository=team/app");
  ASSERT_TRUE(list);
  ASSERT_EQ(list->status, 200);
  ASSERT_EQ(json::parse(list->body)["images"].size(), 1u);
  auto files = api.get("/v1/images/" + digest + "/files");
  ASSERT_TRUE(files);
  ASSERT_EQ(files->status, 200) << files->body;
  EXPECT_FALSE(json::parse(files->body)["files"].empty());

  auto metrics = api.get("/metrics", false);
  ASSERT_TRUE(metrics);
  EXPECT_NE(metrics->body.find("hashsieve_jobs{state=\"done\"} 1"), std::string::npos) << metrics->body;
  EXPECT_NE(metrics->body.find("hashsieve_scan_duration_seconds_count 1"), std::string::npos) << metrics->body;
  (*svc)->stop();
  // Our own pulls caused pull events; none became a job (one push, one job).
  EXPECT_EQ(job_count(data.path), 1u);
}

TEST(ServiceIntegrationTest, CrawlerCatchesUpAfterDowntimeAndRegistryRestart) {
  REQUIRE_TOOLS();
  TempDir data, layouts;
  const int port = testsupport::free_loopback_port();
  RegistryFixture registry;
  registry.notify({"http://127.0.0.1:" + std::to_string(port) + "/v1/registry/events", "Authorization", kHookToken});
  if (auto why = registry.start(); !why.empty()) GTEST_SKIP() << why;
  {
    // A first run of the service on the same data dir, then it goes down.
    auto first = Service::create(make_config(data.path, port, registry.host()));
    ASSERT_TRUE(first.ok()) << first.error().message();
    ASSERT_TRUE((*first)->start().ok());
    (*first)->stop();
  }
  // The service is down while these are pushed: their notifications fail.
  std::vector<std::string> digests;
  for (int i = 0; i < 3; ++i) {
    const std::string tag = "t" + std::to_string(i);
    digests.push_back(write_image(layouts.path / tag, tag));
    ASSERT_EQ(registry.push(layouts.path / tag, tag, "down/app" + std::to_string(i) + ":" + tag), "");
  }
  // The registry restarts: whatever it still had queued for us is gone.
  ASSERT_EQ(registry.restart(), "");
  auto svc = Service::create(make_config(data.path, port, registry.host()));
  ASSERT_TRUE(svc.ok()) << svc.error().message();
  ASSERT_TRUE((*svc)->start().ok());
  Api api(port);
  for (const auto& d : digests) {
    SCOPED_TRACE(d);
    ASSERT_TRUE(api.wait_for_report(d)) << registry.log();
  }
  // After the restart, a new push arrives by notification.
  const std::string late = write_image(layouts.path / "late", "late");
  ASSERT_EQ(registry.push(layouts.path / "late", "late", "down/late:late"), "");
  ASSERT_TRUE(api.wait_for_report(late));
  // A second walk finds nothing new.
  (*svc)->trigger_crawl();
  std::this_thread::sleep_for(std::chrono::seconds(1));
  (*svc)->stop();
  EXPECT_EQ(job_count(data.path), 4u);
}

TEST(ServiceIntegrationTest, CatalogPaginationWithTheFullLastPageQuirk) {
  REQUIRE_TOOLS();
  TempDir layouts;
  RegistryFixture registry;
  if (auto why = registry.start(); !why.empty()) GTEST_SKIP() << why;
  const std::string digest = write_image(layouts.path / "img", "v1");
  const std::vector<std::string> repos = {"a/one", "b/two", "c/three", "d/four"};
  for (const auto& r : repos) ASSERT_EQ(registry.push(layouts.path / "img", "v1", r + ":v1"), "");
  ASSERT_EQ(registry.push(layouts.path / "img", "v1", "a/one:v2"), "");
  auto source = make_registry_catalog_source(registry.host(), true, "", "", "", "");
  ASSERT_TRUE(source.ok()) << source.error().message();
  struct Case {
    int page_size;
  };
  // 2 and 4 end on an exactly full page (2.8 still sends a Link); 3 does not; 1000 is one page.
  for (const Case c : {Case{1}, Case{2}, Case{3}, Case{4}, Case{1000}}) {
    SCOPED_TRACE(c.page_size);
    auto names = (*source)->repositories(c.page_size);
    ASSERT_TRUE(names.ok()) << names.error().message();
    EXPECT_EQ(*names, repos);
  }
  auto tags = (*source)->tags("a/one");
  ASSERT_TRUE(tags.ok()) << tags.error().message();
  EXPECT_EQ(*tags, (std::vector<std::string>{"v1", "v2"}));
  auto resolved = (*source)->resolve_digest("a/one", "v2");
  ASSERT_TRUE(resolved.ok()) << resolved.error().message();
  EXPECT_EQ(*resolved, digest);
  auto missing = (*source)->resolve_digest("a/one", "nope");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code(), ErrorCode::not_found);
}

TEST(ServiceIntegrationTest, DuplicateMalformedAndUnauthenticatedEvents) {
  TempDir data;
  const int port = testsupport::free_loopback_port();
  // No registry needed: the jobs are recorded whether or not the image exists.
  auto config = make_config(data.path, port, "127.0.0.1:1");
  config.crawler.enabled = false;
  auto svc = Service::create(config);
  ASSERT_TRUE(svc.ok()) << svc.error().message();
  ASSERT_TRUE((*svc)->start().ok());
  Api api(port);
  const std::string digest = "sha256:" + std::string(64, 'c');
  const std::string body = envelope_for("team/app", digest);

  auto first = api.post_event(body);
  ASSERT_TRUE(first);
  ASSERT_EQ(first->status, 202) << first->body;
  auto second = api.post_event(body);
  ASSERT_TRUE(second);
  ASSERT_EQ(second->status, 202);
  const auto j1 = json::parse(first->body)["jobs"][0];
  const auto j2 = json::parse(second->body)["jobs"][0];
  EXPECT_EQ(j1["job_id"], j2["job_id"]);
  EXPECT_TRUE(j1["created"].get<bool>());
  EXPECT_FALSE(j2["created"].get<bool>());
  EXPECT_EQ(job_count(data.path), 1u);

  struct Case {
    std::string name;
    std::string body;
    std::string token;
    std::string type;
    int want;
  };
  const std::string other = envelope_for("team/other", "sha256:" + std::string(64, 'd'));
  const std::vector<Case> cases = {
      {"malformed json", "{\"events\": [", kHookToken, "application/json", 400},
      {"no events", "{}", kHookToken, "application/json", 400},
      {"bad digest", envelope_for("team/app", "sha256:nothex"), kHookToken, "application/json", 400},
      {"no token", other, "", "application/json", 401},
      {"wrong token", other, "Bearer hook-secreT", "application/json", 401},
      {"wrong content type", other, kHookToken, "text/plain", 415},
      {"pull event only", envelope_for("team/other", "sha256:" + std::string(64, 'e'), "pull"), kHookToken,
       "application/json", 202},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto r = api.post_event(c.body, c.token, c.type);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, c.want) << r->body;
    EXPECT_EQ(job_count(data.path), 1u);  // no side effect
  }

  // The REST API requires a bearer token.
  auto unauth = api.get("/v1/images", false);
  ASSERT_TRUE(unauth);
  EXPECT_EQ(unauth->status, 401);
  auto health = api.get("/healthz", false);
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  auto ready = api.get("/readyz", false);
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 200) << ready->body;
  (*svc)->stop();
}

}  // namespace
}  // namespace hashsieve::service
