// The concrete ImageSource constructors, one per transport. Only
// open_image_source (image_source.cpp) calls them.
#pragma once

#include <memory>
#include <string>

#include "hashsieve/image/source.h"

namespace hashsieve::image {

// "host[:port]/repo[:tag][@digest]" (registry_source.cpp)
Result<std::unique_ptr<ImageSource>> open_registry_source(const std::string& reference, const SourceOptions& options);
// "oci:PATH[:tag]" without the prefix (oci_layout_source.cpp)
Result<std::unique_ptr<ImageSource>> open_oci_layout_source(const std::string& location, const SourceOptions& options);
// "docker-archive:PATH[:repo:tag]" without the prefix (docker_archive_source.cpp)
Result<std::unique_ptr<ImageSource>> open_docker_archive_source(const std::string& path, const SourceOptions& options);
// "dir:PATH" without the prefix (dir_source.cpp)
Result<std::unique_ptr<ImageSource>> open_dir_source(const std::string& path, const SourceOptions& options);

}  // namespace hashsieve::image
