// An in-memory Engine for the drift, scheduler and runner tests, with a
// minimal ustar writer for the archive replies.
#pragma once

#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "hashsieve/runtime/engine.h"

namespace hashsieve::runtime::testing {

using Bytes = std::vector<std::uint8_t>;

// A ustar archive holding one regular file `name` (what GET /archive of a file returns).
inline Bytes tar_of(const std::string& name, const Bytes& data, std::uint32_t mode) {
  Bytes out(512, 0);
  std::memcpy(out.data(), name.data(), std::min<std::size_t>(name.size(), 99));
  std::snprintf(reinterpret_cast<char*>(&out[100]), 8, "%07o", mode & 07777);
  std::snprintf(reinterpret_cast<char*>(&out[108]), 8, "%07o", 0);
  std::snprintf(reinterpret_cast<char*>(&out[116]), 8, "%07o", 0);
  std::snprintf(reinterpret_cast<char*>(&out[124]), 12, "%011llo", static_cast<unsigned long long>(data.size()));
  std::snprintf(reinterpret_cast<char*>(&out[136]), 12, "%011o", 0);
  out[156] = '0';
  std::memcpy(&out[257], "ustar", 6);
  out[263] = '0';
  out[264] = '0';
  std::memset(&out[148], ' ', 8);
  unsigned sum = 0;
  for (std::uint8_t b : out) sum += b;
  std::snprintf(reinterpret_cast<char*>(&out[148]), 8, "%06o", sum);
  out[155] = ' ';
  out.insert(out.end(), data.begin(), data.end());
  out.resize((out.size() + 511) / 512 * 512 + 1024, 0);
  return out;
}

struct FakeFile {
  PathStat stat;
  Bytes data;
};

struct FakeContainer {
  ContainerSummary summary;
  std::vector<Change> changes;
  std::map<std::string, FakeFile> files;  // by absolute path
};

class FakeEngine final : public Engine {
 public:
  std::map<std::string, FakeContainer> containers;
  bool down = false;                  // every request fails unavailable
  int fail_after_archives = -1;       // >= 0: the engine goes down after this many archive requests
  int archives = 0;
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
