// Builders for manifest, index and config JSON, shared by the image tests.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "hashsieve/image/manifest.h"

namespace hashsieve::image::testing {

inline nlohmann::json descriptor(std::string_view media_type, const std::string& body) {
  return {{"mediaType", media_type}, {"digest", sha256_digest_of(body)}, {"size", body.size()}};
}

inline std::string config_json(const std::string& os, const std::string& arch, const std::vector<std::string>& diff_ids,
                               const std::string& variant = "") {
  nlohmann::json c = {{"os", os}, {"architecture", arch}, {"rootfs", {{"type", "layers"}, {"diff_ids", diff_ids}}}};
  if (!variant.empty()) c["variant"] = variant;
  return c.dump();
}

struct LayerSpec {
  std::string media_type;
  std::string blob;  // the stored bytes
};

inline std::string manifest_json(std::string_view media_type, std::string_view config_type, const std::string& config,
                                 const std::vector<LayerSpec>& layers) {
  nlohmann::json m = {{"schemaVersion", 2}, {"mediaType", media_type}, {"config", descriptor(config_type, config)}};
  m["layers"] = nlohmann::json::array();
  for (const auto& l : layers) m["layers"].push_back(descriptor(l.media_type, l.blob));
  return m.dump();
}

inline nlohmann::json index_entry(std::string_view media_type, const std::string& body, const std::string& os,
                                  const std::string& arch, const std::string& variant = "") {
  nlohmann::json d = descriptor(media_type, body);
  if (!os.empty()) {
    d["platform"] = {{"os", os}, {"architecture", arch}};
    if (!variant.empty()) d["platform"]["variant"] = variant;
  }
  return d;
}

inline std::string index_json(std::string_view media_type, const std::vector<nlohmann::json>& entries) {
  nlohmann::json i = {{"schemaVersion", 2}, {"mediaType", media_type}, {"manifests", entries}};
  return i.dump();
}

}  // namespace hashsieve::image::testing
