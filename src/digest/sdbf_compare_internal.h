// Internals of the SDBF comparison, exposed for tests and benchmarks only.
#pragma once

#include <cstdint>

namespace hashsieve::digest::sdbf_internal {

// Filters with fewer elements than this are "sparse" (spec 8.3/8.4).
inline constexpr std::uint32_t kSparseElements = 16;
// EXPECTED is indexed by element counts 0..192.
inline constexpr std::uint32_t kExpectedSize = 193;

// EXPECTED[s1][s2] of spec 8.3: the number of bits two random filters holding
// s1 and s2 features share, computed once with pow() as the reference does.
std::uint32_t expected_common(std::uint32_t s1, std::uint32_t s2);

// The inner-loop implementations. Both give identical scores; tests run the
// golden comparisons through each one that the CPU supports.
enum class CompareKernel {
  automatic,  // the fastest one this CPU supports (the default)
  scalar,     // portable C++ (baseline x86-64 has no POPCNT instruction)
  popcnt,     // the same code compiled for POPCNT
  avx512,     // AVX-512F + VPOPCNTDQ stage-1 scan of 16 target filters at a time
};

bool kernel_supported(CompareKernel kernel);
// Process-wide override for tests and benchmarks; not for production use.
// Returns false (and changes nothing) if the CPU cannot run `kernel`.
bool set_compare_kernel(CompareKernel kernel);
CompareKernel compare_kernel();

}  // namespace hashsieve::digest::sdbf_internal
