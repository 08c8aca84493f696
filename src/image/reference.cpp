#include "hashsieve/image/reference.h"

#include <string_view>

namespace hashsieve::image {
namespace {

bool is_lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
bool is_alnum(char c) { return is_lower_alnum(c) || (c >= 'A' && c <= 'Z'); }

// One path component: [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*
bool is_valid_component(std::string_view c) {
  if (c.empty() || !is_lower_alnum(c.front()) || !is_lower_alnum(c.back())) return false;
  std::size_t i = 0;
  while (i < c.size()) {
    if (is_lower_alnum(c[i])) {
      ++i;
      continue;
    }
    // A separator run: ".", "_", "__" or one or more '-', followed by alnum.
    std::size_t j = i;
    if (c[i] == '.') {
      j = i + 1;
    } else if (c[i] == '_') {
      j = i + 1;
      if (j < c.size() && c[j] == '_') ++j;
    } else if (c[i] == '-') {
      while (j < c.size() && c[j] == '-') ++j;
    } else {
      return false;
    }
    if (j >= c.size() || !is_lower_alnum(c[j])) return false;
    i = j;
  }
  return true;
}

// host[:port] where host is DNS labels ([a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?
// joined by '.') or a bracketed IPv6 address.
bool is_valid_domain(std::string_view d) {
  std::string_view host = d;
  std::string_view port;
  if (!d.empty() && d.front() == '[') {
    const std::size_t close = d.find(']');
    if (close == std::string_view::npos || close < 3) return false;
    for (char c : d.substr(1, close - 1)) {
      if (!(is_alnum(c) || c == ':' || c == '.')) return false;
    }
    std::string_view rest = d.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return false;
      port = rest.substr(1);
      if (port.empty()) return false;
    }
    host = {};
  } else {
    const std::size_t colon = d.find(':');
    if (colon != std::string_view::npos) {
      host = d.substr(0, colon);
      port = d.substr(colon + 1);
      if (port.empty()) return false;
    }
  }
  for (char c : port) {
    if (c < '0' || c > '9') return false;
  }
  if (port.size() > 5) return false;
  if (d.front() == '[') return true;
  if (host.empty()) return false;
  std::size_t start = 0;
  while (start <= host.size()) {
    std::size_t dot = host.find('.', start);
    if (dot == std::string_view::npos) dot = host.size();
    const std::string_view label = host.substr(start, dot - start);
    if (label.empty() || !is_alnum(label.front()) || !is_alnum(label.back())) return false;
    for (char c : label) {
      if (!is_alnum(c) && c != '-') return false;
    }
    start = dot + 1;
  }
  return true;
}

Error bad(const std::string& text, const std::string& why) {
  return Error(ErrorCode::invalid_argument, "image reference '" + text + "': " + why);
}

}  // namespace

bool is_valid_sha256_digest(const std::string& digest) {
  constexpr std::string_view kPrefix = "sha256:";
  if (digest.size() != kPrefix.size() + 64 || !std::string_view(digest).starts_with(kPrefix)) return false;
  for (std::size_t i = kPrefix.size(); i < digest.size(); ++i) {
    const char c = digest[i];
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

bool is_valid_repository(const std::string& name) {
  if (name.empty() || name.size() > 255) return false;
  std::size_t start = 0;
  while (true) {
    const std::size_t slash = name.find('/', start);
    const std::string_view comp =
        std::string_view(name).substr(start, slash == std::string::npos ? std::string::npos : slash - start);
    if (!is_valid_component(comp)) return false;
    if (slash == std::string::npos) return true;
    start = slash + 1;
  }
}

bool is_valid_tag(const std::string& tag) {
  if (tag.empty() || tag.size() > 128) return false;
  if (!(is_alnum(tag[0]) || tag[0] == '_')) return false;
  for (char c : tag) {
    if (!(is_alnum(c) || c == '_' || c == '.' || c == '-')) return false;
  }
  return true;
}

Result<ImageReference> ImageReference::parse(const std::string& text) {
  if (text.empty()) return bad(text, "empty");
  ImageReference ref;
  std::string rest = text;
  if (const std::size_t at = rest.find('@'); at != std::string::npos) {
    ref.digest = rest.substr(at + 1);
    rest.resize(at);
    if (ref.digest.find(':') == std::string::npos) return bad(text, "digest '" + ref.digest + "' has no algorithm");
    if (!ref.digest.starts_with("sha256:")) {
      return Error(ErrorCode::unsupported,
                   "image reference '" + text + "': digest algorithm of '" + ref.digest + "' is not sha256");
    }
    if (!is_valid_sha256_digest(ref.digest)) {
      return bad(text, "digest '" + ref.digest + "' is not sha256: followed by 64 lowercase hex digits");
    }
  }
  const std::size_t first_slash = rest.find('/');
  if (first_slash == std::string::npos) {
    return bad(text, "no registry host: write host[:port]/repository[:tag] (there is no default registry)");
  }
  ref.registry = rest.substr(0, first_slash);
  std::string path = rest.substr(first_slash + 1);
  const bool names_host = ref.registry.find('.') != std::string::npos ||
                          ref.registry.find(':') != std::string::npos || ref.registry == "localhost" ||
                          ref.registry.starts_with("[");
  if (!names_host) {
    return bad(text, "first component '" + ref.registry +
                         "' is not a registry host (needs a '.', a ':port' or 'localhost'; there is no default registry)");
  }
  if (!is_valid_domain(ref.registry)) return bad(text, "invalid registry host '" + ref.registry + "'");
  if (const std::size_t colon = path.rfind(':'); colon != std::string::npos) {
    ref.tag = path.substr(colon + 1);
    path.resize(colon);
    if (!is_valid_tag(ref.tag)) {
      return bad(text, "invalid tag '" + ref.tag + "' (allowed: [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127})");
    }
  }
  if (!is_valid_repository(path)) {
    return bad(text, "invalid repository name '" + path +
                         "' (lowercase alphanumeric components separated by '.', '_', '__' or '-', joined by '/')");
  }
  if (ref.registry.size() + 1 + path.size() > 255) return bad(text, "name longer than 255 characters");
  ref.repository = std::move(path);
  if (ref.tag.empty() && ref.digest.empty()) ref.tag = "latest";
  return ref;
}

std::string ImageReference::to_string() const {
  std::string out = registry + "/" + repository;
  if (!tag.empty()) out += ":" + tag;
  if (!digest.empty()) out += "@" + digest;
  return out;
}

}  // namespace hashsieve::image
