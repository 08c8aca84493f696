// hashsieve serve and running containers: GET /v1/containers and
// /v1/containers/{id} over results put into the container store directly,
// the container metrics, and the runtime scanner inside serve (against an
// engine socket that does not exist, and against a fake engine on a unix
// socket).
#include <gtest/gtest.h>
#include <httplib.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

#include "fake_docker_engine.h"
#include "running_service.h"
#include "hashsieve/service/service.h"
#include "hashsieve/store/container_store.h"

namespace hashsieve::service {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using testing::FakeEngine;

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "hashsieve-service-containers-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() { fs::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

ServiceConfig test_config(const std::string& data_dir) {
  ServiceConfig c;
  c.data_dir = data_dir;
  c.listen.port = 0;
  c.listen.threads = 4;
  c.webhook.token = "Bearer hook";
  c.api_tokens = {"api"};
  c.crawler.enabled = false;
  c.workers.count = 0;
  c.storage.fsync = false;
  return c;
}

store::ContainerRecord record(int i, const std::string& verdict) {
  store::ContainerRecord r;
  char id[65];
  std::snprintf(id, sizeof id, "%02d%062x", i, i);
  r.id = id;
  r.name = "c" + std::to_string(i);  // IDs sort by i too
  r.image = "busybox:1";
  r.image_id = "sha256:ff";
  // Newest first: a higher i is newer.
  r.scanned_at = "2026-11-22T10:00:" + std::string(i < 10 ? "0" : "") + std::to_string(i) + "Z";
  r.verdict = verdict;
  r.drifted_files = static_cast<std::uint64_t>(i);
  r.result_json = nlohmann::json{{"id", r.id}, {"name", r.name}, {"verdict", verdict}, {"files", nlohmann::json::array()}}
                      .dump();
  return r;
}

struct Running : testing::RunningService {
  TempDir dir;
  httplib::Result get(const std::string& path, bool token = true) {
    return RunningService::get(path, token ? "api" : "");
  }
};

void put(const std::string& data_dir, const std::vector<store::ContainerRecord>& records) {
  auto containers = store::open_sqlite_container_store(data_dir);
  ASSERT_TRUE(containers.ok()) << containers.error().message();
  for (const auto& r : records) ASSERT_TRUE((*containers)->put_container_result(r).ok());
}

TEST(ServiceContainersTest, RoutesNeedTheBearerToken) {
  Running r;
  r.start(test_config(r.dir.path()));
  put(r.dir.path(), {record(1, "known")});
  for (const std::string& path : std::vector<std::string>{"/v1/containers", "/v1/containers/" + record(1, "known").id}) {
    SCOPED_TRACE(path);
    auto res = r.get(path, false);
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 401);
  }
}

TEST(ServiceContainersTest, OneContainerByIdOrPrefix) {
  Running r;
  r.start(test_config(r.dir.path()));
  const auto rec = record(3, "malicious");
  put(r.dir.path(), {rec, record(4, "known")});
  struct Case {
    std::string name;
    std::string id;
    int want_status;
    std::string want_code;  // of the error
  };
  const std::vector<Case> cases = {
      {"full id", rec.id, 200, ""},
      {"unique prefix", rec.id.substr(0, 8), 200, ""},
      {"unknown id", std::string(64, 'e'), 404, "not_found"},
      {"unknown prefix", "eeee", 404, "not_found"},
      {"too short a prefix", rec.id.substr(0, 2), 400, "invalid_argument"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto res = r.get("/v1/containers/" + c.id);
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, c.want_status) << res->body;
    const auto body = nlohmann::json::parse(res->body);
    if (c.want_status != 200) {
      EXPECT_EQ(body["error"]["code"], c.want_code);
      continue;
    }
    // The runtime report's entry, plus when it was scanned.
    auto want = nlohmann::json::parse(rec.result_json);
    want["scanned_at"] = rec.scanned_at;
    EXPECT_EQ(body, want);
  }
}

// Follows next_cursor from `first` to the end; the names of every page's rows.
std::vector<std::string> walk(Running& r, const std::string& first, std::size_t limit,
                              const std::function<void(int page)>& between_pages = {}) {
  std::vector<std::string> names;
  std::string path = first;
  for (int page = 0; page < 10 && !path.empty(); ++page) {
    auto res = r.get(path);
    EXPECT_TRUE(res);
    if (!res) break;
    EXPECT_EQ(res->status, 200) << res->body;
    const auto body = nlohmann::json::parse(res->body);
    EXPECT_LE(body["containers"].size(), limit);
    for (const auto& c : body["containers"]) names.push_back(c["name"]);
    if (!body.contains("next_cursor")) break;
    // A next page exists only when this one is full.
    EXPECT_EQ(body["containers"].size(), limit);
    const std::string sep = first.find('?') == std::string::npos ? "?" : "&";
    path = first + sep + "cursor=" + body["next_cursor"].get<std::string>();
    if (between_pages) between_pages(page);
  }
  return names;
}

TEST(ServiceContainersTest, ListPagesAndFiltersByVerdict) {
  Running r;
  r.start(test_config(r.dir.path()));
  std::vector<store::ContainerRecord> records;
  for (int i = 1; i <= 5; ++i) records.push_back(record(i, i % 2 == 0 ? "malicious" : "known"));
  put(r.dir.path(), records);
  struct Case {
    std::string name;
    std::string first;
    std::size_t limit;
    std::vector<std::string> want;
  };
  const std::vector<Case> cases = {
      {"pages of two, by container ID", "/v1/containers?limit=2", 2, {"c1", "c2", "c3", "c4", "c5"}},
      {"one page holds all", "/v1/containers?limit=5", 5, {"c1", "c2", "c3", "c4", "c5"}},
      {"default limit", "/v1/containers", 50, {"c1", "c2", "c3", "c4", "c5"}},
      {"verdict, pages of one", "/v1/containers?verdict=malicious&limit=1", 1, {"c2", "c4"}},
      {"verdict", "/v1/containers?verdict=known", 50, {"c1", "c3", "c5"}},
      {"verdict nobody has", "/v1/containers?verdict=suspicious", 50, {}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    EXPECT_EQ(walk(r, c.first, c.limit), c.want);
  }

  auto res = r.get("/v1/containers?verdict=malicious");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200);
  const auto body = nlohmann::json::parse(res->body);
  ASSERT_EQ(body["containers"].size(), 2u);
  EXPECT_EQ(body["containers"][1]["name"], "c4");
  EXPECT_EQ(body["containers"][1]["id"], records[3].id);
  EXPECT_EQ(body["containers"][1]["verdict"], "malicious");
  EXPECT_EQ(body["containers"][1]["drifted_files"], 4);
  EXPECT_EQ(body["containers"][1]["scanned_at"], "2026-11-22T10:00:04Z");
  EXPECT_FALSE(body.contains("next_cursor"));
}

TEST(ServiceContainersTest, ARescanBetweenPagesNeitherSkipsNorRepeats) {
  Running r;
  r.start(test_config(r.dir.path()));
  std::vector<store::ContainerRecord> records;
  for (int i = 1; i <= 5; ++i) records.push_back(record(i, "known"));
  put(r.dir.path(), records);
  // After the first page, its first row and a row of a later page are
  // rescanned (newer than all): an offset into a newest-first list would
  // repeat c5 and skip another.
  auto names = walk(r, "/v1/containers?limit=2", 2, [&](int page) {
    if (page != 0) return;
    for (int i : {1, 4}) {
      auto again = record(i, "known");
      again.scanned_at = "2026-11-23T00:00:0" + std::to_string(i) + "Z";
      put(r.dir.path(), {again});
    }
  });
  EXPECT_EQ(names, (std::vector<std::string>{"c1", "c2", "c3", "c4", "c5"}));
}

TEST(ServiceContainersTest, BadListParametersAre400) {
  Running r;
  r.start(test_config(r.dir.path()));
  struct Case {
    std::string name;
    std::string query;
    std::string want;
  };
  const std::vector<Case> cases = {
      {"limit zero", "limit=0", "limit"},
      {"limit too large", "limit=501", "limit"},
      {"unknown verdict", "verdict=evil", "verdict"},
      {"cursor not hex", "cursor=x1", "cursor"},
      {"cursor of odd length", "cursor=abc", "cursor"},
      {"cursor in upper case", "cursor=AB", "cursor"},
      {"empty cursor", "cursor=", "cursor"},
      {"cursor too long", "cursor=" + std::string(2050, 'a'), "cursor"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto res = r.get("/v1/containers?" + c.query);
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 400);
    EXPECT_NE(res->body.find(c.want), std::string::npos) << res->body;
    EXPECT_NE(res->body.find("invalid_argument"), std::string::npos) << res->body;
  }
}

TEST(ServiceContainersTest, MetricsCountContainersByVerdict) {
  Running r;
  r.start(test_config(r.dir.path()));
  put(r.dir.path(), {record(1, "malicious"), record(2, "known"), record(3, "known")});
  auto res = r.client->Get("/metrics");
  ASSERT_TRUE(res);
  EXPECT_NE(res->body.find("hashsieve_containers{verdict=\"malicious\"} 1\n"), std::string::npos) << res->body;
  EXPECT_NE(res->body.find("hashsieve_containers{verdict=\"known\"} 2\n"), std::string::npos);
  EXPECT_NE(res->body.find("hashsieve_containers{verdict=\"suspicious\"} 0\n"), std::string::npos);
}

// A series' value in the /metrics text (-1 when absent). Sample lines only:
// the "# HELP name ..." line starts with the name too.
double metric(const std::string& text, const std::string& series) {
  const auto at = text.find("\n" + series + " ");
  if (at == std::string::npos) return -1;
  return std::stod(text.substr(at + series.size() + 2));
}

TEST(ServiceContainersTest, UnreachableEngineDoesNotStopServe) {
  Running r;
  auto config = test_config(r.dir.path());
  config.runtime.enabled = true;
  config.runtime.engine.host = "unix://" + r.dir.path() + "/no-such-engine.sock";
  config.runtime.connect_retry = milliseconds(50);
  r.start(config);
  auto health = r.client->Get("/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  // The failed connections are recorded and retried.
  double errors = -1;
  for (int i = 0; i < 200 && errors < 2; ++i) {
    auto res = r.client->Get("/metrics");
    ASSERT_TRUE(res);
    errors = metric(res->body, "hashsieve_runtime_errors_total{kind=\"engine\"}");
    if (errors < 2) std::this_thread::sleep_for(milliseconds(20));
  }
  EXPECT_GE(errors, 2);
  auto res = r.client->Get("/metrics");
  ASSERT_TRUE(res);
  EXPECT_EQ(metric(res->body, "hashsieve_runtime_engine_up"), 0);
  const auto t0 = std::chrono::steady_clock::now();
  r.svc->stop();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
}

TEST(ServiceContainersTest, RuntimeResultsReachTheApiWithinATick) {
  Running r;
  const std::string socket = r.dir.path() + "/engine.sock";
  FakeEngine engine(socket);
  ASSERT_TRUE(engine.ok());
  auto config = test_config(r.dir.path());
  config.runtime.enabled = true;
  config.runtime.engine.host = "unix://" + socket;
  r.start(config);
  std::optional<nlohmann::json> body;
  for (int i = 0; i < 250 && !body; ++i) {
    auto res = r.get("/v1/containers");
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 200);
    auto j = nlohmann::json::parse(res->body);
    if (!j["containers"].empty()) {
      body = j;
    } else {
      std::this_thread::sleep_for(milliseconds(20));
    }
  }
  ASSERT_TRUE(body) << "no container result within 5 s";
  ASSERT_EQ((*body)["containers"].size(), 1u);
  EXPECT_EQ((*body)["containers"][0]["id"], FakeEngine::kId);
  EXPECT_EQ((*body)["containers"][0]["name"], "web");
  EXPECT_EQ((*body)["containers"][0]["verdict"], "known");
  auto one = r.get("/v1/containers/" + std::string(FakeEngine::kId));
  ASSERT_TRUE(one);
  EXPECT_EQ(one->status, 200);
  EXPECT_EQ(nlohmann::json::parse(one->body)["name"], "web");
  // The scan is counted right after it is stored.
  std::string text;
  for (int i = 0; i < 250; ++i) {
    auto metrics = r.client->Get("/metrics");
    ASSERT_TRUE(metrics);
    text = metrics->body;
    if (metric(text, "hashsieve_runtime_scans_total{verdict=\"known\"}") >= 1) break;
    std::this_thread::sleep_for(milliseconds(20));
  }
  EXPECT_EQ(metric(text, "hashsieve_runtime_scans_total{verdict=\"known\"}"), 1);
  EXPECT_EQ(metric(text, "hashsieve_runtime_engine_up"), 1);
  const auto t0 = std::chrono::steady_clock::now();
  r.svc->stop();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
}

// Serve's runtime result for the fake engine's container, through GET
// /v1/containers/{id} (nullopt when none arrives within 5 s).
std::optional<nlohmann::json> await_container(Running& r) {
  for (int i = 0; i < 250; ++i) {
    auto res = r.get("/v1/containers/" + std::string(FakeEngine::kId));
    if (!res) return std::nullopt;
    if (res->status == 200) return nlohmann::json::parse(res->body);
    EXPECT_EQ(res->status, 404) << res->body;
    std::this_thread::sleep_for(milliseconds(20));
  }
  return std::nullopt;
}

// Where serve's runtime keeps container results: the embedded default is
// <data_dir>/store.db; with `store:` naming a SQLite directory they go to
// that store with the jobs, and data_dir gets no store.db at all. (The
// PostgreSQL case is tests/integration/service_postgres_containers_test.cpp.)
TEST(ServiceContainersTest, RuntimeResultsGoToTheConfiguredStore) {
  struct Case {
    std::string name;
    std::string store;  // `store:`; "<other>" is replaced by a directory beside data_dir
    bool in_data_dir;   // results in <data_dir>/store.db, else in <other>/store.db
  };
  const std::vector<Case> cases = {
      {"embedded default", "", true},
      {"sqlite: URL", "sqlite:<other>", false},
      {"plain directory", "<other>", false},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    Running r;
    const std::string data_dir = r.dir.path() + "/data";
    const std::string other = r.dir.path() + "/other";
    const std::string socket = r.dir.path() + "/engine.sock";
    FakeEngine engine(socket);
    ASSERT_TRUE(engine.ok());
    auto config = test_config(data_dir);
    config.store = std::regex_replace(c.store, std::regex("<other>"), other);
    config.runtime.enabled = true;
    config.runtime.engine.host = "unix://" + socket;
    r.start(config);
    const auto body = await_container(r);
    ASSERT_TRUE(body) << "no container result within 5 s";
    EXPECT_EQ((*body)["name"], "web");
    r.svc->stop();
    r.svc.reset();

    const std::string want_dir = c.in_data_dir ? data_dir : other;
    const std::string not_dir = c.in_data_dir ? other : data_dir;
    EXPECT_FALSE(fs::exists(not_dir + "/store.db"));
    ASSERT_TRUE(fs::exists(want_dir + "/store.db"));
    auto containers = store::open_sqlite_container_store(want_dir);
    ASSERT_TRUE(containers.ok()) << containers.error().message();
    auto got = (*containers)->get_container_result(FakeEngine::kId);
    ASSERT_TRUE(got.ok()) << got.error().message();
    ASSERT_TRUE(got->has_value());
    EXPECT_EQ((*got)->name, "web");
    EXPECT_EQ((*got)->verdict, "known");
  }
}

// serve's runtime with a YARA rules directory (scanners.yara_rules): a
// drifted file matching a rule carries the rule as evidence in GET
// /v1/containers/{id} within a tick; a drifted file over
// scanners.max_file_bytes is a recorded "yara: ..." error, counted per
// scanner; the scanner's versions are in /metrics.
TEST(ServiceContainersTest, YaraFindingsOfDriftedFilesReachTheApi) {
  Running r;
  const std::string rules = r.dir.path() + "/rules";
  fs::create_directories(rules);
  std::ofstream(rules + "/marker.yar")
      << "rule HashsieveTestMarker : test\n{\n  strings:\n    $m = \"HASHSIEVE-YARA-MARKER\"\n"
         "  condition:\n    $m\n}\n";
  const std::string socket = r.dir.path() + "/engine.sock";
  FakeEngine engine(socket, {{"/tmp/dropper.sh", "#!/bin/sh\necho HASHSIEVE-YARA-MARKER\n"},
                             {"/tmp/big.bin", std::string(8192, 'x')},
                             {"/tmp/notes.txt", "nothing to see here\n"}});
  ASSERT_TRUE(engine.ok());
  auto config = test_config(r.dir.path());
  config.runtime.enabled = true;
  config.runtime.engine.host = "unix://" + socket;
  config.scanners.engines.yara_rules = rules;
  config.scanners.engines.limits.max_bytes = 4096;
  r.start(config);
  std::optional<nlohmann::json> body;
  for (int i = 0; i < 250 && !body; ++i) {
    auto res = r.get("/v1/containers/" + std::string(FakeEngine::kId));
    ASSERT_TRUE(res);
    if (res->status == 200) {
      body = nlohmann::json::parse(res->body);
    } else {
      ASSERT_EQ(res->status, 404) << res->body;
      std::this_thread::sleep_for(milliseconds(20));
    }
  }
  ASSERT_TRUE(body) << "no container result within 5 s";
  EXPECT_EQ((*body)["verdict"], "suspicious") << body->dump(2);
  std::map<std::string, nlohmann::json> files;
  for (const auto& f : (*body)["files"]) files[f["path"].get<std::string>()] = f;
  ASSERT_TRUE(files.contains("/tmp/dropper.sh")) << body->dump(2);
  bool yara_evidence = false;
  for (const auto& e : files["/tmp/dropper.sh"]["evidence"]) {
    if (e["set"] == "yara") {
      yara_evidence = true;
      EXPECT_EQ(e["reference"], "HashsieveTestMarker");
      EXPECT_EQ(e["verdict"], "suspicious");
    }
  }
  EXPECT_TRUE(yara_evidence) << body->dump(2);
  ASSERT_TRUE(files.contains("/tmp/notes.txt")) << body->dump(2);
  for (const auto& e : files["/tmp/notes.txt"]["evidence"]) EXPECT_NE(e["set"], "yara") << body->dump(2);
  // The large file is still hashed; only YARA refused it.
  ASSERT_TRUE(files.contains("/tmp/big.bin")) << body->dump(2);
  std::vector<std::string> errors;
  for (const auto& e : (*body)["errors"]) errors.push_back(e["path"].get<std::string>() + " " + e["message"].get<std::string>());
  ASSERT_EQ(errors.size(), 1u) << body->dump(2);
  EXPECT_TRUE(errors[0].starts_with("/tmp/big.bin yara: ")) << errors[0];
  EXPECT_NE(errors[0].find("over the scan limit of 4096 bytes"), std::string::npos) << errors[0];

  std::string text;
  for (int i = 0; i < 250; ++i) {
    auto metrics = r.client->Get("/metrics");
    ASSERT_TRUE(metrics);
    text = metrics->body;
    if (metric(text, "hashsieve_scanner_errors_total{name=\"yara\"}") >= 1) break;
    std::this_thread::sleep_for(milliseconds(20));
  }
  EXPECT_EQ(metric(text, "hashsieve_scanner_errors_total{name=\"yara\"}"), 1) << text;
  static const std::regex kInfo(
      R"(\nhashsieve_scanner_info\{name="yara",version="[0-9]+\.[0-9]+\.[0-9]+",signature_version="1 rules?, sha256:[0-9a-f]{64}"\} 1\n)");
  EXPECT_TRUE(std::regex_search(text, kInfo)) << text;
  r.svc->stop();
}

// No scanners configured: no scanner series at all.
TEST(ServiceContainersTest, NoScannersNoScannerMetrics) {
  Running r;
  r.start(test_config(r.dir.path()));
  auto metrics = r.client->Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_EQ(metrics->body.find("hashsieve_scanner_"), std::string::npos);
}

// A scanner that cannot be opened fails create(), naming the scanner and the path.
TEST(ServiceContainersTest, UnopenableScannerFailsCreate) {
  TempDir dir;
  struct Case {
    std::string name;
    std::function<void(ServiceConfig&)> configure;
    std::vector<std::string> want;  // substrings of the message
  };
  const std::string missing = dir.path() + "/no-such-rules";
  const std::string empty_rules = dir.path() + "/empty-rules";
  fs::create_directories(empty_rules);
  const std::string no_clamd = dir.path() + "/no-clamd.sock";
  const std::vector<Case> cases = {
      {"missing YARA rules directory", [&](ServiceConfig& c) { c.scanners.engines.yara_rules = missing; },
       {"YARA", missing}},
      {"YARA rules directory without rules", [&](ServiceConfig& c) { c.scanners.engines.yara_rules = empty_rules; },
       {"YARA", empty_rules, "no *.yar or *.yara files"}},
      {"clamd not running", [&](ServiceConfig& c) { c.scanners.engines.clamd_socket = no_clamd; },
       {"clamd", no_clamd}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto config = test_config(dir.path() + "/data");
    c.configure(config);
    auto s = Service::create(std::move(config));
    ASSERT_FALSE(s.ok());
    for (const auto& w : c.want) EXPECT_NE(s.error().message().find(w), std::string::npos) << s.error().message();
    // Nothing was created for a service that did not start.
    EXPECT_FALSE(fs::exists(dir.path() + "/data"));
  }
}

}  // namespace
}  // namespace hashsieve::service
