#include "deb_reader.h"

#include <archive.h>
#include <archive_entry.h>

#include <filesystem>
#include <memory>
#include <sstream>
#include <vector>

namespace hashsieve::refset {
namespace {

struct ArchiveFree {
  void operator()(archive* a) const { archive_read_free(a); }
};
using ArchivePtr = std::unique_ptr<archive, ArchiveFree>;

Error archive_error(archive* a, const std::string& what) {
  const char* message = archive_error_string(a);
  return Error(ErrorCode::parse_error, what + ": " + (message != nullptr ? message : "unreadable archive"));
}

// The inner tar is read straight out of the outer ar member.
la_ssize_t read_member(archive*, void* outer, const void** buffer) {
  static thread_local char chunk[1 << 16];
  *buffer = chunk;
  return archive_read_data(static_cast<archive*>(outer), chunk, sizeof chunk);
}

ArchivePtr open_inner(archive* outer) {
  ArchivePtr inner(archive_read_new());
  archive_read_support_filter_all(inner.get());
  archive_read_support_format_tar(inner.get());
  if (archive_read_open(inner.get(), outer, nullptr, read_member, nullptr) != ARCHIVE_OK) return nullptr;
  return inner;
}

std::string field(const std::string& control, const std::string& name) {
  std::istringstream in(control);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(name + ":", 0) == 0) {
      std::string v = line.substr(name.size() + 1);
      while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.erase(v.begin());
      return v;
    }
  }
  return {};
}

}  // namespace

Result<DebInfo> read_deb(const std::string& path, std::uint64_t max_file_bytes,
                         const std::function<Status(const std::string&, const std::string&, std::span<const std::uint8_t>)>& on_file,
                         const std::function<void(std::string)>& on_warning) {
  ArchivePtr outer(archive_read_new());
  archive_read_support_format_ar(outer.get());
  if (archive_read_open_filename(outer.get(), path.c_str(), 1 << 16) != ARCHIVE_OK) {
    return archive_error(outer.get(), path);
  }
  DebInfo info;
  bool saw_data = false;
  std::vector<std::uint8_t> buffer;
  for (;;) {
    archive_entry* member = nullptr;
    const int rc = archive_read_next_header(outer.get(), &member);
    if (rc == ARCHIVE_EOF) break;
    if (rc != ARCHIVE_OK) return archive_error(outer.get(), path);
    const std::string member_name = archive_entry_pathname(member);
    const bool control = member_name.rfind("control.tar", 0) == 0;
    const bool data = member_name.rfind("data.tar", 0) == 0;
    if (!control && !data) continue;
    ArchivePtr inner = open_inner(outer.get());
    if (!inner) return archive_error(outer.get(), path + ": " + member_name);
    for (;;) {
      archive_entry* entry = nullptr;
      const int irc = archive_read_next_header(inner.get(), &entry);
      if (irc == ARCHIVE_EOF) break;
      if (irc != ARCHIVE_OK) return archive_error(inner.get(), path + ": " + member_name);
      if (archive_entry_filetype(entry) != AE_IFREG) continue;
      std::string name = archive_entry_pathname(entry);
      if (name.rfind("./", 0) == 0) name.erase(0, 1);
      if (name.empty() || name[0] != '/') name.insert(name.begin(), '/');
      const auto size = static_cast<std::uint64_t>(archive_entry_size(entry));
      if (control && name != "/control") continue;
      if (size > max_file_bytes) {
        on_warning(path + ":" + name + ": " + std::to_string(size) + " bytes, over the size limit; skipped");
        continue;
      }
      buffer.resize(size);
      std::uint64_t done = 0;
      while (done < size) {
        const la_ssize_t n = archive_read_data(inner.get(), buffer.data() + done, size - done);
        if (n < 0) return archive_error(inner.get(), path + ":" + name);
        if (n == 0) return Error(ErrorCode::parse_error, path + ":" + name + ": truncated");
        done += static_cast<std::uint64_t>(n);
      }
      if (control) {
        const std::string text(buffer.begin(), buffer.end());
        const std::string package = field(text, "Package");
        if (!package.empty()) {
          info.package = package + "_" + field(text, "Version") + "_" + field(text, "Architecture");
        }
        continue;
      }
      if (info.package.empty()) info.package = std::filesystem::path(path).stem().string();
      if (auto st = on_file(info.package, name, buffer); !st.ok()) return std::move(st).error();
    }
    if (data) saw_data = true;
  }
  if (!saw_data) return Error(ErrorCode::parse_error, path + ": not a Debian package (no data.tar member)");
  if (info.package.empty()) info.package = std::filesystem::path(path).stem().string();
  return info;
}

}  // namespace hashsieve::refset
