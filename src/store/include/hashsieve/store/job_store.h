// Scan jobs as persisted state machines, and the per-image results the REST
// API serves (ADR 0009). Same embedded database as store.h (<data-dir>/store.db,
// WAL), separate interface, so a PostgreSQL backend (issue 7) can implement it.
//
//   queued --> fetching --> hashing --> matching --> done
//      ^  \        |           |           |
//      |   \       v           v           v
//      |    +--> failed <------+-----------+
//      +---- (retry: fetching|hashing|matching --> queued)
//   done|failed --> queued   only through create_or_get_job(force) (rescan, re-request)
//
// The store holds text and numbers; verdicts are the report's strings.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "hashsieve/core/clock.h"
#include "hashsieve/core/result.h"

namespace hashsieve::store {

enum class JobState : std::uint8_t { queued, fetching, hashing, matching, done, failed };
inline constexpr std::array<JobState, 6> kAllJobStates = {JobState::queued,   JobState::fetching,
                                                          JobState::hashing,  JobState::matching,
                                                          JobState::done,     JobState::failed};
const char* to_string(JobState state);
Result<JobState> parse_job_state(const std::string& text);
bool is_terminal(JobState state);
// The edges of the diagram above (excluding the forced re-queue of a
// terminal job, which only create_or_get_job does).
bool is_legal_transition(JobState from, JobState to);

enum class JobSource : std::uint8_t { webhook, crawler, api, rescan };
const char* to_string(JobSource source);
Result<JobSource> parse_job_source(const std::string& text);

struct JobRequest {
  std::string repository;       // "team/app"; may be "" for local sources (oci:, docker-archive:)
  std::string reference;        // what the worker opens, e.g. "localhost:5000/team/app@sha256:..."
  std::string manifest_digest;  // "sha256:<hex>" when known (webhook); "" for a tag-only request
  JobSource source = JobSource::api;
  // Re-queue a job that already finished (done or failed) for the same
  // (repository, manifest digest), e.g. a rescan. Without it a finished job
  // is returned as is.
  bool force = false;
};

struct JobRecord {
  std::int64_t id = 0;
  std::string repository;
  std::string reference;
  std::string manifest_digest;
  JobSource source = JobSource::api;
  JobState state = JobState::queued;
  std::uint32_t attempts = 0;     // scan attempts started (begin_attempt)
  std::string error_code;         // of the last failure ("" none), e.g. "unavailable"
  std::string error_message;
  std::int64_t created_ms = 0;
  std::int64_t updated_ms = 0;    // last transition
  std::int64_t started_ms = 0;    // first left queued in the current run (0: not yet)
  std::int64_t finished_ms = 0;   // reached done/failed (0: not yet)
  bool published = false;         // its queue message was confirmed (see requeue sweeps)
  std::uint32_t runs = 1;         // 1 + number of forced re-queues
  bool operator==(const JobRecord&) const = default;
};

struct CreatedJob {
  JobRecord job;
  bool created = false;  // false: an existing job was returned (deduplicated)
  bool requeued = false; // true: an existing finished job was re-queued (force)
};

struct JobFilter {
  std::optional<JobState> state;
  std::string repository;        // "" = any
  std::int64_t after_id = 0;     // pagination: ids greater than this, ascending
  std::size_t limit = 100;
};

// One platform image's latest result. Keyed by image digest: the platform
// manifest's digest (or, for sources without one, the config digest).
struct ImageResult {
  std::string image_digest;
  std::string repository;
  std::string reference;
  std::string platform;
  std::int64_t job_id = 0;
  std::int64_t scanned_ms = 0;
  std::string verdict;            // "known", "unknown", "modified", "similar", "malicious"
  std::string summary_json;       // the report's summary object
  std::string report_json;        // the full JSON report
  std::string resolved_json;      // the resolved image (layers) for a rescan without a registry round trip
  std::string refset_fingerprint; // which reference sets (names, versions) matched it
  std::uint64_t bytes_hashed = 0;
  std::int64_t duration_ms = 0;
  bool operator==(const ImageResult&) const = default;
};

// One regular file of an image's latest result, for /v1/images/{digest}/files.
struct ImageFile {
  std::int64_t seq = 0;     // order in the report (layer order, then tar order); pagination key
  std::string path;
  std::uint32_t layer = 0;
  std::optional<std::uint32_t> hidden_by;
  std::uint64_t size = 0;
  std::string sha256;
  std::string verdict;
  std::string evidence_json;  // the report's evidence array for this file
  bool operator==(const ImageFile&) const = default;
};

struct ImageFilter {
  std::string repository;         // "" = any
  std::string verdict;            // "" = any
  std::int64_t since_ms = 0;      // scanned_ms >= since_ms
  std::int64_t until_ms = 0;      // 0 = no upper bound; scanned_ms < until_ms
  // Pagination, newest first: results scanned before this cursor. The cursor
  // of a page is (scanned_ms, image_digest) of its last row.
  std::int64_t before_ms = 0;     // 0 = from the newest
  std::string before_digest;
  std::size_t limit = 50;
};

struct FileFilter {
  std::string verdict;      // "" = any
  std::int64_t after_seq = -1;
  std::size_t limit = 500;
};

struct VerdictChange {
  std::string image_digest;
  std::int64_t job_id = 0;
  std::int64_t changed_ms = 0;
  std::string old_verdict;
  std::string new_verdict;
  std::string old_fingerprint;
  std::string new_fingerprint;
  bool operator==(const VerdictChange&) const = default;
};

// A file of a stored image result whose path matched search_paths.
struct PathMatch {
  std::string image_digest;
  std::int64_t seq = 0;  // ImageFile::seq
  std::string path;
  bool operator==(const PathMatch&) const = default;
};

// Totals for the metrics endpoint (counters since the store was created).
struct ScanTotals {
  std::uint64_t scans = 0;
  std::uint64_t bytes_hashed = 0;
  std::int64_t duration_ms_sum = 0;
};

class JobStore {
 public:
  virtual ~JobStore() = default;

  // Idempotent by (repository, manifest_digest) when the digest is given, else
  // by (repository, reference) among unfinished jobs. Returns the existing job
  // when one is unfinished or (without force) finished; with force a finished
  // job is re-queued (state queued, published false, runs + 1). One
  // transaction.
  virtual Result<CreatedJob> create_or_get_job(const JobRequest& request) = 0;
  // create_or_get_job for every request in one transaction (the webhook's
  // group commit, ADR 0017): all are committed or, on any error, none is.
  // Results are in request order; a request with the same key as an earlier
  // one of the batch gets that job (created false). An invalid request fails
  // the whole batch, so callers validate first.
  virtual Result<std::vector<CreatedJob>> create_or_get_jobs(const std::vector<JobRequest>& requests) = 0;
  virtual Result<std::optional<JobRecord>> get_job(std::int64_t id) = 0;
  virtual Result<std::vector<JobRecord>> list_jobs(const JobFilter& filter) = 0;
  virtual Result<std::array<std::uint64_t, 6>> count_jobs_by_state() = 0;  // indexed by JobState

  // Records that the job's queue message was published (confirmed).
  virtual Status mark_published(std::int64_t id) = 0;
  // mark_published for every id in one (unsynced) transaction; not_found
  // naming the first unknown id, and then nothing is marked.
  virtual Status mark_published_all(const std::vector<std::int64_t>& ids) = 0;
  // Queued jobs whose publish was never confirmed (a crash between the row
  // commit and the publish), oldest first: the requeue sweep publishes those
  // old enough (updated_ms) that their creator is not publishing right now.
  virtual Result<std::vector<JobRecord>> list_unpublished(std::size_t limit) = 0;
  // Unfinished jobs untouched since `older_than_ms` (their message may have
  // been lost, e.g. a purged queue): the stale sweep publishes them again.
  virtual Result<std::vector<JobRecord>> list_stale(std::int64_t older_than_ms, std::size_t limit) = 0;

  // A worker starts a scan attempt: queued|fetching|hashing|matching -> fetching,
  // attempts + 1, error cleared. invalid_argument (naming both states) from a
  // terminal state; not_found for an unknown id.
  virtual Result<JobRecord> begin_attempt(std::int64_t id) = 0;
  // Moves a job along one legal edge (is_legal_transition); an illegal one is
  // invalid_argument naming both states, and nothing changes. A same-state
  // "transition" is a no-op. `error` is recorded for failed/queued (a retry).
  virtual Result<JobRecord> transition(std::int64_t id, JobState to, const std::optional<Error>& error = {}) = 0;

  // Stores an image's result (replacing the previous one for that digest, and
  // its files), records a verdict change when the verdict differs from the
  // previous result's, and moves nothing: the worker then transitions the job
  // to done. One transaction.
  virtual Status save_image_result(const ImageResult& result, const std::vector<ImageFile>& files) = 0;
  virtual Result<std::optional<ImageResult>> get_image(const std::string& image_digest) = 0;
  // Summary rows (report_json and resolved_json left empty), newest first.
  virtual Result<std::vector<ImageResult>> list_images(const ImageFilter& filter) = 0;
  virtual Result<std::vector<ImageFile>> list_image_files(const std::string& image_digest,
                                                           const FileFilter& filter) = 0;
  // Images of a job (one per scanned platform).
  virtual Result<std::vector<std::string>> job_images(std::int64_t job_id) = 0;
  // Images whose stored refset_fingerprint differs from `fingerprint`.
  virtual Result<std::vector<ImageResult>> list_images_not_matching(const std::string& fingerprint,
                                                                     std::size_t limit) = 0;
  // Oldest first; "" = every image.
  virtual Result<std::vector<VerdictChange>> list_verdict_changes(const std::string& image_digest,
                                                                   std::size_t limit) = 0;
  // Files of the stored image results whose path contains `substring`
  // (case-sensitive, taken literally: '%' and '_' are not wildcards), ordered
  // by (image_digest, seq), at most `limit`. An empty substring is
  // invalid_argument. PostgreSQL serves it from a pg_trgm index.
  virtual Result<std::vector<PathMatch>> search_paths(const std::string& substring, std::size_t limit) = 0;
  // Latest results per verdict string.
  virtual Result<std::vector<std::pair<std::string, std::uint64_t>>> count_images_by_verdict() = 0;
  virtual Result<ScanTotals> scan_totals() = 0;
};

// Opens (creating if needed) the job tables in <data_dir>/store.db (WAL,
// synchronous per `fsync`). Thread- and process-safe like open_sqlite_store.
// `clock` null: system_clock().
Result<std::unique_ptr<JobStore>> open_sqlite_job_store(const std::string& data_dir, const Clock* clock = nullptr,
                                                        bool fsync = true);

}  // namespace hashsieve::store
