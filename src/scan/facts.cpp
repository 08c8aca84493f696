#include "hashsieve/scan/facts.h"

#include <cstdio>

#include "hashsieve/digest/ssdeep.h"
#include "hashsieve/refset/similarity_index.h"

namespace hashsieve::scan {
namespace {

store::FactKind to_fact_kind(image::EntryKind k) {
  switch (k) {
    case image::EntryKind::regular: return store::FactKind::regular;
    case image::EntryKind::directory: return store::FactKind::directory;
    case image::EntryKind::symlink: return store::FactKind::symlink;
    case image::EntryKind::hardlink: return store::FactKind::hardlink;
    case image::EntryKind::whiteout: return store::FactKind::whiteout;
    case image::EntryKind::opaque_whiteout: return store::FactKind::opaque_whiteout;
    case image::EntryKind::device: return store::FactKind::device;
  }
  return store::FactKind::regular;
}

image::EntryKind to_entry_kind(store::FactKind k) {
  switch (k) {
    case store::FactKind::regular: return image::EntryKind::regular;
    case store::FactKind::directory: return image::EntryKind::directory;
    case store::FactKind::symlink: return image::EntryKind::symlink;
    case store::FactKind::hardlink: return image::EntryKind::hardlink;
    case store::FactKind::whiteout: return image::EntryKind::whiteout;
    case store::FactKind::opaque_whiteout: return image::EntryKind::opaque_whiteout;
    case store::FactKind::device: return image::EntryKind::device;
  }
  return image::EntryKind::regular;
}

template <typename D>
Status decode_hex(const std::string& text, std::optional<D>& out, const char* field) {
  if (text.empty()) return {};
  auto d = D::parse_hex(text);
  if (!d.ok()) return std::move(d).error().with_context(field);
  out = *d;
  return {};
}

// "blocksize:hash1:hash2": a decimal block size and two base64 runs.
bool plausible_ssdeep(const std::string& s) {
  const auto a = s.find(':');
  if (a == 0 || a == std::string::npos) return false;
  for (std::size_t i = 0; i < a; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
  }
  const auto b = s.find(':', a + 1);
  if (b == std::string::npos || s.find(':', b + 1) != std::string::npos) return false;
  for (char c : s) {
    if (c == '\n' || c == '\0') return false;
  }
  return true;
}

}  // namespace

std::string hasher_versions() {
  std::string out;
  out.append(digest::kCryptoHasherName).append("/").append(digest::kCryptoHasherVersion);
  out.append(";").append(digest::kSdbfHasherName).append("/").append(digest::kSdbfHasherVersion);
  out.append(";").append(digest::kTlshHasherName).append("/").append(digest::kTlshHasherVersion);
  out.append(";").append(digest::kSsdeepHasherName).append("/").append(digest::kSsdeepHasherVersion);
  // The sampling parameters define the keys, so they are their version.
  out.append(";content-keys/")
      .append(std::to_string(refset::kContentKeysTarget))
      .append(".")
      .append(std::to_string(refset::kContentMinShift))
      .append(".")
      .append(std::to_string(refset::kContentMaxShift));
  out.append(";").append(refset::kRodataDigestsVersion);
  out.append(";").append(kFactsFormatVersion);
  return out;
}

store::FileFacts encode_facts(const FileRecord& r) {
  store::FileFacts f;
  f.path = r.path;
  f.kind = to_fact_kind(r.kind);
  f.size = r.size;
  f.mode = r.mode;
  f.link_target = r.link_target;
  if (r.crypto.md5) f.md5 = r.crypto.md5->hex();
  if (r.crypto.sha1) f.sha1 = r.crypto.sha1->hex();
  if (r.crypto.sha256) f.sha256 = r.crypto.sha256->hex();
  if (r.crypto.crc32) f.crc32 = r.crypto.crc32->hex();
  for (const auto& s : r.sdbf) f.sdbf += digest::format_sdbf(s);
  if (r.tlsh) f.tlsh = r.tlsh->to_string();
  if (r.ssdeep) f.ssdeep = *r.ssdeep;
  f.content_keys.reserve(r.content_keys.size() * 8);
  for (std::uint32_t k : r.content_keys) {
    char buf[9];
    std::snprintf(buf, sizeof buf, "%08x", k);
    f.content_keys.append(buf, 8);
  }
  f.similarity_computed = r.similarity_computed;
  if (r.rodata) {
    f.rodata_size = r.rodata->size;
    for (const auto& s : r.rodata->sdbf) f.rodata_sdbf += digest::format_sdbf(s);
    if (r.rodata->tlsh) f.rodata_tlsh = r.rodata->tlsh->to_string();
    if (r.rodata->ssdeep) f.rodata_ssdeep = *r.rodata->ssdeep;
  }
  return f;
}

Result<FileRecord> decode_facts(const store::FileFacts& f) {
  FileRecord r;
  r.path = f.path;
  r.kind = to_entry_kind(f.kind);
  r.size = f.size;
  r.mode = f.mode;
  r.link_target = f.link_target;
  auto fail = [&](Error e) { return std::move(e).with_context("cached facts of " + f.path); };
  if (auto st = decode_hex(f.md5, r.crypto.md5, "md5"); !st.ok()) return fail(std::move(st).error());
  if (auto st = decode_hex(f.sha1, r.crypto.sha1, "sha1"); !st.ok()) return fail(std::move(st).error());
  if (auto st = decode_hex(f.sha256, r.crypto.sha256, "sha256"); !st.ok()) return fail(std::move(st).error());
  if (auto st = decode_hex(f.crc32, r.crypto.crc32, "crc32"); !st.ok()) return fail(std::move(st).error());
  r.crypto.size = f.size;
  if (r.kind == image::EntryKind::regular && (!r.crypto.md5 || !r.crypto.sha1 || !r.crypto.sha256 || !r.crypto.crc32)) {
    return fail(Error(ErrorCode::parse_error, "a regular file without every crypto digest"));
  }
  if (!f.sdbf.empty()) {
    auto parsed = digest::parse_sdbf_lines(f.sdbf);
    if (!parsed.ok()) return fail(std::move(parsed).error().with_context("sdbf"));
    r.sdbf = std::move(parsed).value();
  }
  if (!f.tlsh.empty()) {
    auto t = digest::TlshDigest::parse(f.tlsh);
    if (!t.ok()) return fail(std::move(t).error().with_context("tlsh"));
    r.tlsh = *t;
  }
  if (!f.ssdeep.empty()) {
    if (!plausible_ssdeep(f.ssdeep)) return fail(Error(ErrorCode::parse_error, "ssdeep: malformed digest"));
    r.ssdeep = f.ssdeep;
  }
  if (f.content_keys.size() % 8 != 0) return fail(Error(ErrorCode::parse_error, "content_keys: length not a multiple of 8"));
  r.content_keys.reserve(f.content_keys.size() / 8);
  for (std::size_t i = 0; i < f.content_keys.size(); i += 8) {
    std::uint32_t k = 0;
    for (std::size_t j = i; j < i + 8; ++j) {
      const char c = f.content_keys[j];
      int v;
      if (c >= '0' && c <= '9') v = c - '0';
      else if (c >= 'a' && c <= 'f') v = c - 'a' + 10;
      else return fail(Error(ErrorCode::parse_error, "content_keys: not lowercase hex"));
      k = (k << 4) | static_cast<std::uint32_t>(v);
    }
    if (!r.content_keys.empty() && k <= r.content_keys.back()) {
      return fail(Error(ErrorCode::parse_error, "content_keys: not sorted and unique"));
    }
    r.content_keys.push_back(k);
  }
  r.similarity_computed = f.similarity_computed;
  if (f.rodata_size) {
    refset::SectionDigests d;
    d.size = *f.rodata_size;
    if (!f.rodata_sdbf.empty()) {
      auto parsed = digest::parse_sdbf_lines(f.rodata_sdbf);
      if (!parsed.ok()) return fail(std::move(parsed).error().with_context("rodata_sdbf"));
      d.sdbf = std::move(parsed).value();
    }
    if (!f.rodata_tlsh.empty()) {
      auto t = digest::TlshDigest::parse(f.rodata_tlsh);
      if (!t.ok()) return fail(std::move(t).error().with_context("rodata_tlsh"));
      d.tlsh = *t;
    }
    if (!f.rodata_ssdeep.empty()) {
      if (!plausible_ssdeep(f.rodata_ssdeep)) return fail(Error(ErrorCode::parse_error, "rodata_ssdeep: malformed digest"));
      d.ssdeep = f.rodata_ssdeep;
    }
    r.rodata = std::move(d);
  } else if (!f.rodata_sdbf.empty() || !f.rodata_tlsh.empty() || !f.rodata_ssdeep.empty()) {
    return fail(Error(ErrorCode::parse_error, "rodata digests without rodata_size"));
  }
  return r;
}

}  // namespace hashsieve::scan
