#include "hashsieve/service/config.h"

#include <gtest/gtest.h>

#include <fstream>
#include <iterator>

namespace hashsieve::service {
namespace {

constexpr const char* kMinimal =
    "data_dir: /var/lib/hashsieve\n"
    "webhook:\n  token: Bearer hook\n"
    "api:\n  tokens: [t1, t2]\n";

TEST(ConfigTest, MinimalFileGetsDefaults) {
  auto c = parse_config(kMinimal, {});
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_EQ(c->data_dir, "/var/lib/hashsieve");
  EXPECT_EQ(c->webhook.header, "Authorization");
  EXPECT_EQ(c->webhook.token, "Bearer hook");
  EXPECT_EQ(c->api_tokens, (std::vector<std::string>{"t1", "t2"}));
  EXPECT_EQ(c->listen.port, 8080);
  EXPECT_EQ(c->workers.count, 2);
  EXPECT_EQ(c->crawler.interval, std::chrono::seconds(300));
  EXPECT_TRUE(c->crawler.enabled);
  EXPECT_EQ(c->sweep.interval, std::chrono::seconds(60));
  EXPECT_EQ(c->sweep.orphan_grace, std::chrono::seconds(30));
  EXPECT_EQ(c->sweep.stale_after, std::chrono::seconds(3600));
}

TEST(ConfigTest, RuntimeDefaultsAreTheRuntimeModules) {
  auto c = parse_config(kMinimal, {});
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_FALSE(c->runtime.enabled);
  const runtime::DockerEngineOptions engine;
  const runtime::SchedulerOptions schedule;
  const runtime::DriftOptions drift;
  EXPECT_EQ(c->runtime.engine.host, engine.host);
  EXPECT_EQ(c->runtime.schedule.sweep_interval, schedule.sweep_interval);
  EXPECT_EQ(c->runtime.schedule.min_interval, schedule.min_interval);
  EXPECT_EQ(c->runtime.schedule.jitter, schedule.jitter);
  EXPECT_EQ(c->runtime.schedule.max_concurrency, schedule.max_concurrency);
  EXPECT_EQ(c->runtime.drift.max_file_bytes, drift.max_file_bytes);
  EXPECT_EQ(c->runtime.drift.full, drift.full);
}

TEST(ConfigTest, RuntimeSectionFromFileAndEnvironment) {
  const std::string yaml = std::string(kMinimal) +
                           "runtime:\n"
                           "  enabled: true\n"
                           "  docker_host: unix:///run/podman/podman.sock\n"
                           "  interval_seconds: 600\n"
                           "  min_interval_seconds: 10\n"
                           "  jitter: 0.25\n"
                           "  concurrency: 4\n"
                           "  max_file_bytes: 1048576\n"
                           "  full: true\n";
  auto c = parse_config(yaml, {{"HASHSIEVE_RUNTIME_CONCURRENCY", "8"}});
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_TRUE(c->runtime.enabled);
  EXPECT_EQ(c->runtime.engine.host, "unix:///run/podman/podman.sock");
  EXPECT_EQ(c->runtime.schedule.sweep_interval, std::chrono::minutes(10));
  EXPECT_EQ(c->runtime.schedule.min_interval, std::chrono::seconds(10));
  EXPECT_EQ(c->runtime.schedule.jitter, 0.25);
  EXPECT_EQ(c->runtime.schedule.max_concurrency, 8u);  // the environment wins
  EXPECT_EQ(c->runtime.drift.max_file_bytes, 1048576u);
  EXPECT_TRUE(c->runtime.drift.full);
}

TEST(ConfigTest, ScannersSectionFromFileAndEnvironment) {
  const scanners::ScanLimits default_limits;
  struct Want {
    std::vector<std::string> clamav_dbs;
    std::string clamd_socket;
    std::string yara_rules;
    std::uint64_t max_bytes;
    std::chrono::milliseconds timeout;
    bool image_scans;
  };
  struct Case {
    std::string name;
    std::string yaml;  // appended to kMinimal
    std::map<std::string, std::string> env;
    Want want;
  };
  const std::vector<Case> cases = {
      {"absent: nothing configured", "", {}, {{}, "", "", default_limits.max_bytes, default_limits.timeout, false}},
      {"libclamav and YARA from the file",
       "scanners:\n"
       "  clamav_db: [/var/lib/clamav/main.cvd, /var/lib/clamav/daily.cvd]\n"
       "  yara_rules: /etc/hashsieve/yara\n"
       "  max_file_bytes: 1048576\n"
       "  timeout_seconds: 30\n"
       "  image_scans: true\n",
       {},
       {{"/var/lib/clamav/main.cvd", "/var/lib/clamav/daily.cvd"},
        "",
        "/etc/hashsieve/yara",
        1048576,
        std::chrono::seconds(30),
        true}},
      {"one database as a scalar", "scanners: {clamav_db: /db}\n", {},
       {{"/db"}, "", "", default_limits.max_bytes, default_limits.timeout, false}},
      {"clamd from the environment",
       "",
       {{"HASHSIEVE_SCANNERS_CLAMD_SOCKET", "/run/clamav/clamd.ctl"},
        {"HASHSIEVE_SCANNERS_IMAGE_SCANS", "yes"},
        {"HASHSIEVE_SCANNERS_MAX_FILE_BYTES", "4096"}},
       {{}, "/run/clamav/clamd.ctl", "", 4096, default_limits.timeout, true}},
      {"databases comma-separated in the environment", "", {{"HASHSIEVE_SCANNERS_CLAMAV_DB", "/a.cvd,/b.cld"}},
       {{"/a.cvd", "/b.cld"}, "", "", default_limits.max_bytes, default_limits.timeout, false}},
      {"the environment wins over the file",
       "scanners: {yara_rules: /file/rules, image_scans: true}\n",
       {{"HASHSIEVE_SCANNERS_YARA_RULES", "/env/rules"}, {"HASHSIEVE_SCANNERS_IMAGE_SCANS", "false"}},
       {{}, "", "/env/rules", default_limits.max_bytes, default_limits.timeout, false}},
      {"the environment replaces a ClamAV path of the file",
       "scanners: {clamav_db: [/db]}\n",
       {{"HASHSIEVE_SCANNERS_CLAMAV_DB", ""}, {"HASHSIEVE_SCANNERS_CLAMD_SOCKET", "/clamd.sock"}},
       {{}, "/clamd.sock", "", default_limits.max_bytes, default_limits.timeout, false}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    for (auto use : {ConfigUse::serve, ConfigUse::worker}) {
      auto r = parse_config(std::string(kMinimal) + c.yaml, c.env, use);
      ASSERT_TRUE(r.ok()) << r.error().message();
      const auto& e = r->scanners.engines;
      EXPECT_EQ(e.clamav_dbs, c.want.clamav_dbs);
      EXPECT_EQ(e.clamd_socket, c.want.clamd_socket);
      EXPECT_EQ(e.yara_rules, c.want.yara_rules);
      EXPECT_EQ(e.limits.max_bytes, c.want.max_bytes);
      EXPECT_EQ(e.limits.timeout, c.want.timeout);
      EXPECT_EQ(r->scanners.image_scans, c.want.image_scans);
    }
  }
}

TEST(ConfigTest, QueueStoreAndFrontEndSettings) {
  const std::string yaml = std::string(kMinimal) +
                           "queue: amqp://u:p@127.0.0.1:5672/%2f\n"
                           "store: postgres://db/hs\n"
                           "workers: {count: 0}\n";
  auto c = parse_config(yaml, {});
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_EQ(c->queue, "amqp://u:p@127.0.0.1:5672/%2f");
  EXPECT_EQ(c->store, "postgres://db/hs");
  EXPECT_EQ(c->workers.count, 0);  // a pure front end
  auto from_env = parse_config(kMinimal, {{"HASHSIEVE_QUEUE", "embedded"}});
  ASSERT_TRUE(from_env.ok());
  EXPECT_EQ(from_env->queue, "embedded");
}

TEST(ConfigTest, WorkerUseNeedsNoHttpSecrets) {
  const std::string yaml = "data_dir: /srv/hs\nqueue: amqp://u:p@h/%2f\n";
  auto serve = parse_config(yaml, {});
  ASSERT_FALSE(serve.ok());
  EXPECT_NE(serve.error().message().find("webhook.token"), std::string::npos);
  auto worker = parse_config(yaml, {}, ConfigUse::worker);
  ASSERT_TRUE(worker.ok()) << worker.error().message();
  EXPECT_EQ(worker->data_dir, "/srv/hs");
  auto no_dir = parse_config("queue: embedded\n", {}, ConfigUse::worker);
  ASSERT_FALSE(no_dir.ok());
  EXPECT_NE(no_dir.error().message().find("data_dir"), std::string::npos);
}

TEST(ConfigTest, FullFile) {
  const std::string yaml = std::string(kMinimal) +
                           "listen: {address: 0.0.0.0, port: 9000, threads: 4}\n"
                           "registry: {host: 'localhost:5000', insecure: true, username: u, password: p}\n"
                           "crawler: {enabled: false, interval_seconds: 60, page_size: 50}\n"
                           "workers: {count: 8, stop_deadline_seconds: 5}\n"
                           "sweep: {interval_seconds: 10, orphan_grace_seconds: 0, stale_after_seconds: 600}\n"
                           "refsets: [nsrl, clamav]\n";
  auto c = parse_config(yaml, {});
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_EQ(c->listen.address, "0.0.0.0");
  EXPECT_EQ(c->listen.port, 9000);
  EXPECT_EQ(c->listen.threads, 4);
  EXPECT_EQ(c->registry.host, "localhost:5000");
  EXPECT_TRUE(c->registry.insecure);
  EXPECT_EQ(c->registry.username, "u");
  EXPECT_FALSE(c->crawler.enabled);
  EXPECT_EQ(c->crawler.interval, std::chrono::seconds(60));
  EXPECT_EQ(c->crawler.page_size, 50);
  EXPECT_EQ(c->workers.count, 8);
  EXPECT_EQ(c->workers.stop_deadline, std::chrono::seconds(5));
  EXPECT_EQ(c->sweep.interval, std::chrono::seconds(10));
  EXPECT_EQ(c->sweep.orphan_grace, std::chrono::seconds(0));
  EXPECT_EQ(c->sweep.stale_after, std::chrono::seconds(600));
  EXPECT_EQ(c->refsets, (std::vector<std::string>{"nsrl", "clamav"}));
}

TEST(ConfigTest, EnvironmentOverridesFile) {
  auto c = parse_config(kMinimal, {{"HASHSIEVE_LISTEN_PORT", "7000"},
                                   {"HASHSIEVE_API_TOKENS", "a,b,c"},
                                   {"HASHSIEVE_CRAWLER_ENABLED", "false"},
                                   {"HASHSIEVE_DATA_DIR", "/tmp/x"}});
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_EQ(c->listen.port, 7000);
  EXPECT_EQ(c->api_tokens, (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_FALSE(c->crawler.enabled);
  EXPECT_EQ(c->data_dir, "/tmp/x");
}

TEST(ConfigTest, EnvironmentAloneIsEnough) {
  auto c = parse_config("", {{"HASHSIEVE_DATA_DIR", "/d"},
                             {"HASHSIEVE_WEBHOOK_TOKEN", "x"},
                             {"HASHSIEVE_API_TOKENS", "t"}});
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_EQ(c->api_tokens, std::vector<std::string>{"t"});
}

TEST(ConfigTest, EveryOptionHasItsEnvironmentVariable) {
  for (const auto& o : config_options()) {
    SCOPED_TRACE(o.key);
    std::string want = "HASHSIEVE_";
    for (char ch : o.key) want += ch == '.' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    EXPECT_EQ(o.env, want);
    EXPECT_FALSE(o.help.empty());
  }
}

TEST(ConfigTest, EveryOptionIsDocumented) {
  std::ifstream in(std::string(HASHSIEVE_TEST_DATA) + "/../../docs/service.md");
  ASSERT_TRUE(in) << "docs/service.md not found";
  const std::string doc((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  for (const auto& o : config_options()) {
    SCOPED_TRACE(o.key);
    EXPECT_NE(doc.find("| `" + o.key + "` | `" + o.env + "` |"), std::string::npos);
  }
}

TEST(ConfigTest, BadInputIsAnErrorNamingTheProblem) {
  struct Case {
    std::string name;
    std::string yaml;
    std::map<std::string, std::string> env;
    std::string want;  // substring of the message
  };
  const std::vector<Case> cases = {
      {"unknown key", std::string(kMinimal) + "listen: {prot: 1}\n", {}, "unknown key 'listen.prot'"},
      {"port not a number", std::string(kMinimal) + "listen: {port: abc}\n", {}, "listen.port"},
      {"port out of range", std::string(kMinimal) + "listen: {port: 70000}\n", {}, "outside"},
      {"bad boolean", std::string(kMinimal) + "crawler: {enabled: maybe}\n", {}, "not a boolean"},
      {"sweep interval zero", std::string(kMinimal) + "sweep: {interval_seconds: 0}\n", {}, "sweep.interval_seconds"},
      {"stale sweep too eager", kMinimal, {{"HASHSIEVE_SWEEP_STALE_AFTER_SECONDS", "5"}},
       "HASHSIEVE_SWEEP_STALE_AFTER_SECONDS"},
      {"env bad value", kMinimal, {{"HASHSIEVE_WORKERS_COUNT", "-1"}}, "HASHSIEVE_WORKERS_COUNT"},
      {"no data dir", "webhook: {token: x}\napi: {tokens: [t]}\n", {}, "data_dir is required"},
      {"no webhook token", "data_dir: /d\napi: {tokens: [t]}\n", {}, "webhook.token is required"},
      {"no api token", "data_dir: /d\nwebhook: {token: x}\n", {}, "api.tokens"},
      {"invalid yaml", "data_dir: [unclosed\n", {}, "invalid YAML"},
      {"top level list", "- a\n- b\n", {}, "top level"},
      {"runtime enabled not a boolean", std::string(kMinimal) + "runtime: {enabled: sometimes}\n", {},
       "runtime.enabled"},
      {"runtime docker host over TCP", std::string(kMinimal) + "runtime: {docker_host: 'tcp://h:2375'}\n", {},
       "runtime.docker_host"},
      {"runtime docker host without a path", kMinimal, {{"HASHSIEVE_RUNTIME_DOCKER_HOST", "unix://"}},
       "HASHSIEVE_RUNTIME_DOCKER_HOST"},
      {"runtime interval zero", std::string(kMinimal) + "runtime: {interval_seconds: 0}\n", {},
       "runtime.interval_seconds"},
      {"runtime min interval not a number", kMinimal, {{"HASHSIEVE_RUNTIME_MIN_INTERVAL_SECONDS", "1m"}},
       "HASHSIEVE_RUNTIME_MIN_INTERVAL_SECONDS"},
      {"runtime jitter too large", std::string(kMinimal) + "runtime: {jitter: 0.6}\n", {}, "runtime.jitter"},
      {"runtime jitter not a number", std::string(kMinimal) + "runtime: {jitter: lots}\n", {}, "runtime.jitter"},
      {"runtime concurrency zero", std::string(kMinimal) + "runtime: {concurrency: 0}\n", {},
       "runtime.concurrency"},
      {"runtime concurrency too large", kMinimal, {{"HASHSIEVE_RUNTIME_CONCURRENCY", "65"}},
       "HASHSIEVE_RUNTIME_CONCURRENCY"},
      {"runtime max file bytes zero", std::string(kMinimal) + "runtime: {max_file_bytes: 0}\n", {},
       "runtime.max_file_bytes"},
      {"runtime full not a boolean", kMinimal, {{"HASHSIEVE_RUNTIME_FULL", "export"}}, "HASHSIEVE_RUNTIME_FULL"},
      {"runtime unknown key", std::string(kMinimal) + "runtime: {docker_hosts: x}\n", {},
       "unknown key 'runtime.docker_hosts'"},
      {"list for scalar", std::string(kMinimal) + "listen: {address: [a, b]}\n", {}, "expected one value"},
      {"scanners: both ClamAV paths", std::string(kMinimal) + "scanners: {clamav_db: [/db], clamd_socket: /s}\n", {},
       "scanners.clamav_db and scanners.clamd_socket are both set"},
      {"scanners: both ClamAV paths, one from the environment", std::string(kMinimal) + "scanners: {clamav_db: /db}\n",
       {{"HASHSIEVE_SCANNERS_CLAMD_SOCKET", "/run/clamd.ctl"}}, "pick one ClamAV path"},
      {"scanners: image scans without a scanner", std::string(kMinimal) + "scanners: {image_scans: true}\n", {},
       "scanners.image_scans is true but no scanner is configured"},
      {"scanners: image scans not a boolean", kMinimal, {{"HASHSIEVE_SCANNERS_IMAGE_SCANS", "sometimes"}},
       "HASHSIEVE_SCANNERS_IMAGE_SCANS"},
      {"scanners: max file bytes zero", std::string(kMinimal) + "scanners: {max_file_bytes: 0}\n", {},
       "scanners.max_file_bytes"},
      {"scanners: max file bytes not a number", kMinimal, {{"HASHSIEVE_SCANNERS_MAX_FILE_BYTES", "64M"}},
       "HASHSIEVE_SCANNERS_MAX_FILE_BYTES"},
      {"scanners: timeout zero", std::string(kMinimal) + "scanners: {timeout_seconds: 0}\n", {},
       "scanners.timeout_seconds"},
      {"scanners: clamd over TCP", std::string(kMinimal) + "scanners: {clamd_socket: 'tcp://h:3310'}\n", {},
       "scanners.clamd_socket: 'tcp://h:3310' is not a filesystem path"},
      {"scanners: database URL", kMinimal, {{"HASHSIEVE_SCANNERS_CLAMAV_DB", "https://db/main.cvd"}},
       "HASHSIEVE_SCANNERS_CLAMAV_DB"},
      {"scanners: two rules directories", std::string(kMinimal) + "scanners: {yara_rules: [/a, /b]}\n", {},
       "scanners.yara_rules: expected one value"},
      {"scanners: unknown key", std::string(kMinimal) + "scanners: {clamav_dbs: [/db]}\n", {},
       "unknown key 'scanners.clamav_dbs'"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto r = parse_config(c.yaml, c.env);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message().find(c.want), std::string::npos) << r.error().message();
  }
}

TEST(ConfigTest, WorkerUseChecksTheScannersToo) {
  auto r = parse_config("data_dir: /d\nscanners: {clamav_db: [/db], clamd_socket: /s}\n", {}, ConfigUse::worker);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("pick one ClamAV path"), std::string::npos) << r.error().message();
}

TEST(ConfigTest, MissingFileIsAnError) {
  auto r = load_config("/nonexistent/hashsieve.yaml");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::not_found);
}

}  // namespace
}  // namespace hashsieve::service
