#include "hashsieve/runtime/drift.h"

#include <gtest/gtest.h>

#include "fake_engine.h"
#include "hashsieve/runtime/report.h"
#include "scan_fixture.h"

namespace hashsieve::runtime {
namespace {

using scan::Verdict;
using scan::testing::Contents;
using scan::testing::TempDir;
using testing::Bytes;
using testing::FakeFile;
using testing::FakeEngine;

const scan::Evidence* find_evidence(const DriftFile& f, const std::string& set) {
  for (const auto& e : f.evidence) {
    if (e.set == set) return &e;
  }
  return nullptr;
}

class DriftTest : public ::testing::Test {
 protected:
  void SetUp() override {
    scan::testing::build_sets(dir_.path(), contents_);
    sets_ = scan::testing::load_sets(dir_.path(), {"distro", "bad", "tools"});
    engine_.add_container("c1", "web");
  }
  TempDir dir_;
  Contents contents_;
  std::vector<refset::LoadedRefset> sets_;
  FakeEngine engine_;
};

TEST_F(DriftTest, ClassifiesEachKindOfDrift) {
  Bytes elf = {0x7f, 'E', 'L', 'F', 2, 1, 1, 0};
  elf.resize(3000, 7);
  const Bytes script = {'#', '!', '/', 'b', 'i', 'n', '/', 's', 'h', '\n'};
  engine_.add_file("c1", "/tmp/evil", ChangeKind::added, contents_.evil);
  engine_.add_file("c1", "/tmp/hack", ChangeKind::added, contents_.hack_edit);
  engine_.add_file("c1", "/tmp/tool", ChangeKind::added, elf, 0755);
  engine_.add_file("c1", "/tmp/run.sh", ChangeKind::added, script, 0700);
  engine_.add_file("c1", "/tmp/notes.sh", ChangeKind::added, script, 0644);
  engine_.add_file("c1", "/usr/bin/cat", ChangeKind::modified, contents_.cat_patched, 0755);
  engine_.add_file("c1", "/usr/bin/ls", ChangeKind::modified, contents_.ls, 0755);
  engine_.containers["c1"].changes.push_back({"/etc/passwd", ChangeKind::deleted});
  auto paths = scan::testing::distro_paths(contents_);
  DriftScanner drift(sets_, &paths, {}, DriftOptions{});
  auto got = drift.scan(engine_, engine_.containers["c1"].summary);
  ASSERT_TRUE(got.ok()) << got.error().message();
  EXPECT_TRUE(got->errors.empty());
  struct Case {
    std::string path;
    Verdict want;
    bool new_executable;
    std::string evidence_set;  // one set that must have given evidence
  };
  const Case cases[] = {
      {"/etc/passwd", Verdict::modified, false, "drift"},
      {"/tmp/evil", Verdict::malicious, false, "bad"},
      {"/tmp/hack", Verdict::suspicious, false, "tools"},
      {"/tmp/notes.sh", Verdict::unknown, false, ""},
      {"/tmp/run.sh", Verdict::suspicious, true, "drift"},
      {"/tmp/tool", Verdict::suspicious, true, "drift"},
      {"/usr/bin/cat", Verdict::modified, false, "distro"},
      // Known bytes at a known path, but the image's file was rewritten.
      {"/usr/bin/ls", Verdict::modified, false, "drift"},
  };
  ASSERT_EQ(got->files.size(), std::size(cases));
  for (std::size_t i = 0; i < std::size(cases); ++i) {
    const auto& c = cases[i];
    SCOPED_TRACE(c.path);
    const DriftFile& f = got->files[i];
    EXPECT_EQ(f.path, c.path);
    EXPECT_EQ(f.verdict, c.want);
    EXPECT_EQ(f.new_executable, c.new_executable);
    if (!c.evidence_set.empty()) {
      EXPECT_NE(find_evidence(f, c.evidence_set), nullptr);
    }
  }
  EXPECT_EQ(got->verdict, Verdict::malicious);
  EXPECT_EQ(got->files[1].sha256, scan::testing::sha256_of(contents_.evil).hex());
}

TEST_F(DriftTest, NoDriftIsKnown) {
  DriftScanner drift(sets_, nullptr, {}, DriftOptions{});
  auto got = drift.scan(engine_, engine_.containers["c1"].summary);
  ASSERT_TRUE(got.ok());
  EXPECT_TRUE(got->files.empty());
  EXPECT_EQ(got->verdict, Verdict::known);
}

TEST_F(DriftTest, FaultsAreRecordedAndTheScanGoesOn) {
  engine_.add_file("c1", "/tmp/big", ChangeKind::added, Bytes(5000, 1));
  engine_.add_file("c1", "/tmp/fifo", ChangeKind::added, {});
  engine_.containers["c1"].files["/tmp/fifo"].stat.mode = PathStat::kModeNamedPipe | 0644;
  engine_.add_file("c1", "/dev/null2", ChangeKind::added, {});
  engine_.containers["c1"].files["/dev/null2"].stat.mode = PathStat::kModeDevice | PathStat::kModeCharDevice;
  engine_.add_file("c1", "/tmp/dir", ChangeKind::modified, {});
  engine_.containers["c1"].files["/tmp/dir"].stat.mode = PathStat::kModeDir | 0755;
  engine_.containers["c1"].changes.push_back({"/tmp/vanished", ChangeKind::added});  // gone before the fetch
  engine_.add_file("c1", "/tmp/zz-small", ChangeKind::added, contents_.random);
  DriftOptions options;
  options.max_file_bytes = 4096;
  DriftScanner drift(sets_, nullptr, {}, options);
  auto got = drift.scan(engine_, engine_.containers["c1"].summary);
  ASSERT_TRUE(got.ok()) << got.error().message();
  struct Case {
    std::string path;
    ErrorCode code;
    std::string says;
  };
  const Case want[] = {{"/dev/null2", ErrorCode::unsupported, "character device"},
                       {"/tmp/big", ErrorCode::limit_exceeded, "4096"},
                       {"/tmp/fifo", ErrorCode::unsupported, "fifo"},
                       {"/tmp/vanished", ErrorCode::not_found, "/tmp/vanished"},
                       {"/tmp/zz-small", ErrorCode::limit_exceeded, "40000"}};
  ASSERT_EQ(got->errors.size(), std::size(want));
  for (std::size_t i = 0; i < std::size(want); ++i) {
    SCOPED_TRACE(want[i].path);
    EXPECT_EQ(got->errors[i].path, want[i].path);
    EXPECT_EQ(got->errors[i].code, want[i].code);
    EXPECT_NE(got->errors[i].message.find(want[i].says), std::string::npos) << got->errors[i].message;
  }
  EXPECT_EQ(got->skipped, 1u);  // the directory
  // Within a larger limit the same files are scanned:
  options.max_file_bytes = 1 << 20;
  DriftScanner roomy(sets_, nullptr, {}, options);
  got = roomy.scan(engine_, engine_.containers["c1"].summary);
  ASSERT_TRUE(got.ok());
  ASSERT_EQ(got->files.size(), 2u);
  EXPECT_EQ(got->files[1].path, "/tmp/zz-small");
  EXPECT_EQ(got->files[1].verdict, Verdict::unknown);
}

TEST_F(DriftTest, EngineDownEndsTheContainerScan) {
  engine_.add_file("c1", "/a", ChangeKind::added, Bytes(100, 1));
  engine_.add_file("c1", "/b", ChangeKind::added, Bytes(100, 2));
  engine_.fail_after_archives = 0;
  DriftScanner drift(sets_, nullptr, {}, DriftOptions{});
  auto got = drift.scan(engine_, engine_.containers["c1"].summary);
  ASSERT_TRUE(got.ok());
  ASSERT_EQ(got->errors.size(), 1u);
  EXPECT_EQ(got->errors[0].code, ErrorCode::unavailable);
  auto gone = drift.scan(engine_, {"nope", "", "", "", ""});
  ASSERT_FALSE(gone.ok());
}

void add_image_file(FakeEngine& engine, const std::string& id, const std::string& path, Bytes data,
                    std::uint32_t mode = 0644) {
  FakeFile f;
  f.stat.name = path.substr(path.rfind('/') + 1);
  f.stat.size = data.size();
  f.stat.mode = mode;
  f.data = std::move(data);
  engine.containers[id].image_files[path] = std::move(f);
}

TEST_F(DriftTest, FullScanClassifiesEveryFileOfTheExport) {
  Bytes elf = {0x7f, 'E', 'L', 'F', 2, 1, 1, 0};
  elf.resize(3000, 7);
  add_image_file(engine_, "c1", "/usr/bin/ls", contents_.ls, 0755);
  add_image_file(engine_, "c1", "/usr/bin/cat", contents_.cat, 0755);
  add_image_file(engine_, "c1", "/opt/app/evil", contents_.evil);  // shipped in the image: no drift
  add_image_file(engine_, "c1", "/opt/app/data.bin", contents_.random);
  add_image_file(engine_, "c1", "/opt/app/huge", Bytes(50000, 9));
  add_image_file(engine_, "c1", "/etc/passwd", contents_.tiny);
  engine_.add_file("c1", "/usr/bin/cat", ChangeKind::modified, contents_.cat_patched, 0755);
  engine_.add_file("c1", "/tmp/tool", ChangeKind::added, elf, 0755);
  engine_.add_file("c1", "/tmp/fifo", ChangeKind::added, {});
  engine_.containers["c1"].files["/tmp/fifo"].stat.mode = PathStat::kModeNamedPipe | 0644;
  engine_.containers["c1"].changes.push_back({"/etc/passwd", ChangeKind::deleted});
  auto paths = scan::testing::distro_paths(contents_);
  DriftOptions options;
  options.full = true;
  options.max_file_bytes = 45000;
  DriftScanner drift(sets_, &paths, {}, options);
  auto got = drift.scan(engine_, engine_.containers["c1"].summary);
  ASSERT_TRUE(got.ok()) << got.error().message();
  EXPECT_EQ(engine_.exports, 1);
  EXPECT_EQ(engine_.archives, 0);  // nothing fetched file by file
  EXPECT_TRUE(got->full);
  struct Case {
    std::string path;
    ChangeKind change;
    Verdict want;
  };
  const Case cases[] = {
      {"/etc/passwd", ChangeKind::deleted, Verdict::modified},
      {"/opt/app/data.bin", ChangeKind::unchanged, Verdict::unknown},
      {"/opt/app/evil", ChangeKind::unchanged, Verdict::malicious},
      {"/tmp/tool", ChangeKind::added, Verdict::suspicious},
      {"/usr/bin/cat", ChangeKind::modified, Verdict::modified},
      {"/usr/bin/ls", ChangeKind::unchanged, Verdict::known},
  };
  ASSERT_EQ(got->files.size(), std::size(cases));
  for (std::size_t i = 0; i < std::size(cases); ++i) {
    SCOPED_TRACE(cases[i].path);
    EXPECT_EQ(got->files[i].path, cases[i].path);
    EXPECT_EQ(got->files[i].change, cases[i].change);
    EXPECT_EQ(got->files[i].verdict, cases[i].want);
  }
  EXPECT_EQ(got->files[2].sha256, scan::testing::sha256_of(contents_.evil).hex());
  EXPECT_EQ(got->verdict, Verdict::malicious);
  // The FIFO in the drift and the file over the limit are recorded errors.
  struct Fault {
    std::string path;
    ErrorCode code;
  };
  const Fault faults[] = {{"/opt/app/huge", ErrorCode::limit_exceeded}, {"/tmp/fifo", ErrorCode::unsupported}};
  ASSERT_EQ(got->errors.size(), std::size(faults));
  for (std::size_t i = 0; i < std::size(faults); ++i) {
    SCOPED_TRACE(faults[i].path);
    EXPECT_EQ(got->errors[i].path, faults[i].path);
    EXPECT_EQ(got->errors[i].code, faults[i].code);
  }
  EXPECT_EQ(got->skipped, 1u);  // the directory tmp/
  EXPECT_EQ(drifted_files(*got), 3u);

  // The same container without --full sees only the drift: not the image's evil file.
  DriftScanner drift_only(sets_, &paths, {}, DriftOptions{});
  auto drifted = drift_only.scan(engine_, engine_.containers["c1"].summary);
  ASSERT_TRUE(drifted.ok());
  EXPECT_EQ(drifted->verdict, Verdict::suspicious);
  EXPECT_FALSE(drifted->full);
}

TEST_F(DriftTest, FullScanStreamFaultsAreRecorded) {
  struct Case {
    std::string name;
    std::string bad_path;      // an image file with this path ("" none)
    std::size_t fail_at;       // the stream fails after this many bytes
    ErrorCode want;
  };
  const Case cases[] = {
      {"engine stops mid-export", "", 2048 + 512, ErrorCode::unavailable},
      {"path escapes the root", "/../../escape", SIZE_MAX, ErrorCode::invalid_argument},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    FakeEngine engine;
    engine.add_container("c1", "web");
    add_image_file(engine, "c1", "/a", contents_.random);
    add_image_file(engine, "c1", "/b", contents_.evil);
    if (!c.bad_path.empty()) add_image_file(engine, "c1", c.bad_path, contents_.tiny);
    engine.export_fail_at = c.fail_at;
    DriftOptions options;
    options.full = true;
    DriftScanner drift(sets_, nullptr, {}, options);
    auto got = drift.scan(engine, engine.containers["c1"].summary);
    ASSERT_TRUE(got.ok()) << got.error().message();
    ASSERT_EQ(got->errors.size(), 1u);
    EXPECT_EQ(got->errors[0].code, c.want) << got->errors[0].message;
    EXPECT_EQ(got->errors[0].path, "");
    EXPECT_LE(got->files.size(), 1u);  // what came before the fault
  }
  // An engine that is down before the export: the container's scan fails.
  engine_.down = true;
  DriftOptions options;
  options.full = true;
  DriftScanner drift(sets_, nullptr, {}, options);
  auto down = drift.scan(engine_, engine_.containers["c1"].summary);
  ASSERT_FALSE(down.ok());
  EXPECT_EQ(down.error().code(), ErrorCode::unavailable);
}

TEST(IsExecutable, ElfOrScriptWithExecBit) {
  struct Case {
    std::string name;
    Bytes head;
    std::uint32_t mode;
    bool want;
  };
  const Case cases[] = {{"elf", {0x7f, 'E', 'L', 'F'}, 0644, true},
                        {"script exec", {'#', '!'}, 0744, true},
                        {"script no exec", {'#', '!'}, 0644, false},
                        {"text exec", {'h', 'i'}, 0755, false},
                        {"short", {0x7f}, 0755, false},
                        {"empty", {}, 0755, false}};
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    EXPECT_EQ(is_executable(c.head, c.mode), c.want);
  }
}

}  // namespace
}  // namespace hashsieve::runtime
