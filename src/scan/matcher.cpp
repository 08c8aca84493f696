#include "hashsieve/scan/matcher.h"

#include <algorithm>
#include <map>

namespace hashsieve::scan {
namespace {

Verdict verdict_of(refset::ReferenceClass c) {
  switch (c) {
    case refset::ReferenceClass::known: return Verdict::known;
    case refset::ReferenceClass::malicious: return Verdict::malicious;
    case refset::ReferenceClass::suspicious: return Verdict::suspicious;
  }
  return Verdict::unknown;
}

class ExactMatcher final : public Matcher {
 public:
  explicit ExactMatcher(std::vector<const refset::LoadedRefset*> sets) : sets_(std::move(sets)) {}
  MatchStage stage() const override { return MatchStage::exact; }

  Status match(const FileRecord& file, std::vector<Evidence>& out) const override {
    for (const refset::LoadedRefset* set : sets_) {
      std::optional<refset::RefsetHit> hit;
      auto take = [&](Result<std::optional<refset::RefsetHit>> r) -> Status {
        if (!r.ok()) return std::move(r).error().with_context("set " + set->manifest().name);
        hit = std::move(r).value();
        return {};
      };
      if (file.crypto.sha256) {
        if (auto st = take(set->lookup(*file.crypto.sha256)); !st.ok()) return st;
      }
      if (!hit && file.crypto.sha1) {
        if (auto st = take(set->lookup(*file.crypto.sha1)); !st.ok()) return st;
      }
      if (!hit && file.crypto.md5) {
        if (auto st = take(set->lookup(*file.crypto.md5)); !st.ok()) return st;
      }
      if (!hit) continue;
      Evidence e;
      e.verdict = verdict_of(hit->hit_class);
      e.set = hit->set;
      e.set_class = std::string(refset::to_string(hit->hit_class));
      e.reference = hit->version.empty() ? hit->label : hit->label + " (" + hit->version + ")";
      e.algorithm = hit->digest_type;
      out.push_back(std::move(e));
    }
    return {};
  }

 private:
  std::vector<const refset::LoadedRefset*> sets_;
};

class SimilarityMatcher final : public Matcher {
 public:
  SimilarityMatcher(std::vector<const refset::LoadedRefset*> sets, const ScanThresholds& t)
      : sets_(std::move(sets)), thresholds_(t) {}
  MatchStage stage() const override { return MatchStage::similarity; }

  Status match(const FileRecord& file, std::vector<Evidence>& out) const override {
    if (file.size < thresholds_.similarity_min_bytes) return {};
    // Copies the digests once per file; the sets share the query.
    refset::SimilarityQuery query;
    query.sdbf = file.sdbf;
    query.tlsh = file.tlsh;
    query.ssdeep = file.ssdeep;
    query.content_keys = file.content_keys;
    query.rodata = file.rodata;
    refset::SimilarityThresholds limits;
    limits.sdbf_min_score = thresholds_.sdbf_min_score;
    limits.tlsh_max_distance = thresholds_.tlsh_max_distance;
    limits.ssdeep_min_score = thresholds_.ssdeep_min_score;
    limits.rodata_sdbf_min_score = thresholds_.rodata_sdbf_min_score;
    limits.rodata_tlsh_max_distance = thresholds_.rodata_tlsh_max_distance;
    limits.rodata_ssdeep_min_score = thresholds_.rodata_ssdeep_min_score;
    for (const refset::LoadedRefset* set : sets_) {
      // Similarity hits carry the set's class, so a known set's hits never
      // count: skipping it saves its (possibly brute-force) lookups.
      if (set->manifest().set_class == refset::ReferenceClass::known) continue;
      // Best hit per algorithm: higher SDBF/ssdeep score, lower TLSH distance.
      std::map<std::string, refset::SimilarityHit> best;
      auto keep = [&](const refset::SimilarityHit& h) {
        if (h.hit_class == refset::ReferenceClass::known) return;
        const Rule rule = rule_of(h.algorithm);
        if (!rule.valid) return;
        // Each rule gates on its own sizes: the files' or their .rodata sections'.
        const std::uint64_t size = rule.rodata ? (file.rodata ? file.rodata->size : 0) : file.size;
        if (h.reference_size && !sizes_within_ratio(*h.reference_size, size, rule.max_size_ratio)) return;
        auto [it, fresh] = best.emplace(h.algorithm, h);
        if (!fresh && (rule.lower_is_better ? h.score < it->second.score : h.score > it->second.score)) it->second = h;
      };
      for (const auto& h : set->similar(query, limits)) keep(h);
      for (const auto& [algorithm, h] : best) {
        Evidence e;
        e.verdict = Verdict::suspicious;
        e.set = h.set;
        e.set_class = std::string(refset::to_string(h.hit_class));
        e.reference = h.reference;
        e.algorithm = algorithm;
        e.score = h.score;
        e.threshold = rule_of(algorithm).threshold;
        out.push_back(std::move(e));
      }
    }
    return {};
  }

 private:
  // How a hit of one algorithm is judged.
  struct Rule {
    bool valid = false;
    bool rodata = false;
    bool lower_is_better = false;  // TLSH distance; SDBF and ssdeep: higher is closer
    int threshold = 0;
    std::uint32_t max_size_ratio = 0;
  };

  Rule rule_of(std::string_view algorithm) const {
    Rule r;
    if (algorithm.ends_with(refset::kRodataSuffix)) {
      r.rodata = true;
      algorithm.remove_suffix(refset::kRodataSuffix.size());
    }
    const ScanThresholds& t = thresholds_;
    r.max_size_ratio = r.rodata ? t.rodata_max_size_ratio : t.max_size_ratio;
    r.valid = true;
    if (algorithm == "sdbf") {
      r.threshold = r.rodata ? t.rodata_sdbf_min_score : t.sdbf_min_score;
    } else if (algorithm == "tlsh") {
      r.threshold = r.rodata ? t.rodata_tlsh_max_distance : t.tlsh_max_distance;
      r.lower_is_better = true;
    } else if (algorithm == "ssdeep") {
      r.threshold = r.rodata ? t.rodata_ssdeep_min_score : t.ssdeep_min_score;
    } else {
      r.valid = false;  // not an algorithm this matcher asked for
    }
    return r;
  }

 private:
  std::vector<const refset::LoadedRefset*> sets_;
  ScanThresholds thresholds_;
};

class PathMatcher final : public Matcher {
 public:
  explicit PathMatcher(const PathIndex& index) : index_(index) {}
  MatchStage stage() const override { return MatchStage::path; }

  Status match(const FileRecord& file, std::vector<Evidence>& out) const override {
    if (!file.crypto.sha256) return {};
    auto refs = index_.files_at_path("/" + file.path);
    if (!refs.ok()) return std::move(refs).error().with_context("path lookup of /" + file.path);
    if (refs->empty()) return {};
    for (const auto& r : *refs) {
      if (r.sha256 == *file.crypto.sha256) return {};  // the bytes are one of the known contents
    }
    // One piece of evidence per set that knows the path.
    std::vector<std::string> seen;
    for (const auto& r : *refs) {
      if (std::find(seen.begin(), seen.end(), r.set) != seen.end()) continue;
      seen.push_back(r.set);
      Evidence e;
      e.verdict = Verdict::modified;
      e.set = r.set;
      e.set_class = "known";
      e.reference = r.reference;
      e.algorithm = "path";
      out.push_back(std::move(e));
    }
    return {};
  }

 private:
  const PathIndex& index_;
};

}  // namespace

std::unique_ptr<Matcher> make_exact_matcher(std::vector<const refset::LoadedRefset*> sets) {
  return std::make_unique<ExactMatcher>(std::move(sets));
}

std::unique_ptr<Matcher> make_similarity_matcher(std::vector<const refset::LoadedRefset*> sets,
                                                 const ScanThresholds& thresholds) {
  return std::make_unique<SimilarityMatcher>(std::move(sets), thresholds);
}

std::unique_ptr<Matcher> make_path_matcher(const PathIndex& index) { return std::make_unique<PathMatcher>(index); }

namespace {

class RefsetPathIndex final : public PathIndex {
 public:
  explicit RefsetPathIndex(std::vector<const refset::LoadedRefset*> sets) : sets_(std::move(sets)) {}
  Result<std::vector<PathReference>> files_at_path(const std::string& path) const override {
    std::vector<PathReference> out;
    for (const refset::LoadedRefset* set : sets_) {
      auto files = set->files_at_path(path);
      if (!files.ok()) return std::move(files).error().with_context("set " + set->manifest().name);
      for (const auto& f : *files) {
        auto sha = digest::Sha256Digest::parse_hex(f.sha256);
        if (!sha.ok()) return std::move(sha).error().with_context("set " + set->manifest().name + ": " + f.path);
        std::string reference = "/" + f.path;
        if (!f.package.empty()) reference = f.package + ":" + reference;
        out.push_back({set->manifest().name, std::move(reference), *sha});
      }
    }
    return out;
  }

 private:
  std::vector<const refset::LoadedRefset*> sets_;
};

}  // namespace

std::unique_ptr<PathIndex> make_refset_path_index(const std::vector<refset::LoadedRefset>& sets) {
  std::vector<const refset::LoadedRefset*> known;
  for (const auto& s : sets) {
    if (s.manifest().set_class == refset::ReferenceClass::known) known.push_back(&s);
  }
  return std::make_unique<RefsetPathIndex>(std::move(known));
}

Result<Classification> classify(const FileRecord& file, const std::vector<std::unique_ptr<Matcher>>& matchers) {
  Classification c;
  for (MatchStage stage : {MatchStage::exact, MatchStage::path, MatchStage::similarity}) {
    if (stage == MatchStage::similarity) {
      // The sieve: bytes known exactly (good or bad) need no similarity.
      const bool exact_hit = std::any_of(c.evidence.begin(), c.evidence.end(), [](const Evidence& e) {
        return e.algorithm == "sha256" || e.algorithm == "sha1" || e.algorithm == "md5";
      });
      if (exact_hit) break;
    }
    for (const auto& m : matchers) {
      if (m->stage() != stage) continue;
      if (auto st = m->match(file, c.evidence); !st.ok()) return std::move(st).error();
    }
  }
  if (!c.evidence.empty()) {
    c.verdict = std::max_element(c.evidence.begin(), c.evidence.end(), [](const Evidence& a, const Evidence& b) {
                  return a.verdict < b.verdict;
                })->verdict;
  }
  return c;
}

std::string_view to_string(Verdict v) {
  switch (v) {
    case Verdict::known: return "known";
    case Verdict::unknown: return "unknown";
    case Verdict::modified: return "modified";
    case Verdict::suspicious: return "suspicious";
    case Verdict::malicious: return "malicious";
  }
  return "unknown";
}

Result<Verdict> parse_verdict(std::string_view text) {
  for (Verdict v : kAllVerdicts) {
    if (text == to_string(v)) return v;
  }
  return Error(ErrorCode::invalid_argument, "unknown verdict '" + std::string(text) +
                                                "' (known, unknown, modified, suspicious, malicious)");
}

}  // namespace hashsieve::scan
