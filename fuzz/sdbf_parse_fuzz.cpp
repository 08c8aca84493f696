// libFuzzer target: SDBF text parsing, then comparison of what parsed.
// Parsing must never crash or over-allocate; every score must be -1..100 and
// the kernels must agree (scalar vs the CPU's fastest, plain vs prepared).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "../src/digest/sdbf_compare_internal.h"
#include "hashsieve/digest/sdbf.h"
#include "hashsieve/digest/sdbf_compare.h"

namespace {

using hashsieve::digest::sdbf_internal::CompareKernel;

void check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace d = hashsieve::digest;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto parsed = d::parse_sdbf_lines(text);
  if (!parsed) {
    check(parsed.error().code() == hashsieve::ErrorCode::parse_error);
    check(!parsed.error().message().empty());
    return 0;
  }
  const auto& digests = *parsed;
  // Pairs are quadratic; a handful of digests covers the comparison rules.
  constexpr std::size_t kMaxDigests = 8;
  const std::size_t n = digests.size() < kMaxDigests ? digests.size() : kMaxDigests;
  const auto prepared = d::prepare_sdbfs({digests.data(), n});
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t j = 0; j < n; ++j) {
      d::sdbf_internal::set_compare_kernel(CompareKernel::scalar);
      std::uint64_t count_scalar = 0;
      const int scalar = d::sdbf_score_counted(digests[i], digests[j], &count_scalar);
      d::sdbf_internal::set_compare_kernel(CompareKernel::automatic);
      std::uint64_t count_fast = 0;
      const int fast = d::sdbf_score_counted(digests[i], digests[j], &count_fast);
      const int fast_prepared = d::sdbf_score(prepared[i], prepared[j]);
      check(scalar >= -1 && scalar <= 100);
      check(fast == scalar && fast_prepared == scalar);
      check(count_fast == count_scalar);
    }
  }
  return 0;
}
