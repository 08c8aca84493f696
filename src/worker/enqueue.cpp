// Enqueueing and the sweeps that make "row committed, message published" hold
// even across a crash between the two (ADR 0009).
#include <nlohmann/json.hpp>
#include <set>

#include "hashsieve/worker/enqueue.h"
#include "hashsieve/worker/worker_pool.h"

namespace hashsieve::worker {

queue::Message job_message(std::int64_t job_id) {
  return {"job:" + std::to_string(job_id), nlohmann::json{{"job_id", job_id}}.dump()};
}

Result<std::int64_t> parse_job_message(const std::string& body) {
  try {
    const auto j = nlohmann::json::parse(body);
    const auto id = j.at("job_id").get<std::int64_t>();
    if (id <= 0) return Error(ErrorCode::parse_error, "job message: job_id must be positive");
    return id;
  } catch (const nlohmann::json::exception& e) {
    return Error(ErrorCode::parse_error, std::string("job message: ") + e.what());
  }
}

namespace {

Status publish_job(store::JobStore& jobs, queue::JobQueue& queue, std::int64_t id) {
  if (auto st = queue.publish(job_message(id)); !st.ok()) {
    return std::move(st).error().with_context("publishing job " + std::to_string(id));
  }
  return jobs.mark_published(id);
}

}  // namespace

Result<Enqueued> enqueue_scan(store::JobStore& jobs, queue::JobQueue& queue, const store::JobRequest& request) {
  auto made = jobs.create_or_get_job(request);
  if (!made.ok()) return std::move(made).error();
  Enqueued out{made->job, made->created, made->requeued};
  // Whoever created (or re-queued) the run publishes it; a deduplicated
  // caller must not, or two racing webhooks would queue two messages and two
  // workers would scan the job at once. A failed publish is left to the sweep.
  if (out.created || out.requeued) {
    if (auto st = publish_job(jobs, queue, out.job.id); !st.ok()) return std::move(st).error();
    out.job.published = true;
  }
  return out;
}

Result<std::vector<Enqueued>> enqueue_scans(store::JobStore& jobs, queue::JobQueue& queue,
                                            const std::vector<store::JobRequest>& requests) {
  if (requests.empty()) return std::vector<Enqueued>{};
  const std::string what = std::to_string(requests.size()) + " scan requests";
  auto made = jobs.create_or_get_jobs(requests);
  if (!made.ok()) return std::move(made).error().with_context("committing the jobs of " + what);
  std::vector<Enqueued> out;
  out.reserve(made->size());
  std::vector<queue::Message> messages;
  std::vector<std::int64_t> ids;
  std::set<std::int64_t> publishing;
  for (auto& m : *made) {
    // As in enqueue_scan, only the creator (or re-queuer) of a run publishes;
    // a later request of the batch for the same job found it created.
    if ((m.created || m.requeued) && publishing.insert(m.job.id).second) {
      messages.push_back(job_message(m.job.id));
      ids.push_back(m.job.id);
    }
    out.push_back(Enqueued{std::move(m.job), m.created, m.requeued});
  }
  if (auto st = queue.publish_batch(messages); !st.ok()) {
    return std::move(st).error().with_context("publishing " + std::to_string(messages.size()) + " jobs of " + what);
  }
  if (auto st = jobs.mark_published_all(ids); !st.ok()) {
    return std::move(st).error().with_context("marking " + std::to_string(ids.size()) + " jobs published");
  }
  for (auto& e : out) {
    if (publishing.count(e.job.id) != 0) e.job.published = true;
  }
  return out;
}

Result<std::size_t> requeue_orphans(store::JobStore& jobs, queue::JobQueue& queue, std::chrono::milliseconds grace,
                                    const Clock* clock) {
  const Clock& c = clock != nullptr ? *clock : system_clock();
  const std::int64_t before = c.now_ms() - grace.count() + 1;  // last changed at least `grace` ago
  std::size_t n = 0;
  // Published rows leave the list, so each round sees new ones; a round that
  // publishes nothing (only rows younger than the grace) ends the sweep.
  for (;;) {
    auto batch = jobs.list_unpublished(100);
    if (!batch.ok()) return std::move(batch).error();
    std::size_t round = 0;
    for (const auto& job : *batch) {
      if (job.updated_ms >= before) continue;  // its creator may be publishing it right now
      if (auto st = publish_job(jobs, queue, job.id); !st.ok()) return std::move(st).error();
      ++round;
    }
    n += round;
    if (round == 0) return n;
  }
}

Result<std::size_t> requeue_stale(store::JobStore& jobs, queue::JobQueue& queue, std::chrono::milliseconds older_than,
                                  const Clock* clock) {
  const Clock& c = clock != nullptr ? *clock : system_clock();
  auto stale = jobs.list_stale(c.now_ms() - older_than.count(), 1000);
  if (!stale.ok()) return std::move(stale).error();
  // A duplicate message is harmless (a finished job is acked unscanned; two
  // deliveries of a running job scan it twice at worst), a lost one is not.
  for (const auto& job : *stale) {
    if (auto st = publish_job(jobs, queue, job.id); !st.ok()) return std::move(st).error();
  }
  return stale->size();
}

Result<SweepReport> sweep_queue(store::JobStore& jobs, queue::JobQueue& queue, const SweepOptions& options) {
  SweepReport report;
  auto orphans = requeue_orphans(jobs, queue, options.orphan_grace, options.clock);
  if (!orphans.ok()) return std::move(orphans).error().with_context("sweeping unpublished jobs");
  report.orphans = *orphans;
  auto stats = queue.stats();
  if (!stats.ok()) return std::move(stats).error().with_context("sweeping stale jobs");
  if (stats->depth() != 0) {
    report.stale_skipped = true;
    return report;
  }
  auto stale = requeue_stale(jobs, queue, options.stale_after, options.clock);
  if (!stale.ok()) return std::move(stale).error().with_context("sweeping stale jobs");
  report.stale = *stale;
  return report;
}

Result<std::size_t> rescan_changed(store::JobStore& jobs, queue::JobQueue& queue, const std::string& fingerprint) {
  std::set<std::int64_t> queued_jobs;
  auto images = jobs.list_images_not_matching(fingerprint, SIZE_MAX);
  if (!images.ok()) return std::move(images).error();
  for (const auto& image : *images) {
    auto job = jobs.get_job(image.job_id);
    if (!job.ok()) return std::move(job).error();
    store::JobRequest req;
    req.source = store::JobSource::rescan;
    req.force = true;
    if (job->has_value() && !(*job)->manifest_digest.empty()) {
      req.repository = (*job)->repository;
      req.reference = (*job)->reference;
      req.manifest_digest = (*job)->manifest_digest;
    } else {
      // A tag-only job: rescan the image that was scanned, not what the tag
      // names today.
      req.repository = image.repository;
      req.reference = image.reference;
      req.manifest_digest = image.image_digest;
    }
    auto queued = enqueue_scan(jobs, queue, req);
    if (!queued.ok()) return std::move(queued).error().with_context("rescanning " + image.image_digest);
    // Several platforms of one job share one job: count it once.
    if (queued->created || queued->requeued) queued_jobs.insert(queued->job.id);
  }
  return queued_jobs.size();
}

}  // namespace hashsieve::worker
