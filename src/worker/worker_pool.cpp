// The worker pool: receive -> job state machine -> scan -> results -> ack.
// See worker_pool.h for the contract and ADR 0009 for why it is shaped so.
#include "hashsieve/worker/worker_pool.h"

#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>

#include "hashsieve/scan/report.h"
#include "resolved_json.h"

namespace hashsieve::worker {
namespace {

using store::JobState;

// Failures that may pass: the registry or the network (unavailable) and the
// disk or database (io_error). Everything else is a property of the image or
// the request and would fail again.
bool is_retryable(ErrorCode code) { return code == ErrorCode::unavailable || code == ErrorCode::io_error; }

std::string image_key(const image::ResolvedImage& image) {
  return !image.manifest_digest.empty() ? image.manifest_digest : image.config_digest;
}

// A rescan's source: layers come from the facts cache (the scanner asks the
// store first); only when a layer must be read (its facts are missing, or a
// now-unknown file lacks similarity digests, ADR 0007) is the image's source
// opened and resolved, once, and the same image found in it by digest.
class CacheFirstSource final : public image::ImageSource {
 public:
  CacheFirstSource(std::string reference, image::SourceOptions options)
      : reference_(std::move(reference)), options_(std::move(options)) {
    options_.platforms.all_platforms = true;  // the stored image may be any platform
  }

  Result<std::vector<image::ResolvedImage>> resolve() override {
    return Error(ErrorCode::internal, "a rescan walks the stored resolved image; resolve() is not used");
  }

  Result<std::unique_ptr<image::LayerEntries>> open_layer(const image::ResolvedImage& image,
                                                          std::size_t index) override {
    if (!real_) {
      auto src = image::open_image_source(reference_, options_);
      if (!src.ok()) return std::move(src).error().with_context("rescan needs layer " + std::to_string(index));
      auto images = (*src)->resolve();
      if (!images.ok()) return std::move(images).error().with_context("rescan needs layer " + std::to_string(index));
      real_ = std::move(src).value();
      resolved_ = std::move(images).value();
    }
    for (const auto& r : resolved_) {
      if (image_key(r) == image_key(image)) return real_->open_layer(r, index);
    }
    return Error(ErrorCode::not_found, "rescan: " + reference_ + " no longer has image " + image_key(image) +
                                           ", and layer " + std::to_string(index) + " is not cached");
  }

 private:
  std::string reference_;
  image::SourceOptions options_;
  std::unique_ptr<image::ImageSource> real_;
  std::vector<image::ResolvedImage> resolved_;
};

}  // namespace

struct WorkerPool::Impl {
  Impl(WorkerEnvironment e, WorkerOptions o)
      : env(e), opts(std::move(o)), clock(opts.clock != nullptr ? *opts.clock : system_clock()) {}

  WorkerEnvironment env;
  WorkerOptions opts;
  const Clock& clock;
  std::string fingerprint;

  std::vector<std::thread> threads;
  bool running = false;
  std::atomic<bool> stopping{false};
  std::atomic<bool> cancel{false};
  std::mutex m;
  std::condition_variable idle;
  int in_flight = 0;
  std::size_t finished = 0;  // jobs that reached done/failed
  std::size_t released = 0;  // jobs given back at a stop deadline
  // The start-up orphan sweep, put off while the store was unavailable.
  std::atomic<bool> sweep_pending{false};
  std::mutex sweep_m;
  std::chrono::steady_clock::time_point sweep_next{};
  std::chrono::milliseconds sweep_delay{0};

  Status check_env() const {
    if (env.jobs == nullptr || env.queue == nullptr || env.sets == nullptr) {
      return Error(ErrorCode::invalid_argument, "worker pool: jobs, queue and sets are required");
    }
    return {};
  }

  std::chrono::milliseconds backoff(std::uint32_t attempt) const {
    auto d = opts.retry_initial;
    for (std::uint32_t i = 1; i < attempt && d < opts.retry_max; ++i) d *= 2;
    return std::min(d, opts.retry_max);
  }

  void notify(std::int64_t id, JobState s) {
    if (opts.on_state) opts.on_state(id, s);
  }

  std::chrono::milliseconds next_store_delay(std::chrono::milliseconds d) const {
    return std::min(d * 2, std::max(opts.store_retry_max, opts.store_retry_initial));
  }

  // Sleeps `d` in short slices; false when stop() passed its deadline meanwhile.
  bool pause(std::chrono::milliseconds d) {
    const auto until = std::chrono::steady_clock::now() + d;
    while (!cancel.load()) {
      const auto now = std::chrono::steady_clock::now();
      if (now >= until) return true;
      std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(until - now, std::chrono::milliseconds(50)));
    }
    return false;
  }

  // Runs a job-store call for delivery `d`, waiting out a store outage: an
  // unavailable answer is repeated with backoff while the delivery stays
  // unacked (its lease extended), so the outage costs the job no attempt.
  // Returns the last answer: success, another error, or unavailable when
  // stop() passed its deadline during the outage.
  template <typename F>
  auto persist(const queue::Delivery& d, F&& call) -> decltype(call()) {
    auto delay = opts.store_retry_initial;
    while (true) {
      auto r = call();
      if (r.ok() || r.error().code() != ErrorCode::unavailable || cancel.load()) return r;
      if (opts.on_store_wait) opts.on_store_wait(r.error(), delay);
      if (!pause(delay)) return r;
      (void)env.queue->extend_lease(d);
      delay = next_store_delay(delay);
    }
  }

  // Moves the job and tells the observer; a failed state write is returned.
  Status move(const queue::Delivery& d, std::int64_t id, JobState to, const std::optional<Error>& error = {}) {
    auto r = persist(d, [&] { return env.jobs->transition(id, to, error); });
    if (!r.ok()) return std::move(r).error();
    notify(id, to);
    return {};
  }

  // The start-up sweep put off by a store outage, repeated with backoff by
  // whichever thread comes first.
  void retry_sweep() {
    if (!sweep_pending.load()) return;
    std::unique_lock lock(sweep_m, std::try_to_lock);
    if (!lock.owns_lock() || std::chrono::steady_clock::now() < sweep_next) return;
    auto n = requeue_orphans(*env.jobs, *env.queue, opts.orphan_grace, &clock);
    if (n.ok()) {
      sweep_pending = false;
      return;
    }
    sweep_delay = next_store_delay(sweep_delay);
    sweep_next = std::chrono::steady_clock::now() + sweep_delay;
    if (opts.on_store_wait) opts.on_store_wait(n.error(), sweep_delay);
  }

  void run() {
    std::optional<std::string> reported;  // the queue error last reported, if it persists
    while (!stopping.load()) {
      retry_sweep();
      auto r = process_one(opts.receive_wait);
      if (!r.ok()) {
        if (opts.on_queue_error && reported != r.error().message()) {
          reported = r.error().message();
          opts.on_queue_error(&r.error());
        }
        // The queue itself failed (a broker away, a locked database): back
        // off instead of spinning.
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
      } else if (reported) {
        reported.reset();
        if (opts.on_queue_error) opts.on_queue_error(nullptr);
      }
    }
  }

  Result<bool> process_one(std::chrono::milliseconds wait) {
    auto d = env.queue->receive(wait);
    if (!d.ok()) return std::move(d).error();
    if (!d->has_value()) return false;
    {
      std::lock_guard lock(m);
      ++in_flight;
    }
    if (stopping.load() && running) {
      // Received while the pool was stopping: give it back untouched.
      (void)env.queue->release(**d);
    } else {
      handle(**d);
    }
    {
      std::lock_guard lock(m);
      --in_flight;
    }
    idle.notify_all();
    return true;
  }

  void handle(const queue::Delivery& d) {
    const auto t0 = std::chrono::steady_clock::now();
    // The lease length, as granted (the queue's option, not ours to know).
    const std::int64_t lease_ms = std::max<std::int64_t>(3, d.lease_expires_ms - clock.now_ms());
    JobOutcome out;
    auto report = [&](JobState s, const std::string& code) {
      out.state = s;
      out.error_code = code;
      out.duration = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
      if (s == JobState::done || s == JobState::failed) {
        std::lock_guard lock(m);
        ++finished;
      }
      if (opts.on_outcome) opts.on_outcome(out);
    };
    auto id = parse_job_message(d.body);
    if (!id.ok()) {
      // Not ours to interpret: keep it for a human, never retry it.
      (void)env.queue->dead_letter(d, id.error().message());
      return;
    }
    out.job_id = *id;
    // Given back uncounted: stop() passed its deadline during a store outage.
    auto give_back = [&](const Error& err) {
      (void)env.queue->release(d);
      {
        std::lock_guard lock(m);
        ++released;
      }
      report(JobState::queued, std::string(hashsieve::to_string(err.code())));
    };
    auto job = persist(d, [&] { return env.jobs->get_job(*id); });
    if (!job.ok()) {
      if (job.error().code() == ErrorCode::unavailable) return give_back(job.error());
      (void)env.queue->retry(d, backoff(d.attempt), job.error().message());
      return;
    }
    if (!job->has_value() || store::is_terminal((*job)->state)) {
      // Idempotence: a redelivered message of a finished (or deleted) job is
      // settled without scanning again.
      (void)env.queue->ack(d);
      return;
    }
    auto started = persist(d, [&] { return env.jobs->begin_attempt(*id); });
    if (!started.ok()) {
      if (started.error().code() == ErrorCode::unavailable) return give_back(started.error());
      (void)env.queue->retry(d, backoff(d.attempt), started.error().message());
      return;
    }
    notify(*id, JobState::fetching);

    bool superseded = false;
    auto st = run_job(*started, d, lease_ms, out, superseded);
    if (superseded) {
      // Another attempt took the job over (a duplicate message, or this
      // worker's lease expired while it was slow): that attempt owns the
      // job's state now. Settle this delivery and touch nothing.
      (void)env.queue->ack(d);
      return;
    }
    if (st.ok()) {
      if (auto done = move(d, *id, JobState::done); !done.ok()) {
        // The results are stored but the job is not marked done. Stopped
        // during an outage: give it back; another refusal: a counted retry
        // (never hold the delivery: a broker would never redeliver it).
        if (done.error().code() == ErrorCode::unavailable) return give_back(done.error());
        (void)env.queue->retry(d, backoff(d.attempt), done.error().message());
        report(JobState::queued, std::string(hashsieve::to_string(done.error().code())));
        return;
      }
      (void)env.queue->ack(d);
      report(JobState::done, "");
      return;
    }
    const Error& err = st.error();
    const std::string code = std::string(hashsieve::to_string(err.code()));
    if (cancel.load() && err.code() == ErrorCode::unavailable) {
      // Cut short by stop(): persisted as queued, the message given back
      // without counting an attempt; the next pool resumes it.
      (void)move(d, *id, JobState::queued, err);
      (void)env.queue->release(d);
      {
        std::lock_guard lock(m);
        ++released;
      }
      report(JobState::queued, code);
      return;
    }
    if (is_retryable(err.code())) {
      (void)move(d, *id, JobState::queued, err);
      auto dead = env.queue->retry(d, backoff(d.attempt), err.message());
      if (dead.ok() && *dead) {
        (void)move(d, *id, JobState::failed,
                   Error(err.code(), "gave up after " + std::to_string(d.attempt) + " attempts: " + err.message()));
        report(JobState::failed, code);
      } else {
        report(JobState::queued, code);
      }
      return;
    }
    (void)move(d, *id, JobState::failed, err);
    (void)env.queue->ack(d);
    report(JobState::failed, code);
  }

  // Resolve (or load the stored images of a rescan), hash, match, store.
  Status run_job(const store::JobRecord& job, const queue::Delivery& d, std::int64_t lease_ms, JobOutcome& out,
                 bool& superseded) {
    // A state write refused as illegal means another attempt moved the job.
    auto step = [&](JobState to) -> Status {
      auto cur = persist(d, [&] { return env.jobs->get_job(job.id); });
      if (cur.ok() && cur->has_value() && (*cur)->attempts != job.attempts) {
        superseded = true;
        return Error(ErrorCode::internal, "job " + std::to_string(job.id) + " taken over by another attempt");
      }
      auto st = move(d, job.id, to);
      if (!st.ok() && st.error().code() == ErrorCode::invalid_argument) superseded = true;
      return st;
    };
    std::vector<image::ResolvedImage> images;
    std::unique_ptr<image::ImageSource> source;
    if (job.source == store::JobSource::rescan) {
      auto stored = persist(d, [&] { return stored_images(job); });
      if (!stored.ok()) return std::move(stored).error();
      images = std::move(stored).value();
      if (!images.empty()) source = std::make_unique<CacheFirstSource>(job.reference, opts.source);
    }
    if (images.empty()) {
      auto src = image::open_image_source(job.reference, opts.source);
      if (!src.ok()) return std::move(src).error().with_context(job.reference);
      auto resolved = (*src)->resolve();
      if (!resolved.ok()) return std::move(resolved).error().with_context(job.reference);
      source = std::move(src).value();
      images = std::move(resolved).value();
    }
    if (auto st = step(JobState::hashing); !st.ok()) return st;

    // A heartbeat: when a third of the lease is used up, scan progress
    // renews it, so a long scan keeps its message.
    std::int64_t expires = d.lease_expires_ms;
    scan::ScanOptions so = opts.scan;
    so.threads = std::max(1u, opts.scan_threads);
    so.cancelled = [this] { return cancel.load(); };
    so.progress = [&](const scan::ScanProgress&) {
      const std::int64_t now = clock.now_ms();
      if (now >= expires - lease_ms * 2 / 3 && env.queue->extend_lease(d).ok()) expires = now + lease_ms;
    };
    scan::Scanner scanner(env.store, *env.sets, env.paths, so);
    struct Done {
      scan::ImageReport report;
      std::int64_t duration_ms;
    };
    std::vector<Done> reports;
    for (const auto& image : images) {
      if (cancel.load()) return Error(ErrorCode::unavailable, "scan cancelled before " + image_key(image));
      const auto t0 = std::chrono::steady_clock::now();
      auto r = scanner.scan(*source, image);
      if (!r.ok()) return std::move(r).error().with_context(job.reference + " (" + image.platform.to_string() + ")");
      const auto ms =
          std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
      reports.push_back({std::move(r).value(), ms});
    }
    // Matching ran inside each scan; this phase records the verdicts.
    if (auto st = step(JobState::matching); !st.ok()) return st;
    for (const auto& [report, ms] : reports) {
      const std::int64_t now = clock.now_ms();
      store::ImageResult res;
      res.image_digest = image_key(report.image);
      if (res.image_digest.empty()) {
        return Error(ErrorCode::unsupported, job.reference + ": the image has neither a manifest nor a config digest"
                                             " (dir: sources cannot be kept as results)");
      }
      res.repository = !job.repository.empty() ? job.repository : report.image.repository;
      res.reference = job.reference;
      res.platform = report.image.platform.to_string();
      res.job_id = job.id;
      res.scanned_ms = now;
      res.verdict = std::string(scan::to_string(report.summary.verdict));
      res.summary_json = scan::summary_json(report.summary);
      scan::JsonReportOptions jo;
      jo.tool_version = opts.tool_version;
      jo.scanned_at = format_utc_ms(now);
      res.report_json = scan::write_json_report({report}, jo);
      res.resolved_json = resolved_to_json(report.image);
      res.refset_fingerprint = fingerprint;
      res.bytes_hashed = report.stats.bytes_hashed;
      res.duration_ms = ms;
      std::vector<store::ImageFile> files;
      files.reserve(report.files.size());
      for (const auto& f : report.files) {
        store::ImageFile file;
        file.path = "/" + f.path;  // as the JSON report names it
        file.layer = static_cast<std::uint32_t>(f.layer);
        if (f.hidden_by) file.hidden_by = static_cast<std::uint32_t>(*f.hidden_by);
        file.size = f.size;
        file.sha256 = f.sha256;
        file.verdict = std::string(scan::to_string(f.verdict));
        file.evidence_json = scan::evidence_json(f.evidence);
        files.push_back(std::move(file));
      }
      if (auto st = persist(d, [&] { return env.jobs->save_image_result(res, files); }); !st.ok()) return st;
      out.bytes_hashed += report.stats.bytes_hashed;
      out.verdicts.push_back(res.verdict);
    }
    return {};
  }

  Result<std::vector<image::ResolvedImage>> stored_images(const store::JobRecord& job) {
    auto digests = env.jobs->job_images(job.id);
    if (!digests.ok()) return std::move(digests).error();
    if (digests->empty() && !job.manifest_digest.empty()) digests->push_back(job.manifest_digest);
    std::vector<image::ResolvedImage> out;
    for (const auto& digest : *digests) {
      auto img = env.jobs->get_image(digest);
      if (!img.ok()) return std::move(img).error();
      if (!img->has_value()) continue;
      auto resolved = resolved_from_json((*img)->resolved_json);
      if (!resolved.ok()) return std::move(resolved).error().with_context(digest);
      out.push_back(std::move(resolved).value());
    }
    return out;
  }
};

WorkerPool::WorkerPool(WorkerEnvironment env, WorkerOptions options)
    : impl_(std::make_unique<Impl>(env, std::move(options))) {
  if (impl_->env.sets != nullptr) {
    impl_->fingerprint = result_fingerprint(*impl_->env.sets, impl_->opts.scan.external_scanners);
  }
}

WorkerPool::~WorkerPool() { (void)stop(std::chrono::milliseconds(0)); }

Status WorkerPool::start() {
  if (auto st = impl_->check_env(); !st.ok()) return st;
  if (impl_->running) return Error(ErrorCode::invalid_argument, "worker pool: already running");
  // The start-up sweep: jobs whose publish a crash interrupted.
  // A store outage puts it off (the threads repeat it); anything else is a
  // misconfiguration worth refusing to start over.
  if (auto n = requeue_orphans(*impl_->env.jobs, *impl_->env.queue, impl_->opts.orphan_grace, &impl_->clock);
      !n.ok()) {
    if (n.error().code() != ErrorCode::unavailable) {
      return std::move(n).error().with_context("worker pool: requeueing orphaned jobs");
    }
    impl_->sweep_delay = impl_->opts.store_retry_initial;
    impl_->sweep_next = std::chrono::steady_clock::now() + impl_->sweep_delay;
    impl_->sweep_pending = true;
    if (impl_->opts.on_store_wait) impl_->opts.on_store_wait(n.error(), impl_->sweep_delay);
  }
  impl_->stopping = false;
  impl_->cancel = false;
  impl_->running = true;
  const unsigned n = std::max(1u, impl_->opts.workers);
  for (unsigned i = 0; i < n; ++i) impl_->threads.emplace_back([this] { impl_->run(); });
  return {};
}

StopReport WorkerPool::stop(std::chrono::milliseconds deadline) {
  StopReport report;
  if (!impl_->running) return report;
  std::size_t finished_before;
  {
    std::unique_lock lock(impl_->m);
    finished_before = impl_->finished;
    impl_->stopping = true;
    impl_->idle.wait_for(lock, deadline, [&] { return impl_->in_flight == 0; });
  }
  // Past the deadline: scans stop before their next layer and are released.
  impl_->cancel = true;
  for (auto& t : impl_->threads) t.join();
  impl_->threads.clear();
  impl_->running = false;
  std::lock_guard lock(impl_->m);
  report.finished = impl_->finished - finished_before;
  report.released = impl_->released;
  impl_->released = 0;
  return report;
}

Result<bool> WorkerPool::process_one(std::chrono::milliseconds wait) {
  if (auto st = impl_->check_env(); !st.ok()) return std::move(st).error();
  return impl_->process_one(wait);
}

}  // namespace hashsieve::worker
