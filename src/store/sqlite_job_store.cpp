// The SQLite backend of the job store: tables beside the layer cache in
// <data-dir>/store.db (WAL). Own connection, own schema version key.
//
// Schema (jobs version 1):
//   job_meta(key PRIMARY KEY, value)                        schema_version
//   jobs(id, repository, reference, manifest_digest, source, state, attempts,
//        error_code, error_message, created_ms, updated_ms, started_ms,
//        finished_ms, published, runs)
//        UNIQUE(repository, manifest_digest) WHERE manifest_digest <> ''
//   images(image_digest PRIMARY KEY, repository, reference, platform, job_id,
//          scanned_ms, verdict, summary_json, report_json, resolved_json,
//          refset_fingerprint, bytes_hashed, duration_ms)
//   image_files(image_digest, seq, path, layer, hidden_by, size, sha256,
//               verdict, evidence_json)                   PRIMARY KEY(image_digest, seq)
//   verdict_changes(id, image_digest, job_id, changed_ms, old_verdict,
//                   new_verdict, old_fingerprint, new_fingerprint)
//   scan_totals(id = 1, scans, bytes_hashed, duration_ms_sum)
// Every write is one IMMEDIATE transaction: the dedupe check and the insert
// of create_or_get_job cannot interleave with another process's.
#include <algorithm>
#include <mutex>

#include "hashsieve/sqlite/database.h"
#include "hashsieve/store/job_store.h"

namespace hashsieve::store {
namespace {

using sqlite::Database;
using sqlite::Statement;

constexpr int kJobSchemaVersion = 1;

constexpr const char* kSchema =
    "CREATE TABLE IF NOT EXISTS job_meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS jobs("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT, repository TEXT NOT NULL, reference TEXT NOT NULL,"
    "  manifest_digest TEXT NOT NULL, source TEXT NOT NULL, state TEXT NOT NULL, attempts INTEGER NOT NULL,"
    "  error_code TEXT NOT NULL, error_message TEXT NOT NULL, created_ms INTEGER NOT NULL,"
    "  updated_ms INTEGER NOT NULL, started_ms INTEGER NOT NULL, finished_ms INTEGER NOT NULL,"
    "  published INTEGER NOT NULL, runs INTEGER NOT NULL);"
    "CREATE UNIQUE INDEX IF NOT EXISTS jobs_by_digest ON jobs(repository, manifest_digest)"
    "  WHERE manifest_digest <> '';"
    "CREATE INDEX IF NOT EXISTS jobs_by_reference ON jobs(repository, reference) WHERE manifest_digest = '';"
    "CREATE INDEX IF NOT EXISTS jobs_by_state ON jobs(state, id);"
    "CREATE TABLE IF NOT EXISTS images("
    "  image_digest TEXT PRIMARY KEY, repository TEXT NOT NULL, reference TEXT NOT NULL, platform TEXT NOT NULL,"
    "  job_id INTEGER NOT NULL, scanned_ms INTEGER NOT NULL, verdict TEXT NOT NULL, summary_json TEXT NOT NULL,"
    "  report_json TEXT NOT NULL, resolved_json TEXT NOT NULL, refset_fingerprint TEXT NOT NULL,"
    "  bytes_hashed INTEGER NOT NULL, duration_ms INTEGER NOT NULL);"
    "CREATE INDEX IF NOT EXISTS images_by_time ON images(scanned_ms, image_digest);"
    "CREATE INDEX IF NOT EXISTS images_by_job ON images(job_id);"
    "CREATE TABLE IF NOT EXISTS image_files("
    "  image_digest TEXT NOT NULL, seq INTEGER NOT NULL, path TEXT NOT NULL, layer INTEGER NOT NULL,"
    "  hidden_by INTEGER, size INTEGER NOT NULL, sha256 TEXT NOT NULL, verdict TEXT NOT NULL,"
    "  evidence_json TEXT NOT NULL, PRIMARY KEY(image_digest, seq)) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS image_files_by_verdict ON image_files(image_digest, verdict, seq);"
    "CREATE TABLE IF NOT EXISTS verdict_changes("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT, image_digest TEXT NOT NULL, job_id INTEGER NOT NULL,"
    "  changed_ms INTEGER NOT NULL, old_verdict TEXT NOT NULL, new_verdict TEXT NOT NULL,"
    "  old_fingerprint TEXT NOT NULL, new_fingerprint TEXT NOT NULL);"
    "CREATE INDEX IF NOT EXISTS verdict_changes_by_image ON verdict_changes(image_digest, id);"
    "CREATE TABLE IF NOT EXISTS scan_totals("
    "  id INTEGER PRIMARY KEY CHECK(id = 1), scans INTEGER NOT NULL, bytes_hashed INTEGER NOT NULL,"
    "  duration_ms_sum INTEGER NOT NULL);"
    "INSERT OR IGNORE INTO scan_totals(id, scans, bytes_hashed, duration_ms_sum) VALUES(1, 0, 0, 0);";

constexpr const char* kJobColumns =
    "id, repository, reference, manifest_digest, source, state, attempts, error_code, error_message,"
    " created_ms, updated_ms, started_ms, finished_ms, published, runs";

Result<JobRecord> read_job(const Statement& st) {
  JobRecord j;
  j.id = st.int64(0);
  j.repository = st.text(1);
  j.reference = st.text(2);
  j.manifest_digest = st.text(3);
  auto source = parse_job_source(st.text(4));
  if (!source.ok()) return std::move(source).error().with_context("job " + std::to_string(j.id));
  j.source = *source;
  auto state = parse_job_state(st.text(5));
  if (!state.ok()) return std::move(state).error().with_context("job " + std::to_string(j.id));
  j.state = *state;
  j.attempts = static_cast<std::uint32_t>(st.int64(6));
  j.error_code = st.text(7);
  j.error_message = st.text(8);
  j.created_ms = st.int64(9);
  j.updated_ms = st.int64(10);
  j.started_ms = st.int64(11);
  j.finished_ms = st.int64(12);
  j.published = st.int64(13) != 0;
  j.runs = static_cast<std::uint32_t>(st.int64(14));
  return j;
}

Result<std::vector<JobRecord>> read_jobs(Statement& st) {
  std::vector<JobRecord> out;
  auto done = st.for_each_row([&](const Statement& row) -> Status {
    auto j = read_job(row);
    if (!j.ok()) return std::move(j).error();
    out.push_back(std::move(j).value());
    return {};
  });
  if (!done.ok()) return std::move(done).error().with_context("reading jobs");
  return out;
}

// The enumerator's name ("integrity_error"), stable for API clients, unlike
// the human wording of hashsieve::to_string(ErrorCode).
std::int64_t clamp_limit(std::size_t limit) {
  return static_cast<std::int64_t>(std::min<std::size_t>(limit, INT64_MAX));
}

constexpr const char* kImageSummaryColumns =
    "image_digest, repository, reference, platform, job_id, scanned_ms, verdict, summary_json, '', '',"
    " refset_fingerprint, bytes_hashed, duration_ms";
constexpr const char* kImageColumns =
    "image_digest, repository, reference, platform, job_id, scanned_ms, verdict, summary_json, report_json,"
    " resolved_json, refset_fingerprint, bytes_hashed, duration_ms";

ImageResult read_image(const Statement& st) {
  ImageResult r;
  r.image_digest = st.text(0);
  r.repository = st.text(1);
  r.reference = st.text(2);
  r.platform = st.text(3);
  r.job_id = st.int64(4);
  r.scanned_ms = st.int64(5);
  r.verdict = st.text(6);
  r.summary_json = st.text(7);
  r.report_json = st.text(8);
  r.resolved_json = st.text(9);
  r.refset_fingerprint = st.text(10);
  r.bytes_hashed = static_cast<std::uint64_t>(st.int64(11));
  r.duration_ms = st.int64(12);
  return r;
}

Result<std::vector<ImageResult>> read_images(Statement& st) {
  std::vector<ImageResult> out;
  auto done = st.for_each_row([&](const Statement& row) { out.push_back(read_image(row)); });
  if (!done.ok()) return std::move(done).error().with_context("reading images");
  return out;
}

class SqliteJobStore final : public JobStore {
 public:
  SqliteJobStore(Database db, const Clock& clock, bool fsync) : db_(std::move(db)), clock_(clock), fsync_(fsync) {}

  Result<CreatedJob> create_or_get_job(const JobRequest& request) override {
    if (auto st = check_request(request); !st.ok()) return std::move(st).error();
    std::lock_guard lock(mutex_);
    return db_.transaction([&]() { return create_or_get_locked(request); });
  }

  Result<std::vector<CreatedJob>> create_or_get_jobs(const std::vector<JobRequest>& requests) override {
    for (const auto& r : requests) {
      if (auto st = check_request(r); !st.ok()) return std::move(st).error();
    }
    std::lock_guard lock(mutex_);
    // One IMMEDIATE transaction, one fsync for the whole batch.
    return db_.transaction([&]() -> Result<std::vector<CreatedJob>> {
      std::vector<CreatedJob> out;
      out.reserve(requests.size());
      for (const auto& r : requests) {
        auto one = create_or_get_locked(r);
        if (!one.ok()) return std::move(one).error();
        out.push_back(std::move(one).value());
      }
      return out;
    });
  }

  Result<std::optional<JobRecord>> get_job(std::int64_t id) override {
    std::lock_guard lock(mutex_);
    return load(id);
  }

  Result<std::vector<JobRecord>> list_jobs(const JobFilter& filter) override {
    std::lock_guard lock(mutex_);
    std::string sql = std::string("SELECT ") + kJobColumns + " FROM jobs WHERE id > ?1";
    if (filter.state) sql += " AND state = ?2";
    if (!filter.repository.empty()) sql += " AND repository = ?3";
    sql += " ORDER BY id LIMIT ?4";
    auto st = db_.prepare(sql);
    if (!st.ok()) return std::move(st).error();
    st->bind(1, filter.after_id);
    if (filter.state) st->bind(2, to_string(*filter.state));
    if (!filter.repository.empty()) st->bind(3, filter.repository);
    st->bind(4, clamp_limit(filter.limit));
    return read_jobs(*st);
  }

  Result<std::array<std::uint64_t, 6>> count_jobs_by_state() override {
    std::lock_guard lock(mutex_);
    auto st = db_.prepare("SELECT state, COUNT(*) FROM jobs GROUP BY state");
    if (!st.ok()) return std::move(st).error();
    std::array<std::uint64_t, 6> out{};
    auto done = st->for_each_row([&](const Statement& row) -> Status {
      auto state = parse_job_state(row.text(0));
      if (!state.ok()) return std::move(state).error();
      out[static_cast<std::size_t>(*state)] = static_cast<std::uint64_t>(row.int64(1));
      return {};
    });
    if (!done.ok()) return std::move(done).error().with_context("counting jobs");
    return out;
  }

  Status mark_published(std::int64_t id) override {
    std::lock_guard lock(mutex_);
    // Not synced: losing this mark in a power failure only makes the orphan
    // sweep publish the job once more (harmless: processing is idempotent),
    // and the next synced commit persists it anyway. One fsync fewer on the
    // webhook path (ADR 0009).
    if (fsync_) {
      if (auto st = db_.set_synchronous(sqlite::Sync::normal); !st.ok()) return st;
    }
    auto st = db_.prepare("UPDATE jobs SET published = 1 WHERE id = ?");
    if (!st.ok()) return std::move(st).error();
    const Status done = st->bind(1, id).run();
    const std::int64_t changes = db_.changes();
    if (fsync_) {
      if (auto sync = db_.set_synchronous(sqlite::Sync::full); !sync.ok()) return sync;
    }
    if (!done.ok()) return Error(done.error()).with_context("marking job published");
    if (changes == 0) return unknown_job(id);
    return {};
  }

  Status mark_published_all(const std::vector<std::int64_t>& ids) override {
    if (ids.empty()) return {};
    std::lock_guard lock(mutex_);
    // Unsynced like mark_published.
    if (fsync_) {
      if (auto st = db_.set_synchronous(sqlite::Sync::normal); !st.ok()) return st;
    }
    auto done = db_.transaction([&]() -> Result<bool> {
      auto st = db_.prepare("UPDATE jobs SET published = 1 WHERE id = ?");
      if (!st.ok()) return std::move(st).error();
      for (const auto id : ids) {
        st->reset();
        st->bind(1, id);
        if (auto ran = st->run(); !ran.ok()) return std::move(ran).error().with_context("marking jobs published");
        if (db_.changes() == 0) return unknown_job(id);
      }
      return true;
    });
    if (fsync_) {
      if (auto sync = db_.set_synchronous(sqlite::Sync::full); !sync.ok()) return sync;
    }
    if (!done.ok()) return std::move(done).error();
    return {};
  }

  Result<std::vector<JobRecord>> list_unpublished(std::size_t limit) override {
    std::lock_guard lock(mutex_);
    auto st = db_.prepare(std::string("SELECT ") + kJobColumns +
                          " FROM jobs WHERE state = 'queued' AND published = 0 ORDER BY id LIMIT ?");
    if (!st.ok()) return std::move(st).error();
    st->bind(1, clamp_limit(limit));
    return read_jobs(*st);
  }

  Result<std::vector<JobRecord>> list_stale(std::int64_t older_than_ms, std::size_t limit) override {
    std::lock_guard lock(mutex_);
    auto st = db_.prepare(std::string("SELECT ") + kJobColumns +
                          " FROM jobs WHERE state NOT IN ('done', 'failed') AND updated_ms < ?"
                          " ORDER BY id LIMIT ?");
    if (!st.ok()) return std::move(st).error();
    st->bind(1, older_than_ms);
    st->bind(2, clamp_limit(limit));
    return read_jobs(*st);
  }

  Result<JobRecord> begin_attempt(std::int64_t id) override {
    std::lock_guard lock(mutex_);
    return db_.transaction([&]() -> Result<JobRecord> {
      auto job = load(id);
      if (!job.ok()) return std::move(job).error();
      if (!job->has_value()) return unknown_job(id);
      if (is_terminal((*job)->state)) {
        return Error(ErrorCode::invalid_argument, "job " + std::to_string(id) + ": cannot start an attempt in state " +
                                                      to_string((*job)->state) + " (to fetching)");
      }
      const std::int64_t now = clock_.now_ms();
      auto st = db_.prepare("UPDATE jobs SET state = 'fetching', attempts = attempts + 1, error_code = '',"
                            " error_message = '', updated_ms = ?1,"
                            " started_ms = CASE WHEN started_ms = 0 THEN ?1 ELSE started_ms END WHERE id = ?2");
      if (!st.ok()) return std::move(st).error();
      st->bind(1, now);
      st->bind(2, id);
      if (auto done = st->run(); !done.ok()) return std::move(done).error().with_context("starting job attempt");
      auto after = load(id);
      if (!after.ok()) return std::move(after).error();
      return std::move(**after);
    });
  }

  Result<JobRecord> transition(std::int64_t id, JobState to, const std::optional<Error>& error) override {
    std::lock_guard lock(mutex_);
    return db_.transaction([&]() -> Result<JobRecord> {
      auto job = load(id);
      if (!job.ok()) return std::move(job).error();
      if (!job->has_value()) return unknown_job(id);
      const JobState from = (*job)->state;
      if (from == to) return std::move(**job);
      if (!is_legal_transition(from, to)) {
        return Error(ErrorCode::invalid_argument, "job " + std::to_string(id) + ": illegal transition " +
                                                      to_string(from) + " -> " + to_string(to));
      }
      const std::int64_t now = clock_.now_ms();
      auto st = db_.prepare("UPDATE jobs SET state = ?1, updated_ms = ?2,"
                            " finished_ms = CASE WHEN ?1 IN ('done', 'failed') THEN ?2 ELSE 0 END,"
                            " error_code = ?3, error_message = ?4 WHERE id = ?5");
      if (!st.ok()) return std::move(st).error();
      st->bind(1, to_string(to));
      st->bind(2, now);
      // Keep an error recorded by an earlier step unless a new one is given.
      st->bind(3, error ? std::string(code_name(error->code())) : (*job)->error_code);
      st->bind(4, error ? error->message() : (*job)->error_message);
      st->bind(5, id);
      if (auto done = st->run(); !done.ok()) return std::move(done).error().with_context("updating job state");
      auto after = load(id);
      if (!after.ok()) return std::move(after).error();
      return std::move(**after);
    });
  }

  Status save_image_result(const ImageResult& r, const std::vector<ImageFile>& files) override {
    if (r.image_digest.empty()) return Error(ErrorCode::invalid_argument, "job store: an image result needs a digest");
    std::lock_guard lock(mutex_);
    auto out = db_.transaction([&]() -> Result<bool> {
      auto prev = db_.prepare("SELECT verdict, refset_fingerprint FROM images WHERE image_digest = ?");
      if (!prev.ok()) return std::move(prev).error();
      auto found = prev->bind(1, r.image_digest).step();
      if (!found.ok()) return std::move(found).error().with_context("reading the previous result");
      if (*found) {
        const std::string old_verdict = prev->text(0);
        const std::string old_fp = prev->text(1);
        if (old_verdict != r.verdict) {
          auto ch = db_.prepare(
              "INSERT INTO verdict_changes(image_digest, job_id, changed_ms, old_verdict, new_verdict,"
              " old_fingerprint, new_fingerprint) VALUES(?, ?, ?, ?, ?, ?, ?)");
          if (!ch.ok()) return std::move(ch).error();
          ch->bind(1, r.image_digest);
          ch->bind(2, r.job_id);
          ch->bind(3, r.scanned_ms);
          ch->bind(4, old_verdict);
          ch->bind(5, r.verdict);
          ch->bind(6, old_fp);
          ch->bind(7, r.refset_fingerprint);
          if (auto done = ch->run(); !done.ok()) {
            return std::move(done).error().with_context("recording a verdict change");
          }
        }
      }
      prev->reset();
      auto up = db_.prepare(std::string("INSERT OR REPLACE INTO images(") + kImageColumns +
                            ") VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?)");
      if (!up.ok()) return std::move(up).error();
      {
        Statement& s = *up;
        s.bind(1, r.image_digest);
        s.bind(2, r.repository);
        s.bind(3, r.reference);
        s.bind(4, r.platform);
        s.bind(5, r.job_id);
        s.bind(6, r.scanned_ms);
        s.bind(7, r.verdict);
        s.bind(8, r.summary_json);
        s.bind(9, r.report_json);
        s.bind(10, r.resolved_json);
        s.bind(11, r.refset_fingerprint);
        s.bind_u64(12, r.bytes_hashed);
        s.bind(13, r.duration_ms);
        if (auto done = s.run(); !done.ok()) {
          return std::move(done).error().with_context("storing the result of " + r.image_digest);
        }
      }
      auto del = db_.prepare("DELETE FROM image_files WHERE image_digest = ?");
      if (!del.ok()) return std::move(del).error();
      del->bind(1, r.image_digest);
      if (auto done = del->run(); !done.ok()) return std::move(done).error().with_context("replacing image files");
      auto ins = db_.prepare("INSERT INTO image_files(image_digest, seq, path, layer, hidden_by, size, sha256, verdict,"
                             " evidence_json) VALUES(?,?,?,?,?,?,?,?,?)");
      if (!ins.ok()) return std::move(ins).error();
      Statement& s = *ins;
      for (std::size_t i = 0; i < files.size(); ++i) {
        const ImageFile& f = files[i];
        s.reset();
        s.bind(1, r.image_digest);
        s.bind(2, static_cast<std::int64_t>(i));
        s.bind(3, f.path);
        s.bind(4, std::int64_t{f.layer});
        if (f.hidden_by) {
          s.bind(5, std::int64_t{*f.hidden_by});
        } else {
          s.bind_null(5);
        }
        s.bind_u64(6, f.size);
        s.bind(7, f.sha256);
        s.bind(8, f.verdict);
        s.bind(9, f.evidence_json);
        if (auto done = s.run(); !done.ok()) return std::move(done).error().with_context("storing file " + f.path);
      }
      auto totals = db_.prepare("UPDATE scan_totals SET scans = scans + 1, bytes_hashed = bytes_hashed + ?,"
                                " duration_ms_sum = duration_ms_sum + ? WHERE id = 1");
      if (!totals.ok()) return std::move(totals).error();
      totals->bind_u64(1, r.bytes_hashed);
      totals->bind(2, r.duration_ms);
      if (auto done = totals->run(); !done.ok()) return std::move(done).error().with_context("counting the scan");
      return true;
    });
    if (!out.ok()) return std::move(out).error();
    return {};
  }

  Result<std::optional<ImageResult>> get_image(const std::string& image_digest) override {
    std::lock_guard lock(mutex_);
    auto st = db_.prepare(std::string("SELECT ") + kImageColumns + " FROM images WHERE image_digest = ?");
    if (!st.ok()) return std::move(st).error();
    auto row = st->bind(1, image_digest).step();
    if (!row.ok()) return std::move(row).error().with_context("reading image " + image_digest);
    if (!*row) return std::optional<ImageResult>();
    return std::optional<ImageResult>(read_image(*st));
  }

  Result<std::vector<ImageResult>> list_images(const ImageFilter& f) override {
    std::lock_guard lock(mutex_);
    std::string sql = std::string("SELECT ") + kImageSummaryColumns + " FROM images WHERE scanned_ms >= ?1";
    if (f.until_ms != 0) sql += " AND scanned_ms < ?2";
    if (!f.repository.empty()) sql += " AND repository = ?3";
    if (!f.verdict.empty()) sql += " AND verdict = ?4";
    if (f.before_ms != 0) sql += " AND (scanned_ms < ?5 OR (scanned_ms = ?5 AND image_digest < ?6))";
    sql += " ORDER BY scanned_ms DESC, image_digest DESC LIMIT ?7";
    auto st = db_.prepare(sql);
    if (!st.ok()) return std::move(st).error();
    st->bind(1, f.since_ms);
    if (f.until_ms != 0) st->bind(2, f.until_ms);
    if (!f.repository.empty()) st->bind(3, f.repository);
    if (!f.verdict.empty()) st->bind(4, f.verdict);
    if (f.before_ms != 0) {
      st->bind(5, f.before_ms);
      st->bind(6, f.before_digest);
    }
    st->bind(7, clamp_limit(f.limit));
    return read_images(*st);
  }

  Result<std::vector<ImageFile>> list_image_files(const std::string& image_digest, const FileFilter& f) override {
    std::lock_guard lock(mutex_);
    std::string sql =
        "SELECT seq, path, layer, hidden_by, size, sha256, verdict, evidence_json FROM image_files"
        " WHERE image_digest = ?1 AND seq > ?2";
    if (!f.verdict.empty()) sql += " AND verdict = ?3";
    sql += " ORDER BY seq LIMIT ?4";
    auto st = db_.prepare(sql);
    if (!st.ok()) return std::move(st).error();
    st->bind(1, image_digest);
    st->bind(2, f.after_seq);
    if (!f.verdict.empty()) st->bind(3, f.verdict);
    st->bind(4, clamp_limit(f.limit));
    std::vector<ImageFile> out;
    auto done = st->for_each_row([&](const Statement& row) {
      ImageFile file;
      file.seq = row.int64(0);
      file.path = row.text(1);
      file.layer = static_cast<std::uint32_t>(row.int64(2));
      if (!row.is_null(3)) {
        file.hidden_by = static_cast<std::uint32_t>(row.int64(3));
      }
      file.size = static_cast<std::uint64_t>(row.int64(4));
      file.sha256 = row.text(5);
      file.verdict = row.text(6);
      file.evidence_json = row.text(7);
      out.push_back(std::move(file));
    });
    if (!done.ok()) return std::move(done).error().with_context("reading files of " + image_digest);
    return out;
  }

  Result<std::vector<std::string>> job_images(std::int64_t job_id) override {
    std::lock_guard lock(mutex_);
    auto st = db_.prepare("SELECT image_digest FROM images WHERE job_id = ? ORDER BY image_digest");
    if (!st.ok()) return std::move(st).error();
    st->bind(1, job_id);
    std::vector<std::string> out;
    auto done = st->for_each_row([&](const Statement& row) {
      out.push_back(row.text(0));
    });
    if (!done.ok()) return std::move(done).error().with_context("reading images of a job");
    return out;
  }

  Result<std::vector<ImageResult>> list_images_not_matching(const std::string& fingerprint,
                                                            std::size_t limit) override {
    std::lock_guard lock(mutex_);
    auto st = db_.prepare(std::string("SELECT ") + kImageSummaryColumns +
                          " FROM images WHERE refset_fingerprint <> ? ORDER BY scanned_ms, image_digest"
                          " LIMIT ?");
    if (!st.ok()) return std::move(st).error();
    st->bind(1, fingerprint);
    st->bind(2, clamp_limit(limit));
    return read_images(*st);
  }

  Result<std::vector<VerdictChange>> list_verdict_changes(const std::string& image_digest,
                                                          std::size_t limit) override {
    std::lock_guard lock(mutex_);
    std::string sql =
        "SELECT image_digest, job_id, changed_ms, old_verdict, new_verdict, old_fingerprint, new_fingerprint"
        " FROM verdict_changes";
    if (!image_digest.empty()) sql += " WHERE image_digest = ?1";
    sql += " ORDER BY id LIMIT ?2";
    auto st = db_.prepare(sql);
    if (!st.ok()) return std::move(st).error();
    if (!image_digest.empty()) st->bind(1, image_digest);
    st->bind(2, clamp_limit(limit));
    std::vector<VerdictChange> out;
    auto done = st->for_each_row([&](const Statement& row) {
      VerdictChange c;
      c.image_digest = row.text(0);
      c.job_id = row.int64(1);
      c.changed_ms = row.int64(2);
      c.old_verdict = row.text(3);
      c.new_verdict = row.text(4);
      c.old_fingerprint = row.text(5);
      c.new_fingerprint = row.text(6);
      out.push_back(std::move(c));
    });
    if (!done.ok()) return std::move(done).error().with_context("reading verdict changes");
    return out;
  }

  Result<std::vector<PathMatch>> search_paths(const std::string& substring, std::size_t limit) override {
    if (substring.empty()) return Error(ErrorCode::invalid_argument, "job store: an empty path search");
    std::lock_guard lock(mutex_);
    // instr, not LIKE: case-sensitive and without wildcards, as PostgreSQL's.
    auto st = db_.prepare("SELECT image_digest, seq, path FROM image_files WHERE instr(path, ?1) > 0"
                          " ORDER BY image_digest, seq LIMIT ?2");
    if (!st.ok()) return std::move(st).error();
    st->bind(1, substring);
    st->bind(2, clamp_limit(limit));
    std::vector<PathMatch> out;
    auto done = st->for_each_row([&](const Statement& row) {
      out.push_back(PathMatch{row.text(0), row.int64(1), row.text(2)});
    });
    if (!done.ok()) return std::move(done).error().with_context("searching paths");
    return out;
  }

  Result<std::vector<std::pair<std::string, std::uint64_t>>> count_images_by_verdict() override {
    std::lock_guard lock(mutex_);
    auto st = db_.prepare("SELECT verdict, COUNT(*) FROM images GROUP BY verdict ORDER BY verdict");
    if (!st.ok()) return std::move(st).error();
    std::vector<std::pair<std::string, std::uint64_t>> out;
    auto done = st->for_each_row([&](const Statement& row) {
      out.emplace_back(row.text(0), static_cast<std::uint64_t>(row.int64(1)));
    });
    if (!done.ok()) return std::move(done).error().with_context("counting verdicts");
    return out;
  }

  Result<ScanTotals> scan_totals() override {
    std::lock_guard lock(mutex_);
    auto st = db_.prepare("SELECT scans, bytes_hashed, duration_ms_sum FROM scan_totals WHERE id = 1");
    if (!st.ok()) return std::move(st).error();
    auto row = st->step();
    if (!row.ok()) return std::move(row).error().with_context("reading scan totals");
    if (!*row) return Error(ErrorCode::io_error, "job store: " + db_.path() + ": reading scan totals: no row");
    ScanTotals t;
    t.scans = static_cast<std::uint64_t>(st->int64(0));
    t.bytes_hashed = static_cast<std::uint64_t>(st->int64(1));
    t.duration_ms_sum = st->int64(2);
    return t;
  }

 private:
  static Status check_request(const JobRequest& request) {
    if (request.reference.empty() && request.manifest_digest.empty()) {
      return Error(ErrorCode::invalid_argument, "job store: a job needs a reference or a manifest digest");
    }
    return {};
  }

  // The body of create_or_get_job; called with mutex_ held, in a transaction.
  Result<CreatedJob> create_or_get_locked(const JobRequest& request) {
    // A digest names the content, so any earlier job for it counts; a tag
    // moves, so only an unfinished job for the same reference does.
    auto find = request.manifest_digest.empty()
                    ? db_.prepare(std::string("SELECT ") + kJobColumns +
                                  " FROM jobs WHERE repository = ?1 AND reference = ?2 AND"
                                  " manifest_digest = '' AND state NOT IN ('done', 'failed')"
                                  " ORDER BY id DESC LIMIT 1")
                    : db_.prepare(std::string("SELECT ") + kJobColumns +
                                  " FROM jobs WHERE repository = ?1 AND manifest_digest = ?3");
    if (!find.ok()) return std::move(find).error();
    find->bind(1, request.repository);
    if (request.manifest_digest.empty()) {
      find->bind(2, request.reference);
    } else {
      find->bind(3, request.manifest_digest);
    }
    auto found = find->step();
    if (!found.ok()) return std::move(found).error().with_context("looking up a job");
    const std::int64_t now = clock_.now_ms();
    if (*found) {
      auto existing = read_job(*find);
      if (!existing.ok()) return std::move(existing).error();
      CreatedJob out{std::move(existing).value(), false, false};
      if (!(request.force && is_terminal(out.job.state))) return out;
      auto up = db_.prepare("UPDATE jobs SET state = 'queued', source = ?, reference = ?, error_code = '',"
                            " error_message = '', updated_ms = ?, started_ms = 0, finished_ms = 0, published = 0,"
                            " runs = runs + 1, attempts = 0 WHERE id = ?");
      if (!up.ok()) return std::move(up).error();
      up->bind(1, to_string(request.source));
      up->bind(2, request.reference.empty() ? out.job.reference : request.reference);
      up->bind(3, now);
      up->bind(4, out.job.id);
      if (auto done = up->run(); !done.ok()) return std::move(done).error().with_context("re-queueing a job");
      auto job = load(out.job.id);
      if (!job.ok()) return std::move(job).error();
      out.job = std::move(**job);
      out.requeued = true;
      return out;
    }
    auto ins = db_.prepare("INSERT INTO jobs(repository, reference, manifest_digest, source, state, attempts,"
                           " error_code, error_message, created_ms, updated_ms, started_ms, finished_ms, published,"
                           " runs) VALUES(?, ?, ?, ?, 'queued', 0, '', '', ?, ?, 0, 0, 0, 1)");
    if (!ins.ok()) return std::move(ins).error();
    ins->bind(1, request.repository);
    ins->bind(2, request.reference);
    ins->bind(3, request.manifest_digest);
    ins->bind(4, to_string(request.source));
    ins->bind(5, now);
    ins->bind(6, now);
    if (auto done = ins->run(); !done.ok()) return std::move(done).error().with_context("inserting a job");
    auto job = load(db_.last_insert_rowid());
    if (!job.ok()) return std::move(job).error();
    return CreatedJob{std::move(**job), true, false};
  }

  static Error unknown_job(std::int64_t id) {
    return Error(ErrorCode::not_found, "job " + std::to_string(id) + " does not exist");
  }

  // Called with mutex_ held.
  Result<std::optional<JobRecord>> load(std::int64_t id) {
    auto st = db_.prepare(std::string("SELECT ") + kJobColumns + " FROM jobs WHERE id = ?");
    if (!st.ok()) return std::move(st).error();
    auto row = st->bind(1, id).step();
    if (!row.ok()) return std::move(row).error().with_context("reading job " + std::to_string(id));
    if (!*row) return std::optional<JobRecord>();
    auto j = read_job(*st);
    if (!j.ok()) return std::move(j).error();
    return std::optional<JobRecord>(std::move(j).value());
  }

  std::mutex mutex_;
  Database db_;
  const Clock& clock_;
  bool fsync_;
};

}  // namespace

Result<std::unique_ptr<JobStore>> open_sqlite_job_store(const std::string& data_dir, const Clock* clock, bool fsync) {
  auto db = Database::open(data_dir + "/store.db",
                           {.label = "job store", .synchronous = fsync ? sqlite::Sync::full : sqlite::Sync::normal});
  if (!db.ok()) return std::move(db).error();
  // Schema creation in one write transaction, so two processes opening a new
  // store at once do not race on the seed rows.
  auto created = db->transaction([&]() -> Status {
    if (auto st = db->exec(kSchema); !st.ok()) return st;
    auto get = db->prepare("SELECT value FROM job_meta WHERE key = 'schema_version'");
    if (!get.ok()) return std::move(get).error();
    auto row = get->step();
    if (!row.ok()) return std::move(row).error();
    if (*row) {
      const std::string v = get->text(0);
      if (v != std::to_string(kJobSchemaVersion)) {
        return Error(ErrorCode::unsupported, "job store: " + db->path() + " has job schema version " + v +
                                                 ", this build reads " + std::to_string(kJobSchemaVersion));
      }
      return {};
    }
    return db->exec("INSERT INTO job_meta(key, value) VALUES('schema_version', '" +
                    std::to_string(kJobSchemaVersion) + "')");
  });
  if (!created.ok()) return std::move(created).error();
  return std::unique_ptr<JobStore>(
      new SqliteJobStore(std::move(db).value(), clock != nullptr ? *clock : system_clock(), fsync));
}

}  // namespace hashsieve::store
