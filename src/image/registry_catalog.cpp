#include "hashsieve/image/registry_catalog.h"

#include <nlohmann/json.hpp>

#include <set>

#include "hashsieve/image/manifest.h"
#include "hashsieve/image/reference.h"
#include "registry_client.h"

namespace hashsieve::image {
namespace {

constexpr std::size_t kListBodyLimit = 16u << 20;
// A catalog that never ends (a registry bug, or a loop of Links) is cut here.
constexpr int kMaxPages = 100'000;

std::string trim(std::string s) {
  const auto b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  const auto e = s.find_last_not_of(" \t");
  return s.substr(b, e - b + 1);
}

}  // namespace

std::optional<std::string> parse_next_link(const std::string& header) {
  // Link: <url>; rel="next", <url2>; rel="prev"   (RFC 8288; values may be quoted or not)
  std::size_t pos = 0;
  while (pos < header.size()) {
    const auto open = header.find('<', pos);
    if (open == std::string::npos) return std::nullopt;
    const auto close = header.find('>', open);
    if (close == std::string::npos) return std::nullopt;
    std::string url = header.substr(open + 1, close - open - 1);
    auto next_comma = header.find(',', close);
    // A comma inside the parameters of this link cannot occur in rel values we care about.
    const std::string params = header.substr(close + 1, next_comma == std::string::npos ? std::string::npos
                                                                                         : next_comma - close - 1);
    bool is_next = false;
    std::size_t p = 0;
    while (p < params.size()) {
      auto semi = params.find(';', p);
      std::string param = trim(params.substr(p, semi == std::string::npos ? std::string::npos : semi - p));
      p = semi == std::string::npos ? params.size() : semi + 1;
      const auto eq = param.find('=');
      if (eq == std::string::npos) continue;
      std::string key = trim(param.substr(0, eq));
      std::string value = trim(param.substr(eq + 1));
      if (value.size() >= 2 && value.front() == '"' && value.back() == '"') value = value.substr(1, value.size() - 2);
      for (auto& c : key) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (key != "rel") continue;
      // rel may list several space-separated relation types.
      std::size_t s = 0;
      while (s <= value.size()) {
        auto sp = value.find(' ', s);
        if (value.substr(s, sp == std::string::npos ? std::string::npos : sp - s) == "next") is_next = true;
        if (sp == std::string::npos) break;
        s = sp + 1;
      }
    }
    if (is_next && !url.empty()) {
      if (const auto scheme = url.find("://"); scheme != std::string::npos) {
        const auto path = url.find('/', scheme + 3);
        url = path == std::string::npos ? "/" : url.substr(path);
      }
      if (url.front() != '/') return std::nullopt;  // relative references other than absolute paths: not used by registries
      return url;
    }
    if (next_comma == std::string::npos) break;
    pos = next_comma + 1;
  }
  return std::nullopt;
}

RegistryCatalog::~RegistryCatalog() = default;

Result<std::unique_ptr<RegistryCatalog>> RegistryCatalog::create(const std::string& registry,
                                                                 const SourceOptions& options) {
  if (registry.empty()) return Error(ErrorCode::invalid_argument, "registry catalog: empty registry host");
  std::unique_ptr<RegistryCatalog> catalog(new RegistryCatalog());
  catalog->registry_ = registry;
  catalog->options_ = options;
  // Fail early on unreadable credentials (the client resolves them eagerly).
  if (auto c = catalog->client_for(""); !c) return std::move(c).error();
  return catalog;
}

Result<RegistryClient*> RegistryCatalog::client_for(const std::string& repository) {
  auto it = clients_.find(repository);
  if (it != clients_.end()) return it->second.get();
  ImageReference ref;
  ref.registry = registry_;
  ref.repository = repository;
  auto client = RegistryClient::create(ref, options_);
  if (!client) return std::move(client).error();
  RegistryClient* raw = client->get();
  clients_.emplace(repository, std::move(*client));
  return raw;
}

Result<std::vector<std::string>> RegistryCatalog::walk(RegistryClient& client, std::string path, const char* field,
                                                       const std::string& what) {
  std::vector<std::string> out;
  std::set<std::string> seen_pages;
  for (int page = 0; page < kMaxPages; ++page) {
    if (!seen_pages.insert(path).second) {
      return Error(ErrorCode::parse_error, "registry " + registry_ + ": " + what + ": Link loops back to " + path);
    }
    auto response = client.get_text(path, "application/json", what, kListBodyLimit);
    if (!response) return std::move(response).error();
    nlohmann::json doc = nlohmann::json::parse(response->body, nullptr, false);
    if (doc.is_discarded() || !doc.is_object()) {
      return Error(ErrorCode::parse_error, "registry " + registry_ + ": " + what + ": response is not a JSON object");
    }
    const auto names = doc.find(field);
    std::size_t count = 0;
    if (names != doc.end() && !names->is_null()) {  // 2.8 sends "tags": null for a repository without tags
      if (!names->is_array()) {
        return Error(ErrorCode::parse_error,
                     "registry " + registry_ + ": " + what + ": '" + field + "' is not an array");
      }
      for (const auto& n : *names) {
        if (!n.is_string()) {
          return Error(ErrorCode::parse_error,
                       "registry " + registry_ + ": " + what + ": '" + field + "' holds a non-string");
        }
        out.push_back(n.get<std::string>());
        ++count;
      }
    }
    const auto next = parse_next_link(response->link);
    // 2.8: a full last page still has a Link; the page after it is empty.
    if (!next || count == 0) return out;
    path = *next;
  }
  return Error(ErrorCode::limit_exceeded, "registry " + registry_ + ": " + what + ": more than " +
                                              std::to_string(kMaxPages) + " pages");
}

Result<std::vector<std::string>> RegistryCatalog::repositories(int page_size) {
  if (page_size <= 0) return Error(ErrorCode::invalid_argument, "registry catalog: page size must be positive");
  auto client = client_for("");
  if (!client) return std::move(client).error();
  auto names = walk(**client, "/v2/_catalog?n=" + std::to_string(page_size), "repositories", "catalog");
  if (!names) return std::move(names).error();
  std::vector<std::string> valid;
  for (auto& n : *names) {
    // Names go into request paths; refuse anything outside the grammar.
    if (!is_valid_repository(n)) {
      return Error(ErrorCode::parse_error, "registry " + registry_ + ": catalog lists an invalid repository name '" +
                                               n + "'");
    }
    valid.push_back(std::move(n));
  }
  return valid;
}

Result<std::vector<std::string>> RegistryCatalog::tags(const std::string& repository) {
  if (!is_valid_repository(repository)) {
    return Error(ErrorCode::invalid_argument, "registry catalog: invalid repository name '" + repository + "'");
  }
  auto client = client_for(repository);
  if (!client) return std::move(client).error();
  auto names = walk(**client, "/v2/" + repository + "/tags/list", "tags", "tags of " + repository);
  if (!names) return std::move(names).error();
  for (const auto& t : *names) {
    if (!is_valid_tag(t)) {
      return Error(ErrorCode::parse_error,
                   "registry " + registry_ + ": tags of " + repository + ": invalid tag '" + t + "'");
    }
  }
  return names;
}

Result<std::string> RegistryCatalog::resolve_digest(const std::string& repository, const std::string& tag) {
  if (!is_valid_repository(repository) || !is_valid_tag(tag)) {
    return Error(ErrorCode::invalid_argument,
                 "registry catalog: invalid reference '" + repository + ":" + tag + "'");
  }
  auto client = client_for(repository);
  if (!client) return std::move(client).error();
  const std::string what = "manifest " + repository + ":" + tag + " (HEAD)";
  auto response = (*client)->get_text("/v2/" + repository + "/manifests/" + tag,
                                      std::string(media_type::kManifestAccept), what, 0, /*head=*/true);
  if (!response) return std::move(response).error();
  if (!is_valid_sha256_digest(response->content_digest)) {
    return Error(ErrorCode::parse_error, "registry " + registry_ + ": " + what +
                                             ": no valid Docker-Content-Digest header ('" +
                                             response->content_digest + "')");
  }
  return response->content_digest;
}

}  // namespace hashsieve::image
