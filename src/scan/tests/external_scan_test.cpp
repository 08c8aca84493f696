// Third-party scanners on image scans (ScanOptions::external_scanners), with
// a fake ExternalScanner: which files reach it, how its findings become
// evidence, what a cached rescan re-reads, and how its failures surface.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <map>
#include <mutex>
#include <set>

#include "hashsieve/scan/external.h"
#include "hashsieve/scan/report.h"
#include "hashsieve/scan/scanner.h"
#include "hashsieve/store/store.h"
#include "scan_fixture.h"

namespace hashsieve::scan {
namespace {

using namespace testing;

// Map keys for contents (strings: GCC 12 warns falsely on comparing byte vectors).
std::string key(std::span<const std::uint8_t> bytes) { return {bytes.begin(), bytes.end()}; }

// Counts calls, remembers what it saw, reports a finding for given contents
// and fails with a given code for given contents (or for every input).
class FakeExternalScanner final : public scanners::ExternalScanner {
 public:
  explicit FakeExternalScanner(std::string name) : name_(std::move(name)) {}

  std::string name() const override { return name_; }
  std::string version() const override { return "9.9"; }
  std::string signature_version() const override { return "3 rules, sha256:f00d"; }
  const scanners::ScanLimits& limits() const override { return limits_; }

  Result<std::vector<scanners::ScanFinding>> scan_buffer(std::span<const std::uint8_t> bytes,
                                                         const std::string& display_name) const override {
    const std::string content = key(bytes);
    {
      std::lock_guard lock(mutex_);
      seen_.push_back(display_name);
    }
    if (auto s = scanners::check_size(bytes.size(), limits_, display_name); !s.ok()) return std::move(s).error();
    if (fail_all) return Error(*fail_all, display_name + ": fake failure");
    if (auto it = failures.find(content); it != failures.end()) {
      return Error(it->second, display_name + ": fake failure");
    }
    std::vector<scanners::ScanFinding> out;
    if (auto it = signatures.find(content); it != signatures.end()) out.push_back({name_, it->second, {}});
    return out;
  }

  std::multiset<std::string> seen() const {
    std::lock_guard lock(mutex_);
    return {seen_.begin(), seen_.end()};
  }
  void forget() {
    std::lock_guard lock(mutex_);
    seen_.clear();
  }

  // Keyed by content (key()).
  std::map<std::string, std::string> signatures;
  std::map<std::string, ErrorCode> failures;
  std::optional<ErrorCode> fail_all;
  scanners::ScanLimits limits_;

 private:
  std::string name_;
  mutable std::mutex mutex_;
  mutable std::vector<std::string> seen_;
};

const FileFinding* find(const ImageReport& r, const std::string& path) {
  for (const auto& f : r.files) {
    if (f.path == path) return &f;
  }
  return nullptr;
}

bool any_warning(const ImageReport& r, const std::vector<std::string>& parts) {
  for (const auto& w : r.warnings) {
    bool all = true;
    for (const auto& p : parts) all = all && w.message.find(p) != std::string::npos;
    if (all) return true;
  }
  return false;
}

class ExternalScanTest : public ::testing::Test {
 protected:
  void SetUp() override {
    build_sets(data_.path(), contents_);
    fill_image(source_, contents_);
    paths_ = distro_paths(contents_);
    auto store = store::open_sqlite_store(data_.path());
    ASSERT_TRUE(store.ok());
    store_ = std::move(store).value();
  }

  Result<ImageReport> scan(const std::vector<refset::LoadedRefset>& sets,
                           std::vector<const scanners::ExternalScanner*> externals, store::Store* store = nullptr,
                           ScanOptions options = {}) {
    options.external_scanners = std::move(externals);
    Scanner scanner(store, sets, &paths_, std::move(options));
    return scanner.scan(source_, source_.image());
  }

  TempDir data_;
  Contents contents_;
  FakeSource source_;
  FakePathIndex paths_;
  std::unique_ptr<store::Store> store_;
};

TEST(EvidenceFromFinding, ClamavIsMaliciousYaraSuspicious) {
  struct Case {
    std::string scanner;
    Verdict want;
  };
  const Case cases[] = {{"clamav", Verdict::malicious}, {"clamd", Verdict::malicious}, {"yara", Verdict::suspicious}};
  for (const auto& c : cases) {
    SCOPED_TRACE(c.scanner);
    const Evidence e = evidence_from_finding({c.scanner, "Sig.Name-1", {"tag"}});
    EXPECT_EQ(e.verdict, c.want);
    EXPECT_EQ(e.set, c.scanner);
    EXPECT_EQ(e.set_class, std::string(to_string(c.want)));
    EXPECT_EQ(e.reference, "Sig.Name-1");
    EXPECT_EQ(e.algorithm, c.scanner);
    EXPECT_FALSE(e.score.has_value());
  }
}

TEST_F(ExternalScanTest, KnownFilesAreNotScannedEveryOtherFileIs) {
  struct Case {
    std::string name;
    std::vector<std::string> sets;
    std::multiset<std::string> want;
  };
  const std::multiset<std::string> all_but_ls = {"/usr/bin/cat",      "/tmp/dropper",     "/opt/app/evil",
                                                 "/opt/app/hack",     "/opt/app/hack2",   "/opt/app/data.bin",
                                                 "/opt/app/note"};
  std::multiset<std::string> everything = all_but_ls;
  everything.insert("/usr/bin/ls");
  const Case cases[] = {
      {"no sets: every file, the hidden one too", {}, everything},
      {"distro knows ls", {"distro"}, all_but_ls},
      // Malicious, suspicious and modified files are scanned as well.
      {"every set", {"distro", "bad", "tools"}, all_but_ls},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    FakeExternalScanner fake("clamav");
    auto r = scan(load_sets(data_.path(), c.sets), {&fake});
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_EQ(fake.seen(), c.want);
    EXPECT_EQ(r->stats.files_externally_scanned, c.want.size());
    EXPECT_EQ(r->stats.layers_reread_for_external, 0u);  // a first scan scans at hash time
    ASSERT_EQ(r->scanners.size(), 1u);
    EXPECT_EQ(r->scanners[0], (ExternalScannerInfo{"clamav", "9.9", "3 rules, sha256:f00d"}));
  }
}

TEST_F(ExternalScanTest, WithoutScannersNothingChanges) {
  const auto sets = load_sets(data_.path(), {"distro", "bad", "tools"});
  auto r = scan(sets, {});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->stats.files_externally_scanned, 0u);
  EXPECT_TRUE(r->scanners.empty());
}

TEST_F(ExternalScanTest, FindingsBecomeEvidenceAndRaiseTheVerdicts) {
  struct Case {
    std::string scanner;
    std::string path;  // the flagged file
    Verdict file_before, file_after, image_after;
  };
  // Only "distro": evil is unknown, so without findings the image is
  // modified (cat) at worst.
  const Case cases[] = {
      {"clamav", "opt/app/data.bin", Verdict::unknown, Verdict::malicious, Verdict::malicious},
      {"yara", "opt/app/data.bin", Verdict::unknown, Verdict::suspicious, Verdict::suspicious},
      {"yara", "usr/bin/cat", Verdict::modified, Verdict::suspicious, Verdict::suspicious},
      {"clamd", "tmp/dropper", Verdict::unknown, Verdict::malicious, Verdict::malicious},  // hidden
  };
  const auto sets = load_sets(data_.path(), {"distro"});
  std::map<std::string, Bytes> content = {{"opt/app/data.bin", contents_.random},
                                          {"usr/bin/cat", contents_.cat_patched},
                                          {"tmp/dropper", contents_.gone}};
  auto plain = scan(sets, {});
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->summary.verdict, Verdict::modified);
  for (const auto& c : cases) {
    SCOPED_TRACE(c.scanner + " on " + c.path);
    FakeExternalScanner fake(c.scanner);
    fake.signatures[key(content.at(c.path))] = "Test.Sig-1";
    auto r = scan(sets, {&fake});
    ASSERT_TRUE(r.ok()) << r.error().message();
    const FileFinding* before = find(*plain, c.path);
    const FileFinding* after = find(*r, c.path);
    ASSERT_NE(before, nullptr);
    ASSERT_NE(after, nullptr);
    EXPECT_EQ(before->verdict, c.file_before);
    EXPECT_EQ(after->verdict, c.file_after);
    ASSERT_FALSE(after->evidence.empty());
    EXPECT_EQ(after->evidence.back(), evidence_from_finding({c.scanner, "Test.Sig-1", {}}));
    // The hash evidence stays, the finding comes after it.
    EXPECT_EQ(after->evidence.size(), before->evidence.size() + 1);
    EXPECT_EQ(r->summary.verdict, c.image_after);
    EXPECT_EQ(r->summary.count(c.file_after), plain->summary.count(c.file_after) + 1);
  }
}

TEST_F(ExternalScanTest, CachedRescanGivesTheSameFindingsAndRereadsOnlyNeededLayers) {
  // A third layer whose only file is known: nothing in it needs a scan.
  source_.layers.push_back({file("usr/local/bin/ls", contents_.ls)});
  const auto sets = load_sets(data_.path(), {"distro"});
  FakeExternalScanner fake("yara");
  fake.signatures[key(contents_.random)] = "Rule_Random";
  fake.signatures[key(contents_.gone)] = "Rule_Dropper";
  auto first = scan(sets, {&fake}, store_.get());
  ASSERT_TRUE(first.ok()) << first.error().message();
  EXPECT_EQ(source_.opens.load(), 3);
  EXPECT_EQ(first->stats.layers_reread_for_external, 0u);
  const auto first_seen = fake.seen();
  fake.forget();

  source_.opens = 0;
  auto second = scan(sets, {&fake}, store_.get());
  ASSERT_TRUE(second.ok()) << second.error().message();
  EXPECT_EQ(second->stats.layers_from_cache, 3u);
  EXPECT_EQ(second->stats.files_hashed, 0u);
  EXPECT_EQ(second->stats.layers_reread_for_external, 2u);  // not the third layer
  EXPECT_EQ(source_.opens.load(), 2);
  EXPECT_EQ(fake.seen(), first_seen);
  EXPECT_EQ(second->stats.files_externally_scanned, first->stats.files_externally_scanned);
  ASSERT_EQ(second->files.size(), first->files.size());
  for (std::size_t i = 0; i < first->files.size(); ++i) {
    SCOPED_TRACE(first->files[i].path);
    EXPECT_EQ(second->files[i].verdict, first->files[i].verdict);
    EXPECT_EQ(second->files[i].evidence, first->files[i].evidence);
  }
  EXPECT_EQ(find(*second, "opt/app/data.bin")->verdict, Verdict::suspicious);
  EXPECT_EQ(second->summary.counts, first->summary.counts);

  // Without scanners the cached rescan reads nothing at all.
  source_.opens = 0;
  auto third = scan(sets, {}, store_.get());
  ASSERT_TRUE(third.ok());
  EXPECT_EQ(source_.opens.load(), 0);
}

// Known bytes at a path that holds other known content: known at hash time
// (so not scanned there) but modified after classification: the first scan
// reads its layer again for it, and only that layer.
TEST_F(ExternalScanTest, KnownAtHashTimeButModifiedIsScannedFromARereadLayer) {
  source_.layers.push_back({file("usr/bin/cat", contents_.ls)});
  const auto sets = load_sets(data_.path(), {"distro"});
  FakeExternalScanner fake("clamav");
  fake.signatures[key(contents_.ls)] = "Ls.Test-1";
  source_.opens = 0;
  auto r = scan(sets, {&fake});
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(source_.opens.load(), 4);  // 3 layers hashed, 1 read again
  EXPECT_EQ(r->stats.layers_reread_for_external, 1u);
  EXPECT_EQ(fake.seen().count("/usr/bin/cat"), 2u);  // layer 0's patched cat, layer 2's ls bytes
  EXPECT_EQ(fake.seen().count("/usr/bin/ls"), 0u);   // known: the same bytes at their own path
  const FileFinding& f = r->files.back();
  EXPECT_EQ(f.path, "usr/bin/cat");
  EXPECT_EQ(f.layer, 2u);
  EXPECT_EQ(f.verdict, Verdict::malicious);
  EXPECT_EQ(f.evidence.back(), evidence_from_finding({"clamav", "Ls.Test-1", {}}));
}

TEST_F(ExternalScanTest, CachedLayerWhoseBytesChangedIsAnError) {
  const auto sets = load_sets(data_.path(), {"distro"});
  FakeExternalScanner fake("yara");
  ASSERT_TRUE(scan(sets, {&fake}, store_.get()).ok());
  // Same diff ID, other bytes: the re-read must not scan what was not classified.
  source_.layers[1][4].data = random_bytes(contents_.random.size(), 99);
  auto r = scan(sets, {&fake}, store_.get());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::integrity_error);
  EXPECT_NE(r.error().message().find("/opt/app/data.bin"), std::string::npos) << r.error().message();
}

// Streamed files (over max_buffered_file_bytes, at least 16 MiB) are scanned
// from their spool file at hash time; without a spool (no temporary
// directory) their layer is read again for them. Over the scanner's limit,
// they are a warning naming file, size, limit and scanner.
TEST_F(ExternalScanTest, StreamedLargeFilesAreScannedOrWarned) {
  const Bytes big = random_bytes((std::size_t{17} << 20) + 123, 42);
  source_.layers.push_back({file("opt/big.bin", big)});
  const auto sets = load_sets(data_.path(), {"distro"});
  struct Case {
    std::string name;
    bool spool;
    std::uint64_t limit;
    bool want_scanned;
    std::size_t want_reread;
  };
  const Case cases[] = {
      {"spooled", true, std::uint64_t{64} << 20, true, 0},
      {"no spool: read again", false, std::uint64_t{64} << 20, true, 1},
      {"over the limit", true, std::uint64_t{1} << 20, false, 0},
  };
  const char* old_tmp = std::getenv("TMPDIR");
  const std::string saved = old_tmp != nullptr ? old_tmp : "";
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    FakeExternalScanner fake("clamav");
    fake.limits_.max_bytes = c.limit;
    fake.signatures[key(big)] = "Big.Test-1";
    if (!c.spool) ::setenv("TMPDIR", "/nonexistent-hashsieve-test-dir", 1);
    ScanOptions o;
    o.max_buffered_file_bytes = std::uint64_t{16} << 20;  // the least: big.bin is streamed
    auto r = scan(sets, {&fake}, nullptr, o);
    if (old_tmp != nullptr) {
      ::setenv("TMPDIR", saved.c_str(), 1);
    } else {
      ::unsetenv("TMPDIR");
    }
    ASSERT_TRUE(r.ok()) << r.error().message();
    const FileFinding* f = find(*r, "opt/big.bin");
    ASSERT_NE(f, nullptr);
    EXPECT_EQ(fake.seen().count("/opt/big.bin"), c.want_scanned ? 1u : 0u);
    EXPECT_EQ(r->stats.layers_reread_for_external, c.want_reread);
    if (c.want_scanned) {
      EXPECT_EQ(f->verdict, Verdict::malicious);
    } else {
      EXPECT_EQ(f->verdict, Verdict::unknown);
      EXPECT_TRUE(any_warning(*r, {"clamav", "/opt/big.bin", std::to_string(big.size()), std::to_string(c.limit)}));
    }
  }
}

TEST_F(ExternalScanTest, UnavailableScannerFailsTheScanNamingScannerAndFile) {
  const auto sets = load_sets(data_.path(), {"distro"});
  struct Case {
    std::string name;
    bool cached;
  };
  for (const auto& c : {Case{"first scan", false}, Case{"cached rescan", true}}) {
    SCOPED_TRACE(c.name);
    if (c.cached) {
      FakeExternalScanner ok("clamd");
      ASSERT_TRUE(scan(sets, {&ok}, store_.get()).ok());
    }
    FakeExternalScanner fake("clamd");
    fake.failures[key(contents_.random)] = ErrorCode::unavailable;
    auto r = scan(sets, {&fake}, c.cached ? store_.get() : nullptr);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code(), ErrorCode::unavailable);
    EXPECT_NE(r.error().message().find("clamd"), std::string::npos) << r.error().message();
    EXPECT_NE(r.error().message().find("/opt/app/data.bin"), std::string::npos) << r.error().message();
  }
}

TEST_F(ExternalScanTest, PerFileFailuresAreWarnings) {
  const auto sets = load_sets(data_.path(), {"distro"});
  for (ErrorCode code : {ErrorCode::limit_exceeded, ErrorCode::unsupported}) {
    SCOPED_TRACE(static_cast<int>(code));
    FakeExternalScanner fake("yara");
    fake.failures[key(contents_.random)] = code;
    fake.signatures[key(contents_.evil)] = "Rule_Evil";
    auto r = scan(sets, {&fake});
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_TRUE(any_warning(*r, {"yara", "/opt/app/data.bin"}));
    EXPECT_EQ(find(*r, "opt/app/data.bin")->verdict, Verdict::unknown);
    EXPECT_EQ(find(*r, "opt/app/evil")->verdict, Verdict::suspicious);  // the others are still scanned
  }
}

TEST_F(ExternalScanTest, ResultsDoNotDependOnLayersInFlight) {
  source_.layers.push_back({file("srv/a", random_bytes(70000, 11)), file("usr/bin/ls", contents_.ls)});
  source_.layers.push_back({marker("srv/a", image::EntryKind::whiteout), file("srv/b", edited(contents_.hack, 4096))});
  const auto sets = load_sets(data_.path(), {"distro", "bad", "tools"});
  FakeExternalScanner clam("clamav");
  clam.signatures[key(random_bytes(70000, 11))] = "Srv.A-1";
  FakeExternalScanner yara("yara");
  yara.signatures[key(contents_.random)] = "Rule_Random";
  yara.failures[key(contents_.tiny)] = ErrorCode::limit_exceeded;
  ScanOptions one;
  one.layers_in_flight = 1;
  auto reference = scan(sets, {&clam, &yara}, nullptr, one);
  ASSERT_TRUE(reference.ok()) << reference.error().message();
  for (bool cached : {false, true}) {
    for (unsigned in_flight : {1u, 2u, 3u, 8u}) {
      SCOPED_TRACE((cached ? "cached, " : "fresh, ") + std::to_string(in_flight) + " in flight");
      ScanOptions o;
      o.layers_in_flight = in_flight;
      o.threads = in_flight;
      auto r = scan(sets, {&clam, &yara}, cached ? store_.get() : nullptr, o);
      ASSERT_TRUE(r.ok()) << r.error().message();
      ASSERT_EQ(r->files.size(), reference->files.size());
      for (std::size_t i = 0; i < r->files.size(); ++i) {
        SCOPED_TRACE(r->files[i].path);
        EXPECT_EQ(r->files[i].verdict, reference->files[i].verdict);
        EXPECT_EQ(r->files[i].evidence, reference->files[i].evidence);
      }
      std::vector<std::string> want_warnings, got_warnings;
      for (const auto& w : reference->warnings) want_warnings.push_back(w.message);
      for (const auto& w : r->warnings) got_warnings.push_back(w.message);
      EXPECT_EQ(got_warnings, want_warnings);
      EXPECT_EQ(r->stats.files_externally_scanned, reference->stats.files_externally_scanned);
      EXPECT_EQ(r->summary.counts, reference->summary.counts);
    }
  }
}

TEST_F(ExternalScanTest, ReportsNameTheScannersThatRan) {
  const auto sets = load_sets(data_.path(), {"distro"});
  FakeExternalScanner clam("clamav");
  clam.signatures[key(contents_.random)] = "Win.Test.EICAR_HDB-1";
  FakeExternalScanner yara("yara");
  auto r = scan(sets, {&clam, &yara});
  ASSERT_TRUE(r.ok());

  auto j = nlohmann::json::parse(write_json_report({*r}, {}));
  ASSERT_EQ(j["scanners"].size(), 2u);
  EXPECT_EQ(j["scanners"][0]["name"], "clamav");
  EXPECT_EQ(j["scanners"][0]["version"], "9.9");
  EXPECT_EQ(j["scanners"][0]["signature_version"], "3 rules, sha256:f00d");
  EXPECT_EQ(j["scanners"][1]["name"], "yara");
  bool found = false;
  for (const auto& f : j["files"]) {
    if (f["path"] != "/opt/app/data.bin") continue;
    found = true;
    EXPECT_EQ(f["verdict"], "malicious");
    EXPECT_EQ(f["evidence"].back()["algorithm"], "clamav");
    EXPECT_EQ(f["evidence"].back()["reference"], "Win.Test.EICAR_HDB-1");
  }
  EXPECT_TRUE(found);

  auto s = nlohmann::json::parse(write_sarif_report({*r}, {}));
  const auto& ext = s["runs"][0]["tool"]["extensions"];
  ASSERT_EQ(ext.size(), 2u);
  EXPECT_EQ(ext[0]["name"], "clamav");
  EXPECT_EQ(ext[0]["version"], "9.9");
  EXPECT_EQ(ext[0]["properties"]["signature_version"], "3 rules, sha256:f00d");

  const std::string table = write_table_report({*r}, {});
  EXPECT_NE(table.find("scanner   clamav 9.9 (3 rules, sha256:f00d)\n"), std::string::npos) << table;
  EXPECT_NE(table.find("clamav clamav: Win.Test.EICAR_HDB-1"), std::string::npos) << table;
}

}  // namespace
}  // namespace hashsieve::scan
