// The job state machine's pure functions (job_state.cpp). What a JobStore
// does with them is in store_conformance_test.cpp, against every backend.
#include <gtest/gtest.h>

#include <set>
#include <utility>

#include "hashsieve/store/job_store.h"

namespace hashsieve::store {
namespace {

TEST(JobStateTest, NamesRoundTripAndUnknownIsAParseError) {
  for (JobState s : kAllJobStates) {
    SCOPED_TRACE(to_string(s));
    auto back = parse_job_state(to_string(s));
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(*back, s);
  }
  for (JobSource s : {JobSource::webhook, JobSource::crawler, JobSource::api, JobSource::rescan}) {
    EXPECT_EQ(*parse_job_source(to_string(s)), s);
  }
  EXPECT_EQ(parse_job_state("running").error().code(), ErrorCode::parse_error);
  EXPECT_EQ(parse_job_source("cron").error().code(), ErrorCode::parse_error);
}

// Every (from, to) pair: exactly these edges are legal.
TEST(JobStateTest, LegalTransitionsAreExactlyTheStateMachinesEdges) {
  using S = JobState;
  const std::set<std::pair<S, S>> legal = {
      {S::queued, S::fetching}, {S::queued, S::failed},   {S::fetching, S::hashing},
      {S::fetching, S::failed}, {S::fetching, S::queued}, {S::hashing, S::matching},
      {S::hashing, S::failed},  {S::hashing, S::queued},  {S::matching, S::done},
      {S::matching, S::failed}, {S::matching, S::queued},
  };
  for (S from : kAllJobStates) {
    for (S to : kAllJobStates) {
      if (from == to) continue;
      SCOPED_TRACE(std::string(to_string(from)) + " -> " + to_string(to));
      EXPECT_EQ(is_legal_transition(from, to), legal.count({from, to}) > 0);
    }
  }
  for (S s : kAllJobStates) {
    SCOPED_TRACE(to_string(s));
    EXPECT_EQ(is_terminal(s), s == S::done || s == S::failed);
  }
}

}  // namespace
}  // namespace hashsieve::store
