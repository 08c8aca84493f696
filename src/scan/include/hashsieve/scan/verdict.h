// Verdicts, the evidence behind them, and the thresholds of similarity
// matching.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "hashsieve/core/result.h"

namespace hashsieve::scan {

// Ordered by severity, so the worst of several is their maximum. `unknown`
// is what a file is when nothing matched; any evidence replaces it, and among
// evidence the most severe wins: malicious > suspicious > modified > known.
// Hence a known-good hash in a suspicious NSRL category (the hit's class is
// raised to suspicious at import) is suspicious, and a file at a known path
// whose bytes differ is modified even if its bytes are known elsewhere.
// Between files (the image verdict) unknown is worse than known: a human has
// to look at it.
enum class Verdict : std::uint8_t { known, unknown, modified, suspicious, malicious };

inline constexpr Verdict kAllVerdicts[] = {Verdict::known, Verdict::unknown, Verdict::modified,
                                           Verdict::suspicious, Verdict::malicious};

std::string_view to_string(Verdict v);
Result<Verdict> parse_verdict(std::string_view text);

// One reason for a verdict: which set and reference matched, how.
struct Evidence {
  Verdict verdict = Verdict::unknown;  // what this evidence alone says
  std::string set;                     // reference set name
  std::string set_class;               // "known", "malicious", "suspicious" (of the hit)
  std::string reference;               // label, digest name or path in the set
  std::string algorithm;               // "sha256", "sha1", "md5", "sdbf", "tlsh", "ssdeep", "path",
                                       // "sdbf:.rodata", "tlsh:.rodata", "ssdeep:.rodata"
  std::optional<int> score;            // similarity: sdbf/ssdeep score, tlsh distance
  std::optional<int> threshold;        // the threshold the score was held against
  bool operator==(const Evidence&) const = default;
};

// Similarity thresholds. Every default lives here, in one place.
// The defaults are the two rules calibrated in docs/detection.md (run
// bench/calibration/calibrate.sh). A file is suspicious when, against a
// reference of a malicious or suspicious set, either rule holds (OR):
//   whole files:  max(size)/min(size) <= 2  AND  (sdbf >= 3  OR  tlsh <= 40  OR  ssdeep >= 36)
//   ELF .rodata:  max(size)/min(size) <= 4  AND  (sdbf >= 18 OR  tlsh <= 120 OR  ssdeep >= 50)
// (the .rodata rule on the sizes and digests of both files' .rodata
// sections; refset::rodata_digests). See docs/detection.md for the measured
// detection and false-positive rates of the combination.
// SDBF >= 3 lies outside the similarity index (kSdbfIndexedMinScore = 21),
// and .rodata digests have no index, so these lookups scan every reference
// of the known-bad sets: fine for the small sets such lists are; known-class
// sets are never searched (their hits cannot raise a verdict).
inline constexpr int kDefaultSdbfMinScore = 3;
inline constexpr int kDefaultTlshMaxDistance = 40;
inline constexpr int kDefaultSsdeepMinScore = 36;
inline constexpr std::uint32_t kDefaultSimilarityMaxSizeRatio = 2;
inline constexpr int kDefaultRodataSdbfMinScore = 18;
inline constexpr int kDefaultRodataTlshMaxDistance = 120;
inline constexpr int kDefaultRodataSsdeepMinScore = 50;
inline constexpr std::uint32_t kDefaultRodataMaxSizeRatio = 4;
// SDBF gives no digest below 512 bytes; TLSH and ssdeep are unreliable on
// such small inputs too, so smaller files are matched exactly only.
inline constexpr std::uint64_t kDefaultSimilarityMinBytes = 512;

struct ScanThresholds {
  int sdbf_min_score = kDefaultSdbfMinScore;        // hit when score >= this (0..100)
  int tlsh_max_distance = kDefaultTlshMaxDistance;  // hit when distance <= this
  int ssdeep_min_score = kDefaultSsdeepMinScore;    // hit when score >= this (0..100)
  // Size gate: a hit counts only when the larger of the file and the
  // reference is at most this many times the smaller (0 = no gate). Hits of
  // sets built before references carried their size pass ungated.
  std::uint32_t max_size_ratio = kDefaultSimilarityMaxSizeRatio;
  std::uint64_t similarity_min_bytes = kDefaultSimilarityMinBytes;
  // The .rodata rule, the same way on the .rodata sections' digests and
  // sizes (evidence algorithms "sdbf:.rodata", "tlsh:.rodata",
  // "ssdeep:.rodata"). Thresholds out of range (sdbf/ssdeep > 100, tlsh < 0)
  // switch a term off.
  int rodata_sdbf_min_score = kDefaultRodataSdbfMinScore;
  int rodata_tlsh_max_distance = kDefaultRodataTlshMaxDistance;
  int rodata_ssdeep_min_score = kDefaultRodataSsdeepMinScore;
  std::uint32_t rodata_max_size_ratio = kDefaultRodataMaxSizeRatio;
};

// The size gate: max(a, b) <= max_ratio * min(a, b), without overflow.
// max_ratio 0 disables the gate.
constexpr bool sizes_within_ratio(std::uint64_t a, std::uint64_t b, std::uint32_t max_ratio) {
  if (max_ratio == 0) return true;
  const std::uint64_t lo = a < b ? a : b;
  const std::uint64_t hi = a < b ? b : a;
  // hi <= r * lo  <=>  ceil(hi / r) <= lo
  return hi / max_ratio + (hi % max_ratio != 0 ? 1 : 0) <= lo;
}

}  // namespace hashsieve::scan
