#include "hashsieve/refset/catalog.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>

#include "hashsieve/core/file.h"
#include "hashsieve/digest/file_digests.h"
#include "hashsieve/digest/sdbf_compare.h"
#include "hashsieve/digest/ssdeep.h"
#include "sqlite_handle.h"

namespace hashsieve::refset {
namespace {

namespace fs = std::filesystem;

Result<std::string> read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error(ErrorCode::not_found, path + ": cannot read");
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

}  // namespace

std::uint32_t LabelValue::merge(std::uint32_t a, std::uint32_t b) {
  return encode(std::min(label(a), label(b)), flags(a) | flags(b));
}

namespace {

// One line of similarity.tlsh / similarity.ssdeep.
struct TlshEntry {
  digest::TlshDigest digest;
  std::string name;
  std::optional<std::uint64_t> size;  // nullopt in sets built before the size column
};
struct SsdeepEntry {
  std::string digest;
  std::string name;
  std::optional<std::uint64_t> size;
};

// The digests of one kind of input (whole files, or their .rodata sections).
struct DigestTable {
  std::vector<digest::Sdbf> digests;
  // Built on first brute-force use: sets with an index rarely need it.
  std::once_flag prepared_once;
  std::optional<digest::PreparedSdbfSet> prepared;
  std::vector<TlshEntry> tlsh;
  std::vector<SsdeepEntry> ssdeep;
  std::map<std::uint64_t, std::vector<std::uint32_t>> ssdeep_by_block;  // block size -> entries

  const digest::PreparedSdbfSet& prepared_set() {
    std::call_once(prepared_once, [this] { prepared.emplace(digests); });
    return *prepared;
  }
};

}  // namespace

struct LoadedRefset::Similarity {
  DigestTable whole;
  DigestTable rodata;             // similarity.rodata.*; empty for sets built before them
  std::optional<SimilarityIndex> index;  // whole-file digests only
};

namespace {

// Splits "<name>[\t<size>]" (the part after a digest line's first tab): names
// never hold tabs (refset build replaces them), so a second tab starts the
// reference size, which sets built before it was added lack.
bool split_name_size(std::string_view rest, std::string& name, std::optional<std::uint64_t>& size) {
  const auto tab = rest.find('\t');
  name = std::string(rest.substr(0, tab));
  size.reset();
  if (tab == std::string_view::npos) return true;
  const std::string_view digits = rest.substr(tab + 1);
  std::uint64_t v = 0;
  if (digits.empty() || digits.size() > 19) return false;
  for (const char c : digits) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<std::uint64_t>(c - '0');
  }
  size = v;
  return true;
}

// similarity.tlsh: "<T1 digest>\t<name>[\t<size>]" lines, written by refset build.
Status load_tlsh_lines(const std::string& path, std::vector<TlshEntry>& out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};  // sets other than builds have none
  std::size_t line_no = 0;
  for (std::string line; std::getline(in, line);) {
    ++line_no;
    const auto tab = line.find('\t');
    auto d = digest::TlshDigest::parse(std::string_view(line).substr(0, tab));
    std::string name;
    std::optional<std::uint64_t> size;
    if (tab == std::string::npos || !d.ok() || !split_name_size(std::string_view(line).substr(tab + 1), name, size)) {
      return Error(ErrorCode::parse_error, path + ": line " + std::to_string(line_no) + ": not a TLSH digest line");
    }
    out.push_back(TlshEntry{*d, std::move(name), size});
  }
  return {};
}

// The block size of an ssdeep digest ("blocksize:hash1:hash2"), or 0 when
// it has none.
std::uint64_t ssdeep_block_size(std::string_view digest) {
  std::uint64_t bs = 0;
  std::size_t i = 0;
  for (; i < digest.size() && digest[i] >= '0' && digest[i] <= '9' && i < 19; ++i) bs = bs * 10 + (digest[i] - '0');
  return (i > 0 && i < digest.size() && digest[i] == ':') ? bs : 0;
}

// similarity.ssdeep: "<digest>\t<name>[\t<size>]" lines, written by refset build.
Status load_ssdeep_lines(const std::string& path, std::vector<SsdeepEntry>& out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};  // sets other than builds have none
  std::size_t line_no = 0;
  for (std::string line; std::getline(in, line);) {
    ++line_no;
    const auto tab = line.find('\t');
    SsdeepEntry entry;
    if (tab == std::string::npos || ssdeep_block_size(std::string_view(line).substr(0, tab)) == 0 ||
        !split_name_size(std::string_view(line).substr(tab + 1), entry.name, entry.size)) {
      return Error(ErrorCode::parse_error, path + ": line " + std::to_string(line_no) + ": not an ssdeep digest line");
    }
    entry.digest = line.substr(0, tab);
    out.push_back(std::move(entry));
  }
  return {};
}

// Whether a set's SDBF file is read: the whole-file one when the manifest
// counts SDBF digests (then it must exist), the .rodata one when present.
enum class SdbfFile { skip, required, if_present };

// Loads <dir>/<stem>.sdbf, .tlsh and .ssdeep (the last two when present)
// into `table`.
Status load_table(const std::string& dir, const std::string& stem, SdbfFile sdbf, DigestTable& table) {
  const std::string sdbf_path = dir + "/" + stem + ".sdbf";
  std::error_code ec;
  if (sdbf == SdbfFile::required || (sdbf == SdbfFile::if_present && fs::exists(sdbf_path, ec))) {
    auto file = MappedFile::open(sdbf_path);
    if (!file.ok()) return std::move(file).error();
    const auto bytes = file->bytes();
    auto digests = digest::parse_sdbf_lines({reinterpret_cast<const char*>(bytes.data()), bytes.size()});
    if (!digests.ok()) return std::move(digests).error().with_context(sdbf_path);
    table.digests = std::move(digests).value();
  }
  if (auto st = load_tlsh_lines(dir + "/" + stem + ".tlsh", table.tlsh); !st.ok()) return st;
  if (auto st = load_ssdeep_lines(dir + "/" + stem + ".ssdeep", table.ssdeep); !st.ok()) return st;
  for (std::size_t j = 0; j < table.ssdeep.size(); ++j) {
    table.ssdeep_by_block[ssdeep_block_size(table.ssdeep[j].digest)].push_back(static_cast<std::uint32_t>(j));
  }
  return {};
}

// Who the hits are from and what their algorithm names are.
struct HitLabel {
  const RefsetManifest& set;
  std::string sdbf, tlsh, ssdeep;
};

void sdbf_scan_all(DigestTable& table, const digest::Sdbf& query, int min_score, const HitLabel& label,
                   std::vector<SimilarityHit>& hits) {
  if (table.digests.empty()) return;
  const auto& prepared = table.prepared_set();
  const std::vector<digest::Sdbf> one{query};
  const digest::PreparedSdbfSet query_set(one);
  std::vector<int> scores(table.digests.size());
  digest::sdbf_score_row(query_set, 0, prepared, 0, scores);
  for (std::size_t j = 0; j < scores.size(); ++j) {
    if (scores[j] >= min_score) {
      const auto& reference = table.digests[j];
      hits.push_back({label.set.name, label.set.set_class, reference.name(), label.sdbf, scores[j],
                      reference.input_size()});
    }
  }
}

// TLSH hits among `candidates` (every reference when null).
void tlsh_hits(const DigestTable& table, const digest::TlshDigest& query, int max_distance,
               const std::vector<std::uint32_t>* candidates, const HitLabel& label,
               std::vector<SimilarityHit>& hits) {
  auto consider = [&](std::size_t j) {
    const auto& reference = table.tlsh[j];
    const int distance = digest::tlsh_distance(query, reference.digest);
    if (distance <= max_distance) {
      hits.push_back({label.set.name, label.set.set_class, reference.name, label.tlsh, distance, reference.size});
    }
  };
  if (candidates != nullptr) {
    // At a million references each candidate's digest is a cache miss;
    // prefetching a few ahead overlaps them (the scoring itself is ~10 ns).
    constexpr std::size_t kAhead = 8;
    for (std::size_t i = 0; i < candidates->size(); ++i) {
      if (i + kAhead < candidates->size()) __builtin_prefetch(&table.tlsh[(*candidates)[i + kAhead]].digest);
      consider((*candidates)[i]);
    }
  } else {
    for (std::size_t j = 0; j < table.tlsh.size(); ++j) consider(j);
  }
}

void ssdeep_hits(const DigestTable& table, std::string_view query, int min_score, const HitLabel& label,
                 std::vector<SimilarityHit>& hits) {
  const std::uint64_t bs = ssdeep_block_size(query);
  if (bs == 0) return;
  // fuzzy_compare scores 0 unless the block sizes are equal or one is twice
  // the other, so only those references are compared.
  for (const std::uint64_t b : {bs / 2, bs, bs * 2}) {
    if (b == 0 || (b == bs / 2 && bs % 2 != 0)) continue;
    auto it = table.ssdeep_by_block.find(b);
    if (it == table.ssdeep_by_block.end()) continue;
    for (const auto j : it->second) {
      const auto& ref = table.ssdeep[j];
      auto score = digest::ssdeep_compare(query, ref.digest);
      if (score.ok() && *score >= min_score) {
        hits.push_back({label.set.name, label.set.set_class, ref.name, label.ssdeep, *score, ref.size});
      }
    }
  }
}

HitLabel whole_label(const RefsetManifest& m) { return {m, "sdbf", "tlsh", "ssdeep"}; }
HitLabel rodata_label(const RefsetManifest& m) {
  const std::string suffix(kRodataSuffix);
  return {m, "sdbf" + suffix, "tlsh" + suffix, "ssdeep" + suffix};
}

}  // namespace

struct LoadedRefset::Labels {
  // One connection shared by the lookups of every thread: statements are
  // stateful, so they run one at a time.
  std::mutex mutex;
  SqliteDb db;
  SqliteStmt by_id;
  SqliteStmt by_path;  // null when the set has no file table
};

Status validate_set_name(const std::string& name) {
  const bool ok = !name.empty() && name.size() <= 64 && name[0] != '.' &&
                  std::all_of(name.begin(), name.end(), [](char c) {
                    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
                  });
  if (!ok) {
    return Error(ErrorCode::invalid_argument,
                 "set name '" + name + "' must be 1-64 characters of A-Z a-z 0-9 . _ - and not start with '.'");
  }
  return {};
}

std::string default_data_dir() {
  if (const char* d = std::getenv("HASHSIEVE_DATA_DIR"); d != nullptr && *d != '\0') return d;
  if (const char* x = std::getenv("XDG_DATA_HOME"); x != nullptr && *x != '\0') return std::string(x) + "/hashsieve";
  const char* home = std::getenv("HOME");
  return std::string(home != nullptr ? home : ".") + "/.local/share/hashsieve";
}

std::string manifest_to_json(const RefsetManifest& m) {
  nlohmann::ordered_json j;
  j["schema"] = 1;
  j["name"] = m.name;
  j["format"] = m.format;
  j["class"] = std::string(to_string(m.set_class));
  j["source"] = m.source;
  j["fingerprint"] = m.fingerprint;
  j["imported_at"] = m.imported_at;
  j["version"] = m.version;
  j["rows"] = m.rows;
  j["products"] = m.products;
  j["warnings"] = m.warnings;
  j["hashes"] = {{"md5", m.md5_count}, {"sha1", m.sha1_count}, {"sha256", m.sha256_count}};
  j["sdbf_digests"] = m.sdbf_count;
  j["index_bytes"] = m.index_bytes;
  return j.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
}

Result<RefsetManifest> manifest_from_json(const std::string& text) {
  // nlohmann throws on malformed input; the exception stops here.
  try {
    const auto j = nlohmann::json::parse(text);
    RefsetManifest m;
    m.name = j.at("name").get<std::string>();
    m.format = j.at("format").get<std::string>();
    auto cls = parse_reference_class(j.at("class").get<std::string>());
    if (!cls.ok()) return Error(ErrorCode::parse_error, "bad manifest: " + cls.error().message());
    m.set_class = *cls;
    m.source = j.at("source").get<std::string>();
    m.fingerprint = j.at("fingerprint").get<std::string>();
    m.imported_at = j.at("imported_at").get<std::string>();
    m.version = j.at("version").get<std::uint32_t>();
    m.rows = j.at("rows").get<std::uint64_t>();
    m.products = j.at("products").get<std::uint64_t>();
    m.warnings = j.at("warnings").get<std::uint64_t>();
    m.md5_count = j.at("hashes").at("md5").get<std::uint64_t>();
    m.sha1_count = j.at("hashes").at("sha1").get<std::uint64_t>();
    m.sha256_count = j.at("hashes").at("sha256").get<std::uint64_t>();
    m.index_bytes = j.at("index_bytes").get<std::uint64_t>();
    m.sdbf_count = j.value("sdbf_digests", std::uint64_t{0});
    return m;
  } catch (const std::exception& e) {
    return Error(ErrorCode::parse_error, std::string("bad manifest: ") + e.what());
  }
}

Result<RefsetCatalog> RefsetCatalog::open(const std::string& data_dir) {
  std::error_code ec;
  const std::string root = data_dir + "/refsets";
  fs::create_directories(root, ec);
  if (ec) return Error(ErrorCode::io_error, "cannot create " + root + ": " + ec.message());
  return RefsetCatalog(root);
}

Result<RefsetManifest> RefsetCatalog::manifest(const std::string& name) const {
  if (auto st = validate_set_name(name); !st.ok()) return std::move(st).error();
  const std::string current = set_dir(name) + "/current";
  std::error_code ec;
  if (!fs::exists(current, ec)) return Error(ErrorCode::not_found, "no reference set named '" + name + "'");
  auto text = read_text_file(current + "/manifest.json");
  if (!text.ok()) return std::move(text).error();
  auto m = manifest_from_json(*text);
  if (!m.ok()) return std::move(m).error().with_context("reference set '" + name + "'");
  return m;
}

Result<std::vector<RefsetManifest>> RefsetCatalog::list() const {
  std::vector<RefsetManifest> out;
  std::error_code ec;
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(root_, ec)) {
    const std::string name = entry.path().filename().string();
    if (validate_set_name(name).ok() && fs::exists(entry.path() / "current")) names.push_back(name);
  }
  if (ec) return Error(ErrorCode::io_error, "cannot list " + root_ + ": " + ec.message());
  std::sort(names.begin(), names.end());
  for (const auto& name : names) {
    auto m = manifest(name);
    if (!m.ok()) return std::move(m).error();
    out.push_back(std::move(m).value());
  }
  return out;
}

Status RefsetCatalog::remove(const std::string& name) {
  if (auto st = validate_set_name(name); !st.ok()) return st;
  const fs::path dir = set_dir(name);
  std::error_code ec;
  if (!fs::exists(dir / "current", ec)) return Error(ErrorCode::not_found, "no reference set named '" + name + "'");
  // Rename first so the set disappears at once, even if deleting its files
  // takes a while or is interrupted.
  const fs::path doomed = fs::path(root_) / (".removed-" + name);
  fs::remove_all(doomed, ec);
  fs::rename(dir, doomed, ec);
  if (ec) return Error(ErrorCode::io_error, "cannot remove " + dir.string() + ": " + ec.message());
  fs::remove_all(doomed, ec);
  return {};
}

Result<LoadedRefset> RefsetCatalog::load(const std::string& name) const {
  auto m = manifest(name);
  if (!m.ok()) return std::move(m).error();
  const std::string dir = set_dir(name) + "/current";
  auto index = ExactIndex::open(dir + "/exact.idx");
  if (!index.ok()) return std::move(index).error().with_context("reference set '" + name + "'");
  auto db = sqlite_open(dir + "/labels.db", SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX);
  if (!db.ok()) return std::move(db).error();
  // A published version is never written again, so the shared lock can be
  // kept for the connection's life: otherwise every label lookup (one per
  // exact hit, tens of thousands per image) takes and drops a file lock and
  // checks for a hot journal, which was most of a cached rescan's time.
  if (auto st = sqlite_exec(db->get(), "PRAGMA locking_mode = EXCLUSIVE"); !st.ok()) {
    return std::move(st).error().with_context("reference set '" + name + "'");
  }
  auto stmt = sqlite_prepare(db->get(), "SELECT name, version, categories FROM label WHERE id = ?");
  if (!stmt.ok()) return std::move(stmt).error().with_context("reference set '" + name + "'");
  auto labels = std::make_unique<LoadedRefset::Labels>();
  labels->db = std::move(db).value();
  labels->by_id = std::move(stmt).value();
  {
    auto has_files = sqlite_prepare(labels->db.get(), "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'file'");
    if (!has_files.ok()) return std::move(has_files).error().with_context("reference set '" + name + "'");
    if (sqlite3_step(has_files->get()) == SQLITE_ROW) {
      auto by_path = sqlite_prepare(labels->db.get(),
                                    "SELECT path, package, sha256, size FROM file WHERE path = ? ORDER BY package");
      if (!by_path.ok()) return std::move(by_path).error().with_context("reference set '" + name + "'");
      labels->by_path = std::move(by_path).value();
    }
  }
  auto similarity = std::make_unique<LoadedRefset::Similarity>();
  auto in_set = [&](Error e) { return std::move(e).with_context("reference set '" + name + "'"); };
  if (auto st = load_table(dir, "similarity", m->sdbf_count > 0 ? SdbfFile::required : SdbfFile::skip, similarity->whole); !st.ok()) {
    return in_set(std::move(st).error());
  }
  if (auto st = load_table(dir, "similarity.rodata", SdbfFile::if_present, similarity->rodata); !st.ok()) {
    return in_set(std::move(st).error());
  }
  const std::string index_path = dir + "/similarity.idx";
  std::error_code ec;
  if (fs::exists(index_path, ec)) {
    auto sim = SimilarityIndex::open(index_path);
    if (!sim.ok()) return in_set(std::move(sim).error());
    if (sim->sdbf_entries() != similarity->whole.digests.size() ||
        sim->tlsh_entries() != similarity->whole.tlsh.size()) {
      return in_set(Error(ErrorCode::parse_error,
                          index_path + ": indexes " + std::to_string(sim->sdbf_entries()) + " SDBF and " +
                              std::to_string(sim->tlsh_entries()) + " TLSH digests, the set holds " +
                              std::to_string(similarity->whole.digests.size()) + " and " +
                              std::to_string(similarity->whole.tlsh.size())));
    }
    similarity->index = std::move(sim).value();
  }
  return LoadedRefset(std::move(m).value(), std::move(index).value(), std::move(labels), std::move(similarity));
}

LoadedRefset::LoadedRefset(RefsetManifest manifest, ExactIndex index, std::unique_ptr<Labels> labels,
                           std::unique_ptr<Similarity> similarity)
    : manifest_(std::move(manifest)),
      index_(std::move(index)),
      labels_(std::move(labels)),
      similarity_(std::move(similarity)) {}
LoadedRefset::LoadedRefset(LoadedRefset&&) noexcept = default;
LoadedRefset& LoadedRefset::operator=(LoadedRefset&&) noexcept = default;
LoadedRefset::~LoadedRefset() = default;

Result<std::optional<RefsetHit>> LoadedRefset::resolve(std::optional<std::uint32_t> value, const char* type) const {
  if (!value) return std::optional<RefsetHit>();
  RefsetHit hit;
  hit.set = manifest_.name;
  hit.digest_type = type;
  hit.hit_class = manifest_.set_class;
  const std::uint32_t flags = LabelValue::flags(*value);
  if (flags & LabelValue::kMalicious) {
    hit.hit_class = ReferenceClass::malicious;
  } else if ((flags & LabelValue::kSuspicious) && hit.hit_class == ReferenceClass::known) {
    hit.hit_class = ReferenceClass::suspicious;
  }
  std::lock_guard lock(labels_->mutex);
  sqlite3_stmt* st = labels_->by_id.get();
  sqlite3_reset(st);
  sqlite3_bind_int64(st, 1, LabelValue::label(*value));
  const int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    auto text = [&](int col) {
      const auto* p = sqlite3_column_text(st, col);
      return p != nullptr ? std::string(reinterpret_cast<const char*>(p)) : std::string();
    };
    hit.label = text(0);
    hit.version = text(1);
    hit.categories = split_lines(text(2));
  } else if (rc != SQLITE_DONE) {
    return sqlite_error(labels_->db.get(), "reading labels of '" + manifest_.name + "'");
  }
  return std::optional<RefsetHit>(std::move(hit));
}

std::vector<SimilarityHit> LoadedRefset::similar(const digest::Sdbf& query, int min_score) const {
  std::vector<SimilarityHit> hits;
  sdbf_scan_all(similarity_->whole, query, min_score, whole_label(manifest_), hits);
  return hits;
}

std::vector<SimilarityHit> LoadedRefset::similar(const digest::TlshDigest& query, int max_distance) const {
  std::vector<SimilarityHit> hits;
  const DigestTable& table = similarity_->whole;
  if (similarity_->index && max_distance <= kTlshIndexedMaxDistance) {
    std::vector<std::uint32_t> candidates;
    similarity_->index->tlsh_candidates(query, candidates);
    tlsh_hits(table, query, max_distance, &candidates, whole_label(manifest_), hits);
  } else {
    tlsh_hits(table, query, max_distance, nullptr, whole_label(manifest_), hits);
  }
  return hits;
}

std::vector<SimilarityHit> LoadedRefset::similar_ssdeep(std::string_view query, int min_score) const {
  std::vector<SimilarityHit> hits;
  ssdeep_hits(similarity_->whole, query, min_score, whole_label(manifest_), hits);
  return hits;
}

std::vector<SimilarityHit> LoadedRefset::similar(const SimilarityQuery& query,
                                                 const SimilarityThresholds& thresholds) const {
  std::vector<SimilarityHit> hits;
  const bool indexed_sdbf = similarity_->index && !query.content_keys.empty() &&
                            thresholds.sdbf_min_score >= kSdbfIndexedMinScore;
  std::vector<std::uint32_t> candidates;
  if (indexed_sdbf && !query.sdbf.empty()) similarity_->index->sdbf_candidates(query.content_keys, candidates, kSdbfMinSharedKeys);
  for (const auto& d : query.sdbf) {
    if (!indexed_sdbf) {
      auto more = similar(d, thresholds.sdbf_min_score);
      hits.insert(hits.end(), more.begin(), more.end());
      continue;
    }
    for (const auto j : candidates) {
      const auto& reference = similarity_->whole.digests[j];
      const int score = digest::sdbf_score(d, reference);
      if (score >= thresholds.sdbf_min_score) {
        hits.push_back({manifest_.name, manifest_.set_class, reference.name(), "sdbf", score, reference.input_size()});
      }
    }
  }
  if (query.tlsh) {
    auto more = similar(*query.tlsh, thresholds.tlsh_max_distance);
    hits.insert(hits.end(), more.begin(), more.end());
  }
  if (query.ssdeep && thresholds.ssdeep_min_score >= 0) {
    auto more = similar_ssdeep(*query.ssdeep, thresholds.ssdeep_min_score);
    hits.insert(hits.end(), more.begin(), more.end());
  }
  if (query.rodata) {
    // No index: .rodata references exist only in sets built by refset build
    // from known-bad tools, small enough to compare with every reference.
    DigestTable& table = similarity_->rodata;
    const HitLabel label = rodata_label(manifest_);
    for (const auto& d : query.rodata->sdbf) sdbf_scan_all(table, d, thresholds.rodata_sdbf_min_score, label, hits);
    if (query.rodata->tlsh) tlsh_hits(table, *query.rodata->tlsh, thresholds.rodata_tlsh_max_distance, nullptr, label, hits);
    if (query.rodata->ssdeep && thresholds.rodata_ssdeep_min_score >= 0) {
      ssdeep_hits(table, *query.rodata->ssdeep, thresholds.rodata_ssdeep_min_score, label, hits);
    }
  }
  return hits;
}

LoadedRefset::RodataCounts LoadedRefset::rodata_references() const {
  return {similarity_->rodata.digests.size(), similarity_->rodata.tlsh.size(), similarity_->rodata.ssdeep.size()};
}

bool LoadedRefset::has_similarity_index() const { return similarity_->index.has_value(); }

Result<std::vector<ReferenceFile>> LoadedRefset::files_at_path(const std::string& image_path) const {
  std::vector<ReferenceFile> out;
  if (!labels_->by_path) return out;
  std::string_view path = image_path;
  while (!path.empty() && path.front() == '/') path.remove_prefix(1);
  std::lock_guard lock(labels_->mutex);
  sqlite3_stmt* st = labels_->by_path.get();
  sqlite3_reset(st);
  sqlite3_bind_text(st, 1, path.data(), static_cast<int>(path.size()), SQLITE_TRANSIENT);
  auto text = [&](int col) {
    const auto* p = sqlite3_column_text(st, col);
    return p != nullptr ? std::string(reinterpret_cast<const char*>(p)) : std::string();
  };
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    out.push_back({text(0), text(1), text(2), static_cast<std::uint64_t>(sqlite3_column_int64(st, 3))});
  }
  if (rc != SQLITE_DONE) return sqlite_error(labels_->db.get(), "reading files of '" + manifest_.name + "'");
  return out;
}

Result<SimilarityQuery> make_similarity_query(const std::string& name, std::span<const std::uint8_t> data) {
  digest::DigestSelection selection;
  selection.crypto = digest::CryptoSelection::none();
  auto digests = digest::compute_digests(name, data, selection);
  if (!digests.ok()) return std::move(digests).error();
  SimilarityQuery q;
  q.sdbf = std::move(digests->sdbf);
  q.tlsh = digests->tlsh;
  q.ssdeep = std::move(digests->ssdeep);
  q.content_keys = sample_content_keys(data);
  // A damaged section table is not an error of the lookup: the file is
  // still compared by its whole-file digests, as a stripped one would be.
  auto rodata = rodata_digests(name, data);
  if (rodata.ok()) q.rodata = std::move(rodata).value();
  return q;
}

Result<std::optional<RefsetHit>> LoadedRefset::lookup(const digest::Md5Digest& d) const {
  return resolve(index_.find(d), "md5");
}
Result<std::optional<RefsetHit>> LoadedRefset::lookup(const digest::Sha1Digest& d) const {
  return resolve(index_.find(d), "sha1");
}
Result<std::optional<RefsetHit>> LoadedRefset::lookup(const digest::Sha256Digest& d) const {
  return resolve(index_.find(d), "sha256");
}

}  // namespace hashsieve::refset
