// The job state machine's vocabulary and edges (job_store.h).
#include "hashsieve/store/job_store.h"

namespace hashsieve::store {

const char* to_string(JobState state) {
  switch (state) {
    case JobState::queued: return "queued";
    case JobState::fetching: return "fetching";
    case JobState::hashing: return "hashing";
    case JobState::matching: return "matching";
    case JobState::done: return "done";
    case JobState::failed: return "failed";
  }
  return "?";
}

Result<JobState> parse_job_state(const std::string& text) {
  for (JobState s : kAllJobStates) {
    if (text == to_string(s)) return s;
  }
  return Error(ErrorCode::parse_error, "unknown job state '" + text + "'");
}

bool is_terminal(JobState state) { return state == JobState::done || state == JobState::failed; }

bool is_legal_transition(JobState from, JobState to) {
  using S = JobState;
  switch (from) {
    case S::queued: return to == S::fetching || to == S::failed;
    // A scan moves forward one phase at a time; any running phase may fail
    // or go back to queued for a retry.
    case S::fetching: return to == S::hashing || to == S::failed || to == S::queued;
    case S::hashing: return to == S::matching || to == S::failed || to == S::queued;
    case S::matching: return to == S::done || to == S::failed || to == S::queued;
    case S::done:
    case S::failed: return false;  // only a forced create_or_get_job re-queues
  }
  return false;
}

const char* to_string(JobSource source) {
  switch (source) {
    case JobSource::webhook: return "webhook";
    case JobSource::crawler: return "crawler";
    case JobSource::api: return "api";
    case JobSource::rescan: return "rescan";
  }
  return "?";
}

Result<JobSource> parse_job_source(const std::string& text) {
  for (JobSource s : {JobSource::webhook, JobSource::crawler, JobSource::api, JobSource::rescan}) {
    if (text == to_string(s)) return s;
  }
  return Error(ErrorCode::parse_error, "unknown job source '" + text + "'");
}

}  // namespace hashsieve::store
