// The worker pool end to end: real scans of OCI layouts built here, the
// embedded queue and job store, a SIGKILLed worker process, stop deadlines
// and rescans after a reference-set change.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <mutex>
#include <thread>

#include "hashsieve/scanners/yara.h"
#include "hashsieve/worker/worker_pool.h"
#include "layer_test_util.h"
#include "oci_layout_writer.h"
#include "resolved_json.h"
#include "scan_fixture.h"

namespace hashsieve::worker {
namespace {

namespace fs = std::filesystem;
using image::testing::LayerBlob;
using image::testing::OciLayoutWriter;
using image::testing::TarBuilder;
using scan::testing::Bytes;
using scan::testing::random_bytes;
using scan::testing::TempDir;
using std::chrono::milliseconds;
using store::JobState;

std::string text(const Bytes& b) { return std::string(b.begin(), b.end()); }

constexpr std::int64_t kLeaseMs = 60'000;

// Everything a worker process opens, so a forked child can open its own.
struct Stack {
  std::unique_ptr<store::Store> store;
  std::unique_ptr<store::JobStore> jobs;
  std::unique_ptr<queue::JobQueue> queue;
  std::vector<refset::LoadedRefset> sets;

  static Stack open(const std::string& dir, const Clock* clock, const std::vector<std::string>& set_names,
                    std::uint32_t max_attempts = 3) {
    Stack s;
    auto st = store::open_sqlite_store(dir);
    EXPECT_TRUE(st.ok());
    if (st.ok()) s.store = std::move(st).value();
    auto j = store::open_sqlite_job_store(dir, clock);
    EXPECT_TRUE(j.ok());
    if (j.ok()) s.jobs = std::move(j).value();
    queue::QueueOptions qo;
    qo.clock = clock;
    qo.lease = milliseconds(kLeaseMs);
    qo.max_attempts = max_attempts;
    qo.poll_interval = milliseconds(5);
    auto q = queue::open_sqlite_queue(dir, qo);
    EXPECT_TRUE(q.ok());
    if (q.ok()) s.queue = std::move(q).value();
    s.sets = scan::testing::load_sets(dir, set_names);
    return s;
  }
  WorkerEnvironment env() { return {store.get(), jobs.get(), queue.get(), &sets, nullptr}; }
};

class WorkerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ls_ = random_bytes(20000, 11);
    evil_ = random_bytes(9000, 12);
    other_ = random_bytes(12000, 13);
    build_set("distro", refset::ReferenceClass::known, {{"usr/bin/ls", ls_}});
    reference_ = write_image("app", {{"usr/bin/ls", ls_}, {"opt/evil", evil_}}, {{"opt/data", other_}});
  }

  void build_set(const std::string& name, refset::ReferenceClass cls,
                 const std::vector<std::pair<std::string, Bytes>>& files) {
    auto catalog = refset::RefsetCatalog::open(data_.path());
    ASSERT_TRUE(catalog.ok());
    const fs::path src = fs::path(data_.path()) / "sources" / name;
    fs::remove_all(src);
    for (const auto& [path, bytes] : files) scan::testing::write_file(src / path, bytes);
    refset::BuildRequest req;
    req.name = name;
    req.set_class = cls;
    req.paths = {src.string()};
    req.force = true;
    auto r = refset::build_refset(*catalog, req);
    ASSERT_TRUE(r.ok()) << r.error().message();
  }

  // An OCI layout with one image of two layers, tagged "1.0"; returns its reference.
  std::string write_image(const std::string& name, const std::vector<std::pair<std::string, Bytes>>& layer0,
                          const std::vector<std::pair<std::string, Bytes>>& layer1) {
    const fs::path root = fs::path(images_.path()) / name;
    OciLayoutWriter w(root);
    std::vector<LayerBlob> blobs;
    for (const auto* layer : {&layer0, &layer1}) {
      TarBuilder tar;
      for (const auto& [path, bytes] : *layer) tar.file(path, text(bytes));
      const auto b = tar.build();
      blobs.push_back({"application/vnd.oci.image.layer.v1.tar", b, image::testing::sha256(b)});
    }
    const auto img = w.image("linux", "amd64", blobs);
    w.tag("1.0", image::media_type::kOciManifest, img.manifest);
    manifest_digest_ = img.manifest_digest;
    return "oci:" + root.string() + ":1.0";
  }

  WorkerOptions options() {
    WorkerOptions o;
    o.workers = 2;
    o.clock = &clock_;
    o.receive_wait = milliseconds(20);
    o.retry_initial = milliseconds(1'000);
    o.retry_max = milliseconds(8'000);
    o.source.retry.max_attempts = 1;
    o.source.retry.initial_backoff_ms = 1;
    return o;
  }

  store::JobRequest request(const std::string& ref, const std::string& digest = "") {
    return {"local/app", ref, digest, store::JobSource::api, false};
  }

  store::JobRecord job(Stack& s, std::int64_t id) {
    auto j = s.jobs->get_job(id);
    EXPECT_TRUE(j.ok() && j->has_value());
    return j.ok() && j->has_value() ? **j : store::JobRecord{};
  }

  TempDir data_, images_;
  ManualClock clock_;
  Bytes ls_, evil_, other_;
  std::string reference_, manifest_digest_;
};

TEST(JobMessageTest, RoundTripsAndRejectsMalformedBodies) {
  const auto m = job_message(42);
  EXPECT_EQ(m.key, "job:42");
  EXPECT_EQ(*parse_job_message(m.body), 42);
  for (const char* bad : {"", "{}", "[]", R"({"job_id":"7"})", R"({"job_id":0})", R"({"job_id":-3})", "{"}) {
    SCOPED_TRACE(bad);
    auto r = parse_job_message(bad);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code(), ErrorCode::parse_error);
  }
}

TEST(ResolvedJsonTest, RoundTripsEveryField) {
  image::ResolvedImage img;
  img.reference = "localhost:5000/team/app:1.0";
  img.repository = "team/app";
  img.manifest_digest = "sha256:" + std::string(64, 'a');
  img.config_digest = "sha256:" + std::string(64, 'c');
  img.platform = {"linux", "arm64", "v8"};
  img.layers = {{"application/vnd.oci.image.layer.v1.tar+gzip", "sha256:1", "sha256:2", 1234}};
  img.skipped = {"attestation sha256:3"};
  auto back = resolved_from_json(resolved_to_json(img));
  ASSERT_TRUE(back.ok()) << back.error().message();
  EXPECT_EQ(back->reference, img.reference);
  EXPECT_EQ(back->repository, img.repository);
  EXPECT_EQ(back->manifest_digest, img.manifest_digest);
  EXPECT_EQ(back->config_digest, img.config_digest);
  EXPECT_EQ(back->platform, img.platform);
  ASSERT_EQ(back->layers.size(), 1u);
  EXPECT_EQ(back->layers[0].media_type, img.layers[0].media_type);
  EXPECT_EQ(back->layers[0].digest, "sha256:1");
  EXPECT_EQ(back->layers[0].diff_id, "sha256:2");
  EXPECT_EQ(back->layers[0].size, 1234u);
  EXPECT_EQ(back->skipped, img.skipped);
  EXPECT_EQ(resolved_from_json(R"({"reference":1})").error().code(), ErrorCode::parse_error);
}

TEST_F(WorkerTest, EnqueueDeduplicatesAndTheSweepPublishesOrphans) {
  Stack s = Stack::open(data_.path(), &clock_, {"distro"});
  auto a = enqueue_scan(*s.jobs, *s.queue, request(reference_, manifest_digest_));
  ASSERT_TRUE(a.ok()) << a.error().message();
  EXPECT_TRUE(a->created);
  EXPECT_TRUE(a->job.published);
  auto b = enqueue_scan(*s.jobs, *s.queue, request(reference_, manifest_digest_));
  ASSERT_TRUE(b.ok());
  EXPECT_FALSE(b->created);
  EXPECT_EQ(b->job.id, a->job.id);
  EXPECT_EQ(s.queue->stats()->ready, 1u);

  // A crash after the row commit and before the publish: the sweep finds it.
  auto orphan = s.jobs->create_or_get_job(request(reference_ + "-other"));
  ASSERT_TRUE(orphan.ok());
  EXPECT_EQ(*requeue_orphans(*s.jobs, *s.queue, milliseconds(30'000), &clock_), 0u);  // its creator may be publishing
  clock_.advance_ms(30'000);
  EXPECT_EQ(*requeue_orphans(*s.jobs, *s.queue, milliseconds(30'000), &clock_), 1u);
  EXPECT_EQ(*requeue_orphans(*s.jobs, *s.queue, milliseconds(30'000), &clock_), 0u);
  EXPECT_EQ(s.queue->stats()->ready, 2u);
  EXPECT_TRUE(job(s, orphan->job.id).published);

  // A lost message (e.g. a purged queue): the stale sweep republishes.
  EXPECT_EQ(*requeue_stale(*s.jobs, *s.queue, milliseconds(20'000), &clock_), 2u);
  EXPECT_EQ(*requeue_stale(*s.jobs, *s.queue, milliseconds(40'000), &clock_), 0u);
}

TEST_F(WorkerTest, ScansAnImageThroughEveryStateAndStoresTheResult) {
  build_set("bad", refset::ReferenceClass::malicious, {{"evil.bin", evil_}});
  Stack s = Stack::open(data_.path(), &clock_, {"distro", "bad"});
  std::vector<JobState> states;
  std::vector<JobOutcome> outcomes;
  WorkerOptions o = options();
  o.on_state = [&](std::int64_t, JobState st) { states.push_back(st); };
  o.on_outcome = [&](const JobOutcome& out) { outcomes.push_back(out); };
  WorkerPool pool(s.env(), o);
  auto e = enqueue_scan(*s.jobs, *s.queue, request(reference_));
  ASSERT_TRUE(e.ok());
  auto handled = pool.process_one(milliseconds(0));
  ASSERT_TRUE(handled.ok() && *handled);

  EXPECT_EQ(states, (std::vector<JobState>{JobState::fetching, JobState::hashing, JobState::matching, JobState::done}));
  const auto done = job(s, e->job.id);
  EXPECT_EQ(done.state, JobState::done);
  EXPECT_EQ(done.attempts, 1u);
  EXPECT_GT(done.finished_ms, 0);
  EXPECT_EQ(s.queue->stats()->depth(), 0u);
  ASSERT_EQ(outcomes.size(), 1u);
  EXPECT_EQ(outcomes[0].verdicts, std::vector<std::string>{"malicious"});
  EXPECT_GT(outcomes[0].bytes_hashed, 0u);

  auto images = s.jobs->job_images(e->job.id);
  ASSERT_TRUE(images.ok());
  ASSERT_EQ(*images, std::vector<std::string>{manifest_digest_});
  auto img = s.jobs->get_image(manifest_digest_);
  ASSERT_TRUE(img.ok() && img->has_value());
  EXPECT_EQ((*img)->verdict, "malicious");
  EXPECT_EQ((*img)->repository, "local/app");
  EXPECT_EQ((*img)->refset_fingerprint, refset_fingerprint(s.sets));
  const auto report = nlohmann::json::parse((*img)->report_json);
  EXPECT_EQ(report["summary"]["verdict"], "malicious");
  EXPECT_EQ(report["image"]["digest"], manifest_digest_);

  store::FileFilter malicious;
  malicious.verdict = "malicious";
  auto files = s.jobs->list_image_files(manifest_digest_, malicious);
  ASSERT_TRUE(files.ok());
  ASSERT_EQ(files->size(), 1u);
  EXPECT_EQ((*files)[0].path, "/opt/evil");
  EXPECT_EQ(nlohmann::json::parse((*files)[0].evidence_json)[0]["set"], "bad");
  EXPECT_EQ(s.jobs->list_image_files(manifest_digest_, {})->size(), 3u);
  EXPECT_EQ(s.jobs->scan_totals()->scans, 1u);

  // A redelivered message of the finished job is settled without a scan.
  ASSERT_TRUE(s.queue->publish(job_message(e->job.id)).ok());
  ASSERT_TRUE(*pool.process_one(milliseconds(0)));
  EXPECT_EQ(s.queue->stats()->depth(), 0u);
  EXPECT_EQ(s.jobs->scan_totals()->scans, 1u);
  EXPECT_EQ(job(s, e->job.id).attempts, 1u);
}

// Another attempt takes the job over mid-scan (a duplicate delivery, or a
// lease that ran out on a slow worker): the first attempt leaves the job's
// state to the new owner and stores nothing.
TEST_F(WorkerTest, SupersededAttemptLeavesTheJobToTheNewOwner) {
  Stack s = Stack::open(data_.path(), &clock_, {"distro"});
  auto e = enqueue_scan(*s.jobs, *s.queue, request(reference_));
  ASSERT_TRUE(e.ok());
  WorkerOptions o = options();
  o.on_state = [&](std::int64_t id, JobState st) {
    if (st == JobState::hashing) (void)s.jobs->begin_attempt(id);
  };
  WorkerPool pool(s.env(), o);
  ASSERT_TRUE(*pool.process_one(milliseconds(0)));
  const auto j = job(s, e->job.id);
  EXPECT_EQ(j.state, JobState::fetching);  // where the new owner put it
  EXPECT_EQ(j.attempts, 2u);
  EXPECT_EQ(s.jobs->scan_totals()->scans, 0u);
  EXPECT_EQ(s.queue->stats()->depth(), 0u);
}

// A scan that runs longer than the lease keeps its message: scan progress
// extends the lease, so no second worker gets the job meanwhile.
TEST_F(WorkerTest, ScanProgressExtendsTheLease) {
  Stack s = Stack::open(data_.path(), &clock_, {"distro"});
  Stack other = Stack::open(data_.path(), &clock_, {"distro"});
  auto e = enqueue_scan(*s.jobs, *s.queue, request(reference_));
  ASSERT_TRUE(e.ok());
  bool redelivered = false;
  WorkerOptions o = options();
  o.on_state = [&](std::int64_t, JobState st) {
    if (st == JobState::hashing) clock_.advance_ms(kLeaseMs / 2);  // progress before layer 0 extends from here
    if (st == JobState::matching) {
      clock_.advance_ms(kLeaseMs * 3 / 4);  // past the first lease, within the extended one
      auto d = other.queue->receive(milliseconds(0));
      redelivered = !d.ok() || d->has_value();
    }
  };
  WorkerPool pool(s.env(), o);
  ASSERT_TRUE(*pool.process_one(milliseconds(0)));
  EXPECT_FALSE(redelivered);
  EXPECT_EQ(job(s, e->job.id).state, JobState::done);
  EXPECT_EQ(s.queue->stats()->depth(), 0u);
}

TEST_F(WorkerTest, PermanentErrorsFailTheJobAndAreAcked) {
  Stack s = Stack::open(data_.path(), &clock_, {"distro"});
  struct Case {
    std::string name;
    std::string reference;
    std::string want_code;
  };
  const std::vector<Case> cases = {
      {"missing layout", "oci:" + images_.path() + "/nope:1.0", "not_found"},
      {"missing tag", reference_.substr(0, reference_.size() - 3) + "2.0", "not_found"},
      {"no registry host", "team/app:1.0", "invalid_argument"},
  };
  WorkerPool pool(s.env(), options());
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto e = enqueue_scan(*s.jobs, *s.queue, request(c.reference));
    ASSERT_TRUE(e.ok());
    ASSERT_TRUE(*pool.process_one(milliseconds(0)));
    const auto j = job(s, e->job.id);
    EXPECT_EQ(j.state, JobState::failed);
    EXPECT_EQ(j.error_code, c.want_code) << j.error_message;
    EXPECT_FALSE(j.error_message.empty());
    EXPECT_EQ(s.queue->stats()->depth(), 0u);
  }
  // A message that is not a job is dead-lettered, not retried.
  ASSERT_TRUE(s.queue->publish({"junk", "not json"}).ok());
  ASSERT_TRUE(*pool.process_one(milliseconds(0)));
  EXPECT_EQ(s.queue->stats()->dead, 1u);
}

TEST_F(WorkerTest, TransientErrorsRetryWithBackoffThenFail) {
  Stack s = Stack::open(data_.path(), &clock_, {"distro"}, /*max_attempts=*/3);
  WorkerPool pool(s.env(), options());
  // Nothing listens on port 1: the registry is unavailable.
  auto e = enqueue_scan(*s.jobs, *s.queue, request("localhost:1/team/app:1.0"));
  ASSERT_TRUE(e.ok());
  const std::vector<std::int64_t> backoffs = {1'000, 2'000};
  for (std::size_t i = 0; i < backoffs.size(); ++i) {
    SCOPED_TRACE(i);
    ASSERT_TRUE(*pool.process_one(milliseconds(0)));
    const auto j = job(s, e->job.id);
    EXPECT_EQ(j.state, JobState::queued);
    EXPECT_EQ(j.error_code, "unavailable");
    EXPECT_EQ(j.attempts, i + 1);
    EXPECT_EQ(s.queue->stats()->delayed, 1u);
    clock_.advance_ms(backoffs[i] - 1);
    EXPECT_FALSE(*pool.process_one(milliseconds(0)));  // still waiting out the backoff
    clock_.advance_ms(1);
  }
  ASSERT_TRUE(*pool.process_one(milliseconds(0)));
  const auto j = job(s, e->job.id);
  EXPECT_EQ(j.state, JobState::failed);
  EXPECT_EQ(j.attempts, 3u);
  EXPECT_NE(j.error_message.find("gave up after 3 attempts"), std::string::npos) << j.error_message;
  EXPECT_EQ(s.queue->stats()->dead, 1u);
}

// A third-party scanner that cannot be reached (clamd gone).
class UnreachableScanner final : public scanners::ExternalScanner {
 public:
  std::string name() const override { return "clamd"; }
  std::string version() const override { return "1.0"; }
  std::string signature_version() const override { return "db 1"; }
  Result<std::vector<scanners::ScanFinding>> scan_buffer(std::span<const std::uint8_t>,
                                                         const std::string& display_name) const override {
    return Error(ErrorCode::unavailable, "clamd: connecting: no such socket (" + display_name + ")");
  }
  const scanners::ScanLimits& limits() const override { return limits_; }

 private:
  scanners::ScanLimits limits_;
};

// scanners.image_scans: the pool's scans run the configured scanners on the
// image's non-known files, and the result's fingerprint names them.
TEST_F(WorkerTest, ExternalScannersRunOnTheImagesNonKnownFiles) {
  const std::string marker = "xx HASHSIEVE-MARKER xx";
  reference_ = write_image("marked", {{"usr/bin/ls", ls_}}, {{"opt/marked", Bytes(marker.begin(), marker.end())}});
  const std::string rule = "rule marker { strings: $a = \"HASHSIEVE-MARKER\" condition: $a }\n";
  TempDir rules;
  scan::testing::write_file(fs::path(rules.path()) / "marker.yar", Bytes(rule.begin(), rule.end()));
  auto yara = scanners::open_yara({rules.path(), {}});
  ASSERT_TRUE(yara.ok()) << yara.error().message();
  Stack s = Stack::open(data_.path(), &clock_, {"distro"});
  WorkerOptions o = options();
  o.scan.external_scanners = {yara->value.get()};
  WorkerPool pool(s.env(), o);
  auto e = enqueue_scan(*s.jobs, *s.queue, request(reference_));
  ASSERT_TRUE(e.ok());
  ASSERT_TRUE(*pool.process_one(milliseconds(0)));
  EXPECT_EQ(job(s, e->job.id).state, JobState::done);
  auto img = s.jobs->get_image(manifest_digest_);
  ASSERT_TRUE(img.ok() && img->has_value());
  EXPECT_EQ((*img)->verdict, "suspicious");
  EXPECT_EQ((*img)->refset_fingerprint, result_fingerprint(s.sets, {yara->value.get()}));
  EXPECT_NE((*img)->refset_fingerprint, refset_fingerprint(s.sets));
  store::FileFilter suspicious;
  suspicious.verdict = "suspicious";
  auto files = s.jobs->list_image_files(manifest_digest_, suspicious);
  ASSERT_TRUE(files.ok());
  ASSERT_EQ(files->size(), 1u);
  EXPECT_EQ((*files)[0].path, "/opt/marked");
  const auto evidence = nlohmann::json::parse((*files)[0].evidence_json);
  ASSERT_EQ(evidence.size(), 1u);
  EXPECT_EQ(evidence[0]["set"], "yara");
  EXPECT_EQ(evidence[0]["reference"], "marker");
}

// A scanner that is unreachable fails the attempt as unavailable: the job is
// retried with backoff, never stored as clean.
TEST_F(WorkerTest, UnreachableExternalScannerRetriesTheJob) {
  UnreachableScanner clamd;
  Stack s = Stack::open(data_.path(), &clock_, {"distro"});
  WorkerOptions o = options();
  o.scan.external_scanners = {&clamd};
  WorkerPool pool(s.env(), o);
  auto e = enqueue_scan(*s.jobs, *s.queue, request(reference_));
  ASSERT_TRUE(e.ok());
  ASSERT_TRUE(*pool.process_one(milliseconds(0)));
  const auto j = job(s, e->job.id);
  EXPECT_EQ(j.state, JobState::queued);
  EXPECT_EQ(j.error_code, "unavailable");
  EXPECT_NE(j.error_message.find("clamd"), std::string::npos) << j.error_message;
  auto img = s.jobs->get_image(manifest_digest_);
  ASSERT_TRUE(img.ok());
  EXPECT_FALSE(img->has_value());
}

TEST_F(WorkerTest, ThreadsFinishEveryJobAndStopReturns) {
  Stack s = Stack::open(data_.path(), &clock_, {"distro"});
  std::vector<std::string> refs = {reference_};
  refs.push_back(write_image("two", {{"a", random_bytes(5000, 21)}}, {{"b", random_bytes(6000, 22)}}));
  refs.push_back(write_image("three", {{"usr/bin/ls", ls_}}, {{"c", random_bytes(7000, 23)}}));
  std::atomic<int> done{0};
  WorkerOptions o = options();
  o.on_outcome = [&](const JobOutcome& out) {
    if (out.state == JobState::done) ++done;
  };
  WorkerPool pool(s.env(), o);
  ASSERT_TRUE(pool.start().ok());
  EXPECT_EQ(pool.start().error().code(), ErrorCode::invalid_argument);
  std::vector<std::int64_t> ids;
  for (const auto& r : refs) ids.push_back(enqueue_scan(*s.jobs, *s.queue, request(r))->job.id);
  for (int i = 0; i < 1000 && done.load() < 3; ++i) std::this_thread::sleep_for(milliseconds(10));
  const StopReport stopped = pool.stop(milliseconds(5'000));
  EXPECT_EQ(stopped.released, 0u);
  EXPECT_EQ(done.load(), 3);
  for (auto id : ids) EXPECT_EQ(job(s, id).state, JobState::done) << id;
  auto counts = s.jobs->count_jobs_by_state();
  EXPECT_EQ((*counts)[static_cast<std::size_t>(JobState::done)], 3u);
  EXPECT_EQ(s.queue->stats()->depth(), 0u);
}

TEST_F(WorkerTest, StopPastTheDeadlineReleasesTheJobAndANewPoolFinishesIt) {
  Stack s = Stack::open(data_.path(), &clock_, {"distro"});
  std::atomic<bool> in_hashing{false};
  WorkerOptions o = options();
  o.workers = 1;
  o.on_state = [&](std::int64_t, JobState st) {
    if (st == JobState::hashing) {
      in_hashing = true;
      // A slow scan: still running when the deadline passes.
      std::this_thread::sleep_for(milliseconds(300));
    }
  };
  auto e = enqueue_scan(*s.jobs, *s.queue, request(reference_));
  ASSERT_TRUE(e.ok());
  {
    WorkerPool pool(s.env(), o);
    ASSERT_TRUE(pool.start().ok());
    for (int i = 0; i < 500 && !in_hashing.load(); ++i) std::this_thread::sleep_for(milliseconds(5));
    ASSERT_TRUE(in_hashing.load());
    const StopReport stopped = pool.stop(milliseconds(20));
    EXPECT_EQ(stopped.released, 1u);
    EXPECT_EQ(stopped.finished, 0u);
  }
  EXPECT_EQ(job(s, e->job.id).state, JobState::queued);
  EXPECT_EQ(s.queue->stats()->ready, 1u);
  o.on_state = nullptr;
  WorkerPool next(s.env(), o);
  ASSERT_TRUE(*next.process_one(milliseconds(0)));
  EXPECT_EQ(job(s, e->job.id).state, JobState::done);
  EXPECT_EQ(job(s, e->job.id).attempts, 2u);
}

TEST_F(WorkerTest, StopWithinTheDeadlineFinishesTheJobInFlight) {
  Stack s = Stack::open(data_.path(), &clock_, {"distro"});
  std::atomic<bool> in_hashing{false};
  WorkerOptions o = options();
  o.workers = 1;
  o.on_state = [&](std::int64_t, JobState st) {
    if (st == JobState::hashing) {
      in_hashing = true;
      std::this_thread::sleep_for(milliseconds(100));
    }
  };
  auto e = enqueue_scan(*s.jobs, *s.queue, request(reference_));
  WorkerPool pool(s.env(), o);
  ASSERT_TRUE(pool.start().ok());
  for (int i = 0; i < 500 && !in_hashing.load(); ++i) std::this_thread::sleep_for(milliseconds(5));
  const StopReport stopped = pool.stop(milliseconds(10'000));
  EXPECT_EQ(stopped.finished, 1u);
  EXPECT_EQ(stopped.released, 0u);
  EXPECT_EQ(job(s, e->job.id).state, JobState::done);
}

// A worker process is SIGKILLed in the middle of a job. After its lease runs
// out a new pool takes the job and finishes it: one result, no duplicate.
TEST_F(WorkerTest, KilledWorkerProcessJobIsResumedAndFinishedOnce) {
  std::int64_t id = 0;
  {
    Stack s = Stack::open(data_.path(), &clock_, {"distro"});
    auto e = enqueue_scan(*s.jobs, *s.queue, request(reference_));
    ASSERT_TRUE(e.ok());
    id = e->job.id;
  }
  int pipefd[2];
  ASSERT_EQ(::pipe(pipefd), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(pipefd[0]);
    Stack s = Stack::open(data_.path(), &clock_, {"distro"});
    WorkerOptions o = options();
    o.on_state = [&](std::int64_t, JobState st) {
      if (st == JobState::hashing) {
        const char c = 'h';
        (void)!::write(pipefd[1], &c, 1);
        ::pause();  // killed here, mid-job
      }
    };
    WorkerPool pool(s.env(), o);
    (void)pool.process_one(milliseconds(0));
    ::_exit(3);  // the job did not reach hashing
  }
  ::close(pipefd[1]);
  char c = 0;
  const auto got = ::read(pipefd[0], &c, 1);
  ::close(pipefd[0]);
  ::kill(child, SIGKILL);
  int status = 0;
  ::waitpid(child, &status, 0);
  ASSERT_EQ(got, 1);
  ASSERT_TRUE(WIFSIGNALED(status));

  Stack s = Stack::open(data_.path(), &clock_, {"distro"});
  EXPECT_EQ(job(s, id).state, JobState::hashing);  // where it was
  EXPECT_EQ(s.queue->stats()->in_flight, 1u);
  WorkerPool pool(s.env(), options());
  EXPECT_FALSE(*pool.process_one(milliseconds(0)));  // the dead worker's lease still holds
  clock_.advance_ms(kLeaseMs);
  ASSERT_TRUE(*pool.process_one(milliseconds(0)));
  const auto j = job(s, id);
  EXPECT_EQ(j.state, JobState::done);
  EXPECT_EQ(j.attempts, 2u);
  EXPECT_EQ(s.jobs->scan_totals()->scans, 1u);
  EXPECT_EQ(s.queue->stats()->depth(), 0u);
  EXPECT_FALSE(*pool.process_one(milliseconds(0)));
}

TEST_F(WorkerTest, RescanAfterARefsetChangeRecordsTheVerdictChangeWithoutDownloading) {
  std::int64_t id = 0;
  {
    Stack s = Stack::open(data_.path(), &clock_, {"distro"});
    WorkerPool pool(s.env(), options());
    auto e = enqueue_scan(*s.jobs, *s.queue, request(reference_, manifest_digest_));
    ASSERT_TRUE(e.ok());
    id = e->job.id;
    ASSERT_TRUE(*pool.process_one(milliseconds(0)));
    EXPECT_EQ(s.jobs->get_image(manifest_digest_)->value().verdict, "unknown");
    // Nothing changed: nothing to rescan.
    EXPECT_EQ(*rescan_changed(*s.jobs, *s.queue, refset_fingerprint(s.sets)), 0u);
  }
  build_set("bad", refset::ReferenceClass::malicious, {{"evil.bin", evil_}});
  // The image's blobs are gone: a rescan that downloaded anything would fail.
  const fs::path layout = fs::path(reference_.substr(4, reference_.size() - 8));
  fs::remove_all(layout / "blobs");

  Stack s = Stack::open(data_.path(), &clock_, {"distro", "bad"});
  clock_.advance_ms(1'000);
  EXPECT_EQ(*rescan_changed(*s.jobs, *s.queue, refset_fingerprint(s.sets)), 1u);
  EXPECT_EQ(job(s, id).source, store::JobSource::rescan);
  EXPECT_EQ(job(s, id).runs, 2u);
  WorkerPool pool(s.env(), options());
  ASSERT_TRUE(*pool.process_one(milliseconds(0)));
  const auto j = job(s, id);
  ASSERT_EQ(j.state, JobState::done) << j.error_message;
  auto img = s.jobs->get_image(manifest_digest_);
  ASSERT_TRUE(img.ok() && img->has_value());
  EXPECT_EQ((*img)->verdict, "malicious");
  EXPECT_EQ((*img)->bytes_hashed, 0u);
  auto changes = s.jobs->list_verdict_changes(manifest_digest_, 10);
  ASSERT_TRUE(changes.ok());
  ASSERT_EQ(changes->size(), 1u);
  EXPECT_EQ((*changes)[0].old_verdict, "unknown");
  EXPECT_EQ((*changes)[0].new_verdict, "malicious");
  EXPECT_EQ((*changes)[0].new_fingerprint, refset_fingerprint(s.sets));
  EXPECT_EQ(*rescan_changed(*s.jobs, *s.queue, refset_fingerprint(s.sets)), 0u);
}

// ADR 0007: a file the sieve spared (known then) that is unknown now lacks
// similarity digests, so its layer is read again, and only then.
TEST_F(WorkerTest, RescanReadsALayerAgainWhenASparedFileIsNoLongerKnown) {
  {
    Stack s = Stack::open(data_.path(), &clock_, {"distro"});
    WorkerPool pool(s.env(), options());
    ASSERT_TRUE(enqueue_scan(*s.jobs, *s.queue, request(reference_, manifest_digest_)).ok());
    ASSERT_TRUE(*pool.process_one(milliseconds(0)));
  }
  build_set("bad", refset::ReferenceClass::malicious, {{"evil.bin", evil_}});
  Stack s = Stack::open(data_.path(), &clock_, {"bad"});  // "distro" dropped: ls is unknown now
  EXPECT_EQ(*rescan_changed(*s.jobs, *s.queue, refset_fingerprint(s.sets)), 1u);
  WorkerPool pool(s.env(), options());
  ASSERT_TRUE(*pool.process_one(milliseconds(0)));
  auto img = s.jobs->get_image(manifest_digest_);
  ASSERT_TRUE(img.ok() && img->has_value());
  EXPECT_EQ((*img)->verdict, "malicious");
  EXPECT_GT((*img)->bytes_hashed, 0u);  // layer 0 hashed again
  EXPECT_LT((*img)->bytes_hashed, ls_.size() + evil_.size() + other_.size());  // layer 1 came from the cache
}

TEST_F(WorkerTest, StartRejectsAnIncompleteEnvironment) {
  WorkerPool pool(WorkerEnvironment{}, options());
  EXPECT_EQ(pool.start().error().code(), ErrorCode::invalid_argument);
  EXPECT_EQ(pool.process_one(milliseconds(0)).error().code(), ErrorCode::invalid_argument);
}

// A job store that goes away and comes back (PostgreSQL restarting): after
// `healthy_calls` calls it answers `outage_calls` calls with unavailable,
// without touching the real store, then serves again. A fake over the real
// SQLite store, so what does get through is real.
class OutageJobStore final : public store::JobStore {
 public:
  explicit OutageJobStore(store::JobStore& real) : real_(real) {}
  void schedule_outage(std::uint64_t healthy_calls, std::uint64_t outage_calls) {
    std::lock_guard lock(m_);
    healthy_ = healthy_calls;
    outage_ = outage_calls;
  }
  std::uint64_t refused() const {
    std::lock_guard lock(m_);
    return refused_;
  }

  Result<store::CreatedJob> create_or_get_job(const store::JobRequest& r) override {
    return call([&] { return real_.create_or_get_job(r); });
  }
  Result<std::optional<store::JobRecord>> get_job(std::int64_t id) override {
    return call([&] { return real_.get_job(id); });
  }
  Result<std::vector<store::JobRecord>> list_jobs(const store::JobFilter& f) override {
    return call([&] { return real_.list_jobs(f); });
  }
  Result<std::array<std::uint64_t, 6>> count_jobs_by_state() override {
    return call([&] { return real_.count_jobs_by_state(); });
  }
  Status mark_published(std::int64_t id) override { return call([&] { return real_.mark_published(id); }); }
  Result<std::vector<store::CreatedJob>> create_or_get_jobs(const std::vector<store::JobRequest>& r) override {
    return call([&] { return real_.create_or_get_jobs(r); });
  }
  Status mark_published_all(const std::vector<std::int64_t>& ids) override {
    return call([&] { return real_.mark_published_all(ids); });
  }
  Result<std::vector<store::JobRecord>> list_unpublished(std::size_t limit) override {
    return call([&] { return real_.list_unpublished(limit); });
  }
  Result<std::vector<store::JobRecord>> list_stale(std::int64_t older, std::size_t limit) override {
    return call([&] { return real_.list_stale(older, limit); });
  }
  Result<store::JobRecord> begin_attempt(std::int64_t id) override {
    return call([&] { return real_.begin_attempt(id); });
  }
  Result<store::JobRecord> transition(std::int64_t id, JobState to, const std::optional<Error>& e) override {
    return call([&] { return real_.transition(id, to, e); });
  }
  Status save_image_result(const store::ImageResult& r, const std::vector<store::ImageFile>& f) override {
    return call([&] { return real_.save_image_result(r, f); });
  }
  Result<std::optional<store::ImageResult>> get_image(const std::string& d) override {
    return call([&] { return real_.get_image(d); });
  }
  Result<std::vector<store::ImageResult>> list_images(const store::ImageFilter& f) override {
    return call([&] { return real_.list_images(f); });
  }
  Result<std::vector<store::ImageFile>> list_image_files(const std::string& d, const store::FileFilter& f) override {
    return call([&] { return real_.list_image_files(d, f); });
  }
  Result<std::vector<std::string>> job_images(std::int64_t id) override {
    return call([&] { return real_.job_images(id); });
  }
  Result<std::vector<store::ImageResult>> list_images_not_matching(const std::string& fp, std::size_t n) override {
    return call([&] { return real_.list_images_not_matching(fp, n); });
  }
  Result<std::vector<store::VerdictChange>> list_verdict_changes(const std::string& d, std::size_t n) override {
    return call([&] { return real_.list_verdict_changes(d, n); });
  }
  Result<std::vector<store::PathMatch>> search_paths(const std::string& s, std::size_t n) override {
    return call([&] { return real_.search_paths(s, n); });
  }
  Result<std::vector<std::pair<std::string, std::uint64_t>>> count_images_by_verdict() override {
    return call([&] { return real_.count_images_by_verdict(); });
  }
  Result<store::ScanTotals> scan_totals() override { return call([&] { return real_.scan_totals(); }); }

 private:
  template <typename F>
  auto call(F&& f) -> decltype(f()) {
    {
      std::lock_guard lock(m_);
      if (healthy_ > 0) {
        --healthy_;
      } else if (outage_ > 0) {
        --outage_;
        ++refused_;
        return Error(ErrorCode::unavailable, "fake store: connection refused (server restarting)");
      }
    }
    return f();
  }

  store::JobStore& real_;
  mutable std::mutex m_;
  std::uint64_t healthy_ = 0, outage_ = 0, refused_ = 0;
};

// The outage hits each job-store call of one delivery in turn (the worker
// makes them in this order: get_job, begin_attempt, then per phase a
// takeover check and a transition, save_image_result, the done transition).
// Each time the worker waits it out holding the delivery: the job finishes
// on its first attempt, nothing is retried through the queue or
// dead-lettered, and the result is stored once.
TEST_F(WorkerTest, StoreOutageIsWaitedOutWithoutCountingAnAttempt) {
  struct Case {
    std::string name;
    std::uint64_t healthy_calls;  // calls that pass before the outage
    std::uint64_t outage_calls;
  };
  const std::vector<Case> cases = {
      {"get_job", 0, 3},           {"begin_attempt", 1, 3},   {"takeover check", 2, 2},
      {"hashing transition", 3, 4}, {"matching transition", 5, 1}, {"save_image_result", 6, 3},
      {"done transition", 7, 5},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    TempDir dir;  // a fresh store and queue per case; the sets of data_
    Stack s = Stack::open(dir.path(), &clock_, {});
    s.sets = scan::testing::load_sets(data_.path(), {"distro"});
    auto e = enqueue_scan(*s.jobs, *s.queue, request(reference_));
    ASSERT_TRUE(e.ok());
    OutageJobStore flaky(*s.jobs);
    flaky.schedule_outage(c.healthy_calls, c.outage_calls);
    WorkerEnvironment env = s.env();
    env.jobs = &flaky;
    WorkerOptions o = options();
    o.store_retry_initial = milliseconds(1);
    o.store_retry_max = milliseconds(4);
    std::vector<std::int64_t> waits;
    o.on_store_wait = [&](const Error& err, milliseconds delay) {
      EXPECT_EQ(err.code(), ErrorCode::unavailable);
      waits.push_back(delay.count());
    };
    WorkerPool pool(env, o);
    auto handled = pool.process_one(milliseconds(0));
    ASSERT_TRUE(handled.ok() && *handled);

    EXPECT_EQ(flaky.refused(), c.outage_calls);
    std::vector<std::int64_t> want;
    for (std::int64_t d = 1, i = 0; i < static_cast<std::int64_t>(c.outage_calls); ++i, d = std::min<std::int64_t>(d * 2, 4)) {
      want.push_back(d);
    }
    EXPECT_EQ(waits, want);  // doubling, capped at store_retry_max
    const auto j = job(s, e->job.id);
    EXPECT_EQ(j.state, JobState::done) << j.error_message;
    EXPECT_EQ(j.attempts, 1u);
    const auto st = s.queue->stats();
    ASSERT_TRUE(st.ok());
    EXPECT_EQ(st->depth(), 0u);
    EXPECT_EQ(st->dead, 0u);
    EXPECT_EQ(s.jobs->scan_totals()->scans, 1u);
  }
}

// The store never comes back while the pool runs: start() does not fail on
// the orphan sweep, the threads hold the delivery, and stop() past its
// deadline gives it back uncounted. Once the store is back, a new pool
// finishes the job on its first attempt.
TEST_F(WorkerTest, StopDuringAStoreOutageReleasesTheJobUncounted) {
  Stack s = Stack::open(data_.path(), &clock_, {"distro"});
  auto e = enqueue_scan(*s.jobs, *s.queue, request(reference_));
  ASSERT_TRUE(e.ok());
  OutageJobStore flaky(*s.jobs);
  flaky.schedule_outage(0, 1'000'000);
  WorkerEnvironment env = s.env();
  env.jobs = &flaky;
  WorkerOptions o = options();
  o.workers = 1;
  o.store_retry_initial = milliseconds(1);
  o.store_retry_max = milliseconds(10);
  {
    WorkerPool pool(env, o);
    ASSERT_TRUE(pool.start().ok());
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (flaky.refused() < 5 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(milliseconds(5));
    }
    ASSERT_GE(flaky.refused(), 5u);  // the sweep and the job's get_job, repeated
    const auto report = pool.stop(milliseconds(50));
    EXPECT_EQ(report.released, 1u);
    EXPECT_EQ(report.finished, 0u);
  }
  auto before = job(s, e->job.id);
  EXPECT_EQ(before.state, JobState::queued);
  EXPECT_EQ(before.attempts, 0u);
  EXPECT_EQ(s.queue->stats()->ready, 1u);
  EXPECT_EQ(s.queue->stats()->dead, 0u);

  flaky.schedule_outage(0, 0);
  WorkerPool pool(env, o);
  ASSERT_TRUE(*pool.process_one(milliseconds(0)));
  const auto j = job(s, e->job.id);
  EXPECT_EQ(j.state, JobState::done);
  EXPECT_EQ(j.attempts, 1u);
}

}  // namespace
}  // namespace hashsieve::worker

namespace hashsieve::worker {
namespace {

// The embedded queue behind a receive() that fails for a while, as a
// consumer whose broker went away does.
class OutageQueue final : public queue::JobQueue {
 public:
  OutageQueue(queue::JobQueue& inner, int failures) : inner_(inner), failures_(failures) {}
  Status publish(const queue::Message& m) override { return inner_.publish(m); }
  Status publish_batch(const std::vector<queue::Message>& m) override { return inner_.publish_batch(m); }
  Result<std::optional<queue::Delivery>> receive(std::chrono::milliseconds wait) override {
    if (failures_.fetch_sub(1) > 0) return Error(ErrorCode::unavailable, "AMQP consumer: the broker closed the channel");
    return inner_.receive(wait);
  }
  Status ack(const queue::Delivery& d) override { return inner_.ack(d); }
  Result<bool> retry(const queue::Delivery& d, std::chrono::milliseconds delay, const std::string& why) override {
    return inner_.retry(d, delay, why);
  }
  Status dead_letter(const queue::Delivery& d, const std::string& why) override { return inner_.dead_letter(d, why); }
  Status release(const queue::Delivery& d) override { return inner_.release(d); }
  Status extend_lease(const queue::Delivery& d) override { return inner_.extend_lease(d); }
  Result<queue::QueueStats> stats() override { return inner_.stats(); }
  Result<std::vector<queue::DeadLetter>> list_dead(std::size_t limit) override { return inner_.list_dead(limit); }

 private:
  queue::JobQueue& inner_;
  std::atomic<int> failures_;
};

// A queue that fails is reported once (not every 200 ms retry) and its
// recovery once; the job queued meanwhile is then done.
TEST_F(WorkerTest, QueueErrorsAreReportedOncePerOutage) {
  Stack s = Stack::open(data_.path(), &clock_, {"distro"});
  OutageQueue flaky(*s.queue, 4);
  WorkerEnvironment env = s.env();
  env.queue = &flaky;
  WorkerOptions o = options();
  o.workers = 1;
  std::mutex m;
  std::vector<std::string> reports;
  std::atomic<int> done{0};
  o.on_queue_error = [&](const Error* e) {
    std::lock_guard lock(m);
    reports.push_back(e != nullptr ? e->message() : "recovered");
  };
  o.on_outcome = [&](const JobOutcome& out) {
    if (out.state == JobState::done) ++done;
  };
  const auto id = enqueue_scan(*s.jobs, *s.queue, request(reference_))->job.id;
  WorkerPool pool(env, o);
  ASSERT_TRUE(pool.start().ok());
  for (int i = 0; i < 1000 && done.load() < 1; ++i) std::this_thread::sleep_for(milliseconds(10));
  pool.stop(milliseconds(5'000));
  EXPECT_EQ(job(s, id).state, JobState::done);
  std::lock_guard lock(m);
  ASSERT_EQ(reports.size(), 2u) << ::testing::PrintToString(reports);
  EXPECT_NE(reports[0].find("broker closed"), std::string::npos);
  EXPECT_EQ(reports[1], "recovered");
}

}  // namespace
}  // namespace hashsieve::worker
