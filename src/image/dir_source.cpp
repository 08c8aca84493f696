// dir: a root filesystem directory as ONE pseudo-layer (no digests, so no
// cache key). The walk holds a directory fd per level and uses openat and
// fstatat with O_NOFOLLOW / AT_SYMLINK_NOFOLLOW, so a symlink inside the tree
// (even one swapped in during the walk) is reported as text and never
// followed. Children are visited in byte order of their names, directories
// before their contents (pre-order), so the entry order is deterministic.
// Names starting with ".wh." are ordinary files here: a rootfs has no
// whiteouts. An unreadable file or directory stops the walk with
// ErrorCode::permission_denied naming it (LayerEntries has no per-entry
// error channel, and silently skipping would hide content from the scan).
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <memory>
#include <string>
#include <vector>

#include "hashsieve/core/file.h"
#include "sources_internal.h"
#include "tar_layer.h"

namespace hashsieve::image {
namespace {

// Each open level holds one fd; Linux paths (PATH_MAX 4096) rarely nest deeper.
constexpr std::size_t kMaxDepth = 512;

struct Frame {
  UniqueFd fd;
  std::string path;  // relative to the root, "" for the root
  std::vector<std::string> names;
  std::size_t next = 0;
};

Result<std::vector<std::string>> list_directory(int dirfd, const std::string& what) {
  // fdopendir takes ownership of the fd it is given: hand it a duplicate.
  const int dup = ::fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
  if (dup < 0) return errno_error(errno, what);
  DIR* dir = ::fdopendir(dup);
  if (dir == nullptr) {
    const int err = errno;
    ::close(dup);
    return errno_error(err, what);
  }
  std::vector<std::string> names;
  errno = 0;
  while (const dirent* d = ::readdir(dir)) {
    const std::string_view name = d->d_name;
    if (name != "." && name != "..") names.emplace_back(name);
    errno = 0;
  }
  const int err = errno;
  ::closedir(dir);
  if (err != 0) return errno_error(err, what);
  std::sort(names.begin(), names.end());
  return names;
}

std::string display(const std::string& root, const std::string& rel) { return rel.empty() ? root : root + "/" + rel; }

class DirWalk final : public LayerEntries {
 public:
  DirWalk(std::string root, const ArchiveLimits& limits) : root_(std::move(root)), limits_(limits) {}

  Status open() {
    // The root path itself is the user's choice and may be a symlink.
    UniqueFd fd(::open(root_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (fd.get() < 0) return errno_error(errno, root_);
    auto names = list_directory(fd.get(), root_);
    if (!names) return std::move(names).error();
    stack_.push_back(Frame{std::move(fd), "", std::move(*names), 0});
    return {};
  }

  Result<std::optional<LayerEntry>> next() override {
    if (failed_) return *failed_;
    current_file_ = UniqueFd();
    current_is_regular_ = false;
    while (!stack_.empty()) {
      Frame& top = stack_.back();
      if (top.next == top.names.size()) {
        stack_.pop_back();
        continue;
      }
      const std::string name = top.names[top.next++];  // a copy: visit() may grow stack_
      auto entry = visit(top, name);
      if (!entry) return fail(std::move(entry).error());
      return entry;
    }
    return std::optional<LayerEntry>();
  }

  Result<std::size_t> read(std::span<std::uint8_t> out) override {
    if (failed_) return *failed_;
    if (!current_is_regular_ || out.empty()) return std::size_t{0};
    if (current_file_.get() < 0) {
      const std::string what = display(root_, current_path_);
      UniqueFd fd(::openat(current_dirfd_, current_name_.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
      if (fd.get() < 0) return fail(errno_error(errno, what));
      struct stat st {};
      if (::fstat(fd.get(), &st) != 0) return fail(errno_error(errno, what));
      if (!S_ISREG(st.st_mode)) return fail(Error(ErrorCode::io_error, what + ": changed type during the walk"));
      current_file_ = std::move(fd);
    }
    for (;;) {
      const ssize_t n = ::read(current_file_.get(), out.data(), out.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return fail(errno_error(errno, display(root_, current_path_)));
      return static_cast<std::size_t>(n);
    }
  }

  Status finish() override {
    if (failed_) return *failed_;
    return {};
  }

 private:
  Error fail(Error e) {
    failed_ = e;
    return e;
  }

  Result<std::optional<LayerEntry>> visit(Frame& parent, const std::string& name) {
    LayerEntry entry;
    entry.path = join_path(parent.path, name);
    const std::string what = display(root_, entry.path);
    if (++entries_ > limits_.max_entries) {
      return Error(ErrorCode::limit_exceeded,
                   "directory tree has more than max_entries=" + std::to_string(limits_.max_entries) + " entries");
    }
    struct stat st {};
    if (::fstatat(parent.fd.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return errno_error(errno, what);
    entry.mode = static_cast<std::uint32_t>(st.st_mode) & 07777U;
    if (S_ISDIR(st.st_mode)) {
      entry.kind = EntryKind::directory;
      if (stack_.size() >= kMaxDepth) {
        return Error(ErrorCode::limit_exceeded, what + ": directories nest deeper than " + std::to_string(kMaxDepth));
      }
      UniqueFd fd(::openat(parent.fd.get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (fd.get() < 0) return errno_error(errno, what);
      auto names = list_directory(fd.get(), what);
      if (!names) return std::move(names).error();
      std::string path = entry.path;
      stack_.push_back(Frame{std::move(fd), std::move(path), std::move(*names), 0});  // invalidates `parent`
    } else if (S_ISLNK(st.st_mode)) {
      entry.kind = EntryKind::symlink;
      std::string target(static_cast<std::size_t>(std::max<off_t>(st.st_size, 0)) + 1, '\0');
      for (;;) {
        const ssize_t n = ::readlinkat(parent.fd.get(), name.c_str(), target.data(), target.size());
        if (n < 0) return errno_error(errno, what);
        if (static_cast<std::size_t>(n) < target.size()) {
          target.resize(static_cast<std::size_t>(n));
          break;
        }
        target.resize(target.size() * 2);  // the link grew since fstatat
      }
      entry.link_target = std::move(target);
    } else if (S_ISREG(st.st_mode)) {
      entry.kind = EntryKind::regular;
      entry.size = static_cast<std::uint64_t>(st.st_size);
      if (entry.size > limits_.max_file_bytes) {
        return Error(ErrorCode::limit_exceeded, what + ": " + std::to_string(entry.size) +
                                                    " bytes, over max_file_bytes=" +
                                                    std::to_string(limits_.max_file_bytes));
      }
      total_bytes_ += entry.size;
      if (total_bytes_ > limits_.max_layer_bytes) {
        return Error(ErrorCode::limit_exceeded,
                     "directory tree exceeds max_layer_bytes=" + std::to_string(limits_.max_layer_bytes));
      }
      current_is_regular_ = true;
      current_dirfd_ = parent.fd.get();
      current_name_ = name;
      current_path_ = entry.path;
    } else {
      entry.kind = EntryKind::device;  // character/block device, FIFO, socket: never opened
    }
    return std::optional<LayerEntry>(std::move(entry));
  }

  std::string root_;
  ArchiveLimits limits_;
  std::vector<Frame> stack_;
  std::optional<Error> failed_;
  std::uint64_t entries_ = 0;
  std::uint64_t total_bytes_ = 0;
  bool current_is_regular_ = false;
  int current_dirfd_ = -1;  // owned by a frame on the stack
  std::string current_name_;
  std::string current_path_;
  UniqueFd current_file_;
};

class DirSource final : public ImageSource {
 public:
  DirSource(std::string root, SourceOptions options) : root_(std::move(root)), options_(std::move(options)) {}

  Result<std::vector<ResolvedImage>> resolve() override {
    ResolvedImage image;
    image.reference = "dir:" + root_;
    // A directory does not say what it was built for; report what was asked.
    if (options_.platforms.platform) image.platform = *options_.platforms.platform;
    image.layers.push_back(LayerDescriptor{});
    return std::vector<ResolvedImage>{std::move(image)};
  }

  Result<std::unique_ptr<LayerEntries>> open_layer(const ResolvedImage&, std::size_t index) override {
    if (index != 0) return Error(ErrorCode::invalid_argument, "dir:" + root_ + " has one layer, not " + std::to_string(index + 1));
    auto walk = std::make_unique<DirWalk>(root_, options_.limits);
    if (Status s = walk->open(); !s) return std::move(s).error();
    return std::unique_ptr<LayerEntries>(std::move(walk));
  }

 private:
  std::string root_;
  SourceOptions options_;
};

}  // namespace

Result<std::unique_ptr<ImageSource>> open_dir_source(const std::string& path, const SourceOptions& options) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return errno_error(errno, path);
  if (!S_ISDIR(st.st_mode)) return Error(ErrorCode::invalid_argument, path + ": not a directory");
  std::string root = path;
  while (root.size() > 1 && root.back() == '/') root.pop_back();
  return std::unique_ptr<ImageSource>(std::make_unique<DirSource>(std::move(root), options));
}

}  // namespace hashsieve::image
