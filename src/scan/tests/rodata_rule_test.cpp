// The .rodata rule of the similarity matcher (docs/adr/0012): the layer
// hasher computes .rodata digests of ELF files, facts carry them through the
// cache, and the matcher applies max(size)/min(size) <= 4 AND (sdbf >= 18 OR
// tlsh <= 120 OR ssdeep >= 50) on the .rodata sections as a second OR branch
// beside the whole-file rule.
#include <gtest/gtest.h>

#include <functional>
#include <random>
#include <set>
#include <sstream>

#include "hashsieve/core/file.h"
#include "hashsieve/digest/elf_sections.h"
#include "hashsieve/refset/builder.h"
#include "hashsieve/refset/catalog.h"
#include "hashsieve/scan/file_facts.h"
#include "hashsieve/scan/matcher.h"
#include "hashsieve/scan/scanner.h"
#include "hashsieve/scan/verdict.h"
#include "hashsieve/store/store.h"
#include "scan_fixture.h"
#include "subprocess.h"

namespace hashsieve::scan {
namespace {

using namespace testing;

Bytes read_bytes(const std::string& path) {
  auto f = MappedFile::open(path);
  if (!f.ok()) return {};
  return Bytes(f->bytes().begin(), f->bytes().end());
}

// /usr/bin/ls with every 7th byte of its code (.text) changed: the code of
// "another build" differs, its .rodata does not.
Bytes recompiled(const Bytes& elf) {
  const std::vector<std::string> text_name = {".text"};
  auto text = digest::find_elf_sections(elf, text_name);
  Bytes out = elf;
  if (!text.ok() || text->size() != 1) return {};
  for (std::uint64_t i = (*text)[0].offset; i < (*text)[0].offset + (*text)[0].size; i += 7) out[i] ^= 0x5a;
  return out;
}

ScanThresholds whole_file_off(ScanThresholds t) {
  t.sdbf_min_score = 101;
  t.tlsh_max_distance = -1;
  t.ssdeep_min_score = 101;
  return t;
}

ScanThresholds rodata_off(ScanThresholds t) {
  t.rodata_sdbf_min_score = 101;
  t.rodata_tlsh_max_distance = -1;
  t.rodata_ssdeep_min_score = 101;
  return t;
}

std::set<std::string> algorithms_of(const std::vector<Evidence>& ev) {
  std::set<std::string> out;
  for (const auto& e : ev) out.insert(e.algorithm);
  return out;
}

TEST(RodataRule, DefaultsAreTheCalibratedRodataRule) {
  const ScanThresholds t;
  EXPECT_EQ(t.rodata_max_size_ratio, 4u);
  EXPECT_EQ(t.rodata_sdbf_min_score, 18);
  EXPECT_EQ(t.rodata_tlsh_max_distance, 120);
  EXPECT_EQ(t.rodata_ssdeep_min_score, 50);
}

// Against a malicious set built from /usr/bin/ls: each term of the .rodata
// rule alone, its size gate on the sections' sizes, and the rule switched off.
TEST(RodataRule, TermsAndSizeGate) {
  const Bytes ls = read_bytes("/usr/bin/ls");
  if (ls.empty() || !digest::has_elf_magic(ls)) GTEST_SKIP() << "/usr/bin/ls is not a readable ELF file";
  TempDir dir;
  auto catalog = refset::RefsetCatalog::open(dir.path());
  ASSERT_TRUE(catalog.ok());
  write_file(fs::path(dir.path()) / "sources/bad/bin/ls", ls);
  refset::BuildRequest req;
  req.name = "bad";
  req.set_class = refset::ReferenceClass::malicious;
  req.paths = {dir.path() + "/sources/bad"};
  ASSERT_TRUE(refset::build_refset(*catalog, req).ok());
  const auto sets = load_sets(dir.path(), {"bad"});
  ASSERT_EQ(sets.size(), 1u);
  const std::vector<const refset::LoadedRefset*> ptrs = {&sets[0]};

  const Bytes other = recompiled(ls);
  ASSERT_FALSE(other.empty());
  auto base = file_record_from_bytes("usr/local/bin/tool", 0755, other);
  ASSERT_TRUE(base.ok()) << base.error().message();
  ASSERT_TRUE(base->rodata.has_value());
  const std::uint64_t rodata = base->rodata->size;

  const ScanThresholds only_rodata = whole_file_off(ScanThresholds{});
  ScanThresholds rodata_sdbf = only_rodata;
  rodata_sdbf.rodata_tlsh_max_distance = -1;
  rodata_sdbf.rodata_ssdeep_min_score = 101;
  ScanThresholds rodata_tlsh = only_rodata;
  rodata_tlsh.rodata_sdbf_min_score = 101;
  rodata_tlsh.rodata_ssdeep_min_score = 101;
  ScanThresholds rodata_ssdeep = only_rodata;
  rodata_ssdeep.rodata_sdbf_min_score = 101;
  rodata_ssdeep.rodata_tlsh_max_distance = -1;
  ScanThresholds no_gate = only_rodata;
  no_gate.rodata_max_size_ratio = 0;

  const std::set<std::string> all = {"sdbf:.rodata", "tlsh:.rodata", "ssdeep:.rodata"};
  struct Case {
    std::string name;
    ScanThresholds t;
    std::optional<std::uint64_t> query_rodata_size;  // overrides the record's .rodata size
    bool drop_rodata;
    std::set<std::string> want;
  };
  const std::vector<Case> cases = {
      {"every .rodata term", only_rodata, std::nullopt, false, all},
      {"sdbf alone", rodata_sdbf, std::nullopt, false, {"sdbf:.rodata"}},
      {"tlsh alone", rodata_tlsh, std::nullopt, false, {"tlsh:.rodata"}},
      {"ssdeep alone", rodata_ssdeep, std::nullopt, false, {"ssdeep:.rodata"}},
      {"section 4x the reference's: within the gate", only_rodata, 4 * rodata, false, all},
      {"section a quarter of the reference's", only_rodata, rodata / 4 + (rodata % 4 != 0), false, all},
      {"section 4x+1: gated out", only_rodata, 4 * rodata + 1, false, {}},
      {"section 4x+1, gate off", no_gate, 4 * rodata + 1, false, all},
      {"both rules off", rodata_off(only_rodata), std::nullopt, false, {}},
      {"query without .rodata digests", only_rodata, std::nullopt, true, {}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    FileRecord r = *base;
    if (c.query_rodata_size) r.rodata->size = *c.query_rodata_size;
    if (c.drop_rodata) r.rodata.reset();
    std::vector<Evidence> out;
    ASSERT_TRUE(make_similarity_matcher(ptrs, c.t)->match(r, out).ok());
    EXPECT_EQ(algorithms_of(out), c.want);
    for (const Evidence& e : out) {
      EXPECT_EQ(e.verdict, Verdict::suspicious);
      EXPECT_EQ(e.reference, "/bin/ls");
      ASSERT_TRUE(e.score && e.threshold);
      if (e.algorithm == "tlsh:.rodata") {
        EXPECT_EQ(*e.threshold, c.t.rodata_tlsh_max_distance);
        EXPECT_LE(*e.score, *e.threshold);
      } else {
        EXPECT_EQ(*e.threshold, e.algorithm == "sdbf:.rodata" ? c.t.rodata_sdbf_min_score : c.t.rodata_ssdeep_min_score);
        EXPECT_GE(*e.score, *e.threshold);
      }
    }
  }
}

// The facts encoding carries .rodata digests (and their absence) through
// the store's text fields.
TEST(RodataRule, FactsRoundTripRodataDigests) {
  const Bytes ls = read_bytes("/usr/bin/ls");
  if (ls.empty() || !digest::has_elf_magic(ls)) GTEST_SKIP() << "/usr/bin/ls is not a readable ELF file";
  struct Case {
    std::string name;
    Bytes data;
    bool want_rodata;
  };
  const std::vector<Case> cases = {{"ELF", ls, true}, {"not ELF", random_bytes(9000, 3), false}};
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    auto r = file_record_from_bytes("bin/x", 0755, c.data);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->rodata.has_value(), c.want_rodata);
    const store::FileFacts f = encode_facts(*r);
    EXPECT_EQ(f.rodata_size.has_value(), c.want_rodata);
    auto back = decode_facts(f);
    ASSERT_TRUE(back.ok()) << back.error().message();
    ASSERT_EQ(back->rodata.has_value(), c.want_rodata);
    if (c.want_rodata) {
      EXPECT_TRUE(*back->rodata == *r->rodata);
    }
    EXPECT_EQ(encode_facts(*back), f);
  }
  // Damaged .rodata fields are parse errors naming the field.
  auto r = file_record_from_bytes("bin/x", 0755, ls);
  ASSERT_TRUE(r.ok());
  const store::FileFacts good = encode_facts(*r);
  struct Bad {
    std::string name;
    std::function<void(store::FileFacts&)> mutate;
    std::string want;
  };
  const std::vector<Bad> bad = {
      {"tlsh", [](store::FileFacts& f) { f.rodata_tlsh = "T1zz"; }, "rodata_tlsh"},
      {"ssdeep", [](store::FileFacts& f) { f.rodata_ssdeep = "nonsense"; }, "rodata_ssdeep"},
      {"sdbf", [](store::FileFacts& f) { f.rodata_sdbf = "sdbf:03:x\n"; }, "rodata_sdbf"},
      {"digests without a size", [](store::FileFacts& f) { f.rodata_size.reset(); }, "rodata_size"},
  };
  for (const Bad& b : bad) {
    SCOPED_TRACE(b.name);
    store::FileFacts f = good;
    b.mutate(f);
    auto d = decode_facts(f);
    ASSERT_FALSE(d.ok());
    EXPECT_EQ(d.error().code(), ErrorCode::parse_error);
    EXPECT_NE(d.error().message().find(b.want), std::string::npos) << d.error().message();
  }
}

// A C program generated with `variant`-dependent code: 300 functions of
// pseudo-random arithmetic (the code, which another compiler or a code
// change rewrites) and a table of 300 messages of made-up words (the .rodata
// strings, of which a new release edits a few).
std::string generated_program(int variant) {
  static const char* const kSyllables[] = {"ka", "to", "re", "mi", "su", "lo", "pa", "ne", "vi", "do",
                                           "ra", "ze", "qu", "fo", "li", "ga", "te", "bo", "xy", "un"};
  constexpr int kMessages = 300;
  constexpr int kFunctions = 300;
  std::mt19937 strings(42);  // the same words and messages in both builds ...
  std::vector<std::string> words(400);
  for (auto& w : words) {
    for (unsigned n = 1 + strings() % 4; n > 0; --n) w += kSyllables[strings() % 20];
  }
  std::vector<std::string> messages;
  for (int i = 0; i < kMessages; ++i) {
    std::string m;
    for (unsigned n = 4 + strings() % 7; n > 0; --n) m += (m.empty() ? "" : " ") + words[strings() % words.size()];
    if (variant != 0 && i % 10 == 0) m = "[" + m + "]";  // ... but a few edited
    messages.push_back(m + " %u");
  }
  std::ostringstream c;
  c << "#include <stdio.h>\nstatic const char *const messages[] = {\n";
  for (const auto& m : messages) c << "  \"" << m << "\",\n";
  c << "};\n";
  std::mt19937 code(7 + static_cast<unsigned>(variant));
  for (int f = 0; f < kFunctions; ++f) {
    c << "unsigned f" << f << "(unsigned x) {";
    for (unsigned k = 6 + code() % 9; k > 0; --k) {
      const unsigned a = 1 + code() % (1u << 20), b = 1 + code() % 12;
      switch (code() % 3) {
        case 0: c << " x = x * " << a << "u + " << b << "u;"; break;
        case 1: c << " x ^= x >> " << b << "; x += " << a << "u;"; break;
        default: c << " x = (x << " << b << ") | (x >> " << 32 - b << "); x -= " << a << "u;"; break;
      }
    }
    c << " if (x % " << 50 + code() % 450 << "u == 0) printf(messages[" << code() % kMessages << "], x); return x; }\n";
  }
  c << "int main(int argc, char **argv) {\n  (void)argv;\n  unsigned x = (unsigned)argc;\n";
  for (int f = 0; f < kFunctions; ++f) c << "  x = f" << f << "(x);\n";
  c << "  printf(\"%u\\n\", x);\n  return 0;\n}\n";
  return c.str();
}

// Builds a program with `compiler`; empty when that fails.
Bytes compile(const std::string& compiler, const fs::path& dir, const std::string& name, const std::string& source,
              const std::vector<std::string>& flags) {
  const fs::path src = dir / (name + ".c");
  std::ofstream(src) << source;
  std::vector<std::string> argv = {compiler};
  argv.insert(argv.end(), flags.begin(), flags.end());
  for (const std::string& a : {std::string("-o"), (dir / name).string(), src.string()}) argv.push_back(a);
  if (hashsieve::testsupport::run_program(argv, (dir / (name + ".log")).string()) != 0) return {};
  return read_bytes((dir / name).string());
}

// End to end, a real "other build": the malicious set holds one build of a
// program; the image holds another release of it (different code, a few
// edited messages) built without PIE, as older distribution releases were.
// The whole-file rule misses it; the .rodata rule finds it, and the scan
// reports only .rodata evidence. (Measured with gcc 12 when written: whole
// files tlsh 67 and no SDBF/ssdeep hit; .rodata tlsh 22. Building the other
// release with clang instead moved .rodata tlsh to 105-128: its string
// layout differs, a case the .rodata rule barely covers.)
TEST(RodataRule, ScanFindsAnotherBuildTheWholeFileRuleMisses) {
  if (!hashsieve::testsupport::have_program("cc")) GTEST_SKIP() << "no C compiler (cc) in PATH";
  TempDir dir;
  const fs::path work = fs::path(dir.path()) / "cc";
  fs::create_directories(work);
  const Bytes reference = compile("cc", work, "tool-1.0", generated_program(0), {"-O2"});
  const Bytes other = compile("cc", work, "tool-1.1", generated_program(1), {"-O2", "-fno-pie", "-no-pie"});
  ASSERT_FALSE(reference.empty() || other.empty()) << "the compiler failed; see " << work;
  std::ostringstream scores;  // the measured scores, for the failure messages
  {
    auto a = refset::make_similarity_query("a", reference);
    auto b = refset::make_similarity_query("b", other);
    ASSERT_TRUE(a.ok() && b.ok() && a->rodata && b->rodata);
    scores << "sizes " << reference.size() << "/" << other.size() << ", .rodata " << a->rodata->size << "/"
           << b->rodata->size << "; whole tlsh "
           << (a->tlsh && b->tlsh ? digest::tlsh_distance(*a->tlsh, *b->tlsh) : -1) << ", .rodata tlsh "
           << (a->rodata->tlsh && b->rodata->tlsh ? digest::tlsh_distance(*a->rodata->tlsh, *b->rodata->tlsh) : -1);
  }
  SCOPED_TRACE(scores.str());
  RecordProperty("scores", scores.str());

  write_file(fs::path(dir.path()) / "sources/bad/usr/bin/tool", reference);
  auto catalog = refset::RefsetCatalog::open(dir.path());
  ASSERT_TRUE(catalog.ok());
  refset::BuildRequest req;
  req.name = "bad";
  req.set_class = refset::ReferenceClass::malicious;
  req.paths = {dir.path() + "/sources/bad"};
  ASSERT_TRUE(refset::build_refset(*catalog, req).ok());
  const auto sets = load_sets(dir.path(), {"bad"});
  ASSERT_EQ(sets.size(), 1u);

  FakeSource source;
  source.layers.push_back({file("usr/local/bin/healthcheck", other), file("usr/bin/ls", read_bytes("/usr/bin/ls"))});
  // The second and third scans read the layer's facts from the store: the
  // .rodata digests survive the cache.
  auto store = store::open_sqlite_store(dir.path() + "/store");
  ASSERT_TRUE(store.ok()) << store.error().message();
  struct Case {
    std::string name;
    ScanThresholds t;
    Verdict want;
    bool want_cached;
  };
  const std::vector<Case> cases = {
      {"whole-file rule alone misses it", rodata_off(ScanThresholds{}), Verdict::unknown, false},
      {"defaults: the .rodata rule finds it", ScanThresholds{}, Verdict::suspicious, true},
      {"whole-file rule alone, from the cache", rodata_off(ScanThresholds{}), Verdict::unknown, true},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    ScanOptions options;
    options.thresholds = c.t;
    Scanner scanner(store->get(), sets, nullptr, options);
    auto report = scanner.scan(source, source.image());
    ASSERT_TRUE(report.ok()) << report.error().message();
    EXPECT_EQ(report->stats.layers_from_cache, c.want_cached ? 1u : 0u);
    for (const auto& f : report->files) {
      if (f.path == "usr/bin/ls") {
        EXPECT_EQ(f.verdict, Verdict::unknown);  // an unrelated program stays unknown
        continue;
      }
      if (f.path != "usr/local/bin/healthcheck") continue;
      std::ostringstream evidence;
      for (const auto& e : f.evidence) evidence << e.algorithm << "=" << e.score.value_or(-1) << " ";
      EXPECT_EQ(f.verdict, c.want) << evidence.str();
      for (const auto& e : f.evidence) {
        EXPECT_NE(e.algorithm.find(":.rodata"), std::string::npos) << e.algorithm;
        EXPECT_EQ(e.reference, "/usr/bin/tool");
      }
    }
  }
}

}  // namespace
}  // namespace hashsieve::scan
