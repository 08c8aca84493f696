#include "staged_version.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <ctime>
#include <fstream>

#include "hashsieve/core/file.h"
#include "hashsieve/digest/crypto.h"

namespace hashsieve::refset {
namespace {

namespace fs = std::filesystem;

std::uint32_t installed_version(const std::string& set_dir) {
  std::error_code ec;
  const fs::path current = fs::path(set_dir) / "current";
  if (!fs::is_symlink(current, ec)) return 0;
  const std::string target = fs::read_symlink(current, ec).filename().string();
  if (ec || target.size() < 2 || target[0] != 'v') return 0;
  return static_cast<std::uint32_t>(std::strtoul(target.c_str() + 1, nullptr, 10));
}

// "v7", ".tmp-v7": built by append, because GCC 12 warns falsely (-Wrestrict)
// on `"literal" + std::string`.
std::string version_dir(const char* prefix, std::uint32_t version) {
  std::string name(prefix);
  name += std::to_string(version);
  return name;
}

}  // namespace

// An exclusive flock on <set>/.lock, released when the descriptor closes
// (also when the process dies).
struct StagedVersion::Lock {
  int fd = -1;
  ~Lock() {
    if (fd >= 0) ::close(fd);
  }
};

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string sha256_hex(std::string_view text) {
  digest::MultiHasher hasher({digest::CryptoAlgorithm::sha256});
  hasher.update({reinterpret_cast<const std::uint8_t*>(text.data()), text.size()});
  return hasher.finish().sha256->hex();
}

std::optional<ImportOutcome> unchanged_outcome(const RefsetCatalog& catalog, const std::string& name,
                                               const std::string& fingerprint) {
  auto installed = catalog.manifest(name);
  if (!installed.ok() || installed->fingerprint != fingerprint) return std::nullopt;
  ImportOutcome outcome;
  outcome.manifest = std::move(installed).value();
  outcome.unchanged = true;
  return outcome;
}

Result<StagedVersion> StagedVersion::begin(const RefsetCatalog& catalog, const std::string& name,
                                           std::size_t memory_budget) {
  if (auto st = validate_set_name(name); !st.ok()) return std::move(st).error();
  StagedVersion staged;
  staged.set_dir_ = catalog.set_dir(name);
  std::error_code ec;
  fs::create_directories(staged.set_dir_, ec);
  if (ec) return Error(ErrorCode::io_error, "cannot create " + staged.set_dir_ + ": " + ec.message());

  const std::string lock_path = staged.set_dir_ + "/.lock";
  staged.lock_ = std::make_unique<Lock>();
  staged.lock_->fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (staged.lock_->fd < 0) return errno_error(errno, lock_path);
  if (::flock(staged.lock_->fd, LOCK_EX | LOCK_NB) != 0) {
    return Error(ErrorCode::unavailable, "another import of '" + name + "' is running (" + lock_path + " is locked)");
  }
  // Leftovers of runs that were killed are never in use: clear them.
  for (const auto& entry : fs::directory_iterator(staged.set_dir_, ec)) {
    if (entry.path().filename().string().rfind(".tmp-", 0) == 0) fs::remove_all(entry.path(), ec);
  }
  staged.version_ = installed_version(staged.set_dir_) + 1;
  staged.work_ = fs::path(staged.set_dir_) / version_dir(".tmp-v", staged.version_);
  fs::create_directories(staged.work_, ec);
  if (ec) return Error(ErrorCode::io_error, "cannot create " + staged.work_.string() + ": " + ec.message());

  auto db = sqlite_open((staged.work_ / "labels.db").string(), SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  if (!db.ok()) return std::move(db).error();
  staged.labels_ = std::move(db).value();
  // Durability comes from the final rename, not from SQLite's journal.
  for (const char* sql : {"PRAGMA journal_mode=OFF", "PRAGMA synchronous=OFF",
                          "CREATE TABLE label(id INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                          "version TEXT NOT NULL, categories TEXT NOT NULL)",
                          "BEGIN"}) {
    if (auto st = sqlite_exec(staged.labels_.get(), sql); !st.ok()) return std::move(st).error();
  }
  auto insert = sqlite_prepare(staged.labels_.get(),
                               "INSERT INTO label(id, name, version, categories) VALUES(?,?,?,?)");
  if (!insert.ok()) return std::move(insert).error();
  staged.insert_label_ = std::move(insert).value();

  ExactIndexWriterOptions options;
  options.memory_budget = memory_budget;
  options.temp_dir = staged.work_.string();
  options.merge = &LabelValue::merge;
  staged.writer_ = std::make_unique<ExactIndexWriter>(options);
  return staged;
}

Status StagedVersion::add_label(std::uint32_t id, const std::string& name, const std::string& version,
                                const std::string& categories) {
  sqlite3_stmt* st = insert_label_.get();
  sqlite3_reset(st);
  sqlite3_bind_int64(st, 1, id);
  sqlite3_bind_text(st, 2, name.data(), static_cast<int>(name.size()), SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 3, version.data(), static_cast<int>(version.size()), SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 4, categories.data(), static_cast<int>(categories.size()), SQLITE_TRANSIENT);
  if (sqlite3_step(st) != SQLITE_DONE) return sqlite_error(labels_.get(), "writing labels");
  return {};
}

Result<RefsetManifest> StagedVersion::publish(RefsetManifest m) {
  if (auto st = sqlite_exec(labels_.get(), "COMMIT"); !st.ok()) return std::move(st).error();
  insert_label_.reset();
  labels_.reset();
  auto index = writer_->finish((work_ / "exact.idx").string());
  if (!index.ok()) return std::move(index).error();
  m.version = version_;
  m.imported_at = utc_now();
  m.md5_count = index->counts[0];
  m.sha1_count = index->counts[1];
  m.sha256_count = index->counts[2];
  m.index_bytes = index->file_bytes;
  {
    std::ofstream out(work_ / "manifest.json", std::ios::binary);
    out << manifest_to_json(m);
    if (!out.flush()) return Error(ErrorCode::io_error, "cannot write " + (work_ / "manifest.json").string());
  }
  // v<N> appears complete, then `current` is switched by rename, which
  // readers see atomically.
  std::error_code ec;
  const fs::path final_dir = fs::path(set_dir_) / version_dir("v", version_);
  fs::remove_all(final_dir, ec);
  fs::rename(work_, final_dir, ec);
  if (ec) return Error(ErrorCode::io_error, "cannot publish " + final_dir.string() + ": " + ec.message());
  published_ = true;
  const fs::path link_tmp = fs::path(set_dir_) / ".current.tmp";
  fs::remove(link_tmp, ec);
  fs::create_directory_symlink(final_dir.filename(), link_tmp, ec);
  if (!ec) fs::rename(link_tmp, fs::path(set_dir_) / "current", ec);
  if (ec) return Error(ErrorCode::io_error, "cannot switch " + set_dir_ + "/current: " + ec.message());
  for (const auto& entry : fs::directory_iterator(set_dir_, ec)) {
    const std::string leaf = entry.path().filename().string();
    if (leaf.size() > 1 && leaf[0] == 'v' && entry.path() != final_dir) fs::remove_all(entry.path(), ec);
  }
  return m;
}

StagedVersion::StagedVersion(StagedVersion&& o) noexcept
    : set_dir_(std::move(o.set_dir_)),
      work_(std::move(o.work_)),
      version_(o.version_),
      lock_(std::move(o.lock_)),
      labels_(std::move(o.labels_)),
      insert_label_(std::move(o.insert_label_)),
      writer_(std::move(o.writer_)),
      published_(std::exchange(o.published_, true)) {}

StagedVersion::~StagedVersion() {
  if (published_ || work_.empty()) return;
  insert_label_.reset();
  labels_.reset();
  writer_.reset();
  std::error_code ec;
  fs::remove_all(work_, ec);
}

}  // namespace hashsieve::refset
