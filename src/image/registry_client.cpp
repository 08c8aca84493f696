#include "registry_client.h"

#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "hashsieve/core/file.h"

namespace hashsieve::image {
namespace {

constexpr std::size_t kErrorBodyLimit = 64 << 10;
constexpr std::uint64_t kMaxRetryAfterMs = 60'000;

// The registry's {"errors":[{"code":..,"message":..}]} as "CODE: message; ...".
std::string registry_errors(const std::string& body) {
  const auto doc = nlohmann::json::parse(body, nullptr, false);
  if (doc.is_discarded() || !doc.is_object() || !doc.contains("errors") || !doc["errors"].is_array()) return "";
  std::string out;
  for (const auto& e : doc["errors"]) {
    if (!e.is_object()) continue;
    std::string item;
    if (e.contains("code") && e["code"].is_string()) item = e["code"].get<std::string>();
    if (e.contains("message") && e["message"].is_string()) item += (item.empty() ? "" : ": ") + e["message"].get<std::string>();
    if (!item.empty()) out += (out.empty() ? "" : "; ") + item;
  }
  return out;
}

std::string url_escape(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      static constexpr char kHex[] = "0123456789ABCDEF";
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

std::string default_docker_config_path() {
  if (const char* dir = std::getenv("DOCKER_CONFIG"); dir != nullptr && *dir != '\0') {
    return std::string(dir) + "/config.json";
  }
  if (const char* home = std::getenv("HOME"); home != nullptr && *home != '\0') {
    return std::string(home) + "/.docker/config.json";
  }
  return "";
}

}  // namespace

std::string base64_encode(std::string_view in) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const unsigned v = (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8) |
                       static_cast<unsigned char>(in[i + 2]);
    out += {kAlphabet[v >> 18], kAlphabet[(v >> 12) & 63], kAlphabet[(v >> 6) & 63], kAlphabet[v & 63]};
  }
  if (i + 1 == in.size()) {
    const unsigned v = static_cast<unsigned char>(in[i]) << 16;
    out += {kAlphabet[v >> 18], kAlphabet[(v >> 12) & 63], '=', '='};
  } else if (i + 2 == in.size()) {
    const unsigned v = (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8);
    out += {kAlphabet[v >> 18], kAlphabet[(v >> 12) & 63], kAlphabet[(v >> 6) & 63], '='};
  }
  return out;
}

Result<std::string> base64_decode(std::string_view in) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  while (!in.empty() && in.back() == '=') in.remove_suffix(1);
  std::string out;
  unsigned acc = 0;
  int bits = 0;
  for (char c : in) {
    const int v = value(c);
    if (v < 0) return Error(ErrorCode::parse_error, "invalid base64 character");
    acc = (acc << 6) | static_cast<unsigned>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  if (bits >= 6) return Error(ErrorCode::parse_error, "truncated base64");
  return out;
}

Result<std::optional<std::pair<std::string, std::string>>> docker_config_credentials(const std::string& path,
                                                                                     const std::string& registry) {
  using Creds = std::optional<std::pair<std::string, std::string>>;
  std::error_code ec;
  if (path.empty() || !std::filesystem::exists(path, ec)) return Creds{};
  auto file = open_regular_file(path);
  if (!file) return std::move(file).error();
  auto text = read_all_fd(file->fd.get());
  if (!text) return std::move(text).error().with_context(path);
  const auto doc = nlohmann::json::parse(*text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) return Error(ErrorCode::parse_error, path + ": not a JSON object");
  auto auths = doc.find("auths");
  if (auths == doc.end()) return Creds{};
  if (!auths->is_object()) return Error(ErrorCode::parse_error, path + ": 'auths' is not an object");
  for (const auto& [key, entry] : auths->items()) {
    std::string host = key;
    for (const char* scheme : {"https://", "http://"}) {
      if (host.starts_with(scheme)) host = host.substr(std::strlen(scheme));
    }
    if (const std::size_t slash = host.find('/'); slash != std::string::npos) host.resize(slash);
    if (host != registry) continue;
    if (!entry.is_object()) return Error(ErrorCode::parse_error, path + ": auths entry '" + key + "' is not an object");
    if (entry.contains("auth") && entry["auth"].is_string() && !entry["auth"].get<std::string>().empty()) {
      auto decoded = base64_decode(entry["auth"].get<std::string>());
      if (!decoded) return std::move(decoded).error().with_context(path + ": auths entry '" + key + "'");
      const std::size_t colon = decoded->find(':');
      if (colon == std::string::npos) {
        return Error(ErrorCode::parse_error, path + ": auths entry '" + key + "': auth is not base64(user:password)");
      }
      return Creds{std::make_pair(decoded->substr(0, colon), decoded->substr(colon + 1))};
    }
    if (entry.contains("username") && entry["username"].is_string() && entry.contains("password") &&
        entry["password"].is_string()) {
      return Creds{std::make_pair(entry["username"].get<std::string>(), entry["password"].get<std::string>())};
    }
  }
  return Creds{};
}

Result<AuthChallenge> parse_auth_challenge(const std::string& header) {
  AuthChallenge c;
  std::size_t i = 0;
  while (i < header.size() && header[i] == ' ') ++i;
  const std::size_t scheme_end = header.find(' ', i);
  c.scheme = header.substr(i, scheme_end == std::string::npos ? std::string::npos : scheme_end - i);
  for (auto& ch : c.scheme) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (c.scheme.empty()) return Error(ErrorCode::parse_error, "empty WWW-Authenticate challenge");
  i = scheme_end == std::string::npos ? header.size() : scheme_end + 1;
  while (i < header.size()) {
    while (i < header.size() && (header[i] == ' ' || header[i] == ',')) ++i;
    if (i >= header.size()) break;
    const std::size_t eq = header.find('=', i);
    if (eq == std::string::npos) return Error(ErrorCode::parse_error, "WWW-Authenticate: parameter without '='");
    std::string key = header.substr(i, eq - i);
    for (auto& ch : key) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    i = eq + 1;
    std::string value;
    if (i < header.size() && header[i] == '"') {
      ++i;
      while (i < header.size() && header[i] != '"') {
        if (header[i] == '\\' && i + 1 < header.size()) ++i;
        value.push_back(header[i++]);
      }
      if (i >= header.size()) return Error(ErrorCode::parse_error, "WWW-Authenticate: unterminated quoted value");
      ++i;
    } else {
      while (i < header.size() && header[i] != ',') value.push_back(header[i++]);
    }
    c.params[key] = value;
  }
  return c;
}

Result<std::unique_ptr<RegistryClient>> RegistryClient::create(const ImageReference& reference,
                                                               const SourceOptions& options) {
  std::unique_ptr<RegistryClient> client(new RegistryClient());
  client->registry_ = reference.registry;
  client->repository_ = reference.repository;
  client->base_url_ = std::string(options.insecure ? "http://" : "https://") + reference.registry;
  client->ca_file_ = options.ca_file;
  client->retry_ = options.retry;
  if (client->retry_.max_attempts < 1) client->retry_.max_attempts = 1;
  const auto& creds = options.credentials;
  if (!creds.bearer_token.empty()) {
    client->authorization_ = "Bearer " + creds.bearer_token;
    client->fixed_token_ = true;
  } else if (!creds.username.empty()) {
    client->username_ = creds.username;
    client->password_ = creds.password;
  } else {
    const std::string path =
        creds.docker_config_path.empty() ? default_docker_config_path() : creds.docker_config_path;
    auto found = docker_config_credentials(path, reference.registry);
    if (!found) return std::move(found).error().with_context("reading registry credentials");
    if (*found) {
      client->username_ = (*found)->first;
      client->password_ = (*found)->second;
    }
  }
  return client;
}

void RegistryClient::sleep_ms(std::uint64_t ms) const { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

std::string RegistryClient::current_authorization() {
  std::lock_guard lock(auth_mutex_);
  if (!fixed_token_ && authorization_.starts_with("Bearer ") && std::chrono::steady_clock::now() >= token_expiry_) {
    authorization_.clear();  // expired: the next 401 fetches a new token
  }
  return authorization_;
}

Status RegistryClient::authenticate(const std::string& header) {
  const std::string where = "registry " + registry_;
  if (header.empty()) {
    return Error(ErrorCode::permission_denied, where + ": 401 Unauthorized without a WWW-Authenticate challenge");
  }
  auto challenge = parse_auth_challenge(header);
  if (!challenge) return std::move(challenge).error().with_context(where);
  if (challenge->scheme == "basic") {
    if (username_.empty()) {
      return Error(ErrorCode::permission_denied,
                   where + " requires credentials (Basic auth): give a username and password or an "
                           "auths entry in the docker config");
    }
    std::lock_guard lock(auth_mutex_);
    authorization_ = "Basic " + base64_encode(username_ + ":" + password_);
    return {};
  }
  if (challenge->scheme != "bearer") {
    return Error(ErrorCode::unsupported, where + ": authentication scheme '" + challenge->scheme + "' is not supported");
  }
  const std::string realm = challenge->params["realm"];
  if (realm.empty()) return Error(ErrorCode::parse_error, where + ": Bearer challenge without a realm");
  std::string url = realm + (realm.find('?') == std::string::npos ? "?" : "&");
  bool first = true;
  if (!challenge->params["service"].empty()) {
    url += "service=" + url_escape(challenge->params["service"]);
    first = false;
  }
  std::string scope = challenge->params["scope"];
  if (scope.empty()) scope = "repository:" + repository_ + ":pull";
  url += std::string(first ? "" : "&") + "scope=" + url_escape(scope);
  HttpRequest request;
  request.url = url;
  request.ca_file = ca_file_;
  request.basic_user = username_;
  request.basic_password = password_;
  auto stream = HttpStream::start(request);
  if (!stream) return std::move(stream).error().with_context(where + ": token request");
  auto body = (*stream)->read_all(kErrorBodyLimit);
  if (!body) return std::move(body).error().with_context(where + ": token request");
  const long status = (*stream)->status();
  if (status == 401 || status == 403) {
    return Error(ErrorCode::permission_denied, where + ": token server " + realm + " refused " +
                                                   (username_.empty() ? "anonymous access" : "the credentials of '" + username_ + "'") +
                                                   " (HTTP " + std::to_string(status) + ")");
  }
  if (status < 200 || status >= 300) {
    return Error(ErrorCode::unavailable, where + ": token server " + realm + " answered HTTP " + std::to_string(status));
  }
  const auto doc = nlohmann::json::parse(*body, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) {
    return Error(ErrorCode::parse_error, where + ": token response from " + realm + " is not a JSON object");
  }
  std::string token;
  for (const char* key : {"token", "access_token"}) {
    if (token.empty() && doc.contains(key) && doc[key].is_string()) token = doc[key].get<std::string>();
  }
  if (token.empty()) return Error(ErrorCode::parse_error, where + ": token response has neither token nor access_token");
  std::int64_t expires_in = 60;  // the spec's default
  if (doc.contains("expires_in") && doc["expires_in"].is_number_integer()) expires_in = doc["expires_in"].get<std::int64_t>();
  if (expires_in < 1) expires_in = 60;
  std::lock_guard lock(auth_mutex_);
  authorization_ = "Bearer " + token;
  // Renew a little early so a token does not expire in flight.
  token_expiry_ = std::chrono::steady_clock::now() + std::chrono::seconds(expires_in) -
                  std::chrono::seconds(std::min<std::int64_t>(expires_in / 10, 10));
  return {};
}

Result<std::unique_ptr<HttpStream>> RegistryClient::get(const std::string& path, const std::string& accept,
                                                        const std::string& what, bool head) {
  const std::string where = "registry " + registry_ + ": " + what;
  bool authenticated_once = false;
  std::uint64_t backoff = retry_.initial_backoff_ms;
  std::string last_failure;
  for (int attempt = 1;; ++attempt) {
    HttpRequest request;
    request.url = base_url_ + path;
    request.ca_file = ca_file_;
    request.head = head;
    if (!accept.empty()) request.headers.push_back("Accept: " + accept);
    const std::string authorization = current_authorization();
    if (!authorization.empty()) request.headers.push_back("Authorization: " + authorization);
    std::uint64_t wait_ms = std::min<std::uint64_t>(backoff, retry_.max_backoff_ms);
    auto stream = HttpStream::start(request);
    if (!stream) {
      if (stream.error().code() != ErrorCode::unavailable) return std::move(stream).error().with_context(where);
      last_failure = stream.error().message();
    } else {
      const long status = (*stream)->status();
      if (status >= 200 && status < 300) return std::move(*stream);
      auto body = (*stream)->read_all(kErrorBodyLimit);
      std::string details = body ? registry_errors(*body) : std::string();
      const std::string suffix = details.empty() ? "" : " (" + details + ")";
      if (status == 401) {
        if (!authenticated_once && !fixed_token_) {
          authenticated_once = true;
          if (auto st = authenticate((*stream)->header("www-authenticate")); !st) {
            return std::move(st).error().with_context(what);
          }
          --attempt;  // authenticating is not a failed attempt
          continue;
        }
        return Error(ErrorCode::permission_denied,
                     where + ": 401 Unauthorized after authenticating" +
                         (username_.empty() ? std::string(" (anonymous or given token)")
                                            : " as '" + username_ + "' (wrong password?)") +
                         suffix);
      }
      if (status == 403) return Error(ErrorCode::permission_denied, where + ": 403 Forbidden" + suffix);
      if (status == 404) return Error(ErrorCode::not_found, where + ": not found (404)" + suffix);
      if (status != 429 && status < 500) {
        return Error(ErrorCode::invalid_argument, where + ": HTTP " + std::to_string(status) + suffix);
      }
      last_failure = "HTTP " + std::to_string(status) + suffix;
      if (const std::string retry_after = (*stream)->header("retry-after"); !retry_after.empty()) {
        char* end = nullptr;
        const unsigned long seconds = std::strtoul(retry_after.c_str(), &end, 10);
        if (end != retry_after.c_str() && *end == '\0') {
          wait_ms = std::min<std::uint64_t>(static_cast<std::uint64_t>(seconds) * 1000, kMaxRetryAfterMs);
        }
      }
    }
    if (attempt >= retry_.max_attempts) {
      return Error(ErrorCode::unavailable,
                   where + ": giving up after " + std::to_string(attempt) + " attempts: " + last_failure);
    }
    sleep_ms(wait_ms);
    backoff = std::min<std::uint64_t>(backoff * 2, retry_.max_backoff_ms);
  }
}

Result<RegistryClient::TextResponse> RegistryClient::get_text(const std::string& path, const std::string& accept,
                                                              const std::string& what, std::size_t limit, bool head) {
  auto stream = get(path, accept, what, head);
  if (!stream) return std::move(stream).error();
  TextResponse out;
  out.link = (*stream)->header("link");
  out.content_digest = (*stream)->header("docker-content-digest");
  if (!head) {
    auto body = (*stream)->read_all(limit);
    if (!body) return std::move(body).error().with_context("registry " + registry_ + ": " + what);
    out.body = std::move(*body);
  }
  return out;
}

Status RegistryClient::ping() {
  auto stream = get("/v2/", "", "API check GET /v2/");
  if (!stream) {
    if (stream.error().code() == ErrorCode::not_found) {
      return Error(ErrorCode::unavailable, "registry " + registry_ + ": GET /v2/ is 404, not an OCI distribution (v2) registry");
    }
    return std::move(stream).error();
  }
  auto body = (*stream)->read_all(kErrorBodyLimit);
  if (!body) return std::move(body).error().with_context("registry " + registry_);
  return {};
}

Result<FetchedManifest> RegistryClient::get_manifest(const std::string& reference) {
  const bool by_digest = reference.starts_with("sha256:");
  const std::string what = "manifest " + repository_ + (by_digest ? "@" : ":") + reference;
  auto stream = get("/v2/" + repository_ + "/manifests/" + reference, std::string(media_type::kManifestAccept), what);
  if (!stream) return std::move(stream).error();
  auto body = (*stream)->read_all(kMaxManifestBytes);
  if (!body) return std::move(body).error().with_context(what);
  return FetchedManifest{std::move(*body), (*stream)->header("content-type"), (*stream)->header("docker-content-digest")};
}

Result<std::string> RegistryClient::get_blob(const std::string& digest, std::size_t limit) {
  const std::string what = "blob " + repository_ + "@" + digest;
  auto stream = get("/v2/" + repository_ + "/blobs/" + digest, "", what);
  if (!stream) return std::move(stream).error();
  auto body = (*stream)->read_all(limit);
  if (!body) return std::move(body).error().with_context(what);
  return body;
}

Result<std::unique_ptr<ByteSource>> RegistryClient::open_blob(const std::string& digest) {
  auto stream = get("/v2/" + repository_ + "/blobs/" + digest, "", "blob " + repository_ + "@" + digest);
  if (!stream) return std::move(stream).error();
  return std::unique_ptr<ByteSource>(std::move(*stream));
}

}  // namespace hashsieve::image
