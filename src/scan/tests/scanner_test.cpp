#include "hashsieve/scan/scanner.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "hashsieve/store/store.h"
#include "scan_fixture.h"

namespace hashsieve::scan {
namespace {

using namespace testing;

const FileFinding* find(const ImageReport& r, const std::string& path, std::size_t layer) {
  for (const auto& f : r.files) {
    if (f.path == path && f.layer == layer) return &f;
  }
  return nullptr;
}

class ScannerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    build_sets(data_.path(), contents_);
    fill_image(source_, contents_);
    paths_ = distro_paths(contents_);
    auto store = store::open_sqlite_store(data_.path());
    ASSERT_TRUE(store.ok());
    store_ = std::move(store).value();
  }

  Result<ImageReport> scan(const std::vector<refset::LoadedRefset>& sets, ScanOptions options = {},
                           store::Store* store = nullptr, const PathIndex* paths = nullptr) {
    Scanner scanner(store, sets, paths, std::move(options));
    return scanner.scan(source_, source_.image());
  }

  TempDir data_;
  Contents contents_;
  FakeSource source_;
  FakePathIndex paths_;
  std::unique_ptr<store::Store> store_;
};

TEST_F(ScannerTest, VerdictForEveryClass) {
  const auto sets = load_sets(data_.path(), {"distro", "bad", "tools"});
  auto r = scan(sets, {}, store_.get(), &paths_);
  ASSERT_TRUE(r.ok()) << r.error().message();
  struct Case {
    std::string path;
    std::size_t layer;
    Verdict want;
    bool hidden;
    std::string algorithm;  // of the deciding evidence, "" for none
  };
  const std::vector<Case> cases = {
      {"usr/bin/ls", 0, Verdict::known, false, "sha256"},
      {"usr/bin/cat", 0, Verdict::modified, false, "path"},
      {"tmp/dropper", 0, Verdict::malicious, true, "sha256"},
      {"opt/app/evil", 1, Verdict::malicious, false, "sha256"},
      {"opt/app/hack", 1, Verdict::suspicious, false, ""},
      {"opt/app/hack2", 1, Verdict::suspicious, false, "sha256"},
      {"opt/app/data.bin", 1, Verdict::unknown, false, ""},
      {"opt/app/note", 1, Verdict::unknown, false, ""},
  };
  ASSERT_EQ(r->files.size(), cases.size());
  for (const auto& c : cases) {
    SCOPED_TRACE(c.path);
    const FileFinding* f = find(*r, c.path, c.layer);
    ASSERT_NE(f, nullptr);
    EXPECT_EQ(f->verdict, c.want);
    EXPECT_EQ(f->hidden_by.has_value(), c.hidden);
    if (c.hidden) {
      EXPECT_EQ(*f->hidden_by, 1u);
    }
    if (!c.algorithm.empty()) {
      bool found = false;
      for (const auto& e : f->evidence) found |= e.verdict == c.want && e.algorithm == c.algorithm;
      EXPECT_TRUE(found);
    }
    if (c.want == Verdict::unknown) {
      EXPECT_TRUE(f->evidence.empty());
    }
  }
  // The similar file is flagged by similarity, with the score and threshold.
  const FileFinding* hack = find(*r, "opt/app/hack", 1);
  ASSERT_FALSE(hack->evidence.empty());
  for (const auto& e : hack->evidence) {
    EXPECT_EQ(e.set, "tools");
    ASSERT_TRUE(e.score && e.threshold);
    if (e.algorithm == "sdbf") {
      EXPECT_GE(*e.score, *e.threshold);
    }
    if (e.algorithm == "tlsh") {
      EXPECT_LE(*e.score, *e.threshold);
    }
  }
  EXPECT_EQ(r->summary.files, 8u);
  EXPECT_EQ(r->summary.hidden, 1u);
  EXPECT_EQ(r->summary.count(Verdict::known), 1u);
  EXPECT_EQ(r->summary.count(Verdict::malicious), 2u);
  EXPECT_EQ(r->summary.verdict, Verdict::malicious);
  EXPECT_DOUBLE_EQ(r->summary.reduction_ratio, 1.0 / 8);
  EXPECT_TRUE(r->warnings.empty());
}

TEST_F(ScannerTest, RefsetPathIndexGivesModified) {
  const auto sets = load_sets(data_.path(), {"distro", "bad", "tools"});
  const auto paths = make_refset_path_index(sets);
  auto r = scan(sets, {}, nullptr, paths.get());
  ASSERT_TRUE(r.ok()) << r.error().message();
  const FileFinding* cat = find(*r, "usr/bin/cat", 0);
  ASSERT_NE(cat, nullptr);
  EXPECT_EQ(cat->verdict, Verdict::modified);
  ASSERT_EQ(cat->evidence.size(), 1u);
  EXPECT_EQ(cat->evidence[0].set, "distro");
  EXPECT_EQ(cat->evidence[0].reference, "/usr/bin/cat");
  // The unchanged file at a known path stays known; paths of the malicious
  // set ("/evil.bin") never make anything modified.
  EXPECT_EQ(find(*r, "usr/bin/ls", 0)->verdict, Verdict::known);
  EXPECT_EQ(find(*r, "opt/app/data.bin", 1)->verdict, Verdict::unknown);
}

TEST_F(ScannerTest, SecondScanHashesNothing) {
  const auto sets = load_sets(data_.path(), {"distro", "bad", "tools"});
  auto first = scan(sets, {}, store_.get(), &paths_);
  ASSERT_TRUE(first.ok()) << first.error().message();
  EXPECT_EQ(first->stats.layers_hashed, 2u);
  EXPECT_EQ(first->stats.files_hashed, 8u);
  EXPECT_GT(first->stats.bytes_hashed, 0u);
  const int opens = source_.opens;
  auto second = scan(sets, {}, store_.get(), &paths_);
  ASSERT_TRUE(second.ok()) << second.error().message();
  EXPECT_EQ(second->stats.layers_from_cache, 2u);
  EXPECT_EQ(second->stats.layers_hashed, 0u);
  EXPECT_EQ(second->stats.files_hashed, 0u);
  EXPECT_EQ(second->stats.bytes_hashed, 0u);
  EXPECT_EQ(source_.opens, opens);
  ASSERT_EQ(second->files.size(), first->files.size());
  for (std::size_t i = 0; i < first->files.size(); ++i) {
    EXPECT_EQ(second->files[i].verdict, first->files[i].verdict) << first->files[i].path;
    EXPECT_EQ(second->files[i].evidence, first->files[i].evidence) << first->files[i].path;
    EXPECT_EQ(second->files[i].hidden_by, first->files[i].hidden_by);
  }
}

TEST_F(ScannerTest, CacheKeyIncludesHasherVersions) {
  const auto sets = load_sets(data_.path(), {"bad"});
  ASSERT_TRUE(scan(sets, {}, store_.get()).ok());
  ScanOptions changed;
  changed.hasher_versions = hasher_versions() + ";sdbf-fix/2";
  auto r = scan(sets, changed, store_.get());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->stats.layers_hashed, 2u);
  EXPECT_EQ(r->stats.layers_from_cache, 0u);
  EXPECT_EQ(r->stats.files_hashed, 8u);
}

// Facts cached by a build before the .rodata digests (its key lacked
// rodata/1 and named facts/1) are not read: the layers are hashed again,
// then the new facts are cached.
TEST_F(ScannerTest, RodataDigestsVersionBumpRecomputesCachedFacts) {
  const std::string now = hasher_versions();
  ASSERT_NE(now.find(";rodata/1;"), std::string::npos) << now;
  ASSERT_NE(now.find("facts/2"), std::string::npos) << now;
  std::string before = now;
  before.erase(before.find(";rodata/1"), std::string(";rodata/1").size());
  before.replace(before.find("facts/2"), 7, "facts/1");
  const auto sets = load_sets(data_.path(), {"bad"});
  ScanOptions old_build;
  old_build.hasher_versions = before;
  struct Case {
    std::string name;
    ScanOptions options;
    std::uint64_t want_hashed, want_cached;
  };
  const std::vector<Case> cases = {
      {"the old build caches its facts", old_build, 2, 0},
      {"the old build reads them", old_build, 0, 2},
      {"this build does not read them", {}, 2, 0},
      {"this build reads its own", {}, 0, 2},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    auto r = scan(sets, c.options, store_.get());
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_EQ(r->stats.layers_hashed, c.want_hashed);
    EXPECT_EQ(r->stats.layers_from_cache, c.want_cached);
  }
}

TEST_F(ScannerTest, NoCacheHashesEveryTime) {
  const auto sets = load_sets(data_.path(), {"bad"});
  ScanOptions no_cache;
  no_cache.use_cache = false;
  ASSERT_TRUE(scan(sets, no_cache, store_.get()).ok());
  auto r = scan(sets, no_cache, store_.get());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->stats.layers_hashed, 2u);
}

TEST_F(ScannerTest, RefsetChangeRematchesWithoutRehashing) {
  auto first = scan(load_sets(data_.path(), {"bad"}), {}, store_.get());
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(find(*first, "usr/bin/ls", 0)->verdict, Verdict::unknown);
  EXPECT_EQ(first->stats.similarity_skipped, 0u);
  auto second = scan(load_sets(data_.path(), {"distro", "bad", "tools"}), {}, store_.get());
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->stats.files_hashed, 0u);
  EXPECT_EQ(find(*second, "usr/bin/ls", 0)->verdict, Verdict::known);
  EXPECT_EQ(find(*second, "opt/app/hack", 1)->verdict, Verdict::suspicious);
}

TEST_F(ScannerTest, SieveSkipsKnownFilesAndRehashesWhenTheyBecomeUnknown) {
  auto first = scan(load_sets(data_.path(), {"distro"}), {}, store_.get());
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->stats.similarity_skipped, 1u);  // usr/bin/ls
  // Without "distro", ls is unknown now and needs its similarity digests:
  // layer 0 is read again, layer 1 comes from the cache.
  auto second = scan(load_sets(data_.path(), {"tools"}), {}, store_.get());
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->stats.layers_rehashed_for_sieve, 1u);
  EXPECT_EQ(second->stats.layers_hashed, 1u);
  EXPECT_EQ(second->stats.layers_from_cache, 1u);
  // The rewritten facts now hold every digest: a third scan hashes nothing.
  auto third = scan(load_sets(data_.path(), {"tools"}), {}, store_.get());
  ASSERT_TRUE(third.ok());
  EXPECT_EQ(third->stats.files_hashed, 0u);
}

// A store whose every call fails: the scan still succeeds, with warnings.
class FaultyStore final : public store::Store {
 public:
  Result<bool> has_layer(const store::LayerKey&) override { return fail(); }
  Result<std::optional<store::LayerFacts>> get_layer_facts(const store::LayerKey&) override { return fail(); }
  Status put_layer_facts(const store::LayerKey&, const store::LayerFacts&) override { return fail(); }
  Result<std::int64_t> put_scan_result(const store::ScanRecord&) override { return fail(); }
  Result<std::vector<store::ScanRecord>> list_scan_results(std::size_t) override { return fail(); }

 private:
  static Error fail() { return Error(ErrorCode::io_error, "disk full"); }
};

TEST_F(ScannerTest, FaultyStoreOnlyWarns) {
  FaultyStore faulty;
  auto r = scan(load_sets(data_.path(), {"bad"}), {}, &faulty);
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(r->stats.layers_hashed, 2u);
  ASSERT_EQ(r->warnings.size(), 4u);  // not readable + not cached, per layer
  EXPECT_NE(r->warnings[0].message.find("disk full"), std::string::npos);
}

TEST_F(ScannerTest, UnreadableCachedFactsAreHashedAgain) {
  const auto sets = load_sets(data_.path(), {"bad"});
  ASSERT_TRUE(scan(sets, {}, store_.get()).ok());
  const store::LayerKey key{source_.image().layers[0].diff_id, hasher_versions()};
  auto facts = store_->get_layer_facts(key);
  ASSERT_TRUE(facts.ok() && facts->has_value());
  for (auto& f : (*facts)->files) {
    if (f.kind == store::FactKind::regular) f.sha256 = "not hex";
  }
  ASSERT_TRUE(store_->put_layer_facts(key, **facts).ok());
  auto r = scan(sets, {}, store_.get());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->stats.layers_hashed, 1u);
  ASSERT_EQ(r->warnings.size(), 1u);
  EXPECT_NE(r->warnings[0].message.find("sha256"), std::string::npos);
}

TEST_F(ScannerTest, SourceErrorsNameTheLayer) {
  source_.fail_open = true;
  auto r = scan(load_sets(data_.path(), {"bad"}));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::unavailable);
  EXPECT_NE(r.error().message().find("layer 0"), std::string::npos);
}

TEST_F(ScannerTest, TruncatedContentIsAnError) {
  source_.truncate_at = 100;
  auto r = scan(load_sets(data_.path(), {"bad"}));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::parse_error);
  EXPECT_NE(r.error().message().find("usr/bin/ls"), std::string::npos);
}

TEST_F(ScannerTest, ResultDoesNotDependOnThreads) {
  const auto sets = load_sets(data_.path(), {"distro", "bad", "tools"});
  ScanOptions one;
  one.threads = 1;
  ScanOptions four;
  four.threads = 4;
  four.max_inflight_bytes = 1;  // one file at a time in flight
  auto a = scan(sets, one, nullptr, &paths_);
  auto b = scan(sets, four, nullptr, &paths_);
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_EQ(a->files.size(), b->files.size());
  for (std::size_t i = 0; i < a->files.size(); ++i) {
    EXPECT_EQ(a->files[i].verdict, b->files[i].verdict);
    EXPECT_EQ(a->files[i].evidence, b->files[i].evidence);
  }
}

TEST(Summary, ReductionRatioAndImageVerdict) {
  auto f = [](Verdict v, bool hidden) {
    FileFinding x;
    x.verdict = v;
    if (hidden) x.hidden_by = 1;
    return x;
  };
  struct Case {
    std::string name;
    std::vector<FileFinding> files;
    Verdict verdict;
    double ratio;
  };
  const std::vector<Case> cases = {
      {"empty", {}, Verdict::known, 0},
      {"all known", {f(Verdict::known, false), f(Verdict::known, true)}, Verdict::known, 1},
      {"unknown beats known", {f(Verdict::known, false), f(Verdict::unknown, false)}, Verdict::unknown, 0.5},
      {"hidden malicious counts",
       {f(Verdict::known, false), f(Verdict::known, false), f(Verdict::modified, false), f(Verdict::malicious, true)},
       Verdict::malicious, 0.5},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const ScanSummary s = summarize(c.files);
    EXPECT_EQ(s.verdict, c.verdict);
    EXPECT_DOUBLE_EQ(s.reduction_ratio, c.ratio);
    EXPECT_EQ(s.files, c.files.size());
  }
}

}  // namespace
}  // namespace hashsieve::scan

namespace hashsieve::scan {
namespace {

TEST_F(ScannerTest, CancelledStopsBeforeTheNextLayer) {
  const auto sets = load_sets(data_.path(), {"bad"});
  struct Case {
    std::string name;
    int cancel_after_polls;  // polls answered "go on" before "stop"
    int want_opens;
  };
  const std::vector<Case> cases = {{"before the first layer", 0, 0}, {"before the second layer", 1, 1}};
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    source_.opens = 0;
    int polls = 0;
    ScanOptions o;
    o.use_cache = false;
    o.layers_in_flight = 1;  // the poll order is then the layer order
    o.cancelled = [&] { return polls++ >= c.cancel_after_polls; };
    auto r = scan(sets, o);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code(), ErrorCode::unavailable);
    EXPECT_NE(r.error().message().find("cancelled"), std::string::npos);
    EXPECT_EQ(source_.opens, c.want_opens);
  }
}

// Layers in flight change when each layer is read, never what the report
// says: the same files, layers, hidden flags, verdicts, evidence and stats.
TEST_F(ScannerTest, ResultDoesNotDependOnLayersInFlight) {
  // A third and a fourth layer, so more layers than readers.
  source_.layers.push_back({file("srv/a", random_bytes(70000, 11)), file("usr/bin/ls", contents_.ls)});
  source_.layers.push_back({marker("srv/a", image::EntryKind::whiteout), file("srv/b", edited(contents_.hack, 4096))});
  const auto sets = load_sets(data_.path(), {"distro", "bad", "tools"});
  auto reference = [&] {
    ScanOptions o;
    o.layers_in_flight = 1;
    return scan(sets, o, nullptr, &paths_);
  }();
  ASSERT_TRUE(reference.ok()) << reference.error().message();
  for (unsigned in_flight : {2u, 3u, 8u}) {
    SCOPED_TRACE("layers in flight: " + std::to_string(in_flight));
    std::atomic<int> inside{0};
    std::atomic<bool> overlapped{false};
    ScanOptions o;
    o.layers_in_flight = in_flight;
    o.max_inflight_bytes = 1;  // one file at a time per layer
    o.progress = [&](const ScanProgress&) {
      if (inside.fetch_add(1) != 0) overlapped = true;
      std::this_thread::yield();
      inside.fetch_sub(1);
    };
    auto r = scan(sets, o, nullptr, &paths_);
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_FALSE(overlapped.load()) << "progress callbacks must come one at a time";
    ASSERT_EQ(r->files.size(), reference->files.size());
    for (std::size_t i = 0; i < r->files.size(); ++i) {
      SCOPED_TRACE(r->files[i].path);
      EXPECT_EQ(r->files[i].path, reference->files[i].path);
      EXPECT_EQ(r->files[i].layer, reference->files[i].layer);
      EXPECT_EQ(r->files[i].hidden_by, reference->files[i].hidden_by);
      EXPECT_EQ(r->files[i].verdict, reference->files[i].verdict);
      EXPECT_EQ(r->files[i].evidence, reference->files[i].evidence);
    }
    EXPECT_EQ(r->stats.layers_hashed, 4u);
    EXPECT_EQ(r->stats.files_hashed, reference->stats.files_hashed);
    EXPECT_EQ(r->stats.bytes_hashed, reference->stats.bytes_hashed);
    EXPECT_EQ(r->summary.counts, reference->summary.counts);
  }
}

// A layer that fails while another is in flight fails the scan, naming the
// failing layer.
TEST_F(ScannerTest, FailingLayerInFlightNamesTheLayer) {
  source_.layers.push_back({file("srv/a", random_bytes(70000, 11))});
  const auto sets = load_sets(data_.path(), {"bad"});
  for (std::size_t failing : {0u, 1u, 2u}) {
    SCOPED_TRACE("failing layer " + std::to_string(failing));
    source_.fail_layer = failing;
    ScanOptions o;
    o.layers_in_flight = 2;
    auto r = scan(sets, o);  // no cache: every layer is opened each time
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code(), ErrorCode::unavailable);
    EXPECT_NE(r.error().message().find("layer " + std::to_string(failing)), std::string::npos) << r.error().message();
  }
  // With the cache: what was read before the failure is kept, and the next
  // scan completes.
  source_.fail_layer = 2;
  ASSERT_FALSE(scan(sets, {}, store_.get()).ok());
  source_.fail_layer.reset();
  auto r = scan(sets, {}, store_.get());
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(r->stats.layers, 3u);
  EXPECT_EQ(r->stats.layers_from_cache + r->stats.layers_hashed, 3u);
}

}  // namespace
}  // namespace hashsieve::scan
