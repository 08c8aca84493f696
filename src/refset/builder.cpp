#include "hashsieve/refset/builder.h"

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <thread>

#include "deb_reader.h"
#include "hashsieve/core/file.h"
#include "hashsieve/digest/file_digests.h"
#include "hashsieve/refset/section_digests.h"
#include "hashsieve/refset/similarity_index.h"
#include "staged_version.h"

namespace hashsieve::refset {
namespace {

namespace fs = std::filesystem;

// One file to hash: where its bytes are (on disk, or already in memory from a
// package) and what the set calls it.
struct BuildEntry {
  std::string name;     // "/usr/bin/ls" or the path as given
  std::string package;  // "" for plain files
  std::string disk_path;
  std::vector<std::uint8_t> bytes;  // package members only
};

bool is_deb(const std::string& path) { return path.size() > 4 && path.substr(path.size() - 4) == ".deb"; }

void walk_dir(const fs::path& root, const fs::path& dir, std::vector<BuildEntry>& out,
              std::vector<Warning>& warnings) {
  std::error_code ec;
  std::vector<fs::path> children;
  for (const auto& e : fs::directory_iterator(dir, ec)) children.push_back(e.path());
  if (ec) warnings.push_back({dir.string() + ": " + ec.message()});
  std::sort(children.begin(), children.end());
  for (const auto& child : children) {
    struct stat st {};
    if (::lstat(child.c_str(), &st) != 0) continue;
    if (S_ISDIR(st.st_mode)) {
      walk_dir(root, child, out, warnings);
    } else if (S_ISREG(st.st_mode)) {
      std::string name(1, '/');  // not "/" + string: GCC 12 warns falsely (-Wrestrict) on that
      name += fs::relative(child, root).string();
      out.push_back({std::move(name), "", child.string(), {}});
    }  // links, FIFOs and devices carry no content of their own
  }
}

// One hashed file: its digests and the similarity index's content keys.
struct HashedEntry {
  digest::FileDigests digests;
  std::vector<std::uint32_t> content_keys;
  std::optional<SectionDigests> rodata;  // ELF files with a .rodata section
  std::optional<std::string> rodata_warning;  // a damaged section table: no .rodata digests
};

// Names may hold any byte but newline and tab in the TLSH/ssdeep line
// formats; the third column, the input's size, feeds the matcher's size gate.
std::string line_name(const std::string& name) {
  std::string safe = name;
  std::replace(safe.begin(), safe.end(), '\n', ' ');
  std::replace(safe.begin(), safe.end(), '\t', ' ');
  return safe;
}

class SetWriter {
 public:
  SetWriter(StagedVersion& staged) : staged_(staged) {
    sdbf_.open(staged.dir() / "similarity.sdbf", std::ios::binary);
    tlsh_.open(staged.dir() / "similarity.tlsh", std::ios::binary);
    ssdeep_.open(staged.dir() / "similarity.ssdeep", std::ios::binary);
    // The .rodata digests live in files of their own, so sets built before
    // them load unchanged (and simply have none).
    rodata_sdbf_.open(staged.dir() / "similarity.rodata.sdbf", std::ios::binary);
    rodata_tlsh_.open(staged.dir() / "similarity.rodata.tlsh", std::ios::binary);
    rodata_ssdeep_.open(staged.dir() / "similarity.rodata.ssdeep", std::ios::binary);
  }

  // The file table (path -> package, SHA-256) for files_at_path().
  Status prepare() {
    if (auto st = sqlite_exec(staged_.labels(),
                              "CREATE TABLE file(path TEXT NOT NULL, package TEXT NOT NULL, "
                              "sha256 TEXT NOT NULL, size INTEGER NOT NULL, label INTEGER NOT NULL)");
        !st.ok()) {
      return st;
    }
    auto insert = sqlite_prepare(staged_.labels(), "INSERT INTO file(path, package, sha256, size, label) VALUES(?,?,?,?,?)");
    if (!insert.ok()) return std::move(insert).error();
    insert_file_ = std::move(insert).value();
    return {};
  }

  Status add(const BuildEntry& entry, HashedEntry& hashed) {
    digest::FileDigests& d = hashed.digests;
    const std::uint32_t label = next_label_++;
    if (auto st = staged_.add_label(label, entry.name, entry.package, ""); !st.ok()) return st;
    if (auto st = add_file_row(entry, d, label); !st.ok()) return st;
    const std::uint32_t value = LabelValue::encode(label, 0);
    if (d.crypto.md5) {
      if (auto st = staged_.writer().add(*d.crypto.md5, value); !st.ok()) return st;
    }
    if (d.crypto.sha1) {
      if (auto st = staged_.writer().add(*d.crypto.sha1, value); !st.ok()) return st;
    }
    if (d.crypto.sha256) {
      if (auto st = staged_.writer().add(*d.crypto.sha256, value); !st.ok()) return st;
      fingerprint_input_ += entry.package + "\t" + entry.name + "\t" + d.crypto.sha256->hex() + "\n";
    }
    const std::string name = entry.package.empty() ? entry.name : entry.package + ":" + entry.name;
    for (auto& s : d.sdbf) {
      s.set_name(name);
      sdbf_ << digest::format_sdbf(s);
      index_.add_sdbf(static_cast<std::uint32_t>(sdbf_count_), hashed.content_keys);
      ++sdbf_count_;
    }
    const std::string safe = line_name(name);
    if (d.tlsh) {
      tlsh_ << d.tlsh->to_string() << '\t' << safe << '\t' << d.size << '\n';
      index_.add_tlsh(static_cast<std::uint32_t>(tlsh_count_++), *d.tlsh);
    }
    if (d.ssdeep) ssdeep_ << *d.ssdeep << '\t' << safe << '\t' << d.size << '\n';
    if (hashed.rodata) {
      SectionDigests& r = *hashed.rodata;
      for (auto& s : r.sdbf) {
        s.set_name(name);
        rodata_sdbf_ << digest::format_sdbf(s);
      }
      if (r.tlsh) rodata_tlsh_ << r.tlsh->to_string() << '\t' << safe << '\t' << r.size << '\n';
      if (r.ssdeep) rodata_ssdeep_ << *r.ssdeep << '\t' << safe << '\t' << r.size << '\n';
    }
    ++files_;
    return {};
  }

  Status close() {
    for (auto* f : {&sdbf_, &tlsh_, &ssdeep_, &rodata_sdbf_, &rodata_tlsh_, &rodata_ssdeep_}) {
      if (!f->flush()) return Error(ErrorCode::io_error, "writing similarity digests failed");
      f->close();
    }
    insert_file_.reset();
    if (auto st = sqlite_exec(staged_.labels(), "CREATE INDEX file_by_path ON file(path)"); !st.ok()) return st;
    return index_.write((staged_.dir() / "similarity.idx").string(), static_cast<std::uint32_t>(sdbf_count_),
                        static_cast<std::uint32_t>(tlsh_count_));
  }

  const std::string& fingerprint_input() const { return fingerprint_input_; }
  std::uint64_t files() const { return files_; }
  std::uint64_t sdbf_count() const { return sdbf_count_; }

 private:
  // Paths are stored without their leading '/', the form files_at_path() looks up.
  Status add_file_row(const BuildEntry& entry, const digest::FileDigests& d, std::uint32_t label) {
    std::string_view path = entry.name;
    while (!path.empty() && path.front() == '/') path.remove_prefix(1);
    const std::string sha256 = d.crypto.sha256 ? d.crypto.sha256->hex() : std::string();
    sqlite3_stmt* st = insert_file_.get();
    sqlite3_reset(st);
    sqlite3_bind_text(st, 1, path.data(), static_cast<int>(path.size()), SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, entry.package.data(), static_cast<int>(entry.package.size()), SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, sha256.data(), static_cast<int>(sha256.size()), SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 4, static_cast<sqlite3_int64>(d.size));
    sqlite3_bind_int64(st, 5, label);
    if (sqlite3_step(st) != SQLITE_DONE) return sqlite_error(staged_.labels(), "writing the file table");
    return {};
  }

  StagedVersion& staged_;
  std::ofstream sdbf_, tlsh_, ssdeep_, rodata_sdbf_, rodata_tlsh_, rodata_ssdeep_;
  SqliteStmt insert_file_;
  SimilarityIndexWriter index_;
  std::uint32_t next_label_ = 1;
  std::uint64_t files_ = 0, sdbf_count_ = 0, tlsh_count_ = 0;
  std::string fingerprint_input_;
};

// Hashes a batch of entries on `threads` threads; results keep the batch order
// so label ids, and with them the index, do not depend on the thread count.
Result<HashedEntry> hash_entry(const BuildEntry& e) {
  std::optional<MappedFile> file;
  std::span<const std::uint8_t> bytes = e.bytes;
  if (!e.disk_path.empty()) {
    auto mapped = MappedFile::open(e.disk_path);
    if (!mapped.ok()) return std::move(mapped).error();
    file.emplace(std::move(mapped).value());
    bytes = file->bytes();
  }
  const std::string& name = e.disk_path.empty() ? e.name : e.disk_path;
  auto digests = digest::compute_digests(name, bytes, digest::DigestSelection{});
  if (!digests.ok()) return std::move(digests).error();
  HashedEntry out{std::move(digests).value(), sample_content_keys(bytes), std::nullopt, std::nullopt};
  auto rodata = rodata_digests(name, bytes);
  if (rodata.ok()) {
    out.rodata = std::move(rodata).value();
  } else {
    out.rodata_warning = rodata.error().message() + "; no .rodata digests for it";
  }
  return out;
}

std::vector<Result<HashedEntry>> hash_batch(const std::vector<BuildEntry>& batch, unsigned threads) {
  std::vector<std::optional<Result<HashedEntry>>> results(batch.size());
  std::atomic<std::size_t> next{0};
  auto work = [&] {
    for (std::size_t i; (i = next.fetch_add(1)) < batch.size();) results[i] = hash_entry(batch[i]);
  };
  std::vector<std::thread> pool;
  for (unsigned t = 1; t < threads; ++t) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
  std::vector<Result<HashedEntry>> out;
  out.reserve(batch.size());
  for (auto& r : results) out.push_back(std::move(*r));
  return out;
}

}  // namespace

Result<ImportOutcome> build_refset(const RefsetCatalog& catalog, const BuildRequest& request) {
  if (request.paths.empty()) return Error(ErrorCode::invalid_argument, "nothing to build from: give files, directories or .deb packages");
  auto context = [&](Error e) { return std::move(e).with_context("building '" + request.name + "'"); };
  auto staged = StagedVersion::begin(catalog, request.name, request.memory_budget);
  if (!staged.ok()) return context(std::move(staged).error());

  std::vector<Warning> warnings;
  SetWriter writer(*staged);
  if (auto st = writer.prepare(); !st.ok()) return context(std::move(st).error());
  const unsigned threads = std::max(1u, request.threads);
  // Bounded batches keep memory to a few files' worth of package members.
  std::vector<BuildEntry> batch;
  auto flush = [&]() -> Status {
    auto results = hash_batch(batch, threads);
    for (std::size_t i = 0; i < batch.size(); ++i) {
      if (!results[i].ok()) {
        warnings.push_back({results[i].error().message()});
        continue;
      }
      if (results[i]->rodata_warning) warnings.push_back({*results[i]->rodata_warning});
      if (auto st = writer.add(batch[i], *results[i]); !st.ok()) return st;
    }
    batch.clear();
    return {};
  };
  constexpr std::size_t kBatch = 64;
  for (const auto& path : request.paths) {
    std::error_code ec;
    const auto status = fs::status(path, ec);
    if (ec || !fs::exists(status)) return context(Error(ErrorCode::not_found, path + ": no such file or directory"));
    if (fs::is_directory(status)) {
      std::vector<BuildEntry> entries;
      walk_dir(path, path, entries, warnings);
      for (auto& e : entries) {
        if (fs::file_size(e.disk_path, ec) > request.max_file_bytes) {
          warnings.push_back({e.disk_path + ": over the size limit; skipped"});
          continue;
        }
        batch.push_back(std::move(e));
        if (batch.size() >= kBatch) {
          if (auto st = flush(); !st.ok()) return context(std::move(st).error());
        }
      }
    } else if (is_deb(path)) {
      auto info = read_deb(
          path, request.max_file_bytes,
          [&](const std::string& package, const std::string& name, std::span<const std::uint8_t> bytes) -> Status {
            batch.push_back({name, package, "", std::vector<std::uint8_t>(bytes.begin(), bytes.end())});
            return batch.size() >= kBatch ? flush() : Status{};
          },
          [&](std::string w) { warnings.push_back({std::move(w)}); });
      if (!info.ok()) return context(std::move(info).error());
    } else if (fs::is_regular_file(status)) {
      batch.push_back({path, "", path, {}});
    } else {
      warnings.push_back({path + ": not a regular file, directory or .deb; skipped"});
    }
  }
  if (auto st = flush(); !st.ok()) return context(std::move(st).error());
  if (auto st = writer.close(); !st.ok()) return context(std::move(st).error());
  if (writer.files() == 0) return context(Error(ErrorCode::invalid_argument, "no files found to build from"));

  const std::string fingerprint = sha256_hex("hashsieve-refset-build/2\n" +
                                             std::string(to_string(request.set_class)) + "\n" +
                                             writer.fingerprint_input());
  if (!request.force) {
    if (auto same = unchanged_outcome(catalog, request.name, fingerprint)) return std::move(*same);
  }

  RefsetManifest m;
  m.name = request.name;
  m.format = "build";
  m.set_class = request.set_class;
  for (const auto& p : request.paths) {
    std::error_code ec;
    m.source += (m.source.empty() ? "" : " ") + fs::absolute(p, ec).string();
  }
  m.fingerprint = fingerprint;
  m.rows = writer.files();
  m.sdbf_count = writer.sdbf_count();
  m.warnings = warnings.size();
  auto published = staged->publish(std::move(m));
  if (!published.ok()) return context(std::move(published).error());
  ImportOutcome outcome;
  outcome.manifest = std::move(published).value();
  if (warnings.size() > ImportOutcome::kMaxKeptWarnings) warnings.resize(ImportOutcome::kMaxKeptWarnings);
  outcome.warnings = std::move(warnings);
  return outcome;
}

}  // namespace hashsieve::refset
