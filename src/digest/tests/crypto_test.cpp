#include "hashsieve/digest/crypto.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <unordered_set>
#include <vector>

#include "../crypto_kernels.h"

namespace hashsieve::digest {
namespace {

std::span<const std::uint8_t> as_bytes(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

std::vector<std::uint8_t> random_bytes(std::size_t n, std::mt19937_64& rng) {
  std::vector<std::uint8_t> v(n);
  for (auto& b : v) b = static_cast<std::uint8_t>(rng());
  return v;
}

CryptoDigests hash_in_one(std::span<const std::uint8_t> data, CryptoSelection sel,
                          CryptoBackend backend) {
  MultiHasher h(sel, backend);
  h.update(data);
  return h.finish();
}

// Feeds `data` in random-sized pieces: mostly 0..3 blocks and a bit, so pieces
// start and end at every offset within a 64-byte block, and now and then a
// long run of whole blocks through the kernel's main loop.
CryptoDigests hash_in_pieces(std::span<const std::uint8_t> data, MultiHasher& h,
                             std::mt19937_64& rng) {
  std::size_t at = 0;
  while (at < data.size()) {
    const std::size_t limit = rng() % 8 == 0 ? 64 * 1024 : 200;
    const std::size_t n = std::min<std::size_t>(data.size() - at, rng() % limit);
    h.update(data.subspan(at, n));
    at += n;
  }
  return h.finish();
}

std::string hex_or_none(const auto& opt) { return opt ? opt->hex() : std::string("none"); }

const CryptoBackend kBackends[] = {CryptoBackend::evp, CryptoBackend::fused,
                                   CryptoBackend::automatic};

std::string_view backend_name(CryptoBackend b) {
  switch (b) {
    case CryptoBackend::evp: return "evp";
    case CryptoBackend::fused: return "fused";
    case CryptoBackend::automatic: return "automatic";
  }
  return "?";
}

std::string repeat(std::string_view s, std::size_t times) {
  std::string out;
  out.reserve(s.size() * times);
  for (std::size_t i = 0; i < times; ++i) out += s;
  return out;
}

const std::string kMsg448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
const std::string kMsg896 =
    "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmno"
    "ijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu";

// FIPS 180-2 appendix examples (and the empty message), both SHA variants.
TEST(Crypto, Fips180ShaVectors) {
  struct Case { std::string name, message, sha1, sha256; };
  const Case cases[] = {
      {"empty", "", "da39a3ee5e6b4b0d3255bfef95601890afd80709",
       "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
      {"abc", "abc", "a9993e364706816aba3e25717850c26c9cd0d89d",
       "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
      {"448-bit", kMsg448, "84983e441c3bd26ebaae4aa1f95129e5e54670f1",
       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
      {"896-bit", kMsg896, "a49b2446a02c645bf419f995b67091253a04a259",
       "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"},
      {"million a", std::string(1000000, 'a'), "34aa973cd4c4daa4f61eeb2bdbad27316534016f",
       "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"},
  };
  for (CryptoBackend backend : kBackends) {
    for (const auto& c : cases) {
      SCOPED_TRACE(std::string(backend_name(backend)) + " " + c.name);
      const CryptoDigests d = hash_in_one(as_bytes(c.message), CryptoSelection::all(), backend);
      EXPECT_EQ(hex_or_none(d.sha1), c.sha1);
      EXPECT_EQ(hex_or_none(d.sha256), c.sha256);
      EXPECT_EQ(d.size, c.message.size());
    }
  }
}

TEST(Crypto, Rfc1321Md5Vectors) {
  struct Case { std::string message, md5; };
  const Case cases[] = {
      {"", "d41d8cd98f00b204e9800998ecf8427e"},
      {"a", "0cc175b9c0f1b6a831c399e269772661"},
      {"abc", "900150983cd24fb0d6963f7d28e17f72"},
      {"message digest", "f96b697d7cb7938d525a2f31aaf161d0"},
      {"abcdefghijklmnopqrstuvwxyz", "c3fcd3d76192e4007dfb496cca67e13b"},
      {"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
       "d174ab98d277d9f5a5611c2c9f419d9f"},
      {repeat("1234567890", 8), "57edf4a22be3c955ac49da2e2107b67a"},
  };
  for (CryptoBackend backend : kBackends) {
    for (const auto& c : cases) {
      SCOPED_TRACE(std::string(backend_name(backend)) + " '" + c.message + "'");
      // md5 with sha256 so `automatic` also exercises the fused kernel.
      const CryptoSelection sel{CryptoAlgorithm::md5, CryptoAlgorithm::sha256};
      EXPECT_EQ(hex_or_none(hash_in_one(as_bytes(c.message), sel, backend).md5), c.md5);
    }
  }
}

TEST(Crypto, Crc32CheckValue) {
  struct Case { std::string message; std::string crc; };
  // "123456789" is the catalogued check value; the others cross the 64-byte
  // threshold of the folding path and its 16-byte tail handling.
  const Case cases[] = {{"", "00000000"}, {"123456789", "CBF43926"}};
  for (const auto& c : cases) {
    SCOPED_TRACE(c.message);
    for (CryptoBackend backend : kBackends) {
      const CryptoDigests d = hash_in_one(as_bytes(c.message), CryptoSelection::all(), backend);
      EXPECT_EQ(hex_or_none(d.crc32), c.crc);
    }
    EXPECT_EQ(Crc32(detail::crc32_update_portable(0, as_bytes(c.message))).hex(), c.crc);
  }
}

TEST(Crypto, FusedKernelIsUsedWhenSupported) {
  struct Case { CryptoSelection sel; CryptoBackend requested, expected_if_supported; };
  const CryptoSelection all = CryptoSelection::all();
  const CryptoSelection md5_only{CryptoAlgorithm::md5};
  const CryptoSelection crc_only{CryptoAlgorithm::crc32};
  const CryptoSelection sha_pair{CryptoAlgorithm::sha1, CryptoAlgorithm::sha256};
  const Case cases[] = {
      {all, CryptoBackend::automatic, CryptoBackend::fused},
      {sha_pair, CryptoBackend::automatic, CryptoBackend::fused},
      {md5_only, CryptoBackend::automatic, CryptoBackend::fused},
      {CryptoSelection{CryptoAlgorithm::sha1}, CryptoBackend::automatic, CryptoBackend::evp},
      {CryptoSelection{CryptoAlgorithm::sha256, CryptoAlgorithm::crc32}, CryptoBackend::automatic,
       CryptoBackend::evp},
      {md5_only, CryptoBackend::fused, CryptoBackend::fused},
      {crc_only, CryptoBackend::fused, CryptoBackend::evp},
      {all, CryptoBackend::evp, CryptoBackend::evp},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(std::to_string(c.sel.mask()) + " " + std::string(backend_name(c.requested)));
    const CryptoBackend expected =
        crypto_fused_kernel_supported() ? c.expected_if_supported : CryptoBackend::evp;
    EXPECT_EQ(MultiHasher(c.sel, c.requested).backend(), expected);
  }
}

// Fused kernel (and PCLMUL CRC) against the EVP (and zlib) reference, for every
// selection, every length 0..300 and one long odd length, fed in random pieces.
TEST(Crypto, FusedMatchesEvpForEverySelectionAndLength) {
  if (!crypto_fused_kernel_supported()) GTEST_SKIP() << "CPU lacks SHA-NI";
  std::mt19937_64 rng(20261122);
  std::vector<std::size_t> lengths;
  for (std::size_t n = 0; n <= 300; ++n) lengths.push_back(n);
  lengths.push_back((1u << 20) + 7);
  for (unsigned mask = 0; mask < 16; ++mask) {
    const CryptoSelection sel = CryptoSelection::from_mask(mask);
    MultiHasher fused(sel, CryptoBackend::fused);  // reused: finish() must reset it
    MultiHasher evp_pieces(sel, CryptoBackend::evp);
    for (std::size_t n : lengths) {
      SCOPED_TRACE("selection " + std::to_string(mask) + " length " + std::to_string(n));
      const std::vector<std::uint8_t> data = random_bytes(n, rng);
      const CryptoDigests reference = hash_in_one(data, sel, CryptoBackend::evp);
      EXPECT_EQ(reference.md5.has_value(), sel.contains(CryptoAlgorithm::md5));
      EXPECT_EQ(reference.sha1.has_value(), sel.contains(CryptoAlgorithm::sha1));
      EXPECT_EQ(reference.sha256.has_value(), sel.contains(CryptoAlgorithm::sha256));
      EXPECT_EQ(reference.crc32.has_value(), sel.contains(CryptoAlgorithm::crc32));
      const CryptoDigests got = hash_in_pieces(data, fused, rng);
      EXPECT_EQ(hex_or_none(got.md5), hex_or_none(reference.md5));
      EXPECT_EQ(hex_or_none(got.sha1), hex_or_none(reference.sha1));
      EXPECT_EQ(hex_or_none(got.sha256), hex_or_none(reference.sha256));
      EXPECT_EQ(hex_or_none(got.crc32), hex_or_none(reference.crc32));
      EXPECT_EQ(got, reference);
      EXPECT_EQ(hash_in_pieces(data, evp_pieces, rng), reference);
    }
  }
}

// The CRC paths separately: folding vs zlib, one-shot and continued.
TEST(Crypto, Crc32ClmulMatchesZlib) {
  if (!detail::crc32_clmul_supported()) GTEST_SKIP() << "CPU lacks PCLMULQDQ";
  std::mt19937_64 rng(7);
  std::vector<std::size_t> lengths;
  for (std::size_t n = 0; n <= 300; ++n) lengths.push_back(n);
  lengths.push_back((1u << 20) + 7);
  for (std::size_t n : lengths) {
    SCOPED_TRACE(n);
    const std::vector<std::uint8_t> data = random_bytes(n, rng);
    const std::uint32_t reference = detail::crc32_update_portable(0, data);
    EXPECT_EQ(detail::crc32_update_clmul(0, data), reference);
    const std::size_t split = n == 0 ? 0 : rng() % n;
    const std::span<const std::uint8_t> all(data);
    const std::uint32_t first = detail::crc32_update_clmul(0, all.first(split));
    EXPECT_EQ(detail::crc32_update_clmul(first, all.subspan(split)), reference);
  }
}

TEST(Crypto, ParseHexDigests) {
  struct Case { std::string text; bool ok; };
  const std::string md5 = "d41d8cd98f00b204e9800998ecf8427e";
  const Case md5_cases[] = {
      {md5, true},
      {"D41D8CD98F00B204E9800998ECF8427E", true},
      {"d41D8cd98f00B204e9800998ecf8427E", true},
      {md5.substr(1), false},        // 31 digits
      {md5 + "0", false},            // 33 digits
      {"", false},
      {"g41d8cd98f00b204e9800998ecf8427e", false},
      {"d41d8cd98f00b204e9800998ecf8427 ", false},
      {"0xd41d8cd98f00b204e9800998ecf842", false},
      {"d41d8cd98f00b204-9800998ecf8427e", false},
  };
  for (const auto& c : md5_cases) {
    SCOPED_TRACE(c.text);
    const Result<Md5Digest> r = Md5Digest::parse_hex(c.text);
    ASSERT_EQ(r.ok(), c.ok);
    if (c.ok) {
      EXPECT_EQ(r->hex(), md5);  // canonical lowercase
      EXPECT_EQ(r->bytes()[0], 0xd4);
      EXPECT_EQ(r->bytes()[15], 0x7e);
    } else {
      EXPECT_EQ(r.error().code(), ErrorCode::parse_error);
    }
  }
  // Each width rejects the others' lengths.
  const std::string sha1 = "da39a3ee5e6b4b0d3255bfef95601890afd80709";
  const std::string sha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
  EXPECT_TRUE(Sha1Digest::parse_hex(sha1).ok());
  EXPECT_FALSE(Sha1Digest::parse_hex(md5).ok());
  EXPECT_FALSE(Sha1Digest::parse_hex(sha256).ok());
  EXPECT_TRUE(Sha256Digest::parse_hex(sha256).ok());
  EXPECT_FALSE(Sha256Digest::parse_hex(sha1).ok());
  EXPECT_EQ(Sha256Digest::parse_hex(sha256)->hex(), sha256);
}

TEST(Crypto, ParseHexCrc32) {
  struct Case { std::string text; bool ok; std::uint32_t value; };
  const Case cases[] = {
      {"CBF43926", true, 0xCBF43926}, {"cbf43926", true, 0xCBF43926}, {"00000001", true, 1},
      {"CBF4392", false, 0},          {"CBF439260", false, 0},        {"CBF4392G", false, 0},
      {"", false, 0},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.text);
    const Result<Crc32> r = Crc32::parse_hex(c.text);
    ASSERT_EQ(r.ok(), c.ok);
    if (c.ok) {
      EXPECT_EQ(r->value(), c.value);
      EXPECT_EQ(Crc32::parse_hex(r->hex())->value(), c.value);
    } else {
      EXPECT_EQ(r.error().code(), ErrorCode::parse_error);
    }
  }
  EXPECT_EQ(Crc32(0x0000ABCD).hex(), "0000ABCD");  // zero-padded, uppercase
}

TEST(Crypto, DigestsOrderAndHashAsKeys) {
  const Sha1Digest lo = *Sha1Digest::parse_hex("00ffffffffffffffffffffffffffffffffffffff");
  const Sha1Digest hi = *Sha1Digest::parse_hex("0100000000000000000000000000000000000000");
  EXPECT_LT(lo, hi);  // byte-wise, most significant first
  EXPECT_NE(lo, hi);
  std::unordered_set<Sha1Digest> set{lo, hi, lo};
  EXPECT_EQ(set.size(), 2u);
  EXPECT_EQ(set.count(hi), 1u);
  std::unordered_set<Crc32> crcs{Crc32(1), Crc32(2), Crc32(1)};
  EXPECT_EQ(crcs.size(), 2u);
  EXPECT_LT(Crc32(1), Crc32(2));
}

TEST(Crypto, SelectionSet) {
  const CryptoSelection all = CryptoSelection::all();
  EXPECT_EQ(all.count(), 4);
  EXPECT_TRUE(CryptoSelection::none().empty());
  const CryptoSelection s = CryptoSelection{CryptoAlgorithm::sha1}.with(CryptoAlgorithm::crc32);
  EXPECT_TRUE(s.contains(CryptoAlgorithm::sha1));
  EXPECT_TRUE(s.contains(CryptoAlgorithm::crc32));
  EXPECT_FALSE(s.contains(CryptoAlgorithm::md5));
  EXPECT_EQ((s | CryptoSelection{CryptoAlgorithm::md5, CryptoAlgorithm::sha256}), all);
  EXPECT_EQ(CryptoSelection::from_mask(all.mask()), all);
}

class TempDir {
 public:
  TempDir() {
    std::string tmpl =
        (std::filesystem::temp_directory_path() / "hashsieve-crypto-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST(Crypto, HashFileReadsWholeFile) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  std::mt19937_64 rng(99);
  // Larger than one read chunk and not a multiple of anything relevant.
  struct Case { std::string name; std::size_t size; };
  const Case cases[] = {{"empty", 0}, {"small", 100}, {"multi-chunk", 300 * 1024 + 13}};
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const std::vector<std::uint8_t> data = random_bytes(c.size, rng);
    const std::string path = dir.path() + "/" + c.name;
    std::ofstream(path, std::ios::binary)
        .write(reinterpret_cast<const char*>(data.data()),
               static_cast<std::streamsize>(data.size()));
    for (CryptoBackend backend : kBackends) {
      const Result<CryptoDigests> r = hash_file(path, CryptoSelection::all(), backend);
      ASSERT_TRUE(r.ok()) << r.error().message();
      EXPECT_EQ(*r, hash_in_one(data, CryptoSelection::all(), CryptoBackend::evp));
      EXPECT_EQ(r->size, c.size);
    }
  }
}

TEST(Crypto, HashFileErrorsNameThePath) {
  TempDir dir;
  const std::string unreadable = dir.path() + "/unreadable";
  std::ofstream(unreadable) << "x";
  ::chmod(unreadable.c_str(), 0);
  struct Case { std::string path; ErrorCode code; };
  std::vector<Case> cases = {{dir.path() + "/missing", ErrorCode::not_found},
                             {dir.path(), ErrorCode::invalid_argument},
                             {dir.path() + "/missing/child", ErrorCode::not_found},
                             {"/dev/null", ErrorCode::unsupported}};
  // root reads anything regardless of mode bits.
  if (::geteuid() != 0) cases.push_back({unreadable, ErrorCode::permission_denied});
  for (const auto& c : cases) {
    SCOPED_TRACE(c.path);
    const Result<CryptoDigests> r = hash_file(c.path, CryptoSelection::all());
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code(), c.code);
    EXPECT_NE(r.error().message().find(c.path), std::string::npos) << r.error().message();
  }
}

}  // namespace
}  // namespace hashsieve::digest
