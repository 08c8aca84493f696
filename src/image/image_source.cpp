#include <string_view>

#include "sources_internal.h"

namespace hashsieve::image {

Result<std::unique_ptr<ImageSource>> open_image_source(const std::string& reference, const SourceOptions& options) {
  struct Transport {
    std::string_view prefix;
    Result<std::unique_ptr<ImageSource>> (*open)(const std::string&, const SourceOptions&);
  };
  static constexpr Transport kTransports[] = {
      {"docker-archive:", open_docker_archive_source},
      {"oci:", open_oci_layout_source},
      {"dir:", open_dir_source},
  };
  for (const auto& transport : kTransports) {
    if (std::string_view(reference).starts_with(transport.prefix)) {
      std::string rest = reference.substr(transport.prefix.size());
      if (rest.empty()) {
        return Error(ErrorCode::invalid_argument, "image reference '" + reference + "': missing path");
      }
      auto source = transport.open(rest, options);
      if (!source) return std::move(source).error().with_context(reference);
      return source;
    }
  }
  auto source = open_registry_source(reference, options);
  if (!source) return std::move(source).error().with_context(reference);
  return source;
}

}  // namespace hashsieve::image
