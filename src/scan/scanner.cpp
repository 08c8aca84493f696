#include "hashsieve/scan/scanner.h"

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <thread>

#include "external_scan.h"
#include "hashsieve/digest/crypto.h"
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

// One layer's records and how they were obtained; filled by a reader thread
// and merged into the report in layer order.
struct LayerOutcome {
  enum class Source { cache, hashed, rehashed_for_sieve };
  Result<std::vector<FileRecord>> records = std::vector<FileRecord>{};
  Source source = Source::hashed;
  LayerHashStats hash_stats;
  std::vector<Warning> warnings;
  // External scanners' outcomes of the files scanned at hash time, by record index.
  std::map<std::size_t, ExternalOutcome> external;
};

std::string layer_name(const image::ResolvedImage& image, std::size_t i) {
  const image::LayerDescriptor& desc = image.layers[i];
  return "layer " + std::to_string(i) + (desc.diff_id.empty() ? "" : " (" + desc.diff_id + ")");
}

// The cached facts of layer `i` when they are complete for today's sets, else
// the layer read from `source` and hashed (and the facts cached).
LayerOutcome load_layer(store::Store* store, const ScanOptions& options, image::ImageSource& source,
                        const image::ResolvedImage& image, std::size_t i, const LayerHashOptions& hash_options) {
  LayerOutcome out;
  const image::LayerDescriptor& desc = image.layers[i];
  const std::string where = layer_name(image, i);
  if (options.cancelled && options.cancelled()) {
    out.records = Error(ErrorCode::unavailable, "scan cancelled before " + where);
    return out;
  }
  const bool cacheable = options.use_cache && store != nullptr && !desc.diff_id.empty();
  const store::LayerKey key{desc.diff_id, options.hasher_versions};
  if (cacheable) {
    auto cached = store->get_layer_facts(key);
    std::optional<std::vector<FileRecord>> records;
    if (!cached.ok()) {
      out.warnings.push_back({where + ": cache not readable, hashing again: " + cached.error().message()});
    } else if (cached->has_value()) {
      std::vector<FileRecord> decoded;
      decoded.reserve((*cached)->files.size());
      for (const auto& f : (*cached)->files) {
        auto r = decode_facts(f);
        if (!r.ok()) {
          out.warnings.push_back({where + ": cached facts unreadable, hashing again: " + r.error().message()});
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
      const bool complete = std::ranges::none_of(*records, [&](const FileRecord& r) {
        return r.kind == image::EntryKind::regular && !r.similarity_computed && !hash_options.is_known(r.crypto);
      });
      if (complete) {
        out.records = std::move(*records);
        out.source = LayerOutcome::Source::cache;
        return out;
      }
      out.source = LayerOutcome::Source::rehashed_for_sieve;
    }
  }
  auto entries = source.open_layer(image, i);
  if (!entries.ok()) {
    out.records = std::move(entries).error().with_context(where);
    return out;
  }
  auto hashed = hash_layer(**entries, hash_options, out.hash_stats, &out.external);
  if (!hashed.ok()) {
    out.records = std::move(hashed).error().with_context(where);
    return out;
  }
  if (auto st = (*entries)->finish(); !st.ok()) {
    out.records = std::move(st).error().with_context(where);
    return out;
  }
  if (cacheable) {
    store::LayerFacts facts;
    facts.files.reserve(hashed->size());
    for (const auto& r : *hashed) facts.files.push_back(encode_facts(r));
    if (auto st = store->put_layer_facts(key, facts); !st.ok()) {
      out.warnings.push_back({where + ": facts not cached: " + st.error().message()});
    }
  }
  out.records = std::move(hashed).value();
  return out;
}

Status read_content(image::LayerEntries& entries, std::span<std::uint8_t> out, const std::string& path) {
  std::size_t got = 0;
  while (got < out.size()) {
    auto n = entries.read(out.subspan(got));
    if (!n.ok()) return std::move(n).error().with_context("/" + path);
    if (*n == 0) return Error(ErrorCode::parse_error, "/" + path + ": content ends early");
    got += *n;
  }
  return {};
}

// Reads layer `i` again for the external scanners: only the entries at the
// record indexes `wanted` (ascending) are read, and the reading stops after
// the last of them. Each file's SHA-256 is checked against its facts, so the
// bytes scanned are the bytes that were classified (the facts came from a
// read whose blob digest and diff ID were verified).
Result<std::vector<ExternalOutcome>> reread_for_external(image::ImageSource& source, const image::ResolvedImage& image,
                                                         std::size_t i, const std::vector<FileRecord>& records,
                                                         const std::vector<std::size_t>& wanted,
                                                         const std::vector<const scanners::ExternalScanner*>& scanners) {
  const std::string where = layer_name(image, i);
  auto opened = source.open_layer(image, i);
  if (!opened.ok()) return std::move(opened).error().with_context(where);
  image::LayerEntries& entries = **opened;
  std::vector<ExternalOutcome> out;
  std::vector<std::uint8_t> bytes;
  std::size_t index = 0;
  while (out.size() < wanted.size()) {
    auto next = entries.next();
    if (!next.ok()) return std::move(next).error().with_context(where);
    if (!next->has_value()) {
      return Error(ErrorCode::integrity_error, where + ": ends before the files its cached facts list");
    }
    if (index++ != wanted[out.size()]) continue;
    const FileRecord& r = records[wanted[out.size()]];
    if ((*next)->path != r.path || (*next)->kind != image::EntryKind::regular || (*next)->size != r.size) {
      return Error(ErrorCode::integrity_error, where + ": /" + r.path + " is not where its cached facts put it");
    }
    bytes.resize(static_cast<std::size_t>(r.size));
    if (auto st = read_content(entries, bytes, r.path); !st.ok()) return std::move(st).error().with_context(where);
    digest::MultiHasher sha({digest::CryptoAlgorithm::sha256});
    sha.update(bytes);
    const auto got = sha.finish().sha256;
    if (!got || !r.crypto.sha256 || got->hex() != r.crypto.sha256->hex()) {
      return Error(ErrorCode::integrity_error, where + ": /" + r.path + " differs from its cached facts");
    }
    auto scanned = run_external_scanners(scanners, bytes, r.path);
    if (!scanned.ok()) return std::move(scanned).error().with_context(where);
    out.push_back(std::move(scanned).value());
  }
  return out;
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

  // Layers are read and hashed `layers_in_flight` at a time: one layer's
  // reader thread (inflate, tar, diff ID) caps a single layer well below what
  // two cores hash (docs/adr/0011-fast-inflate-and-large-file-sieve.md), so a
  // second layer in flight is what lets both cores work. The in-flight byte
  // budget is split between them, so memory stays bounded as before.
  const std::size_t in_flight =
      std::max<std::size_t>(1, std::min<std::size_t>(options_.layers_in_flight, image.layers.size()));

  std::mutex progress_mutex;  // progress callbacks come from every reader thread
  ScanProgress progress;
  progress.layers = image.layers.size();
  for (const auto& l : image.layers) progress.total_bytes += l.size;

  LayerHashOptions hash_options;
  hash_options.threads = options_.threads;
  hash_options.max_buffered_file_bytes = options_.max_buffered_file_bytes;
  hash_options.max_inflight_bytes = std::max<std::uint64_t>(options_.max_inflight_bytes / in_flight, 1);
  hash_options.is_known = [this](const digest::CryptoDigests& d) { return known_at_hash_time(d); };
  hash_options.external_scanners = options_.external_scanners;
  for (const auto* s : options_.external_scanners) report.scanners.push_back(describe(*s));
  hash_options.on_file_read = [&](std::uint64_t bytes) {
    std::lock_guard lock(progress_mutex);
    ++progress.files;
    progress.bytes += bytes;
    if (options_.progress) options_.progress(progress);
  };

  std::vector<LayerOutcome> outcomes(image.layers.size());
  std::atomic<std::size_t> next_layer{0};
  std::atomic<bool> failed{false};
  auto run_layers = [&] {
    for (;;) {
      const std::size_t i = next_layer.fetch_add(1);
      if (i >= image.layers.size() || failed.load()) return;
      {
        std::lock_guard lock(progress_mutex);
        progress.layer = i;
        if (options_.progress) options_.progress(progress);
      }
      outcomes[i] = load_layer(store_, options_, source, image, i, hash_options);
      if (!outcomes[i].records.ok()) failed.store(true);
    }
  };
  {
    std::vector<std::jthread> readers;
    for (std::size_t t = 1; t < in_flight; ++t) readers.emplace_back(run_layers);
    run_layers();
  }  // joins the readers

  std::vector<std::vector<FileRecord>> layers(image.layers.size());
  std::vector<std::map<std::size_t, ExternalOutcome>> external(image.layers.size());
  // The first failing layer in image order is the error reported; layers
  // after it may not have run at all.
  for (std::size_t i = 0; i < outcomes.size(); ++i) {
    LayerOutcome& o = outcomes[i];
    if (!o.records.ok()) return std::move(o.records).error();
    for (auto& w : o.warnings) report.warnings.push_back(std::move(w));
    switch (o.source) {
      case LayerOutcome::Source::cache: ++stats.layers_from_cache; break;
      case LayerOutcome::Source::rehashed_for_sieve: ++stats.layers_rehashed_for_sieve; [[fallthrough]];
      case LayerOutcome::Source::hashed:
        ++stats.layers_hashed;
        stats.files_hashed += o.hash_stats.files;
        stats.bytes_hashed += o.hash_stats.bytes;
        stats.similarity_skipped += o.hash_stats.similarity_skipped;
        break;
    }
    layers[i] = std::move(*o.records);
    external[i] = std::move(o.external);
  }

  std::vector<std::vector<image::LayerChange>> changes(layers.size());
  for (std::size_t i = 0; i < layers.size(); ++i) {
    changes[i].reserve(layers[i].size());
    for (const auto& r : layers[i]) changes[i].push_back({r.path, r.kind});
  }
  const image::HiddenBy hidden = image::apply_whiteouts(changes);

  // Files the external scanners must see but did not at hash time, by
  // layer: record indexes and their places in report.files.
  struct Pending {
    std::vector<std::size_t> records;
    std::vector<std::size_t> findings;
  };
  std::vector<Pending> pending(layers.size());
  std::vector<std::optional<ExternalOutcome>> outcomes_by_file;
  const std::uint64_t max_external_bytes = max_scan_bytes(options_.external_scanners);

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
      std::optional<ExternalOutcome> ext;
      if (!options_.external_scanners.empty() && f.verdict != Verdict::known) {
        if (auto it = external[i].find(j); it != external[i].end()) {
          ext = std::move(it->second);
        } else if (r.size > max_external_bytes) {
          ext = over_limit_outcome(options_.external_scanners, r.path, r.size);
        } else {
          pending[i].records.push_back(j);
          pending[i].findings.push_back(report.files.size());
        }
      }
      outcomes_by_file.push_back(std::move(ext));
      report.files.push_back(std::move(f));
    }
  }

  // Cached layers (and large files that could not be spooled): read again,
  // `layers_in_flight` at a time, only for the files that need a scan.
  std::vector<std::size_t> reread;
  for (std::size_t i = 0; i < pending.size(); ++i) {
    if (!pending[i].records.empty()) reread.push_back(i);
  }
  std::vector<Result<std::vector<ExternalOutcome>>> reread_results(reread.size(), std::vector<ExternalOutcome>{});
  {
    std::atomic<std::size_t> next{0};
    std::atomic<bool> reread_failed{false};
    auto run = [&] {
      for (;;) {
        const std::size_t k = next.fetch_add(1);
        if (k >= reread.size() || reread_failed.load()) return;
        const std::size_t i = reread[k];
        if (options_.cancelled && options_.cancelled()) {
          reread_results[k] = Error(ErrorCode::unavailable, "scan cancelled before " + layer_name(image, i));
        } else {
          reread_results[k] = reread_for_external(source, image, i, layers[i], pending[i].records,
                                                  options_.external_scanners);
        }
        if (!reread_results[k].ok()) reread_failed.store(true);
      }
    };
    std::vector<std::jthread> readers;
    const std::size_t threads = std::min<std::size_t>(in_flight, reread.size());
    for (std::size_t t = 1; t < threads; ++t) readers.emplace_back(run);
    if (!reread.empty()) run();
  }
  for (std::size_t k = 0; k < reread.size(); ++k) {
    if (!reread_results[k].ok()) return std::move(reread_results[k]).error();
    ++stats.layers_reread_for_external;
    const Pending& p = pending[reread[k]];
    for (std::size_t n = 0; n < p.findings.size(); ++n) outcomes_by_file[p.findings[n]] = std::move((*reread_results[k])[n]);
  }

  // The scanners' evidence joins the file's; the verdict is again its most
  // severe evidence (the file was not known, so any finding raises it).
  for (std::size_t n = 0; n < report.files.size(); ++n) {
    if (!outcomes_by_file[n]) continue;
    ExternalOutcome& o = *outcomes_by_file[n];
    FileFinding& f = report.files[n];
    if (o.scanned) ++stats.files_externally_scanned;
    for (auto& w : o.warnings) report.warnings.push_back(std::move(w));
    for (auto& e : o.evidence) {
      f.verdict = f.evidence.empty() ? e.verdict : std::max(f.verdict, e.verdict);
      f.evidence.push_back(std::move(e));
    }
  }
  report.summary = summarize(report.files);
  return report;
}

}  // namespace hashsieve::scan
