// docker-archive: the tar `docker save` writes.
//
// Two layouts exist and both are read the same way, through manifest.json:
//   docker < 25: manifest.json [{"Config":"<hex>.json","RepoTags":[..],"Layers":["<id>/layer.tar",..]}]
//   docker 25+:  manifest.json with "Config"/"Layers" naming "blobs/sha256/<hex>" (an OCI layout
//                is written beside it; we don't need it).
// The outer tar is indexed once (entry name -> byte range), by letting
// libarchive parse the memory-mapped file: for an uncompressed tar its data
// blocks point straight into the mapping, which gives each entry's offset.
// Each layer is then a ByteSource over its byte range (pread), handed to
// open_tar_layer, which detects the compression by magic. A compressed outer
// archive (docker save | gzip) is refused: random access needs the plain tar.
//
// Selection: "PATH" picks the first image of manifest.json (the others are
// listed in ResolvedImage::skipped); "PATH:repo:tag" picks the image whose
// RepoTags contain "repo:tag". The path part is the longest prefix that
// names an existing file, so paths with ':' still work.
#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "hashsieve/core/file.h"
#include "hashsieve/digest/crypto.h"
#include "sources_internal.h"
#include "tar_layer.h"

namespace hashsieve::image {
namespace {

constexpr std::uint64_t kMaxJsonBytes = 16 << 20;  // manifest.json and configs

struct Range {
  std::uint64_t offset = 0;
  std::uint64_t size = 0;
};

bool is_regular_file(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

std::string_view compression_of(std::span<const std::uint8_t> head) {
  auto starts = [&](std::initializer_list<std::uint8_t> magic) {
    if (head.size() < magic.size()) return false;
    std::size_t i = 0;
    for (std::uint8_t m : magic) {
      if (head[i++] != m) return false;
    }
    return true;
  };
  if (starts({0x1f, 0x8b})) return "gzip";
  if (starts({0x28, 0xb5, 0x2f, 0xfd})) return "zstd";
  if (starts({0xfd, '7', 'z', 'X', 'Z', 0x00})) return "xz";
  if (starts({'B', 'Z', 'h'})) return "bzip2";
  return "";
}

std::string sha256_hex(std::span<const std::uint8_t> bytes) {
  digest::MultiHasher h{digest::CryptoSelection{digest::CryptoAlgorithm::sha256}};
  h.update(bytes);
  return h.finish().sha256->hex();
}

// The sha256 hex a docker-archive file name carries ("blobs/sha256/<hex>",
// "<hex>.json", "<hex>/layer.tar" is NOT a content digest), or "".
std::string digest_in_name(std::string_view name) {
  auto is_hex64 = [](std::string_view s) {
    return s.size() == 64 && s.find_first_not_of("0123456789abcdef") == std::string_view::npos;
  };
  constexpr std::string_view kBlobs = "blobs/sha256/";
  if (name.starts_with(kBlobs) && is_hex64(name.substr(kBlobs.size()))) return std::string(name.substr(kBlobs.size()));
  if (name.ends_with(".json") && is_hex64(name.substr(0, name.size() - 5))) return std::string(name.substr(0, 64));
  return "";
}

// Reads [offset, offset+size) of an archive member with pread.
class RangeSource final : public ByteSource {
 public:
  RangeSource(std::shared_ptr<UniqueFd> fd, Range range, std::string name)
      : fd_(std::move(fd)), range_(range), name_(std::move(name)) {}

  Result<std::size_t> read(std::span<std::uint8_t> out) override {
    const std::uint64_t left = range_.size - pos_;
    const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(out.size(), left));
    if (want == 0) return std::size_t{0};
    for (;;) {
      const ssize_t n = ::pread(fd_->get(), out.data(), want, static_cast<off_t>(range_.offset + pos_));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return errno_error(errno, "reading archive member '" + name_ + "'");
      if (n == 0) {
        return Error(ErrorCode::io_error, "archive member '" + name_ + "': the archive file shrank while reading");
      }
      pos_ += static_cast<std::uint64_t>(n);
      return static_cast<std::size_t>(n);
    }
  }

 private:
  std::shared_ptr<UniqueFd> fd_;
  Range range_;
  std::string name_;
  std::uint64_t pos_ = 0;
};

// Entry name -> data range of every regular file in the (uncompressed) tar.
Result<std::map<std::string, Range>> index_archive(const std::string& path, std::uint64_t max_entries) {
  auto mapped = MappedFile::open(path);
  if (!mapped) return std::move(mapped).error();
  const auto bytes = mapped->bytes();
  if (auto c = compression_of(bytes); !c.empty()) {
    return Error(ErrorCode::unsupported, "the archive is " + std::string(c) +
                                             "-compressed; docker-archive needs the plain tar `docker save` "
                                             "writes (decompress it first)");
  }
  std::unique_ptr<archive, decltype(&archive_read_free)> a(archive_read_new(), archive_read_free);
  if (!a) return Error(ErrorCode::internal, "archive_read_new failed");
  archive_read_support_format_tar(a.get());
  if (archive_read_open_memory(a.get(), bytes.data(), bytes.size()) != ARCHIVE_OK) {
    return Error(ErrorCode::parse_error, std::string("not a tar archive: ") + archive_error_string(a.get()));
  }
  std::map<std::string, Range> index;
  std::uint64_t entries = 0;
  for (;;) {
    archive_entry* entry = nullptr;
    const int r = archive_read_next_header(a.get(), &entry);
    if (r == ARCHIVE_EOF) break;
    if (r < ARCHIVE_WARN) {
      return Error(ErrorCode::parse_error, std::string("corrupt or truncated tar: ") + archive_error_string(a.get()));
    }
    if (++entries > max_entries) {
      return Error(ErrorCode::limit_exceeded,
                   "archive has more than max_entries=" + std::to_string(max_entries) + " entries");
    }
    if (archive_entry_filetype(entry) != AE_IFREG || archive_entry_hardlink(entry) != nullptr) continue;
    const char* raw = archive_entry_pathname(entry);
    if (raw == nullptr) continue;
    auto name = normalize_entry_path(raw);
    if (!name) return std::move(name).error().with_context("archive member");
    const la_int64_t size = archive_entry_size(entry);
    Range range{0, static_cast<std::uint64_t>(size < 0 ? 0 : size)};
    if (range.size > 0) {
      const void* block = nullptr;
      std::size_t block_size = 0;
      la_int64_t block_offset = 0;
      const int d = archive_read_data_block(a.get(), &block, &block_size, &block_offset);
      const auto* p = static_cast<const std::uint8_t*>(block);
      // libarchive hands out pointers into our buffer for a plain tar; anything
      // else (a sparse member, a short archive) cannot be served by byte range.
      if (d != ARCHIVE_OK || block_offset != 0 || p < bytes.data() || p + block_size > bytes.data() + bytes.size() ||
          block_size != range.size) {
        return Error(ErrorCode::parse_error, "archive member '" + *name + "' is truncated or not stored contiguously");
      }
      range.offset = static_cast<std::uint64_t>(p - bytes.data());
    }
    index[*name] = range;  // a later duplicate wins, as extraction would
  }
  return index;
}

class DockerArchiveSource final : public ImageSource {
 public:
  DockerArchiveSource(std::string path, std::string selector, SourceOptions options)
      : path_(std::move(path)), selector_(std::move(selector)), options_(std::move(options)) {}

  Status open() {
    auto opened = open_regular_file(path_);
    if (!opened) return std::move(opened).error();
    fd_ = std::make_shared<UniqueFd>(std::move(opened->fd));
    auto index = index_archive(path_, options_.limits.max_entries);
    if (!index) return std::move(index).error().with_context(path_);
    index_ = std::move(*index);
    return {};
  }

  Result<std::vector<ResolvedImage>> resolve() override {
    auto r = resolve_image();
    if (!r) return std::move(r).error().with_context(path_);
    return std::vector<ResolvedImage>{std::move(*r)};
  }

  Result<std::unique_ptr<LayerEntries>> open_layer(const ResolvedImage& image, std::size_t index) override {
    if (!resolved_ || image.config_digest != resolved_->config_digest) {
      return Error(ErrorCode::invalid_argument, path_ + ": open_layer for an image this source did not resolve");
    }
    if (index >= layer_names_.size()) {
      return Error(ErrorCode::invalid_argument, path_ + ": no layer " + std::to_string(index));
    }
    const std::string& name = layer_names_[index];
    const LayerDescriptor& layer = resolved_->layers[index];
    auto source = std::make_unique<RangeSource>(fd_, index_.at(name), name);
    LayerExpectations expect{"", layer.digest, layer.diff_id, layer.size};
    auto entries = open_tar_layer(std::move(source), expect, options_.limits);
    if (!entries) return std::move(entries).error().with_context(path_ + ": layer '" + name + "'");
    return entries;
  }

 private:
  Result<std::vector<std::uint8_t>> read_member(const std::string& name, std::uint64_t max) {
    auto it = index_.find(name);
    if (it == index_.end()) return Error(ErrorCode::not_found, "no member '" + name + "' in the archive");
    if (it->second.size > max) {
      return Error(ErrorCode::limit_exceeded, "member '" + name + "' is larger than " + std::to_string(max) + " bytes");
    }
    std::vector<std::uint8_t> out(it->second.size);
    RangeSource src(fd_, it->second, name);
    std::size_t done = 0;
    while (done < out.size()) {
      auto n = src.read(std::span(out.data() + done, out.size() - done));
      if (!n) return std::move(n).error();
      done += *n;
    }
    return out;
  }

  Result<nlohmann::json> read_json(const std::string& name) {
    auto bytes = read_member(name, kMaxJsonBytes);
    if (!bytes) return std::move(bytes).error();
    nlohmann::json j = nlohmann::json::parse(bytes->begin(), bytes->end(), nullptr, false);
    if (j.is_discarded()) return Error(ErrorCode::parse_error, "'" + name + "' is not valid JSON");
    return j;
  }

  Result<ResolvedImage> resolve_image() {
    auto manifest = read_json("manifest.json");
    if (!manifest) return std::move(manifest).error();
    if (!manifest->is_array() || manifest->empty()) {
      return Error(ErrorCode::parse_error, "manifest.json: expected a non-empty array of images");
    }
    auto tag_list = [](const nlohmann::json& image) {
      std::vector<std::string> tags;
      if (auto it = image.find("RepoTags"); it != image.end() && it->is_array()) {
        for (const auto& t : *it) {
          if (t.is_string()) tags.push_back(t.get<std::string>());
        }
      }
      return tags;
    };
    std::size_t chosen = manifest->size();
    if (selector_.empty()) {
      chosen = 0;
    } else {
      for (std::size_t i = 0; i < manifest->size() && chosen == manifest->size(); ++i) {
        for (const auto& tag : tag_list((*manifest)[i])) {
          if (tag == selector_) chosen = i;
        }
      }
      if (chosen == manifest->size()) {
        return Error(ErrorCode::not_found, "no image tagged '" + selector_ + "' in manifest.json");
      }
    }

    ResolvedImage image;
    image.reference = "docker-archive:" + path_ + (selector_.empty() ? "" : ":" + selector_);
    for (std::size_t i = 0; i < manifest->size(); ++i) {
      if (i == chosen) continue;
      const auto tags = tag_list((*manifest)[i]);
      image.skipped.push_back("manifest.json image " + std::to_string(i) +
                              (tags.empty() ? std::string(" (untagged)") : " (" + tags.front() + ")") +
                              ": not selected; use docker-archive:PATH:repo:tag");
    }

    const nlohmann::json& entry = (*manifest)[chosen];
    if (!entry.is_object() || !entry.contains("Config") || !entry["Config"].is_string() || !entry.contains("Layers") ||
        !entry["Layers"].is_array()) {
      return Error(ErrorCode::parse_error,
                   "manifest.json image " + std::to_string(chosen) + ": needs \"Config\" and \"Layers\"");
    }
    auto config_name = normalize_entry_path(entry["Config"].get<std::string>());
    if (!config_name) return std::move(config_name).error().with_context("manifest.json Config");
    auto config_bytes = read_member(*config_name, kMaxJsonBytes);
    if (!config_bytes) return std::move(config_bytes).error();
    const std::string config_hex = sha256_hex(*config_bytes);
    if (const std::string named = digest_in_name(*config_name); !named.empty() && named != config_hex) {
      return Error(ErrorCode::integrity_error, "config '" + *config_name + "': digest mismatch: expected sha256:" +
                                                   named + ", got sha256:" + config_hex);
    }
    image.config_digest = "sha256:" + config_hex;
    const nlohmann::json config = nlohmann::json::parse(config_bytes->begin(), config_bytes->end(), nullptr, false);
    if (config.is_discarded() || !config.is_object()) {
      return Error(ErrorCode::parse_error, "config '" + *config_name + "' is not a JSON object");
    }
    auto str = [&](const char* key) {
      auto it = config.find(key);
      return it != config.end() && it->is_string() ? it->get<std::string>() : std::string();
    };
    image.platform = Platform{str("os"), str("architecture"), str("variant")};
    if (options_.platforms.platform && !options_.platforms.all_platforms &&
        !(*options_.platforms.platform == image.platform)) {
      return Error(ErrorCode::not_found, "the image is " + image.platform.to_string() + ", not the requested " +
                                             options_.platforms.platform->to_string());
    }

    std::vector<std::string> diff_ids;
    if (auto rootfs = config.find("rootfs"); rootfs != config.end() && rootfs->is_object()) {
      if (auto ids = rootfs->find("diff_ids"); ids != rootfs->end() && ids->is_array()) {
        for (const auto& id : *ids) {
          if (!id.is_string()) return Error(ErrorCode::parse_error, "config rootfs.diff_ids: not a string");
          diff_ids.push_back(id.get<std::string>());
        }
      }
    }
    const auto& layers = entry["Layers"];
    if (layers.size() != diff_ids.size()) {
      return Error(ErrorCode::parse_error, "manifest.json lists " + std::to_string(layers.size()) +
                                               " layers but the config has " + std::to_string(diff_ids.size()) +
                                               " diff_ids");
    }
    layer_names_.clear();
    for (std::size_t i = 0; i < layers.size(); ++i) {
      if (!layers[i].is_string()) return Error(ErrorCode::parse_error, "manifest.json Layers: not a string");
      auto name = normalize_entry_path(layers[i].get<std::string>());
      if (!name) return std::move(name).error().with_context("manifest.json Layers");
      auto it = index_.find(*name);
      if (it == index_.end()) return Error(ErrorCode::not_found, "layer '" + *name + "' is not in the archive");
      std::uint8_t head[4] = {};
      RangeSource peek(fd_, it->second, *name);
      std::size_t got = 0;
      while (got < sizeof head) {
        auto n = peek.read(std::span(head + got, sizeof head - got));
        if (!n) return std::move(n).error();
        if (*n == 0) break;
        got += *n;
      }
      LayerDescriptor layer;
      const std::string_view compression = compression_of(std::span(head, got));
      if (compression.empty()) {
        layer.media_type = "application/vnd.oci.image.layer.v1.tar";
      } else if (compression == "gzip" || compression == "zstd") {
        layer.media_type = "application/vnd.oci.image.layer.v1.tar+" + std::string(compression);
      } else {
        return Error(ErrorCode::unsupported, "layer '" + *name + "' is " + std::string(compression) + "-compressed");
      }
      layer.diff_id = diff_ids[i];
      layer.size = it->second.size;
      if (const std::string named = digest_in_name(*name); !named.empty()) {
        layer.digest = "sha256:" + named;
      } else if (compression.empty()) {
        layer.digest = layer.diff_id;  // an uncompressed blob is its own diff
      }
      image.layers.push_back(std::move(layer));
      layer_names_.push_back(*name);
    }
    resolved_ = image;
    return image;
  }

  std::string path_;
  std::string selector_;
  SourceOptions options_;
  std::shared_ptr<UniqueFd> fd_;
  std::map<std::string, Range> index_;
  std::optional<ResolvedImage> resolved_;
  std::vector<std::string> layer_names_;
};

}  // namespace

Result<std::unique_ptr<ImageSource>> open_docker_archive_source(const std::string& location,
                                                                const SourceOptions& options) {
  std::string path = location;
  std::string selector;
  if (!is_regular_file(location)) {
    // "PATH:repo:tag": the longest prefix that names a file is the path.
    for (std::size_t colon = location.rfind(':'); colon != std::string::npos && colon > 0;
         colon = location.rfind(':', colon - 1)) {
      if (is_regular_file(location.substr(0, colon))) {
        path = location.substr(0, colon);
        selector = location.substr(colon + 1);
        break;
      }
    }
  }
  auto source = std::make_unique<DockerArchiveSource>(path, selector, options);
  if (Status s = source->open(); !s) return std::move(s).error();
  return std::unique_ptr<ImageSource>(std::move(source));
}

}  // namespace hashsieve::image
