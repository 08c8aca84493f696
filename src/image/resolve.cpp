#include <algorithm>

#include "blob_store.h"
#include "hashsieve/image/reference.h"

namespace hashsieve::image {
namespace {

// Nested indexes are legal; real ones nest once at most. The bound stops a
// cycle of indexes referring to each other.
constexpr int kMaxIndexDepth = 4;

const Platform kDefaultPlatform{"linux", "amd64", ""};

struct Candidate {
  Descriptor descriptor;
  std::optional<Platform> platform;
};

class Resolver {
 public:
  Resolver(BlobStore& store, const ResolveRequest& request) : store_(store), request_(request) {}

  Result<std::vector<ResolvedImage>> run() {
    auto top = fetch_verified(request_.manifest_reference, "");
    if (!top) return std::move(top).error();
    auto parsed = parse_manifest(top->first.body, top->first.media_type);
    if (!parsed) return std::move(parsed).error().with_context("manifest " + request_.manifest_reference);
    if (auto* manifest = std::get_if<ImageManifest>(&*parsed)) {
      auto image = load_image(*manifest, top->second);
      if (!image) return std::move(image).error();
      if (request_.platforms.platform && !request_.platforms.all_platforms &&
          !platform_matches(*request_.platforms.platform, image->platform)) {
        return Error(ErrorCode::not_found, "image " + request_.display_reference + " is for platform " +
                                               image->platform.to_string() + ", not " +
                                               request_.platforms.platform->to_string());
      }
      return std::vector<ResolvedImage>{std::move(*image)};
    }
    std::vector<Candidate> candidates;
    if (auto st = walk_index(std::get<ImageIndex>(*parsed), 0, candidates); !st) return std::move(st).error();
    return select(candidates);
  }

 private:
  // Fetches a manifest and checks its digest: against the digest asked for,
  // else against the digest the server claims. Returns it with its digest.
  Result<std::pair<FetchedManifest, std::string>> fetch_verified(const std::string& reference,
                                                                 const std::string& media_type_hint) {
    auto fetched = store_.fetch_manifest(reference);
    if (!fetched) return std::move(fetched).error();
    if (fetched->media_type.empty()) fetched->media_type = media_type_hint;
    const std::string actual = sha256_digest_of(fetched->body);
    const std::string what = "manifest " + request_.repository + (request_.repository.empty() ? "" : "@") + reference;
    if (is_valid_sha256_digest(reference) && actual != reference) {
      return Error(ErrorCode::integrity_error,
                   what + ": content digest is " + actual + ", not the requested " + reference);
    }
    if (!fetched->claimed_digest.empty() && fetched->claimed_digest.starts_with("sha256:") &&
        actual != fetched->claimed_digest) {
      return Error(ErrorCode::integrity_error,
                   what + ": content digest is " + actual + ", not the claimed " + fetched->claimed_digest);
    }
    return std::make_pair(std::move(*fetched), actual);
  }

  Status walk_index(const ImageIndex& index, int depth, std::vector<Candidate>& out) {
    for (const auto& entry : index.manifests) {
      if (auto reason = skip_reason(entry)) {
        skipped_.push_back((entry.digest.empty() ? std::string("entry") : entry.digest) + ": " + *reason);
        continue;
      }
      if (entry.media_type == media_type::kOciIndex || entry.media_type == media_type::kDockerManifestList) {
        if (depth + 1 >= kMaxIndexDepth) {
          return Error(ErrorCode::limit_exceeded,
                       "index nesting deeper than " + std::to_string(kMaxIndexDepth) + " at " + entry.digest);
        }
        auto nested = fetch_verified(entry.digest, entry.media_type);
        if (!nested) return std::move(nested).error();
        auto parsed = parse_manifest(nested->first.body, entry.media_type);
        if (!parsed) return std::move(parsed).error().with_context("nested index " + entry.digest);
        auto* nested_index = std::get_if<ImageIndex>(&*parsed);
        if (nested_index == nullptr) {
          return Error(ErrorCode::parse_error, "index entry " + entry.digest + " is typed as an index but is a manifest");
        }
        if (auto st = walk_index(*nested_index, depth + 1, out); !st) return st;
        continue;
      }
      out.push_back(Candidate{entry, entry.platform});
    }
    return {};
  }

  Result<std::vector<ResolvedImage>> select(const std::vector<Candidate>& candidates) {
    std::vector<ResolvedImage> images;
    const bool all = request_.platforms.all_platforms;
    const Platform wanted = request_.platforms.platform.value_or(kDefaultPlatform);
    std::vector<std::string> available;
    for (const auto& c : candidates) {
      // Platform known from the index: decide without fetching.
      if (c.platform && !all && !platform_matches(wanted, *c.platform)) {
        available.push_back(c.platform->to_string());
        continue;
      }
      auto image = load_entry(c);
      if (!image) return std::move(image).error();
      if (!all && !platform_matches(wanted, image->platform)) {
        available.push_back(image->platform.to_string());
        continue;
      }
      images.push_back(std::move(*image));
      if (!all) break;
    }
    if (images.empty()) {
      std::string list;
      for (const auto& p : available) list += (list.empty() ? "" : ", ") + p;
      return Error(ErrorCode::not_found,
                   "image " + request_.display_reference + " has no manifest for platform " +
                       (all ? std::string("any") : wanted.to_string()) + " (available: " +
                       (list.empty() ? std::string("none") : list) + ")");
    }
    for (auto& image : images) image.skipped = skipped_;
    return images;
  }

  Result<ResolvedImage> load_entry(const Candidate& c) {
    auto fetched = fetch_verified(c.descriptor.digest, c.descriptor.media_type);
    if (!fetched) return std::move(fetched).error();
    if (fetched->first.body.size() != c.descriptor.size) {
      return Error(ErrorCode::integrity_error, "manifest " + c.descriptor.digest + " is " +
                                                   std::to_string(fetched->first.body.size()) +
                                                   " bytes, the index says " + std::to_string(c.descriptor.size));
    }
    auto parsed = parse_manifest(fetched->first.body, c.descriptor.media_type);
    if (!parsed) return std::move(parsed).error().with_context("manifest " + c.descriptor.digest);
    auto* manifest = std::get_if<ImageManifest>(&*parsed);
    if (manifest == nullptr) {
      return Error(ErrorCode::parse_error, "index entry " + c.descriptor.digest + " is typed as a manifest but is an index");
    }
    auto image = load_image(*manifest, fetched->second);
    if (!image) return std::move(image).error();
    // The index's platform names the entry; the config may omit the variant.
    if (c.platform && !c.platform->os.empty()) image->platform = *c.platform;
    return image;
  }

  Result<ResolvedImage> load_image(const ImageManifest& manifest, const std::string& manifest_digest) {
    const std::string where = "manifest " + manifest_digest;
    if (!manifest.artifact_type.empty()) {
      return Error(ErrorCode::unsupported, where + " is an artifact of type '" + manifest.artifact_type +
                                               "', not a container image");
    }
    if (manifest.config.media_type != media_type::kDockerConfig &&
        manifest.config.media_type != media_type::kOciConfig) {
      return Error(ErrorCode::unsupported, where + " has config media type '" + manifest.config.media_type +
                                               "', not a container image config");
    }
    if (auto st = check_image_layers(manifest); !st) return std::move(st).error().with_context(where);
    if (manifest.config.size > kMaxManifestBytes) {
      return Error(ErrorCode::limit_exceeded, where + ": config blob of " + std::to_string(manifest.config.size) +
                                                  " bytes exceeds the " + std::to_string(kMaxManifestBytes) +
                                                  "-byte limit");
    }
    auto config_bytes = store_.read_blob(manifest.config);
    if (!config_bytes) return std::move(config_bytes).error().with_context(where + ": config");
    if (auto st = verify_digest(*config_bytes, manifest.config.digest, "config blob"); !st) {
      return std::move(st).error().with_context(where);
    }
    auto config = parse_image_config(*config_bytes);
    if (!config) return std::move(config).error().with_context(where + ": config " + manifest.config.digest);
    if (config->diff_ids.size() != manifest.layers.size()) {
      return Error(ErrorCode::parse_error, where + ": " + std::to_string(manifest.layers.size()) + " layers but " +
                                               std::to_string(config->diff_ids.size()) + " diff IDs in the config");
    }
    ResolvedImage image;
    image.reference = request_.display_reference;
    image.repository = request_.repository;
    image.manifest_digest = manifest_digest;
    image.config_digest = manifest.config.digest;
    image.platform = config->platform;
    for (std::size_t i = 0; i < manifest.layers.size(); ++i) {
      const auto& l = manifest.layers[i];
      image.layers.push_back(LayerDescriptor{l.media_type, l.digest, config->diff_ids[i], l.size});
    }
    image.skipped = skipped_;
    return image;
  }

  BlobStore& store_;
  const ResolveRequest& request_;
  std::vector<std::string> skipped_;
};

}  // namespace

Status verify_digest(std::string_view body, const std::string& digest, const std::string& what) {
  const std::string actual = sha256_digest_of(body);
  if (actual != digest) {
    return Error(ErrorCode::integrity_error, what + " " + digest + ": content digest is " + actual);
  }
  return {};
}

Result<std::vector<ResolvedImage>> resolve(BlobStore& store, const ResolveRequest& request) {
  Resolver resolver(store, request);
  return resolver.run();
}

}  // namespace hashsieve::image
