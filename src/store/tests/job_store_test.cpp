#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <set>
#include <thread>

#include "hashsieve/store/job_store.h"
#include "hashsieve/store/store.h"

namespace hashsieve::store {
namespace {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "hashsieve-jobs-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() { fs::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

const std::string kDigestA = "sha256:" + std::string(64, 'a');
const std::string kDigestB = "sha256:" + std::string(64, 'b');

class JobStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { jobs_ = open(); }
  std::unique_ptr<JobStore> open() {
    auto s = open_sqlite_job_store(dir_.path(), &clock_);
    EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().message());
    return std::move(s).value();
  }
  JobRecord create(const std::string& repo, const std::string& digest, JobSource source = JobSource::webhook) {
    auto c = jobs_->create_or_get_job({repo, "localhost:5000/" + repo + "@" + digest, digest, source, false});
    EXPECT_TRUE(c.ok()) << (c.ok() ? "" : c.error().message());
    return c.ok() ? c->job : JobRecord{};
  }
  // Walks a job to `state` along legal edges.
  void drive(std::int64_t id, JobState state) {
    const std::vector<JobState> path = {JobState::fetching, JobState::hashing, JobState::matching, JobState::done};
    if (state == JobState::queued) return;
    ASSERT_TRUE(jobs_->begin_attempt(id).ok());
    if (state == JobState::failed) {
      ASSERT_TRUE(jobs_->transition(id, JobState::failed, Error(ErrorCode::not_found, "gone")).ok());
      return;
    }
    for (std::size_t i = 1; i < path.size() && path[i - 1] != state; ++i) {
      ASSERT_TRUE(jobs_->transition(id, path[i]).ok());
    }
  }

  TempDir dir_;
  ManualClock clock_;
  std::unique_ptr<JobStore> jobs_;
};

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

// Every (from, to) pair, through the store: legal edges change the state,
// illegal ones are invalid_argument and change nothing.
TEST_F(JobStoreTest, TransitionsFollowTheStateMachine) {
  using S = JobState;
  const std::set<std::pair<S, S>> legal = {
      {S::queued, S::fetching},   {S::queued, S::failed},    {S::fetching, S::hashing}, {S::fetching, S::failed},
      {S::fetching, S::queued},   {S::hashing, S::matching}, {S::hashing, S::failed},   {S::hashing, S::queued},
      {S::matching, S::done},     {S::matching, S::failed},  {S::matching, S::queued},
  };
  int n = 0;
  for (S from : kAllJobStates) {
    for (S to : kAllJobStates) {
      if (from == to) continue;
      const std::string name = std::string(to_string(from)) + " -> " + to_string(to);
      SCOPED_TRACE(name);
      const bool want = legal.count({from, to}) > 0;
      EXPECT_EQ(is_legal_transition(from, to), want);
      ++n;
      JobRecord job = create("team/app", "sha256:" + std::to_string(n) + std::string(60, 'c'));
      drive(job.id, from);
      ASSERT_EQ(jobs_->get_job(job.id)->value().state, from);
      auto r = jobs_->transition(job.id, to);
      if (want) {
        ASSERT_TRUE(r.ok()) << r.error().message();
        EXPECT_EQ(r->state, to);
      } else {
        ASSERT_FALSE(r.ok());
        EXPECT_EQ(r.error().code(), ErrorCode::invalid_argument);
        EXPECT_NE(r.error().message().find(name), std::string::npos) << r.error().message();
        EXPECT_EQ(jobs_->get_job(job.id)->value().state, from);
      }
    }
  }
}

TEST_F(JobStoreTest, TransitionRecordsTimestampsAndErrors) {
  JobRecord job = create("team/app", kDigestA);
  EXPECT_EQ(job.state, JobState::queued);
  EXPECT_EQ(job.created_ms, clock_.now_ms());
  EXPECT_EQ(job.started_ms, 0);
  clock_.advance_ms(100);
  auto started = jobs_->begin_attempt(job.id);
  ASSERT_TRUE(started.ok());
  EXPECT_EQ(started->state, JobState::fetching);
  EXPECT_EQ(started->attempts, 1u);
  EXPECT_EQ(started->started_ms, job.created_ms + 100);
  clock_.advance_ms(100);
  auto retried = jobs_->transition(job.id, JobState::queued, Error(ErrorCode::unavailable, "registry down"));
  ASSERT_TRUE(retried.ok());
  EXPECT_EQ(retried->error_code, "unavailable");
  EXPECT_EQ(retried->error_message, "registry down");
  EXPECT_EQ(retried->finished_ms, 0);
  auto second = jobs_->begin_attempt(job.id);
  EXPECT_EQ(second->attempts, 2u);
  EXPECT_EQ(second->error_code, "");  // a new attempt clears the last error
  EXPECT_EQ(second->started_ms, job.created_ms + 100);
  clock_.advance_ms(100);
  auto failed = jobs_->transition(job.id, JobState::failed, Error(ErrorCode::integrity_error, "digest mismatch"));
  ASSERT_TRUE(failed.ok());
  EXPECT_EQ(failed->finished_ms, job.created_ms + 300);
  EXPECT_EQ(failed->error_code, "integrity_error");
  auto again = jobs_->begin_attempt(job.id);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code(), ErrorCode::invalid_argument);
}

TEST_F(JobStoreTest, UnknownJobIsNotFound) {
  EXPECT_EQ(jobs_->transition(99, JobState::fetching).error().code(), ErrorCode::not_found);
  EXPECT_EQ(jobs_->begin_attempt(99).error().code(), ErrorCode::not_found);
  EXPECT_EQ(jobs_->mark_published(99).error().code(), ErrorCode::not_found);
  EXPECT_FALSE(jobs_->get_job(99)->has_value());
}

TEST_F(JobStoreTest, CreateOrGetDeduplicates) {
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
      {"tag only after done", {"team/app", ref, "", JobSource::api, false}, JobState::done, true, false},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    TempDir dir;
    auto store = open_sqlite_job_store(dir.path(), &clock_);
    ASSERT_TRUE(store.ok());
    jobs_ = std::move(store).value();
    JobRequest first = c.request;
    first.force = false;
    first.source = JobSource::webhook;
    auto made = jobs_->create_or_get_job(first);
    ASSERT_TRUE(made.ok());
    EXPECT_TRUE(made->created);
    drive(made->job.id, c.existing_state);
    auto again = jobs_->create_or_get_job(c.request);
    ASSERT_TRUE(again.ok()) << again.error().message();
    EXPECT_EQ(again->created, c.want_created);
    EXPECT_EQ(again->requeued, c.want_requeued);
    if (!c.want_created) {
      EXPECT_EQ(again->job.id, made->job.id);
    }
    if (c.want_requeued) {
      EXPECT_EQ(again->job.state, JobState::queued);
      EXPECT_EQ(again->job.source, c.request.source);
      EXPECT_EQ(again->job.runs, 2u);
      EXPECT_FALSE(again->job.published);
    }
  }
}

TEST_F(JobStoreTest, DifferentRepositoriesAreDifferentJobs) {
  EXPECT_NE(create("team/app", kDigestA).id, create("team/other", kDigestA).id);
  EXPECT_NE(create("team/app", kDigestA).id, create("team/app", kDigestB).id);
}

TEST_F(JobStoreTest, RequestWithoutReferenceOrDigestIsRejected) {
  auto r = jobs_->create_or_get_job({"team/app", "", "", JobSource::api, false});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::invalid_argument);
}

TEST_F(JobStoreTest, UnpublishedAndStaleListsForTheSweeps) {
  JobRecord a = create("team/app", kDigestA);
  JobRecord b = create("team/app", kDigestB);
  ASSERT_TRUE(jobs_->mark_published(b.id).ok());
  EXPECT_TRUE(jobs_->list_unpublished(clock_.now_ms(), 10)->empty());  // too fresh: its creator is publishing
  clock_.advance_ms(1);
  auto unpublished = jobs_->list_unpublished(clock_.now_ms(), 10);
  ASSERT_TRUE(unpublished.ok());
  ASSERT_EQ(unpublished->size(), 1u);
  EXPECT_EQ((*unpublished)[0].id, a.id);
  ASSERT_TRUE(jobs_->mark_published(a.id).ok());
  EXPECT_TRUE(jobs_->list_unpublished(clock_.now_ms(), 10)->empty());

  clock_.advance_ms(1'000);
  drive(b.id, JobState::done);
  auto stale = jobs_->list_stale(clock_.now_ms(), 10);
  ASSERT_TRUE(stale.ok());
  ASSERT_EQ(stale->size(), 1u);  // b is finished, a untouched since creation
  EXPECT_EQ((*stale)[0].id, a.id);
  EXPECT_TRUE(jobs_->list_stale(clock_.now_ms() - 1'001, 10)->empty());  // a was created 1,001 ms ago
}

TEST_F(JobStoreTest, ListAndCountJobsByState) {
  JobRecord a = create("team/app", kDigestA);
  JobRecord b = create("team/other", kDigestB);
  drive(b.id, JobState::hashing);
  auto counts = jobs_->count_jobs_by_state();
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ((*counts)[static_cast<std::size_t>(JobState::queued)], 1u);
  EXPECT_EQ((*counts)[static_cast<std::size_t>(JobState::hashing)], 1u);
  EXPECT_EQ((*counts)[static_cast<std::size_t>(JobState::done)], 0u);
  JobFilter f;
  f.state = JobState::hashing;
  EXPECT_EQ(jobs_->list_jobs(f)->at(0).id, b.id);
  f = {};
  f.repository = "team/app";
  EXPECT_EQ(jobs_->list_jobs(f)->size(), 1u);
  f = {};
  f.limit = 1;
  auto page1 = jobs_->list_jobs(f);
  ASSERT_EQ(page1->size(), 1u);
  EXPECT_EQ(page1->at(0).id, a.id);
  f.after_id = a.id;
  EXPECT_EQ(jobs_->list_jobs(f)->at(0).id, b.id);
}

ImageResult result(const std::string& digest, const std::string& repo, std::int64_t at, const std::string& verdict,
                   const std::string& fp = "nsrl/known/v1") {
  ImageResult r;
  r.image_digest = digest;
  r.repository = repo;
  r.reference = "localhost:5000/" + repo + "@" + digest;
  r.platform = "linux/amd64";
  r.job_id = 1;
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

TEST_F(JobStoreTest, ImageResultsFilesAndVerdictHistory) {
  std::vector<ImageFile> files = {
      {0, "bin/sh", 0, std::nullopt, 10, std::string(64, '1'), "known", "[]"},
      {0, "etc/evil", 1, 2u, 20, std::string(64, '2'), "malicious", R"([{"kind":"exact"}])"},
      {0, "opt/x", 1, std::nullopt, 30, std::string(64, '3'), "unknown", "[]"},
  };
  ASSERT_TRUE(jobs_->save_image_result(result(kDigestA, "team/app", 1000, "malicious"), files).ok());
  auto got = jobs_->get_image(kDigestA);
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ(**got, result(kDigestA, "team/app", 1000, "malicious"));
  EXPECT_FALSE(jobs_->get_image(kDigestB)->has_value());

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
      {"all", filter("", -1, 10), {"bin/sh", "etc/evil", "opt/x"}},
      {"malicious", filter("malicious", -1, 10), {"etc/evil"}},
      {"none similar", filter("similar", -1, 10), {}},
      {"page after first", filter("", 0, 1), {"etc/evil"}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto got_files = jobs_->list_image_files(kDigestA, c.filter);
    ASSERT_TRUE(got_files.ok());
    std::vector<std::string> paths;
    for (const auto& f : *got_files) paths.push_back(f.path);
    EXPECT_EQ(paths, c.want_paths);
  }
  auto evil = jobs_->list_image_files(kDigestA, filter("malicious", -1, 10))->at(0);
  EXPECT_EQ(evil.hidden_by, std::optional<std::uint32_t>(2u));
  EXPECT_EQ(evil.evidence_json, R"([{"kind":"exact"}])");

  // Same verdict: no history. A changed verdict: one change with both fingerprints.
  ASSERT_TRUE(jobs_->save_image_result(result(kDigestA, "team/app", 2000, "malicious"), files).ok());
  EXPECT_TRUE(jobs_->list_verdict_changes(kDigestA, 10)->empty());
  ASSERT_TRUE(jobs_->save_image_result(result(kDigestA, "team/app", 3000, "known", "nsrl/known/v2"), {}).ok());
  auto changes = jobs_->list_verdict_changes(kDigestA, 10);
  ASSERT_TRUE(changes.ok());
  ASSERT_EQ(changes->size(), 1u);
  EXPECT_EQ((*changes)[0],
            (VerdictChange{kDigestA, 1, 3000, "malicious", "known", "nsrl/known/v1", "nsrl/known/v2"}));
  EXPECT_TRUE(jobs_->list_image_files(kDigestA, {})->empty());  // files replaced

  auto totals = jobs_->scan_totals();
  ASSERT_TRUE(totals.ok());
  EXPECT_EQ(totals->scans, 3u);
  EXPECT_EQ(totals->bytes_hashed, 300u);
  EXPECT_EQ(totals->duration_ms_sum, 21);

  auto not_matching = jobs_->list_images_not_matching("nsrl/known/v2", 10);
  EXPECT_TRUE(not_matching->empty());
  EXPECT_EQ(jobs_->list_images_not_matching("nsrl/known/v3", 10)->size(), 1u);

  auto empty_digest = jobs_->save_image_result(result("", "team/app", 1, "known"), {});
  EXPECT_EQ(empty_digest.error().code(), ErrorCode::invalid_argument);
}

TEST_F(JobStoreTest, ListImagesFiltersAndPaginatesNewestFirst) {
  const std::string c = "sha256:" + std::string(64, 'c');
  const std::string d = "sha256:" + std::string(64, 'd');
  ASSERT_TRUE(jobs_->save_image_result(result(kDigestA, "team/app", 1000, "known"), {}).ok());
  ASSERT_TRUE(jobs_->save_image_result(result(kDigestB, "team/app", 2000, "malicious"), {}).ok());
  ASSERT_TRUE(jobs_->save_image_result(result(c, "team/other", 2000, "unknown"), {}).ok());
  ASSERT_TRUE(jobs_->save_image_result(result(d, "team/other", 3000, "known"), {}).ok());
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
  const std::vector<Case> cases = {
      {"all", {}, {d, c, kDigestB, kDigestA}},
      {"repository", repo, {kDigestB, kDigestA}},
      {"verdict", verdict, {d, kDigestA}},
      {"time window", window, {c, kDigestB}},
      {"first page", page, {d, c}},
      {"second page", next, {kDigestB, kDigestA}},
  };
  for (const auto& tc : cases) {
    SCOPED_TRACE(tc.name);
    auto got = jobs_->list_images(tc.filter);
    ASSERT_TRUE(got.ok()) << got.error().message();
    std::vector<std::string> digests;
    for (const auto& r : *got) {
      digests.push_back(r.image_digest);
      EXPECT_TRUE(r.report_json.empty());  // summaries only
    }
    EXPECT_EQ(digests, tc.want);
  }
  auto verdicts = jobs_->count_images_by_verdict();
  ASSERT_TRUE(verdicts.ok());
  EXPECT_EQ(*verdicts, (std::vector<std::pair<std::string, std::uint64_t>>{
                           {"known", 2}, {"malicious", 1}, {"unknown", 1}}));
}

TEST_F(JobStoreTest, SharesStoreDbWithTheLayerCacheAndSurvivesReopen) {
  auto cache = open_sqlite_store(dir_.path());
  ASSERT_TRUE(cache.ok());
  JobRecord a = create("team/app", kDigestA);
  drive(a.id, JobState::hashing);
  ASSERT_TRUE((*cache)->put_layer_facts({"sha256:x", "v1"}, {}).ok());
  jobs_.reset();
  jobs_ = open();
  auto back = jobs_->get_job(a.id);
  ASSERT_TRUE(back.ok() && back->has_value());
  EXPECT_EQ((*back)->state, JobState::hashing);
  EXPECT_TRUE(*(*cache)->has_layer({"sha256:x", "v1"}));
}

// Two connections (as two processes) racing to create the same job get one.
TEST_F(JobStoreTest, ConcurrentCreateOrGetMakesOneJob) {
  auto other = open();
  std::vector<std::int64_t> ids(2);
  std::vector<bool> created(2);
  auto run = [&](JobStore* s, int i) {
    for (int k = 0; k < 50; ++k) {
      auto c = s->create_or_get_job({"team/app", "r", "sha256:" + std::string(63, 'e') + std::to_string(k % 10),
                                     JobSource::webhook, false});
      if (c.ok() && k == 0) {
        ids[i] = c->job.id;
        created[i] = c->created;
      }
    }
  };
  std::thread t1(run, jobs_.get(), 0), t2(run, other.get(), 1);
  t1.join();
  t2.join();
  EXPECT_EQ(ids[0], ids[1]);
  EXPECT_NE(created[0], created[1]);
  auto all = jobs_->list_jobs({});
  EXPECT_EQ(all->size(), 10u);
}

}  // namespace
}  // namespace hashsieve::store
