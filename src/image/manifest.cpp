#include "hashsieve/image/manifest.h"

#include <array>
#include <nlohmann/json.hpp>

#include "hashsieve/digest/crypto.h"
#include "hashsieve/image/reference.h"

namespace hashsieve::image {
namespace {

using nlohmann::json;

constexpr std::array<std::string_view, 9> kLayerTypes = {
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    // Some producers write the uncompressed Docker type; the payload is a plain tar.
    "application/vnd.docker.image.rootfs.diff.tar",
};

Error parse_err(const std::string& what) { return Error(ErrorCode::parse_error, what); }

// The string member `key` of `obj`, "" when absent; an error when present
// with another type.
Result<std::string> opt_string(const json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return std::string();
  if (!it->is_string()) return parse_err(std::string("field '") + key + "' is not a string");
  return it->get<std::string>();
}

Result<Platform> parse_platform(const json& p) {
  if (!p.is_object()) return parse_err("'platform' is not an object");
  Platform out;
  auto os = opt_string(p, "os");
  if (!os) return std::move(os).error();
  auto arch = opt_string(p, "architecture");
  if (!arch) return std::move(arch).error();
  auto variant = opt_string(p, "variant");
  if (!variant) return std::move(variant).error();
  out.os = *os;
  out.architecture = *arch;
  out.variant = *variant;
  return out;
}

Result<Descriptor> parse_descriptor(const json& d, const std::string& where) {
  if (!d.is_object()) return parse_err(where + ": descriptor is not an object");
  Descriptor out;
  auto mt = opt_string(d, "mediaType");
  if (!mt) return std::move(mt).error().with_context(where);
  out.media_type = *mt;
  auto digest = opt_string(d, "digest");
  if (!digest) return std::move(digest).error().with_context(where);
  if (digest->empty()) return parse_err(where + ": missing 'digest'");
  // Other algorithms are legal OCI but we can verify only sha256; an index
  // entry with another algorithm is reported by the caller, a layer fails.
  if (!is_valid_sha256_digest(*digest)) {
    if (digest->starts_with("sha256:") || digest->find(':') == std::string::npos) {
      return parse_err(where + ": invalid digest '" + *digest + "'");
    }
    return Error(ErrorCode::unsupported, where + ": digest algorithm of '" + *digest + "' is not sha256");
  }
  out.digest = *digest;
  auto size = d.find("size");
  if (size == d.end() || !size->is_number_integer() || size->get<std::int64_t>() < 0) {
    return parse_err(where + ": missing or invalid 'size'");
  }
  out.size = size->get<std::uint64_t>();
  if (auto p = d.find("platform"); p != d.end() && !p->is_null()) {
    auto platform = parse_platform(*p);
    if (!platform) return std::move(platform).error().with_context(where);
    out.platform = std::move(*platform);
  }
  auto at = opt_string(d, "artifactType");
  if (!at) return std::move(at).error().with_context(where);
  out.artifact_type = *at;
  if (auto a = d.find("annotations"); a != d.end() && !a->is_null()) {
    if (!a->is_object()) return parse_err(where + ": 'annotations' is not an object");
    for (const auto& [k, v] : a->items()) {
      if (!v.is_string()) return parse_err(where + ": annotation '" + k + "' is not a string");
      out.annotations.emplace(k, v.get<std::string>());
    }
  }
  if (auto u = d.find("urls"); u != d.end() && !u->is_null()) {
    if (!u->is_array()) return parse_err(where + ": 'urls' is not an array");
    for (const auto& url : *u) {
      if (!url.is_string()) return parse_err(where + ": 'urls' entry is not a string");
      out.urls.push_back(url.get<std::string>());
    }
  }
  return out;
}

bool is_index_type(std::string_view t) { return t == media_type::kOciIndex || t == media_type::kDockerManifestList; }
bool is_image_type(std::string_view t) { return t == media_type::kOciManifest || t == media_type::kDockerManifest; }
bool is_schema1_type(std::string_view t) {
  return t == media_type::kDockerSchema1 || t == media_type::kDockerSchema1Signed;
}

// Content types may carry parameters ("...; charset=utf-8").
std::string_view bare_type(std::string_view t) {
  const std::size_t semi = t.find(';');
  if (semi != std::string_view::npos) t = t.substr(0, semi);
  while (!t.empty() && t.back() == ' ') t.remove_suffix(1);
  return t;
}

}  // namespace

bool is_supported_layer_media_type(std::string_view type) {
  for (auto known : kLayerTypes) {
    if (type == known) return true;
  }
  return false;
}

Result<ParsedManifest> parse_manifest(std::string_view body, std::string_view content_type) {
  content_type = bare_type(content_type);
  if (is_schema1_type(content_type)) {
    return Error(ErrorCode::unsupported,
                 "Docker schema 1 manifest (" + std::string(content_type) +
                     ") is not supported; re-push the image with a current client (schema 2 or OCI)");
  }
  const json doc = json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return parse_err("manifest is not valid JSON");
  if (!doc.is_object()) return parse_err("manifest is not a JSON object");
  auto body_type = opt_string(doc, "mediaType");
  if (!body_type) return std::move(body_type).error().with_context("manifest");
  if (auto sv = doc.find("schemaVersion"); sv != doc.end()) {
    if (!sv->is_number_integer()) return parse_err("manifest: 'schemaVersion' is not an integer");
    if (sv->get<std::int64_t>() == 1 || is_schema1_type(*body_type)) {
      return Error(ErrorCode::unsupported,
                   "Docker schema 1 manifest is not supported; re-push the image with a current client "
                   "(schema 2 or OCI)");
    }
    if (sv->get<std::int64_t>() != 2) {
      return Error(ErrorCode::unsupported,
                   "manifest schemaVersion " + std::to_string(sv->get<std::int64_t>()) + " is not supported");
    }
  } else {
    return parse_err("manifest: missing 'schemaVersion'");
  }
  std::string type = *body_type;
  if (!is_index_type(type) && !is_image_type(type)) {
    if (is_index_type(content_type) || is_image_type(content_type)) {
      type = std::string(content_type);
    } else if (type.empty()) {
      // Neither says: the OCI spec lets mediaType be absent; tell by shape.
      if (doc.contains("manifests")) {
        type = std::string(media_type::kOciIndex);
      } else if (doc.contains("config") || doc.contains("layers")) {
        type = std::string(media_type::kOciManifest);
      }
    }
  }
  if (is_index_type(type)) {
    ImageIndex index;
    index.media_type = type;
    auto m = doc.find("manifests");
    if (m == doc.end() || !m->is_array()) return parse_err("index: missing 'manifests' array");
    for (std::size_t i = 0; i < m->size(); ++i) {
      auto d = parse_descriptor((*m)[i], "index entry " + std::to_string(i));
      if (!d) {
        if (d.error().code() == ErrorCode::unsupported) {
          // Keep it so the caller can report it as skipped.
          Descriptor unreadable;
          unreadable.media_type = "unsupported: " + d.error().message();
          index.manifests.push_back(std::move(unreadable));
          continue;
        }
        return std::move(d).error();
      }
      index.manifests.push_back(std::move(*d));
    }
    return ParsedManifest(std::move(index));
  }
  if (is_image_type(type)) {
    ImageManifest manifest;
    manifest.media_type = type;
    auto at = opt_string(doc, "artifactType");
    if (!at) return std::move(at).error().with_context("manifest");
    manifest.artifact_type = *at;
    auto c = doc.find("config");
    if (c == doc.end()) return parse_err("manifest: missing 'config'");
    auto config = parse_descriptor(*c, "manifest config");
    if (!config) return std::move(config).error();
    manifest.config = std::move(*config);
    auto l = doc.find("layers");
    if (l == doc.end() || !l->is_array()) return parse_err("manifest: missing 'layers' array");
    for (std::size_t i = 0; i < l->size(); ++i) {
      auto d = parse_descriptor((*l)[i], "layer " + std::to_string(i));
      if (!d) return std::move(d).error();
      manifest.layers.push_back(std::move(*d));
    }
    return ParsedManifest(std::move(manifest));
  }
  return Error(ErrorCode::unsupported, "manifest media type '" + (type.empty() ? std::string(content_type) : type) +
                                           "' is not an image manifest or index");
}

Status check_image_layers(const ImageManifest& manifest) {
  for (std::size_t i = 0; i < manifest.layers.size(); ++i) {
    const auto& layer = manifest.layers[i];
    if (!is_supported_layer_media_type(layer.media_type)) {
      return Error(ErrorCode::unsupported, "layer " + std::to_string(i) + " (" + layer.digest +
                                               ") has unsupported media type '" + layer.media_type + "'");
    }
  }
  return {};
}

Result<ImageConfig> parse_image_config(std::string_view body) {
  const json doc = json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return parse_err("image config is not valid JSON");
  if (!doc.is_object()) return parse_err("image config is not a JSON object");
  ImageConfig config;
  auto platform = parse_platform(doc);
  if (!platform) return std::move(platform).error().with_context("image config");
  config.platform = std::move(*platform);
  auto rootfs = doc.find("rootfs");
  if (rootfs == doc.end() || !rootfs->is_object()) return parse_err("image config: missing 'rootfs'");
  auto ids = rootfs->find("diff_ids");
  if (ids == rootfs->end() || !ids->is_array()) return parse_err("image config: missing 'rootfs.diff_ids'");
  for (const auto& id : *ids) {
    if (!id.is_string() || !is_valid_sha256_digest(id.get<std::string>())) {
      return parse_err("image config: 'rootfs.diff_ids' holds an entry that is not a sha256 digest");
    }
    config.diff_ids.push_back(id.get<std::string>());
  }
  return config;
}

std::optional<std::string> skip_reason(const Descriptor& entry) {
  if (entry.media_type.starts_with("unsupported: ")) return entry.media_type;
  if (auto it = entry.annotations.find("vnd.docker.reference.type"); it != entry.annotations.end()) {
    return "attestation manifest (" + it->second + ")";
  }
  if (entry.platform && entry.platform->os == "unknown" && entry.platform->architecture == "unknown") {
    return "attestation manifest (platform unknown/unknown)";
  }
  if (!entry.artifact_type.empty()) return "artifact of type '" + entry.artifact_type + "'";
  if (!is_image_type(entry.media_type) && !is_index_type(entry.media_type)) {
    return "unknown media type '" + entry.media_type + "'";
  }
  return std::nullopt;
}

bool platform_matches(const Platform& wanted, const Platform& p) {
  if (wanted.os != p.os || wanted.architecture != p.architecture) return false;
  if (wanted.variant.empty()) return true;
  // arm64 images often omit the (only) variant v8.
  if (p.variant.empty()) return wanted.architecture == "arm64" && wanted.variant == "v8";
  return wanted.variant == p.variant;
}

std::string sha256_digest_of(std::string_view bytes) {
  digest::MultiHasher hasher(digest::CryptoSelection{digest::CryptoAlgorithm::sha256});
  hasher.update({reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()});
  return "sha256:" + hasher.finish().sha256->hex();
}

}  // namespace hashsieve::image
