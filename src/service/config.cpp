#include "hashsieve/service/config.h"

#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <cstdlib>
#include <functional>
#include <limits>
#include <optional>

#include "hashsieve/core/file.h"

extern char** environ;

namespace hashsieve::service {
namespace {

// A value before conversion: a scalar or a list of scalars.
struct RawValue {
  std::vector<std::string> items;
  bool is_list = false;
  std::string origin;  // "hashsieve.yaml key x.y" / "environment HASHSIEVE_X_Y", for errors
};

using Setter = std::function<Status(ServiceConfig&, const RawValue&)>;
struct Option {
  OptionInfo info;
  Setter set;
};

std::string env_name(const std::string& key) {
  std::string out = "HASHSIEVE_";
  for (char c : key) out += c == '.' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

Result<std::string> scalar(const RawValue& v) {
  if (v.is_list || v.items.size() != 1) return Error(ErrorCode::invalid_argument, v.origin + ": expected one value");
  return v.items.front();
}

Result<long long> integer(const RawValue& v, long long lo, long long hi) {
  auto s = scalar(v);
  if (!s) return std::move(s).error();
  errno = 0;
  char* end = nullptr;
  const long long n = std::strtoll(s->c_str(), &end, 10);
  if (s->empty() || *end != '\0' || errno != 0) {
    return Error(ErrorCode::invalid_argument, v.origin + ": '" + *s + "' is not an integer");
  }
  if (n < lo || n > hi) {
    return Error(ErrorCode::invalid_argument, v.origin + ": " + *s + " is outside " + std::to_string(lo) + ".." +
                                                  std::to_string(hi));
  }
  return n;
}

Result<bool> boolean(const RawValue& v) {
  auto s = scalar(v);
  if (!s) return std::move(s).error();
  if (*s == "true" || *s == "1" || *s == "yes" || *s == "on") return true;
  if (*s == "false" || *s == "0" || *s == "no" || *s == "off") return false;
  return Error(ErrorCode::invalid_argument, v.origin + ": '" + *s + "' is not a boolean (true/false)");
}

std::vector<std::string> list(const RawValue& v) {
  std::vector<std::string> out;
  for (const auto& item : v.items) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

Option string_option(std::string key, std::string help, std::string ServiceConfig::*section_less) {
  return {{key, env_name(key), std::move(help)}, [section_less](ServiceConfig& c, const RawValue& v) -> Status {
            auto s = scalar(v);
            if (!s) return std::move(s).error();
            c.*section_less = *s;
            return {};
          }};
}

template <typename Section>
Option string_in(std::string key, std::string help, Section ServiceConfig::*section, std::string Section::*field) {
  return {{key, env_name(key), std::move(help)}, [section, field](ServiceConfig& c, const RawValue& v) -> Status {
            auto s = scalar(v);
            if (!s) return std::move(s).error();
            (c.*section).*field = *s;
            return {};
          }};
}

template <typename Section, typename Int>
Option int_in(std::string key, std::string help, Section ServiceConfig::*section, Int Section::*field, long long lo,
              long long hi) {
  return {{key, env_name(key), std::move(help)},
          [section, field, lo, hi](ServiceConfig& c, const RawValue& v) -> Status {
            auto n = integer(v, lo, hi);
            if (!n) return std::move(n).error();
            (c.*section).*field = static_cast<Int>(*n);
            return {};
          }};
}

template <typename Section>
Option seconds_in(std::string key, std::string help, Section ServiceConfig::*section,
                  std::chrono::seconds Section::*field, long long lo, long long hi) {
  return {{key, env_name(key), std::move(help)},
          [section, field, lo, hi](ServiceConfig& c, const RawValue& v) -> Status {
            auto n = integer(v, lo, hi);
            if (!n) return std::move(n).error();
            (c.*section).*field = std::chrono::seconds(*n);
            return {};
          }};
}

template <typename Section>
Option bool_in(std::string key, std::string help, Section ServiceConfig::*section, bool Section::*field) {
  return {{key, env_name(key), std::move(help)}, [section, field](ServiceConfig& c, const RawValue& v) -> Status {
            auto b = boolean(v);
            if (!b) return std::move(b).error();
            (c.*section).*field = *b;
            return {};
          }};
}

Option list_option(std::string key, std::string help, std::vector<std::string> ServiceConfig::*field) {
  return {{key, env_name(key), std::move(help)}, [field](ServiceConfig& c, const RawValue& v) -> Status {
            c.*field = list(v);
            return {};
          }};
}

// A runtime option: `apply` converts and checks the raw value into the
// RuntimeConfig (its error text is prefixed with the origin, naming the key).
Option runtime_option(std::string key, std::string help,
                      std::function<Status(RuntimeConfig&, const RawValue&)> apply) {
  return {{key, env_name(key), std::move(help)},
          [apply = std::move(apply)](ServiceConfig& c, const RawValue& v) { return apply(c.runtime, v); }};
}

Option runtime_seconds(std::string key, std::string help,
                       std::chrono::milliseconds runtime::SchedulerOptions::*field, long long lo, long long hi) {
  return runtime_option(std::move(key), std::move(help), [field, lo, hi](RuntimeConfig& r, const RawValue& v) -> Status {
    auto n = integer(v, lo, hi);
    if (!n) return std::move(n).error();
    r.schedule.*field = std::chrono::seconds(*n);
    return {};
  });
}

// A scanners option: `apply` converts and checks the raw value into the
// ScannersConfig (its error text is prefixed with the origin, naming the key).
Option scanners_option(std::string key, std::string help,
                       std::function<Status(ScannersConfig&, const RawValue&)> apply) {
  return {{key, env_name(key), std::move(help)},
          [apply = std::move(apply)](ServiceConfig& c, const RawValue& v) { return apply(c.scanners, v); }};
}

// A filesystem path for a scanner: one value; "" leaves the scanner off.
Result<std::string> scanner_path(const RawValue& v) {
  auto s = scalar(v);
  if (!s) return std::move(s).error();
  if (s->find("://") != std::string::npos) {
    return Error(ErrorCode::invalid_argument, v.origin + ": '" + *s + "' is not a filesystem path");
  }
  return *s;
}

const std::vector<Option>& options() {
  static const std::vector<Option> kOptions = {
      string_option("data_dir", "data directory: store.db, queue.db, refsets/ (required)", &ServiceConfig::data_dir),
      string_option("queue", "job queue: embedded (default, <data_dir>/queue.db) or amqp://user:pass@host:port/vhost",
                    &ServiceConfig::queue),
      string_option("store",
                    "job, result and container store: empty (<data_dir>/store.db), sqlite:<dir> or postgres://...",
                    &ServiceConfig::store),
      bool_in("storage.fsync", "fsync every commit of store.db and queue.db (false: survive process crashes only)",
              &ServiceConfig::storage, &StorageConfig::fsync),
      string_in("listen.address", "address to listen on", &ServiceConfig::listen, &ListenConfig::address),
      int_in("listen.port", "TCP port (0 = any free port)", &ServiceConfig::listen, &ListenConfig::port, 0, 65535),
      int_in("listen.threads", "HTTP handler threads", &ServiceConfig::listen, &ListenConfig::threads, 1, 1024),
      string_in("webhook.header", "header carrying the webhook secret", &ServiceConfig::webhook,
                &WebhookConfig::header),
      string_in("webhook.token", "exact value of that header (required)", &ServiceConfig::webhook,
                &WebhookConfig::token),
      list_option("api.tokens", "bearer tokens accepted by the REST API (at least one)", &ServiceConfig::api_tokens),
      string_in("registry.host", "registry host:port to crawl and pull from", &ServiceConfig::registry,
                &RegistryConfig::host),
      bool_in("registry.insecure", "plain HTTP to the registry", &ServiceConfig::registry, &RegistryConfig::insecure),
      string_in("registry.username", "registry user", &ServiceConfig::registry, &RegistryConfig::username),
      string_in("registry.password", "registry password", &ServiceConfig::registry, &RegistryConfig::password),
      string_in("registry.token", "fixed registry bearer token", &ServiceConfig::registry, &RegistryConfig::token),
      string_in("registry.ca_file", "extra CA bundle for HTTPS", &ServiceConfig::registry, &RegistryConfig::ca_file),
      bool_in("crawler.enabled", "walk the catalog on start and every interval", &ServiceConfig::crawler,
              &CrawlerConfig::enabled),
      seconds_in("crawler.interval_seconds", "seconds between catalog walks", &ServiceConfig::crawler,
                 &CrawlerConfig::interval, 1, 7 * 86400),
      int_in("crawler.page_size", "catalog page size (n)", &ServiceConfig::crawler, &CrawlerConfig::page_size, 1,
             1000),
      int_in("workers.count", "scan worker threads (0 = front end only)", &ServiceConfig::workers,
             &WorkersConfig::count, 0, 256),
      seconds_in("workers.stop_deadline_seconds", "how long shutdown waits for running scans",
                 &ServiceConfig::workers, &WorkersConfig::stop_deadline, 0, 3600),
      seconds_in("sweep.interval_seconds", "seconds between sweeps for unpublished and stale jobs",
                 &ServiceConfig::sweep, &SweepConfig::interval, 1, 86400),
      seconds_in("sweep.orphan_grace_seconds", "age of an unpublished job before the sweep publishes it",
                 &ServiceConfig::sweep, &SweepConfig::orphan_grace, 0, 86400),
      seconds_in("sweep.stale_after_seconds",
                 "age of an unfinished, untouched job before the sweep publishes it again (idle queue only)",
                 &ServiceConfig::sweep, &SweepConfig::stale_after, 60, 30 * 86400),
      list_option("refsets", "reference sets to match (empty = all installed)", &ServiceConfig::refsets),
      runtime_option("runtime.enabled", "scan the running containers of runtime.docker_host (hashsieve runtime)",
                     [](RuntimeConfig& r, const RawValue& v) -> Status {
                       auto b = boolean(v);
                       if (!b) return std::move(b).error();
                       r.enabled = *b;
                       return {};
                     }),
      runtime_option("runtime.docker_host", "container engine socket, unix://PATH",
                     [](RuntimeConfig& r, const RawValue& v) -> Status {
                       auto s = scalar(v);
                       if (!s) return std::move(s).error();
                       if (!s->starts_with("unix://") || s->size() == 7) {
                         return Error(ErrorCode::invalid_argument, v.origin + ": '" + *s + "' is not unix://PATH");
                       }
                       r.engine.host = *s;
                       return {};
                     }),
      runtime_seconds("runtime.interval_seconds", "seconds between full sweeps of the running containers",
                           &runtime::SchedulerOptions::sweep_interval, 1, 366LL * 86400),
      runtime_seconds("runtime.min_interval_seconds", "minimum seconds between two scans of one container",
                           &runtime::SchedulerOptions::min_interval, 1, 366LL * 86400),
      runtime_option("runtime.jitter", "sweep jitter as a fraction of the interval, 0..0.5",
                     [](RuntimeConfig& r, const RawValue& v) -> Status {
                       auto s = scalar(v);
                       if (!s) return std::move(s).error();
                       char* end = nullptr;
                       errno = 0;
                       const double f = std::strtod(s->c_str(), &end);
                       if (s->empty() || *end != '\0' || errno != 0 || !(f >= 0 && f <= 0.5)) {
                         return Error(ErrorCode::invalid_argument, v.origin + ": '" + *s + "' is not a number 0..0.5");
                       }
                       r.schedule.jitter = f;
                       return {};
                     }),
      runtime_option("runtime.concurrency", "containers scanned at once",
                     [](RuntimeConfig& r, const RawValue& v) -> Status {
                       auto n = integer(v, 1, 64);
                       if (!n) return std::move(n).error();
                       r.schedule.max_concurrency = static_cast<unsigned>(*n);
                       return {};
                     }),
      runtime_option("runtime.max_file_bytes", "larger drifted files are not fetched (recorded as errors)",
                     [](RuntimeConfig& r, const RawValue& v) -> Status {
                       auto n = integer(v, 1, std::numeric_limits<long long>::max());
                       if (!n) return std::move(n).error();
                       r.drift.max_file_bytes = static_cast<std::uint64_t>(*n);
                       return {};
                     }),
      runtime_option("runtime.full", "scan every file of each container (GET /export), not only its drift",
                     [](RuntimeConfig& r, const RawValue& v) -> Status {
                       auto b = boolean(v);
                       if (!b) return std::move(b).error();
                       r.drift.full = *b;
                       return {};
                     }),
      scanners_option("scanners.clamav_db",
                      "ClamAV database files or directories for libclamav (excludes scanners.clamd_socket)",
                      [](ScannersConfig& c, const RawValue& v) -> Status {
                        std::vector<std::string> paths = list(v);
                        for (const auto& p : paths) {
                          if (p.find("://") != std::string::npos) {
                            return Error(ErrorCode::invalid_argument,
                                         v.origin + ": '" + p + "' is not a filesystem path");
                          }
                        }
                        c.engines.clamav_dbs = std::move(paths);
                        return {};
                      }),
      scanners_option("scanners.clamd_socket", "unix socket of a running clamd (INSTREAM)",
                      [](ScannersConfig& c, const RawValue& v) -> Status {
                        auto p = scanner_path(v);
                        if (!p) return std::move(p).error();
                        c.engines.clamd_socket = *p;
                        return {};
                      }),
      scanners_option("scanners.yara_rules", "directory of YARA rules (*.yar, *.yara) for libyara",
                      [](ScannersConfig& c, const RawValue& v) -> Status {
                        auto p = scanner_path(v);
                        if (!p) return std::move(p).error();
                        c.engines.yara_rules = *p;
                        return {};
                      }),
      scanners_option("scanners.max_file_bytes", "larger inputs are not handed to the scanners (recorded as errors)",
                      [](ScannersConfig& c, const RawValue& v) -> Status {
                        auto n = integer(v, 1, std::numeric_limits<long long>::max());
                        if (!n) return std::move(n).error();
                        c.engines.limits.max_bytes = static_cast<std::uint64_t>(*n);
                        return {};
                      }),
      scanners_option("scanners.timeout_seconds", "wall-clock budget of one scanner on one file",
                      [](ScannersConfig& c, const RawValue& v) -> Status {
                        auto n = integer(v, 1, 3600);
                        if (!n) return std::move(n).error();
                        c.engines.limits.timeout = std::chrono::seconds(*n);
                        return {};
                      }),
      scanners_option("scanners.image_scans", "also run the scanners on an image's unknown files during image scans",
                      [](ScannersConfig& c, const RawValue& v) -> Status {
                        auto b = boolean(v);
                        if (!b) return std::move(b).error();
                        c.image_scans = *b;
                        return {};
                      }),
  };
  return kOptions;
}

// Flattens YAML maps into dotted keys; sequences of scalars become lists.
Status flatten(const YAML::Node& node, const std::string& prefix, std::map<std::string, RawValue>& out) {
  if (node.IsMap()) {
    for (const auto& kv : node) {
      if (!kv.first.IsScalar()) return Error(ErrorCode::parse_error, "config: a key under '" + prefix + "' is not a string");
      const std::string key = prefix.empty() ? kv.first.Scalar() : prefix + "." + kv.first.Scalar();
      if (auto st = flatten(kv.second, key, out); !st) return st;
    }
    return {};
  }
  RawValue v;
  v.origin = "config key " + prefix;
  if (node.IsSequence()) {
    v.is_list = true;
    for (const auto& item : node) {
      if (!item.IsScalar()) return Error(ErrorCode::parse_error, "config key " + prefix + ": list items must be scalars");
      v.items.push_back(item.Scalar());
    }
  } else if (node.IsScalar()) {
    v.items.push_back(node.Scalar());
  } else if (node.IsNull()) {
    v.items.push_back("");
  } else {
    return Error(ErrorCode::parse_error, "config key " + prefix + ": unsupported YAML node");
  }
  out[prefix] = std::move(v);
  return {};
}

// Combinations no single key can check; the paths themselves are checked
// when the scanners are opened (scanners::open_scanners).
Status validate_scanners(const ScannersConfig& c) {
  if (!c.engines.clamav_dbs.empty() && !c.engines.clamd_socket.empty()) {
    return Error(ErrorCode::invalid_argument,
                 "config: scanners.clamav_db and scanners.clamd_socket are both set: pick one ClamAV path "
                 "(libclamav or clamd)");
  }
  if (c.image_scans && c.engines.empty()) {
    return Error(ErrorCode::invalid_argument,
                 "config: scanners.image_scans is true but no scanner is configured (scanners.clamav_db, "
                 "scanners.clamd_socket or scanners.yara_rules)");
  }
  return {};
}

}  // namespace

const std::vector<OptionInfo>& config_options() {
  static const std::vector<OptionInfo> kInfo = [] {
    std::vector<OptionInfo> out;
    for (const auto& o : options()) out.push_back(o.info);
    return out;
  }();
  return kInfo;
}

Result<ServiceConfig> parse_config(const std::string& yaml_text, const std::map<std::string, std::string>& env,
                                   ConfigUse use) {
  std::map<std::string, RawValue> raw;
  try {
    const YAML::Node root = YAML::Load(yaml_text);
    if (root.IsDefined() && !root.IsNull()) {
      if (!root.IsMap()) return Error(ErrorCode::parse_error, "config: the top level must be a mapping");
      if (auto st = flatten(root, "", raw); !st) return std::move(st).error();
    }
  } catch (const YAML::Exception& e) {
    return Error(ErrorCode::parse_error, std::string("config: invalid YAML: ") + e.what());
  }
  std::map<std::string, const Option*> by_key;
  for (const auto& o : options()) by_key[o.info.key] = &o;
  for (const auto& [key, value] : raw) {
    if (!by_key.contains(key)) return Error(ErrorCode::invalid_argument, "config: unknown key '" + key + "'");
  }
  // Environment overrides: lists are comma-separated.
  for (const auto& o : options()) {
    const auto it = env.find(o.info.env);
    if (it == env.end()) continue;
    RawValue v;
    v.origin = "environment " + o.info.env;
    std::string item;
    for (char c : it->second) {
      if (c == ',') {
        v.items.push_back(item);
        item.clear();
      } else {
        item += c;
      }
    }
    v.items.push_back(item);
    v.is_list = v.items.size() > 1;
    raw[o.info.key] = std::move(v);
  }
  ServiceConfig config;
  for (const auto& [key, value] : raw) {
    if (auto st = by_key.at(key)->set(config, value); !st) return std::move(st).error();
  }
  if (config.data_dir.empty()) {
    return Error(ErrorCode::invalid_argument, "config: data_dir is required (or HASHSIEVE_DATA_DIR)");
  }
  if (auto st = validate_scanners(config.scanners); !st) return std::move(st).error();
  if (use == ConfigUse::worker) return config;
  if (config.webhook.token.empty()) {
    return Error(ErrorCode::invalid_argument, "config: webhook.token is required (or HASHSIEVE_WEBHOOK_TOKEN)");
  }
  if (config.webhook.header.empty()) return Error(ErrorCode::invalid_argument, "config: webhook.header is empty");
  if (config.api_tokens.empty()) {
    return Error(ErrorCode::invalid_argument, "config: api.tokens needs at least one token (or HASHSIEVE_API_TOKENS)");
  }
  return config;
}

Result<ServiceConfig> load_config(const std::string& path, ConfigUse use) {
  std::string text;
  if (!path.empty()) {
    auto file = open_regular_file(path);
    if (!file) return std::move(file).error().with_context("reading config " + path);
    auto bytes = read_all_fd(file->fd.get());
    if (!bytes) return std::move(bytes).error().with_context("reading config " + path);
    text = std::move(*bytes);
  }
  std::map<std::string, std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    const std::string entry = *e;
    if (!entry.starts_with("HASHSIEVE_")) continue;
    const auto eq = entry.find('=');
    if (eq != std::string::npos) env[entry.substr(0, eq)] = entry.substr(eq + 1);
  }
  auto config = parse_config(text, env, use);
  if (!config) return std::move(config).error().with_context(path.empty() ? "configuration" : "config " + path);
  return config;
}

}  // namespace hashsieve::service
