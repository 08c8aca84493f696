#include "hashsieve/image/source.h"

namespace hashsieve::image {

std::string Platform::to_string() const {
  std::string text = os;
  text.append("/").append(architecture);
  if (!variant.empty()) text.append("/").append(variant);
  return text;
}

Result<Platform> Platform::parse(const std::string& text) {
  Platform platform;
  std::vector<std::string> parts;
  std::size_t start = 0;
  while (true) {
    const std::size_t slash = text.find('/', start);
    parts.push_back(text.substr(start, slash == std::string::npos ? std::string::npos : slash - start));
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  if (parts.size() < 2 || parts.size() > 3) {
    return Error(ErrorCode::invalid_argument, "platform '" + text + "': expected OS/ARCH[/VARIANT], e.g. linux/amd64");
  }
  for (const auto& part : parts) {
    if (part.empty()) return Error(ErrorCode::invalid_argument, "platform '" + text + "': empty component");
  }
  platform.os = parts[0];
  platform.architecture = parts[1];
  if (parts.size() == 3) platform.variant = parts[2];
  return platform;
}

}  // namespace hashsieve::image
