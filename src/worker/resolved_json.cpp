#include "resolved_json.h"

#include <nlohmann/json.hpp>

namespace hashsieve::worker {

using Json = nlohmann::json;

std::string resolved_to_json(const image::ResolvedImage& image) {
  Json j;
  j["reference"] = image.reference;
  j["repository"] = image.repository;
  j["manifest_digest"] = image.manifest_digest;
  j["config_digest"] = image.config_digest;
  j["platform"] = {{"os", image.platform.os},
                   {"architecture", image.platform.architecture},
                   {"variant", image.platform.variant}};
  Json layers = Json::array();
  for (const auto& l : image.layers) {
    layers.push_back({{"media_type", l.media_type}, {"digest", l.digest}, {"diff_id", l.diff_id}, {"size", l.size}});
  }
  j["layers"] = std::move(layers);
  j["skipped"] = image.skipped;
  return j.dump();
}

Result<image::ResolvedImage> resolved_from_json(const std::string& text) {
  try {
    const Json j = Json::parse(text);
    image::ResolvedImage image;
    image.reference = j.at("reference").get<std::string>();
    image.repository = j.at("repository").get<std::string>();
    image.manifest_digest = j.at("manifest_digest").get<std::string>();
    image.config_digest = j.at("config_digest").get<std::string>();
    const Json& p = j.at("platform");
    image.platform = {p.at("os").get<std::string>(), p.at("architecture").get<std::string>(),
                      p.at("variant").get<std::string>()};
    for (const Json& l : j.at("layers")) {
      image.layers.push_back({l.at("media_type").get<std::string>(), l.at("digest").get<std::string>(),
                              l.at("diff_id").get<std::string>(), l.at("size").get<std::uint64_t>()});
    }
    image.skipped = j.at("skipped").get<std::vector<std::string>>();
    return image;
  } catch (const Json::exception& e) {
    return Error(ErrorCode::parse_error, std::string("stored resolved image: ") + e.what());
  }
}

}  // namespace hashsieve::worker
