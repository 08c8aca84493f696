#include "oci_layout_store.h"

#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "hashsieve/core/file.h"
#include "hashsieve/image/reference.h"

namespace hashsieve::image {
namespace {

constexpr std::string_view kRefNameAnnotation = "org.opencontainers.image.ref.name";

Result<std::string> read_small_file(const std::string& path, std::size_t limit) {
  auto file = open_regular_file(path);
  if (!file) return std::move(file).error();
  if (file->size > limit) {
    return Error(ErrorCode::limit_exceeded,
                 path + ": " + std::to_string(file->size) + " bytes exceeds the " + std::to_string(limit) + "-byte limit");
  }
  auto data = read_all_fd(file->fd.get());
  if (!data) return std::move(data).error().with_context(path);
  return data;
}

class FileByteSource final : public ByteSource {
 public:
  explicit FileByteSource(UniqueFd fd, std::string path) : fd_(std::move(fd)), path_(std::move(path)) {}
  Result<std::size_t> read(std::span<std::uint8_t> out) override {
    while (true) {
      const ssize_t n = ::read(fd_.get(), out.data(), out.size());
      if (n >= 0) return static_cast<std::size_t>(n);
      if (errno != EINTR) return errno_error(errno, "reading " + path_);
    }
  }

 private:
  UniqueFd fd_;
  std::string path_;
};

}  // namespace

OciLocation split_oci_location(const std::string& location) {
  const std::size_t colon = location.rfind(':');
  if (colon == std::string::npos || location.find('/', colon) != std::string::npos) return {location, ""};
  return {location.substr(0, colon), location.substr(colon + 1)};
}

Result<std::unique_ptr<OciLayoutStore>> OciLayoutStore::open(const std::string& dir) {
  std::error_code ec;
  const auto root = std::filesystem::canonical(dir, ec);
  if (ec) return Error(ErrorCode::not_found, "OCI layout '" + dir + "': " + ec.message());
  const std::string layout_file = (root / "oci-layout").string();
  auto marker = read_small_file(layout_file, 64 << 10);
  if (!marker) return std::move(marker).error().with_context("OCI layout '" + dir + "' (no oci-layout file?)");
  const auto doc = nlohmann::json::parse(*marker, nullptr, false);
  if (doc.is_discarded() || !doc.is_object() || !doc.contains("imageLayoutVersion") ||
      !doc["imageLayoutVersion"].is_string()) {
    return Error(ErrorCode::parse_error, layout_file + ": not {\"imageLayoutVersion\": \"...\"}");
  }
  const std::string version = doc["imageLayoutVersion"].get<std::string>();
  if (!version.starts_with("1.")) {
    return Error(ErrorCode::unsupported, layout_file + ": imageLayoutVersion " + version + " is not 1.x");
  }
  return std::unique_ptr<OciLayoutStore>(new OciLayoutStore(root.string()));
}

Result<std::string> OciLayoutStore::blob_path(const std::string& digest) const {
  if (!is_valid_sha256_digest(digest)) {
    return Error(ErrorCode::invalid_argument,
                 "blob digest '" + digest + "' is not sha256: followed by 64 lowercase hex digits");
  }
  const std::filesystem::path path = std::filesystem::path(root_) / "blobs" / "sha256" / digest.substr(7);
  std::error_code ec;
  const auto canonical = std::filesystem::canonical(path, ec);
  if (ec) return Error(ErrorCode::not_found, "blob " + digest + " not in OCI layout " + root_ + ": " + ec.message());
  const std::string text = canonical.string();
  if (!text.starts_with(root_ + "/")) {
    return Error(ErrorCode::invalid_argument, "blob " + digest + " resolves outside the OCI layout (" + text + ")");
  }
  return text;
}

Result<FetchedManifest> OciLayoutStore::fetch_manifest(const std::string& reference) {
  if (is_valid_sha256_digest(reference)) {
    auto path = blob_path(reference);
    if (!path) return std::move(path).error();
    auto body = read_small_file(*path, kMaxManifestBytes);
    if (!body) return std::move(body).error();
    return FetchedManifest{std::move(*body), "", reference};
  }
  auto index = read_small_file(root_ + "/index.json", kMaxManifestBytes);
  if (!index) return std::move(index).error();
  if (reference.empty()) return FetchedManifest{std::move(*index), std::string(media_type::kOciIndex), ""};
  auto parsed = parse_manifest(*index, media_type::kOciIndex);
  if (!parsed) return std::move(parsed).error().with_context(root_ + "/index.json");
  const auto* idx = std::get_if<ImageIndex>(&*parsed);
  if (idx == nullptr) return Error(ErrorCode::parse_error, root_ + "/index.json is not an image index");
  std::string tags;
  for (const auto& entry : idx->manifests) {
    auto name = entry.annotations.find(std::string(kRefNameAnnotation));
    if (name == entry.annotations.end()) continue;
    if (name->second == reference) {
      auto path = blob_path(entry.digest);
      if (!path) return std::move(path).error();
      auto body = read_small_file(*path, kMaxManifestBytes);
      if (!body) return std::move(body).error();
      return FetchedManifest{std::move(*body), entry.media_type, entry.digest};
    }
    tags += (tags.empty() ? "" : ", ") + name->second;
  }
  return Error(ErrorCode::not_found, "OCI layout " + root_ + " has no tag '" + reference + "' (tags: " +
                                         (tags.empty() ? std::string("none") : tags) + ")");
}

Result<std::string> OciLayoutStore::read_blob(const Descriptor& blob) {
  auto path = blob_path(blob.digest);
  if (!path) return std::move(path).error();
  return read_small_file(*path, kMaxManifestBytes);
}

Result<std::unique_ptr<ByteSource>> OciLayoutStore::open_blob(const Descriptor& blob) {
  auto path = blob_path(blob.digest);
  if (!path) return std::move(path).error();
  auto file = open_regular_file(*path);
  if (!file) return std::move(file).error();
  return std::unique_ptr<ByteSource>(std::make_unique<FileByteSource>(std::move(file->fd), *path));
}

}  // namespace hashsieve::image
