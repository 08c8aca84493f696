// The streaming layer reader: ByteSource -> (gzip | zstd | nothing) -> tar.
//
// Decompression happens here, in front of libarchive, rather than in a
// libarchive filter: the diff ID is the digest of the uncompressed tar
// stream, which libarchive never exposes (it hands out entries), and doing it
// ourselves lets the ratio and size limits count exactly the bytes produced.
// libarchive then reads format tar only, with no filter, from our buffer.
// gzip is inflated by ISA-L's igzip, 2-3x zlib's speed: inflate was half the
// CPU time of a scan of a gzip image (docs/adr/0011-fast-inflate-and-large-file-sieve.md).
#include "tar_layer.h"

#include <archive.h>
#include <archive_entry.h>
#include <isa-l/igzip_lib.h>
#include <zstd.h>

#include <algorithm>
#include <cerrno>
#include <array>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <system_error>
#include <thread>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "hashsieve/digest/crypto.h"
#include "hashsieve/image/layer_entries.h"

namespace hashsieve::image {

Result<std::string> normalize_entry_path(std::string_view raw) {
  std::vector<std::string_view> parts;
  std::size_t pos = 0;
  while (pos <= raw.size()) {
    std::size_t slash = raw.find('/', pos);
    if (slash == std::string_view::npos) slash = raw.size();
    std::string_view part = raw.substr(pos, slash - pos);
    pos = slash + 1;
    if (part.empty() || part == ".") continue;
    if (part == "..") {
      if (parts.empty()) {
        return Error(ErrorCode::invalid_argument,
                     "path '" + std::string(raw) + "' escapes the image root");
      }
      parts.pop_back();
      continue;
    }
    parts.push_back(part);
  }
  std::string out;
  for (std::string_view part : parts) {
    if (!out.empty()) out += '/';
    out += part;
  }
  return out;
}

SplitPath split_path(std::string_view path) {
  const std::size_t slash = path.rfind('/');
  if (slash == std::string_view::npos) return {std::string_view(), path};
  return {path.substr(0, slash), path.substr(slash + 1)};
}

std::string join_path(std::string_view parent, std::string_view name) {
  std::string out(parent);
  if (!out.empty()) out += '/';
  out += name;
  return out;
}

namespace {

constexpr std::size_t kInputChunk = 64 * 1024;
constexpr std::size_t kOutputChunk = 128 * 1024;
constexpr std::uint64_t kRatioCheckAfter = 1 << 20;
constexpr std::string_view kWhiteoutPrefix = ".wh.";
constexpr std::string_view kAufsPrefix = ".wh..wh.";
constexpr std::string_view kOpaqueName = ".wh..wh..opq";

enum class Codec { none, gzip, zstd };

const char* codec_name(Codec c) {
  switch (c) {
    case Codec::none: return "uncompressed";
    case Codec::gzip: return "gzip";
    case Codec::zstd: return "zstd";
  }
  return "?";
}

// The layer media types (formats.md section 6) and what they carry.
std::optional<Codec> codec_for_media_type(std::string_view media_type) {
  struct Known {
    std::string_view media_type;
    Codec codec;
  };
  static constexpr Known kKnown[] = {
      {"application/vnd.docker.image.rootfs.diff.tar.gzip", Codec::gzip},
      {"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", Codec::gzip},
      {"application/vnd.oci.image.layer.v1.tar", Codec::none},
      {"application/vnd.oci.image.layer.v1.tar+gzip", Codec::gzip},
      {"application/vnd.oci.image.layer.v1.tar+zstd", Codec::zstd},
      {"application/vnd.oci.image.layer.nondistributable.v1.tar", Codec::none},
      {"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", Codec::gzip},
      {"application/vnd.oci.image.layer.nondistributable.v1.tar+zstd", Codec::zstd},
  };
  for (const auto& k : kKnown) {
    if (k.media_type == media_type) return k.codec;
  }
  return std::nullopt;
}

Codec codec_from_magic(std::span<const std::uint8_t> head) {
  if (head.size() >= 2 && head[0] == 0x1f && head[1] == 0x8b) return Codec::gzip;
  if (head.size() >= 4 && head[0] == 0x28 && head[1] == 0xb5 && head[2] == 0x2f && head[3] == 0xfd) {
    return Codec::zstd;
  }
  return Codec::none;
}

// "sha256:<hex>" -> digest; "" -> nullopt.
Result<std::optional<digest::Sha256Digest>> parse_expected_digest(const std::string& text,
                                                                   const char* what) {
  if (text.empty()) return std::optional<digest::Sha256Digest>();
  constexpr std::string_view kPrefix = "sha256:";
  if (!std::string_view(text).starts_with(kPrefix)) {
    return Error(ErrorCode::unsupported,
                 std::string(what) + " '" + text + "': only sha256 digests are supported");
  }
  auto d = digest::Sha256Digest::parse_hex(std::string_view(text).substr(kPrefix.size()));
  if (!d) return std::move(d).error().with_context(std::string(what) + " '" + text + "'");
  return std::optional<digest::Sha256Digest>(*d);
}

// The SHA-256 of the uncompressed stream (the diff ID), on a thread of its
// own: after igzip, the reader thread's inflate, tar parsing and this hash
// bounded a layer's speed, while the hash needs nothing but the bytes. The
// caller alternates between two buffers ("slots"): it submits a slot's bytes,
// and before refilling that slot waits until the hash is done with it.
class StreamHasher {
 public:
  StreamHasher() : thread_([this] { run(); }) {}
  ~StreamHasher() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    work_.notify_all();
    thread_.join();
  }
  StreamHasher(const StreamHasher&) = delete;
  StreamHasher& operator=(const StreamHasher&) = delete;

  // `data` must stay unchanged until wait_free(slot) returns.
  void submit(std::size_t slot, std::span<const std::uint8_t> data) {
    {
      std::lock_guard lock(mutex_);
      busy_[slot] = true;
      queue_.push_back({slot, data});
    }
    work_.notify_all();
  }

  void wait_free(std::size_t slot) {
    std::unique_lock lock(mutex_);
    done_.wait(lock, [&] { return !busy_[slot]; });
  }

  digest::CryptoDigests finish() {
    std::unique_lock lock(mutex_);
    done_.wait(lock, [&] { return queue_.empty() && !busy_[0] && !busy_[1]; });
    return hasher_.finish();
  }

 private:
  struct Job {
    std::size_t slot;
    std::span<const std::uint8_t> data;
  };

  void run() {
    std::unique_lock lock(mutex_);
    for (;;) {
      work_.wait(lock, [&] { return stop_ || !queue_.empty(); });
      if (stop_) return;
      const Job job = queue_.front();
      queue_.pop_front();
      lock.unlock();
      hasher_.update(job.data);
      lock.lock();
      busy_[job.slot] = false;
      done_.notify_all();
    }
  }

  digest::MultiHasher hasher_{digest::CryptoSelection{digest::CryptoAlgorithm::sha256}};
  std::mutex mutex_;
  std::condition_variable work_, done_;
  std::deque<Job> queue_;
  std::array<bool, 2> busy_{};
  bool stop_ = false;
  std::thread thread_;  // last: starts after every other member exists
};

class TarLayer final : public LayerEntries {
 public:
  TarLayer(std::unique_ptr<ByteSource> blob, const ArchiveLimits& limits)
      : blob_(std::move(blob)), limits_(limits) {}

  ~TarLayer() override {
    if (archive_ != nullptr) archive_read_free(archive_);
    if (zstd_ != nullptr) ZSTD_freeDStream(zstd_);
  }

  TarLayer(const TarLayer&) = delete;
  TarLayer& operator=(const TarLayer&) = delete;

  Status init(const LayerExpectations& expect) {
    auto blob_digest = parse_expected_digest(expect.blob_digest, "blob digest");
    if (!blob_digest) return std::move(blob_digest).error();
    auto diff_id = parse_expected_digest(expect.diff_id, "diff ID");
    if (!diff_id) return std::move(diff_id).error();
    expected_blob_ = *blob_digest;
    expected_diff_ = *diff_id;
    expect_ = expect;

    std::optional<Codec> declared;
    if (!expect.media_type.empty()) {
      declared = codec_for_media_type(expect.media_type);
      if (!declared) {
        return Error(ErrorCode::unsupported, "unsupported layer media type '" + expect.media_type + "'");
      }
    }
    // Read enough for the magic bytes (a short source may need several reads).
    in_.resize(kInputChunk);
    while (in_len_ < 4 && !source_eof_) {
      if (Status s = refill_append(); !s) return s;
    }
    const Codec magic = codec_from_magic(std::span(in_.data(), in_len_));
    if (declared && *declared != magic) {
      return Error(ErrorCode::parse_error, "layer media type '" + expect.media_type + "' says " +
                                               codec_name(*declared) + " but the blob's magic bytes say " +
                                               codec_name(magic));
    }
    codec_ = magic;
    if (codec_ == Codec::gzip) {
      igzip_ = std::make_unique<inflate_state>();
      isal_inflate_init(igzip_.get());
      // ISAL_GZIP: parse the member header and verify its CRC-32 and ISIZE trailer.
      igzip_->crc_flag = ISAL_GZIP;
    } else if (codec_ == Codec::zstd) {
      zstd_ = ZSTD_createDStream();
      if (zstd_ == nullptr) return Error(ErrorCode::internal, "ZSTD_createDStream failed");
    }

    for (auto& o : out_) o.resize(kOutputChunk);
    // An uncompressed blob is its own diff: its bytes are hashed once, as they
    // leave produce() (see finish()).
    hash_blob_on_refill_ = codec_ != Codec::none;
    try {
      stream_hasher_ = std::make_unique<StreamHasher>();
    } catch (const std::system_error&) {
      stream_hasher_.reset();  // no thread to be had: hash on this one
    }
    archive_ = archive_read_new();
    if (archive_ == nullptr) return Error(ErrorCode::internal, "archive_read_new failed");
    archive_read_support_format_tar(archive_);
    if (archive_read_open(archive_, this, nullptr, &TarLayer::read_callback, nullptr) != ARCHIVE_OK) {
      return archive_failure("opening the layer tar");
    }
    return {};
  }

  Result<std::optional<LayerEntry>> next() override {
    if (failed_) return *failed_;
    if (ended_) return std::optional<LayerEntry>();
    current_is_regular_ = false;
    for (;;) {
      archive_entry* entry = nullptr;
      const int r = archive_read_next_header(archive_, &entry);
      if (r == ARCHIVE_EOF) {
        ended_ = true;
        return std::optional<LayerEntry>();
      }
      if (r < ARCHIVE_WARN) return fail(archive_failure("reading a tar header"));
      if (++entries_ > limits_.max_entries) {
        return fail(Error(ErrorCode::limit_exceeded,
                          "layer has more than max_entries=" + std::to_string(limits_.max_entries) + " entries"));
      }
      auto converted = convert(entry);
      if (!converted) return fail(std::move(converted).error());
      if (!*converted) continue;  // AUFS metadata or the root directory itself
      current_is_regular_ = (*converted)->kind == EntryKind::regular;
      return converted;
    }
  }

  Result<std::size_t> read(std::span<std::uint8_t> out) override {
    if (failed_) return *failed_;
    if (!current_is_regular_ || out.empty()) return std::size_t{0};
    const la_ssize_t n = archive_read_data(archive_, out.data(), out.size());
    if (n < 0) return fail(archive_failure("reading '" + current_path_ + "'"));
    return static_cast<std::size_t>(n);
  }

  Status finish() override {
    if (failed_) return *failed_;
    while (!ended_) {
      auto e = next();
      if (!e) return std::move(e).error();
    }
    // libarchive stops at the end-of-archive blocks; the diff ID and the blob
    // digest cover every byte, so drain the rest of the stream.
    for (;;) {
      auto n = next_chunk();
      if (!n) return fail(std::move(n).error());
      if (n->empty()) break;
    }
    if (expect_.blob_size != 0 && blob_bytes_ != expect_.blob_size) {
      return fail(Error(ErrorCode::integrity_error, "blob size mismatch: expected " +
                                                        std::to_string(expect_.blob_size) + " bytes, read " +
                                                        std::to_string(blob_bytes_)));
    }
    const auto diff = stream_hasher_ ? stream_hasher_->finish() : diff_hasher_.finish();
    const auto blob = codec_ == Codec::none ? diff : blob_hasher_.finish();
    if (expected_blob_ && *blob.sha256 != *expected_blob_) {
      return fail(Error(ErrorCode::integrity_error, "blob digest mismatch: expected " + expect_.blob_digest +
                                                        ", got sha256:" + blob.sha256->hex()));
    }
    if (expected_diff_ && *diff.sha256 != *expected_diff_) {
      return fail(Error(ErrorCode::integrity_error, "diff ID mismatch: expected " + expect_.diff_id +
                                                        ", got sha256:" + diff.sha256->hex()));
    }
    // A second finish() must not compare empty hashes.
    failed_ = Error(ErrorCode::invalid_argument, "layer already finished");
    return {};
  }

 private:
  Error fail(Error e) {
    failed_ = e;
    return e;
  }

  // The error behind a libarchive failure: ours (from the read callback) when
  // there is one, else libarchive's message.
  Error archive_failure(const std::string& what) {
    if (pending_) return std::move(*pending_);
    const char* msg = archive_error_string(archive_);
    return Error(ErrorCode::parse_error,
                 what + ": corrupt or truncated tar: " + (msg != nullptr ? msg : "unknown libarchive error"));
  }

  static la_ssize_t read_callback(archive* a, void* self_ptr, const void** buffer) {
    auto* self = static_cast<TarLayer*>(self_ptr);
    auto n = self->next_chunk();
    if (!n) {
      archive_set_error(a, EIO, "%s", n.error().message().c_str());
      self->pending_ = std::move(n).error();
      return -1;
    }
    *buffer = n->data();
    return static_cast<la_ssize_t>(n->size());
  }

  // The next uncompressed bytes (empty at the end), hashed for the diff ID.
  // They stay valid until the next call but one: libarchive needs a buffer
  // only until its next read callback, the stream hasher until it is done.
  Result<std::span<const std::uint8_t>> next_chunk() {
    std::vector<std::uint8_t>& buf = out_[slot_];
    if (stream_hasher_) stream_hasher_->wait_free(slot_);
    auto n = produce(std::span(buf.data(), buf.size()));
    if (!n) return std::move(n).error();
    const std::span<const std::uint8_t> chunk(buf.data(), *n);
    if (chunk.empty()) return chunk;
    if (stream_hasher_) {
      stream_hasher_->submit(slot_, chunk);
    } else {
      diff_hasher_.update(chunk);
    }
    slot_ ^= 1;
    return chunk;
  }

  // Appends source bytes after in_[in_len_); sets source_eof_ on end.
  Status refill_append() {
    if (in_len_ == in_.size()) return {};
    auto n = blob_->read(std::span(in_.data() + in_len_, in_.size() - in_len_));
    if (!n) return std::move(n).error().with_context("reading the layer blob");
    if (*n == 0) {
      source_eof_ = true;
      return {};
    }
    if (hash_blob_on_refill_) blob_hasher_.update(std::span<const std::uint8_t>(in_.data() + in_len_, *n));
    blob_bytes_ += *n;
    in_len_ += *n;
    if (expect_.blob_size != 0 && blob_bytes_ > expect_.blob_size) {
      return Error(ErrorCode::integrity_error, "blob is larger than its declared size of " +
                                                   std::to_string(expect_.blob_size) + " bytes");
    }
    return {};
  }

  // Makes input available when all of it was consumed. False at the end.
  Result<bool> ensure_input() {
    if (in_pos_ < in_len_) return true;
    in_pos_ = in_len_ = 0;
    while (in_len_ == 0 && !source_eof_) {
      if (Status s = refill_append(); !s) return std::move(s).error();
    }
    return in_len_ > 0;
  }

  // Fills `out` with the next uncompressed bytes; 0 at the end of the stream.
  Result<std::size_t> produce(std::span<std::uint8_t> out) {
    Result<std::size_t> n = std::size_t{0};
    switch (codec_) {
      case Codec::none: n = produce_plain(out); break;
      case Codec::gzip: n = produce_gzip(out); break;
      case Codec::zstd: n = produce_zstd(out); break;
    }
    if (!n) return n;
    uncompressed_bytes_ += *n;
    if (uncompressed_bytes_ > limits_.max_layer_bytes) {
      return Error(ErrorCode::limit_exceeded, "layer exceeds max_layer_bytes=" +
                                                  std::to_string(limits_.max_layer_bytes) +
                                                  " uncompressed bytes");
    }
    if (codec_ != Codec::none && uncompressed_bytes_ > kRatioCheckAfter &&
        uncompressed_bytes_ / std::max<std::uint64_t>(consumed_bytes_, 1) > limits_.max_ratio) {
      return Error(ErrorCode::limit_exceeded,
                   "layer exceeds max_ratio=" + std::to_string(limits_.max_ratio) + ": " +
                       std::to_string(consumed_bytes_) + " compressed bytes gave " +
                       std::to_string(uncompressed_bytes_) + " bytes");
    }
    return n;
  }

  Result<std::size_t> produce_plain(std::span<std::uint8_t> out) {
    auto more = ensure_input();
    if (!more) return std::move(more).error();
    if (!*more) return std::size_t{0};
    const std::size_t n = std::min(out.size(), in_len_ - in_pos_);
    std::memcpy(out.data(), in_.data() + in_pos_, n);
    in_pos_ += n;
    consumed_bytes_ += n;
    return n;
  }

  Result<std::size_t> produce_gzip(std::span<std::uint8_t> out) {
    for (;;) {
      auto more = ensure_input();
      if (!more) return std::move(more).error();
      if (member_done_) {
        if (!*more) return std::size_t{0};
        // Another member follows (multi-member gzip, as pigz and some layer
        // writers produce): inflate it as a continuation of the stream.
        isal_inflate_reset(igzip_.get());
        igzip_->crc_flag = ISAL_GZIP;
        member_done_ = false;
      }
      // Inflate even without new input: igzip may hold output from the last call.
      inflate_state& st = *igzip_;
      st.next_in = in_.data() + in_pos_;
      st.avail_in = static_cast<std::uint32_t>(in_len_ - in_pos_);
      st.next_out = out.data();
      st.avail_out = static_cast<std::uint32_t>(out.size());
      const int r = isal_inflate(&st);
      const std::size_t used = (in_len_ - in_pos_) - st.avail_in;
      const std::size_t produced = out.size() - st.avail_out;
      in_pos_ += used;
      consumed_bytes_ += used;
      if (r == ISAL_INCORRECT_CHECKSUM) {
        return Error(ErrorCode::parse_error, "corrupt gzip data: CRC-32 or length trailer does not match");
      }
      if (r == ISAL_INVALID_WRAPPER || r == ISAL_UNSUPPORTED_METHOD) {
        return Error(ErrorCode::parse_error, "corrupt gzip data: invalid gzip member header");
      }
      if (r < 0 || r == ISAL_NEED_DICT) {
        return Error(ErrorCode::parse_error, "corrupt gzip data (igzip error " + std::to_string(r) + ")");
      }
      if (st.block_state == ISAL_BLOCK_FINISH) {
        member_done_ = true;
        // igzip may have read past the trailer into its bit buffer; whatever it
        // did not consume stays in next_in/avail_in (accounted for above).
      }
      if (produced > 0) return produced;
      if (member_done_) continue;
      if (!*more) return Error(ErrorCode::parse_error, "truncated gzip stream: the blob ends inside a gzip member");
      if (used == 0) return Error(ErrorCode::parse_error, "corrupt gzip data: inflate made no progress");
    }
  }

  Result<std::size_t> produce_zstd(std::span<std::uint8_t> out) {
    for (;;) {
      auto more = ensure_input();
      if (!more) return std::move(more).error();
      // zstd may still hold decoded bytes when input is exhausted.
      ZSTD_inBuffer in{in_.data() + in_pos_, in_len_ - in_pos_, 0};
      ZSTD_outBuffer o{out.data(), out.size(), 0};
      if (!*more && zstd_hint_ == 0) return std::size_t{0};
      const std::size_t r = ZSTD_decompressStream(zstd_, &o, &in);
      if (ZSTD_isError(r)) {
        return Error(ErrorCode::parse_error, std::string("corrupt zstd data: ") + ZSTD_getErrorName(r));
      }
      zstd_hint_ = r;
      in_pos_ += in.pos;
      consumed_bytes_ += in.pos;
      if (o.pos > 0) return o.pos;
      if (!*more) {
        return Error(ErrorCode::parse_error, "truncated zstd stream: the blob ends inside a zstd frame");
      }
      if (in.pos == 0) return Error(ErrorCode::parse_error, "corrupt zstd data: decoder made no progress");
    }
  }

  // The LayerEntry for a tar header, or nullopt for entries we skip.
  Result<std::optional<LayerEntry>> convert(archive_entry* entry) {
    const char* raw_path = archive_entry_pathname(entry);
    if (raw_path == nullptr) return Error(ErrorCode::parse_error, "tar entry without a path");
    auto path = normalize_entry_path(raw_path);
    if (!path) return std::move(path).error().with_context("tar entry");
    current_path_ = *path;
    LayerEntry out;
    out.mode = static_cast<std::uint32_t>(archive_entry_mode(entry)) & 07777U;

    const SplitPath split = split_path(*path);
    // AUFS metadata directories (".wh..wh.plnk", the hard-link store) and
    // everything under them are neither files nor whiteouts.
    if (split.parent.starts_with(kAufsPrefix) || split.parent.find("/.wh..wh.") != std::string_view::npos) {
      return std::optional<LayerEntry>();
    }
    if (split.name.starts_with(kWhiteoutPrefix)) {
      if (split.name == kOpaqueName) {
        out.kind = EntryKind::opaque_whiteout;
        out.path = std::string(split.parent);
        return std::optional<LayerEntry>(std::move(out));
      }
      if (split.name.starts_with(kAufsPrefix)) return std::optional<LayerEntry>();
      const std::string_view hidden = split.name.substr(kWhiteoutPrefix.size());
      if (hidden.empty() || hidden == "." || hidden == "..") {
        return Error(ErrorCode::parse_error, "tar entry '" + std::string(raw_path) + "': invalid whiteout name");
      }
      out.kind = EntryKind::whiteout;
      out.path = join_path(split.parent, hidden);
      return std::optional<LayerEntry>(std::move(out));
    }

    out.path = std::move(*path);
    if (const char* hardlink = archive_entry_hardlink(entry); hardlink != nullptr) {
      auto target = normalize_entry_path(hardlink);
      if (!target) {
        return std::move(target).error().with_context("hard link '" + std::string(raw_path) + "'");
      }
      if (target->empty()) {
        return Error(ErrorCode::parse_error, "hard link '" + std::string(raw_path) + "' points at the image root");
      }
      out.kind = EntryKind::hardlink;
      out.link_target = std::move(*target);
      return std::optional<LayerEntry>(std::move(out));
    }
    switch (archive_entry_filetype(entry)) {
      case AE_IFDIR:
        if (out.path.empty()) return std::optional<LayerEntry>();  // "./": the root itself
        out.kind = EntryKind::directory;
        break;
      case AE_IFLNK: {
        const char* target = archive_entry_symlink(entry);
        out.kind = EntryKind::symlink;
        out.link_target = target != nullptr ? target : "";
        break;
      }
      case AE_IFCHR:
      case AE_IFBLK:
      case AE_IFIFO:
      case AE_IFSOCK:
        out.kind = EntryKind::device;
        break;
      default: {
        out.kind = EntryKind::regular;
        const la_int64_t size = archive_entry_size(entry);
        if (size < 0) return Error(ErrorCode::parse_error, "tar entry '" + std::string(raw_path) + "': negative size");
        out.size = static_cast<std::uint64_t>(size);
        if (out.size > limits_.max_file_bytes) {
          return Error(ErrorCode::limit_exceeded, "tar entry '" + std::string(raw_path) + "' declares " +
                                                      std::to_string(out.size) + " bytes, over max_file_bytes=" +
                                                      std::to_string(limits_.max_file_bytes));
        }
        break;
      }
    }
    if (out.path.empty()) {
      return Error(ErrorCode::parse_error, "tar entry '" + std::string(raw_path) + "' replaces the image root");
    }
    return std::optional<LayerEntry>(std::move(out));
  }

  std::unique_ptr<ByteSource> blob_;
  ArchiveLimits limits_;
  LayerExpectations expect_;
  std::optional<digest::Sha256Digest> expected_blob_;
  std::optional<digest::Sha256Digest> expected_diff_;
  Codec codec_ = Codec::none;

  std::vector<std::uint8_t> in_;
  std::size_t in_pos_ = 0;
  std::size_t in_len_ = 0;
  bool source_eof_ = false;
  std::array<std::vector<std::uint8_t>, 2> out_;  // alternating, see next_chunk()
  std::size_t slot_ = 0;

  std::unique_ptr<inflate_state> igzip_;  // large (~40 KiB): on the heap
  bool member_done_ = false;
  ZSTD_DStream* zstd_ = nullptr;
  std::size_t zstd_hint_ = 0;  // last ZSTD_decompressStream result: 0 = frame complete

  digest::MultiHasher blob_hasher_{digest::CryptoSelection{digest::CryptoAlgorithm::sha256}};
  digest::MultiHasher diff_hasher_{digest::CryptoSelection{digest::CryptoAlgorithm::sha256}};  // without a thread
  bool hash_blob_on_refill_ = true;  // the magic bytes are read before the codec is known
  // After out_: destroyed (its thread joined) before the buffers it reads.
  std::unique_ptr<StreamHasher> stream_hasher_;
  std::uint64_t blob_bytes_ = 0;
  std::uint64_t consumed_bytes_ = 0;
  std::uint64_t uncompressed_bytes_ = 0;
  std::uint64_t entries_ = 0;

  archive* archive_ = nullptr;
  std::optional<Error> pending_;
  std::optional<Error> failed_;
  bool ended_ = false;
  bool current_is_regular_ = false;
  std::string current_path_;
};

}  // namespace

Result<std::unique_ptr<LayerEntries>> open_tar_layer(std::unique_ptr<ByteSource> blob,
                                                     const LayerExpectations& expect,
                                                     const ArchiveLimits& limits) {
  if (blob == nullptr) return Error(ErrorCode::invalid_argument, "open_tar_layer: no byte source");
  auto layer = std::make_unique<TarLayer>(std::move(blob), limits);
  if (Status s = layer->init(expect); !s) return std::move(s).error();
  return std::unique_ptr<LayerEntries>(std::move(layer));
}

}  // namespace hashsieve::image
