// The PostgreSQL JobStore. Transactions run at READ COMMITTED:
// - create_or_get_job dedupes through the unique indexes of migration 0001
//   with INSERT ... ON CONFLICT DO NOTHING; when a concurrent request won,
//   the next statement's snapshot sees its committed row, which is returned.
// - state changes lock the job row (SELECT ... FOR UPDATE) before checking
//   the edge, so two workers cannot both move a job from the same state.
// - save_image_result takes a transaction advisory lock on the image digest,
//   so the previous-verdict read and the replace are one step, as in SQLite.
#include <algorithm>
#include <limits>
#include <set>
#include <tuple>

#include "hashsieve/store/job_store.h"
#include "pg_pool.h"

namespace hashsieve::store {
namespace {

using pg::Connection;
using pg::Param;
using pg::PgResult;

constexpr std::int64_t kInt64Max = std::numeric_limits<std::int64_t>::max();

std::string clamp_limit(std::size_t limit) {
  return std::to_string(std::min<std::size_t>(limit, static_cast<std::size_t>(kInt64Max)));
}
std::string u64(std::uint64_t v) { return std::to_string(std::min<std::uint64_t>(v, kInt64Max)); }

// Same names as the SQLite backend writes (stable for API clients).
#define HS_JOB_COLUMNS                                                                                   \
  "id, repository, reference, manifest_digest, source, state, attempts, error_code, error_message," \
  " created_ms, updated_ms, started_ms, finished_ms, published, runs"
#define HS_IMAGE_SUMMARY_COLUMNS                                                                            \
  "image_digest, repository, reference, platform, job_id, scanned_ms, verdict, summary_json, '', ''," \
  " refset_fingerprint, bytes_hashed, duration_ms"
#define HS_IMAGE_COLUMNS                                                                                      \
  "image_digest, repository, reference, platform, job_id, scanned_ms, verdict, summary_json, report_json," \
  " resolved_json, refset_fingerprint, bytes_hashed, duration_ms"

Result<JobRecord> read_job(const PgResult& r, int i) {
  JobRecord j;
  // id, attempts, created_ms, updated_ms, started_ms, finished_ms, runs
  std::int64_t ints[7];
  const int cols[7] = {0, 6, 9, 10, 11, 12, 14};
  for (int k = 0; k < 7; ++k) {
    auto v = r.int64(i, cols[k]);
    if (!v.ok()) return std::move(v).error().with_context("reading a job");
    ints[k] = *v;
  }
  j.id = ints[0];
  j.repository = r.text(i, 1);
  j.reference = r.text(i, 2);
  j.manifest_digest = r.text(i, 3);
  auto source = parse_job_source(r.text(i, 4));
  if (!source.ok()) return std::move(source).error().with_context("job " + std::to_string(j.id));
  j.source = *source;
  auto state = parse_job_state(r.text(i, 5));
  if (!state.ok()) return std::move(state).error().with_context("job " + std::to_string(j.id));
  j.state = *state;
  j.attempts = static_cast<std::uint32_t>(ints[1]);
  j.error_code = r.text(i, 7);
  j.error_message = r.text(i, 8);
  j.created_ms = ints[2];
  j.updated_ms = ints[3];
  j.started_ms = ints[4];
  j.finished_ms = ints[5];
  j.published = r.boolean(i, 13);
  j.runs = static_cast<std::uint32_t>(ints[6]);
  return j;
}

Result<std::vector<JobRecord>> read_jobs(Result<PgResult> r) {
  if (!r.ok()) return std::move(r).error();
  std::vector<JobRecord> out;
  for (int i = 0; i < r->rows(); ++i) {
    auto j = read_job(*r, i);
    if (!j.ok()) return std::move(j).error();
    out.push_back(std::move(j).value());
  }
  return out;
}

Result<ImageResult> read_image(const PgResult& r, int i) {
  ImageResult m;
  m.image_digest = r.text(i, 0);
  m.repository = r.text(i, 1);
  m.reference = r.text(i, 2);
  m.platform = r.text(i, 3);
  auto job = r.int64(i, 4);
  auto scanned = r.int64(i, 5);
  auto bytes = r.int64(i, 11);
  auto duration = r.int64(i, 12);
  for (auto* v : {&job, &scanned, &bytes, &duration}) {
    if (!v->ok()) return std::move(*v).error().with_context("reading image " + m.image_digest);
  }
  m.job_id = *job;
  m.scanned_ms = *scanned;
  m.verdict = r.text(i, 6);
  m.summary_json = r.text(i, 7);
  m.report_json = r.text(i, 8);
  m.resolved_json = r.text(i, 9);
  m.refset_fingerprint = r.text(i, 10);
  m.bytes_hashed = static_cast<std::uint64_t>(*bytes);
  m.duration_ms = *duration;
  return m;
}

Result<std::vector<ImageResult>> read_images(Result<PgResult> r) {
  if (!r.ok()) return std::move(r).error();
  std::vector<ImageResult> out;
  for (int i = 0; i < r->rows(); ++i) {
    auto m = read_image(*r, i);
    if (!m.ok()) return std::move(m).error();
    out.push_back(std::move(m).value());
  }
  return out;
}

Error unknown_job(std::int64_t id) { return Error(ErrorCode::not_found, "job " + std::to_string(id) + " does not exist"); }

// LIKE pattern matching `s` literally anywhere (backslash is LIKE's escape).
std::string contains_pattern(const std::string& s) {
  std::string out = "%";
  for (char c : s) {
    if (c == '%' || c == '_' || c == '\\') out += '\\';
    out += c;
  }
  out += '%';
  return out;
}

class PostgresJobStore final : public JobStore {
 public:
  PostgresJobStore(std::shared_ptr<pg::Pool> pool, const Clock& clock) : pool_(std::move(pool)), clock_(clock) {}

  Result<CreatedJob> create_or_get_job(const JobRequest& request) override {
    if (auto st = check_request(request); !st.ok()) return std::move(st).error();
    return pg::in_transaction(*pool_, [&](Connection& c) { return create_or_get_in(c, request, clock_.now_ms()); });
  }

  Result<std::vector<CreatedJob>> create_or_get_jobs(const std::vector<JobRequest>& requests) override {
    for (const auto& r : requests) {
      if (auto st = check_request(r); !st.ok()) return std::move(st).error();
    }
    // Rows are locked (FOR UPDATE, inserts) in key order, so two batches from
    // two front ends cannot deadlock; results go back in request order.
    std::vector<std::size_t> order(requests.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
      const auto& x = requests[a];
      const auto& y = requests[b];
      return std::tie(x.repository, x.manifest_digest, x.reference) <
             std::tie(y.repository, y.manifest_digest, y.reference);
    });
    return pg::in_transaction(*pool_, [&](Connection& c) -> Result<std::vector<CreatedJob>> {
      const std::int64_t now = clock_.now_ms();
      std::vector<CreatedJob> out(requests.size());
      for (const std::size_t i : order) {
        auto one = create_or_get_in(c, requests[i], now);
        if (!one.ok()) return std::move(one).error();
        out[i] = std::move(one).value();
      }
      return out;
    });
  }

  static Status check_request(const JobRequest& request) {
    if (request.reference.empty() && request.manifest_digest.empty()) {
      return Error(ErrorCode::invalid_argument, "job store: a job needs a reference or a manifest digest");
    }
    return {};
  }

  // The body of create_or_get_job, inside the caller's transaction.
  Result<CreatedJob> create_or_get_in(Connection& c, const JobRequest& request, std::int64_t now) {
    const bool by_digest = !request.manifest_digest.empty();
    // A lost insert race means the winner's row is committed and the next
    // look finds it; a third round only if that row finished meanwhile.
    for (int round = 0; round < 3; ++round) {
      auto found = by_digest
                       ? c.run("hs_find_job_digest",
                               "SELECT " HS_JOB_COLUMNS " FROM jobs WHERE repository = $1 AND manifest_digest = $2"
                               " FOR UPDATE",
                               {request.repository, request.manifest_digest})
                       : c.run("hs_find_job_reference",
                               "SELECT " HS_JOB_COLUMNS " FROM jobs WHERE repository = $1 AND reference = $2 AND"
                               " manifest_digest = '' AND state NOT IN ('done', 'failed')"
                               " ORDER BY id DESC LIMIT 1 FOR UPDATE",
                               {request.repository, request.reference});
      if (!found.ok()) return std::move(found).error().with_context("looking up a job");
      if (found->rows() > 0) {
        auto existing = read_job(*found, 0);
        if (!existing.ok()) return std::move(existing).error();
        CreatedJob out{std::move(existing).value(), false, false};
        if (!(request.force && is_terminal(out.job.state))) return out;
        auto up = c.run("hs_requeue_job",
                        "UPDATE jobs SET state = 'queued', source = $1, reference = $2, error_code = '',"
                        " error_message = '', updated_ms = $3, started_ms = 0, finished_ms = 0, published = false,"
                        " runs = runs + 1, attempts = 0 WHERE id = $4 RETURNING " HS_JOB_COLUMNS,
                        {std::string(to_string(request.source)),
                         request.reference.empty() ? out.job.reference : request.reference, std::to_string(now),
                         std::to_string(out.job.id)});
        if (!up.ok()) return std::move(up).error().with_context("re-queueing a job");
        auto job = read_job(*up, 0);
        if (!job.ok()) return std::move(job).error();
        out.job = std::move(job).value();
        out.requeued = true;
        return out;
      }
      const std::vector<Param> values = {request.repository, request.reference, request.manifest_digest,
                                         std::string(to_string(request.source)), std::to_string(now)};
      auto ins = by_digest
                     ? c.run("hs_insert_job_digest",
                             "INSERT INTO jobs(repository, reference, manifest_digest, source, state, attempts,"
                             " error_code, error_message, created_ms, updated_ms, started_ms, finished_ms,"
                             " published, runs) VALUES($1, $2, $3, $4, 'queued', 0, '', '', $5, $5, 0, 0, false, 1)"
                             " ON CONFLICT (repository, manifest_digest) WHERE manifest_digest <> '' DO NOTHING"
                             " RETURNING " HS_JOB_COLUMNS,
                             values)
                     : c.run("hs_insert_job_reference",
                             "INSERT INTO jobs(repository, reference, manifest_digest, source, state, attempts,"
                             " error_code, error_message, created_ms, updated_ms, started_ms, finished_ms,"
                             " published, runs) VALUES($1, $2, $3, $4, 'queued', 0, '', '', $5, $5, 0, 0, false, 1)"
                             " ON CONFLICT (repository, reference)"
                             " WHERE manifest_digest = '' AND state NOT IN ('done', 'failed') DO NOTHING"
                             " RETURNING " HS_JOB_COLUMNS,
                             values);
      if (!ins.ok()) return std::move(ins).error().with_context("inserting a job");
      if (ins->rows() > 0) {
        auto job = read_job(*ins, 0);
        if (!job.ok()) return std::move(job).error();
        return CreatedJob{std::move(job).value(), true, false};
      }
    }
    return Error(ErrorCode::unavailable, "job store: creating a job kept conflicting; try again");
  }

  Result<std::optional<JobRecord>> get_job(std::int64_t id) override {
    return pg::with_connection(*pool_, [&](Connection& c) { return load(c, id); });
  }

  Result<std::vector<JobRecord>> list_jobs(const JobFilter& f) override {
    return pg::with_connection(*pool_, [&](Connection& c) {
      return read_jobs(c.run("hs_list_jobs",
                             "SELECT " HS_JOB_COLUMNS " FROM jobs WHERE id > $1 AND ($2::text IS NULL OR state = $2)"
                             " AND ($3 = '' OR repository = $3) ORDER BY id LIMIT $4",
                             {std::to_string(f.after_id), f.state ? Param(to_string(*f.state)) : Param(),
                              f.repository, clamp_limit(f.limit)}));
    });
  }

  Result<std::array<std::uint64_t, 6>> count_jobs_by_state() override {
    return pg::with_connection(*pool_, [&](Connection& c) -> Result<std::array<std::uint64_t, 6>> {
      auto r = c.run("hs_count_jobs", "SELECT state, COUNT(*) FROM jobs GROUP BY state", {});
      if (!r.ok()) return std::move(r).error().with_context("counting jobs");
      std::array<std::uint64_t, 6> out{};
      for (int i = 0; i < r->rows(); ++i) {
        auto state = parse_job_state(r->text(i, 0));
        if (!state.ok()) return std::move(state).error();
        auto n = r->int64(i, 1);
        if (!n.ok()) return std::move(n).error();
        out[static_cast<std::size_t>(*state)] = static_cast<std::uint64_t>(*n);
      }
      return out;
    });
  }

  Status mark_published(std::int64_t id) override {
    auto out = pg::in_transaction(*pool_, [&](Connection& c) -> Result<bool> {
      // Not waited for on disk, as in SQLite: a lost mark only makes the
      // orphan sweep publish the job once more (ADR 0009).
      if (auto off = c.run("hs_async_commit", "SET LOCAL synchronous_commit = off", {}); !off.ok()) {
        return std::move(off).error();
      }
      auto r = c.run("hs_mark_published", "UPDATE jobs SET published = true WHERE id = $1", {std::to_string(id)});
      if (!r.ok()) return std::move(r).error().with_context("marking job published");
      if (r->affected() == 0) return unknown_job(id);
      return true;
    });
    if (!out.ok()) return std::move(out).error();
    return {};
  }

  Status mark_published_all(const std::vector<std::int64_t>& ids) override {
    if (ids.empty()) return {};
    std::string array = "{";
    for (std::size_t i = 0; i < ids.size(); ++i) {
      if (i != 0) array += ',';
      array += std::to_string(ids[i]);
    }
    array += "}";
    auto out = pg::in_transaction(*pool_, [&](Connection& c) -> Result<bool> {
      if (auto off = c.run("hs_async_commit", "SET LOCAL synchronous_commit = off", {}); !off.ok()) {
        return std::move(off).error();
      }
      auto r = c.run("hs_mark_published_all", "UPDATE jobs SET published = true WHERE id = ANY($1::bigint[])",
                     {array});
      if (!r.ok()) return std::move(r).error().with_context("marking jobs published");
      if (r->affected() != std::set<std::int64_t>(ids.begin(), ids.end()).size()) {
        // Name the first unknown id; the transaction rolls back.
        for (const auto id : ids) {
          auto job = load(c, id);
          if (!job.ok()) return std::move(job).error();
          if (!job->has_value()) return unknown_job(id);
        }
        return Error(ErrorCode::internal, "job store: marking jobs published changed an unexpected number of rows");
      }
      return true;
    });
    if (!out.ok()) return std::move(out).error();
    return {};
  }

  Result<std::vector<JobRecord>> list_unpublished(std::size_t limit) override {
    return pg::with_connection(*pool_, [&](Connection& c) {
      return read_jobs(c.run("hs_list_unpublished",
                             "SELECT " HS_JOB_COLUMNS " FROM jobs WHERE state = 'queued' AND NOT published"
                             " ORDER BY id LIMIT $1",
                             {clamp_limit(limit)}));
    });
  }

  Result<std::vector<JobRecord>> list_stale(std::int64_t older_than_ms, std::size_t limit) override {
    return pg::with_connection(*pool_, [&](Connection& c) {
      return read_jobs(c.run("hs_list_stale",
                             "SELECT " HS_JOB_COLUMNS " FROM jobs WHERE state NOT IN ('done', 'failed')"
                             " AND updated_ms < $1 ORDER BY id LIMIT $2",
                             {std::to_string(older_than_ms), clamp_limit(limit)}));
    });
  }

  Result<JobRecord> begin_attempt(std::int64_t id) override {
    return pg::in_transaction(*pool_, [&](Connection& c) -> Result<JobRecord> {
      auto job = load(c, id, true);
      if (!job.ok()) return std::move(job).error();
      if (!job->has_value()) return unknown_job(id);
      if (is_terminal((*job)->state)) {
        return Error(ErrorCode::invalid_argument, "job " + std::to_string(id) + ": cannot start an attempt in state " +
                                                      to_string((*job)->state) + " (to fetching)");
      }
      auto r = c.run("hs_begin_attempt",
                     "UPDATE jobs SET state = 'fetching', attempts = attempts + 1, error_code = '',"
                     " error_message = '', updated_ms = $1,"
                     " started_ms = CASE WHEN started_ms = 0 THEN $1 ELSE started_ms END WHERE id = $2"
                     " RETURNING " HS_JOB_COLUMNS,
                     {std::to_string(clock_.now_ms()), std::to_string(id)});
      if (!r.ok()) return std::move(r).error().with_context("starting job attempt");
      return read_job(*r, 0);
    });
  }

  Result<JobRecord> transition(std::int64_t id, JobState to, const std::optional<Error>& error) override {
    return pg::in_transaction(*pool_, [&](Connection& c) -> Result<JobRecord> {
      auto job = load(c, id, true);
      if (!job.ok()) return std::move(job).error();
      if (!job->has_value()) return unknown_job(id);
      const JobState from = (*job)->state;
      if (from == to) return std::move(**job);
      if (!is_legal_transition(from, to)) {
        return Error(ErrorCode::invalid_argument, "job " + std::to_string(id) + ": illegal transition " +
                                                      to_string(from) + " -> " + to_string(to));
      }
      const std::int64_t now = clock_.now_ms();
      auto r = c.run("hs_transition",
                     "UPDATE jobs SET state = $1, updated_ms = $2, finished_ms = $3, error_code = $4,"
                     " error_message = $5 WHERE id = $6 RETURNING " HS_JOB_COLUMNS,
                     {std::string(to_string(to)), std::to_string(now), std::to_string(is_terminal(to) ? now : 0),
                      error ? std::string(code_name(error->code())) : (*job)->error_code,
                      error ? error->message() : (*job)->error_message, std::to_string(id)});
      if (!r.ok()) return std::move(r).error().with_context("updating job state");
      return read_job(*r, 0);
    });
  }

  Status save_image_result(const ImageResult& m, const std::vector<ImageFile>& files) override {
    if (m.image_digest.empty()) return Error(ErrorCode::invalid_argument, "job store: an image result needs a digest");
    auto out = pg::in_transaction(*pool_, [&](Connection& c) -> Result<bool> {
      auto lock = c.run("hs_lock_image", "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", {m.image_digest});
      if (!lock.ok()) return std::move(lock).error();
      auto prev = c.run("hs_prev_image", "SELECT verdict, refset_fingerprint FROM images WHERE image_digest = $1",
                        {m.image_digest});
      if (!prev.ok()) return std::move(prev).error().with_context("reading the previous result");
      if (prev->rows() > 0 && prev->text(0, 0) != m.verdict) {
        auto ch = c.run("hs_verdict_change",
                        "INSERT INTO verdict_changes(image_digest, job_id, changed_ms, old_verdict, new_verdict,"
                        " old_fingerprint, new_fingerprint) VALUES($1, $2, $3, $4, $5, $6, $7)",
                        {m.image_digest, std::to_string(m.job_id), std::to_string(m.scanned_ms), prev->text(0, 0),
                         m.verdict, prev->text(0, 1), m.refset_fingerprint});
        if (!ch.ok()) return std::move(ch).error().with_context("recording a verdict change");
      }
      auto up = c.run("hs_upsert_image",
                      "INSERT INTO images(" HS_IMAGE_COLUMNS ") VALUES($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13)"
                      " ON CONFLICT (image_digest) DO UPDATE SET repository = EXCLUDED.repository,"
                      " reference = EXCLUDED.reference, platform = EXCLUDED.platform, job_id = EXCLUDED.job_id,"
                      " scanned_ms = EXCLUDED.scanned_ms, verdict = EXCLUDED.verdict,"
                      " summary_json = EXCLUDED.summary_json, report_json = EXCLUDED.report_json,"
                      " resolved_json = EXCLUDED.resolved_json, refset_fingerprint = EXCLUDED.refset_fingerprint,"
                      " bytes_hashed = EXCLUDED.bytes_hashed, duration_ms = EXCLUDED.duration_ms",
                      {m.image_digest, m.repository, m.reference, m.platform, std::to_string(m.job_id),
                       std::to_string(m.scanned_ms), m.verdict, m.summary_json, m.report_json, m.resolved_json,
                       m.refset_fingerprint, u64(m.bytes_hashed), std::to_string(m.duration_ms)});
      if (!up.ok()) return std::move(up).error().with_context("storing the result of " + m.image_digest);
      auto del = c.run("hs_delete_image_files", "DELETE FROM image_files WHERE image_digest = $1", {m.image_digest});
      if (!del.ok()) return std::move(del).error().with_context("replacing image files");
      if (!files.empty()) {
        std::string data;
        for (std::size_t i = 0; i < files.size(); ++i) {
          const ImageFile& f = files[i];
          pg::copy_field(data, m.image_digest, '\t');
          pg::copy_field(data, std::to_string(i), '\t');
          // BYTEA, and its searchable text (migration 0005).
          pg::copy_field(data, pg::bytea_text(f.path), '\t');
          pg::copy_field(data, pg::lossy_utf8(f.path), '\t');
          pg::copy_field(data, std::to_string(f.layer), '\t');
          data += f.hidden_by ? std::to_string(*f.hidden_by) : std::string("\\N");
          data += '\t';
          pg::copy_field(data, u64(f.size), '\t');
          pg::copy_field(data, f.sha256, '\t');
          pg::copy_field(data, f.verdict, '\t');
          pg::copy_field(data, f.evidence_json, '\n');
        }
        if (auto st = c.copy_in("COPY image_files(image_digest, seq, path, path_search, layer, hidden_by, size, sha256, verdict,"
                                " evidence_json) FROM STDIN",
                                data);
            !st.ok()) {
          return std::move(st).error().with_context("storing files of " + m.image_digest);
        }
      }
      auto totals = c.run("hs_count_scan",
                          "UPDATE scan_totals SET scans = scans + 1, bytes_hashed = bytes_hashed + $1,"
                          " duration_ms_sum = duration_ms_sum + $2 WHERE id = 1",
                          {u64(m.bytes_hashed), std::to_string(m.duration_ms)});
      if (!totals.ok()) return std::move(totals).error().with_context("counting the scan");
      return true;
    });
    if (!out.ok()) return std::move(out).error();
    return {};
  }

  Result<std::optional<ImageResult>> get_image(const std::string& image_digest) override {
    return pg::with_connection(*pool_, [&](Connection& c) -> Result<std::optional<ImageResult>> {
      auto r = c.run("hs_get_image", "SELECT " HS_IMAGE_COLUMNS " FROM images WHERE image_digest = $1",
                     {image_digest});
      if (!r.ok()) return std::move(r).error().with_context("reading image " + image_digest);
      if (r->rows() == 0) return std::optional<ImageResult>();
      auto m = read_image(*r, 0);
      if (!m.ok()) return std::move(m).error();
      return std::optional<ImageResult>(std::move(m).value());
    });
  }

  Result<std::vector<ImageResult>> list_images(const ImageFilter& f) override {
    return pg::with_connection(*pool_, [&](Connection& c) {
      return read_images(c.run(
          "hs_list_images",
          "SELECT " HS_IMAGE_SUMMARY_COLUMNS " FROM images WHERE scanned_ms >= $1"
          " AND ($2::bigint = 0 OR scanned_ms < $2) AND ($3 = '' OR repository = $3) AND ($4 = '' OR verdict = $4)"
          " AND ($5::bigint = 0 OR scanned_ms < $5 OR (scanned_ms = $5 AND image_digest < $6))"
          " ORDER BY scanned_ms DESC, image_digest DESC LIMIT $7",
          {std::to_string(f.since_ms), std::to_string(f.until_ms), f.repository, f.verdict,
           std::to_string(f.before_ms), f.before_digest, clamp_limit(f.limit)}));
    });
  }

  Result<std::vector<ImageFile>> list_image_files(const std::string& image_digest, const FileFilter& f) override {
    return pg::with_connection(*pool_, [&](Connection& c) -> Result<std::vector<ImageFile>> {
      auto r = c.run("hs_list_image_files",
                     "SELECT seq, path, layer, hidden_by, size, sha256, verdict, evidence_json FROM image_files"
                     " WHERE image_digest = $1 AND seq > $2 AND ($3 = '' OR verdict = $3) ORDER BY seq LIMIT $4",
                     {image_digest, std::to_string(f.after_seq), f.verdict, clamp_limit(f.limit)});
      if (!r.ok()) return std::move(r).error().with_context("reading files of " + image_digest);
      std::vector<ImageFile> out;
      for (int i = 0; i < r->rows(); ++i) {
        ImageFile file;
        auto seq = r->int64(i, 0);
        auto layer = r->int64(i, 2);
        auto size = r->int64(i, 4);
        for (auto* v : {&seq, &layer, &size}) {
          if (!v->ok()) return std::move(*v).error();
        }
        file.seq = *seq;
        auto path = r->bytes(i, 1);
        if (!path.ok()) return std::move(path).error().with_context("reading files of " + image_digest);
        file.path = std::move(path).value();
        file.layer = static_cast<std::uint32_t>(*layer);
        if (!r->is_null(i, 3)) {
          auto hidden = r->int64(i, 3);
          if (!hidden.ok()) return std::move(hidden).error();
          file.hidden_by = static_cast<std::uint32_t>(*hidden);
        }
        file.size = static_cast<std::uint64_t>(*size);
        file.sha256 = r->text(i, 5);
        file.verdict = r->text(i, 6);
        file.evidence_json = r->text(i, 7);
        out.push_back(std::move(file));
      }
      return out;
    });
  }

  Result<std::vector<std::string>> job_images(std::int64_t job_id) override {
    return pg::with_connection(*pool_, [&](Connection& c) -> Result<std::vector<std::string>> {
      auto r = c.run("hs_job_images", "SELECT image_digest FROM images WHERE job_id = $1 ORDER BY image_digest",
                     {std::to_string(job_id)});
      if (!r.ok()) return std::move(r).error().with_context("reading images of a job");
      std::vector<std::string> out;
      for (int i = 0; i < r->rows(); ++i) out.push_back(r->text(i, 0));
      return out;
    });
  }

  Result<std::vector<ImageResult>> list_images_not_matching(const std::string& fingerprint,
                                                            std::size_t limit) override {
    return pg::with_connection(*pool_, [&](Connection& c) {
      return read_images(c.run("hs_images_not_matching",
                               "SELECT " HS_IMAGE_SUMMARY_COLUMNS " FROM images WHERE refset_fingerprint <> $1"
                               " ORDER BY scanned_ms, image_digest LIMIT $2",
                               {fingerprint, clamp_limit(limit)}));
    });
  }

  Result<std::vector<VerdictChange>> list_verdict_changes(const std::string& image_digest,
                                                          std::size_t limit) override {
    return pg::with_connection(*pool_, [&](Connection& c) -> Result<std::vector<VerdictChange>> {
      auto r = c.run("hs_verdict_changes",
                     "SELECT image_digest, job_id, changed_ms, old_verdict, new_verdict, old_fingerprint,"
                     " new_fingerprint FROM verdict_changes WHERE ($1 = '' OR image_digest = $1) ORDER BY id LIMIT $2",
                     {image_digest, clamp_limit(limit)});
      if (!r.ok()) return std::move(r).error().with_context("reading verdict changes");
      std::vector<VerdictChange> out;
      for (int i = 0; i < r->rows(); ++i) {
        auto job = r->int64(i, 1);
        auto changed = r->int64(i, 2);
        if (!job.ok()) return std::move(job).error();
        if (!changed.ok()) return std::move(changed).error();
        out.push_back(VerdictChange{r->text(i, 0), *job, *changed, r->text(i, 3), r->text(i, 4), r->text(i, 5),
                                    r->text(i, 6)});
      }
      return out;
    });
  }

  Result<std::vector<PathMatch>> search_paths(const std::string& substring, std::size_t limit) override {
    if (substring.empty()) return Error(ErrorCode::invalid_argument, "job store: an empty path search");
    return pg::with_connection(*pool_, [&](Connection& c) -> Result<std::vector<PathMatch>> {
      // The trigram index on path_search (the path's text, invalid bytes as
      // U+FFFD) narrows the candidates; position() on the bytes decides. A
      // UTF-8 substring of the path is a substring of path_search; one that
      // is not UTF-8 may not be, so it scans the bytes only.
      auto r = pg::is_utf8(substring)
                   ? c.run("hs_search_paths",
                           "SELECT image_digest, seq, path FROM image_files WHERE path_search LIKE $1"
                           " AND position($2::bytea IN path) > 0 ORDER BY image_digest, seq LIMIT $3",
                           {contains_pattern(substring), pg::bytea_text(substring), clamp_limit(limit)})
                   : c.run("hs_search_path_bytes",
                           "SELECT image_digest, seq, path FROM image_files WHERE position($1::bytea IN path) > 0"
                           " ORDER BY image_digest, seq LIMIT $2",
                           {pg::bytea_text(substring), clamp_limit(limit)});
      if (!r.ok()) return std::move(r).error().with_context("searching paths");
      std::vector<PathMatch> out;
      for (int i = 0; i < r->rows(); ++i) {
        auto seq = r->int64(i, 1);
        if (!seq.ok()) return std::move(seq).error();
        auto path = r->bytes(i, 2);
        if (!path.ok()) return std::move(path).error().with_context("searching paths");
        out.push_back(PathMatch{r->text(i, 0), *seq, std::move(path).value()});
      }
      return out;
    });
  }

  Result<std::vector<std::pair<std::string, std::uint64_t>>> count_images_by_verdict() override {
    return pg::with_connection(*pool_, [&](Connection& c) -> Result<std::vector<std::pair<std::string, std::uint64_t>>> {
      auto r = c.run("hs_count_verdicts",
                     "SELECT verdict, COUNT(*) FROM images GROUP BY verdict ORDER BY verdict COLLATE \"C\"", {});
      if (!r.ok()) return std::move(r).error().with_context("counting verdicts");
      std::vector<std::pair<std::string, std::uint64_t>> out;
      for (int i = 0; i < r->rows(); ++i) {
        auto n = r->int64(i, 1);
        if (!n.ok()) return std::move(n).error();
        out.emplace_back(r->text(i, 0), static_cast<std::uint64_t>(*n));
      }
      return out;
    });
  }

  Result<ScanTotals> scan_totals() override {
    return pg::with_connection(*pool_, [&](Connection& c) -> Result<ScanTotals> {
      auto r = c.run("hs_scan_totals", "SELECT scans, bytes_hashed, duration_ms_sum FROM scan_totals WHERE id = 1", {});
      if (!r.ok()) return std::move(r).error().with_context("reading scan totals");
      if (r->rows() != 1) return Error(ErrorCode::internal, "job store: the scan_totals row is missing");
      auto scans = r->int64(0, 0);
      auto bytes = r->int64(0, 1);
      auto ms = r->int64(0, 2);
      for (auto* v : {&scans, &bytes, &ms}) {
        if (!v->ok()) return std::move(*v).error();
      }
      return ScanTotals{static_cast<std::uint64_t>(*scans), static_cast<std::uint64_t>(*bytes), *ms};
    });
  }

 private:
  Result<std::optional<JobRecord>> load(Connection& c, std::int64_t id, bool for_update = false) {
    auto r = for_update ? c.run("hs_load_job_locked", "SELECT " HS_JOB_COLUMNS " FROM jobs WHERE id = $1 FOR UPDATE",
                                {std::to_string(id)})
                        : c.run("hs_load_job", "SELECT " HS_JOB_COLUMNS " FROM jobs WHERE id = $1", {std::to_string(id)});
    if (!r.ok()) return std::move(r).error().with_context("reading job " + std::to_string(id));
    if (r->rows() == 0) return std::optional<JobRecord>();
    auto j = read_job(*r, 0);
    if (!j.ok()) return std::move(j).error();
    return std::optional<JobRecord>(std::move(j).value());
  }

  std::shared_ptr<pg::Pool> pool_;
  const Clock& clock_;
};

}  // namespace

std::unique_ptr<JobStore> make_postgres_job_store(std::shared_ptr<pg::Pool> pool, const Clock& clock) {
  return std::make_unique<PostgresJobStore>(std::move(pool), clock);
}

}  // namespace hashsieve::store
