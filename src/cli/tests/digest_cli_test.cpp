// End-to-end tests of `hashsieve digest` against the sdhash 3.4 reference
// outputs in tests/data/sdhash (see its README for the command behind each
// expected file). Every run is also repeated with several threads: the output
// must not change.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "cli_runner.h"

namespace hashsieve::cli {
namespace {

namespace fs = std::filesystem;
using testing::read_text;
using testing::run_in;

const std::string kData = std::string(HASHSIEVE_TEST_DATA) + "/sdhash";
const std::string kInputs = kData + "/inputs";
const std::string kExpected = kData + "/expected";
const std::string kSynExpected = kData + "/synthetic/expected";
const std::string kGenerated = std::string(HASHSIEVE_BINARY_DIR) + "/testdata";

const char* kAllInputs =
    "min_512.bin tiny_511.bin zeros_64k.bin half_sparse_64k.bin text_gpl2.txt text_gpl2_edited.txt "
    "cat.elf ls.elf dir.elf gpgv.elf gpg.elf random_1m.bin random_1m_edited.bin";

struct GoldenCase {
  std::string dir;       // working directory
  std::string args;      // arguments after `hashsieve digest`
  std::string expected;  // file whose bytes stdout must equal
};

void expect_golden(const GoldenCase& c) {
  SCOPED_TRACE("hashsieve digest " + c.args);
  const std::string want = read_text(c.expected);
  for (const char* threads : {"-p 1", "-p 2", "-p 5"}) {
    SCOPED_TRACE(threads);
    auto r = run_in(c.dir, "\"$HASHSIEVE\" digest " + std::string(threads) + " " + c.args);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_TRUE(r.out == want) << "output differs from " << c.expected << " (" << r.out.size() << " vs "
                               << want.size() << " bytes)";
  }
}

std::vector<std::string> per_input_names() {
  return {"min_512.bin", "tiny_511.bin", "zeros_64k.bin", "half_sparse_64k.bin", "text_gpl2.txt",
          "text_gpl2_edited.txt", "cat.elf", "ls.elf", "dir.elf", "gpgv.elf", "gpg.elf", "random_1m.bin",
          "random_1m_edited.bin"};
}

TEST(DigestCli, HashesEveryInputLikeTheReference) {
  for (const auto& name : per_input_names()) {
    expect_golden({kInputs, name, kExpected + "/" + name + ".sdbf"});
    for (const char* b : {"16", "4", "1"}) {
      const std::string expected = kExpected + "/" + name + ".b" + b + ".sdbf";
      if (fs::exists(expected)) expect_golden({kInputs, std::string("-b ") + b + " " + name, expected});
    }
  }
}

TEST(DigestCli, HashesFileListsInReferenceOrder) {
  expect_golden({kInputs, kAllInputs, kExpected + "/all.sdbf"});
  expect_golden({kInputs, std::string("-b 16 ") + kAllInputs, kExpected + "/all.b16.sdbf"});
  expect_golden({kInputs, std::string("-b 4 ") + kAllInputs, kExpected + "/all.b4.sdbf"});
  expect_golden({kInputs, std::string("-b 1 ") + kAllInputs, kExpected + "/all.b1.sdbf"});
}

TEST(DigestCli, LargeInputsUseBlockModeChunksAndSegments) {
  const std::string big = kGenerated + "/big";
  expect_golden({big, "random_17m.bin", kExpected + "/random_17m.bin.sdbf"});
  expect_golden({big, "-b 0 random_33m.bin", kExpected + "/random_33m.bin.b0.sdbf"});
  expect_golden({big, "-z 16 random_33m.bin", kExpected + "/random_33m.bin.z16.sdbf"});
}

TEST(DigestCli, StdinIsHashedInBlockModeWithSegmentName) {
  const fs::path dir = fs::temp_directory_path() / ("hashsieve_stdin_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  auto r = run_in(dir.string(), "\"$HASHSIEVE\" digest -o stdin_text - < '" + kInputs + "/text_gpl2.txt'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(read_text(dir / "stdin_text.sdbf"), read_text(kExpected + "/stdin_text_gpl2.sdbf"));
  // Unlike the reference, stdin digests are printed when there is no -o.
  auto printed = run_in(dir.string(), "\"$HASHSIEVE\" digest - < '" + kInputs + "/text_gpl2.txt'");
  EXPECT_EQ(printed.out, read_text(kExpected + "/stdin_text_gpl2.sdbf"));
  fs::remove_all(dir);
}

TEST(DigestCli, ComparesDigestFilesLikeTheReference) {
  const GoldenCase cases[] = {
      {kExpected, "-c all.sdbf -t 0", kExpected + "/compare.txt"},
      {kExpected, "-c all.sdbf", kExpected + "/compare_default_t1.txt"},
      {kExpected, "-c all.sdbf -t 50 --separator csv", kExpected + "/compare_csv_t50.txt"},
      {kExpected, "-c all_nonzero.b16.sdbf -t 0", kExpected + "/compare_b16_t0.txt"},
      {kExpected, "-c all.sdbf all_nonzero.b16.sdbf -t 0", kExpected + "/compare_stream_vs_b16_t0.txt"},
      {kExpected, "-c edge_a.b4.sdbf edge_b.b4.sdbf -t -1", kExpected + "/compare_b4_edge_tm1.txt"},
      {kSynExpected, "-c stream.sdbf -t -1", kSynExpected + "/compare_stream.txt"},
      {kSynExpected, "-c stream.sdbf stream.sdbf -t -1", kSynExpected + "/compare_stream_x_stream.txt"},
      {kSynExpected, "-c b4_cmp.sdbf -t -1", kSynExpected + "/compare_b4.txt"},
      {kSynExpected, "-c stream.sdbf b4_cmp.sdbf -t -1", kSynExpected + "/compare_stream_x_b4.txt"},
  };
  for (const auto& c : cases) expect_golden(c);
}

TEST(DigestCli, GenerateAndCompare) {
  expect_golden({kInputs, "-g -t 0 text_gpl2.txt text_gpl2_edited.txt ls.elf dir.elf cat.elf",
                 kExpected + "/gen_compare_g_t0.txt"});
}

TEST(DigestCli, SyntheticStressSet) {
  // File order is gen.py's, which is also the expected files' line order.
  std::ifstream sums(kData + "/synthetic/inputs.sha256");
  std::string files;
  for (std::string hash, path; sums >> hash >> path;) files += " " + path;
  ASSERT_FALSE(files.empty());
  const std::string dir = kGenerated + "/synthetic";
  auto check = run_in(dir, "sha256sum --quiet -c '" + kData + "/synthetic/inputs.sha256'");
  ASSERT_EQ(check.exit_code, 0) << "regenerated synthetic inputs differ: " << check.out << check.err;
  expect_golden({dir, files, kSynExpected + "/stream.sdbf"});
  expect_golden({dir, "-b 1" + files, kSynExpected + "/b1.sdbf"});
  expect_golden({dir, "-b 4" + files, kSynExpected + "/b4.sdbf"});
  expect_golden({dir, "-b 16" + files, kSynExpected + "/b16.sdbf"});
}

TEST(DigestCli, ReferenceCrashCasesScoreMinusOne) {
  // sdhash 3.4 aborts on these pairs (0/0); we print -1 and go on.
  auto r = run_in(kExpected, "\"$HASHSIEVE\" digest -c zeros_64k.bin.b4.sdbf zeros_64k.bin.b4.sdbf -t -1");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "zeros_64k.bin|zeros_64k.bin|-1\n");
  auto all = run_in(kExpected, "\"$HASHSIEVE\" digest -c all.b16.sdbf -t -1 | wc -l");
  EXPECT_EQ(all.out, "66\n");
}

class DigestCliBadInput : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("hashsieve_bad_" + std::to_string(::getpid()));
    fs::create_directories(dir_ / "sub");
    fs::copy_file(kInputs + "/cat.elf", dir_ / "cat.elf");
    fs::copy_file(kInputs + "/ls.elf", dir_ / "sub" / "ls.elf");
  }
  void TearDown() override { fs::remove_all(dir_); }
  void write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name, std::ios::binary) << text;
  }
  testing::CommandResult digest(const std::string& args) { return run_in(dir_.string(), "\"$HASHSIEVE\" digest " + args); }
  fs::path dir_;
};

TEST_F(DigestCliBadInput, MissingFileIsReportedAndTheRestHashed) {
  auto r = digest("missing.bin cat.elf");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("missing.bin"), std::string::npos) << r.err;
  EXPECT_EQ(r.out, read_text(kExpected + "/cat.elf.sdbf"));
}

TEST_F(DigestCliBadInput, DirectoryNeedsRecursion) {
  auto r = digest("sub");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("use -r"), std::string::npos) << r.err;
  EXPECT_TRUE(r.out.empty());
  auto rec = digest("-r sub");
  EXPECT_EQ(rec.exit_code, 0) << rec.err;
  EXPECT_EQ(rec.out.rfind("sdbf:03:10:sub/ls.elf:151344:", 0), 0u) << rec.out.substr(0, 60);
}

TEST_F(DigestCliBadInput, UnreadableFileIsReported) {
  write("secret.bin", std::string(4096, 'x'));
  fs::permissions(dir_ / "secret.bin", fs::perms::none);
  // Root reads everything, so drop to "nobody" when running as root.
  const std::string prefix = ::geteuid() == 0 ? "setpriv --reuid=65534 --regid=65534 --clear-groups " : "";
  fs::permissions(dir_, fs::perms::all);
  auto r = run_in(dir_.string(), prefix + "\"$HASHSIEVE\" digest secret.bin");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("secret.bin"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("ermission"), std::string::npos) << r.err;
}

TEST_F(DigestCliBadInput, SpecialFilesAreSkipped) {
  ASSERT_EQ(::mkfifo((dir_ / "fifo").c_str(), 0600), 0);
  auto r = digest("fifo cat.elf");  // must not block on the FIFO
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("not a regular file"), std::string::npos) << r.err;
  EXPECT_EQ(r.out, read_text(kExpected + "/cat.elf.sdbf"));
}

TEST_F(DigestCliBadInput, MalformedDigestFilesNameTheLine) {
  const std::string good = read_text(kExpected + "/cat.elf.sdbf");
  struct Case { const char* name; std::string content; const char* want; };
  const Case cases[] = {
      {"truncated", good + good.substr(0, 200) + "\n", "line 2"},
      {"bad_base64", good + good.substr(0, good.size() - 10) + "!!!!!!!!=\n", "line 2"},
      {"bad_count", good + "sdbf:03:7:cat.elf:44016:sha1:256:5:7ff:160:99:83:" + good.substr(good.size() - 40), "line 2"},
      {"empty", "", "no digests"},
      {"garbage", "hello world\n", "line 1"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    write(std::string(c.name) + ".sdbf", c.content);
    auto r = digest(std::string("-c ") + c.name + ".sdbf");
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find(c.want), std::string::npos) << r.err;
    EXPECT_TRUE(r.out.empty());
  }
}

TEST_F(DigestCliBadInput, EmptyInputsAreWarnedAbout) {
  write("empty.bin", "");
  write("small.bin", std::string(100, 'x'));
  auto r = digest("empty.bin small.bin cat.elf");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out, read_text(kExpected + "/cat.elf.sdbf"));  // stdout exactly as sdhash
  EXPECT_NE(r.err.find("empty.bin: warning: empty file"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("small.bin"), std::string::npos) << "only --verbose reports small files";
  auto verbose = digest("--verbose small.bin");
  EXPECT_NE(verbose.err.find("small.bin: warning: too small"), std::string::npos) << verbose.err;
  auto stdin_empty = digest("- < empty.bin");
  EXPECT_EQ(stdin_empty.exit_code, 0);
  EXPECT_TRUE(stdin_empty.out.empty());
  EXPECT_NE(stdin_empty.err.find("empty input"), std::string::npos) << stdin_empty.err;
}

TEST_F(DigestCliBadInput, UsageErrors) {
  for (const char* args : {"", "-b", "-b x cat.elf", "-p 0 cat.elf", "--separator semicolon cat.elf",
                           "--bogus cat.elf", "-c a b c", "- cat.elf", "-z 0 cat.elf"}) {
    SCOPED_TRACE(args);
    auto r = digest(args);
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("usage"), std::string::npos);
  }
}

TEST_F(DigestCliBadInput, NamesWithColonsRoundTrip) {
  fs::copy_file(dir_ / "cat.elf", dir_ / "a:b.elf");
  auto hashed = digest("-o colon a:b.elf");
  ASSERT_EQ(hashed.exit_code, 0) << hashed.err;
  auto compared = digest("-c colon.sdbf colon.sdbf");
  ASSERT_EQ(compared.exit_code, 0) << compared.err;
  EXPECT_EQ(compared.out, "a:b.elf|a:b.elf|100\n");
}

}  // namespace
}  // namespace hashsieve::cli
