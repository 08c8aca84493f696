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
#include <sqlite3.h>

#include <filesystem>
#include <mutex>

#include "hashsieve/store/job_store.h"

namespace hashsieve::store {
namespace {

struct Closer {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
struct Finalizer {
  void operator()(sqlite3_stmt* st) const { sqlite3_finalize(st); }
};
using Db = std::unique_ptr<sqlite3, Closer>;
using Stmt = std::unique_ptr<sqlite3_stmt, Finalizer>;

constexpr int kJobSchemaVersion = 1;

Error db_error(sqlite3* db, const std::string& what) {
  return Error(ErrorCode::io_error, "job store: " + what + ": " + (db != nullptr ? sqlite3_errmsg(db) : "out of memory"));
}

Status exec(sqlite3* db, const char* sql) {
  char* message = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &message) != SQLITE_OK) {
    std::string text = message != nullptr ? message : "unknown error";
    sqlite3_free(message);
    return Error(ErrorCode::io_error, std::string("job store: ") + sql + ": " + text);
  }
  return {};
}

Result<Stmt> prepare(sqlite3* db, const std::string& sql) {
  sqlite3_stmt* raw = nullptr;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &raw, nullptr) != SQLITE_OK) return db_error(db, sql);
  return Stmt(raw);
}

void bind_text(sqlite3_stmt* st, int i, const std::string& s) {
  sqlite3_bind_text(st, i, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
}

void bind_u64(sqlite3_stmt* st, int i, std::uint64_t v) {
  sqlite3_bind_int64(st, i, static_cast<sqlite3_int64>(std::min<std::uint64_t>(v, INT64_MAX)));
}

std::string column_text(sqlite3_stmt* st, int i) {
  const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(st, i));
  return p == nullptr ? std::string() : std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(st, i)));
}

template <typename F>
auto in_transaction(sqlite3* db, F&& body) -> decltype(body()) {
  if (auto st = exec(db, "BEGIN IMMEDIATE"); !st.ok()) return std::move(st).error();
  auto out = body();
  if (!out.ok()) {
    (void)exec(db, "ROLLBACK");
    return out;
  }
  if (auto c = exec(db, "COMMIT"); !c.ok()) {
    (void)exec(db, "ROLLBACK");
    return std::move(c).error();
  }
  return out;
}

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

Result<JobRecord> read_job(sqlite3_stmt* st) {
  JobRecord j;
  j.id = sqlite3_column_int64(st, 0);
  j.repository = column_text(st, 1);
  j.reference = column_text(st, 2);
  j.manifest_digest = column_text(st, 3);
  auto source = parse_job_source(column_text(st, 4));
  if (!source.ok()) return std::move(source).error().with_context("job " + std::to_string(j.id));
  j.source = *source;
  auto state = parse_job_state(column_text(st, 5));
  if (!state.ok()) return std::move(state).error().with_context("job " + std::to_string(j.id));
  j.state = *state;
  j.attempts = static_cast<std::uint32_t>(sqlite3_column_int64(st, 6));
  j.error_code = column_text(st, 7);
  j.error_message = column_text(st, 8);
  j.created_ms = sqlite3_column_int64(st, 9);
  j.updated_ms = sqlite3_column_int64(st, 10);
  j.started_ms = sqlite3_column_int64(st, 11);
  j.finished_ms = sqlite3_column_int64(st, 12);
  j.published = sqlite3_column_int64(st, 13) != 0;
  j.runs = static_cast<std::uint32_t>(sqlite3_column_int64(st, 14));
  return j;
}

Result<std::vector<JobRecord>> read_jobs(sqlite3* db, sqlite3_stmt* st) {
  std::vector<JobRecord> out;
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    auto j = read_job(st);
    if (!j.ok()) return std::move(j).error();
    out.push_back(std::move(j).value());
  }
  if (rc != SQLITE_DONE) return db_error(db, "reading jobs");
  return out;
}

// The enumerator's name ("integrity_error"), stable for API clients, unlike
// the human wording of hashsieve::to_string(ErrorCode).
const char* error_code_name(ErrorCode code) {
  switch (code) {
    case ErrorCode::invalid_argument: return "invalid_argument";
    case ErrorCode::not_found: return "not_found";
    case ErrorCode::permission_denied: return "permission_denied";
    case ErrorCode::io_error: return "io_error";
    case ErrorCode::parse_error: return "parse_error";
    case ErrorCode::unsupported: return "unsupported";
    case ErrorCode::limit_exceeded: return "limit_exceeded";
    case ErrorCode::integrity_error: return "integrity_error";
    case ErrorCode::unavailable: return "unavailable";
    case ErrorCode::internal: return "internal";
  }
  return "internal";
}

sqlite3_int64 clamp_limit(std::size_t limit) {
  return static_cast<sqlite3_int64>(std::min<std::size_t>(limit, INT64_MAX));
}

constexpr const char* kImageSummaryColumns =
    "image_digest, repository, reference, platform, job_id, scanned_ms, verdict, summary_json, '', '',"
    " refset_fingerprint, bytes_hashed, duration_ms";
constexpr const char* kImageColumns =
    "image_digest, repository, reference, platform, job_id, scanned_ms, verdict, summary_json, report_json,"
    " resolved_json, refset_fingerprint, bytes_hashed, duration_ms";

ImageResult read_image(sqlite3_stmt* st) {
  ImageResult r;
  r.image_digest = column_text(st, 0);
  r.repository = column_text(st, 1);
  r.reference = column_text(st, 2);
  r.platform = column_text(st, 3);
  r.job_id = sqlite3_column_int64(st, 4);
  r.scanned_ms = sqlite3_column_int64(st, 5);
  r.verdict = column_text(st, 6);
  r.summary_json = column_text(st, 7);
  r.report_json = column_text(st, 8);
  r.resolved_json = column_text(st, 9);
  r.refset_fingerprint = column_text(st, 10);
  r.bytes_hashed = static_cast<std::uint64_t>(sqlite3_column_int64(st, 11));
  r.duration_ms = sqlite3_column_int64(st, 12);
  return r;
}

Result<std::vector<ImageResult>> read_images(sqlite3* db, sqlite3_stmt* st) {
  std::vector<ImageResult> out;
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) out.push_back(read_image(st));
  if (rc != SQLITE_DONE) return db_error(db, "reading images");
  return out;
}

class SqliteJobStore final : public JobStore {
 public:
  SqliteJobStore(Db db, const Clock& clock, bool fsync) : db_(std::move(db)), clock_(clock), fsync_(fsync) {}

  Result<CreatedJob> create_or_get_job(const JobRequest& request) override {
    if (auto st = check_request(request); !st.ok()) return std::move(st).error();
    std::lock_guard lock(mutex_);
    return in_transaction(db_.get(), [&]() { return create_or_get_locked(request); });
  }

  Result<std::vector<CreatedJob>> create_or_get_jobs(const std::vector<JobRequest>& requests) override {
    for (const auto& r : requests) {
      if (auto st = check_request(r); !st.ok()) return std::move(st).error();
    }
    std::lock_guard lock(mutex_);
    // One IMMEDIATE transaction, one fsync for the whole batch.
    return in_transaction(db_.get(), [&]() -> Result<std::vector<CreatedJob>> {
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
    auto st = prepare(db_.get(), sql);
    if (!st.ok()) return std::move(st).error();
    sqlite3_bind_int64(st->get(), 1, filter.after_id);
    if (filter.state) sqlite3_bind_text(st->get(), 2, to_string(*filter.state), -1, SQLITE_STATIC);
    if (!filter.repository.empty()) bind_text(st->get(), 3, filter.repository);
    sqlite3_bind_int64(st->get(), 4, clamp_limit(filter.limit));
    return read_jobs(db_.get(), st->get());
  }

  Result<std::array<std::uint64_t, 6>> count_jobs_by_state() override {
    std::lock_guard lock(mutex_);
    auto st = prepare(db_.get(), "SELECT state, COUNT(*) FROM jobs GROUP BY state");
    if (!st.ok()) return std::move(st).error();
    std::array<std::uint64_t, 6> out{};
    int rc;
    while ((rc = sqlite3_step(st->get())) == SQLITE_ROW) {
      auto state = parse_job_state(column_text(st->get(), 0));
      if (!state.ok()) return std::move(state).error();
      out[static_cast<std::size_t>(*state)] = static_cast<std::uint64_t>(sqlite3_column_int64(st->get(), 1));
    }
    if (rc != SQLITE_DONE) return db_error(db_.get(), "counting jobs");
    return out;
  }

  Status mark_published(std::int64_t id) override {
    std::lock_guard lock(mutex_);
    // Not synced: losing this mark in a power failure only makes the orphan
    // sweep publish the job once more (harmless: processing is idempotent),
    // and the next synced commit persists it anyway. One fsync fewer on the
    // webhook path (ADR 0009).
    if (fsync_) {
      if (auto st = exec(db_.get(), "PRAGMA synchronous=NORMAL"); !st.ok()) return st;
    }
    auto st = prepare(db_.get(), "UPDATE jobs SET published = 1 WHERE id = ?");
    if (!st.ok()) return std::move(st).error();
    sqlite3_bind_int64(st->get(), 1, id);
    const int rc = sqlite3_step(st->get());
    const int changes = sqlite3_changes(db_.get());
    if (fsync_) {
      if (auto sync = exec(db_.get(), "PRAGMA synchronous=FULL"); !sync.ok()) return sync;
    }
    if (rc != SQLITE_DONE) return db_error(db_.get(), "marking job published");
    if (changes == 0) return unknown_job(id);
    return {};
  }

  Status mark_published_all(const std::vector<std::int64_t>& ids) override {
    if (ids.empty()) return {};
    std::lock_guard lock(mutex_);
    // Unsynced like mark_published.
    if (fsync_) {
      if (auto st = exec(db_.get(), "PRAGMA synchronous=NORMAL"); !st.ok()) return st;
    }
    auto done = in_transaction(db_.get(), [&]() -> Result<bool> {
      auto st = prepare(db_.get(), "UPDATE jobs SET published = 1 WHERE id = ?");
      if (!st.ok()) return std::move(st).error();
      for (const auto id : ids) {
        sqlite3_reset(st->get());
        sqlite3_bind_int64(st->get(), 1, id);
        if (sqlite3_step(st->get()) != SQLITE_DONE) return db_error(db_.get(), "marking jobs published");
        if (sqlite3_changes(db_.get()) == 0) return unknown_job(id);
      }
      return true;
    });
    if (fsync_) {
      if (auto sync = exec(db_.get(), "PRAGMA synchronous=FULL"); !sync.ok()) return sync;
    }
    if (!done.ok()) return std::move(done).error();
    return {};
  }

  Result<std::vector<JobRecord>> list_unpublished(std::size_t limit) override {
    std::lock_guard lock(mutex_);
    auto st = prepare(db_.get(), std::string("SELECT ") + kJobColumns +
                                     " FROM jobs WHERE state = 'queued' AND published = 0 ORDER BY id LIMIT ?");
    if (!st.ok()) return std::move(st).error();
    sqlite3_bind_int64(st->get(), 1, clamp_limit(limit));
    return read_jobs(db_.get(), st->get());
  }

  Result<std::vector<JobRecord>> list_stale(std::int64_t older_than_ms, std::size_t limit) override {
    std::lock_guard lock(mutex_);
    auto st = prepare(db_.get(), std::string("SELECT ") + kJobColumns +
                                     " FROM jobs WHERE state NOT IN ('done', 'failed') AND updated_ms < ?"
                                     " ORDER BY id LIMIT ?");
    if (!st.ok()) return std::move(st).error();
    sqlite3_bind_int64(st->get(), 1, older_than_ms);
    sqlite3_bind_int64(st->get(), 2, clamp_limit(limit));
    return read_jobs(db_.get(), st->get());
  }

  Result<JobRecord> begin_attempt(std::int64_t id) override {
    std::lock_guard lock(mutex_);
    return in_transaction(db_.get(), [&]() -> Result<JobRecord> {
      auto job = load(id);
      if (!job.ok()) return std::move(job).error();
      if (!job->has_value()) return unknown_job(id);
      if (is_terminal((*job)->state)) {
        return Error(ErrorCode::invalid_argument, "job " + std::to_string(id) + ": cannot start an attempt in state " +
                                                      to_string((*job)->state) + " (to fetching)");
      }
      const std::int64_t now = clock_.now_ms();
      auto st = prepare(db_.get(),
                        "UPDATE jobs SET state = 'fetching', attempts = attempts + 1, error_code = '',"
                        " error_message = '', updated_ms = ?1,"
                        " started_ms = CASE WHEN started_ms = 0 THEN ?1 ELSE started_ms END WHERE id = ?2");
      if (!st.ok()) return std::move(st).error();
      sqlite3_bind_int64(st->get(), 1, now);
      sqlite3_bind_int64(st->get(), 2, id);
      if (sqlite3_step(st->get()) != SQLITE_DONE) return db_error(db_.get(), "starting job attempt");
      auto after = load(id);
      if (!after.ok()) return std::move(after).error();
      return std::move(**after);
    });
  }

  Result<JobRecord> transition(std::int64_t id, JobState to, const std::optional<Error>& error) override {
    std::lock_guard lock(mutex_);
    return in_transaction(db_.get(), [&]() -> Result<JobRecord> {
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
      auto st = prepare(db_.get(),
                        "UPDATE jobs SET state = ?1, updated_ms = ?2,"
                        " finished_ms = CASE WHEN ?1 IN ('done', 'failed') THEN ?2 ELSE 0 END,"
                        " error_code = ?3, error_message = ?4 WHERE id = ?5");
      if (!st.ok()) return std::move(st).error();
      sqlite3_bind_text(st->get(), 1, to_string(to), -1, SQLITE_STATIC);
      sqlite3_bind_int64(st->get(), 2, now);
      // Keep an error recorded by an earlier step unless a new one is given.
      bind_text(st->get(), 3, error ? std::string(error_code_name(error->code())) : (*job)->error_code);
      bind_text(st->get(), 4, error ? error->message() : (*job)->error_message);
      sqlite3_bind_int64(st->get(), 5, id);
      if (sqlite3_step(st->get()) != SQLITE_DONE) return db_error(db_.get(), "updating job state");
      auto after = load(id);
      if (!after.ok()) return std::move(after).error();
      return std::move(**after);
    });
  }

  Status save_image_result(const ImageResult& r, const std::vector<ImageFile>& files) override {
    if (r.image_digest.empty()) return Error(ErrorCode::invalid_argument, "job store: an image result needs a digest");
    std::lock_guard lock(mutex_);
    auto out = in_transaction(db_.get(), [&]() -> Result<bool> {
      auto prev = prepare(db_.get(), "SELECT verdict, refset_fingerprint FROM images WHERE image_digest = ?");
      if (!prev.ok()) return std::move(prev).error();
      bind_text(prev->get(), 1, r.image_digest);
      const int rc = sqlite3_step(prev->get());
      if (rc == SQLITE_ROW) {
        const std::string old_verdict = column_text(prev->get(), 0);
        const std::string old_fp = column_text(prev->get(), 1);
        if (old_verdict != r.verdict) {
          auto ch = prepare(db_.get(),
                            "INSERT INTO verdict_changes(image_digest, job_id, changed_ms, old_verdict, new_verdict,"
                            " old_fingerprint, new_fingerprint) VALUES(?, ?, ?, ?, ?, ?, ?)");
          if (!ch.ok()) return std::move(ch).error();
          bind_text(ch->get(), 1, r.image_digest);
          sqlite3_bind_int64(ch->get(), 2, r.job_id);
          sqlite3_bind_int64(ch->get(), 3, r.scanned_ms);
          bind_text(ch->get(), 4, old_verdict);
          bind_text(ch->get(), 5, r.verdict);
          bind_text(ch->get(), 6, old_fp);
          bind_text(ch->get(), 7, r.refset_fingerprint);
          if (sqlite3_step(ch->get()) != SQLITE_DONE) return db_error(db_.get(), "recording a verdict change");
        }
      } else if (rc != SQLITE_DONE) {
        return db_error(db_.get(), "reading the previous result");
      }
      prev->reset();
      auto up = prepare(db_.get(), std::string("INSERT OR REPLACE INTO images(") + kImageColumns +
                                       ") VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?)");
      if (!up.ok()) return std::move(up).error();
      sqlite3_stmt* s = up->get();
      bind_text(s, 1, r.image_digest);
      bind_text(s, 2, r.repository);
      bind_text(s, 3, r.reference);
      bind_text(s, 4, r.platform);
      sqlite3_bind_int64(s, 5, r.job_id);
      sqlite3_bind_int64(s, 6, r.scanned_ms);
      bind_text(s, 7, r.verdict);
      bind_text(s, 8, r.summary_json);
      bind_text(s, 9, r.report_json);
      bind_text(s, 10, r.resolved_json);
      bind_text(s, 11, r.refset_fingerprint);
      bind_u64(s, 12, r.bytes_hashed);
      sqlite3_bind_int64(s, 13, r.duration_ms);
      if (sqlite3_step(s) != SQLITE_DONE) return db_error(db_.get(), "storing the result of " + r.image_digest);
      auto del = prepare(db_.get(), "DELETE FROM image_files WHERE image_digest = ?");
      if (!del.ok()) return std::move(del).error();
      bind_text(del->get(), 1, r.image_digest);
      if (sqlite3_step(del->get()) != SQLITE_DONE) return db_error(db_.get(), "replacing image files");
      auto ins = prepare(db_.get(),
                         "INSERT INTO image_files(image_digest, seq, path, layer, hidden_by, size, sha256, verdict,"
                         " evidence_json) VALUES(?,?,?,?,?,?,?,?,?)");
      if (!ins.ok()) return std::move(ins).error();
      s = ins->get();
      for (std::size_t i = 0; i < files.size(); ++i) {
        const ImageFile& f = files[i];
        sqlite3_reset(s);
        bind_text(s, 1, r.image_digest);
        sqlite3_bind_int64(s, 2, static_cast<sqlite3_int64>(i));
        bind_text(s, 3, f.path);
        sqlite3_bind_int64(s, 4, f.layer);
        if (f.hidden_by) {
          sqlite3_bind_int64(s, 5, *f.hidden_by);
        } else {
          sqlite3_bind_null(s, 5);
        }
        bind_u64(s, 6, f.size);
        bind_text(s, 7, f.sha256);
        bind_text(s, 8, f.verdict);
        bind_text(s, 9, f.evidence_json);
        if (sqlite3_step(s) != SQLITE_DONE) return db_error(db_.get(), "storing file " + f.path);
      }
      auto totals = prepare(db_.get(),
                            "UPDATE scan_totals SET scans = scans + 1, bytes_hashed = bytes_hashed + ?,"
                            " duration_ms_sum = duration_ms_sum + ? WHERE id = 1");
      if (!totals.ok()) return std::move(totals).error();
      bind_u64(totals->get(), 1, r.bytes_hashed);
      sqlite3_bind_int64(totals->get(), 2, r.duration_ms);
      if (sqlite3_step(totals->get()) != SQLITE_DONE) return db_error(db_.get(), "counting the scan");
      return true;
    });
    if (!out.ok()) return std::move(out).error();
    return {};
  }

  Result<std::optional<ImageResult>> get_image(const std::string& image_digest) override {
    std::lock_guard lock(mutex_);
    auto st = prepare(db_.get(), std::string("SELECT ") + kImageColumns + " FROM images WHERE image_digest = ?");
    if (!st.ok()) return std::move(st).error();
    bind_text(st->get(), 1, image_digest);
    const int rc = sqlite3_step(st->get());
    if (rc == SQLITE_DONE) return std::optional<ImageResult>();
    if (rc != SQLITE_ROW) return db_error(db_.get(), "reading image " + image_digest);
    return std::optional<ImageResult>(read_image(st->get()));
  }

  Result<std::vector<ImageResult>> list_images(const ImageFilter& f) override {
    std::lock_guard lock(mutex_);
    std::string sql = std::string("SELECT ") + kImageSummaryColumns + " FROM images WHERE scanned_ms >= ?1";
    if (f.until_ms != 0) sql += " AND scanned_ms < ?2";
    if (!f.repository.empty()) sql += " AND repository = ?3";
    if (!f.verdict.empty()) sql += " AND verdict = ?4";
    if (f.before_ms != 0) sql += " AND (scanned_ms < ?5 OR (scanned_ms = ?5 AND image_digest < ?6))";
    sql += " ORDER BY scanned_ms DESC, image_digest DESC LIMIT ?7";
    auto st = prepare(db_.get(), sql);
    if (!st.ok()) return std::move(st).error();
    sqlite3_bind_int64(st->get(), 1, f.since_ms);
    if (f.until_ms != 0) sqlite3_bind_int64(st->get(), 2, f.until_ms);
    if (!f.repository.empty()) bind_text(st->get(), 3, f.repository);
    if (!f.verdict.empty()) bind_text(st->get(), 4, f.verdict);
    if (f.before_ms != 0) {
      sqlite3_bind_int64(st->get(), 5, f.before_ms);
      bind_text(st->get(), 6, f.before_digest);
    }
    sqlite3_bind_int64(st->get(), 7, clamp_limit(f.limit));
    return read_images(db_.get(), st->get());
  }

  Result<std::vector<ImageFile>> list_image_files(const std::string& image_digest, const FileFilter& f) override {
    std::lock_guard lock(mutex_);
    std::string sql =
        "SELECT seq, path, layer, hidden_by, size, sha256, verdict, evidence_json FROM image_files"
        " WHERE image_digest = ?1 AND seq > ?2";
    if (!f.verdict.empty()) sql += " AND verdict = ?3";
    sql += " ORDER BY seq LIMIT ?4";
    auto st = prepare(db_.get(), sql);
    if (!st.ok()) return std::move(st).error();
    bind_text(st->get(), 1, image_digest);
    sqlite3_bind_int64(st->get(), 2, f.after_seq);
    if (!f.verdict.empty()) bind_text(st->get(), 3, f.verdict);
    sqlite3_bind_int64(st->get(), 4, clamp_limit(f.limit));
    std::vector<ImageFile> out;
    int rc;
    while ((rc = sqlite3_step(st->get())) == SQLITE_ROW) {
      ImageFile file;
      file.seq = sqlite3_column_int64(st->get(), 0);
      file.path = column_text(st->get(), 1);
      file.layer = static_cast<std::uint32_t>(sqlite3_column_int64(st->get(), 2));
      if (sqlite3_column_type(st->get(), 3) != SQLITE_NULL) {
        file.hidden_by = static_cast<std::uint32_t>(sqlite3_column_int64(st->get(), 3));
      }
      file.size = static_cast<std::uint64_t>(sqlite3_column_int64(st->get(), 4));
      file.sha256 = column_text(st->get(), 5);
      file.verdict = column_text(st->get(), 6);
      file.evidence_json = column_text(st->get(), 7);
      out.push_back(std::move(file));
    }
    if (rc != SQLITE_DONE) return db_error(db_.get(), "reading files of " + image_digest);
    return out;
  }

  Result<std::vector<std::string>> job_images(std::int64_t job_id) override {
    std::lock_guard lock(mutex_);
    auto st = prepare(db_.get(), "SELECT image_digest FROM images WHERE job_id = ? ORDER BY image_digest");
    if (!st.ok()) return std::move(st).error();
    sqlite3_bind_int64(st->get(), 1, job_id);
    std::vector<std::string> out;
    int rc;
    while ((rc = sqlite3_step(st->get())) == SQLITE_ROW) out.push_back(column_text(st->get(), 0));
    if (rc != SQLITE_DONE) return db_error(db_.get(), "reading images of a job");
    return out;
  }

  Result<std::vector<ImageResult>> list_images_not_matching(const std::string& fingerprint,
                                                            std::size_t limit) override {
    std::lock_guard lock(mutex_);
    auto st = prepare(db_.get(), std::string("SELECT ") + kImageSummaryColumns +
                                     " FROM images WHERE refset_fingerprint <> ? ORDER BY scanned_ms, image_digest"
                                     " LIMIT ?");
    if (!st.ok()) return std::move(st).error();
    bind_text(st->get(), 1, fingerprint);
    sqlite3_bind_int64(st->get(), 2, clamp_limit(limit));
    return read_images(db_.get(), st->get());
  }

  Result<std::vector<VerdictChange>> list_verdict_changes(const std::string& image_digest,
                                                          std::size_t limit) override {
    std::lock_guard lock(mutex_);
    std::string sql =
        "SELECT image_digest, job_id, changed_ms, old_verdict, new_verdict, old_fingerprint, new_fingerprint"
        " FROM verdict_changes";
    if (!image_digest.empty()) sql += " WHERE image_digest = ?1";
    sql += " ORDER BY id LIMIT ?2";
    auto st = prepare(db_.get(), sql);
    if (!st.ok()) return std::move(st).error();
    if (!image_digest.empty()) bind_text(st->get(), 1, image_digest);
    sqlite3_bind_int64(st->get(), 2, clamp_limit(limit));
    std::vector<VerdictChange> out;
    int rc;
    while ((rc = sqlite3_step(st->get())) == SQLITE_ROW) {
      VerdictChange c;
      c.image_digest = column_text(st->get(), 0);
      c.job_id = sqlite3_column_int64(st->get(), 1);
      c.changed_ms = sqlite3_column_int64(st->get(), 2);
      c.old_verdict = column_text(st->get(), 3);
      c.new_verdict = column_text(st->get(), 4);
      c.old_fingerprint = column_text(st->get(), 5);
      c.new_fingerprint = column_text(st->get(), 6);
      out.push_back(std::move(c));
    }
    if (rc != SQLITE_DONE) return db_error(db_.get(), "reading verdict changes");
    return out;
  }

  Result<std::vector<PathMatch>> search_paths(const std::string& substring, std::size_t limit) override {
    if (substring.empty()) return Error(ErrorCode::invalid_argument, "job store: an empty path search");
    std::lock_guard lock(mutex_);
    // instr, not LIKE: case-sensitive and without wildcards, as PostgreSQL's.
    auto st = prepare(db_.get(),
                      "SELECT image_digest, seq, path FROM image_files WHERE instr(path, ?1) > 0"
                      " ORDER BY image_digest, seq LIMIT ?2");
    if (!st.ok()) return std::move(st).error();
    bind_text(st->get(), 1, substring);
    sqlite3_bind_int64(st->get(), 2, clamp_limit(limit));
    std::vector<PathMatch> out;
    int rc;
    while ((rc = sqlite3_step(st->get())) == SQLITE_ROW) {
      out.push_back(PathMatch{column_text(st->get(), 0), sqlite3_column_int64(st->get(), 1), column_text(st->get(), 2)});
    }
    if (rc != SQLITE_DONE) return db_error(db_.get(), "searching paths");
    return out;
  }

  Result<std::vector<std::pair<std::string, std::uint64_t>>> count_images_by_verdict() override {
    std::lock_guard lock(mutex_);
    auto st = prepare(db_.get(), "SELECT verdict, COUNT(*) FROM images GROUP BY verdict ORDER BY verdict");
    if (!st.ok()) return std::move(st).error();
    std::vector<std::pair<std::string, std::uint64_t>> out;
    int rc;
    while ((rc = sqlite3_step(st->get())) == SQLITE_ROW) {
      out.emplace_back(column_text(st->get(), 0), static_cast<std::uint64_t>(sqlite3_column_int64(st->get(), 1)));
    }
    if (rc != SQLITE_DONE) return db_error(db_.get(), "counting verdicts");
    return out;
  }

  Result<ScanTotals> scan_totals() override {
    std::lock_guard lock(mutex_);
    auto st = prepare(db_.get(), "SELECT scans, bytes_hashed, duration_ms_sum FROM scan_totals WHERE id = 1");
    if (!st.ok()) return std::move(st).error();
    if (sqlite3_step(st->get()) != SQLITE_ROW) return db_error(db_.get(), "reading scan totals");
    ScanTotals t;
    t.scans = static_cast<std::uint64_t>(sqlite3_column_int64(st->get(), 0));
    t.bytes_hashed = static_cast<std::uint64_t>(sqlite3_column_int64(st->get(), 1));
    t.duration_ms_sum = sqlite3_column_int64(st->get(), 2);
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
                    ? prepare(db_.get(), std::string("SELECT ") + kJobColumns +
                                             " FROM jobs WHERE repository = ?1 AND reference = ?2 AND"
                                             " manifest_digest = '' AND state NOT IN ('done', 'failed')"
                                             " ORDER BY id DESC LIMIT 1")
                    : prepare(db_.get(), std::string("SELECT ") + kJobColumns +
                                             " FROM jobs WHERE repository = ?1 AND manifest_digest = ?3");
    if (!find.ok()) return std::move(find).error();
    bind_text(find->get(), 1, request.repository);
    if (request.manifest_digest.empty()) {
      bind_text(find->get(), 2, request.reference);
    } else {
      bind_text(find->get(), 3, request.manifest_digest);
    }
    const int rc = sqlite3_step(find->get());
    const std::int64_t now = clock_.now_ms();
    if (rc == SQLITE_ROW) {
      auto existing = read_job(find->get());
      if (!existing.ok()) return std::move(existing).error();
      CreatedJob out{std::move(existing).value(), false, false};
      if (!(request.force && is_terminal(out.job.state))) return out;
      auto up = prepare(db_.get(),
                        "UPDATE jobs SET state = 'queued', source = ?, reference = ?, error_code = '',"
                        " error_message = '', updated_ms = ?, started_ms = 0, finished_ms = 0, published = 0,"
                        " runs = runs + 1, attempts = 0 WHERE id = ?");
      if (!up.ok()) return std::move(up).error();
      sqlite3_bind_text(up->get(), 1, to_string(request.source), -1, SQLITE_STATIC);
      bind_text(up->get(), 2, request.reference.empty() ? out.job.reference : request.reference);
      sqlite3_bind_int64(up->get(), 3, now);
      sqlite3_bind_int64(up->get(), 4, out.job.id);
      if (sqlite3_step(up->get()) != SQLITE_DONE) return db_error(db_.get(), "re-queueing a job");
      auto job = load(out.job.id);
      if (!job.ok()) return std::move(job).error();
      out.job = std::move(**job);
      out.requeued = true;
      return out;
    }
    if (rc != SQLITE_DONE) return db_error(db_.get(), "looking up a job");
    auto ins = prepare(db_.get(),
                       "INSERT INTO jobs(repository, reference, manifest_digest, source, state, attempts,"
                       " error_code, error_message, created_ms, updated_ms, started_ms, finished_ms, published,"
                       " runs) VALUES(?, ?, ?, ?, 'queued', 0, '', '', ?, ?, 0, 0, 0, 1)");
    if (!ins.ok()) return std::move(ins).error();
    bind_text(ins->get(), 1, request.repository);
    bind_text(ins->get(), 2, request.reference);
    bind_text(ins->get(), 3, request.manifest_digest);
    sqlite3_bind_text(ins->get(), 4, to_string(request.source), -1, SQLITE_STATIC);
    sqlite3_bind_int64(ins->get(), 5, now);
    sqlite3_bind_int64(ins->get(), 6, now);
    if (sqlite3_step(ins->get()) != SQLITE_DONE) return db_error(db_.get(), "inserting a job");
    auto job = load(sqlite3_last_insert_rowid(db_.get()));
    if (!job.ok()) return std::move(job).error();
    return CreatedJob{std::move(**job), true, false};
  }

  static Error unknown_job(std::int64_t id) {
    return Error(ErrorCode::not_found, "job " + std::to_string(id) + " does not exist");
  }

  // Called with mutex_ held.
  Result<std::optional<JobRecord>> load(std::int64_t id) {
    auto st = prepare(db_.get(), std::string("SELECT ") + kJobColumns + " FROM jobs WHERE id = ?");
    if (!st.ok()) return std::move(st).error();
    sqlite3_bind_int64(st->get(), 1, id);
    const int rc = sqlite3_step(st->get());
    if (rc == SQLITE_DONE) return std::optional<JobRecord>();
    if (rc != SQLITE_ROW) return db_error(db_.get(), "reading job " + std::to_string(id));
    auto j = read_job(st->get());
    if (!j.ok()) return std::move(j).error();
    return std::optional<JobRecord>(std::move(j).value());
  }

  std::mutex mutex_;
  Db db_;
  const Clock& clock_;
  bool fsync_;
};

}  // namespace

Result<std::unique_ptr<JobStore>> open_sqlite_job_store(const std::string& data_dir, const Clock* clock, bool fsync) {
  std::error_code ec;
  std::filesystem::create_directories(data_dir, ec);
  if (ec) return Error(ErrorCode::io_error, "job store: creating " + data_dir + ": " + ec.message());
  const std::string path = data_dir + "/store.db";
  sqlite3* raw = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                                 nullptr);
  Db db(raw);
  if (rc != SQLITE_OK) return db_error(raw, "opening " + path);
  sqlite3_busy_timeout(db.get(), 10000);
  const char* sync = fsync ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL";
  for (const char* sql : {"PRAGMA journal_mode=WAL", sync}) {
    if (auto st = exec(db.get(), sql); !st.ok()) return std::move(st).error().with_context(path);
  }
  // Schema creation in one write transaction, so two processes opening a new
  // store at once do not race on the seed rows.
  if (auto st = exec(db.get(), "BEGIN IMMEDIATE"); !st.ok()) return std::move(st).error().with_context(path);
  auto created = [&]() -> Status {
    if (auto st = exec(db.get(), kSchema); !st.ok()) return st;
    auto get = prepare(db.get(), "SELECT value FROM job_meta WHERE key = 'schema_version'");
    if (!get.ok()) return std::move(get).error();
    if (sqlite3_step(get->get()) == SQLITE_ROW) {
      const std::string v = column_text(get->get(), 0);
      if (v != std::to_string(kJobSchemaVersion)) {
        return Error(ErrorCode::unsupported, "job store: " + path + " has job schema version " + v +
                                                 ", this build reads " + std::to_string(kJobSchemaVersion));
      }
      return {};
    }
    const std::string sql =
        "INSERT INTO job_meta(key, value) VALUES('schema_version', '" + std::to_string(kJobSchemaVersion) + "')";
    return exec(db.get(), sql.c_str());
  }();
  if (!created.ok()) {
    (void)exec(db.get(), "ROLLBACK");
    return std::move(created).error();
  }
  if (auto st = exec(db.get(), "COMMIT"); !st.ok()) return std::move(st).error().with_context(path);
  return std::unique_ptr<JobStore>(new SqliteJobStore(std::move(db), clock != nullptr ? *clock : system_clock(), fsync));
}

}  // namespace hashsieve::store
