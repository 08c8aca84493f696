// CPU feature checks the digest kernels dispatch on. CPUID is read directly
// because clang 14's __builtin_cpu_supports does not know "sha" (and the fuzz
// build uses clang).
#pragma once

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

namespace hashsieve::digest {

// SHA-NI plus the SSE levels its kernels are compiled for.
inline bool cpu_has_sha_ni() {
#if defined(__x86_64__) || defined(__i386__)
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (__get_cpuid(1, &eax, &ebx, &ecx, &edx) == 0) return false;
  const bool sse = (ecx & bit_SSSE3) != 0 && (ecx & bit_SSE4_1) != 0;
  if (__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx) == 0) return false;
  return sse && (ebx & bit_SHA) != 0;
#else
  return false;
#endif
}

}  // namespace hashsieve::digest
