#include "hashsieve/refset/importer.h"

#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <unordered_map>

#include "hashsieve/core/file.h"
#include "hashsieve/digest/crypto.h"
#include "hashsieve/digest/sdbf.h"
#include "staged_version.h"

namespace hashsieve::refset {
namespace {

namespace fs = std::filesystem;

std::string format_name(const ImportRequest& r) {
  return r.sdbf_digests ? "sdbf" : std::string(to_string(r.format));
}

ReferenceClass default_class(const ImportRequest& r) {
  if (r.sdbf_digests) return ReferenceClass::malicious;
  switch (r.format) {
    case SourceFormat::clamav:
    case SourceFormat::virusshare: return ReferenceClass::malicious;
    default: return ReferenceClass::known;
  }
}

std::string nsrl_v2_products_path(const ImportRequest& r) {
  if (!r.source_options.nsrl_v2_products_path.empty()) return r.source_options.nsrl_v2_products_path;
  return (fs::path(r.path).parent_path() / "NSRLProd.txt").string();
}

// Receives source rows; writes labels to SQLite and hashes to the index writer.
class ImportSink final : public SourceSink {
 public:
  explicit ImportSink(StagedVersion& staged) : staged_(staged), writer_(staged.writer()) {}

  // Label 0 is "no label" (VirusShare rows carry none).
  Status prepare() { return staged_.add_label(0, "", "", ""); }

  Status on_product(const SourceProduct& product) override {
    const std::uint32_t id = next_label_++;
    std::string categories;
    for (const auto& c : product.categories) categories += (categories.empty() ? "" : "\n") + c;
    if (auto st = staged_.add_label(id, product.name, product.version, categories); !st.ok()) return st;
    const std::uint32_t flags = product.suspicious_category.empty() ? 0 : LabelValue::kSuspicious;
    products_[product.id] = LabelValue::encode(id, flags);
    ++products_seen_;
    return {};
  }

  Status on_row(const SourceRow& row) override {
    std::uint32_t value = 0;
    if (row.product_id >= 0) {
      auto it = products_.find(row.product_id);
      if (it != products_.end()) value = it->second;
    } else if (!row.name.empty()) {
      auto label = label_for_name(row.name);
      if (!label.ok()) return std::move(label).error();
      value = LabelValue::encode(*label, 0);
    }
    if (row.class_override == ReferenceClass::malicious) value |= LabelValue::kMalicious;
    if (row.class_override == ReferenceClass::suspicious) value |= LabelValue::kSuspicious;
    if (row.md5) {
      if (auto st = writer_.add(*row.md5, value); !st.ok()) return st;
    }
    if (row.sha1) {
      if (auto st = writer_.add(*row.sha1, value); !st.ok()) return st;
    }
    if (row.sha256) {
      if (auto st = writer_.add(*row.sha256, value); !st.ok()) return st;
    }
    return {};
  }

  void on_warning(Warning warning) override {
    ++warning_count_;
    if (warnings_.size() < ImportOutcome::kMaxKeptWarnings) warnings_.push_back(std::move(warning));
  }

  std::vector<Warning> take_warnings() { return std::move(warnings_); }
  std::uint64_t warning_count() const { return warning_count_; }
  std::uint64_t products() const { return products_seen_; }

 private:
  // Row-named sources (ClamAV signature names, hash-list file names) share a
  // label per distinct name. The map is capped so memory stays bounded: past
  // the cap a name simply gets a new label.
  Result<std::uint32_t> label_for_name(const std::string& name) {
    constexpr std::size_t kMaxCachedNames = 1 << 20;
    if (auto it = names_.find(name); it != names_.end()) return it->second;
    const std::uint32_t id = next_label_++;
    if (auto st = staged_.add_label(id, name, "", ""); !st.ok()) return std::move(st).error();
    if (names_.size() >= kMaxCachedNames) names_.clear();
    names_.emplace(name, id);
    return id;
  }

  StagedVersion& staged_;
  ExactIndexWriter& writer_;
  std::uint32_t next_label_ = 1;
  std::unordered_map<std::int64_t, std::uint32_t> products_;
  std::unordered_map<std::string, std::uint32_t> names_;
  std::vector<Warning> warnings_;
  std::uint64_t warning_count_ = 0;
  std::uint64_t products_seen_ = 0;
};

// Validates an SDBF digest file line by line and writes the digests back in
// canonical form. Malformed lines are warnings (with their line number); a file
// whose first lines are all malformed is not a digest file at all.
Result<std::uint64_t> copy_sdbf_digests(const std::string& source, const std::string& target, SourceSink& sink) {
  constexpr std::uint64_t kSniffLines = 16;
  auto file = MappedFile::open(source);
  if (!file.ok()) return std::move(file).error();
  std::ofstream out(target, std::ios::binary);
  if (!out) return Error(ErrorCode::io_error, "cannot write " + target);
  const std::string_view text(reinterpret_cast<const char*>(file->bytes().data()), file->size());
  std::uint64_t line_no = 0, good = 0, bad = 0;
  for (std::size_t pos = 0; pos < text.size();) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (line.empty()) continue;
    auto digest = digest::parse_sdbf(line);
    if (!digest.ok()) {
      ++bad;
      if (good == 0 && bad >= kSniffLines) {
        return Error(ErrorCode::parse_error, source + " does not look like an SDBF digest file (line " +
                                                 std::to_string(line_no) + ": " + digest.error().message() + ")");
      }
      sink.on_warning({"line " + std::to_string(line_no) + ": " + digest.error().message()});
      continue;
    }
    out << digest::format_sdbf(*digest);
    ++good;
  }
  if (good == 0) return Error(ErrorCode::parse_error, source + ": no SDBF digests in file");
  if (!out.flush()) return Error(ErrorCode::io_error, "writing " + target + " failed");
  return good;
}

// Appends the SHA-256 of a file (read in chunks, never mapped: a
// multi-gigabyte source must not land in our resident set) to `listing`.
Status append_file_hash(const std::string& path, std::string& listing) {
  auto digests = digest::hash_file(path, {digest::CryptoAlgorithm::sha256});
  if (!digests.ok()) return std::move(digests).error();
  listing += digests->sha256->hex() + " " + std::to_string(digests->size) + "\n";
  return {};
}

}  // namespace

Result<std::string> source_fingerprint(const ImportRequest& request, ReferenceClass set_class) {
  std::string listing = "hashsieve-refset/1\n" + format_name(request) + "\n" +
                        std::string(to_string(set_class)) + "\n";
  for (const auto& s : request.source_options.suspicious.substrings) listing += s + "\x1f";
  listing += "\n";
  if (auto st = append_file_hash(request.path, listing); !st.ok()) return std::move(st).error();
  if (!request.sdbf_digests && request.format == SourceFormat::nsrl_v2) {
    const std::string products = nsrl_v2_products_path(request);
    std::error_code ec;
    if (fs::exists(products, ec)) {
      if (auto st = append_file_hash(products, listing); !st.ok()) return std::move(st).error();
    }
  }
  return sha256_hex(listing);
}

Result<ImportOutcome> import_refset(const RefsetCatalog& catalog, const ImportRequest& request) {
  if (auto st = validate_set_name(request.name); !st.ok()) return std::move(st).error();
  if (!request.set_class && !request.sdbf_digests && request.format == SourceFormat::hashlist) {
    return Error(ErrorCode::invalid_argument, "a hash list can be known or bad: give --class");
  }
  const ReferenceClass set_class = request.set_class.value_or(default_class(request));
  auto context = [&](Error e) {
    return std::move(e).with_context("importing '" + request.name + "' from " + request.path);
  };
  auto staged = StagedVersion::begin(catalog, request.name, request.memory_budget);
  if (!staged.ok()) return context(std::move(staged).error());

  auto fingerprint = source_fingerprint(request, set_class);
  if (!fingerprint.ok()) return context(std::move(fingerprint).error());
  if (!request.force) {
    if (auto same = unchanged_outcome(catalog, request.name, *fingerprint)) return std::move(*same);
  }

  ImportSink sink(*staged);
  if (auto st = sink.prepare(); !st.ok()) return context(std::move(st).error());
  SourceStats stats;
  std::uint64_t sdbf_count = 0;
  if (request.sdbf_digests) {
    auto copied = copy_sdbf_digests(request.path, (staged->dir() / "similarity.sdbf").string(), sink);
    if (!copied.ok()) return context(std::move(copied).error());
    sdbf_count = stats.rows = *copied;
  } else {
    auto read = read_source(request.format, request.path, sink, request.source_options);
    if (!read.ok()) return context(std::move(read).error());
    stats = *read;
  }

  RefsetManifest m;
  m.name = request.name;
  m.format = format_name(request);
  m.sdbf_count = sdbf_count;
  m.set_class = set_class;
  std::error_code ec;
  m.source = fs::absolute(request.path, ec).string();
  m.fingerprint = *fingerprint;
  m.rows = stats.rows;
  m.products = sink.products();
  m.warnings = sink.warning_count();
  auto published = staged->publish(std::move(m));
  if (!published.ok()) return context(std::move(published).error());
  ImportOutcome outcome;
  outcome.manifest = std::move(published).value();
  outcome.warnings = sink.take_warnings();
  return outcome;
}

}  // namespace hashsieve::refset
