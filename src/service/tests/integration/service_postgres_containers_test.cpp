// hashsieve serve with `store: postgres://...` keeps running-container
// results in PostgreSQL: a serve whose runtime scans the fake engine's
// container stores its result there (read back through a second store
// handle on the same database, with no store.db in data_dir), and another
// serve on another data dir and the same database serves it through GET
// /v1/containers. A throwaway PostgreSQL cluster (tests/support/
// postgres_fixture.h); skips when PostgreSQL is not installed.
#include <gtest/gtest.h>
#include <httplib.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "fake_docker_engine.h"
#include "running_service.h"
#include "hashsieve/service/service.h"
#include "hashsieve/store/container_store.h"
#include "hashsieve/store/open_store.h"
#include "postgres_fixture.h"

namespace hashsieve::service {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using std::chrono::milliseconds;
using testing::FakeEngine;

constexpr const char* kApiToken = "api-secret";

struct TempDir {
  fs::path path;
  TempDir() {
    std::string t = (fs::temp_directory_path() / "hashsieve-service-pg-XXXXXX").string();
    if (::mkdtemp(t.data()) != nullptr) path = t;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

ServiceConfig make_config(const std::string& data_dir, const std::string& store_url) {
  ServiceConfig c;
  c.data_dir = data_dir;
  c.store = store_url;
  c.listen.port = 0;
  c.listen.threads = 4;
  c.webhook.token = "Bearer hook";
  c.api_tokens = {kApiToken};
  c.crawler.enabled = false;
  c.workers.count = 0;
  c.storage.fsync = false;
  return c;
}

struct Serve : testing::RunningService {
  httplib::Result get(const std::string& path) { return RunningService::get(path, kApiToken); }
};

class ServicePostgresContainersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto& pg = testsupport::postgres_cluster();
    if (!pg.skip_reason().empty()) GTEST_SKIP() << pg.skip_reason();
    ASSERT_TRUE(pg.error().empty()) << pg.error();
    url_ = pg.create_database();
    ASSERT_FALSE(url_.empty());
  }
  std::string url_;
  TempDir dir_;
};

TEST_F(ServicePostgresContainersTest, RuntimeResultsAreInPostgresForEveryServe) {
  const std::string data_a = (dir_.path / "a").string();
  const std::string data_b = (dir_.path / "b").string();
  const std::string socket = (dir_.path / "engine.sock").string();
  FakeEngine engine(socket);
  ASSERT_TRUE(engine.ok());

  // Serve A scans the engine's container.
  Serve a;
  auto config_a = make_config(data_a, url_);
  config_a.runtime.enabled = true;
  config_a.runtime.engine.host = "unix://" + socket;
  a.start(config_a);
  std::optional<json> from_a;
  for (int i = 0; i < 250 && !from_a; ++i) {
    auto res = a.get("/v1/containers/" + std::string(FakeEngine::kId));
    ASSERT_TRUE(res);
    if (res->status == 200) {
      from_a = json::parse(res->body);
    } else {
      ASSERT_EQ(res->status, 404) << res->body;
      std::this_thread::sleep_for(milliseconds(20));
    }
  }
  ASSERT_TRUE(from_a) << "no container result within 5 s";
  EXPECT_EQ((*from_a)["name"], "web");

  // A second handle on the same database has it: the result is in
  // PostgreSQL, and data_dir holds no SQLite store for it.
  auto stores = store::open_store(url_);
  ASSERT_TRUE(stores.ok()) << stores.error().message();
  ASSERT_EQ(stores->backend, "postgres");
  ASSERT_NE(stores->containers, nullptr);
  auto got = stores->containers->get_container_result(FakeEngine::kId);
  ASSERT_TRUE(got.ok()) << got.error().message();
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ((*got)->name, "web");
  EXPECT_EQ((*got)->image, "busybox:1");
  EXPECT_EQ((*got)->verdict, "known");
  EXPECT_EQ(json::parse((*got)->result_json)["id"], FakeEngine::kId);
  EXPECT_FALSE(fs::exists(data_a + "/store.db"));

  // Serve B: another data dir, no runtime of its own, the same database.
  Serve b;
  b.start(make_config(data_b, url_));
  auto list = b.get("/v1/containers");
  ASSERT_TRUE(list);
  ASSERT_EQ(list->status, 200) << list->body;
  const json body = json::parse(list->body);
  ASSERT_EQ(body["containers"].size(), 1u) << body.dump(2);
  EXPECT_EQ(body["containers"][0]["id"], FakeEngine::kId);
  EXPECT_EQ(body["containers"][0]["name"], "web");
  EXPECT_EQ(body["containers"][0]["verdict"], "known");
  auto one = b.get("/v1/containers/" + std::string(FakeEngine::kId).substr(0, 12));
  ASSERT_TRUE(one);
  ASSERT_EQ(one->status, 200) << one->body;
  EXPECT_EQ(json::parse(one->body)["name"], "web");

  // And the other way: a result written through the second handle (another
  // host's runtime) is served by both.
  store::ContainerRecord other = **got;
  other.id = std::string(64, 'f');
  other.name = "db";
  other.scanned_at = "2026-11-23T10:00:00Z";
  ASSERT_TRUE(stores->containers->put_container_result(other).ok());
  for (Serve* s : {&a, &b}) {
    auto res = s->get("/v1/containers/" + other.id);
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 200) << res->body;
    EXPECT_EQ(json::parse(res->body)["scanned_at"], other.scanned_at);
  }
  EXPECT_FALSE(fs::exists(data_b + "/store.db"));
  a.svc->stop();
  b.svc->stop();
}

}  // namespace
}  // namespace hashsieve::service
