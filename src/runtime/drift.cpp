#include "hashsieve/runtime/drift.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <map>
#include <optional>

#include "hashsieve/image/layer_entries.h"
#include "hashsieve/scan/external.h"
#include "hashsieve/scan/file_facts.h"

namespace hashsieve::runtime {
namespace {

class MemorySource final : public image::ByteSource {
 public:
  explicit MemorySource(std::vector<std::uint8_t> bytes) : bytes_(std::move(bytes)) {}
  Result<std::size_t> read(std::span<std::uint8_t> out) override {
    const std::size_t n = std::min(out.size(), bytes_.size() - offset_);
    std::memcpy(out.data(), bytes_.data() + offset_, n);
    offset_ += n;
    return n;
  }

 private:
  std::vector<std::uint8_t> bytes_;
  std::size_t offset_ = 0;
};

scan::Evidence drift_evidence(scan::Verdict v, std::string reference) {
  scan::Evidence e;
  e.verdict = v;
  e.set = std::string(kDriftSet);
  e.set_class = std::string(scan::to_string(v));
  e.reference = std::move(reference);
  e.algorithm = "drift";
  return e;
}

// Bytes of a tar of one regular file (GET /archive of a file): its one entry.
Result<std::vector<std::uint8_t>> file_from_tar(std::vector<std::uint8_t> tar, std::uint64_t max_bytes,
                                                const std::string& path) {
  image::ArchiveLimits limits;
  limits.max_file_bytes = max_bytes;
  limits.max_layer_bytes = max_bytes + (std::uint64_t{1} << 20);
  auto entries = image::open_tar_layer(std::make_unique<MemorySource>(std::move(tar)), {}, limits);
  if (!entries.ok()) return std::move(entries).error().with_context("archive of " + path);
  auto first = (*entries)->next();
  if (!first.ok()) return std::move(first).error().with_context("archive of " + path);
  if (!first->has_value()) return Error(ErrorCode::parse_error, "archive of " + path + ": empty tar");
  if ((*first)->kind != image::EntryKind::regular) {
    return Error(ErrorCode::unsupported, "archive of " + path + ": not a regular file any more");
  }
  std::vector<std::uint8_t> bytes((*first)->size);
  std::size_t got = 0;
  while (got < bytes.size()) {
    auto n = (*entries)->read(std::span(bytes).subspan(got));
    if (!n.ok()) return std::move(n).error().with_context("archive of " + path);
    if (*n == 0) return Error(ErrorCode::parse_error, "archive of " + path + ": truncated");
    got += *n;
  }
  return bytes;
}

// Keeps the error of the engine's stream for the caller: the tar reader
// only passes on that reading failed.
class RememberingSource final : public image::ByteSource {
 public:
  RememberingSource(std::unique_ptr<image::ByteSource> inner, std::shared_ptr<std::optional<Error>> failure)
      : inner_(std::move(inner)), failure_(std::move(failure)) {}
  Result<std::size_t> read(std::span<std::uint8_t> out) override {
    auto n = inner_->read(out);
    if (!n.ok() && !*failure_) *failure_ = n.error();
    return n;
  }

 private:
  std::unique_ptr<image::ByteSource> inner_;
  std::shared_ptr<std::optional<Error>> failure_;
};

// A file's verdict is its worst evidence (unknown without, as scan::classify
// decides); the container's its worst file's.
void add_file(ContainerScan& out, DriftFile file) {
  file.verdict = file.evidence.empty() ? scan::Verdict::unknown : scan::Verdict::known;
  for (const auto& e : file.evidence) file.verdict = std::max(file.verdict, e.verdict);
  out.verdict = std::max(out.verdict, file.verdict);
  out.files.push_back(std::move(file));
}

}  // namespace

bool is_executable(std::span<const std::uint8_t> head, std::uint32_t mode) {
  if (head.size() >= 4 && head[0] == 0x7f && head[1] == 'E' && head[2] == 'L' && head[3] == 'F') return true;
  return head.size() >= 2 && head[0] == '#' && head[1] == '!' && (mode & 0111) != 0;
}

DriftScanner::DriftScanner(const std::vector<refset::LoadedRefset>& sets, const scan::PathIndex* paths,
                           std::vector<const scanners::ExternalScanner*> externals, DriftOptions options)
    : externals_(std::move(externals)), options_(options) {
  std::vector<const refset::LoadedRefset*> all;
  for (const auto& s : sets) all.push_back(&s);
  matchers_.push_back(scan::make_exact_matcher(all));
  if (paths != nullptr) matchers_.push_back(scan::make_path_matcher(*paths));
  matchers_.push_back(scan::make_similarity_matcher(all, options_.thresholds));
}

Status DriftScanner::scan_file(Engine& engine, const std::string& id, DriftFile& file, ContainerScan& out) const {
  auto stat = engine.stat_path(id, file.path);
  if (!stat.ok()) return std::move(stat).error();
  if (stat->is_dir() || stat->is_symlink()) {
    ++out.skipped;
    return {};
  }
  if (!stat->is_regular()) {
    // FIFOs, sockets and devices are never read: reading a FIFO would block.
    return Error(ErrorCode::unsupported, file.path + ": skipped, a " + stat->type_name() + " is not scanned");
  }
  if (stat->size > options_.max_file_bytes) {
    return Error(ErrorCode::limit_exceeded, file.path + ": " + std::to_string(stat->size) +
                                                " bytes, more than the limit of " +
                                                std::to_string(options_.max_file_bytes) + " (--max-file-bytes)");
  }
  // The tar adds headers and padding: a file's tar is at most a few KiB larger.
  auto tar = engine.archive(id, file.path, options_.max_file_bytes + 64 * 1024);
  if (!tar.ok()) return std::move(tar).error();
  auto bytes = file_from_tar(std::move(tar).value(), options_.max_file_bytes, file.path);
  if (!bytes.ok()) return std::move(bytes).error();
  file.size = bytes->size();
  file.mode = stat->permissions();
  return classify_bytes(file, *bytes, out);
}

Status DriftScanner::classify_bytes(DriftFile& file, std::span<const std::uint8_t> bytes, ContainerScan& out) const {
  auto record = scan::file_record_from_bytes(file.path.substr(1), file.mode, bytes);
  if (!record.ok()) return std::move(record).error();
  if (record->crypto.sha256) file.sha256 = record->crypto.sha256->hex();
  auto classified = scan::classify(*record, matchers_);
  if (!classified.ok()) return std::move(classified).error().with_context(file.path);
  file.evidence = std::move(classified->evidence);
  if (file.change == ChangeKind::added && is_executable(bytes, file.mode)) {
    file.new_executable = true;
    file.evidence.push_back(drift_evidence(scan::Verdict::suspicious, "new executable"));
  }
  if (file.change == ChangeKind::modified) {
    file.evidence.push_back(drift_evidence(scan::Verdict::modified, "image file modified"));
  }
  for (const scanners::ExternalScanner* s : externals_) {
    auto findings = s->scan_buffer(bytes, file.path);
    if (!findings.ok()) {
      // The file is still classified by hashes; the scanner's failure is recorded.
      out.errors.push_back({file.path, findings.error().code(), s->name() + ": " + findings.error().message()});
      continue;
    }
    for (const auto& f : *findings) file.evidence.push_back(scan::evidence_from_finding(f));
  }
  return {};
}

Result<ContainerScan> DriftScanner::scan(Engine& engine, const ContainerSummary& container) const {
  ContainerScan out;
  out.container = container;
  auto changes = engine.changes(container.id);
  if (!changes.ok()) return std::move(changes).error();
  if (options_.full) return scan_full(engine, container, std::move(changes).value());
  std::sort(changes->begin(), changes->end(), [](const Change& a, const Change& b) { return a.path < b.path; });
  for (const Change& c : *changes) {
    DriftFile file;
    file.path = c.path;
    file.change = c.kind;
    if (c.kind == ChangeKind::deleted) {
      file.evidence.push_back(drift_evidence(scan::Verdict::modified, "deleted from the image"));
    } else if (auto st = scan_file(engine, container.id, file, out); !st.ok()) {
      std::fprintf(stderr, "hashsieve runtime: container %s: %s\n", container.id.substr(0, 12).c_str(),
                   st.error().message().c_str());
      out.errors.push_back({c.path, st.error().code(), st.error().message()});
      // A container that went away or an engine that stopped answering ends
      // the container's scan: every further request would fail the same way.
      if (st.error().code() == ErrorCode::unavailable) break;
      continue;
    } else if (file.sha256.empty()) {
      continue;  // a directory or symlink
    }
    add_file(out, std::move(file));
  }
  return out;
}

Result<ContainerScan> DriftScanner::scan_full(Engine& engine, const ContainerSummary& container,
                                              std::vector<Change> changes) const {
  ContainerScan out;
  out.container = container;
  out.full = true;
  const std::string short_id = container.id.substr(0, 12);
  auto record_error = [&](const std::string& path, const Error& e) {
    std::fprintf(stderr, "hashsieve runtime: container %s: %s\n", short_id.c_str(), e.message().c_str());
    out.errors.push_back({path, e.code(), e.message()});
  };
  std::map<std::string, ChangeKind> changed;
  for (const Change& c : changes) changed[c.path] = c.kind;
  auto source = engine.export_container(container.id);
  if (!source.ok()) return std::move(source).error();
  auto failure = std::make_shared<std::optional<Error>>();
  auto entries = image::open_tar_layer(std::make_unique<RememberingSource>(std::move(source).value(), failure), {},
                                       options_.export_limits);
  if (!entries.ok()) {
    if (*failure) return std::move(**failure);
    return std::move(entries).error().with_context("export of container " + container.id);
  }
  // A stream error ends the scan: the engine's own error when it was the
  // engine (libarchive words a failed read its own way), so an engine that
  // went away stays `unavailable` and the runner retries.
  auto stream_error = [&](Error e) {
    record_error("", *failure ? **failure : std::move(e).with_context("export of container " + container.id));
  };
  std::vector<std::uint8_t> bytes;
  bool complete = false;
  for (;;) {
    auto next = (*entries)->next();
    if (!next.ok()) {
      stream_error(std::move(next).error());
      break;
    }
    if (!next->has_value()) {
      complete = true;
      break;
    }
    const image::LayerEntry& entry = **next;
    DriftFile file;
    file.path = "/" + entry.path;
    const auto change = changed.find(file.path);
    if (entry.kind != image::EntryKind::regular) {
      if (entry.kind == image::EntryKind::device && change != changed.end()) {
        // Drifted FIFOs and devices are reported as in a drift scan.
        record_error(file.path, Error(ErrorCode::unsupported,
                                      file.path + ": skipped, a device, FIFO or socket is not scanned"));
      } else {
        ++out.skipped;
      }
      continue;
    }
    file.change = change != changed.end() ? change->second : ChangeKind::unchanged;
    file.mode = entry.mode & 07777;
    file.size = entry.size;
    if (entry.size > options_.max_file_bytes) {
      record_error(file.path, Error(ErrorCode::limit_exceeded, file.path + ": " + std::to_string(entry.size) +
                                                                   " bytes, more than the limit of " +
                                                                   std::to_string(options_.max_file_bytes) +
                                                                   " (--max-file-bytes)"));
      continue;  // the reader skips its content
    }
    bytes.resize(entry.size);
    std::size_t got = 0;
    bool broken = false;
    while (got < bytes.size()) {
      auto n = (*entries)->read(std::span(bytes).subspan(got));
      if (!n.ok() || *n == 0) {
        stream_error(n.ok() ? Error(ErrorCode::parse_error, file.path + ": truncated") : std::move(n).error());
        broken = true;
        break;
      }
      got += *n;
    }
    if (broken) break;
    if (auto st = classify_bytes(file, bytes, out); !st.ok()) {
      record_error(file.path, st.error());
      continue;
    }
    add_file(out, std::move(file));
  }
  if (complete) {
    if (auto st = (*entries)->finish(); !st.ok()) stream_error(std::move(st).error());
  }
  for (const Change& c : changes) {
    if (c.kind != ChangeKind::deleted) continue;
    DriftFile file;
    file.path = c.path;
    file.change = ChangeKind::deleted;
    file.evidence.push_back(drift_evidence(scan::Verdict::modified, "deleted from the image"));
    add_file(out, std::move(file));
  }
  std::sort(out.files.begin(), out.files.end(), [](const DriftFile& a, const DriftFile& b) { return a.path < b.path; });
  return out;
}

}  // namespace hashsieve::runtime
