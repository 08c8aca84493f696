// libFuzzer target: image manifests, indexes, configs and image references.
// The first byte picks the Content-Type the "server" claims; the rest is the
// body. Parsing must fail only with parse_error or unsupported, and what it
// returns must hold the invariants resolve() relies on (sha256 digests, known
// manifest types). References must re-parse from their canonical text.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "hashsieve/image/manifest.h"
#include "hashsieve/image/reference.h"

namespace {

using namespace hashsieve;         // NOLINT(google-build-using-namespace)
using namespace hashsieve::image;  // NOLINT(google-build-using-namespace)

constexpr std::string_view kContentTypes[] = {
    "",
    media_type::kDockerManifest,
    media_type::kDockerManifestList,
    media_type::kOciManifest,
    media_type::kOciIndex,
    media_type::kDockerSchema1Signed,
    "application/json",
    "application/vnd.oci.image.index.v1+json; charset=utf-8",
};

void check_descriptor(const Descriptor& d, bool allow_unsupported_marker) {
  if (allow_unsupported_marker && d.media_type.starts_with("unsupported: ")) return;
  if (!is_valid_sha256_digest(d.digest)) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view content_type = kContentTypes[data[0] % std::size(kContentTypes)];
  const std::string_view body(reinterpret_cast<const char*>(data + 1), size - 1);

  auto parsed = parse_manifest(body, content_type);
  if (!parsed.ok()) {
    const ErrorCode code = parsed.error().code();
    if (code != ErrorCode::parse_error && code != ErrorCode::unsupported) std::abort();
  } else if (const auto* m = std::get_if<ImageManifest>(&*parsed)) {
    if (m->media_type != media_type::kDockerManifest && m->media_type != media_type::kOciManifest) std::abort();
    check_descriptor(m->config, false);
    for (const auto& l : m->layers) check_descriptor(l, false);
    auto st = check_image_layers(*m);
    if (!st.ok() && st.error().code() != ErrorCode::unsupported) std::abort();
  } else {
    const auto& index = std::get<ImageIndex>(*parsed);
    if (index.media_type != media_type::kDockerManifestList && index.media_type != media_type::kOciIndex) std::abort();
    for (const auto& e : index.manifests) {
      check_descriptor(e, true);
      (void)skip_reason(e);
    }
  }

  auto config = parse_image_config(body);
  if (!config.ok()) {
    if (config.error().code() != ErrorCode::parse_error) std::abort();
  } else {
    for (const auto& id : config->diff_ids) {
      if (!is_valid_sha256_digest(id)) std::abort();
    }
  }

  auto ref = ImageReference::parse(std::string(body));
  if (!ref.ok()) {
    const ErrorCode code = ref.error().code();
    if (code != ErrorCode::invalid_argument && code != ErrorCode::unsupported) std::abort();
  } else {
    auto again = ImageReference::parse(ref->to_string());
    if (!again.ok() || !(*again == *ref)) std::abort();
  }
  return 0;
}
