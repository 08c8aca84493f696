#include "hashsieve/service/notifications.h"

#include <nlohmann/json.hpp>

#include <set>

#include "hashsieve/image/reference.h"

namespace hashsieve::service {
namespace {

std::string lower_trim(std::string_view s) {
  std::string out;
  for (char c : s) out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  const auto b = out.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  const auto e = out.find_last_not_of(" \t");
  return out.substr(b, e - b + 1);
}

std::string string_field(const nlohmann::json& obj, const char* key) {
  const auto it = obj.find(key);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace

bool is_manifest_media_type(std::string_view t) {
  return t == "application/vnd.oci.image.manifest.v1+json" || t == "application/vnd.oci.image.index.v1+json" ||
         t == "application/vnd.docker.distribution.manifest.v2+json" ||
         t == "application/vnd.docker.distribution.manifest.list.v2+json" ||
         t == "application/vnd.docker.distribution.manifest.v1+json" ||
         t == "application/vnd.docker.distribution.manifest.v1+prettyjws";
}

bool is_envelope_content_type(std::string_view content_type) {
  const std::string base = lower_trim(content_type.substr(0, content_type.find(';')));
  return base == "application/vnd.docker.distribution.events.v1+json" ||
         base == "application/vnd.docker.distribution.events.v2+json" || base == "application/json";
}

Result<ParsedEnvelope> parse_envelope(std::string_view body) {
  nlohmann::json doc = nlohmann::json::parse(body, nullptr, false);
  if (doc.is_discarded()) return Error(ErrorCode::parse_error, "notification envelope: body is not valid JSON");
  if (!doc.is_object()) return Error(ErrorCode::parse_error, "notification envelope: not a JSON object");
  const auto events = doc.find("events");
  if (events == doc.end() || !events->is_array()) {
    return Error(ErrorCode::parse_error, "notification envelope: no 'events' array");
  }
  ParsedEnvelope out;
  std::set<std::pair<std::string, std::string>> seen;
  std::size_t index = 0;
  for (const auto& event : *events) {
    const std::string where = "notification envelope: event " + std::to_string(index++);
    if (!event.is_object()) return Error(ErrorCode::parse_error, where + ": not an object");
    const auto target = event.find("target");
    if (target == event.end() || !target->is_object()) {
      ++out.ignored;  // repository deletes and the like carry no usable target
      continue;
    }
    const std::string action = string_field(event, "action");
    const std::string media_type = string_field(*target, "mediaType");
    if (action != "push" || !is_manifest_media_type(media_type)) {
      ++out.ignored;
      continue;
    }
    ManifestPush push;
    push.repository = string_field(*target, "repository");
    push.digest = string_field(*target, "digest");
    push.tag = string_field(*target, "tag");
    push.event_id = string_field(event, "id");
    if (!image::is_valid_repository(push.repository)) {
      return Error(ErrorCode::parse_error, where + ": invalid repository '" + push.repository + "'");
    }
    if (!image::is_valid_sha256_digest(push.digest)) {
      return Error(ErrorCode::parse_error, where + ": invalid digest '" + push.digest + "'");
    }
    if (!push.tag.empty() && !image::is_valid_tag(push.tag)) {
      return Error(ErrorCode::parse_error, where + ": invalid tag '" + push.tag + "'");
    }
    if (seen.emplace(push.repository, push.digest).second) out.pushes.push_back(std::move(push));
  }
  return out;
}

bool constant_time_equals(std::string_view a, std::string_view b) {
  // Walk the expected length regardless of content; mismatched lengths fail.
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  const std::size_t n = a.size();
  for (std::size_t i = 0; i < n; ++i) {
    const unsigned char x = static_cast<unsigned char>(a[i]);
    const unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= static_cast<unsigned char>(x ^ y);
  }
  return diff == 0;
}

}  // namespace hashsieve::service
