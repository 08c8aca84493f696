// A deterministic in-memory image and reference sets for the scan tests: a
// fake ImageSource whose layers are lists of entries with contents, and sets
// made by `refset build` in a temporary data directory.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <random>

#include "hashsieve/digest/crypto.h"
#include "hashsieve/image/source.h"
#include "hashsieve/refset/builder.h"
#include "hashsieve/refset/catalog.h"
#include "hashsieve/scan/matcher.h"

namespace hashsieve::scan::testing {

namespace fs = std::filesystem;
using Bytes = std::vector<std::uint8_t>;

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "hashsieve-scan-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() { fs::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Deterministic pseudo-random bytes (mt19937 with a fixed seed).
inline Bytes random_bytes(std::size_t n, std::uint32_t seed) {
  std::mt19937 gen(seed);
  Bytes out(n);
  for (auto& b : out) b = static_cast<std::uint8_t>(gen() >> 24);
  return out;
}

// A copy with one byte in every `stride` changed: still similar.
inline Bytes edited(Bytes b, std::size_t stride) {
  for (std::size_t i = stride / 2; i < b.size(); i += stride) b[i] ^= 0x5A;
  return b;
}

struct FakeEntry {
  image::LayerEntry entry;
  Bytes data;
};

inline FakeEntry file(std::string path, Bytes data) {
  FakeEntry e;
  e.entry.path = std::move(path);
  e.entry.kind = image::EntryKind::regular;
  e.entry.size = data.size();
  e.entry.mode = 0644;
  e.data = std::move(data);
  return e;
}

inline FakeEntry marker(std::string path, image::EntryKind kind, std::string link = "") {
  FakeEntry e;
  e.entry.path = std::move(path);
  e.entry.kind = kind;
  e.entry.mode = kind == image::EntryKind::directory ? 0755 : 0;
  e.entry.link_target = std::move(link);
  return e;
}

class FakeLayer final : public image::LayerEntries {
 public:
  FakeLayer(const std::vector<FakeEntry>& entries, std::size_t truncate_at) : entries_(entries), truncate_at_(truncate_at) {}
  Result<std::optional<image::LayerEntry>> next() override {
    if (next_ >= entries_.size()) return std::optional<image::LayerEntry>();
    current_ = next_++;
    offset_ = 0;
    return std::optional<image::LayerEntry>(entries_[current_].entry);
  }
  Result<std::size_t> read(std::span<std::uint8_t> out) override {
    const Bytes& d = entries_[current_].data;
    std::size_t limit = std::min(d.size(), truncate_at_);
    const std::size_t n = std::min(out.size(), limit - std::min(limit, offset_));
    std::copy_n(d.begin() + static_cast<std::ptrdiff_t>(offset_), n, out.begin());
    offset_ += n;
    return n;
  }
  Status finish() override { return {}; }

 private:
  const std::vector<FakeEntry>& entries_;
  std::size_t truncate_at_;
  std::size_t next_ = 0, current_ = 0, offset_ = 0;
};

class FakeSource final : public image::ImageSource {
 public:
  std::vector<std::vector<FakeEntry>> layers;
  std::atomic<int> opens{0};
  std::size_t truncate_at = SIZE_MAX;  // content reads stop here (to test truncation)
  bool fail_open = false;
  std::optional<std::size_t> fail_layer;  // only this layer fails to open

  image::ResolvedImage image() const {
    image::ResolvedImage img;
    img.reference = "fake:test-image";
    img.manifest_digest = "sha256:" + std::string(64, 'm');
    img.config_digest = "sha256:" + std::string(64, 'c');
    img.platform = {"linux", "amd64", ""};
    for (std::size_t i = 0; i < layers.size(); ++i) {
      image::LayerDescriptor d;
      d.media_type = "application/vnd.oci.image.layer.v1.tar";
      d.digest = "sha256:" + std::string(63, 'b') + static_cast<char>('0' + i);
      d.diff_id = "sha256:" + std::string(63, 'd') + static_cast<char>('0' + i);
      d.size = 1000 * (i + 1);
      img.layers.push_back(d);
    }
    return img;
  }
  Result<std::vector<image::ResolvedImage>> resolve() override { return std::vector<image::ResolvedImage>{image()}; }
  Result<std::unique_ptr<image::LayerEntries>> open_layer(const image::ResolvedImage&, std::size_t index) override {
    ++opens;
    if (fail_open || fail_layer == index) return Error(ErrorCode::unavailable, "registry went away");
    return std::unique_ptr<image::LayerEntries>(new FakeLayer(layers.at(index), truncate_at));
  }
};

// The contents the fixture uses, by role.
struct Contents {
  Bytes ls = random_bytes(20000, 1);        // known, at /usr/bin/ls in "distro"
  Bytes cat = random_bytes(30000, 2);       // known, at /usr/bin/cat in "distro"
  Bytes cat_patched = edited(cat, 4096);    // at /usr/bin/cat in the image: modified
  Bytes evil = random_bytes(5000, 3);       // in "bad": malicious
  Bytes hack = random_bytes(65536, 4);      // in "tools" (suspicious)
  Bytes hack_edit = edited(hack, 8192);     // similar to hack: suspicious
  Bytes hack_exact = random_bytes(3000, 6); // exact hit in "tools": suspicious
  Bytes random = random_bytes(40000, 5);    // unknown
  Bytes gone = random_bytes(6000, 7);       // hidden by a whiteout, known-bad
  Bytes tiny = {'h', 'i', '\n'};            // unknown, below the similarity minimum
};

// Two layers: base system plus an application layer that deletes a file.
inline void fill_image(FakeSource& src, const Contents& c) {
  src.layers.push_back({marker("usr", image::EntryKind::directory), marker("usr/bin", image::EntryKind::directory),
                        file("usr/bin/ls", c.ls), file("usr/bin/cat", c.cat_patched),
                        marker("usr/bin/dir", image::EntryKind::symlink, "ls"), file("tmp/dropper", c.gone)});
  src.layers.push_back({marker("tmp/dropper", image::EntryKind::whiteout), file("opt/app/evil", c.evil),
                        file("opt/app/hack", c.hack_edit), file("opt/app/hack2", c.hack_exact),
                        file("opt/app/data.bin", c.random), file("opt/app/note", c.tiny)});
}

inline void write_file(const fs::path& p, const Bytes& b) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary).write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

// Builds sets "distro" (known), "bad" (malicious) and "tools" (suspicious)
// into data_dir with `refset build`.
inline void build_sets(const std::string& data_dir, const Contents& c) {
  auto catalog = refset::RefsetCatalog::open(data_dir);
  ASSERT_TRUE(catalog.ok()) << catalog.error().message();
  const fs::path src = fs::path(data_dir) / "sources";
  write_file(src / "distro/usr/bin/ls", c.ls);
  write_file(src / "distro/usr/bin/cat", c.cat);
  write_file(src / "bad/evil.bin", c.evil);
  write_file(src / "bad/dropper.bin", c.gone);
  write_file(src / "tools/hack.bin", c.hack);
  write_file(src / "tools/hack2.bin", c.hack_exact);
  for (auto [name, cls] : {std::pair{"distro", refset::ReferenceClass::known},
                           std::pair{"bad", refset::ReferenceClass::malicious},
                           std::pair{"tools", refset::ReferenceClass::suspicious}}) {
    refset::BuildRequest req;
    req.name = name;
    req.set_class = cls;
    req.paths = {(src / name).string()};
    auto r = refset::build_refset(*catalog, req);
    ASSERT_TRUE(r.ok()) << r.error().message();
  }
}

inline std::vector<refset::LoadedRefset> load_sets(const std::string& data_dir, std::vector<std::string> names) {
  std::vector<refset::LoadedRefset> out;
  auto catalog = refset::RefsetCatalog::open(data_dir);
  EXPECT_TRUE(catalog.ok());
  for (const auto& n : names) {
    auto s = catalog->load(n);
    EXPECT_TRUE(s.ok()) << s.error().message();
    if (s.ok()) out.push_back(std::move(s).value());
  }
  return out;
}

// Known content by path, as "distro" would answer it.
class FakePathIndex final : public PathIndex {
 public:
  std::map<std::string, std::vector<PathReference>> by_path;
  Result<std::vector<PathReference>> files_at_path(const std::string& path) const override {
    auto it = by_path.find(path);
    if (it == by_path.end()) return std::vector<PathReference>{};
    return it->second;
  }
};

inline digest::Sha256Digest sha256_of(const Bytes& b) {
  digest::MultiHasher h({digest::CryptoAlgorithm::sha256});
  h.update(b);
  return *h.finish().sha256;
}

inline FakePathIndex distro_paths(const Contents& c) {
  FakePathIndex idx;
  idx.by_path["/usr/bin/ls"] = {{"distro", "/usr/bin/ls", sha256_of(c.ls)}};
  idx.by_path["/usr/bin/cat"] = {{"distro", "/usr/bin/cat", sha256_of(c.cat)}};
  return idx;
}

}  // namespace hashsieve::scan::testing
