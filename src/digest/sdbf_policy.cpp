#include "hashsieve/digest/sdbf_policy.h"

#include <algorithm>
#include <cstdio>

#include "hashsieve/digest/sdbf_generator.h"

namespace hashsieve::digest {

SdbfPlan plan_sdbf(std::uint64_t size, const SdbfPolicy& policy) {
  const bool large = size >= kSdbfLargeFileBytes;
  if (!policy.block_kib) {
    if (large) return {SdbfPlanMode::block, kSdbfDefaultBlockBytes};
    return {SdbfPlanMode::stream, 0};
  }
  if (*policy.block_kib == 0) return {SdbfPlanMode::stream, 0};
  const int kib = std::clamp(*policy.block_kib, 1, 16);
  return {SdbfPlanMode::block, static_cast<std::uint32_t>(kib) * 1024u};
}

std::vector<SdbfSegment> segment_input(const std::string& name, std::uint64_t size,
                                       std::uint64_t segment_bytes, bool always_suffix) {
  auto suffixed = [&](std::uint64_t offset) {
    char buf[32];
    std::snprintf(buf, sizeof buf, ".%04lluM", static_cast<unsigned long long>(offset >> 20));
    return name + buf;
  };
  std::vector<SdbfSegment> out;
  if (segment_bytes == 0 || size <= segment_bytes + kSdbfMinInputBytes) {
    out.push_back({0, size, always_suffix ? suffixed(0) : name});
    return out;
  }
  for (std::uint64_t offset = 0; offset < size; offset += segment_bytes) {
    std::uint64_t length = std::min(segment_bytes, size - offset);
    const std::uint64_t rest = size - offset - length;
    // A final piece of at most 512 bytes would produce no digest of its own.
    if (rest > 0 && rest <= kSdbfMinInputBytes) length += rest;
    out.push_back({offset, length, suffixed(offset)});
    if (offset + length >= size) break;
  }
  return out;
}

std::vector<Sdbf> make_sdbf_digests(const std::string& name, std::span<const std::uint8_t> data,
                                    const SdbfPolicy& policy, unsigned threads) {
  std::vector<Sdbf> out;
  const SdbfPlan plan = plan_sdbf(data.size(), policy);
  if (plan.mode == SdbfPlanMode::stream) {
    if (auto d = make_stream_sdbf(name, data)) out.push_back(std::move(*d));
    return out;
  }
  for (const SdbfSegment& seg : segment_input(name, data.size(), policy.segment_bytes, false)) {
    if (auto d = make_block_sdbf(seg.name, data.subspan(seg.offset, seg.length), plan.block_size, threads)) {
      out.push_back(std::move(*d));
    }
  }
  return out;
}

}  // namespace hashsieve::digest
