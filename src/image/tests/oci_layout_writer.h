// Writes OCI image layouts for the image tests: blobs, images (config +
// manifest), indexes and tagged index.json entries.
#pragma once

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "hashsieve/image/manifest.h"

namespace hashsieve::image::testing {

struct LayerBlob {
  std::string media_type;
  std::vector<std::uint8_t> blob;  // stored bytes
  std::string diff_id;             // sha256 of the uncompressed tar
};

struct WrittenImage {
  std::string manifest;  // bytes
  std::string manifest_digest;
  std::string config_digest;
  std::vector<std::string> layer_digests;
};

class OciLayoutWriter {
 public:
  explicit OciLayoutWriter(std::filesystem::path root) : root_(std::move(root)) {
    std::filesystem::create_directories(root_ / "blobs" / "sha256");
    std::ofstream(root_ / "oci-layout") << R"({"imageLayoutVersion":"1.0.0"})";
    flush();
  }

  std::string put(std::string_view bytes) {
    const std::string digest = sha256_digest_of(bytes);
    std::ofstream(root_ / "blobs" / "sha256" / digest.substr(7), std::ios::binary) << bytes;
    return digest;
  }

  WrittenImage image(const std::string& os, const std::string& arch, const std::vector<LayerBlob>& layers) {
    nlohmann::json config = {{"os", os}, {"architecture", arch}, {"rootfs", {{"type", "layers"}}}};
    config["rootfs"]["diff_ids"] = nlohmann::json::array();
    nlohmann::json manifest = {{"schemaVersion", 2}, {"mediaType", media_type::kOciManifest}};
    manifest["layers"] = nlohmann::json::array();
    WrittenImage out;
    for (const auto& l : layers) {
      config["rootfs"]["diff_ids"].push_back(l.diff_id);
      const std::string d = put({reinterpret_cast<const char*>(l.blob.data()), l.blob.size()});
      out.layer_digests.push_back(d);
      manifest["layers"].push_back({{"mediaType", l.media_type}, {"digest", d}, {"size", l.blob.size()}});
    }
    const std::string config_bytes = config.dump();
    out.config_digest = put(config_bytes);
    manifest["config"] = {{"mediaType", media_type::kOciConfig}, {"digest", out.config_digest}, {"size", config_bytes.size()}};
    out.manifest = manifest.dump();
    out.manifest_digest = put(out.manifest);
    return out;
  }

  // An index of images with their platforms; returns its bytes.
  std::string index(const std::vector<std::pair<WrittenImage, std::string>>& images_and_arch) {
    nlohmann::json idx = {{"schemaVersion", 2}, {"mediaType", media_type::kOciIndex}};
    idx["manifests"] = nlohmann::json::array();
    for (const auto& [img, arch] : images_and_arch) {
      idx["manifests"].push_back({{"mediaType", media_type::kOciManifest},
                                  {"digest", img.manifest_digest},
                                  {"size", img.manifest.size()},
                                  {"platform", {{"os", "linux"}, {"architecture", arch}}}});
    }
    const std::string body = idx.dump();
    put(body);
    return body;
  }

  void tag(const std::string& name, std::string_view type, const std::string& body) {
    entries_.push_back({{"mediaType", type},
                        {"digest", sha256_digest_of(body)},
                        {"size", body.size()},
                        {"annotations", {{"org.opencontainers.image.ref.name", name}}}});
    flush();
  }

  const std::filesystem::path& root() const { return root_; }

 private:
  void flush() {
    std::ofstream(root_ / "index.json") << nlohmann::json{{"schemaVersion", 2}, {"manifests", entries_}}.dump();
  }
  std::filesystem::path root_;
  nlohmann::json entries_ = nlohmann::json::array();
};

}  // namespace hashsieve::image::testing
