// open_tar_layer throughput: a 64 MiB layer tar (512 files of 128 KiB, half
// random bytes, half text-like) read entry by entry with every byte of
// content, uncompressed, gzip -6 and zstd -3, from memory. The rate counts
// uncompressed bytes; digests of the blob and the diff ID are included.
//   build/release/bench/layer_reader_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
#include <archive.h>
#include <archive_entry.h>
#include <benchmark/benchmark.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "hashsieve/image/layer_entries.h"

namespace {

using Bytes = std::vector<std::uint8_t>;

la_ssize_t append(archive*, void* data, const void* buf, size_t n) {
  auto* out = static_cast<Bytes*>(data);
  const auto* p = static_cast<const std::uint8_t*>(buf);
  out->insert(out->end(), p, p + n);
  return static_cast<la_ssize_t>(n);
}

Bytes make_tar() {
  std::mt19937_64 rng(1);
  Bytes out;
  archive* a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  archive_write_open(a, &out, nullptr, append, nullptr);
  std::string content(128 * 1024, '\0');
  const std::string words[] = {"lib", "usr", "share", "config ", "value=", "\n", "0x1f ", "error "};
  for (int i = 0; i < 512; ++i) {
    if (i % 2 == 0) {
      for (char& c : content) c = static_cast<char>(rng());
    } else {
      content.clear();
      while (content.size() < 128 * 1024) content += words[rng() % 8];
      content.resize(128 * 1024);
    }
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, ("usr/lib/f" + std::to_string(i)).c_str());
    archive_entry_set_mode(e, AE_IFREG | 0644);
    archive_entry_set_size(e, static_cast<la_int64_t>(content.size()));
    archive_write_header(a, e);
    archive_write_data(a, content.data(), content.size());
    archive_entry_free(e);
  }
  archive_write_close(a);
  archive_write_free(a);
  return out;
}

Bytes gzip(const Bytes& in) {
  z_stream z{};
  deflateInit2(&z, 6, Z_DEFLATED, 16 + MAX_WBITS, 9, Z_DEFAULT_STRATEGY);
  Bytes out(deflateBound(&z, static_cast<uLong>(in.size())));
  z.next_in = const_cast<Bytef*>(in.data());
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = out.data();
  z.avail_out = static_cast<uInt>(out.size());
  deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

Bytes zstd(const Bytes& in) {
  Bytes out(ZSTD_compressBound(in.size()));
  out.resize(ZSTD_compress(out.data(), out.size(), in.data(), in.size(), 3));
  return out;
}

class MemorySource final : public hashsieve::image::ByteSource {
 public:
  explicit MemorySource(const Bytes& b) : b_(b) {}
  hashsieve::Result<std::size_t> read(std::span<std::uint8_t> out) override {
    const std::size_t n = std::min(out.size(), b_.size() - pos_);
    if (n > 0) std::memcpy(out.data(), b_.data() + pos_, n);
    pos_ += n;
    return n;
  }

 private:
  const Bytes& b_;
  std::size_t pos_ = 0;
};

void BM_ReadLayer(benchmark::State& state) {
  static const Bytes tar = make_tar();
  static const Bytes blobs[] = {tar, gzip(tar), zstd(tar)};
  static const char* labels[] = {"uncompressed", "gzip-6", "zstd-3"};
  const Bytes& blob = blobs[state.range(0)];
  state.SetLabel(labels[state.range(0)]);
  std::vector<std::uint8_t> buf(64 * 1024);
  for (auto _ : state) {
    auto layer = hashsieve::image::open_tar_layer(std::make_unique<MemorySource>(blob), {}, {});
    if (!layer) {
      state.SkipWithError(layer.error().message().c_str());
      return;
    }
    for (;;) {
      auto e = (*layer)->next();
      if (!e || !*e) break;
      while (true) {
        auto n = (*layer)->read(buf);
        if (!n || *n == 0) break;
      }
    }
    if (!(*layer)->finish()) state.SkipWithError("finish failed");
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * tar.size()));
}
BENCHMARK(BM_ReadLayer)->Arg(0)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
