// The `hashsieve serve` configuration: a YAML file, every option also settable
// as an environment variable (HASHSIEVE_ + the dotted key upper-cased with
// '.' -> '_', e.g. listen.port -> HASHSIEVE_LISTEN_PORT; lists are
// comma-separated). The environment wins over the file. Parsed once into
// immutable structs; unknown keys and bad values are errors naming the key.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "hashsieve/core/result.h"
#include "hashsieve/runtime/drift.h"
#include "hashsieve/runtime/engine.h"
#include "hashsieve/runtime/scheduler.h"
#include "hashsieve/scanners/scanner_set.h"

namespace hashsieve::service {

struct ListenConfig {
  std::string address = "127.0.0.1";
  int port = 8080;
  int threads = 8;  // HTTP handler threads
};

struct WebhookConfig {
  std::string header = "Authorization";  // the header the registry sends (notifications.endpoints[].headers)
  std::string token;                     // its exact value, e.g. "Bearer s3cret"; required
};

struct RegistryConfig {
  std::string host;  // "host:port" the crawler walks and scans pull from; "" = no crawler
  bool insecure = false;  // plain HTTP
  std::string username;
  std::string password;
  std::string token;  // a fixed bearer token instead of username/password
  std::string ca_file;
};

struct CrawlerConfig {
  bool enabled = true;
  std::chrono::seconds interval{300};
  int page_size = 100;  // catalog n
};

struct WorkersConfig {
  int count = 2;  // 0: a pure front end (jobs are consumed by `hashsieve worker` processes)
  std::chrono::seconds stop_deadline{30};
};

// The queue sweeps (ADR 0009, 0017): jobs whose publish never completed
// (requeue_orphans) and unfinished jobs whose message was lost
// (requeue_stale, only while the queue holds nothing ready or delayed).
struct SweepConfig {
  std::chrono::seconds interval{60};
  std::chrono::seconds orphan_grace{30};
  std::chrono::seconds stale_after{3600};
};

struct StorageConfig {
  // true: every commit is fsynced (survives power loss). false: WAL with
  // synchronous=NORMAL, survives a crash of the process, not of the machine;
  // much faster webhook answers on slow disks (docs/performance.md).
  bool fsync = true;
};

// The runtime scanner inside serve (`hashsieve runtime` without --once):
// the runtime module's own option structs, so the defaults are theirs.
struct RuntimeConfig {
  bool enabled = false;
  runtime::DockerEngineOptions engine;   // runtime.docker_host
  runtime::SchedulerOptions schedule;    // interval, min interval, jitter, concurrency
  runtime::DriftOptions drift;           // full, max file bytes
  // Wait between attempts to reach an engine that did not answer.
  std::chrono::milliseconds connect_retry{std::chrono::seconds(10)};
};

// Third-party scanners (ClamAV through libclamav or clamd, YARA through
// libyara), opened once at start-up with scanners::open_scanners. The
// runtime scanner inside serve runs them on drifted files; image_scans asks
// for them on an image's unknown files too (image-scan workers of serve and
// of `hashsieve worker`).
struct ScannersConfig {
  scanners::ScannerConfig engines;  // scanners.clamav_db, clamd_socket, yara_rules, max_file_bytes, timeout_seconds
  bool image_scans = false;
};

struct ServiceConfig {
  std::string data_dir;  // store.db, queue.db, refsets/; required
  std::string queue;     // "" / "embedded": <data_dir>/queue.db; "amqp://...": RabbitMQ
  // Jobs, results and container results. "": <data_dir>/store.db;
  // "postgres://...": PostgreSQL; "sqlite:<dir>": <dir>/store.db (open_store.h).
  std::string store;
  StorageConfig storage;
  ListenConfig listen;
  WebhookConfig webhook;
  std::vector<std::string> api_tokens;  // bearer tokens for /v1 (except the webhook); at least one
  RegistryConfig registry;
  CrawlerConfig crawler;
  WorkersConfig workers;
  SweepConfig sweep;
  std::vector<std::string> refsets;  // reference sets to match; empty = every installed set
  RuntimeConfig runtime;
  ScannersConfig scanners;
};

// One documented option: its dotted key and environment variable.
struct OptionInfo {
  std::string key;
  std::string env;
  std::string help;
};
const std::vector<OptionInfo>& config_options();

// Who reads the config: `serve` requires the webhook and API secrets;
// `hashsieve worker` serves no HTTP and does not.
enum class ConfigUse { serve, worker };

// Parses YAML text (may be empty) overlaid with `env` (name -> value).
Result<ServiceConfig> parse_config(const std::string& yaml_text, const std::map<std::string, std::string>& env,
                                   ConfigUse use = ConfigUse::serve);
// Reads `path` ("" = no file) and the process environment.
Result<ServiceConfig> load_config(const std::string& path, ConfigUse use = ConfigUse::serve);

}  // namespace hashsieve::service
