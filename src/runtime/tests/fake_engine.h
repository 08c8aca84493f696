// An in-memory Engine for the drift, scheduler and runner tests, with a
// minimal ustar writer for the archive replies.
#pragma once

#include <cstdio>
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "hashsieve/runtime/engine.h"

namespace hashsieve::runtime::testing {

using Bytes = std::vector<std::uint8_t>;

// One ustar entry (header and padded content) of type `type` ('0' regular,
// '5' directory, '6' FIFO).
inline Bytes tar_entry(const std::string& name, const Bytes& data, std::uint32_t mode, char type = '0') {
  Bytes out(512, 0);
  std::memcpy(out.data(), name.data(), std::min<std::size_t>(name.size(), 99));
  std::snprintf(reinterpret_cast<char*>(&out[100]), 8, "%07o", mode & 07777);
  std::snprintf(reinterpret_cast<char*>(&out[108]), 8, "%07o", 0);
  std::snprintf(reinterpret_cast<char*>(&out[116]), 8, "%07o", 0);
  std::snprintf(reinterpret_cast<char*>(&out[124]), 12, "%011llo", static_cast<unsigned long long>(data.size()));
  std::snprintf(reinterpret_cast<char*>(&out[136]), 12, "%011o", 0);
  out[156] = static_cast<std::uint8_t>(type);
  std::memcpy(&out[257], "ustar", 6);
  out[263] = '0';
  out[264] = '0';
  std::memset(&out[148], ' ', 8);
  unsigned sum = 0;
  for (std::uint8_t b : out) sum += b;
  std::snprintf(reinterpret_cast<char*>(&out[148]), 8, "%06o", sum);
  out[155] = ' ';
  out.insert(out.end(), data.begin(), data.end());
  out.resize((out.size() + 511) / 512 * 512, 0);
  return out;
}

// A ustar archive holding one regular file `name` (what GET /archive of a file returns).
inline Bytes tar_of(const std::string& name, const Bytes& data, std::uint32_t mode) {
  Bytes out = tar_entry(name, data, mode);
  out.resize(out.size() + 1024, 0);
  return out;
}

// A ByteSource over bytes that fails (unavailable) after `fail_at` bytes, as
// an engine that stops in the middle of an export.
class FakeStream final : public image::ByteSource {
 public:
  FakeStream(Bytes bytes, std::size_t fail_at) : bytes_(std::move(bytes)), fail_at_(fail_at) {}
  Result<std::size_t> read(std::span<std::uint8_t> out) override {
    if (offset_ >= fail_at_ && offset_ < bytes_.size()) return Error(ErrorCode::unavailable, "engine went away");
    const std::size_t n = std::min({out.size(), bytes_.size() - offset_, fail_at_ - offset_});
    std::memcpy(out.data(), bytes_.data() + offset_, n);
    offset_ += n;
    return n;
  }

 private:
  Bytes bytes_;
  std::size_t fail_at_;
  std::size_t offset_ = 0;
};

struct FakeFile {
  PathStat stat;
  Bytes data;
};

struct FakeContainer {
  ContainerSummary summary;
  std::vector<Change> changes;
  std::map<std::string, FakeFile> files;        // by absolute path: the drift
  std::map<std::string, FakeFile> image_files;  // by absolute path: unchanged files (export only)
};

class FakeEngine final : public Engine {
 public:
  std::map<std::string, FakeContainer> containers;
  bool down = false;                  // every request fails unavailable
  int fail_after_archives = -1;       // >= 0: the engine goes down after this many archive requests
  int archives = 0;
  std::size_t export_fail_at = SIZE_MAX;  // the export stream fails after this many bytes
  int exports = 0;
  std::vector<std::string> changes_requested;

  void add_file(const std::string& id, const std::string& path, ChangeKind kind, Bytes data, std::uint32_t mode = 0644) {
    auto& c = containers[id];
    c.changes.push_back({path, kind});
    FakeFile f;
    f.stat.name = path.substr(path.rfind('/') + 1);
    f.stat.size = data.size();
    f.stat.mode = mode;
    f.data = std::move(data);
    c.files[path] = std::move(f);
  }
  void add_container(const std::string& id, const std::string& name) {
    auto& c = containers[id];
    c.summary = {id, name, "busybox:test", "sha256:" + std::string(64, 'b'), "running"};
  }

  Result<std::vector<ContainerSummary>> list_containers() override {
    std::lock_guard lock(mutex_);
    if (down) return Error(ErrorCode::unavailable, "engine down");
    std::vector<ContainerSummary> out;
    for (const auto& [id, c] : containers) out.push_back(c.summary);
    return out;
  }
  Result<ContainerInspect> inspect(const std::string& id) override {
    std::lock_guard lock(mutex_);
    auto it = containers.find(id);
    if (it == containers.end()) return Error(ErrorCode::not_found, "no such container " + id);
    return ContainerInspect{id, it->second.summary.name, it->second.summary.image, it->second.summary.image_id, true, 1};
  }
  Result<std::vector<Change>> changes(const std::string& id) override {
    std::lock_guard lock(mutex_);
    if (down) return Error(ErrorCode::unavailable, "engine down");
    changes_requested.push_back(id);
    auto it = containers.find(id);
    if (it == containers.end()) return Error(ErrorCode::not_found, "no such container " + id);
    return it->second.changes;
  }
  Result<PathStat> stat_path(const std::string& id, const std::string& path) override {
    std::lock_guard lock(mutex_);
    if (down) return Error(ErrorCode::unavailable, "engine down");
    auto f = find(id, path);
    if (!f.ok()) return std::move(f).error();
    return (*f)->stat;
  }
  Result<Bytes> archive(const std::string& id, const std::string& path, std::uint64_t max_bytes) override {
    std::lock_guard lock(mutex_);
    if (fail_after_archives >= 0 && archives >= fail_after_archives) down = true;
    if (down) return Error(ErrorCode::unavailable, "engine down");
    ++archives;
    auto f = find(id, path);
    if (!f.ok()) return std::move(f).error();
    Bytes tar = tar_of((*f)->stat.name, (*f)->data, (*f)->stat.mode);
    if (tar.size() > max_bytes) return Error(ErrorCode::limit_exceeded, "archive too large");
    return tar;
  }
  // The image files, then the drift over them (without deleted ones), then
  // the directory "tmp/" and FIFOs as the drift stats say: a whole filesystem.
  Result<std::unique_ptr<image::ByteSource>> export_container(const std::string& id) override {
    std::lock_guard lock(mutex_);
    if (down) return Error(ErrorCode::unavailable, "engine down");
    ++exports;
    auto it = containers.find(id);
    if (it == containers.end()) return Error(ErrorCode::not_found, "no such container " + id);
    std::map<std::string, const FakeFile*> all;
    for (const auto& [path, f] : it->second.image_files) all[path] = &f;
    for (const auto& [path, f] : it->second.files) all[path] = &f;
    for (const auto& c : it->second.changes) {
      if (c.kind == ChangeKind::deleted) all.erase(c.path);
    }
    Bytes tar = tar_entry("tmp/", {}, 01777, '5');
    for (const auto& [path, f] : all) {
      const char type = f->stat.is_dir() ? '5' : (f->stat.mode & PathStat::kModeNamedPipe) != 0 ? '6' : '0';
      Bytes e = tar_entry(path.substr(1), type == '0' ? f->data : Bytes{}, f->stat.mode, type);
      tar.insert(tar.end(), e.begin(), e.end());
    }
    tar.resize(tar.size() + 1024, 0);
    return std::unique_ptr<image::ByteSource>(std::make_unique<FakeStream>(std::move(tar), export_fail_at));
  }
  Status watch_events(const std::function<void(const EngineEvent&)>&, const std::atomic<bool>&) override {
    return Error(ErrorCode::unavailable, "no event stream in the fake");
  }

 private:
  Result<const FakeFile*> find(const std::string& id, const std::string& path) {
    auto it = containers.find(id);
    if (it == containers.end()) return Error(ErrorCode::not_found, "no such container " + id);
    auto f = it->second.files.find(path);
    if (f == it->second.files.end()) return Error(ErrorCode::not_found, "no such file " + path);
    return &f->second;
  }
  std::mutex mutex_;
};

}  // namespace hashsieve::runtime::testing
