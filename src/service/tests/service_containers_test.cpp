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

#include "fake_engine.h"  // src/runtime/tests: the ustar writer
#include "hashsieve/service/service.h"
#include "hashsieve/store/container_store.h"

namespace hashsieve::service {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

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

struct Running {
  TempDir dir;
  std::unique_ptr<Service> svc;
  std::unique_ptr<httplib::Client> client;

  void start(ServiceConfig config) {
    auto s = Service::create(std::move(config));
    ASSERT_TRUE(s.ok()) << s.error().message();
    svc = std::move(s).value();
    auto st = svc->start();
    ASSERT_TRUE(st.ok()) << st.error().message();
    client = std::make_unique<httplib::Client>("127.0.0.1", svc->port());
    client->set_read_timeout(10, 0);
  }
  httplib::Result get(const std::string& path, bool token = true) {
    httplib::Headers h;
    if (token) h.emplace("Authorization", "Bearer api");
    return client->Get(path.c_str(), h);
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

std::string base64(const std::string& in) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (std::size_t i = 0; i < in.size(); i += 3) {
    const std::size_t n = std::min<std::size_t>(3, in.size() - i);
    std::uint32_t v = 0;
    for (std::size_t k = 0; k < 3; ++k) v = (v << 8) | (k < n ? static_cast<unsigned char>(in[i + k]) : 0u);
    for (std::size_t k = 0; k < 4; ++k) out += k <= n ? kAlphabet[(v >> (18 - 6 * k)) & 63] : '=';
  }
  return out;
}

std::string percent_decode(const std::string& in) {
  std::string out;
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '%' && i + 2 < in.size()) {
      out += static_cast<char>(std::stoi(in.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else {
      out += in[i];
    }
  }
  return out;
}

// A minimal Docker Engine API on a unix socket: one running container whose
// drift is the files given (added regular files: /changes, HEAD and GET
// /archive); every other request (the event stream included) is a 500. One
// request per connection (Connection: close).
class FakeEngine {
 public:
  using Files = std::map<std::string, std::string>;  // absolute path -> content
  explicit FakeEngine(std::string path, Files drift = {}) : path_(std::move(path)), drift_(std::move(drift)) {
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path_.c_str());
    ok_ = ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 && ::listen(fd_, 16) == 0;
    thread_ = std::thread([this] { serve(); });
  }
  ~FakeEngine() {
    stop_ = true;
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
  }
  bool ok() const { return ok_; }
  static constexpr const char* kId = "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789";

 private:
  std::string answer(const std::string& method, const std::string& target) const {
    static const std::regex kVersioned(R"(^/v[0-9.]+(/.*)$)");
    std::smatch m;
    const std::string path = std::regex_match(target, m, kVersioned) ? m[1].str() : target;
    const std::string id = kId;
    const std::string archive = "/containers/" + id + "/archive?path=";
    if (path.starts_with(archive)) {
      const auto file = drift_.find(percent_decode(path.substr(archive.size())));
      if (file == drift_.end()) return reply(404, R"({"message":"no such file"})");
      const std::string name = file->first.substr(file->first.rfind('/') + 1);
      if (method == "HEAD") {
        const nlohmann::json stat = {{"name", name},
                                     {"size", file->second.size()},
                                     {"mode", 0644},
                                     {"mtime", "2026-11-23T00:00:00Z"},
                                     {"linkTarget", ""}};
        return reply(200, "", "X-Docker-Container-Path-Stat: " + base64(stat.dump()) + "\r\n");
      }
      const auto tar = runtime::testing::tar_of(name, runtime::testing::Bytes(file->second.begin(), file->second.end()),
                                                0644);
      return reply(200, std::string(tar.begin(), tar.end()), "", "application/x-tar");
    }
    if (path == "/containers/" + id + "/changes") {
      if (drift_.empty()) return reply(200, "null");
      nlohmann::json changes = nlohmann::json::array();
      for (const auto& [p, content] : drift_) changes.push_back({{"Path", p}, {"Kind", 1}});
      return reply(200, changes.dump());
    }
    if (path == "/_ping") return reply(200, "OK");
    if (path.starts_with("/containers/json")) {
      return reply(200, R"([{"Id":")" + id +
                            R"(","Names":["/web"],"Image":"busybox:1","ImageID":"sha256:ff","State":"running"}])");
    }
    if (path == "/containers/" + id + "/json") {
      return reply(200, R"({"Id":")" + id +
                            R"(","Name":"/web","Image":"sha256:ff","Config":{"Image":"busybox:1"},"State":{"Running":true,"Pid":1}})");
    }
    return reply(500, R"({"message":"not in this fake"})");
  }
  static std::string reply(int status, const std::string& body, const std::string& extra_headers = "",
                           const std::string& content_type = "application/json") {
    return "HTTP/1.1 " + std::to_string(status) + (status == 200 ? " OK" : " Error") + "\r\nContent-Type: " +
           content_type + "\r\n" + extra_headers + "Connection: close\r\nContent-Length: " +
           std::to_string(body.size()) + "\r\n\r\n" + body;
  }
  void serve() {
    while (!stop_) {
      const int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      std::string request;
      char buf[4096];
      while (request.find("\r\n\r\n") == std::string::npos) {
        const ssize_t n = ::read(c, buf, sizeof buf);
        if (n <= 0) break;
        request.append(buf, static_cast<std::size_t>(n));
      }
      const auto sp1 = request.find(' ');
      const auto sp2 = request.find(' ', sp1 + 1);
      if (sp1 != std::string::npos && sp2 != std::string::npos) {
        const std::string out = answer(request.substr(0, sp1), request.substr(sp1 + 1, sp2 - sp1 - 1));
        std::size_t off = 0;
        while (off < out.size()) {
          const ssize_t n = ::send(c, out.data() + off, out.size() - off, MSG_NOSIGNAL);
          if (n <= 0) break;
          off += static_cast<std::size_t>(n);
        }
      }
      ::close(c);
    }
  }

  std::string path_;
  Files drift_;
  int fd_ = -1;
  bool ok_ = false;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

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
