// libFuzzer target: one image layer blob as open_tar_layer reads it (plain,
// gzip or zstd tar, detected by magic bytes). Hostile layers must give an
// error, never a crash or a hang; the limits are small so the target stays fast.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <vector>

#include "hashsieve/image/layer_entries.h"

namespace {

class SpanSource final : public hashsieve::image::ByteSource {
 public:
  explicit SpanSource(std::span<const std::uint8_t> data) : data_(data) {}
  hashsieve::Result<std::size_t> read(std::span<std::uint8_t> out) override {
    const std::size_t n = std::min(out.size(), data_.size() - pos_);
    if (n > 0) std::memcpy(out.data(), data_.data() + pos_, n);
    pos_ += n;
    return n;
  }

 private:
  std::span<const std::uint8_t> data_;
  std::size_t pos_ = 0;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  hashsieve::image::ArchiveLimits limits;
  limits.max_layer_bytes = 16 << 20;
  limits.max_entries = 10000;
  limits.max_file_bytes = 8 << 20;
  auto layer = hashsieve::image::open_tar_layer(std::make_unique<SpanSource>(std::span(data, size)), {}, limits);
  if (!layer) return 0;
  std::vector<std::uint8_t> buf(4096);
  for (;;) {
    auto entry = (*layer)->next();
    if (!entry || !*entry) break;
    for (;;) {
      auto n = (*layer)->read(buf);
      if (!n || *n == 0) break;
    }
  }
  (void)(*layer)->finish();
  return 0;
}
