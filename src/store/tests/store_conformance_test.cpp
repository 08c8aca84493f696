// The store conformance suite: every documented postcondition of store.h,
// job_store.h and container_store.h, run against each backend. Built twice
// (src/store/postgres/CMakeLists.txt): hashsieve_store_conformance_test for
// SQLite and hashsieve_store_conformance_pg_test for PostgreSQL (a throwaway cluster,
// tests/support/postgres_fixture.h; skipped when PostgreSQL is missing).
// Backend-specific behaviour (schema files, migrations, server restarts)
// is tested at the end of this file and in sqlite_store_test.cpp; the pure
// job-state functions in job_state_test.cpp.
#include <gtest/gtest.h>

#include <limits>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "hashsieve/store/container_store.h"
#include "hashsieve/store/job_store.h"
#include "hashsieve/store/open_store.h"
#include "hashsieve/store/store.h"
#include "store_test_data.h"

#if HASHSIEVE_CONFORMANCE_POSTGRES
#include "postgres_fixture.h"
#endif

namespace hashsieve::store {
namespace {

namespace fs = std::filesystem;
using testdata::entry;
using testdata::sample_facts;
using testdata::TempDir;


// A backend: a place to keep one store's data, opened through open_store
// (so the URL-scheme factory is covered too). open() may be called again
// for a second handle on the same data (another process, a restart).
#if HASHSIEVE_CONFORMANCE_SQLITE
struct SqliteBackend {
  static std::string skip_reason() { return ""; }
  std::string location() const { return dir.path(); }
  TempDir dir;
};
using Backends = ::testing::Types<SqliteBackend>;
#endif
#if HASHSIEVE_CONFORMANCE_POSTGRES
struct PostgresBackend {
  static std::string skip_reason() {
    auto& pg = testsupport::postgres_cluster();
    if (!pg.skip_reason().empty()) return pg.skip_reason();
    return "";
  }
  std::string location() {
    if (url.empty()) {
      auto& pg = testsupport::postgres_cluster();
      EXPECT_TRUE(pg.error().empty()) << pg.error();
      url = pg.create_database();
    }
    return url;
  }
  std::string url;
};
using Backends = ::testing::Types<PostgresBackend>;
#endif

class BackendNames {
 public:
  template <typename T>
  static std::string GetName(int) {
#if HASHSIEVE_CONFORMANCE_SQLITE
    if (std::is_same_v<T, SqliteBackend>) return "sqlite";
#endif
    return "postgres";
  }
};

const std::string kDigestA = "sha256:" + std::string(64, 'a');
const std::string kDigestB = "sha256:" + std::string(64, 'b');

template <typename B>
class StoreConformance : public ::testing::Test {
 protected:
  void SetUp() override {
    if (const std::string why = B::skip_reason(); !why.empty()) GTEST_SKIP() << why;
    auto s = open();
    ASSERT_TRUE(s.ok()) << s.error().message();
    set_ = std::move(s).value();
  }

  Result<StoreSet> open() {
    PostgresOptions options;
    options.clock = &clock_;
    return open_store(backend_.location(), options);
  }

  Store& store() { return *set_.store; }
  JobStore& jobs() { return *set_.jobs; }

  JobRecord create(const std::string& repo, const std::string& digest, JobSource source = JobSource::webhook) {
    auto c = jobs().create_or_get_job({repo, "localhost:5000/" + repo + "@" + digest, digest, source, false});
    EXPECT_TRUE(c.ok()) << (c.ok() ? "" : c.error().message());
    return c.ok() ? c->job : JobRecord{};
  }

  // Walks a job to `state` along legal edges.
  void drive(std::int64_t id, JobState state) {
    const std::vector<JobState> path = {JobState::fetching, JobState::hashing, JobState::matching, JobState::done};
    if (state == JobState::queued) return;
    ASSERT_TRUE(jobs().begin_attempt(id).ok());
    if (state == JobState::failed) {
      ASSERT_TRUE(jobs().transition(id, JobState::failed, Error(ErrorCode::not_found, "gone")).ok());
      return;
    }
    for (std::size_t i = 1; i < path.size() && path[i - 1] != state; ++i) {
      ASSERT_TRUE(jobs().transition(id, path[i]).ok());
    }
  }

  B backend_;
  ManualClock clock_;
  StoreSet set_;
};

TYPED_TEST_SUITE(StoreConformance, Backends, BackendNames);

// ---- layer facts (store.h) ----

TYPED_TEST(StoreConformance, LayerFactsPutThenHasAndGetRoundTrip) {
  const LayerKey key{"sha256:" + std::string(64, '1'), "crypto/1;sdbf/x"};
  auto before = this->store().has_layer(key);
  ASSERT_TRUE(before.ok()) << before.error().message();
  EXPECT_FALSE(*before);
  auto missing = this->store().get_layer_facts(key);
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->has_value());

  const LayerFacts facts = sample_facts();
  ASSERT_TRUE(this->store().put_layer_facts(key, facts).ok());
  auto after = this->store().has_layer(key);
  ASSERT_TRUE(after.ok());
  EXPECT_TRUE(*after);
  auto got = this->store().get_layer_facts(key);
  ASSERT_TRUE(got.ok());
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ(**got, facts);
}

TYPED_TEST(StoreConformance, LayerKeyIncludesHasherVersions) {
  const std::string diff = "sha256:" + std::string(64, '2');
  ASSERT_TRUE(this->store().put_layer_facts({diff, "v1"}, sample_facts()).ok());
  auto other = this->store().has_layer({diff, "v2"});
  ASSERT_TRUE(other.ok());
  EXPECT_FALSE(*other);
  EXPECT_FALSE(this->store().get_layer_facts({diff, "v2"})->has_value());
}

TYPED_TEST(StoreConformance, LayerFactsPersistAcrossReopenAndAreReplaced) {
  const LayerKey key{"sha256:" + std::string(64, '3'), "v"};
  ASSERT_TRUE(this->store().put_layer_facts(key, sample_facts()).ok());
  auto again = this->open();
  ASSERT_TRUE(again.ok()) << again.error().message();
  auto got = again->store->get_layer_facts(key);
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ(**got, sample_facts());

  struct Case {
    std::string name;
    LayerFacts facts;
  };
  LayerFacts smaller;
  smaller.files.push_back(entry("only", FactKind::regular, 1));
  const std::vector<Case> cases = {{"smaller", smaller}, {"empty layer", LayerFacts{}}, {"back to full", sample_facts()}};
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    ASSERT_TRUE(again->store->put_layer_facts(key, c.facts).ok());
    got = this->store().get_layer_facts(key);
    ASSERT_TRUE(got.ok() && got->has_value());
    EXPECT_EQ(**got, c.facts);
    EXPECT_TRUE(*this->store().has_layer(key));
  }
}

TYPED_TEST(StoreConformance, FailedLayerPutLeavesNoPartialLayer) {
  const LayerKey key{"sha256:" + std::string(64, '4'), "v"};
  ASSERT_TRUE(this->store().put_layer_facts(key, sample_facts()).ok());
  // The third row cannot be stored: the whole put must fail, keeping the
  // previous facts of `key` and storing nothing under `fresh`.
  LayerFacts bad = sample_facts();
  bad.files[2].size = std::uint64_t{1} << 63;
  auto st = this->store().put_layer_facts(key, bad);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code(), ErrorCode::invalid_argument);
  auto got = this->store().get_layer_facts(key);
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ(**got, sample_facts());
  const LayerKey fresh{"sha256:" + std::string(64, '5'), "v"};
  EXPECT_FALSE(this->store().put_layer_facts(fresh, bad).ok());
  auto has = this->store().has_layer(fresh);
  ASSERT_TRUE(has.ok());
  EXPECT_FALSE(*has);
}

// Text fields are stored byte for byte, whatever the characters (the
// PostgreSQL backend escapes them for COPY).
TYPED_TEST(StoreConformance, LayerFactsKeepEveryCharacter) {
  const std::vector<std::string> texts = {
      "tab\there", "new\nline", "cr\rreturn", "back\\slash", "\\N", "\\.", "quote'\"", "ünïcödé/路径", "%_*?[]", "",
      std::string(5000, 'x')};
  LayerFacts facts;
  for (const auto& t : texts) {
    FileFacts f = entry(t, FactKind::regular, 7);
    f.link_target = t;
    f.sdbf = t + "\n" + t;
    f.mode = 0xFFFFFFFF;
    facts.files.push_back(f);
  }
  facts.files.back().size = static_cast<std::uint64_t>(INT64_MAX);
  const LayerKey key{"sha256:\t\\weird", "v\n1"};
  ASSERT_TRUE(this->store().put_layer_facts(key, facts).ok());
  auto got = this->store().get_layer_facts(key);
  ASSERT_TRUE(got.ok() && got->has_value()) << (got.ok() ? "" : got.error().message());
  EXPECT_EQ(**got, facts);
}

// Concurrent puts of one key leave one complete version, never a mix.
TYPED_TEST(StoreConformance, ConcurrentLayerPutsLeaveOneCompleteVersion) {
  const LayerKey key{"sha256:" + std::string(64, '6'), "v"};
  auto second = this->open();
  ASSERT_TRUE(second.ok());
  std::vector<LayerFacts> versions(2);
  for (int v = 0; v < 2; ++v) {
    for (int i = 0; i < 200; ++i) versions[v].files.push_back(entry(std::string("f").append(std::to_string(v)).append("/").append(std::to_string(i)), FactKind::regular, i));
  }
  std::atomic<int> failures{0};
  auto writer = [&](Store* s, int v) {
    for (int k = 0; k < 10; ++k) {
      if (!s->put_layer_facts(key, versions[v]).ok()) ++failures;
    }
  };
  std::thread t1(writer, &this->store(), 0), t2(writer, second->store.get(), 1);
  for (int k = 0; k < 20; ++k) {
    auto got = this->store().get_layer_facts(key);
    ASSERT_TRUE(got.ok());
    if (got->has_value()) {
      EXPECT_TRUE(**got == versions[0] || **got == versions[1]);
    }
  }
  t1.join();
  t2.join();
  EXPECT_EQ(failures.load(), 0);
  auto got = this->store().get_layer_facts(key);
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_TRUE(**got == versions[0] || **got == versions[1]);
}

TYPED_TEST(StoreConformance, ScanResultsNewestFirst) {
  ScanRecord a{0, "docker-archive:a.tar", "sha256:aa", "linux/amd64", "2026-11-22T00:00:00Z", "known", "{}"};
  ScanRecord b{0, "dir:/x", "", "linux/amd64", "2026-11-22T00:01:00Z", "malicious", "{\"files\":1}"};
  auto ida = this->store().put_scan_result(a);
  auto idb = this->store().put_scan_result(b);
  ASSERT_TRUE(ida.ok() && idb.ok());
  EXPECT_GT(*ida, 0);
  EXPECT_GT(*idb, *ida);
  auto list = this->store().list_scan_results(10);
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 2u);
  b.id = *idb;
  a.id = *ida;
  EXPECT_EQ((*list)[0], b);
  EXPECT_EQ((*list)[1], a);
  auto one = this->store().list_scan_results(1);
  ASSERT_TRUE(one.ok());
  ASSERT_EQ(one->size(), 1u);
  EXPECT_EQ((*one)[0], b);
  EXPECT_TRUE(this->store().list_scan_results(0)->empty());
}

// ---- jobs (job_store.h) ----

// Every (from, to) pair through the store: the edges of is_legal_transition
// (pinned edge by edge in job_state_test.cpp) change the state, the others
// are invalid_argument and change nothing.
TYPED_TEST(StoreConformance, JobTransitionsFollowTheStateMachine) {
  using S = JobState;
  int n = 0;
  for (S from : kAllJobStates) {
    for (S to : kAllJobStates) {
      const std::string name = std::string(to_string(from)) + " -> " + to_string(to);
      SCOPED_TRACE(name);
      const bool want = from == to || is_legal_transition(from, to);
      ++n;
      JobRecord job = this->create("team/app", "sha256:" + std::to_string(n) + std::string(60, 'c'));
      this->drive(job.id, from);
      auto before = this->jobs().get_job(job.id);
      ASSERT_TRUE(before.ok() && before->has_value());
      ASSERT_EQ((*before)->state, from);
      this->clock_.advance_ms(5);
      auto r = this->jobs().transition(job.id, to);
      if (want) {
        ASSERT_TRUE(r.ok()) << r.error().message();
        EXPECT_EQ(r->state, to);
        if (from == to) {
          EXPECT_EQ(*r, **before);  // a same-state transition changes nothing
        }
        EXPECT_EQ(**this->jobs().get_job(job.id), *r);
      } else {
        ASSERT_FALSE(r.ok());
        EXPECT_EQ(r.error().code(), ErrorCode::invalid_argument);
        EXPECT_NE(r.error().message().find(name), std::string::npos) << r.error().message();
        EXPECT_EQ(**this->jobs().get_job(job.id), **before);  // nothing changed
      }
    }
  }
}

TYPED_TEST(StoreConformance, JobTransitionRecordsTimestampsAndErrors) {
  JobRecord job = this->create("team/app", kDigestA);
  EXPECT_EQ(job.state, JobState::queued);
  EXPECT_EQ(job.created_ms, this->clock_.now_ms());
  EXPECT_EQ(job.updated_ms, this->clock_.now_ms());
  EXPECT_EQ(job.started_ms, 0);
  EXPECT_EQ(job.attempts, 0u);
  EXPECT_EQ(job.runs, 1u);
  EXPECT_FALSE(job.published);
  this->clock_.advance_ms(100);
  auto started = this->jobs().begin_attempt(job.id);
  ASSERT_TRUE(started.ok());
  EXPECT_EQ(started->state, JobState::fetching);
  EXPECT_EQ(started->attempts, 1u);
  EXPECT_EQ(started->started_ms, job.created_ms + 100);
  this->clock_.advance_ms(100);
  auto retried = this->jobs().transition(job.id, JobState::queued, Error(ErrorCode::unavailable, "registry down"));
  ASSERT_TRUE(retried.ok());
  EXPECT_EQ(retried->error_code, "unavailable");
  EXPECT_EQ(retried->error_message, "registry down");
  EXPECT_EQ(retried->finished_ms, 0);
  EXPECT_EQ(retried->updated_ms, job.created_ms + 200);
  auto second = this->jobs().begin_attempt(job.id);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->attempts, 2u);
  EXPECT_EQ(second->error_code, "");  // a new attempt clears the last error
  EXPECT_EQ(second->started_ms, job.created_ms + 100);
  auto hashing = this->jobs().transition(job.id, JobState::hashing, Error(ErrorCode::io_error, "slow disk"));
  ASSERT_TRUE(hashing.ok());
  auto matching = this->jobs().transition(job.id, JobState::matching);
  ASSERT_TRUE(matching.ok());
  EXPECT_EQ(matching->error_code, "io_error");  // kept unless a new error is given
  this->clock_.advance_ms(100);
  auto failed = this->jobs().transition(job.id, JobState::failed, Error(ErrorCode::integrity_error, "digest mismatch"));
  ASSERT_TRUE(failed.ok());
  EXPECT_EQ(failed->finished_ms, job.created_ms + 300);
  EXPECT_EQ(failed->error_code, "integrity_error");
  EXPECT_EQ(failed->error_message, "digest mismatch");
  auto again = this->jobs().begin_attempt(job.id);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code(), ErrorCode::invalid_argument);
}

TYPED_TEST(StoreConformance, UnknownJobIsNotFound) {
  EXPECT_EQ(this->jobs().transition(99, JobState::fetching).error().code(), ErrorCode::not_found);
  EXPECT_EQ(this->jobs().begin_attempt(99).error().code(), ErrorCode::not_found);
  EXPECT_EQ(this->jobs().mark_published(99).error().code(), ErrorCode::not_found);
  auto missing = this->jobs().get_job(99);
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->has_value());
}

TYPED_TEST(StoreConformance, CreateOrGetJobDeduplicates) {
  struct Case {
    std::string name;
    JobRequest request;
    JobState existing_state;  // of the job created first with the same request
    bool want_created;
    bool want_requeued;
  };
  const std::string ref = "localhost:5000/team/app:1.0";
  const std::vector<Case> cases = {
      {"same digest while queued", {"team/app", ref, kDigestA, JobSource::crawler, false}, JobState::queued, false,
       false},
      {"same digest while hashing", {"team/app", ref, kDigestA, JobSource::webhook, false}, JobState::hashing, false,
       false},
      {"same digest done, not forced", {"team/app", ref, kDigestA, JobSource::webhook, false}, JobState::done, false,
       false},
      {"same digest done, forced", {"team/app", ref, kDigestA, JobSource::rescan, true}, JobState::done, false, true},
      {"same digest failed, forced", {"team/app", ref, kDigestA, JobSource::api, true}, JobState::failed, false,
       true},
      {"same digest running, forced", {"team/app", ref, kDigestA, JobSource::api, true}, JobState::matching, false,
       false},
      {"tag only while queued", {"team/app", ref, "", JobSource::api, false}, JobState::queued, false, false},
      {"tag only while fetching, forced", {"team/app", ref, "", JobSource::api, true}, JobState::fetching, false,
       false},
      {"tag only after done", {"team/app", ref, "", JobSource::api, false}, JobState::done, true, false},
      {"tag only after failed, forced", {"team/app", ref, "", JobSource::api, true}, JobState::failed, true, false},
  };
  int n = 0;
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    // A repository per case: the cases share one store.
    JobRequest request = c.request;
    request.repository = "team/case" + std::to_string(n++);
    JobRequest first = request;
    first.force = false;
    first.source = JobSource::webhook;
    auto made = this->jobs().create_or_get_job(first);
    ASSERT_TRUE(made.ok()) << made.error().message();
    EXPECT_TRUE(made->created);
    EXPECT_FALSE(made->requeued);
    this->drive(made->job.id, c.existing_state);
    ASSERT_TRUE(this->jobs().mark_published(made->job.id).ok());
    this->clock_.advance_ms(10);
    auto again = this->jobs().create_or_get_job(request);
    ASSERT_TRUE(again.ok()) << again.error().message();
    EXPECT_EQ(again->created, c.want_created);
    EXPECT_EQ(again->requeued, c.want_requeued);
    if (c.want_created) {
      EXPECT_NE(again->job.id, made->job.id);
      EXPECT_EQ(again->job.state, JobState::queued);
    } else {
      EXPECT_EQ(again->job.id, made->job.id);
    }
    if (c.want_requeued) {
      EXPECT_EQ(again->job.state, JobState::queued);
      EXPECT_EQ(again->job.source, request.source);
      EXPECT_EQ(again->job.runs, 2u);
      EXPECT_EQ(again->job.attempts, 0u);
      EXPECT_EQ(again->job.started_ms, 0);
      EXPECT_EQ(again->job.finished_ms, 0);
      EXPECT_EQ(again->job.error_code, "");
      EXPECT_EQ(again->job.updated_ms, this->clock_.now_ms());
      EXPECT_FALSE(again->job.published);
    } else if (!c.want_created) {
      EXPECT_EQ(again->job.state, c.existing_state);
      EXPECT_TRUE(again->job.published);
    }
  }
}

TYPED_TEST(StoreConformance, DifferentRepositoriesAreDifferentJobs) {
  EXPECT_NE(this->create("team/app", kDigestA).id, this->create("team/other", kDigestA).id);
  EXPECT_NE(this->create("team/app", kDigestA).id, this->create("team/app", kDigestB).id);
}

TYPED_TEST(StoreConformance, JobRequestWithoutReferenceOrDigestIsRejected) {
  auto r = this->jobs().create_or_get_job({"team/app", "", "", JobSource::api, false});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::invalid_argument);
  EXPECT_TRUE(this->jobs().list_jobs({})->empty());
}

// The batch of the webhook's group commit (ADR 0017): one transaction,
// results in request order, duplicates inside the batch share a job, and an
// invalid request fails the batch with nothing stored.
TYPED_TEST(StoreConformance, CreateOrGetJobsIsOneAllOrNothingBatch) {
  JobRecord existing = this->create("team/app", kDigestA);
  const std::string kDigestC = "sha256:" + std::string(64, 'c');
  auto ref = [](const std::string& d) { return "localhost:5000/team/app@" + d; };
  std::vector<JobRequest> batch = {
      {"team/app", ref(kDigestB), kDigestB, JobSource::webhook, false},  // new
      {"team/app", ref(kDigestA), kDigestA, JobSource::webhook, false},  // existing before the batch
      {"team/app", ref(kDigestB), kDigestB, JobSource::crawler, false},  // duplicate inside the batch
      {"team/app", "localhost:5000/team/app:v1", "", JobSource::api, false},  // tag only
      {"team/app", ref(kDigestC), kDigestC, JobSource::webhook, false},  // new
  };
  auto made = this->jobs().create_or_get_jobs(batch);
  ASSERT_TRUE(made.ok()) << made.error().message();
  ASSERT_EQ(made->size(), batch.size());
  struct Want {
    bool created;
    std::string digest;
  };
  const Want want[] = {{true, kDigestB}, {false, kDigestA}, {false, kDigestB}, {true, ""}, {true, kDigestC}};
  for (std::size_t i = 0; i < batch.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ((*made)[i].created, want[i].created);
    EXPECT_EQ((*made)[i].job.manifest_digest, want[i].digest);
    EXPECT_EQ((*made)[i].job.state, JobState::queued);
  }
  EXPECT_EQ((*made)[1].job.id, existing.id);
  EXPECT_EQ((*made)[2].job.id, (*made)[0].job.id);
  EXPECT_EQ(this->jobs().list_jobs({})->size(), 4u);

  // mark_published_all: all or nothing too.
  ASSERT_TRUE(this->jobs().mark_published_all({(*made)[0].job.id, (*made)[3].job.id}).ok());
  auto missing = this->jobs().mark_published_all({(*made)[4].job.id, 999'999});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code(), ErrorCode::not_found);
  EXPECT_NE(missing.error().message().find("999999"), std::string::npos) << missing.error().message();
  auto c = this->jobs().get_job((*made)[4].job.id);
  ASSERT_TRUE(c.ok() && c->has_value());
  EXPECT_FALSE((*c)->published);
  auto b = this->jobs().get_job((*made)[0].job.id);
  ASSERT_TRUE(b.ok() && b->has_value());
  EXPECT_TRUE((*b)->published);

  // One invalid request: nothing of the batch is stored.
  const std::string kDigestD = "sha256:" + std::string(64, 'd');
  auto bad = this->jobs().create_or_get_jobs(
      {{"team/app", ref(kDigestD), kDigestD, JobSource::webhook, false}, {"team/app", "", "", JobSource::api, false}});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code(), ErrorCode::invalid_argument);
  EXPECT_EQ(this->jobs().list_jobs({})->size(), 4u);
  auto empty = this->jobs().create_or_get_jobs({});
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
}

TYPED_TEST(StoreConformance, UnpublishedAndStaleListsForTheSweeps) {
  JobRecord a = this->create("team/app", kDigestA);
  JobRecord b = this->create("team/app", kDigestB);
  ASSERT_TRUE(this->jobs().mark_published(b.id).ok());
  auto unpublished = this->jobs().list_unpublished(10);
  ASSERT_TRUE(unpublished.ok());
  ASSERT_EQ(unpublished->size(), 1u);
  EXPECT_EQ((*unpublished)[0].id, a.id);
  EXPECT_TRUE(this->jobs().list_unpublished(0)->empty());
  ASSERT_TRUE(this->jobs().mark_published(a.id).ok());
  EXPECT_TRUE(this->jobs().list_unpublished(10)->empty());

  this->clock_.advance_ms(1'000);
  this->drive(b.id, JobState::done);
  auto stale = this->jobs().list_stale(this->clock_.now_ms(), 10);
  ASSERT_TRUE(stale.ok());
  ASSERT_EQ(stale->size(), 1u);  // b is finished, a untouched since creation
  EXPECT_EQ((*stale)[0].id, a.id);
  EXPECT_TRUE(this->jobs().list_stale(this->clock_.now_ms() - 1'000, 10)->empty());
  EXPECT_TRUE(this->jobs().list_stale(this->clock_.now_ms(), 0)->empty());
}

TYPED_TEST(StoreConformance, ListAndCountJobsByState) {
  JobRecord a = this->create("team/app", kDigestA);
  JobRecord b = this->create("team/other", kDigestB);
  JobRecord c = this->create("team/other", "sha256:" + std::string(64, 'c'));
  this->drive(b.id, JobState::hashing);
  this->drive(c.id, JobState::done);
  auto counts = this->jobs().count_jobs_by_state();
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ(*counts, (std::array<std::uint64_t, 6>{1, 0, 1, 0, 1, 0}));

  struct Case {
    std::string name;
    JobFilter filter;
    std::vector<std::int64_t> want;
  };
  auto filter = [](std::optional<JobState> state, std::string repo, std::int64_t after, std::size_t limit) {
    JobFilter f;
    f.state = state;
    f.repository = std::move(repo);
    f.after_id = after;
    f.limit = limit;
    return f;
  };
  const std::vector<Case> cases = {
      {"all", filter({}, "", 0, 100), {a.id, b.id, c.id}},
      {"state", filter(JobState::hashing, "", 0, 100), {b.id}},
      {"repository", filter({}, "team/other", 0, 100), {b.id, c.id}},
      {"state and repository", filter(JobState::done, "team/app", 0, 100), {}},
      {"first page", filter({}, "", 0, 2), {a.id, b.id}},
      {"second page", filter({}, "", b.id, 2), {c.id}},
      {"limit 0", filter({}, "", 0, 0), {}},
  };
  for (const auto& tc : cases) {
    SCOPED_TRACE(tc.name);
    auto got = this->jobs().list_jobs(tc.filter);
    ASSERT_TRUE(got.ok()) << got.error().message();
    std::vector<std::int64_t> ids;
    for (const auto& j : *got) ids.push_back(j.id);
    EXPECT_EQ(ids, tc.want);
  }
}

// Requests racing from several threads and two handles (as two processes)
// for the same jobs get one job each.
TYPED_TEST(StoreConformance, ConcurrentCreateOrGetMakesOneJob) {
  auto other = this->open();
  ASSERT_TRUE(other.ok());
  constexpr int kThreads = 6;
  constexpr int kKeys = 10;
  std::vector<std::vector<std::int64_t>> ids(kThreads, std::vector<std::int64_t>(kKeys));
  std::atomic<int> created{0};
  std::atomic<int> errors{0};
  auto run = [&](JobStore* s, int t) {
    for (int k = 0; k < kKeys; ++k) {
      const bool tag_only = k % 2 == 1;
      JobRequest r{"team/app", "localhost:5000/team/app:" + std::to_string(k),
                   tag_only ? "" : "sha256:" + std::string(63, 'e') + std::to_string(k), JobSource::webhook, false};
      auto c = s->create_or_get_job(r);
      if (!c.ok()) {
        ++errors;
        ADD_FAILURE() << c.error().message();
        continue;
      }
      ids[t][k] = c->job.id;
      if (c->created) ++created;
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back(run, t % 2 == 0 ? &this->jobs() : other->jobs.get(), t);
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(created.load(), kKeys);
  for (int t = 1; t < kThreads; ++t) EXPECT_EQ(ids[t], ids[0]);
  EXPECT_EQ(this->jobs().list_jobs({})->size(), static_cast<std::size_t>(kKeys));
}

// Workers updating one job at once lose no update (each read-check-write
// is atomic).
TYPED_TEST(StoreConformance, ConcurrentAttemptsOnOneJobLoseNoUpdate) {
  auto other = this->open();
  ASSERT_TRUE(other.ok());
  JobRecord job = this->create("team/app", kDigestA);
  constexpr int kThreads = 4;
  constexpr int kEach = 10;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      JobStore* s = t % 2 == 0 ? &this->jobs() : other->jobs.get();
      for (int k = 0; k < kEach; ++k) {
        if (!s->begin_attempt(job.id).ok()) ++failures;
        if (!s->transition(job.id, JobState::queued).ok()) ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  auto after = this->jobs().get_job(job.id);
  ASSERT_TRUE(after.ok() && after->has_value());
  EXPECT_EQ((*after)->attempts, static_cast<std::uint32_t>(kThreads * kEach));
}

// ---- image results ----

ImageResult result(const std::string& digest, const std::string& repo, std::int64_t at, const std::string& verdict,
                   const std::string& fp = "nsrl/known/v1", std::int64_t job_id = 1) {
  ImageResult r;
  r.image_digest = digest;
  r.repository = repo;
  r.reference = "localhost:5000/" + repo + "@" + digest;
  r.platform = "linux/amd64";
  r.job_id = job_id;
  r.scanned_ms = at;
  r.verdict = verdict;
  r.summary_json = R"({"files":2})";
  r.report_json = R"({"report":")" + verdict + R"("})";
  r.resolved_json = R"({"layers":[]})";
  r.refset_fingerprint = fp;
  r.bytes_hashed = 100;
  r.duration_ms = 7;
  return r;
}

TYPED_TEST(StoreConformance, ImageResultsFilesAndVerdictHistory) {
  std::vector<ImageFile> files = {
      {0, "bin/sh", 0, std::nullopt, 10, std::string(64, '1'), "known", "[]"},
      {0, "etc/evil\twith tab", 1, 2u, 20, std::string(64, '2'), "malicious", R"([{"kind":"exact","n":"a\\b"}])"},
      {0, "opt/x", 1, std::nullopt, 30, std::string(64, '3'), "unknown", "[]"},
  };
  ASSERT_TRUE(this->jobs().save_image_result(result(kDigestA, "team/app", 1000, "malicious"), files).ok());
  auto got = this->jobs().get_image(kDigestA);
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ(**got, result(kDigestA, "team/app", 1000, "malicious"));
  EXPECT_FALSE(this->jobs().get_image(kDigestB)->has_value());

  auto all = this->jobs().list_image_files(kDigestA, {});
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 3u);
  for (std::size_t i = 0; i < files.size(); ++i) {
    ImageFile want = files[i];
    want.seq = static_cast<std::int64_t>(i);  // assigned in order
    EXPECT_EQ((*all)[i], want);
  }

  struct Case {
    std::string name;
    FileFilter filter;
    std::vector<std::string> want_paths;
  };
  auto filter = [](std::string verdict, std::int64_t after_seq, std::size_t limit) {
    FileFilter f;
    f.verdict = std::move(verdict);
    f.after_seq = after_seq;
    f.limit = limit;
    return f;
  };
  const std::vector<Case> cases = {
      {"all", filter("", -1, 10), {"bin/sh", "etc/evil\twith tab", "opt/x"}},
      {"malicious", filter("malicious", -1, 10), {"etc/evil\twith tab"}},
      {"none similar", filter("similar", -1, 10), {}},
      {"page after first", filter("", 0, 1), {"etc/evil\twith tab"}},
      {"past the end", filter("", 2, 10), {}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto got_files = this->jobs().list_image_files(kDigestA, c.filter);
    ASSERT_TRUE(got_files.ok());
    std::vector<std::string> paths;
    for (const auto& f : *got_files) paths.push_back(f.path);
    EXPECT_EQ(paths, c.want_paths);
  }

  // Same verdict: no history. A changed verdict: one change with both fingerprints.
  ASSERT_TRUE(this->jobs().save_image_result(result(kDigestA, "team/app", 2000, "malicious"), files).ok());
  EXPECT_TRUE(this->jobs().list_verdict_changes(kDigestA, 10)->empty());
  ASSERT_TRUE(
      this->jobs().save_image_result(result(kDigestA, "team/app", 3000, "known", "nsrl/known/v2", 2), {}).ok());
  ASSERT_TRUE(this->jobs().save_image_result(result(kDigestB, "team/app", 3500, "unknown"), {}).ok());
  ASSERT_TRUE(
      this->jobs().save_image_result(result(kDigestB, "team/app", 4000, "similar", "nsrl/known/v2", 3), {}).ok());
  auto changes = this->jobs().list_verdict_changes(kDigestA, 10);
  ASSERT_TRUE(changes.ok());
  ASSERT_EQ(changes->size(), 1u);
  EXPECT_EQ((*changes)[0],
            (VerdictChange{kDigestA, 2, 3000, "malicious", "known", "nsrl/known/v1", "nsrl/known/v2"}));
  auto every = this->jobs().list_verdict_changes("", 10);
  ASSERT_TRUE(every.ok());
  ASSERT_EQ(every->size(), 2u);  // oldest first
  EXPECT_EQ((*every)[1], (VerdictChange{kDigestB, 3, 4000, "unknown", "similar", "nsrl/known/v1", "nsrl/known/v2"}));
  EXPECT_EQ(this->jobs().list_verdict_changes("", 1)->size(), 1u);
  EXPECT_TRUE(this->jobs().list_image_files(kDigestA, {})->empty());  // files replaced

  auto totals = this->jobs().scan_totals();
  ASSERT_TRUE(totals.ok());
  EXPECT_EQ(totals->scans, 5u);
  EXPECT_EQ(totals->bytes_hashed, 500u);
  EXPECT_EQ(totals->duration_ms_sum, 35);

  EXPECT_TRUE(this->jobs().list_images_not_matching("nsrl/known/v2", 10)->empty());
  EXPECT_EQ(this->jobs().list_images_not_matching("nsrl/known/v3", 10)->size(), 2u);
  EXPECT_EQ(this->jobs().list_images_not_matching("nsrl/known/v3", 1)->at(0).image_digest, kDigestA);  // oldest

  EXPECT_EQ(*this->jobs().job_images(2), std::vector<std::string>{kDigestA});
  EXPECT_TRUE(this->jobs().job_images(1)->empty());

  auto empty_digest = this->jobs().save_image_result(result("", "team/app", 1, "known"), {});
  EXPECT_EQ(empty_digest.error().code(), ErrorCode::invalid_argument);
}

TYPED_TEST(StoreConformance, ListImagesFiltersAndPaginatesNewestFirst) {
  const std::string c = "sha256:" + std::string(64, 'c');
  const std::string d = "sha256:" + std::string(64, 'd');
  const std::string upper = "sha256:" + std::string(64, 'C');  // byte order: 'C' < 'a'
  ASSERT_TRUE(this->jobs().save_image_result(result(kDigestA, "team/app", 1000, "known"), {}).ok());
  ASSERT_TRUE(this->jobs().save_image_result(result(kDigestB, "team/app", 2000, "malicious"), {}).ok());
  ASSERT_TRUE(this->jobs().save_image_result(result(c, "team/other", 2000, "unknown"), {}).ok());
  ASSERT_TRUE(this->jobs().save_image_result(result(upper, "team/other", 2000, "unknown"), {}).ok());
  ASSERT_TRUE(this->jobs().save_image_result(result(d, "team/other", 3000, "known"), {}).ok());
  struct Case {
    std::string name;
    ImageFilter filter;
    std::vector<std::string> want;
  };
  ImageFilter repo;
  repo.repository = "team/app";
  ImageFilter verdict;
  verdict.verdict = "known";
  ImageFilter window;
  window.since_ms = 2000;
  window.until_ms = 3000;
  ImageFilter page;
  page.limit = 2;
  ImageFilter next;
  next.limit = 2;
  next.before_ms = 2000;
  next.before_digest = c;
  ImageFilter last;
  last.limit = 2;
  last.before_ms = 2000;
  last.before_digest = upper;
  const std::vector<Case> cases = {
      {"all", {}, {d, c, kDigestB, upper, kDigestA}},
      {"repository", repo, {kDigestB, kDigestA}},
      {"verdict", verdict, {d, kDigestA}},
      {"time window", window, {c, kDigestB, upper}},
      {"first page", page, {d, c}},
      {"second page", next, {kDigestB, upper}},
      {"third page", last, {kDigestA}},
  };
  for (const auto& tc : cases) {
    SCOPED_TRACE(tc.name);
    auto got = this->jobs().list_images(tc.filter);
    ASSERT_TRUE(got.ok()) << got.error().message();
    std::vector<std::string> digests;
    for (const auto& r : *got) {
      digests.push_back(r.image_digest);
      EXPECT_TRUE(r.report_json.empty());  // summaries only
      EXPECT_TRUE(r.resolved_json.empty());
      EXPECT_FALSE(r.summary_json.empty());
    }
    EXPECT_EQ(digests, tc.want);
  }
  auto verdicts = this->jobs().count_images_by_verdict();
  ASSERT_TRUE(verdicts.ok());
  EXPECT_EQ(*verdicts, (std::vector<std::pair<std::string, std::uint64_t>>{
                           {"known", 2}, {"malicious", 1}, {"unknown", 2}}));
}

TYPED_TEST(StoreConformance, SearchPathsFindsSubstringsLiterally) {
  auto file = [](std::string path) { return ImageFile{0, std::move(path), 0, std::nullopt, 1, "", "known", "[]"}; };
  ASSERT_TRUE(this->jobs()
                  .save_image_result(result(kDigestB, "team/app", 1000, "known"),
                                     {file("usr/bin/openssl"), file("etc/ssl/openssl.cnf"), file("usr/lib/libssl.so.3"),
                                      file("opt/100%_done"), file("opt/100x done"), file("USR/BIN/OPENSSL")})
                  .ok());
  ASSERT_TRUE(this->jobs()
                  .save_image_result(result(kDigestA, "team/app", 1000, "known"),
                                     {file("bin/busybox"), file("usr/bin/openssl")})
                  .ok());
  struct Case {
    std::string name;
    std::string query;
    std::size_t limit;
    std::vector<PathMatch> want;
  };
  const std::vector<Case> cases = {
      {"substring in two images", "openssl", 10,
       {{kDigestA, 1, "usr/bin/openssl"}, {kDigestB, 0, "usr/bin/openssl"}, {kDigestB, 1, "etc/ssl/openssl.cnf"}}},
      {"limit", "openssl", 2, {{kDigestA, 1, "usr/bin/openssl"}, {kDigestB, 0, "usr/bin/openssl"}}},
      {"case-sensitive", "OPENSSL", 10, {{kDigestB, 5, "USR/BIN/OPENSSL"}}},
      {"percent and underscore are literal", "0%_", 10, {{kDigestB, 3, "opt/100%_done"}}},
      {"short query", "so", 10, {{kDigestB, 2, "usr/lib/libssl.so.3"}}},
      {"no match", "python", 10, {}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto got = this->jobs().search_paths(c.query, c.limit);
    ASSERT_TRUE(got.ok()) << got.error().message();
    EXPECT_EQ(*got, c.want);
  }
  // Replacing a result replaces what search finds.
  ASSERT_TRUE(this->jobs().save_image_result(result(kDigestB, "team/app", 2000, "known"), {file("bin/sh")}).ok());
  EXPECT_EQ(*this->jobs().search_paths("openssl", 10), (std::vector<PathMatch>{{kDigestA, 1, "usr/bin/openssl"}}));
  auto empty = this->jobs().search_paths("", 10);
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.error().code(), ErrorCode::invalid_argument);
}

// A path in a layer tar is bytes, not text: Latin-1 names, a stray 0xff, a
// cut UTF-8 sequence. Layer facts and image files keep them byte for byte,
// and path search compares bytes (a UTF-8 query does not match a Latin-1
// byte, U+FFFD does not match an invalid byte).
TYPED_TEST(StoreConformance, NonUtf8PathsRoundTripByteForByte) {
  const std::string ff = "opt/\xff\xfe-data";
  const std::string latin1 = "srv/caf\xe9.txt";
  const std::string cut = "tmp/euro\xe2\x82";
  const std::string utf8 = "srv/caf\xc3\xa9.txt";  // "café" in UTF-8
  LayerFacts facts;
  for (const auto& p : {ff, latin1, cut, utf8}) facts.files.push_back(entry(p, FactKind::regular, 3));
  facts.files.push_back(entry("usr/bin/link\xff", FactKind::symlink, 0, "target\xff\x80"));
  const LayerKey key{"sha256:bytes", "v1"};
  ASSERT_TRUE(this->store().put_layer_facts(key, facts).ok());
  auto got = this->store().get_layer_facts(key);
  ASSERT_TRUE(got.ok() && got->has_value()) << (got.ok() ? "" : got.error().message());
  EXPECT_EQ(**got, facts);

  auto file = [](std::string path) { return ImageFile{0, std::move(path), 0, std::nullopt, 1, "", "unknown", "[]"}; };
  const std::vector<ImageFile> files = {file(ff), file(latin1), file(cut), file(utf8)};
  auto saved = this->jobs().save_image_result(result(kDigestA, "team/app", 1000, "unknown"), files);
  ASSERT_TRUE(saved.ok()) << saved.error().message();
  auto listed = this->jobs().list_image_files(kDigestA, {});
  ASSERT_TRUE(listed.ok()) << listed.error().message();
  ASSERT_EQ(listed->size(), files.size());
  for (std::size_t i = 0; i < files.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ((*listed)[i].path, files[i].path);
  }

  struct Case {
    std::string name;
    std::string query;
    std::vector<PathMatch> want;
  };
  const std::vector<Case> cases = {
      {"UTF-8 query finds non-UTF-8 paths", "/caf", {{kDigestA, 1, latin1}, {kDigestA, 3, utf8}}},
      {"invalid byte as the query", "\xff", {{kDigestA, 0, ff}}},
      {"Latin-1 byte matches only the Latin-1 name", "caf\xe9", {{kDigestA, 1, latin1}}},
      {"UTF-8 e-acute matches only the UTF-8 name", "caf\xc3\xa9", {{kDigestA, 3, utf8}}},
      {"U+FFFD is not an invalid byte", "\xef\xbf\xbd", {}},
      {"cut sequence", "euro\xe2\x82", {{kDigestA, 2, cut}}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto found = this->jobs().search_paths(c.query, 10);
    ASSERT_TRUE(found.ok()) << found.error().message();
    EXPECT_EQ(*found, c.want);
  }
}

TYPED_TEST(StoreConformance, JobsAndResultsSurviveReopen) {
  JobRecord a = this->create("team/app", kDigestA);
  this->drive(a.id, JobState::hashing);
  ASSERT_TRUE(this->jobs().save_image_result(result(kDigestA, "team/app", 1000, "known"), {}).ok());
  this->set_ = {};
  auto again = this->open();
  ASSERT_TRUE(again.ok()) << again.error().message();
  auto back = again->jobs->get_job(a.id);
  ASSERT_TRUE(back.ok() && back->has_value());
  EXPECT_EQ((*back)->state, JobState::hashing);
  EXPECT_TRUE(again->jobs->get_image(kDigestA)->has_value());
}

// ---- running containers (container_store.h) ----

ContainerRecord container(std::string id, std::string at, std::string verdict) {
  ContainerRecord r;
  r.id = std::move(id);
  r.name = "c-" + r.id.substr(0, 4);
  r.image = "busybox:test";
  r.image_id = "sha256:" + std::string(64, 'a');
  r.image_scan_id = 7;
  r.scanned_at = std::move(at);
  r.verdict = std::move(verdict);
  r.drifted_files = 3;
  r.errors = 1;
  r.result_json = R"({"id":")" + r.id + R"("})";
  return r;
}

TYPED_TEST(StoreConformance, ContainerResultsRoundTripAndTheNewestReplaces) {
  ContainerStore& s = *this->set_.containers;
  const auto a = container("aaaa1111", "2026-11-22T10:00:00Z", "unknown");
  const auto b = container("bbbb2222", "2026-11-22T11:00:00Z", "malicious");
  ASSERT_TRUE(s.put_container_result(a).ok());
  ASSERT_TRUE(s.put_container_result(b).ok());
  auto a2 = a;
  a2.scanned_at = "2026-11-22T12:00:00Z";
  a2.verdict = "modified";
  ASSERT_TRUE(s.put_container_result(a2).ok());
  auto list = s.list_container_results(10);
  ASSERT_TRUE(list.ok()) << list.error().message();
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0], a2);
  EXPECT_EQ((*list)[1], b);
  auto one = s.list_container_results(1);
  ASSERT_TRUE(one.ok());
  ASSERT_EQ(one->size(), 1u);
  EXPECT_EQ((*one)[0], a2);
}

std::vector<std::string> ids_of(const std::vector<ContainerRecord>& rows) {
  std::vector<std::string> ids;
  for (const auto& r : rows) ids.push_back(r.id);
  return ids;
}

TYPED_TEST(StoreConformance, ContainerPagesAreKeysetByIdAndFilterByVerdict) {
  ContainerStore& s = *this->set_.containers;
  // Inserted out of ID order, with scanned_at not in ID order either.
  ASSERT_TRUE(s.put_container_result(container("cccc", "2026-11-22T10:00:00Z", "known")).ok());
  ASSERT_TRUE(s.put_container_result(container("aaaa", "2026-11-22T12:00:00Z", "malicious")).ok());
  ASSERT_TRUE(s.put_container_result(container("dddd", "2026-11-22T09:00:00Z", "malicious")).ok());
  ASSERT_TRUE(s.put_container_result(container("bbbb", "2026-11-22T11:00:00Z", "known")).ok());
  // "B" sorts before "a" in byte order (and after it in most locales).
  ASSERT_TRUE(s.put_container_result(container("BBBB", "2026-11-22T08:00:00Z", "known")).ok());
  struct Case {
    std::string name;
    ContainerFilter filter;
    std::vector<std::string> want;
  };
  const Case cases[] = {
      {"all, byte order", {"", "", 10}, {"BBBB", "aaaa", "bbbb", "cccc", "dddd"}},
      {"limit cuts", {"", "", 2}, {"BBBB", "aaaa"}},
      {"limit 1", {"", "", 1}, {"BBBB"}},
      {"limit 0", {"", "", 0}, {}},
      {"after an id", {"", "aaaa", 2}, {"bbbb", "cccc"}},
      {"after an id that is not stored", {"", "bc", 10}, {"cccc", "dddd"}},
      {"after the last", {"", "dddd", 10}, {}},
      {"verdict", {"malicious", "", 10}, {"aaaa", "dddd"}},
      {"verdict after an id", {"known", "bbbb", 10}, {"cccc"}},
      {"verdict nobody has", {"suspicious", "", 10}, {}},
      {"huge limit", {"", "", std::numeric_limits<std::size_t>::max()}, {"BBBB", "aaaa", "bbbb", "cccc", "dddd"}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto got = s.list_containers(c.filter);
    ASSERT_TRUE(got.ok()) << got.error().message();
    EXPECT_EQ(ids_of(*got), c.want);
  }
  auto full = s.list_containers({"", "aaaa", 1});
  ASSERT_TRUE(full.ok());
  ASSERT_EQ(full->size(), 1u);
  EXPECT_EQ((*full)[0], container("bbbb", "2026-11-22T11:00:00Z", "known"));  // every column
}

TYPED_TEST(StoreConformance, ContainerPagesNeitherSkipNorRepeatWhenAResultIsReplaced) {
  ContainerStore& s = *this->set_.containers;
  const std::vector<std::string> ids = {"a001", "a002", "a003", "a004", "a005", "a006", "a007"};
  for (std::size_t i = 0; i < ids.size(); ++i) {
    const std::string at = "2026-11-22T10:00:0" + std::to_string(i) + "Z";
    ASSERT_TRUE(s.put_container_result(container(ids[i], at, "known")).ok());
  }
  struct Case {
    std::string name;
    std::string replaced;  // rescanned (newest of all) after the first page
  };
  const Case cases[] = {
      {"a row of the first page", "a001"},
      {"the first page's last row", "a003"},
      {"a row of a later page", "a006"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    std::vector<std::string> seen;
    ContainerFilter filter{"", "", 3};
    bool replaced = false;
    for (int page = 0; page < 10; ++page) {
      auto rows = s.list_containers(filter);
      ASSERT_TRUE(rows.ok()) << rows.error().message();
      for (const auto& r : *rows) seen.push_back(r.id);
      if (rows->size() < filter.limit) break;
      filter.after_id = rows->back().id;
      if (!replaced) {
        auto newer = container(c.replaced, "2026-11-23T00:00:00Z", "modified");
        ASSERT_TRUE(s.put_container_result(newer).ok());
        replaced = true;
      }
    }
    EXPECT_EQ(seen, ids);
  }
}

TYPED_TEST(StoreConformance, ContainerByIdOrUniquePrefix) {
  ContainerStore& s = *this->set_.containers;
  ASSERT_TRUE(s.put_container_result(container("abcd1111", "t1", "known")).ok());
  ASSERT_TRUE(s.put_container_result(container("abcd2222", "t2", "known")).ok());
  ASSERT_TRUE(s.put_container_result(container("abcd22", "t2", "known")).ok());
  ASSERT_TRUE(s.put_container_result(container("ffff%_00", "t3", "known")).ok());
  struct Case {
    std::string name, query;
    bool ok;
    std::string want_id;  // "" = not found
  };
  const Case cases[] = {
      {"full id", "abcd2222", true, "abcd2222"},  {"unique prefix", "abcd1", true, "abcd1111"},
      {"ambiguous prefix", "abcd", false, ""},    {"too short", "abc", false, ""},
      {"no match", "0000", true, ""},             {"wildcards are literal", "ffff%", true, "ffff%_00"},
      {"wildcard does not match", "abc%", true, ""},
      {"an exact id that is also a prefix", "abcd22", true, "abcd22"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto got = s.get_container_result(c.query);
    ASSERT_EQ(got.ok(), c.ok);
    if (!c.ok) {
      EXPECT_EQ(got.error().code(), ErrorCode::invalid_argument);
      continue;
    }
    if (c.want_id.empty()) {
      EXPECT_FALSE(got->has_value());
    } else {
      ASSERT_TRUE(got->has_value());
      EXPECT_EQ((*got)->id, c.want_id);
    }
  }
}

TYPED_TEST(StoreConformance, ContainerScheduleSurvivesReopenAndRemoveDropsBoth) {
  ContainerStore& s = *this->set_.containers;
  ASSERT_TRUE(s.put_schedule({"bbbb", 1000, 0, 0}).ok());
  ASSERT_TRUE(s.put_schedule({"aaaa", 2000, 2500, 2}).ok());
  ASSERT_TRUE(s.put_schedule({"bbbb", 3000, 0, 0}).ok());
  ASSERT_TRUE(s.put_container_result(container("aaaa", "t", "known")).ok());
  auto again = this->open();
  ASSERT_TRUE(again.ok());
  ContainerStore& r = *again->containers;
  auto sched = r.list_schedule();
  ASSERT_TRUE(sched.ok());
  ASSERT_EQ(sched->size(), 2u);
  EXPECT_EQ((*sched)[0], (ScheduleState{"aaaa", 2000, 2500, 2}));
  EXPECT_EQ((*sched)[1], (ScheduleState{"bbbb", 3000, 0, 0}));
  ASSERT_TRUE(r.remove_container("aaaa").ok());
  sched = s.list_schedule();
  ASSERT_TRUE(sched.ok());
  EXPECT_EQ(*sched, (std::vector<ScheduleState>{{"bbbb", 3000, 0, 0}}));
  auto gone = s.get_container_result("aaaa");
  ASSERT_TRUE(gone.ok());
  EXPECT_FALSE(gone->has_value());
  EXPECT_TRUE(s.remove_container("never").ok());  // removing nothing is not an error
}

// ---- open_store ----

TEST(OpenStore, RejectsWhatIsNeitherADirectoryNorAKnownUrl) {
  struct Case {
    std::string name;
    std::string url;
  };
  const std::vector<Case> cases = {
      {"empty", ""},
      {"unknown scheme", "mysql://localhost/db"},
      {"sqlite without a directory", "sqlite:"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto s = open_store(c.url);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.error().code(), ErrorCode::invalid_argument);
  }
}

#if HASHSIEVE_CONFORMANCE_SQLITE
TEST(OpenStore, SqliteSchemeAndPlainDirectoryAreTheSameStore) {
  TempDir dir;
  {
    auto s = open_store("sqlite://" + dir.path());
    ASSERT_TRUE(s.ok()) << s.error().message();
    EXPECT_EQ(s->backend, "sqlite");
    ASSERT_TRUE(s->store->put_layer_facts({"sha256:x", "v"}, {}).ok());
  }
  auto s = open_store(dir.path());
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE(*s->store->has_layer({"sha256:x", "v"}));
  EXPECT_TRUE(fs::exists(dir.path() + "/store.db"));
}
#endif

#if HASHSIEVE_CONFORMANCE_POSTGRES
// ---- PostgreSQL only: migrations, the pool, server restarts ----

class PostgresStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto& pg = testsupport::postgres_cluster();
    if (!pg.skip_reason().empty()) GTEST_SKIP() << pg.skip_reason();
    ASSERT_TRUE(pg.error().empty()) << pg.error();
    url_ = pg.create_database();
    ASSERT_FALSE(url_.empty());
    db_ = url_.substr(std::string("postgresql:///").size(), url_.find('?') - std::string("postgresql:///").size());
  }
  std::string query(const std::string& sql) {
    std::string value;
    const std::string err = testsupport::postgres_cluster().execute(db_, sql, &value);
    EXPECT_TRUE(err.empty()) << sql << ": " << err;
    return value;
  }
  std::string url_;
  std::string db_;
};

TEST_F(PostgresStoreTest, MigrationsApplyOnceUnderConcurrentOpens) {
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      auto s = open_store(url_);
      if (s.ok()) {
        ++ok;
        EXPECT_EQ(s->backend, "postgres");
      } else {
        ADD_FAILURE() << s.error().message();
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 4);
  EXPECT_EQ(query("SELECT string_agg(version::text || ':' || name, ',' ORDER BY version) FROM schema_migrations"),
            "1:0001_initial,2:0002_path_search,3:0003_containers,4:0004_rodata_digests,5:0005_byte_paths");
  EXPECT_EQ(query("SELECT count(*) FROM scan_totals"), "1");
}

// A database at schema 3 with rows (a deployment from before migration
// 0005) upgrades in place: the text paths become the same bytes, and search
// finds them through the new column.
TEST_F(PostgresStoreTest, Migration0005KeepsThePathsOfAnOlderDatabase) {
  auto sql_of = [](const std::string& name) {
    std::ifstream in(std::string(HASHSIEVE_PG_MIGRATIONS_DIR) + "/" + name + ".sql");
    EXPECT_TRUE(in.good()) << name;
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  query("CREATE TABLE schema_migrations(version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
        " applied_at TIMESTAMPTZ NOT NULL DEFAULT now())");
  int version = 0;
  for (const std::string name : {"0001_initial", "0002_path_search", "0003_containers"}) {
    query(sql_of(name));
    query("INSERT INTO schema_migrations(version, name) VALUES(" + std::to_string(++version) + ", '" + name + "')");
  }
  const std::string path = "usr/bin/caf\xc3\xa9";
  query("INSERT INTO layers(diff_id, hasher_versions, files) VALUES('sha256:old', 'v1', 1)");
  query("INSERT INTO layer_files(layer_id, seq, path, kind, size, mode, link_target, md5, sha1, sha256, crc32,"
        " sdbf, tlsh, ssdeep, content_keys, similarity) SELECT id, 0, '" + path +
        "', 'symlink', 0, 511, 'tool', '', '', '', '', '', '', '', '', false FROM layers");
  query("INSERT INTO image_files(image_digest, seq, path, layer, hidden_by, size, sha256, verdict, evidence_json)"
        " VALUES('sha256:img', 0, '" + path + "', 0, NULL, 1, '', 'known', '[]')");

  auto s = open_store(url_);
  ASSERT_TRUE(s.ok()) << s.error().message();
  EXPECT_EQ(query("SELECT max(version) FROM schema_migrations"), "5");
  auto facts = s->store->get_layer_facts({"sha256:old", "v1"});
  ASSERT_TRUE(facts.ok() && facts->has_value()) << (facts.ok() ? "" : facts.error().message());
  ASSERT_EQ((*facts)->files.size(), 1u);
  EXPECT_EQ((*facts)->files[0].path, path);
  EXPECT_EQ((*facts)->files[0].link_target, "tool");
  EXPECT_EQ((*facts)->files[0].kind, FactKind::symlink);
  auto files = s->jobs->list_image_files("sha256:img", {});
  ASSERT_TRUE(files.ok()) << files.error().message();
  ASSERT_EQ(files->size(), 1u);
  EXPECT_EQ((*files)[0].path, path);
  auto found = s->jobs->search_paths("caf\xc3\xa9", 10);
  ASSERT_TRUE(found.ok()) << found.error().message();
  EXPECT_EQ(*found, (std::vector<PathMatch>{{"sha256:img", 0, path}}));
}

TEST_F(PostgresStoreTest, RefusesADatabaseFromANewerBuild) {
  ASSERT_TRUE(open_store(url_).ok());
  query("INSERT INTO schema_migrations(version, name) VALUES(999, '0999_future')");
  auto s = open_store(url_);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code(), ErrorCode::unsupported);
  EXPECT_NE(s.error().message().find("999"), std::string::npos) << s.error().message();
}

TEST_F(PostgresStoreTest, PathSearchUsesTheTrigramIndex) {
  auto s = open_store(url_);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(query("SELECT count(*) FROM pg_extension WHERE extname = 'pg_trgm'"), "1");
  // With sequential scans priced out, the planner must be able to answer the
  // search's LIKE from the trigram index (an index it cannot use for LIKE
  // '%...%' would leave a Seq Scan in the plan).
  const std::string plan = query(
      "SET enable_seqscan = off; EXPLAIN (FORMAT JSON) SELECT image_digest, seq, path FROM image_files"
      " WHERE path_search LIKE '%openssl%' AND position('openssl'::bytea IN path) > 0"
      " ORDER BY image_digest, seq LIMIT 10");
  EXPECT_NE(plan.find("image_files_path_trgm"), std::string::npos) << plan;
}

TEST_F(PostgresStoreTest, BadConninfoIsUnavailable) {
  auto& pg = testsupport::postgres_cluster();
  auto s = open_store("postgresql:///nosuchdb?host=" + pg.socket_dir() + "&port=" + std::to_string(pg.port()) +
                      "&user=postgres");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code(), ErrorCode::unavailable);
  EXPECT_NE(s.error().message().find("nosuchdb"), std::string::npos) << s.error().message();
}

// Retries `op` for up to 30 s while it fails with unavailable.
template <typename F>
auto retry_unavailable(F op) -> decltype(op()) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  for (;;) {
    auto r = op();
    if (r.ok() || r.error().code() != ErrorCode::unavailable || std::chrono::steady_clock::now() > deadline) return r;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

// The integration scenario of issue 7: the server restarts under an open
// pool; a call may fail with unavailable, a retry succeeds, nothing is lost.
TEST_F(PostgresStoreTest, PoolRecoversFromAServerRestart) {
  PostgresOptions options;
  options.pool_size = 3;
  auto s = open_store(url_, options);
  ASSERT_TRUE(s.ok()) << s.error().message();
  // Fill the pool with several open connections.
  std::vector<std::thread> warm;
  for (int i = 0; i < 3; ++i) warm.emplace_back([&] { (void)s->jobs->count_jobs_by_state(); });
  for (auto& t : warm) t.join();
  auto job = s->jobs->create_or_get_job({"team/app", "r", kDigestA, JobSource::webhook, false});
  ASSERT_TRUE(job.ok());
  ASSERT_TRUE(s->store->put_layer_facts({"sha256:x", "v"}, sample_facts()).ok());

  auto& pg = testsupport::postgres_cluster();
  ASSERT_TRUE(pg.restart()) << pg.log_tail();

  // The first call may meet a connection to the old server; it fails with
  // unavailable and retires every idle connection, so the next call works.
  auto first = s->jobs->get_job(job->job.id);
  if (!first.ok()) {
    EXPECT_EQ(first.error().code(), ErrorCode::unavailable) << first.error().message();
  }
  auto back = s->jobs->get_job(job->job.id);
  ASSERT_TRUE(back.ok()) << back.error().message();
  ASSERT_TRUE(back->has_value());
  EXPECT_EQ((*back)->id, job->job.id);
  auto facts = s->store->get_layer_facts({"sha256:x", "v"});
  ASSERT_TRUE(facts.ok() && facts->has_value());
  EXPECT_EQ(**facts, sample_facts());
  // Every pooled connection works again: concurrent calls all succeed.
  std::atomic<int> failures{0};
  std::vector<std::thread> after;
  for (int i = 0; i < 6; ++i) {
    after.emplace_back([&] {
      auto r = s->jobs->begin_attempt(job->job.id);
      if (!r.ok()) {
        ++failures;
        ADD_FAILURE() << r.error().message();
      }
    });
  }
  for (auto& t : after) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ((*s->jobs->get_job(job->job.id))->attempts, 6u);
}

// While the server is down every call is unavailable (not io_error, not a
// hang); after it is back the same store works.
TEST_F(PostgresStoreTest, CallsWhileTheServerIsDownAreUnavailable) {
  auto s = open_store(url_);
  ASSERT_TRUE(s.ok()) << s.error().message();
  ASSERT_TRUE(s->jobs->create_or_get_job({"team/app", "r", kDigestA, JobSource::webhook, false}).ok());
  auto& pg = testsupport::postgres_cluster();
  ASSERT_TRUE(pg.stop());
  struct Case {
    std::string name;
    std::function<Status()> call;
  };
  const std::vector<Case> cases = {
      {"read on a pooled connection", [&]() -> Status {
         auto r = s->jobs->list_jobs({});
         return r.ok() ? Status{} : Status(std::move(r).error());
       }},
      {"write needing a new connection", [&]() -> Status { return s->store->put_layer_facts({"sha256:y", "v"}, {}); }},
      {"transaction", [&]() -> Status {
         auto r = s->jobs->create_or_get_job({"team/app", "r", kDigestB, JobSource::webhook, false});
         return r.ok() ? Status{} : Status(std::move(r).error());
       }},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto st = c.call();
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().code(), ErrorCode::unavailable) << st.error().message();
  }
  ASSERT_TRUE(pg.start()) << pg.log_tail();
  auto r = retry_unavailable([&] { return s->jobs->list_jobs({}); });
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(r->size(), 1u);  // the write attempted while down did not happen
  EXPECT_FALSE(*s->store->has_layer({"sha256:y", "v"}));
}
#endif

}  // namespace
}  // namespace hashsieve::store
