#include "hashsieve/service/service.h"

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <condition_variable>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "hashsieve/core/clock.h"
#include "hashsieve/image/reference.h"
#include "hashsieve/queue/job_queue.h"
#include "hashsieve/queue/open_queue.h"
#include "hashsieve/refset/catalog.h"
#include "hashsieve/runtime/drift.h"
#include "hashsieve/runtime/engine.h"
#include "hashsieve/runtime/runner.h"
#include "hashsieve/runtime/scheduler.h"
#include "hashsieve/scan/matcher.h"
#include "hashsieve/scan/verdict.h"
#include "hashsieve/scanners/scanner_set.h"
#include "hashsieve/service/crawler.h"
#include "hashsieve/service/enqueuer.h"
#include "hashsieve/service/group_committer.h"
#include "hashsieve/service/notifications.h"
#include "hashsieve/store/container_store.h"
#include "hashsieve/store/job_store.h"
#include "hashsieve/store/open_store.h"
#include "hashsieve/store/store.h"
#include "hashsieve/worker/enqueue.h"
#include "hashsieve/worker/worker_pool.h"

namespace hashsieve::service {
namespace {

using nlohmann::json;

constexpr std::size_t kMaxEnvelopeBytes = 4u << 20;
constexpr std::size_t kMaxPageSize = 500;

void log_line(const std::string& line) {
  std::fprintf(stderr, "hashsieve serve: %s\n", line.c_str());
  std::fflush(stderr);
}

void send_json(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(body.dump(), "application/json");
}

void send_error(httplib::Response& res, int status, const std::string& code, const std::string& message) {
  send_json(res, status, json{{"error", {{"code", code}, {"message", message}}}});
}

int http_status_for(const Error& e) {
  switch (e.code()) {
    case ErrorCode::not_found: return 404;
    case ErrorCode::invalid_argument:
    case ErrorCode::parse_error: return 400;
    case ErrorCode::unavailable: return 503;
    default: return 500;
  }
}

void send_failure(httplib::Response& res, const Error& e) {
  send_error(res, http_status_for(e), std::string(code_name(e.code())), e.message());
}

json parse_embedded(const std::string& text) {
  if (text.empty()) return nullptr;
  json doc = json::parse(text, nullptr, false);
  return doc.is_discarded() ? json(text) : doc;
}

json job_json(const store::JobRecord& j, const std::vector<std::string>& images) {
  json out{{"id", j.id},
           {"repository", j.repository},
           {"reference", j.reference},
           {"manifest_digest", j.manifest_digest},
           {"source", store::to_string(j.source)},
           {"state", store::to_string(j.state)},
           {"attempts", j.attempts},
           {"runs", j.runs},
           {"created_at", format_utc_ms(j.created_ms)},
           {"updated_at", format_utc_ms(j.updated_ms)},
           {"images", images}};
  if (j.started_ms != 0) out["started_at"] = format_utc_ms(j.started_ms);
  if (j.finished_ms != 0) out["finished_at"] = format_utc_ms(j.finished_ms);
  if (!j.error_code.empty()) out["error"] = {{"code", j.error_code}, {"message", j.error_message}};
  return out;
}

json image_summary_json(const store::ImageResult& r) {
  return json{{"digest", r.image_digest},
              {"repository", r.repository},
              {"reference", r.reference},
              {"platform", r.platform},
              {"job_id", r.job_id},
              {"scanned_at", format_utc_ms(r.scanned_ms)},
              {"verdict", r.verdict},
              {"summary", parse_embedded(r.summary_json)},
              {"refset_fingerprint", r.refset_fingerprint},
              {"bytes_hashed", r.bytes_hashed},
              {"duration_ms", r.duration_ms}};
}

json container_summary_json(const store::ContainerRecord& r) {
  return json{{"id", r.id},
              {"name", r.name},
              {"image", r.image},
              {"image_id", r.image_id},
              {"image_scan_id", r.image_scan_id},
              {"scanned_at", r.scanned_at},
              {"verdict", r.verdict},
              {"drifted_files", r.drifted_files},
              {"errors", r.errors}};
}

// "since"/"until": milliseconds since the epoch or an RFC 3339 UTC time
// ("2026-11-22T10:00:00Z", optional fraction).
std::optional<std::int64_t> parse_time(const std::string& text) {
  if (text.empty()) return std::nullopt;
  if (text.find_first_not_of("0123456789") == std::string::npos && text.size() <= 16) return std::stoll(text);
  int y, mo, d, h, mi;
  double s;
  char z = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%lf%c", &y, &mo, &d, &h, &mi, &s, &z) != 7 || z != 'Z') {
    return std::nullopt;
  }
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s < 0 || s >= 61) return std::nullopt;
  // days_from_civil (Howard Hinnant)
  const int yy = y - (mo <= 2);
  const int era = (yy >= 0 ? yy : yy - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(yy - era * 400);
  const unsigned doy = (153 * static_cast<unsigned>(mo + (mo > 2 ? -3 : 9)) + 2) / 5 + static_cast<unsigned>(d) - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  const std::int64_t days = static_cast<std::int64_t>(era) * 146097 + static_cast<std::int64_t>(doe) - 719468;
  return ((days * 24 + h) * 60 + mi) * 60'000 + static_cast<std::int64_t>(s * 1000.0);
}

std::optional<std::size_t> parse_limit(const httplib::Request& req, std::size_t fallback) {
  if (!req.has_param("limit")) return fallback;
  const std::string v = req.get_param_value("limit");
  if (v.empty() || v.size() > 6 || v.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
  const auto n = static_cast<std::size_t>(std::stoul(v));
  if (n == 0 || n > kMaxPageSize) return std::nullopt;
  return n;
}

}  // namespace

store::JobRequest job_request(const ScanRequest& request, const std::string& registry) {
  store::JobRequest job;
  job.repository = request.repository;
  job.manifest_digest = request.digest;
  job.reference = registry + "/" + request.repository + "@" + request.digest;
  job.source = request.origin == "webhook"   ? store::JobSource::webhook
               : request.origin == "crawler" ? store::JobSource::crawler
                                             : store::JobSource::api;
  return job;
}

void count_enqueued(MetricsRegistry& metrics, const std::string& origin, bool created) {
  metrics
      .counter("hashsieve_jobs_enqueued_total", "scan requests by origin and whether they created a job",
               {{"origin", origin}, {"created", created ? "true" : "false"}})
      .add();
}

// The production enqueuer (the crawler's): job row and durable publish
// through the group committer, shared with the webhook (ADR 0017).
class StoreEnqueuer final : public ScanEnqueuer {
 public:
  StoreEnqueuer(GroupCommitter& committer, std::string registry, MetricsRegistry& metrics)
      : committer_(committer), registry_(std::move(registry)), metrics_(metrics) {}

  Result<EnqueueOutcome> enqueue(const ScanRequest& request) override {
    auto done = committer_.submit({job_request(request, registry_)});
    if (!done) return std::move(done).error();
    const auto& e = done->front();
    count_enqueued(metrics_, request.origin, e.created);
    return EnqueueOutcome{std::to_string(e.job.id), e.created};
  }

 private:
  GroupCommitter& committer_;
  std::string registry_;
  MetricsRegistry& metrics_;
};

// Runs worker::sweep_queue every sweep.interval (and once more on trigger).
class SweepThread {
 public:
  SweepThread(std::function<void()> round, std::chrono::milliseconds interval)
      : round_(std::move(round)), interval_(interval) {}
  ~SweepThread() { stop(); }
  void start() {
    thread_ = std::thread([this] {
      std::unique_lock lock(mutex_);
      while (!stopping_) {
        if (wake_.wait_for(lock, interval_, [this] { return stopping_; })) break;
        lock.unlock();
        round_();
        lock.lock();
      }
    });
  }
  void stop() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

 private:
  std::function<void()> round_;
  std::chrono::milliseconds interval_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

// The runtime scanner inside serve: the loop of `hashsieve runtime` without
// --once (runtime::Runner::run) on its own thread. An engine that cannot be
// reached is retried every connect_retry; once connected, the runner itself
// records and retries engine failures. Results go to the container store.
class RuntimeThread {
 public:
  struct Hooks {
    std::function<void(const Error&)> on_connect_error;
    std::function<void()> on_connected;
    runtime::RunnerOptions runner;
  };
  // `externals` (the scanners of the scanners: section) must outlive the thread.
  RuntimeThread(RuntimeConfig config, const std::vector<refset::LoadedRefset>& sets, const scan::PathIndex* paths,
                std::vector<const scanners::ExternalScanner*> externals, store::ContainerStore& results,
                store::Store* image_scans, Hooks hooks)
      : config_(std::move(config)),
        drift_(sets, paths, std::move(externals), config_.drift),
        results_(results),
        image_scans_(image_scans),
        hooks_(std::move(hooks)) {}
  ~RuntimeThread() { stop(); }

  void start() {
    thread_ = std::thread([this] { loop(); });
  }
  // Returns once the runner has finished its current tick and stored it.
  void stop() {
    // The flag first: a runner woken by notify() must see it.
    stop_flag_.store(true);
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
      if (runner_ != nullptr) runner_->notify();
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

 private:
  void loop() {
    while (!stop_flag_.load()) {
      auto engine = runtime::connect_docker_engine(config_.engine);
      if (!engine) {
        hooks_.on_connect_error(engine.error());
        std::unique_lock lock(mutex_);
        wake_.wait_for(lock, config_.connect_retry, [this] { return stopping_; });
        continue;
      }
      hooks_.on_connected();
      runtime::Scheduler scheduler(config_.schedule, clock_, std::random_device{}());
      runtime::Runner runner(**engine, drift_, scheduler, clock_, &results_, image_scans_, hooks_.runner);
      if (auto st = runner.restore(); !st) {
        log_line("runtime: warning: " + st.error().message() + "; starting with an empty schedule");
      }
      {
        std::lock_guard lock(mutex_);
        if (stopping_) return;
        runner_ = &runner;
      }
      runner.run(stop_flag_);
      std::lock_guard lock(mutex_);
      runner_ = nullptr;
      return;
    }
  }

  RuntimeConfig config_;
  runtime::DriftScanner drift_;
  runtime::SystemClock clock_;
  store::ContainerStore& results_;
  store::Store* image_scans_;
  Hooks hooks_;
  std::atomic<bool> stop_flag_{false};
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  runtime::Runner* runner_ = nullptr;  // while run() runs, for notify()
  std::thread thread_;
};

struct Service::Impl {
  ServiceConfig config;
  MetricsRegistry metrics;
  std::unique_ptr<store::JobStore> jobs;
  std::unique_ptr<store::Store> store;
  std::unique_ptr<queue::JobQueue> queue;
  // Running-container results, written by the runtime below: in the store of
  // `store:` (PostgreSQL: shared by every serve on that database), else in
  // <data_dir>/store.db, where `hashsieve runtime` on the same data dir
  // writes too.
  std::unique_ptr<store::ContainerStore> containers;
  std::vector<refset::LoadedRefset> sets;
  std::vector<refset::RefsetManifest> set_manifests;
  std::unique_ptr<scan::PathIndex> paths;
  // The third-party scanners (scanners:), opened once in create(); declared
  // before the runtime thread that uses them, so they outlive it.
  scanners::ScannerSet external_scanners;
  std::unique_ptr<GroupCommitter> committer;
  std::unique_ptr<StoreEnqueuer> enqueuer;
  std::unique_ptr<SweepThread> sweeper;
  std::unique_ptr<worker::WorkerPool> workers;
  std::unique_ptr<CrawlerThread> crawler;
  std::unique_ptr<RuntimeThread> runtime_scanner;  // runtime.enabled
  httplib::Server server;
  std::thread server_thread;
  int port = -1;
  std::atomic<bool> running{false};
  std::atomic<bool> ready{false};
  std::mutex stop_mutex;

  // Hot-path metrics, registered once.
  Histogram* webhook_latency = nullptr;
  Histogram* commit_batch_size = nullptr;
  Histogram* scan_duration = nullptr;
  Counter* bytes_hashed = nullptr;

  bool api_authorized(const httplib::Request& req) const {
    const std::string header = req.get_header_value("Authorization");
    constexpr std::string_view kBearer = "Bearer ";
    if (header.size() <= kBearer.size() || header.compare(0, kBearer.size(), kBearer) != 0) return false;
    const std::string_view presented = std::string_view(header).substr(kBearer.size());
    bool ok = false;
    // Compare against every token so timing does not reveal which one matched.
    for (const auto& t : config.api_tokens) ok = constant_time_equals(t, presented) || ok;
    return ok;
  }

  void register_routes();
  void handle_events(const httplib::Request& req, httplib::Response& res);
  void handle_list_images(const httplib::Request& req, httplib::Response& res);
  void handle_image(const httplib::Request& req, httplib::Response& res);
  void handle_image_files(const httplib::Request& req, httplib::Response& res);
  void handle_job(const httplib::Request& req, httplib::Response& res);
  void handle_scan(const httplib::Request& req, httplib::Response& res);
  void handle_refsets(const httplib::Request& req, httplib::Response& res);
  void handle_list_containers(const httplib::Request& req, httplib::Response& res);
  void handle_container(const httplib::Request& req, httplib::Response& res);
  std::unique_ptr<RuntimeThread> make_runtime();
  Status open_external_scanners();
  Counter& scanner_errors(const std::string& name);
  void handle_ready(const httplib::Request& req, httplib::Response& res);
  void register_metrics();
};

void Service::Impl::register_metrics() {
  webhook_latency = &metrics.histogram("hashsieve_webhook_duration_seconds",
                                       "time to answer a webhook request (parse, enqueue durably)",
                                       {0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1});
  commit_batch_size = &metrics.histogram("hashsieve_enqueue_batch_requests",
                                         "scan requests committed together by the group committer",
                                         {1, 2, 4, 8, 16, 32, 64, 128, 256, 512});
  scan_duration = &metrics.histogram("hashsieve_scan_duration_seconds", "duration of one scan attempt",
                                     {0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600});
  bytes_hashed = &metrics.counter("hashsieve_bytes_hashed_total", "content bytes hashed by the workers");
  for (auto s : store::kAllJobStates) {
    metrics.gauge("hashsieve_jobs", "jobs by state (from the job store)", {{"state", store::to_string(s)}});
  }
  metrics.gauge("hashsieve_queue_depth", "queue messages not yet finished (ready + in flight + delayed)");
  metrics.gauge("hashsieve_queue_dead_letters", "dead-lettered queue messages");
  metrics.add_collector([this] {
    if (auto counts = jobs->count_jobs_by_state(); counts.ok()) {
      for (auto s : store::kAllJobStates) {
        metrics.gauge("hashsieve_jobs", "jobs by state (from the job store)", {{"state", store::to_string(s)}})
            .set(static_cast<double>((*counts)[static_cast<std::size_t>(s)]));
      }
    }
    if (auto st = queue->stats(); st.ok()) {
      metrics.gauge("hashsieve_queue_depth", "queue messages not yet finished (ready + in flight + delayed)")
          .set(static_cast<double>(st->depth()));
      metrics.gauge("hashsieve_queue_dead_letters", "dead-lettered queue messages").set(static_cast<double>(st->dead));
    }
    // Every verdict is set (0 included) so a verdict no container has any
    // more drops to 0 instead of keeping its last count.
    if (auto rows = containers->list_container_results(std::numeric_limits<std::size_t>::max()); rows.ok()) {
      std::map<std::string, std::size_t> by_verdict;
      for (auto v : scan::kAllVerdicts) by_verdict[std::string(scan::to_string(v))] = 0;
      for (const auto& r : *rows) ++by_verdict[r.verdict];
      for (const auto& [verdict, n] : by_verdict) {
        metrics.gauge("hashsieve_containers", "running containers by verdict of their latest result",
                      {{"verdict", verdict}})
            .set(static_cast<double>(n));
      }
    }
    if (auto v = jobs->count_images_by_verdict(); v.ok()) {
      for (const auto& [verdict, n] : *v) {
        metrics.gauge("hashsieve_images", "images by verdict of their latest result", {{"verdict", verdict}})
            .set(static_cast<double>(n));
      }
    }
  });
}

void Service::Impl::handle_events(const httplib::Request& req, httplib::Response& res) {
  const auto t0 = std::chrono::steady_clock::now();
  auto finish = [&](int status) {
    metrics.counter("hashsieve_webhook_requests_total", "webhook requests by status", {{"status", std::to_string(status)}})
        .add();
    webhook_latency->observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  };
  if (!constant_time_equals(config.webhook.token, req.get_header_value(config.webhook.header.c_str()))) {
    send_error(res, 401, "unauthenticated", "missing or wrong " + config.webhook.header + " header");
    return finish(401);
  }
  if (!is_envelope_content_type(req.get_header_value("Content-Type"))) {
    send_error(res, 415, "unsupported_media_type",
               "expected application/vnd.docker.distribution.events.v1+json (or v2, or application/json)");
    return finish(415);
  }
  auto envelope = parse_envelope(req.body);
  if (!envelope) {
    send_error(res, 400, "bad_envelope", envelope.error().message());
    return finish(400);
  }
  metrics.counter("hashsieve_webhook_events_total", "notification events by kind", {{"kind", "ignored"}})
      .add(envelope->ignored);
  metrics.counter("hashsieve_webhook_events_total", "notification events by kind", {{"kind", "manifest_push"}})
      .add(envelope->pushes.size());
  json jobs_out = json::array();
  if (!envelope->pushes.empty()) {
    std::vector<store::JobRequest> requests;
    requests.reserve(envelope->pushes.size());
    for (const auto& push : envelope->pushes) {
      requests.push_back(job_request(ScanRequest{push.repository, push.digest, push.tag, "webhook"},
                                     config.registry.host));
    }
    // Blocks until this envelope's jobs are committed and published, in one
    // batch with whatever other requests arrived meanwhile (ADR 0017).
    auto done = committer->submit(std::move(requests));
    if (!done) {
      // Not persisted: a 5xx makes the registry deliver the envelope again
      // (creation is idempotent, so jobs whose rows did commit are not doubled).
      send_error(res, 503, std::string(code_name(done.error().code())), done.error().message());
      return finish(503);
    }
    for (std::size_t i = 0; i < done->size(); ++i) {
      const auto& push = envelope->pushes[i];
      const auto& e = (*done)[i];
      count_enqueued(metrics, "webhook", e.created);
      jobs_out.push_back({{"repository", push.repository},
                          {"digest", push.digest},
                          {"job_id", std::to_string(e.job.id)},
                          {"created", e.created}});
    }
  }
  send_json(res, 202, json{{"jobs", jobs_out}, {"ignored", envelope->ignored}});
  finish(202);
}

void Service::Impl::handle_list_images(const httplib::Request& req, httplib::Response& res) {
  store::ImageFilter filter;
  filter.repository = req.get_param_value("repository");
  filter.verdict = req.get_param_value("verdict");
  const auto limit = parse_limit(req, 50);
  if (!limit) return send_error(res, 400, "invalid_argument", "limit must be 1.." + std::to_string(kMaxPageSize));
  filter.limit = *limit;
  for (const char* name : {"since", "until"}) {
    if (!req.has_param(name)) continue;
    const auto t = parse_time(req.get_param_value(name));
    if (!t) {
      return send_error(res, 400, "invalid_argument",
                        std::string(name) + " must be milliseconds since the epoch or RFC 3339 UTC (…Z)");
    }
    (std::string_view(name) == "since" ? filter.since_ms : filter.until_ms) = *t;
  }
  if (req.has_param("cursor")) {
    // cursor = "<scanned_ms>_<digest>" of the previous page's last row.
    const std::string c = req.get_param_value("cursor");
    const auto sep = c.find('_');
    const std::string ms = c.substr(0, sep);
    if (sep == std::string::npos || ms.empty() || ms.size() > 16 || ms.find_first_not_of("0123456789") != std::string::npos ||
        !image::is_valid_sha256_digest(c.substr(sep + 1))) {
      return send_error(res, 400, "invalid_argument", "malformed cursor");
    }
    filter.before_ms = std::stoll(ms);
    filter.before_digest = c.substr(sep + 1);
  }
  auto rows = jobs->list_images(filter);
  if (!rows) return send_failure(res, rows.error());
  json out{{"images", json::array()}};
  for (const auto& r : *rows) out["images"].push_back(image_summary_json(r));
  if (rows->size() == filter.limit) {
    out["next_cursor"] = std::to_string(rows->back().scanned_ms) + "_" + rows->back().image_digest;
  }
  send_json(res, 200, out);
}

void Service::Impl::handle_image(const httplib::Request& req, httplib::Response& res) {
  auto image = jobs->get_image(req.matches[1]);
  if (!image) return send_failure(res, image.error());
  if (!*image) return send_error(res, 404, "not_found", "no result for image " + std::string(req.matches[1]));
  json out = image_summary_json(**image);
  out["report"] = parse_embedded((*image)->report_json);
  send_json(res, 200, out);
}

void Service::Impl::handle_image_files(const httplib::Request& req, httplib::Response& res) {
  const std::string digest = req.matches[1];
  auto image = jobs->get_image(digest);
  if (!image) return send_failure(res, image.error());
  if (!*image) return send_error(res, 404, "not_found", "no result for image " + digest);
  store::FileFilter filter;
  filter.verdict = req.get_param_value("verdict");
  const auto limit = parse_limit(req, 500);
  if (!limit) return send_error(res, 400, "invalid_argument", "limit must be 1.." + std::to_string(kMaxPageSize));
  filter.limit = *limit;
  if (req.has_param("cursor")) {
    const std::string c = req.get_param_value("cursor");
    if (c.empty() || c.size() > 16 || c.find_first_not_of("0123456789") != std::string::npos) {
      return send_error(res, 400, "invalid_argument", "malformed cursor");
    }
    filter.after_seq = std::stoll(c);
  }
  auto files = jobs->list_image_files(digest, filter);
  if (!files) return send_failure(res, files.error());
  json out{{"digest", digest}, {"files", json::array()}};
  for (const auto& f : *files) {
    json row{{"path", f.path}, {"layer", f.layer}, {"size", f.size}, {"sha256", f.sha256}, {"verdict", f.verdict},
             {"evidence", parse_embedded(f.evidence_json)}};
    if (f.hidden_by) row["hidden_by"] = *f.hidden_by;
    out["files"].push_back(std::move(row));
  }
  if (files->size() == filter.limit) out["next_cursor"] = std::to_string(files->back().seq);
  send_json(res, 200, out);
}

void Service::Impl::handle_job(const httplib::Request& req, httplib::Response& res) {
  const std::string id_text = req.matches[1];
  if (id_text.size() > 18) return send_error(res, 404, "not_found", "no job " + id_text);
  const std::int64_t id = std::stoll(id_text);
  auto job = jobs->get_job(id);
  if (!job) return send_failure(res, job.error());
  if (!*job) return send_error(res, 404, "not_found", "no job " + id_text);
  auto images = jobs->job_images(id);
  if (!images) return send_failure(res, images.error());
  send_json(res, 200, job_json(**job, *images));
}

void Service::Impl::handle_scan(const httplib::Request& req, httplib::Response& res) {
  json body = json::parse(req.body, nullptr, false);
  if (body.is_discarded() || !body.is_object() || !body.contains("reference") || !body["reference"].is_string()) {
    return send_error(res, 400, "invalid_argument", "expected a JSON object {\"reference\": \"host/repo:tag\"}");
  }
  const std::string text = body["reference"].get<std::string>();
  auto ref = image::ImageReference::parse(text);
  if (!ref) return send_error(res, 400, "invalid_argument", ref.error().message());
  store::JobRequest job;
  job.repository = ref->repository;
  job.reference = ref->to_string();
  job.manifest_digest = ref->digest;
  job.source = store::JobSource::api;
  auto batch = committer->submit({job});
  if (!batch) return send_failure(res, batch.error());
  const auto& done = batch->front();
  count_enqueued(metrics, "api", done.created);
  send_json(res, 202, json{{"job_id", done.job.id}, {"created", done.created}, {"state", store::to_string(done.job.state)}});
}

void Service::Impl::handle_refsets(const httplib::Request&, httplib::Response& res) {
  json out{{"refsets", json::array()}};
  for (const auto& m : set_manifests) {
    out["refsets"].push_back({{"name", m.name},
                              {"format", m.format},
                              {"version", m.version},
                              {"fingerprint", m.fingerprint},
                              {"imported_at", m.imported_at},
                              {"rows", m.rows}});
  }
  out["fingerprint"] = worker::refset_fingerprint(sets);
  send_json(res, 200, out);
}

void Service::Impl::handle_list_containers(const httplib::Request& req, httplib::Response& res) {
  store::ContainerFilter filter;
  filter.verdict = req.get_param_value("verdict");
  if (!filter.verdict.empty() && !scan::parse_verdict(filter.verdict).ok()) {
    return send_error(res, 400, "invalid_argument", "verdict must be known, unknown, modified, suspicious or malicious");
  }
  const auto limit = parse_limit(req, 50);
  if (!limit) return send_error(res, 400, "invalid_argument", "limit must be 1.." + std::to_string(kMaxPageSize));
  // cursor = the previous page's last container ID, hex-encoded: opaque to
  // clients and safe in a query string whatever bytes the ID holds. Pages
  // are keyset by ID, so a container rescanned between two pages is neither
  // skipped nor repeated.
  constexpr std::size_t kMaxCursor = 2 * 1024;  // engine IDs are 64 characters; this only bounds the input
  if (req.has_param("cursor")) {
    const std::string c = req.get_param_value("cursor");
    if (c.empty() || c.size() > kMaxCursor || c.size() % 2 != 0 ||
        c.find_first_not_of("0123456789abcdef") != std::string::npos) {
      return send_error(res, 400, "invalid_argument", "malformed cursor");
    }
    for (std::size_t i = 0; i < c.size(); i += 2) {
      filter.after_id.push_back(static_cast<char>(std::stoi(c.substr(i, 2), nullptr, 16)));
    }
  }
  // One row more than the page says whether another page follows.
  filter.limit = *limit + 1;
  auto rows = containers->list_containers(filter);
  if (!rows) return send_failure(res, rows.error());
  json out{{"containers", json::array()}};
  for (std::size_t i = 0; i < rows->size() && i < *limit; ++i) {
    out["containers"].push_back(container_summary_json((*rows)[i]));
  }
  if (rows->size() > *limit) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string next;
    for (unsigned char b : (*rows)[*limit - 1].id) {
      next.push_back(kHex[b >> 4]);
      next.push_back(kHex[b & 0xf]);
    }
    out["next_cursor"] = next;
  }
  send_json(res, 200, out);
}

void Service::Impl::handle_container(const httplib::Request& req, httplib::Response& res) {
  const std::string id = req.matches[1];
  auto record = containers->get_container_result(id);
  if (!record) return send_failure(res, record.error());
  if (!*record) return send_error(res, 404, "not_found", "no result for container " + id);
  // The runtime report's entry for the container, as `hashsieve runtime` writes it.
  json out = parse_embedded((*record)->result_json);
  if (out.is_object() && !out.contains("scanned_at")) out["scanned_at"] = (*record)->scanned_at;
  send_json(res, 200, out);
}

std::unique_ptr<RuntimeThread> Service::Impl::make_runtime() {
  RuntimeThread::Hooks hooks;
  Gauge* engine_up = &metrics.gauge("hashsieve_runtime_engine_up", "1 while the container engine answers");
  hooks.on_connect_error = [this, engine_up](const Error& e) {
    engine_up->set(0);
    metrics.counter("hashsieve_runtime_errors_total", "runtime scanner failures by kind", {{"kind", "engine"}}).add();
    log_line("runtime: " + e.message() + " (retrying in " + std::to_string(config.runtime.connect_retry.count()) +
             " ms)");
  };
  hooks.on_connected = [this, engine_up] {
    engine_up->set(1);
    log_line("runtime: watching " + config.runtime.engine.host);
  };
  hooks.runner.on_tick = [this, engine_up](const runtime::TickResult& t) {
    const bool ok = t.errors.empty();
    engine_up->set(ok ? 1 : 0);
    metrics.counter("hashsieve_runtime_sweeps_total", "runtime scanner ticks by result", {{"result", ok ? "ok" : "error"}})
        .add();
    if (!ok) {
      metrics.counter("hashsieve_runtime_errors_total", "runtime scanner failures by kind", {{"kind", "engine"}}).add();
    }
  };
  hooks.runner.on_scan = [this](const runtime::ContainerScan& scan) {
    metrics
        .counter("hashsieve_runtime_scans_total", "container scans by verdict",
                 {{"verdict", std::string(scan::to_string(scan.verdict))}})
        .add();
    metrics.counter("hashsieve_runtime_errors_total", "runtime scanner failures by kind", {{"kind", "container"}})
        .add(scan.errors.size());
    // A third-party scanner's failure on a file is recorded as
    // "<scanner name>: ..." (runtime::DriftScanner::classify_bytes).
    for (const auto& e : scan.errors) {
      for (const auto& s : external_scanners.scanners) {
        if (e.message.starts_with(s->name() + ": ")) scanner_errors(s->name()).add();
      }
    }
  };
  // Registered up front so /metrics shows the series before the first event.
  for (const char* kind : {"engine", "container"}) {
    metrics.counter("hashsieve_runtime_errors_total", "runtime scanner failures by kind", {{"kind", kind}});
  }
  for (const char* result : {"ok", "error"}) {
    metrics.counter("hashsieve_runtime_sweeps_total", "runtime scanner ticks by result", {{"result", result}});
  }
  return std::make_unique<RuntimeThread>(config.runtime, sets, paths.get(), external_scanners.pointers(),
                                         *containers, store.get(), std::move(hooks));
}

Counter& Service::Impl::scanner_errors(const std::string& name) {
  return metrics.counter("hashsieve_scanner_errors_total", "files a third-party scanner failed on, by scanner",
                         {{"name", name}});
}

// Fails on the first scanner that cannot be opened (a missing rules
// directory, a clamd that does not answer): a scanner the operator asked for
// is never silently left out (ADR 0024).
Status Service::Impl::open_external_scanners() {
  auto opened = scanners::open_scanners(config.scanners.engines);
  if (!opened) return std::move(opened).error().with_context("opening the third-party scanners (scanners:)");
  external_scanners = std::move(*opened);
  for (const auto& w : external_scanners.warnings) log_line("scanners: warning: " + w.message);
  for (const auto& s : external_scanners.scanners) {
    metrics
        .gauge("hashsieve_scanner_info", "a configured third-party scanner: engine and signature versions",
               {{"name", s->name()}, {"version", s->version()}, {"signature_version", s->signature_version()}})
        .set(1);
    scanner_errors(s->name());  // the series shows before the first error
    log_line("scanner " + s->name() + " " + s->version() + " (" + s->signature_version() + ")");
  }
  if (!external_scanners.scanners.empty()) {
    std::vector<std::string> uses;
    if (config.runtime.enabled) uses.emplace_back("drifted files of running containers");
    if (config.scanners.image_scans) uses.emplace_back("unknown files of images (scanners.image_scans)");
    std::string text = uses.empty() ? "nothing: neither runtime.enabled nor scanners.image_scans is set" : uses[0];
    if (uses.size() > 1) text += " and " + uses[1];
    log_line("scanners run on " + text);
  }
  return {};
}

void Service::Impl::handle_ready(const httplib::Request&, httplib::Response& res) {
  if (!ready.load()) return send_error(res, 503, "unavailable", "starting or stopping");
  auto st = queue->stats();
  if (!st) return send_error(res, 503, "unavailable", st.error().message());
  auto counts = jobs->count_jobs_by_state();
  if (!counts) return send_error(res, 503, "unavailable", counts.error().message());
  send_json(res, 200, json{{"status", "ready"}, {"refsets", sets.size()}, {"queue_depth", st->depth()}});
}

void Service::Impl::register_routes() {
  // Every handler runs behind this guard: no exception leaves the adapter.
  auto guarded = [this](auto method, bool needs_auth) {
    return [this, method, needs_auth](const httplib::Request& req, httplib::Response& res) {
      try {
        if (needs_auth && !api_authorized(req)) {
          res.set_header("WWW-Authenticate", "Bearer realm=\"hashsieve\"");
          return send_error(res, 401, "unauthenticated", "missing or wrong bearer token");
        }
        (this->*method)(req, res);
      } catch (const std::exception& e) {
        send_error(res, 500, "internal", std::string("internal error: ") + e.what());
      }
    };
  };
  server.Post("/v1/registry/events", guarded(&Impl::handle_events, false));
  server.Get("/v1/images", guarded(&Impl::handle_list_images, true));
  server.Get(R"(/v1/images/(sha256:[0-9a-f]{64}))", guarded(&Impl::handle_image, true));
  server.Get(R"(/v1/images/(sha256:[0-9a-f]{64})/files)", guarded(&Impl::handle_image_files, true));
  server.Get(R"(/v1/jobs/(\d+))", guarded(&Impl::handle_job, true));
  server.Post("/v1/scans", guarded(&Impl::handle_scan, true));
  server.Get("/v1/refsets", guarded(&Impl::handle_refsets, true));
  server.Get("/v1/containers", guarded(&Impl::handle_list_containers, true));
  server.Get(R"(/v1/containers/([0-9A-Za-z_.-]{1,128}))", guarded(&Impl::handle_container, true));
  server.Get("/readyz", guarded(&Impl::handle_ready, false));
  server.Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("{\"status\":\"ok\"}", "application/json");
  });
  server.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    try {
      res.set_content(metrics.render(), "text/plain; version=0.0.4");
    } catch (const std::exception& e) {
      send_error(res, 500, "internal", e.what());
    }
  });
  server.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
    send_error(res, 500, "internal", "internal error");
  });
  server.set_payload_max_length(kMaxEnvelopeBytes);
  // Without TCP_NODELAY a response written in two parts waits for the
  // client's delayed ACK (~40 ms per request on Linux).
  server.set_tcp_nodelay(true);
  const int threads = config.listen.threads;
  server.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<std::size_t>(threads)); };
}

Service::Service() : impl_(std::make_unique<Impl>()) {}
Service::~Service() { stop(); }

Result<std::unique_ptr<Service>> Service::create(ServiceConfig config) {
  std::unique_ptr<Service> service(new Service());
  Impl& s = *service->impl_;
  s.config = std::move(config);
  // First: a scanner that cannot be opened is a configuration error, found
  // before anything is created on disk.
  if (auto st = s.open_external_scanners(); !st) return std::move(st).error();
  std::error_code ec;
  std::filesystem::create_directories(s.config.data_dir, ec);
  if (ec) return Error(ErrorCode::io_error, "creating data dir " + s.config.data_dir + ": " + ec.message());
  // `store:` / `queue:` empty: the embedded backends in data_dir, honouring
  // storage.fsync; otherwise PostgreSQL / RabbitMQ (docs/scale-out.md).
  if (s.config.store.empty()) {
    auto jobs = store::open_sqlite_job_store(s.config.data_dir, nullptr, s.config.storage.fsync);
    if (!jobs) return std::move(jobs).error().with_context("opening the job store");
    s.jobs = std::move(*jobs);
    // The layer-facts cache is an optimisation; scans run without it.
    if (auto st = store::open_sqlite_store(s.config.data_dir); st.ok()) {
      s.store = std::move(st).value();
    } else {
      log_line("warning: no layer cache: " + st.error().message());
    }
    auto containers = store::open_sqlite_container_store(s.config.data_dir);
    if (!containers) return std::move(containers).error().with_context("opening the container store");
    s.containers = std::move(*containers);
  } else {
    auto stores = store::open_store(s.config.store);
    if (!stores) return std::move(stores).error().with_context("opening the job store");
    // Container results go where the jobs go, so serve instances sharing a
    // PostgreSQL see each other's containers; a backend without a container
    // store is an error, not a silent fallback to <data_dir>/store.db.
    if (stores->containers == nullptr) {
      return Error(ErrorCode::unsupported,
                   "store: the " + stores->backend +
                       " store backend has no container store (running-container results)");
    }
    s.jobs = std::move(stores->jobs);
    s.store = std::move(stores->store);
    s.containers = std::move(stores->containers);
  }
  queue::QueueOptions queue_options;
  queue_options.durability = s.config.storage.fsync ? queue::Durability::fsync : queue::Durability::process_crash;
  queue::RabbitMqOptions rabbit;
  rabbit.prefetch = static_cast<std::uint16_t>(std::max(1, s.config.workers.count));
  auto queue = queue::open_queue(s.config.queue, s.config.data_dir, queue_options, rabbit);
  if (!queue) return std::move(queue).error().with_context("opening the job queue");
  s.queue = std::move(*queue);
  auto catalog = refset::RefsetCatalog::open(s.config.data_dir);
  if (!catalog) return std::move(catalog).error().with_context("opening the reference sets");
  std::vector<std::string> names = s.config.refsets;
  if (names.empty()) {
    auto all = catalog->list();
    if (!all) return std::move(all).error().with_context("listing the reference sets");
    for (const auto& m : *all) names.push_back(m.name);
  }
  for (const auto& name : names) {
    auto manifest = catalog->manifest(name);
    if (!manifest) return std::move(manifest).error().with_context("reference set " + name);
    auto loaded = catalog->load(name);
    if (!loaded) return std::move(loaded).error().with_context("loading reference set " + name);
    s.set_manifests.push_back(std::move(*manifest));
    s.sets.push_back(std::move(loaded).value());
  }
  s.paths = scan::make_refset_path_index(s.sets);
  s.register_metrics();
  GroupCommitOptions commit_options;
  commit_options.on_batch = [impl = &s](std::size_t requests, std::chrono::nanoseconds, bool) {
    impl->commit_batch_size->observe(static_cast<double>(requests));
  };
  s.committer = std::make_unique<GroupCommitter>(*s.jobs, *s.queue, std::move(commit_options));
  s.enqueuer = std::make_unique<StoreEnqueuer>(*s.committer, s.config.registry.host, s.metrics);
  worker::SweepOptions sweep;
  sweep.orphan_grace = std::chrono::duration_cast<std::chrono::milliseconds>(s.config.sweep.orphan_grace);
  sweep.stale_after = std::chrono::duration_cast<std::chrono::milliseconds>(s.config.sweep.stale_after);
  s.sweeper = std::make_unique<SweepThread>(
      [impl = &s, sweep] {
        auto r = worker::sweep_queue(*impl->jobs, *impl->queue, sweep);
        if (!r) {
          impl->metrics.counter("hashsieve_sweeps_total", "queue sweeps by result", {{"result", "error"}}).add();
          log_line("queue sweep failed: " + r.error().message());
          return;
        }
        impl->metrics.counter("hashsieve_sweeps_total", "queue sweeps by result", {{"result", "ok"}}).add();
        impl->metrics.counter("hashsieve_sweep_republished_total", "jobs published again by the sweep",
                              {{"kind", "orphan"}})
            .add(r->orphans);
        impl->metrics.counter("hashsieve_sweep_republished_total", "jobs published again by the sweep",
                              {{"kind", "stale"}})
            .add(r->stale);
        if (r->orphans + r->stale > 0) {
          log_line("sweep re-published " + std::to_string(r->orphans) + " unpublished and " +
                   std::to_string(r->stale) + " stale jobs");
        }
      },
      std::chrono::duration_cast<std::chrono::milliseconds>(s.config.sweep.interval));

  worker::WorkerEnvironment env;
  env.store = s.store.get();
  env.jobs = s.jobs.get();
  env.queue = s.queue.get();
  env.sets = &s.sets;
  env.paths = s.paths.get();
  worker::WorkerOptions options;
  options.workers = static_cast<unsigned>(s.config.workers.count);
  options.source.insecure = s.config.registry.insecure;
  options.source.ca_file = s.config.registry.ca_file;
  options.source.credentials.username = s.config.registry.username;
  options.source.credentials.password = s.config.registry.password;
  options.source.credentials.bearer_token = s.config.registry.token;
  options.source.scratch_dir = s.config.data_dir + "/tmp";
  if (s.config.scanners.image_scans) options.scan.external_scanners = s.external_scanners.pointers();
  Impl* impl = &s;
  options.on_outcome = [impl](const worker::JobOutcome& o) {
    impl->metrics.counter("hashsieve_job_outcomes_total", "finished scan attempts by outcome",
                          {{"state", store::to_string(o.state)}})
        .add();
    impl->scan_duration->observe(std::chrono::duration<double>(o.duration).count());
    impl->bytes_hashed->add(o.bytes_hashed);
    for (const auto& v : o.verdicts) {
      impl->metrics.counter("hashsieve_verdicts_total", "scanned images by verdict", {{"verdict", v}}).add();
    }
  };
  options.on_queue_error = [](const Error* e) {
    log_line(e != nullptr ? std::string("job queue: ").append(e->message()).append(" (retrying)")
                        : std::string("job queue: receiving again"));
  };
  // workers.count 0: a pure front end; `hashsieve worker` processes consume.
  if (s.config.workers.count > 0) s.workers = std::make_unique<worker::WorkerPool>(env, std::move(options));

  if (s.config.crawler.enabled && !s.config.registry.host.empty()) {
    auto source = make_registry_catalog_source(s.config.registry.host, s.config.registry.insecure,
                                               s.config.registry.username, s.config.registry.password,
                                               s.config.registry.token, s.config.registry.ca_file);
    if (!source) return std::move(source).error().with_context("catalog crawler");
    s.crawler = std::make_unique<CrawlerThread>(
        std::move(*source), *s.enqueuer, s.config.crawler.page_size,
        std::chrono::duration_cast<std::chrono::milliseconds>(s.config.crawler.interval),
        [impl](const Result<WithWarnings<CrawlStats>>& r) {
          if (!r) {
            impl->metrics.counter("hashsieve_crawls_total", "catalog walks by result", {{"result", "error"}}).add();
            log_line("crawl failed: " + r.error().message());
            return;
          }
          impl->metrics.counter("hashsieve_crawls_total", "catalog walks by result", {{"result", "ok"}}).add();
          impl->metrics.counter("hashsieve_crawl_enqueued_total", "jobs created by the crawler").add(r->value.enqueued);
          for (const auto& w : r->warnings) log_line("crawl warning: " + w.message);
        });
  }
  if (s.config.runtime.enabled) s.runtime_scanner = s.make_runtime();
  s.register_routes();
  return service;
}

Status Service::start() {
  Impl& s = *impl_;
  if (s.running.load()) return Error(ErrorCode::invalid_argument, "service already started");
  if (s.config.listen.port == 0) {
    s.port = s.server.bind_to_any_port(s.config.listen.address);
  } else {
    s.port = s.server.bind_to_port(s.config.listen.address, s.config.listen.port) ? s.config.listen.port : -1;
  }
  if (s.port <= 0) {
    return Error(ErrorCode::unavailable, "cannot listen on " + s.config.listen.address + ":" +
                                             std::to_string(s.config.listen.port));
  }
  // Jobs whose publish was cut short by a crash get their message now.
  if (auto n = worker::requeue_orphans(*s.jobs, *s.queue,
                                      std::chrono::duration_cast<std::chrono::milliseconds>(s.config.sweep.orphan_grace));
      !n) {
    return std::move(n).error().with_context("re-publishing orphaned jobs");
  } else if (*n > 0) {
    log_line("re-published " + std::to_string(*n) + " orphaned jobs");
  }
  if (s.workers) {
    if (auto st = s.workers->start(); !st) return std::move(st).error().with_context("starting the workers");
  }
  if (s.crawler) s.crawler->start();
  s.sweeper->start();
  if (s.runtime_scanner) s.runtime_scanner->start();
  s.running = true;
  s.server_thread = std::thread([&s] { s.server.listen_after_bind(); });
  // httplib's stop() does nothing until the listen loop has started, so a
  // stop() right after start() would leave the loop running for ever.
  while (!s.server.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  s.ready = true;
  log_line("listening on " + s.config.listen.address + ":" + std::to_string(s.port));
  return {};
}

void Service::stop() {
  Impl& s = *impl_;
  std::lock_guard lock(s.stop_mutex);
  if (!s.running.exchange(false)) return;
  s.ready = false;
  s.server.stop();  // closes the listener; handlers in progress finish first
  if (s.server_thread.joinable()) s.server_thread.join();
  if (s.crawler) s.crawler->stop();
  // Waits for the tick in progress (its results are stored), before the
  // stores close with the Impl.
  if (s.runtime_scanner) s.runtime_scanner->stop();
  // Every handler has answered and the crawler is done: nothing submits any
  // more. stop() still commits whatever was accepted (none is left behind).
  s.committer->stop();
  s.sweeper->stop();
  if (!s.workers) {
    log_line("stopped (front end: no workers)");
    return;
  }
  const auto report =
      s.workers->stop(std::chrono::duration_cast<std::chrono::milliseconds>(s.config.workers.stop_deadline));
  log_line("stopped: " + std::to_string(report.finished) + " jobs finished during the drain, " +
           std::to_string(report.released) + " released back to the queue");
}

int Service::port() const { return impl_->port; }
void Service::trigger_crawl() {
  if (impl_->crawler) impl_->crawler->trigger();
}
MetricsRegistry& Service::metrics() { return impl_->metrics; }
const ServiceConfig& Service::config() const { return impl_->config; }

}  // namespace hashsieve::service
