#include "layer_hasher.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <filesystem>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>

#include "hashsieve/core/file.h"
#include "hashsieve/digest/file_digests.h"
#include "hashsieve/digest/sdbf_generator.h"
#include "hashsieve/digest/sdbf_policy.h"
#include "hashsieve/digest/ssdeep.h"
#include "hashsieve/refset/section_digests.h"
#include "hashsieve/refset/similarity_index.h"

namespace hashsieve::scan {
namespace {

// Streamed files are read in pieces of this size: a multiple of sdhash's
// 16 KiB block, so every piece but a segment's last holds whole blocks and the
// block digests equal those of the whole segment.
constexpr std::size_t kStreamPiece = std::size_t{8} << 20;

struct Digests {
  digest::CryptoDigests crypto;
  std::vector<digest::Sdbf> sdbf;
  std::optional<digest::TlshDigest> tlsh;
  std::optional<std::string> ssdeep;
  std::vector<std::uint32_t> content_keys;
  bool similarity_computed = false;
  std::optional<refset::SectionDigests> rodata;
  std::optional<ExternalOutcome> external;  // not part of the facts: never cached
};

void apply(FileRecord& r, Digests&& d) {
  r.crypto = d.crypto;
  r.sdbf = std::move(d.sdbf);
  r.tlsh = d.tlsh;
  r.ssdeep = std::move(d.ssdeep);
  r.content_keys = std::move(d.content_keys);
  r.similarity_computed = d.similarity_computed;
  r.rodata = std::move(d.rodata);
}

Status read_exactly(image::LayerEntries& entries, std::span<std::uint8_t> out, const std::string& path) {
  std::size_t got = 0;
  while (got < out.size()) {
    auto n = entries.read(out.subspan(got));
    if (!n.ok()) return std::move(n).error().with_context(path);
    if (*n == 0) {
      return Error(ErrorCode::parse_error, path + ": content ends after " + std::to_string(got) + " of " +
                                               std::to_string(out.size()) + " bytes");
    }
    got += *n;
  }
  return {};
}

// Hashes buffered files; one per worker thread.
class Workers {
 public:
  Workers(const LayerHashOptions& options, LayerHashStats& stats) : options_(options), stats_(stats) {
    const unsigned n = std::max(1u, options.threads);
    for (unsigned i = 0; i < n; ++i) threads_.emplace_back([this] { run(); });
  }
  ~Workers() { close(); }

  // Blocks while the bytes in flight would exceed the budget (a single file
  // larger than the budget still goes through, alone).
  void submit(std::size_t index, std::string name, std::vector<std::uint8_t> data) {
    std::unique_lock lock(mutex_);
    const std::uint64_t size = data.size();
    space_.wait(lock, [&] { return inflight_ == 0 || inflight_ + size <= options_.max_inflight_bytes; });
    inflight_ += size;
    stats_.peak_inflight_bytes = std::max(stats_.peak_inflight_bytes, inflight_);
    queue_.push_back({index, std::move(name), std::move(data)});
    work_.notify_one();
  }

  void close() {
    {
      std::lock_guard lock(mutex_);
      closing_ = true;
    }
    work_.notify_all();
    for (auto& t : threads_) t.join();
    threads_.clear();
  }

  std::vector<std::pair<std::size_t, Digests>>& done() { return done_; }
  std::optional<Error>& error() { return error_; }

 private:
  struct Task {
    std::size_t index;
    std::string name;
    std::vector<std::uint8_t> data;
  };

  void run() {
    digest::MultiHasher crypto(digest::CryptoSelection::all());
    for (;;) {
      Task task;
      {
        std::unique_lock lock(mutex_);
        work_.wait(lock, [&] { return !queue_.empty() || closing_; });
        if (queue_.empty()) return;
        task = std::move(queue_.front());
        queue_.pop_front();
      }
      Digests d;
      std::optional<Error> failure;
      crypto.update(task.data);
      d.crypto = crypto.finish();
      bool skipped = false;
      if (options_.is_known && options_.is_known(d.crypto)) {
        skipped = true;
      } else if (!options_.external_scanners.empty()) {
        // The bytes are in memory now; scanning them later would read the
        // layer again.
        auto outcome = run_external_scanners(options_.external_scanners, task.data, task.name);
        if (outcome.ok()) {
          d.external = std::move(outcome).value();
        } else {
          failure = std::move(outcome).error();
        }
      }
      if (!skipped && !failure) {
        digest::DigestSelection selection;
        selection.crypto = digest::CryptoSelection::none();
        auto more = digest::compute_digests(task.name, task.data, selection);
        if (!more.ok()) {
          failure = std::move(more).error();
        } else {
          d.sdbf = std::move(more->sdbf);
          d.tlsh = more->tlsh;
          d.ssdeep = std::move(more->ssdeep);
          d.content_keys = refset::sample_content_keys(task.data);
          d.similarity_computed = true;
          // A damaged ELF section table is the image's content, not a scan
          // failure: the file keeps its whole-file digests and, like a
          // stripped binary, gets no .rodata digests.
          auto rodata = refset::rodata_digests(task.name, task.data);
          if (rodata.ok()) d.rodata = std::move(rodata).value();
        }
      }
      const std::uint64_t size = task.data.size();
      task.data = {};
      {
        std::lock_guard lock(mutex_);
        inflight_ -= size;
        if (skipped) ++stats_.similarity_skipped;
        if (failure && !error_) error_ = std::move(failure)->with_context(task.name);
        if (!failure) done_.emplace_back(task.index, std::move(d));
      }
      space_.notify_all();
    }
  }

  const LayerHashOptions& options_;
  LayerHashStats& stats_;
  std::mutex mutex_;
  std::condition_variable work_, space_;
  std::deque<Task> queue_;
  std::uint64_t inflight_ = 0;
  bool closing_ = false;
  std::vector<std::pair<std::size_t, Digests>> done_;
  std::optional<Error> error_;
  std::vector<std::thread> threads_;
};

// A file too large to buffer: every digest from one sequential read, in
// pieces (spool_file below decides first whether the sieve spares it).
// `read_piece` fills its span with the file's next bytes, exactly; `crypto`
// is given when the crypto digests are already known (a spooled file).
using ReadPiece = std::function<Status(std::span<std::uint8_t>)>;

Result<Digests> stream_file(const ReadPiece& read_piece, const std::string& name, std::uint64_t size,
                            digest::SdbfGenerator& generator, std::vector<std::uint8_t>& buffer,
                            const std::optional<digest::CryptoDigests>& known_crypto = std::nullopt) {
  digest::MultiHasher crypto(known_crypto ? digest::CryptoSelection::none() : digest::CryptoSelection::all());
  digest::TlshHasher tlsh;
  digest::SsdeepHasher ssdeep;
  ssdeep.set_expected_length(size);
  const digest::SdbfPolicy policy;
  const digest::SdbfPlan plan = digest::plan_sdbf(size, policy);
  Digests d;
  for (const auto& segment : digest::segment_input(name, size, policy.segment_bytes, false)) {
    std::vector<std::uint64_t> words;
    std::vector<std::uint16_t> counts;
    for (std::uint64_t done = 0; done < segment.length;) {
      const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(kStreamPiece, segment.length - done));
      buffer.resize(n);
      if (auto st = read_piece(buffer); !st.ok()) return std::move(st).error();
      if (!known_crypto) crypto.update(buffer);
      tlsh.update(buffer);
      ssdeep.update(buffer);
      if (plan.mode == digest::SdbfPlanMode::block) {
        if (auto piece = generator.block(segment.name, buffer, plan.block_size)) {
          words.insert(words.end(), piece->all_filter_words().begin(), piece->all_filter_words().end());
          for (std::size_t i = 0; i < piece->filter_count(); ++i) {
            counts.push_back(static_cast<std::uint16_t>(piece->element_count(i)));
          }
        }
      }
      done += n;
    }
    if (!counts.empty()) {
      d.sdbf.push_back(digest::Sdbf::from_blocks(segment.name, segment.length, plan.block_size, std::move(words),
                                                 std::move(counts)));
    }
  }
  d.crypto = known_crypto ? *known_crypto : crypto.finish();
  d.tlsh = tlsh.finish();
  auto text = ssdeep.finish();
  if (!text.ok()) return std::move(text).error().with_context(name + ": ssdeep");
  d.ssdeep = std::move(text).value();
  d.similarity_computed = true;
  return d;
}

Status write_all(int fd, std::span<const std::uint8_t> data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_error(errno, "writing the spool file");
    }
    data = data.subspan(static_cast<std::size_t>(n));
  }
  return {};
}

Status pread_exactly(int fd, std::span<std::uint8_t> out, std::uint64_t offset) {
  std::size_t got = 0;
  while (got < out.size()) {
    const ssize_t n = ::pread(fd, out.data() + got, out.size() - got, static_cast<off_t>(offset + got));
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_error(errno, "reading the spool file");
    }
    if (n == 0) return Error(ErrorCode::io_error, "the spool file ends early");
    got += static_cast<std::size_t>(n);
  }
  return {};
}

// An anonymous temporary file with room for `size` bytes, or none when the
// temporary directory cannot hold it (the caller then streams without the
// sieve, which is always correct). fallocate first, so that writing the
// spool cannot run out of space halfway through the file.
std::optional<UniqueFd> open_spool(std::uint64_t size) {
  std::error_code ec;
  const auto dir = std::filesystem::temp_directory_path(ec);
  if (ec) return std::nullopt;
  UniqueFd fd(::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600));
  if (fd.get() < 0) return std::nullopt;
  if (::posix_fallocate(fd.get(), 0, static_cast<off_t>(size)) != 0) return std::nullopt;
  return fd;
}

// Runs the external scanners on the spooled bytes of a file not known,
// mapped rather than copied; a file over every scanner's limit is not read.
Result<ExternalOutcome> scan_spool(int fd, const std::string& name, std::uint64_t size,
                                   const LayerHashOptions& options) {
  if (size > max_scan_bytes(options.external_scanners)) {
    return over_limit_outcome(options.external_scanners, name, size);
  }
  void* p = ::mmap(nullptr, static_cast<std::size_t>(size), PROT_READ, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) return errno_error(errno, "mapping the spool file").with_context(name);
  auto out = run_external_scanners(options.external_scanners,
                                   {static_cast<const std::uint8_t*>(p), static_cast<std::size_t>(size)}, name);
  ::munmap(p, static_cast<std::size_t>(size));
  return out;
}

// A file too large to buffer, with the sieve: one pass computes the crypto
// digests while copying the bytes to a spool file; only a file that is not
// known reads the spool again for its similarity digests (and hands it to
// the external scanners). Without the spool
// a known large file (a browser, a compiler) would cost its similarity
// digests, several times the crypto pass (docs/performance.md, issue 4).
Result<Digests> spool_file(image::LayerEntries& entries, const std::string& name, std::uint64_t size,
                           const LayerHashOptions& options, digest::SdbfGenerator& generator,
                           std::vector<std::uint8_t>& buffer, bool& skipped) {
  skipped = false;
  auto read_entry = [&](std::span<std::uint8_t> out) { return read_exactly(entries, out, name); };
  std::optional<UniqueFd> spool;
  if (options.is_known) spool = open_spool(size);
  if (!spool) return stream_file(read_entry, name, size, generator, buffer);
  digest::MultiHasher crypto(digest::CryptoSelection::all());
  for (std::uint64_t done = 0; done < size;) {
    const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(kStreamPiece, size - done));
    buffer.resize(n);
    if (auto st = read_exactly(entries, buffer, name); !st.ok()) return std::move(st).error();
    crypto.update(buffer);
    if (auto st = write_all(spool->get(), buffer); !st.ok()) return std::move(st).error().with_context(name);
    done += n;
  }
  Digests d;
  d.crypto = crypto.finish();
  if (options.is_known(d.crypto)) {
    skipped = true;
    return d;
  }
  std::optional<ExternalOutcome> external;
  if (!options.external_scanners.empty()) {
    auto outcome = scan_spool(spool->get(), name, size, options);
    if (!outcome.ok()) return std::move(outcome).error();
    external = std::move(outcome).value();
  }
  std::uint64_t offset = 0;
  auto read_spool = [&](std::span<std::uint8_t> out) -> Status {
    if (auto st = pread_exactly(spool->get(), out, offset); !st.ok()) return std::move(st).error().with_context(name);
    offset += out.size();
    return {};
  };
  auto streamed = stream_file(read_spool, name, size, generator, buffer, d.crypto);
  if (streamed.ok()) streamed->external = std::move(external);
  return streamed;
}

}  // namespace

Result<std::vector<FileRecord>> hash_layer(image::LayerEntries& entries, const LayerHashOptions& options_in,
                                           LayerHashStats& stats, std::map<std::size_t, ExternalOutcome>* external) {
  LayerHashOptions options = options_in;
  // Streamed files must be in sdhash's block mode (see ScanOptions).
  options.max_buffered_file_bytes = std::max<std::uint64_t>(options.max_buffered_file_bytes,
                                                            digest::kSdbfLargeFileBytes);
  std::vector<FileRecord> records;
  Workers workers(options, stats);
  digest::SdbfGenerator generator;
  std::vector<std::uint8_t> stream_buffer;
  for (;;) {
    auto next = entries.next();
    if (!next.ok()) return std::move(next).error();
    if (!next->has_value()) break;
    image::LayerEntry& e = **next;
    FileRecord r;
    r.path = std::move(e.path);
    r.kind = e.kind;
    r.size = e.kind == image::EntryKind::regular ? e.size : 0;
    r.mode = e.mode;
    r.link_target = std::move(e.link_target);
    const std::size_t index = records.size();
    if (r.kind == image::EntryKind::regular) {
      if (r.size <= options.max_buffered_file_bytes) {
        std::vector<std::uint8_t> data(static_cast<std::size_t>(r.size));
        if (auto st = read_exactly(entries, data, r.path); !st.ok()) return std::move(st).error();
        workers.submit(index, r.path, std::move(data));
      } else {
        bool skipped = false;
        auto d = spool_file(entries, r.path, r.size, options, generator, stream_buffer, skipped);
        if (!d.ok()) return std::move(d).error();
        if (skipped) ++stats.similarity_skipped;
        if (external != nullptr && d->external) external->emplace(index, std::move(*d->external));
        apply(r, std::move(d).value());
        stream_buffer = {};
      }
      ++stats.files;
      stats.bytes += r.size;
      if (options.on_file_read) options.on_file_read(r.size);
    }
    records.push_back(std::move(r));
  }
  workers.close();
  if (workers.error()) return std::move(*workers.error());
  for (auto& [index, d] : workers.done()) {
    if (external != nullptr && d.external) external->emplace(index, std::move(*d.external));
    apply(records[index], std::move(d));
  }
  return records;
}

}  // namespace hashsieve::scan
