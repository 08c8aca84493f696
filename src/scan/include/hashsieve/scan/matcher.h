// Matching one file's facts against reference sets, and the classification
// that turns the evidence into a verdict. Matching is never cached: it runs
// on every scan against the sets loaded now.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "hashsieve/core/result.h"
#include "hashsieve/digest/crypto.h"
#include "hashsieve/refset/catalog.h"
#include "hashsieve/scan/facts.h"
#include "hashsieve/scan/verdict.h"

namespace hashsieve::scan {

// When a matcher runs. Exact and path matchers run on every regular file;
// similarity matchers only on files without an exact hit (the sieve: a file
// whose bytes are known, good or bad, is decided by that).
enum class MatchStage { exact, path, similarity };

class Matcher {
 public:
  virtual ~Matcher() = default;
  virtual MatchStage stage() const = 0;
  // Appends this matcher's evidence about `file` to `out`.
  virtual Status match(const FileRecord& file, std::vector<Evidence>& out) const = 0;
};

// Known-good content by path, from path-aware sets (`refset build`): every
// file such a set holds at a path, to tell "modified" from "unknown".
struct PathReference {
  std::string set;
  std::string reference;  // e.g. "coreutils:/usr/bin/ls"
  digest::Sha256Digest sha256;
};

class PathIndex {
 public:
  virtual ~PathIndex() = default;
  // `path` as in the image root filesystem, with a leading '/'.
  virtual Result<std::vector<PathReference>> files_at_path(const std::string& path) const = 0;
};

// Exact hits (SHA-256, else SHA-1, else MD5: the strongest hash the set has)
// in each of `sets`. The verdict is the hit's class: a known-good hash the set
// flags malicious or suspicious gives that verdict.
std::unique_ptr<Matcher> make_exact_matcher(std::vector<const refset::LoadedRefset*> sets);

// SDBF, TLSH and ssdeep similarity (LoadedRefset::similar, through the
// set's similarity index where it has one) to references of malicious or
// suspicious class: verdict suspicious. Two rules, either suffices: the
// whole-file digests under the whole-file size gate, and (ELF files) the
// .rodata digests under the .rodata size gate (ScanThresholds). Files
// smaller than thresholds.similarity_min_bytes are skipped. Keeps the best
// hit per set and algorithm ("sdbf", ..., "sdbf:.rodata", ...).
std::unique_ptr<Matcher> make_similarity_matcher(std::vector<const refset::LoadedRefset*> sets,
                                                 const ScanThresholds& thresholds);

// The PathIndex of the known-good sets made by `refset build`
// (LoadedRefset::files_at_path); other sets hold no paths. `sets` must
// outlive it.
std::unique_ptr<PathIndex> make_refset_path_index(const std::vector<refset::LoadedRefset>& sets);

// "modified": the path holds known-good content in a path-aware set, and the
// file's SHA-256 is none of it. `index` must outlive the matcher.
std::unique_ptr<Matcher> make_path_matcher(const PathIndex& index);

struct Classification {
  Verdict verdict = Verdict::unknown;
  std::vector<Evidence> evidence;
};

// Runs the matchers in stage order on a regular file and picks the verdict:
// no evidence -> unknown, else the most severe evidence.
Result<Classification> classify(const FileRecord& file, const std::vector<std::unique_ptr<Matcher>>& matchers);

}  // namespace hashsieve::scan
