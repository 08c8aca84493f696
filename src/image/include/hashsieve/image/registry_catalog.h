// Listing a registry: the catalog (GET /v2/_catalog, Link pagination), each
// repository's tags (GET /v2/<name>/tags/list, Link followed when present)
// and a tag's manifest digest (HEAD with the manifest Accept list,
// Docker-Content-Digest). It reuses the registry client's authentication and
// retries; the service's catalog crawler is its user.
//
// distribution 2.8 quirks (docs formats.md section 6): a final catalog page
// that is exactly full still carries a Link and the next page is empty, so an
// empty page ends the walk; tags ignore n/last and come in one page.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "hashsieve/core/result.h"
#include "hashsieve/image/source.h"

namespace hashsieve::image {

class RegistryClient;

// The target of a `Link: <url>; rel="next"` header as a path+query relative
// to the registry ("/v2/_catalog?last=a&n=100"); nullopt without a next link.
// Absolute URLs keep only their path and query (the registry is fixed).
std::optional<std::string> parse_next_link(const std::string& link_header);

// One page of a catalog or tag list: the names and the next page's path.
struct ListPage {
  std::vector<std::string> names;
  std::optional<std::string> next;
};

class RegistryCatalog {
 public:
  // `registry` is "host:port"; options carry credentials, insecure, retries.
  static Result<std::unique_ptr<RegistryCatalog>> create(const std::string& registry, const SourceOptions& options);
  ~RegistryCatalog();
  RegistryCatalog(const RegistryCatalog&) = delete;
  RegistryCatalog& operator=(const RegistryCatalog&) = delete;

  // Every repository, `page_size` per request (n). Stops at an empty page or
  // one without Link; a Link that repeats a page already read is an error.
  Result<std::vector<std::string>> repositories(int page_size);
  // Every tag of `repository` (Link followed when the registry paginates).
  Result<std::vector<std::string>> tags(const std::string& repository);
  // The digest `repository:tag` resolves to (HEAD manifest).
  Result<std::string> resolve_digest(const std::string& repository, const std::string& tag);

  const std::string& registry() const { return registry_; }

 private:
  RegistryCatalog() = default;
  Result<RegistryClient*> client_for(const std::string& repository);
  Result<std::vector<std::string>> walk(RegistryClient& client, std::string path, const char* field,
                                        const std::string& what);

  std::string registry_;
  SourceOptions options_;
  // One client per repository: a token's scope names one repository.
  std::map<std::string, std::unique_ptr<RegistryClient>> clients_;
};

}  // namespace hashsieve::image
