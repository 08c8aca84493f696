#include "hashsieve/digest/crypto.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "crypto_kernels.h"
#include "hashsieve/core/file.h"

namespace hashsieve::digest {
namespace {

constexpr char kHexLower[] = "0123456789abcdef";
constexpr char kHexUpper[] = "0123456789ABCDEF";

int hex_value(char ch) {
  if (ch >= '0' && ch <= '9') return ch - '0';
  if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
  return -1;
}

// Decodes exactly out.size() bytes from 2*out.size() hex digits.
Status decode_hex(std::string_view text, std::span<std::uint8_t> out, std::string_view what) {
  if (text.size() != 2 * out.size()) {
    return Error(ErrorCode::parse_error, std::string(what) + ": expected " +
                                             std::to_string(2 * out.size()) + " hex digits, got " +
                                             std::to_string(text.size()) + " characters");
  }
  for (std::size_t i = 0; i < out.size(); ++i) {
    const int hi = hex_value(text[2 * i]);
    const int lo = hex_value(text[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      const std::size_t at = hi < 0 ? 2 * i : 2 * i + 1;
      return Error(ErrorCode::parse_error,
                   std::string(what) + ": not a hex digit at offset " + std::to_string(at));
    }
    out[i] = static_cast<std::uint8_t>(hi << 4 | lo);
  }
  return {};
}

std::string_view digest_name(std::size_t bytes) {
  switch (bytes) {
    case 16: return "MD5 digest";
    case 20: return "SHA-1 digest";
    case 32: return "SHA-256 digest";
    default: return "digest";
  }
}

// An EVP failure here means a broken OpenSSL installation (e.g. a FIPS-only
// configuration without MD5); no caller could recover from it, and the
// constructor/update signatures have no error channel, so stop loudly.
[[noreturn]] void evp_failure(const char* what) {
  std::fprintf(stderr, "hashsieve: OpenSSL %s failed\n", what);
  std::abort();
}

struct EvpMdDeleter {
  void operator()(EVP_MD* md) const { EVP_MD_free(md); }
};
struct EvpCtxDeleter {
  void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};
using EvpMdPtr = std::unique_ptr<EVP_MD, EvpMdDeleter>;
using EvpCtxPtr = std::unique_ptr<EVP_MD_CTX, EvpCtxDeleter>;

// Fetched once: OpenSSL 3 otherwise does an implicit provider fetch (a locked
// hash-table lookup) on every EVP_DigestInit_ex with EVP_md5() & co, which
// shows up when hashing many small files.
const EVP_MD* fetched_md(CryptoAlgorithm algorithm) {
  static const struct Mds {
    EvpMdPtr md5{EVP_MD_fetch(nullptr, "MD5", nullptr)};
    EvpMdPtr sha1{EVP_MD_fetch(nullptr, "SHA1", nullptr)};
    EvpMdPtr sha256{EVP_MD_fetch(nullptr, "SHA256", nullptr)};
  } mds;
  const EVP_MD* md = nullptr;
  switch (algorithm) {
    case CryptoAlgorithm::md5: md = mds.md5.get(); break;
    case CryptoAlgorithm::sha1: md = mds.sha1.get(); break;
    case CryptoAlgorithm::sha256: md = mds.sha256.get(); break;
    case CryptoAlgorithm::crc32: break;
  }
  if (md == nullptr) evp_failure("EVP_MD_fetch");
  return md;
}

EvpCtxPtr new_evp_ctx(CryptoAlgorithm algorithm) {
  EvpCtxPtr ctx(EVP_MD_CTX_new());
  if (!ctx) evp_failure("EVP_MD_CTX_new");
  if (EVP_DigestInit_ex2(ctx.get(), fetched_md(algorithm), nullptr) != 1) {
    evp_failure("EVP_DigestInit_ex2");
  }
  return ctx;
}

template <typename Digest>
Digest finish_evp(EVP_MD_CTX* ctx) {
  std::array<std::uint8_t, EVP_MAX_MD_SIZE> out{};
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(ctx, out.data(), &len) != 1 || len != Digest::kBytes) {
    evp_failure("EVP_DigestFinal_ex");
  }
  // Re-arm for the next input with the same algorithm.
  if (EVP_DigestInit_ex2(ctx, nullptr, nullptr) != 1) evp_failure("EVP_DigestInit_ex2");
  return Digest::from_bytes(out);
}

template <typename Digest>
Digest digest_from_words(const std::uint32_t* words, bool big_endian) {
  std::array<std::uint8_t, Digest::kBytes> out{};
  for (std::size_t i = 0; i < Digest::kBytes / 4; ++i) {
    const std::uint32_t w = words[i];
    for (unsigned k = 0; k < 4; ++k) {
      const unsigned shift = big_endian ? 8 * (3 - k) : 8 * k;
      out[4 * i + k] = static_cast<std::uint8_t>(w >> shift);
    }
  }
  return Digest(out);
}

}  // namespace

// --- value types ------------------------------------------------------------

template <std::size_t N>
Result<HashDigest<N>> HashDigest<N>::parse_hex(std::string_view text) {
  HashDigest d;
  if (Status s = decode_hex(text, d.bytes_, digest_name(N)); !s) return std::move(s).error();
  return d;
}

template <std::size_t N>
std::string HashDigest<N>::hex() const {
  std::string out(2 * N, '\0');
  for (std::size_t i = 0; i < N; ++i) {
    out[2 * i] = kHexLower[bytes_[i] >> 4];
    out[2 * i + 1] = kHexLower[bytes_[i] & 0xF];
  }
  return out;
}

template class HashDigest<16>;
template class HashDigest<20>;
template class HashDigest<32>;

Result<Crc32> Crc32::parse_hex(std::string_view text) {
  std::array<std::uint8_t, 4> b{};
  if (Status s = decode_hex(text, b, "CRC32"); !s) return std::move(s).error();
  return Crc32(std::uint32_t{b[0]} << 24 | std::uint32_t{b[1]} << 16 | std::uint32_t{b[2]} << 8 |
               std::uint32_t{b[3]});
}

std::string Crc32::hex() const {
  std::string out(8, '\0');
  for (unsigned i = 0; i < 8; ++i) out[i] = kHexUpper[(value_ >> (28 - 4 * i)) & 0xF];
  return out;
}

std::string_view to_string(CryptoAlgorithm algorithm) {
  switch (algorithm) {
    case CryptoAlgorithm::md5: return "md5";
    case CryptoAlgorithm::sha1: return "sha1";
    case CryptoAlgorithm::sha256: return "sha256";
    case CryptoAlgorithm::crc32: return "crc32";
  }
  return "unknown";
}

bool crypto_fused_kernel_supported() { return detail::fused_supported(); }

// --- MultiHasher ------------------------------------------------------------

struct MultiHasher::Impl {
  CryptoSelection selection;
  CryptoBackend backend = CryptoBackend::evp;
  bool md5 = false, sha1 = false, sha256 = false, crc32 = false;
  std::uint64_t size = 0;
  std::uint32_t crc = 0;

  // EVP backend: one context per selected algorithm.
  EvpCtxPtr md5_ctx, sha1_ctx, sha256_ctx;

  // Fused backend: shared block buffer, since all three use 64-byte blocks.
  detail::FusedState state{};
  std::array<std::uint8_t, detail::kBlockBytes> buffer{};
  std::size_t buffered = 0;

  void update_fused(const std::uint8_t* p, std::size_t n) {
    if (buffered != 0) {
      const std::size_t take = std::min(n, detail::kBlockBytes - buffered);
      std::memcpy(buffer.data() + buffered, p, take);
      buffered += take;
      p += take;
      n -= take;
      if (buffered < detail::kBlockBytes) return;
      detail::fused_compress(state, md5, sha1, sha256, crc32, buffer.data(), 1);
      buffered = 0;
    }
    const std::size_t blocks = n / detail::kBlockBytes;
    if (blocks != 0) detail::fused_compress(state, md5, sha1, sha256, crc32, p, blocks);
    p += blocks * detail::kBlockBytes;
    n -= blocks * detail::kBlockBytes;
    std::memcpy(buffer.data(), p, n);
    buffered = n;
  }

  // MD-style padding: 0x80, zeros, 64-bit bit length. The three algorithms
  // differ only in the length's byte order (MD5 little-endian, SHA big-endian),
  // so the padded tail is compressed once for all except its last 8 bytes.
  void finish_fused(CryptoDigests& out) {
    if (crc32) out.crc32 = Crc32(detail::fused_crc32_finish(state, {buffer.data(), buffered}));
    std::array<std::uint8_t, 2 * detail::kBlockBytes> tail{};
    std::memcpy(tail.data(), buffer.data(), buffered);
    tail[buffered] = 0x80;
    const std::size_t tail_len =
        buffered + 1 + 8 <= detail::kBlockBytes ? detail::kBlockBytes : 2 * detail::kBlockBytes;
    if (tail_len == 2 * detail::kBlockBytes) {
      detail::fused_compress(state, md5, sha1, sha256, false, tail.data(), 1);
    }
    std::uint8_t* last = tail.data() + tail_len - detail::kBlockBytes;
    const std::uint64_t bits = size * 8;
    if (md5) {
      for (int i = 0; i < 8; ++i) last[56 + i] = static_cast<std::uint8_t>(bits >> (8 * i));
      detail::fused_compress(state, true, false, false, false, last, 1);
      out.md5 = digest_from_words<Md5Digest>(state.md5, false);
    }
    if (sha1 || sha256) {
      for (int i = 0; i < 8; ++i) last[56 + i] = static_cast<std::uint8_t>(bits >> (56 - 8 * i));
      detail::fused_compress(state, false, sha1, sha256, false, last, 1);
      if (sha1) out.sha1 = digest_from_words<Sha1Digest>(state.sha1, true);
      if (sha256) out.sha256 = digest_from_words<Sha256Digest>(state.sha256, true);
    }
    detail::fused_init(state);
    buffered = 0;
  }
};

MultiHasher::MultiHasher(CryptoSelection selection, CryptoBackend backend)
    : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.selection = selection;
  m.md5 = selection.contains(CryptoAlgorithm::md5);
  m.sha1 = selection.contains(CryptoAlgorithm::sha1);
  m.sha256 = selection.contains(CryptoAlgorithm::sha256);
  m.crc32 = selection.contains(CryptoAlgorithm::crc32);
  const int block_hashes = int{m.md5} + int{m.sha1} + int{m.sha256};
  // With a single SHA there is nothing to overlap and OpenSSL's SHA-NI code is
  // as fast as ours, so automatic keeps EVP. MD5 alone still takes the kernel:
  // its step ordering measured ~4% faster than OpenSSL 3.0's md5-x86_64 here.
  bool use_fused = false;
  switch (backend) {
    case CryptoBackend::automatic:
      use_fused = (block_hashes >= 2 || m.md5) && detail::fused_supported();
      break;
    case CryptoBackend::fused: use_fused = block_hashes >= 1 && detail::fused_supported(); break;
    case CryptoBackend::evp: break;
  }
  if (use_fused) {
    m.backend = CryptoBackend::fused;
    detail::fused_init(m.state);
  } else {
    m.backend = CryptoBackend::evp;
    if (m.md5) m.md5_ctx = new_evp_ctx(CryptoAlgorithm::md5);
    if (m.sha1) m.sha1_ctx = new_evp_ctx(CryptoAlgorithm::sha1);
    if (m.sha256) m.sha256_ctx = new_evp_ctx(CryptoAlgorithm::sha256);
  }
}

MultiHasher::MultiHasher(MultiHasher&&) noexcept = default;
MultiHasher& MultiHasher::operator=(MultiHasher&&) noexcept = default;
MultiHasher::~MultiHasher() = default;

CryptoSelection MultiHasher::selection() const { return impl_->selection; }
CryptoBackend MultiHasher::backend() const { return impl_->backend; }

void MultiHasher::update(std::span<const std::uint8_t> data) {
  Impl& m = *impl_;
  if (data.empty()) return;
  m.size += data.size();
  if (m.backend == CryptoBackend::fused) {  // folds the CRC in the same loop
    m.update_fused(data.data(), data.size());
    return;
  }
  if (m.crc32) m.crc = detail::crc32_update(m.crc, data);
  if (m.md5_ctx && EVP_DigestUpdate(m.md5_ctx.get(), data.data(), data.size()) != 1) {
    evp_failure("EVP_DigestUpdate");
  }
  if (m.sha1_ctx && EVP_DigestUpdate(m.sha1_ctx.get(), data.data(), data.size()) != 1) {
    evp_failure("EVP_DigestUpdate");
  }
  if (m.sha256_ctx && EVP_DigestUpdate(m.sha256_ctx.get(), data.data(), data.size()) != 1) {
    evp_failure("EVP_DigestUpdate");
  }
}

CryptoDigests MultiHasher::finish() {
  Impl& m = *impl_;
  CryptoDigests out;
  out.size = m.size;
  if (m.backend == CryptoBackend::fused) {
    m.finish_fused(out);
  } else {
    if (m.crc32) out.crc32 = Crc32(m.crc);
    if (m.md5_ctx) out.md5 = finish_evp<Md5Digest>(m.md5_ctx.get());
    if (m.sha1_ctx) out.sha1 = finish_evp<Sha1Digest>(m.sha1_ctx.get());
    if (m.sha256_ctx) out.sha256 = finish_evp<Sha256Digest>(m.sha256_ctx.get());
  }
  m.size = 0;
  m.crc = 0;
  return out;
}

// --- files --------------------------------------------------------------------

namespace {

// Reads are this large so the syscall cost is amortised, and small enough that
// the chunk stays in L2 while CRC32 and the block hashes both walk over it.
constexpr std::size_t kReadChunk = 128 * 1024;


}  // namespace

Result<CryptoDigests> hash_file(const std::string& path, CryptoSelection selection,
                                CryptoBackend backend) {
  auto opened = open_regular_file(path);
  if (!opened.ok()) return std::move(opened).error();
  const int fd = opened->fd.get();
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);

  MultiHasher hasher(selection, backend);
  std::vector<std::uint8_t> buf(kReadChunk);
  for (;;) {
    const ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_error(errno, path);
    }
    if (n == 0) break;
    hasher.update({buf.data(), static_cast<std::size_t>(n)});
  }
  return hasher.finish();
}

}  // namespace hashsieve::digest
