#include "hashsieve/refset/importer.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <unordered_map>

#include "hashsieve/core/file.h"
#include "hashsieve/digest/crypto.h"
#include "hashsieve/digest/sdbf.h"
#include "sqlite_handle.h"

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

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string nsrl_v2_products_path(const ImportRequest& r) {
  if (!r.source_options.nsrl_v2_products_path.empty()) return r.source_options.nsrl_v2_products_path;
  return (fs::path(r.path).parent_path() / "NSRLProd.txt").string();
}

// An exclusive lock on the set's directory, so two imports of one set cannot
// interleave. Released when the descriptor closes.
class SetLock {
 public:
  static Result<SetLock> acquire(const std::string& dir) {
    const std::string path = dir + "/.lock";
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return errno_error(errno, path);
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      ::close(fd);
      return Error(ErrorCode::unavailable, "another import of this set is running (" + path + " is locked)");
    }
    return SetLock(fd);
  }
  SetLock(SetLock&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  SetLock& operator=(SetLock&&) = delete;
  ~SetLock() {
    if (fd_ >= 0) ::close(fd_);
  }

 private:
  explicit SetLock(int fd) : fd_(fd) {}
  int fd_;
};

// Receives source rows; writes labels to SQLite and hashes to the index writer.
class ImportSink final : public SourceSink {
 public:
  ImportSink(sqlite3* db, ExactIndexWriter& writer) : db_(db), writer_(writer) {}

  Status prepare() {
    auto insert = sqlite_prepare(db_, "INSERT INTO label(id, name, version, categories) VALUES(?,?,?,?)");
    if (!insert.ok()) return std::move(insert).error();
    insert_ = std::move(insert).value();
    // Label 0 is "no label" (VirusShare rows carry none).
    return insert_label(0, "", "", "");
  }

  Status on_product(const SourceProduct& product) override {
    const std::uint32_t id = next_label_++;
    std::string categories;
    for (const auto& c : product.categories) categories += (categories.empty() ? "" : "\n") + c;
    if (auto st = insert_label(id, product.name, product.version, categories); !st.ok()) return st;
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
  Status insert_label(std::uint32_t id, const std::string& name, const std::string& version,
                      const std::string& categories) {
    sqlite3_stmt* st = insert_.get();
    sqlite3_reset(st);
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_text(st, 2, name.data(), static_cast<int>(name.size()), SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, version.data(), static_cast<int>(version.size()), SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 4, categories.data(), static_cast<int>(categories.size()), SQLITE_TRANSIENT);
    if (sqlite3_step(st) != SQLITE_DONE) return sqlite_error(db_, "writing labels");
    return {};
  }

  // Row-named sources (ClamAV signature names, hash-list file names) share a
  // label per distinct name. The map is capped so memory stays bounded: past
  // the cap a name simply gets a new label.
  Result<std::uint32_t> label_for_name(const std::string& name) {
    constexpr std::size_t kMaxCachedNames = 1 << 20;
    if (auto it = names_.find(name); it != names_.end()) return it->second;
    const std::uint32_t id = next_label_++;
    if (auto st = insert_label(id, name, "", ""); !st.ok()) return std::move(st).error();
    if (names_.size() >= kMaxCachedNames) names_.clear();
    names_.emplace(name, id);
    return id;
  }

  sqlite3* db_;
  ExactIndexWriter& writer_;
  SqliteStmt insert_;
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

Status hash_file_into(const std::string& path, digest::MultiHasher& hasher) {
  auto file = MappedFile::open(path);
  if (!file.ok()) return std::move(file).error();
  const std::uint64_t size = file->size();
  hasher.update({reinterpret_cast<const std::uint8_t*>(&size), sizeof size});
  hasher.update(file->bytes());
  return {};
}

std::uint32_t installed_version(const std::string& set_dir) {
  std::error_code ec;
  const fs::path current = fs::path(set_dir) / "current";
  if (!fs::is_symlink(current, ec)) return 0;
  const std::string target = fs::read_symlink(current, ec).filename().string();
  if (ec || target.size() < 2 || target[0] != 'v') return 0;
  return static_cast<std::uint32_t>(std::strtoul(target.c_str() + 1, nullptr, 10));
}

}  // namespace

Result<std::string> source_fingerprint(const ImportRequest& request, ReferenceClass set_class) {
  digest::MultiHasher hasher({digest::CryptoAlgorithm::sha256});
  std::string header = "hashsieve-refset/1\n" + format_name(request) + "\n" +
                       std::string(to_string(set_class)) + "\n";
  for (const auto& s : request.source_options.suspicious.substrings) header += s + "\x1f";
  header += "\n";
  hasher.update({reinterpret_cast<const std::uint8_t*>(header.data()), header.size()});
  if (auto st = hash_file_into(request.path, hasher); !st.ok()) return std::move(st).error();
  if (!request.sdbf_digests && request.format == SourceFormat::nsrl_v2) {
    const std::string products = nsrl_v2_products_path(request);
    std::error_code ec;
    if (fs::exists(products, ec)) {
      if (auto st = hash_file_into(products, hasher); !st.ok()) return std::move(st).error();
    }
  }
  return hasher.finish().sha256->hex();
}

Result<ImportOutcome> import_refset(const RefsetCatalog& catalog, const ImportRequest& request) {
  if (auto st = validate_set_name(request.name); !st.ok()) return std::move(st).error();
  if (!request.set_class && !request.sdbf_digests && request.format == SourceFormat::hashlist) {
    return Error(ErrorCode::invalid_argument, "a hash list can be known or bad: give --class");
  }
  const ReferenceClass set_class = request.set_class.value_or(default_class(request));
  const std::string set_dir = catalog.set_dir(request.name);
  std::error_code ec;
  fs::create_directories(set_dir, ec);
  if (ec) return Error(ErrorCode::io_error, "cannot create " + set_dir + ": " + ec.message());
  auto lock = SetLock::acquire(set_dir);
  if (!lock.ok()) return std::move(lock).error();

  auto fingerprint = source_fingerprint(request, set_class);
  if (!fingerprint.ok()) {
    return std::move(fingerprint).error().with_context("importing '" + request.name + "' from " + request.path);
  }
  if (auto installed = catalog.manifest(request.name); installed.ok() && !request.force &&
                                                        installed->fingerprint == *fingerprint) {
    ImportOutcome outcome;
    outcome.manifest = std::move(installed).value();
    outcome.unchanged = true;
    return outcome;
  }

  // Leftovers of imports that were killed are never in use: clear them.
  for (const auto& entry : fs::directory_iterator(set_dir, ec)) {
    if (entry.path().filename().string().rfind(".tmp-", 0) == 0) fs::remove_all(entry.path(), ec);
  }
  const std::uint32_t version = installed_version(set_dir) + 1;
  const fs::path work = fs::path(set_dir) / (".tmp-v" + std::to_string(version));
  fs::create_directories(work, ec);
  if (ec) return Error(ErrorCode::io_error, "cannot create " + work.string() + ": " + ec.message());
  auto cleanup_on_error = [&](Error e) -> Error {
    std::error_code ignored;
    fs::remove_all(work, ignored);
    return std::move(e).with_context("importing '" + request.name + "' from " + request.path);
  };

  auto db = sqlite_open((work / "labels.db").string(), SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  if (!db.ok()) return cleanup_on_error(std::move(db).error());
  // Durability comes from the final rename, not from SQLite's journal.
  for (const char* sql : {"PRAGMA journal_mode=OFF", "PRAGMA synchronous=OFF",
                          "CREATE TABLE label(id INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                          "version TEXT NOT NULL, categories TEXT NOT NULL)",
                          "BEGIN"}) {
    if (auto st = sqlite_exec(db->get(), sql); !st.ok()) return cleanup_on_error(std::move(st).error());
  }
  ExactIndexWriterOptions writer_options;
  writer_options.memory_budget = request.memory_budget;
  writer_options.temp_dir = work.string();
  writer_options.merge = &LabelValue::merge;
  ExactIndexWriter writer(writer_options);
  ImportSink sink(db->get(), writer);
  if (auto st = sink.prepare(); !st.ok()) return cleanup_on_error(std::move(st).error());

  SourceStats stats;
  std::uint64_t sdbf_count = 0;
  if (request.sdbf_digests) {
    auto copied = copy_sdbf_digests(request.path, (work / "similarity.sdbf").string(), sink);
    if (!copied.ok()) return cleanup_on_error(std::move(copied).error());
    sdbf_count = stats.rows = *copied;
  } else {
    auto read = read_source(request.format, request.path, sink, request.source_options);
    if (!read.ok()) return cleanup_on_error(std::move(read).error());
    stats = *read;
  }
  if (auto st = sqlite_exec(db->get(), "COMMIT"); !st.ok()) return cleanup_on_error(std::move(st).error());
  db->reset();
  auto index = writer.finish((work / "exact.idx").string());
  if (!index.ok()) return cleanup_on_error(std::move(index).error());

  ImportOutcome outcome;
  RefsetManifest& m = outcome.manifest;
  m.name = request.name;
  m.format = format_name(request);
  m.sdbf_count = sdbf_count;
  m.set_class = set_class;
  m.source = fs::absolute(request.path, ec).string();
  m.fingerprint = *fingerprint;
  m.imported_at = utc_now();
  m.version = version;
  m.rows = stats.rows;
  m.products = sink.products();
  m.warnings = sink.warning_count();
  m.md5_count = index->counts[0];
  m.sha1_count = index->counts[1];
  m.sha256_count = index->counts[2];
  m.index_bytes = index->file_bytes;
  outcome.warnings = sink.take_warnings();
  {
    std::ofstream out(work / "manifest.json", std::ios::binary);
    out << manifest_to_json(m);
    if (!out.flush()) return cleanup_on_error(Error(ErrorCode::io_error, "cannot write manifest.json"));
  }

  // Publish: v<N> appears complete, then `current` is switched by rename,
  // which readers see atomically.
  const fs::path final_dir = fs::path(set_dir) / ("v" + std::to_string(version));
  fs::remove_all(final_dir, ec);
  fs::rename(work, final_dir, ec);
  if (ec) return cleanup_on_error(Error(ErrorCode::io_error, "cannot publish " + final_dir.string() + ": " + ec.message()));
  const fs::path link_tmp = fs::path(set_dir) / ".current.tmp";
  fs::remove(link_tmp, ec);
  fs::create_directory_symlink(final_dir.filename(), link_tmp, ec);
  if (!ec) fs::rename(link_tmp, fs::path(set_dir) / "current", ec);
  if (ec) return Error(ErrorCode::io_error, "cannot switch " + set_dir + "/current: " + ec.message());
  for (const auto& entry : fs::directory_iterator(set_dir, ec)) {
    const std::string leaf = entry.path().filename().string();
    if (leaf.size() > 1 && leaf[0] == 'v' && entry.path() != final_dir) fs::remove_all(entry.path(), ec);
  }
  return outcome;
}

}  // namespace hashsieve::refset
