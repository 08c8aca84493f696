#include "hashsieve/scan/scanner.h"

#include "hashsieve/image/whiteouts.h"
#include "layer_hasher.h"

namespace hashsieve::scan {
namespace {

bool is_exact_known(const refset::LoadedRefset& set, const digest::CryptoDigests& d) {
  auto known = [](const Result<std::optional<refset::RefsetHit>>& r) {
    // A failed lookup counts as "not known": the file then gets every digest,
    // which is always safe.
    return r.ok() && r->has_value() && (*r)->hit_class == refset::ReferenceClass::known;
  };
  if (d.sha256 && known(set.lookup(*d.sha256))) return true;
  if (d.sha1 && known(set.lookup(*d.sha1))) return true;
  return d.md5 && known(set.lookup(*d.md5));
}

}  // namespace

ScanSummary summarize(const std::vector<FileFinding>& files) {
  ScanSummary s;
  for (const auto& f : files) {
    ++s.files;
    if (f.hidden_by) ++s.hidden;
    ++s.counts[static_cast<std::size_t>(f.verdict)];
  }
  if (s.files > 0) {
    s.reduction_ratio = static_cast<double>(s.count(Verdict::known)) / static_cast<double>(s.files);
    s.verdict = Verdict::known;
    for (Verdict v : kAllVerdicts) {
      if (s.count(v) > 0) s.verdict = std::max(s.verdict, v);
    }
  }
  return s;
}

Scanner::Scanner(store::Store* store, const std::vector<refset::LoadedRefset>& sets, const PathIndex* paths,
                 ScanOptions options)
    : store_(store), sets_(sets), options_(std::move(options)) {
  std::vector<const refset::LoadedRefset*> good, bad;
  for (const auto& s : sets_) {
    (s.manifest().set_class == refset::ReferenceClass::known ? good : bad).push_back(&s);
  }
  known_sets_ = good;
  // Known-good sets first, so evidence lists read "what it is" before "why it
  // is flagged"; the verdict does not depend on the order.
  matchers_.push_back(make_exact_matcher(good));
  matchers_.push_back(make_exact_matcher(bad));
  if (paths != nullptr) matchers_.push_back(make_path_matcher(*paths));
  matchers_.push_back(make_similarity_matcher(bad, options_.thresholds));
}

bool Scanner::known_at_hash_time(const digest::CryptoDigests& d) const {
  // LoadedRefset lookups are thread-safe: workers call this concurrently.
  for (const auto* s : known_sets_) {
    if (is_exact_known(*s, d)) return true;
  }
  return false;
}

Result<ImageReport> Scanner::scan(image::ImageSource& source, const image::ResolvedImage& image) {
  ImageReport report;
  report.image = image;
  report.thresholds = options_.thresholds;
  for (const auto& s : sets_) {
    report.sets.push_back({s.manifest().name, std::string(refset::to_string(s.manifest().set_class)),
                           s.manifest().version});
  }
  ScanStats& stats = report.stats;
  stats.layers = image.layers.size();

  ScanProgress progress;
  progress.layers = image.layers.size();
  for (const auto& l : image.layers) progress.total_bytes += l.size;

  LayerHashOptions hash_options;
  hash_options.threads = options_.threads;
  hash_options.max_buffered_file_bytes = options_.max_buffered_file_bytes;
  hash_options.max_inflight_bytes = options_.max_inflight_bytes;
  hash_options.is_known = [this](const digest::CryptoDigests& d) { return known_at_hash_time(d); };
  hash_options.on_file_read = [&](std::uint64_t bytes) {
    ++progress.files;
    progress.bytes += bytes;
    if (options_.progress) options_.progress(progress);
  };

  std::vector<std::vector<FileRecord>> layers(image.layers.size());
  for (std::size_t i = 0; i < image.layers.size(); ++i) {
    const image::LayerDescriptor& desc = image.layers[i];
    const std::string where = "layer " + std::to_string(i) + (desc.diff_id.empty() ? "" : " (" + desc.diff_id + ")");
    if (options_.cancelled && options_.cancelled()) {
      return Error(ErrorCode::unavailable, "scan cancelled before " + where);
    }
    progress.layer = i;
    if (options_.progress) options_.progress(progress);
    const bool cacheable = options_.use_cache && store_ != nullptr && !desc.diff_id.empty();
    const store::LayerKey key{desc.diff_id, options_.hasher_versions};
    std::optional<std::vector<FileRecord>> records;
    if (cacheable) {
      auto cached = store_->get_layer_facts(key);
      if (!cached.ok()) {
        report.warnings.push_back({where + ": cache not readable, hashing again: " + cached.error().message()});
      } else if (cached->has_value()) {
        std::vector<FileRecord> decoded;
        decoded.reserve((*cached)->files.size());
        for (const auto& f : (*cached)->files) {
          auto r = decode_facts(f);
          if (!r.ok()) {
            report.warnings.push_back({where + ": cached facts unreadable, hashing again: " + r.error().message()});
            decoded.clear();
            break;
          }
          decoded.push_back(std::move(r).value());
        }
        if (!decoded.empty() || (*cached)->files.empty()) records = std::move(decoded);
      }
      if (records) {
        // The sieve decided with the sets of the time. A file that was known
        // then but is not now lacks the similarity digests it needs: hash
        // the layer again (docs/adr/0007-layer-facts-cache-and-sieve.md).
        bool complete = true;
        for (const auto& r : *records) {
          if (r.kind == image::EntryKind::regular && !r.similarity_computed && !known_at_hash_time(r.crypto)) {
            complete = false;
            break;
          }
        }
        if (complete) {
          ++stats.layers_from_cache;
        } else {
          records.reset();
          ++stats.layers_rehashed_for_sieve;
        }
      }
    }
    if (!records) {
      auto entries = source.open_layer(image, i);
      if (!entries.ok()) return std::move(entries).error().with_context(where);
      LayerHashStats layer_stats;
      auto hashed = hash_layer(**entries, hash_options, layer_stats);
      if (!hashed.ok()) return std::move(hashed).error().with_context(where);
      if (auto st = (*entries)->finish(); !st.ok()) return std::move(st).error().with_context(where);
      ++stats.layers_hashed;
      stats.files_hashed += layer_stats.files;
      stats.bytes_hashed += layer_stats.bytes;
      stats.similarity_skipped += layer_stats.similarity_skipped;
      records = std::move(hashed).value();
      if (cacheable) {
        store::LayerFacts facts;
        facts.files.reserve(records->size());
        for (const auto& r : *records) facts.files.push_back(encode_facts(r));
        if (auto st = store_->put_layer_facts(key, facts); !st.ok()) {
          report.warnings.push_back({where + ": facts not cached: " + st.error().message()});
        }
      }
    }
    layers[i] = std::move(*records);
  }

  std::vector<std::vector<image::LayerChange>> changes(layers.size());
  for (std::size_t i = 0; i < layers.size(); ++i) {
    changes[i].reserve(layers[i].size());
    for (const auto& r : layers[i]) changes[i].push_back({r.path, r.kind});
  }
  const image::HiddenBy hidden = image::apply_whiteouts(changes);

  for (std::size_t i = 0; i < layers.size(); ++i) {
    for (std::size_t j = 0; j < layers[i].size(); ++j) {
      const FileRecord& r = layers[i][j];
      if (r.kind != image::EntryKind::regular) continue;
      auto c = classify(r, matchers_);
      if (!c.ok()) return std::move(c).error().with_context("matching /" + r.path);
      FileFinding f;
      f.path = r.path;
      f.layer = i;
      if (i < hidden.size() && j < hidden[i].size()) f.hidden_by = hidden[i][j];
      f.size = r.size;
      if (r.crypto.sha256) f.sha256 = r.crypto.sha256->hex();
      f.verdict = c->verdict;
      f.evidence = std::move(c->evidence);
      report.files.push_back(std::move(f));
    }
  }
  report.summary = summarize(report.files);
  return report;
}

}  // namespace hashsieve::scan
