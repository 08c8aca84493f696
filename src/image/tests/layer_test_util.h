// Test helpers for the layer readers: tars built in memory with libarchive,
// gzip/zstd compression, an in-memory ByteSource and a full-layer reader.
#pragma once

#include <archive.h>
#include <archive_entry.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include "hashsieve/digest/crypto.h"
#include "hashsieve/image/layer_entries.h"

namespace hashsieve::image::testing {

using Bytes = std::vector<std::uint8_t>;

inline Bytes to_bytes(std::string_view s) { return Bytes(s.begin(), s.end()); }

// Builds a pax tar in memory. Paths and link targets are written as given,
// so hostile names ("../x", "/abs") can be produced.
class TarBuilder {
 public:
  TarBuilder& file(const std::string& path, const std::string& content, unsigned mode = 0644) {
    entries_.push_back({path, AE_IFREG, mode, content, "", ""});
    return *this;
  }
  TarBuilder& dir(const std::string& path, unsigned mode = 0755) {
    entries_.push_back({path, AE_IFDIR, mode, "", "", ""});
    return *this;
  }
  TarBuilder& symlink(const std::string& path, const std::string& target) {
    entries_.push_back({path, AE_IFLNK, 0777, "", target, ""});
    return *this;
  }
  TarBuilder& hardlink(const std::string& path, const std::string& target) {
    entries_.push_back({path, AE_IFREG, 0644, "", "", target});
    return *this;
  }
  TarBuilder& node(const std::string& path, unsigned type) {
    entries_.push_back({path, type, 0600, "", "", ""});
    return *this;
  }
  Bytes build() const {
    Bytes out;
    archive* a = archive_write_new();
    archive_write_set_format_pax_restricted(a);
    archive_write_set_bytes_in_last_block(a, 1);
    archive_write_open(a, &out, nullptr, &TarBuilder::write_cb, nullptr);
    for (const auto& e : entries_) {
      archive_entry* entry = archive_entry_new();
      archive_entry_set_pathname(entry, e.path.c_str());
      archive_entry_set_mode(entry, e.type | e.mode);
      archive_entry_set_mtime(entry, 1700000000, 0);
      if (!e.hardlink.empty()) {
        archive_entry_set_hardlink(entry, e.hardlink.c_str());
        archive_entry_set_size(entry, 0);
      } else if (e.type == AE_IFLNK) {
        archive_entry_set_symlink(entry, e.symlink.c_str());
      } else if (e.type == AE_IFREG) {
        archive_entry_set_size(entry, static_cast<la_int64_t>(e.content.size()));
      }
      if (e.type == AE_IFCHR || e.type == AE_IFBLK) archive_entry_set_rdev(entry, 0x0103);
      archive_write_header(a, entry);
      if (e.type == AE_IFREG && !e.content.empty()) archive_write_data(a, e.content.data(), e.content.size());
      archive_entry_free(entry);
    }
    archive_write_close(a);
    archive_write_free(a);
    return out;
  }

 private:
  struct Entry {
    std::string path;
    unsigned type;
    unsigned mode;
    std::string content;
    std::string symlink;
    std::string hardlink;
  };
  static la_ssize_t write_cb(archive*, void* data, const void* buf, size_t n) {
    auto* out = static_cast<Bytes*>(data);
    const auto* p = static_cast<const std::uint8_t*>(buf);
    out->insert(out->end(), p, p + n);
    return static_cast<la_ssize_t>(n);
  }
  std::vector<Entry> entries_;
};

// A hand-made ustar header for a regular file declaring `size` bytes (in
// base-256, so any size fits) followed by no data: a hostile header.
inline Bytes ustar_header(const std::string& name, std::uint64_t size) {
  Bytes h(512, 0);
  std::memcpy(h.data(), name.data(), std::min<std::size_t>(name.size(), 100));
  std::memcpy(h.data() + 100, "0000644", 7);
  std::memcpy(h.data() + 108, "0000000", 7);
  std::memcpy(h.data() + 116, "0000000", 7);
  h[124] = 0x80;  // base-256 size
  for (int i = 0; i < 8; ++i) h[135 - i] = static_cast<std::uint8_t>(size >> (8 * i));
  std::memcpy(h.data() + 136, "00000000000", 11);
  h[156] = '0';
  std::memcpy(h.data() + 257, "ustar", 6);
  std::memcpy(h.data() + 263, "00", 2);
  std::memset(h.data() + 148, ' ', 8);
  unsigned sum = 0;
  for (std::uint8_t c : h) sum += c;
  std::snprintf(reinterpret_cast<char*>(h.data() + 148), 8, "%06o", sum);
  return h;
}

inline Bytes gzip(const Bytes& in, int level = 6) {
  z_stream z{};
  deflateInit2(&z, level, Z_DEFLATED, 16 + MAX_WBITS, 9, Z_DEFAULT_STRATEGY);
  Bytes out(deflateBound(&z, static_cast<uLong>(in.size())) + 64);
  z.next_in = const_cast<Bytef*>(in.data());
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = out.data();
  z.avail_out = static_cast<uInt>(out.size());
  deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

inline Bytes zstd(const Bytes& in, int level = 3) {
  Bytes out(ZSTD_compressBound(in.size()));
  const std::size_t n = ZSTD_compress(out.data(), out.size(), in.data(), in.size(), level);
  out.resize(n);
  return out;
}

inline std::string sha256(const Bytes& b) {
  digest::MultiHasher h{digest::CryptoSelection{digest::CryptoAlgorithm::sha256}};
  h.update(b);
  return "sha256:" + h.finish().sha256->hex();
}

// Serves bytes in chunks of at most `chunk` (small chunks exercise refills).
class MemorySource final : public ByteSource {
 public:
  explicit MemorySource(Bytes bytes, std::size_t chunk = 1 << 20) : bytes_(std::move(bytes)), chunk_(chunk) {}
  Result<std::size_t> read(std::span<std::uint8_t> out) override {
    const std::size_t n = std::min({out.size(), chunk_, bytes_.size() - pos_});
    if (n > 0) std::memcpy(out.data(), bytes_.data() + pos_, n);
    pos_ += n;
    return n;
  }

 private:
  Bytes bytes_;
  std::size_t chunk_;
  std::size_t pos_ = 0;
};

struct ReadEntry {
  LayerEntry entry;
  std::string content;
};

struct LayerReadResult {
  std::vector<ReadEntry> entries;
  Status status;  // first error of next/read/finish
};

// Reads every entry (and every regular file's content), then finish().
inline LayerReadResult read_layer(LayerEntries& layer, std::size_t read_chunk = 4096) {
  LayerReadResult r;
  std::vector<std::uint8_t> buf(read_chunk);
  for (;;) {
    auto e = layer.next();
    if (!e) {
      r.status = std::move(e).error();
      return r;
    }
    if (!*e) break;
    ReadEntry re{std::move(**e), {}};
    for (;;) {
      auto n = layer.read(buf);
      if (!n) {
        r.status = std::move(n).error();
        return r;
      }
      if (*n == 0) break;
      re.content.append(reinterpret_cast<const char*>(buf.data()), *n);
    }
    r.entries.push_back(std::move(re));
  }
  r.status = layer.finish();
  return r;
}

}  // namespace hashsieve::image::testing
