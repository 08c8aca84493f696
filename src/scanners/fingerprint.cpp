#include "fingerprint.h"

#include <algorithm>
#include <filesystem>
#include <system_error>

#include "hashsieve/core/file.h"
#include "hashsieve/digest/crypto.h"

namespace hashsieve::scanners::detail {

Result<std::string> fingerprint_files(const std::vector<NamedFile>& files) {
  digest::MultiHasher hasher({digest::CryptoAlgorithm::sha256});
  auto feed_u64 = [&](std::uint64_t v) {
    std::uint8_t b[8];
    for (int i = 0; i < 8; ++i) b[i] = static_cast<std::uint8_t>(v >> (8 * (7 - i)));
    hasher.update(b);
  };
  for (const NamedFile& f : files) {
    auto mapped = MappedFile::open(f.path);
    if (!mapped.ok()) return std::move(mapped).error().with_context("fingerprinting");
    feed_u64(f.name.size());
    hasher.update({reinterpret_cast<const std::uint8_t*>(f.name.data()), f.name.size()});
    feed_u64(mapped->size());
    hasher.update(mapped->bytes());
  }
  return "sha256:" + hasher.finish().sha256->hex();
}

Result<std::vector<NamedFile>> list_files(const std::string& dir, const std::vector<std::string>& extensions) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::file_status st = fs::status(dir, ec);
  if (ec) return errno_error(ec.value(), dir);
  if (!fs::is_directory(st)) return Error(ErrorCode::invalid_argument, dir + ": not a directory");
  std::vector<NamedFile> out;
  fs::directory_iterator it(dir, ec);
  if (ec) return errno_error(ec.value(), dir);
  for (; it != fs::directory_iterator(); it.increment(ec)) {
    if (ec) return errno_error(ec.value(), dir);
    std::error_code fec;
    if (!it->is_regular_file(fec)) continue;
    const std::string name = it->path().filename().string();
    const bool wanted = extensions.empty() ||
                        std::any_of(extensions.begin(), extensions.end(), [&](const std::string& e) {
                          return name.size() > e.size() && name.compare(name.size() - e.size(), e.size(), e) == 0;
                        });
    if (wanted) out.push_back({name, it->path().string()});
  }
  if (ec) return errno_error(ec.value(), dir);
  std::sort(out.begin(), out.end(), [](const NamedFile& a, const NamedFile& b) { return a.name < b.name; });
  return out;
}

}  // namespace hashsieve::scanners::detail
