// The OCI distribution API client: one registry, one repository.
//
// Authentication follows the registry's 401 challenge: Basic (explicit
// credentials or ~/.docker/config.json "auths"), Bearer token exchange at the
// challenge's realm (service, scope; "token" or "access_token"; expires_in),
// or a given bearer token sent from the first request. Requests are retried
// with exponential backoff on 429 (honouring Retry-After), 5xx and transport
// failures (RetryPolicy). Status mapping: 401 after authenticating and 403 are
// permission_denied, 404 not_found, other 4xx invalid_argument, exhausted
// retries unavailable; each message names the registry, repository and what
// was asked for, plus the registry's own error codes when it sent any.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

#include "blob_store.h"
#include "hashsieve/image/reference.h"
#include "hashsieve/image/source.h"
#include "http_stream.h"

namespace hashsieve::image {

// "user:pass" for `registry` from a docker config.json (auths.<host>.auth,
// base64; also keys written as URLs). nullopt when the file or the entry is
// absent; an error when the file is malformed.
Result<std::optional<std::pair<std::string, std::string>>> docker_config_credentials(const std::string& path,
                                                                                     const std::string& registry);

struct AuthChallenge {
  std::string scheme;  // "basic" or "bearer" (lowercase)
  std::map<std::string, std::string> params;  // realm, service, scope, ...
};
// Parses a WWW-Authenticate value (one challenge).
Result<AuthChallenge> parse_auth_challenge(const std::string& header);

std::string base64_encode(std::string_view in);
Result<std::string> base64_decode(std::string_view in);

class RegistryClient {
 public:
  // Resolves credentials (explicit, else docker config) eagerly so a broken
  // config file is reported before any request.
  static Result<std::unique_ptr<RegistryClient>> create(const ImageReference& reference, const SourceOptions& options);

  // GET /v2/: 200 ready; 401 authenticates; 404 is "not a v2 registry".
  Status ping();
  Result<FetchedManifest> get_manifest(const std::string& reference);
  Result<std::string> get_blob(const std::string& digest, std::size_t limit);
  Result<std::unique_ptr<ByteSource>> open_blob(const std::string& digest);

  const std::string& base_url() const { return base_url_; }

  // A small text resource (catalog and tag lists, manifests by HEAD) with the
  // headers the crawler needs. `path` starts with "/v2/"; `head` sends HEAD.
  struct TextResponse {
    std::string body;
    std::string link;            // Link header, "" when absent
    std::string content_digest;  // Docker-Content-Digest, "" when absent
  };
  Result<TextResponse> get_text(const std::string& path, const std::string& accept, const std::string& what,
                                std::size_t limit, bool head = false);

 private:
  RegistryClient() = default;
  // GET base_url_ + path with retries and authentication; returns a stream
  // whose status is 2xx. `what` names the object for error messages.
  Result<std::unique_ptr<HttpStream>> get(const std::string& path, const std::string& accept, const std::string& what,
                                          bool head = false);
  Status authenticate(const std::string& challenge_header);
  std::string current_authorization();
  void sleep_ms(std::uint64_t ms) const;

  std::string registry_;
  std::string repository_;
  std::string base_url_;  // "https://host:port"
  std::string ca_file_;
  RetryPolicy retry_;
  std::string username_;
  std::string password_;

  std::mutex auth_mutex_;  // layers may be opened from several threads
  std::string authorization_;  // "Basic ..." / "Bearer ..." or ""
  bool fixed_token_ = false;
  std::chrono::steady_clock::time_point token_expiry_ = std::chrono::steady_clock::time_point::max();
};

// BlobStore over a RegistryClient (registry_source.cpp uses it).
class RegistryBlobStore final : public BlobStore {
 public:
  explicit RegistryBlobStore(RegistryClient& client) : client_(client) {}
  Result<FetchedManifest> fetch_manifest(const std::string& reference) override {
    return client_.get_manifest(reference);
  }
  Result<std::string> read_blob(const Descriptor& blob) override {
    return client_.get_blob(blob.digest, kMaxManifestBytes);
  }
  Result<std::unique_ptr<ByteSource>> open_blob(const Descriptor& blob) override {
    return client_.open_blob(blob.digest);
  }

 private:
  RegistryClient& client_;
};

}  // namespace hashsieve::image
