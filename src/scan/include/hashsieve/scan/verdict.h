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
  std::string algorithm;               // "sha256", "sha1", "md5", "sdbf", "tlsh", "ssdeep", "path"
  std::optional<int> score;            // similarity: sdbf/ssdeep score, tlsh distance
  std::optional<int> threshold;        // the threshold the score was held against
  bool operator==(const Evidence&) const = default;
};

// Similarity thresholds. Every default lives here, in one place.
// PLACEHOLDERS: sdbf 21, tlsh 100, ssdeep 60 until the calibration
// measurements (docs/performance.md) replace them.
inline constexpr int kDefaultSdbfMinScore = 21;
inline constexpr int kDefaultTlshMaxDistance = 100;
inline constexpr int kDefaultSsdeepMinScore = 60;
// SDBF gives no digest below 512 bytes; TLSH and ssdeep are unreliable on
// such small inputs too, so smaller files are matched exactly only.
inline constexpr std::uint64_t kDefaultSimilarityMinBytes = 512;

struct ScanThresholds {
  int sdbf_min_score = kDefaultSdbfMinScore;        // hit when score >= this (0..100)
  int tlsh_max_distance = kDefaultTlshMaxDistance;  // hit when distance <= this
  int ssdeep_min_score = kDefaultSsdeepMinScore;    // hit when score >= this (0..100)
  std::uint64_t similarity_min_bytes = kDefaultSimilarityMinBytes;
};

}  // namespace hashsieve::scan
