#include "../registry_client.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "subprocess.h"

namespace hashsieve::image {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const std::string kManifestPath = "/v2/team/app/manifests/1.0";

// The python3 scripted server (scripted_http_server.py) on a free port.
class ScriptedServer {
 public:
  bool start(const json& script) {
    if (!testsupport::have_program("python3")) return false;
    script_path_ = fs::temp_directory_path() / ("hashsieve-script-" + std::to_string(::getpid()) + "-" +
                                                 std::to_string(counter_++) + ".json");
    std::ofstream(script_path_) << script.dump();
    if (!child_.start({"python3", std::string(HASHSIEVE_IMAGE_TEST_DIR) + "/scripted_http_server.py", script_path_.string()},
                      true)) {
      return false;
    }
    port_ = child_.read_line();
    return !port_.empty();
  }
  ~ScriptedServer() {
    child_.stop();
    std::error_code ec;
    fs::remove(script_path_, ec);
  }
  std::string host() const { return "127.0.0.1:" + port_; }
  json log() const {
    HttpRequest request;
    request.url = "http://" + host() + "/__log";
    auto stream = HttpStream::start(request);
    if (!stream) return json::array();
    auto body = (*stream)->read_all(1 << 20);
    return body ? json::parse(*body) : json::array();
  }
  std::vector<json> requests_to(const std::string& path) const {
    std::vector<json> out;
    for (const auto& r : log()) {
      if (r["path"] == path) out.push_back(r);
    }
    return out;
  }

 private:
  static inline int counter_ = 0;
  testsupport::Child child_;
  fs::path script_path_;
  std::string port_;
};

json response(int status, const std::string& body = "", json headers = json::object()) {
  return {{"status", status}, {"body", body}, {"headers", std::move(headers)}};
}

SourceOptions fast_options() {
  SourceOptions options;
  options.insecure = true;
  options.retry.initial_backoff_ms = 10;
  options.retry.max_backoff_ms = 100;
  options.credentials.docker_config_path = "/nonexistent/hashsieve/config.json";
  return options;
}

Result<std::unique_ptr<RegistryClient>> client_for(const ScriptedServer& server, const SourceOptions& options) {
  auto ref = ImageReference::parse(server.host() + "/team/app:1.0");
  if (!ref) return std::move(ref).error();
  return RegistryClient::create(*ref, options);
}

#define START_SERVER(server, script)                                                       \
  if (!(server).start(script)) GTEST_SKIP() << "python3 scripted server could not start"; \
  static_assert(true)

TEST(RegistryClient, StatusHandling) {
  struct Case {
    std::string name;
    std::vector<json> responses;
    int max_attempts;
    ErrorCode want_code;  // internal = success expected
    std::string message_part;
    std::size_t want_requests;
  };
  const std::string errors = R"({"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]})";
  const Case cases[] = {
      {"200", {response(200, "{}")}, 4, ErrorCode::internal, "", 1},
      {"503 then 200", {response(503), response(502), response(200, "{}")}, 4, ErrorCode::internal, "", 3},
      {"5xx exhausted", {response(500)}, 3, ErrorCode::unavailable, "giving up after 3 attempts: HTTP 500", 3},
      {"429 exhausted", {response(429, errors)}, 2, ErrorCode::unavailable, "HTTP 429", 2},
      {"404", {response(404, errors)}, 4, ErrorCode::not_found,
       "manifest team/app:1.0: not found (404) (MANIFEST_UNKNOWN: manifest unknown)", 1},
      {"403", {response(403)}, 4, ErrorCode::permission_denied, "403 Forbidden", 1},
      {"400", {response(400, R"({"errors":[{"code":"NAME_INVALID"}]})")}, 4, ErrorCode::invalid_argument,
       "HTTP 400 (NAME_INVALID)", 1},
      {"401 without challenge", {response(401)}, 4, ErrorCode::permission_denied, "without a WWW-Authenticate", 1},
      {"401 basic, no credentials", {response(401, "", {{"WWW-Authenticate", R"(Basic realm="r")"}})}, 4,
       ErrorCode::permission_denied, "requires credentials", 1},
      {"unknown auth scheme", {response(401, "", {{"WWW-Authenticate", R"(Negotiate)"}})}, 4, ErrorCode::unsupported,
       "'negotiate'", 1},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    ScriptedServer server;
    START_SERVER(server, (json{{kManifestPath, c.responses}}));
    SourceOptions options = fast_options();
    options.retry.max_attempts = c.max_attempts;
    auto client = client_for(server, options);
    ASSERT_TRUE(client.ok()) << client.error().message();
    auto got = (*client)->get_manifest("1.0");
    if (c.want_code == ErrorCode::internal) {
      ASSERT_TRUE(got.ok()) << got.error().message();
      EXPECT_EQ(got->body, "{}");
    } else {
      ASSERT_FALSE(got.ok());
      EXPECT_EQ(got.error().code(), c.want_code) << got.error().message();
      EXPECT_NE(got.error().message().find(c.message_part), std::string::npos) << got.error().message();
      EXPECT_NE(got.error().message().find("registry " + server.host()), std::string::npos) << got.error().message();
    }
    EXPECT_EQ(server.requests_to(kManifestPath).size(), c.want_requests);
  }
}

TEST(RegistryClient, ManifestHeadersAndAccept) {
  ScriptedServer server;
  START_SERVER(server, (json{{kManifestPath,
                              {response(200, "{}", {{"Content-Type", "application/vnd.oci.image.index.v1+json"},
                                                    {"Docker-Content-Digest", "sha256:abc"}})}}}));
  auto client = client_for(server, fast_options());
  ASSERT_TRUE(client.ok());
  auto got = (*client)->get_manifest("1.0");
  ASSERT_TRUE(got.ok()) << got.error().message();
  EXPECT_EQ(got->media_type, "application/vnd.oci.image.index.v1+json");
  EXPECT_EQ(got->claimed_digest, "sha256:abc");
  const auto requests = server.requests_to(kManifestPath);
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0]["accept"], std::string(media_type::kManifestAccept));
}

TEST(RegistryClient, BackoffDoublesAndHonoursRetryAfter) {
  {
    ScriptedServer server;
    START_SERVER(server, (json{{kManifestPath, {response(503)}}}));
    SourceOptions options = fast_options();
    options.retry.max_attempts = 4;
    options.retry.initial_backoff_ms = 100;
    options.retry.max_backoff_ms = 150;
    auto client = client_for(server, options);
    ASSERT_TRUE(client.ok());
    const auto t0 = std::chrono::steady_clock::now();
    auto got = (*client)->get_manifest("1.0");
    const auto elapsed = std::chrono::steady_clock::now() - t0;
    ASSERT_FALSE(got.ok());
    // Waits of 100, 150 (capped), 150 ms between the four attempts.
    EXPECT_GE(elapsed, std::chrono::milliseconds(400));
    EXPECT_LT(elapsed, std::chrono::milliseconds(3000));
  }
  {
    ScriptedServer server;
    START_SERVER(server, (json{{kManifestPath, {response(429, "", {{"Retry-After", "1"}}), response(200, "{}")}}}));
    auto client = client_for(server, fast_options());
    ASSERT_TRUE(client.ok());
    const auto t0 = std::chrono::steady_clock::now();
    auto got = (*client)->get_manifest("1.0");
    const auto elapsed = std::chrono::steady_clock::now() - t0;
    ASSERT_TRUE(got.ok()) << got.error().message();
    EXPECT_GE(elapsed, std::chrono::milliseconds(1000));  // not the 10 ms backoff
  }
}

TEST(RegistryClient, ConnectionRefusedIsRetriedThenUnavailable) {
  // A port that was free a moment ago: nothing listens there.
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  auto ref = ImageReference::parse("127.0.0.1:" + std::to_string(ntohs(addr.sin_port)) + "/app:1");
  ASSERT_TRUE(ref.ok());
  SourceOptions options = fast_options();
  options.retry.max_attempts = 2;
  auto client = RegistryClient::create(*ref, options);
  ASSERT_TRUE(client.ok());
  auto got = (*client)->ping();
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().code(), ErrorCode::unavailable);
  EXPECT_NE(got.error().message().find("giving up after 2 attempts"), std::string::npos) << got.error().message();
}

TEST(RegistryClient, PingOf404IsNotARegistry) {
  ScriptedServer server;
  START_SERVER(server, (json{{"/v2/", {response(404)}}}));
  auto client = client_for(server, fast_options());
  ASSERT_TRUE(client.ok());
  auto got = (*client)->ping();
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().code(), ErrorCode::unavailable);
  EXPECT_NE(got.error().message().find("not an OCI distribution (v2) registry"), std::string::npos);
}

TEST(RegistryClient, BasicAuthFromOptionsAndDockerConfig) {
  const std::string challenge = R"(Basic realm="Registry Realm")";
  for (const bool from_config : {false, true}) {
    SCOPED_TRACE(from_config ? "docker config" : "options");
    ScriptedServer server;
    START_SERVER(server, (json{{kManifestPath, {response(401, "", {{"WWW-Authenticate", challenge}}), response(200, "{}")}}}));
    SourceOptions options = fast_options();
    const fs::path config = fs::temp_directory_path() / ("hashsieve-docker-config-" + std::to_string(::getpid()) + ".json");
    if (from_config) {
      std::ofstream(config) << json{{"auths", {{"https://" + server.host(), {{"auth", base64_encode("user:pa:ss")}}}}}}.dump();
      options.credentials.docker_config_path = config.string();
    } else {
      options.credentials.username = "user";
      options.credentials.password = "pa:ss";
    }
    auto client = client_for(server, options);
    ASSERT_TRUE(client.ok()) << client.error().message();
    auto got = (*client)->get_manifest("1.0");
    ASSERT_TRUE(got.ok()) << got.error().message();
    const auto requests = server.requests_to(kManifestPath);
    ASSERT_EQ(requests.size(), 2u);
    EXPECT_EQ(requests[0]["authorization"], "");
    EXPECT_EQ(requests[1]["authorization"], "Basic " + base64_encode("user:pa:ss"));
    std::error_code ec;
    fs::remove(config, ec);
  }
}

TEST(RegistryClient, WrongPasswordIsPermissionDenied) {
  ScriptedServer server;
  START_SERVER(server, (json{{kManifestPath, {response(401, "", {{"WWW-Authenticate", R"(Basic realm="r")"}})}}}));
  SourceOptions options = fast_options();
  options.credentials.username = "user";
  options.credentials.password = "wrong";
  auto client = client_for(server, options);
  ASSERT_TRUE(client.ok());
  auto got = (*client)->get_manifest("1.0");
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().code(), ErrorCode::permission_denied);
  EXPECT_NE(got.error().message().find("401 Unauthorized after authenticating as 'user'"), std::string::npos)
      << got.error().message();
  EXPECT_EQ(server.requests_to(kManifestPath).size(), 2u);
}

TEST(RegistryClient, BearerTokenExchange) {
  ScriptedServer server;
  const std::string challenge =
      R"(Bearer realm="http://127.0.0.1:{PORT}/token",service="test-registry",scope="repository:team/app:pull")";
  START_SERVER(server, (json{{kManifestPath, {response(401, "", {{"WWW-Authenticate", challenge}}), response(200, "{}")}},
                             {"/v2/team/app/blobs/sha256:" + std::string(64, 'a'), {response(200, "blob")}},
                             {"/token", {response(200, R"({"access_token":"tok-123","expires_in":300})")}}}));
  SourceOptions options = fast_options();
  options.credentials.username = "robot";
  options.credentials.password = "secret";
  auto client = client_for(server, options);
  ASSERT_TRUE(client.ok());
  auto got = (*client)->get_manifest("1.0");
  ASSERT_TRUE(got.ok()) << got.error().message();
  const auto token_requests = server.requests_to("/token");
  ASSERT_EQ(token_requests.size(), 1u);
  EXPECT_EQ(token_requests[0]["query"], "service=test-registry&scope=repository%3Ateam%2Fapp%3Apull");
  EXPECT_EQ(token_requests[0]["authorization"], "Basic " + base64_encode("robot:secret"));
  const auto manifest_requests = server.requests_to(kManifestPath);
  ASSERT_EQ(manifest_requests.size(), 2u);
  EXPECT_EQ(manifest_requests[1]["authorization"], "Bearer tok-123");
  // The token is reused for the next request without another exchange.
  auto blob = (*client)->get_blob("sha256:" + std::string(64, 'a'), 100);
  ASSERT_TRUE(blob.ok()) << blob.error().message();
  EXPECT_EQ(*blob, "blob");
  EXPECT_EQ(server.requests_to("/token").size(), 1u);
  EXPECT_EQ(server.requests_to("/v2/team/app/blobs/sha256:" + std::string(64, 'a'))[0]["authorization"], "Bearer tok-123");
}

TEST(RegistryClient, TokenServerErrors) {
  struct Case {
    std::string name;
    json token_response;
    ErrorCode code;
    std::string message_part;
  };
  const Case cases[] = {
      {"refused", response(401), ErrorCode::permission_denied, "refused anonymous access"},
      {"no token", response(200, R"({"expires_in":3})"), ErrorCode::parse_error, "neither token nor access_token"},
      {"not json", response(200, "<html>"), ErrorCode::parse_error, "not a JSON object"},
      {"server error", response(500), ErrorCode::unavailable, "HTTP 500"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    ScriptedServer server;
    const std::string challenge = R"(Bearer realm="http://127.0.0.1:{PORT}/token",service="s")";
    START_SERVER(server, (json{{kManifestPath, {response(401, "", {{"WWW-Authenticate", challenge}})}},
                               {"/token", {c.token_response}}}));
    auto client = client_for(server, fast_options());
    ASSERT_TRUE(client.ok());
    auto got = (*client)->get_manifest("1.0");
    ASSERT_FALSE(got.ok());
    EXPECT_EQ(got.error().code(), c.code) << got.error().message();
    EXPECT_NE(got.error().message().find(c.message_part), std::string::npos) << got.error().message();
  }
}

TEST(RegistryClient, GivenBearerTokenIsSentFirstAndNotExchanged) {
  ScriptedServer server;
  START_SERVER(server, (json{{kManifestPath, {response(200, "{}"), response(401, "", {{"WWW-Authenticate", "Bearer realm=\"x\""}})}}}));
  SourceOptions options = fast_options();
  options.credentials.bearer_token = "given";
  auto client = client_for(server, options);
  ASSERT_TRUE(client.ok());
  ASSERT_TRUE((*client)->get_manifest("1.0").ok());
  EXPECT_EQ(server.requests_to(kManifestPath)[0]["authorization"], "Bearer given");
  auto denied = (*client)->get_manifest("1.0");
  ASSERT_FALSE(denied.ok());
  EXPECT_EQ(denied.error().code(), ErrorCode::permission_denied);
  EXPECT_EQ(server.requests_to(kManifestPath).size(), 2u);
}

TEST(RegistryClient, BlobRedirectIsFollowed) {
  ScriptedServer server;
  const std::string digest = "sha256:" + std::string(64, 'b');
  START_SERVER(server, (json{{"/v2/team/app/blobs/" + digest,
                              {response(307, "", {{"Location", "http://127.0.0.1:{PORT}/storage/blob-b"}})}},
                             {"/storage/blob-b", {response(200, "stored bytes")}}}));
  auto client = client_for(server, fast_options());
  ASSERT_TRUE(client.ok());
  auto blob = (*client)->open_blob(digest);
  ASSERT_TRUE(blob.ok()) << blob.error().message();
  std::string got;
  std::uint8_t buf[5];
  while (true) {
    auto n = (*blob)->read(buf);
    ASSERT_TRUE(n.ok()) << n.error().message();
    if (*n == 0) break;
    got.append(reinterpret_cast<char*>(buf), *n);
  }
  EXPECT_EQ(got, "stored bytes");
  EXPECT_EQ(server.requests_to("/storage/blob-b").size(), 1u);
}

TEST(RegistryClient, BlobStreamsWithBoundedBuffering) {
  // 64 MiB body; after reading one byte and pausing, the server must not
  // have been able to send it all: we stop reading the socket at 1 MiB of
  // buffered data, so only that plus the kernel socket buffers can be sent.
  ScriptedServer server;
  const std::string digest = "sha256:" + std::string(64, 'c');
  const std::string text(65536, 'z');
  constexpr int kCount = 1024;
  START_SERVER(server, (json{{"/v2/team/app/blobs/" + digest,
                              {{{"status", 200}, {"body_repeat", {{"text", text}, {"count", kCount}}}}}}}));
  auto client = client_for(server, fast_options());
  ASSERT_TRUE(client.ok());
  auto blob = (*client)->open_blob(digest);
  ASSERT_TRUE(blob.ok()) << blob.error().message();
  std::vector<std::uint8_t> buf(1 << 16);
  auto first = (*blob)->read({buf.data(), 1});
  ASSERT_TRUE(first.ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  const auto requests = server.requests_to("/v2/team/app/blobs/" + digest);
  ASSERT_EQ(requests.size(), 1u);
  const std::uint64_t sent = requests[0]["bytes_sent"].get<std::uint64_t>();
  EXPECT_LT(sent, 32ull << 20) << "the whole blob was pulled ahead of the reader";
  std::uint64_t total = *first;
  bool all_z = true;
  while (true) {
    auto n = (*blob)->read(buf);
    ASSERT_TRUE(n.ok()) << n.error().message();
    if (*n == 0) break;
    for (std::size_t i = 0; i < *n; ++i) all_z &= buf[i] == 'z';
    total += *n;
  }
  EXPECT_EQ(total, static_cast<std::uint64_t>(text.size()) * kCount);
  EXPECT_TRUE(all_z);
}

TEST(HttpStream, StalledServerTimesOut) {
  ScriptedServer server;
  START_SERVER(server, (json{{"/slow", {{{"status", 200}, {"body", "late"}, {"delay_s", 3}}}}}));
  HttpRequest request;
  request.url = "http://" + server.host() + "/slow";
  request.stall_timeout_s = 1;
  const auto t0 = std::chrono::steady_clock::now();
  auto got = HttpStream::start(request);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().code(), ErrorCode::unavailable);
  EXPECT_NE(got.error().message().find("no data for 1 s"), std::string::npos) << got.error().message();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(2900));
}

TEST(RegistryClient, ManifestSizeLimit) {
  ScriptedServer server;
  START_SERVER(server, (json{{kManifestPath, {{{"status", 200}, {"body_repeat", {{"text", std::string(1 << 20, 'x')}, {"count", 5}}}}}}}));
  auto client = client_for(server, fast_options());
  ASSERT_TRUE(client.ok());
  auto got = (*client)->get_manifest("1.0");
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().code(), ErrorCode::limit_exceeded);
}

TEST(AuthChallenge, Parses) {
  struct Case {
    std::string header;
    std::string scheme;
    std::map<std::string, std::string> params;
  };
  const Case cases[] = {
      {R"(Bearer realm="https://auth.example/token",service="registry.example",scope="repository:team/app:pull,push")",
       "bearer",
       {{"realm", "https://auth.example/token"}, {"service", "registry.example"}, {"scope", "repository:team/app:pull,push"}}},
      {R"(Basic realm="Registry Realm")", "basic", {{"realm", "Registry Realm"}}},
      {R"(Bearer realm=https://a/t, service="s\"q")", "bearer", {{"realm", "https://a/t"}, {"service", "s\"q"}}},
      {"Basic", "basic", {}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.header);
    auto got = parse_auth_challenge(c.header);
    ASSERT_TRUE(got.ok()) << got.error().message();
    EXPECT_EQ(got->scheme, c.scheme);
    EXPECT_EQ(got->params, c.params);
  }
  for (const std::string bad : {"", "Bearer realm", R"(Bearer realm="open)"}) {
    SCOPED_TRACE(bad);
    EXPECT_FALSE(parse_auth_challenge(bad).ok());
  }
}

TEST(Base64, RoundTripsAndRejects) {
  struct Case {
    std::string plain, encoded;
  };
  const Case cases[] = {{"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"}, {"user:pass", "dXNlcjpwYXNz"}};
  for (const auto& c : cases) {
    SCOPED_TRACE(c.plain);
    EXPECT_EQ(base64_encode(c.plain), c.encoded);
    auto decoded = base64_decode(c.encoded);
    ASSERT_TRUE(decoded.ok());
    EXPECT_EQ(*decoded, c.plain);
  }
  EXPECT_FALSE(base64_decode("a*b=").ok());
  EXPECT_FALSE(base64_decode("Z").ok());
}

TEST(DockerConfigCredentials, Lookups) {
  struct Case {
    std::string name;
    std::string content;  // "" = no file
    std::string registry;
    bool want_error;
    std::string want_user;  // "" = none found
  };
  const std::string auth = base64_encode("alice:pw");
  const Case cases[] = {
      {"missing file", "", "r.example", false, ""},
      {"plain host", R"({"auths":{"r.example":{"auth":")" + auth + R"("}}})", "r.example", false, "alice"},
      {"url key", R"({"auths":{"https://r.example/v1/":{"auth":")" + auth + R"("}}})", "r.example", false, "alice"},
      {"other host", R"({"auths":{"other.example":{"auth":")" + auth + R"("}}})", "r.example", false, ""},
      {"no auths", R"({"credsStore":"desktop"})", "r.example", false, ""},
      {"malformed json", "{", "r.example", true, ""},
      {"bad base64", R"({"auths":{"r.example":{"auth":"!!"}}})", "r.example", true, ""},
      {"no colon", R"({"auths":{"r.example":{"auth":")" + base64_encode("alice") + R"("}}})", "r.example", true, ""},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const fs::path path = fs::temp_directory_path() / ("hashsieve-dc-" + std::to_string(::getpid()) + ".json");
    std::error_code ec;
    fs::remove(path, ec);
    if (!c.content.empty()) std::ofstream(path) << c.content;
    auto got = docker_config_credentials(path.string(), c.registry);
    fs::remove(path, ec);
    if (c.want_error) {
      ASSERT_FALSE(got.ok());
      EXPECT_EQ(got.error().code(), ErrorCode::parse_error);
      continue;
    }
    ASSERT_TRUE(got.ok()) << got.error().message();
    if (c.want_user.empty()) {
      EXPECT_FALSE(got->has_value());
    } else {
      ASSERT_TRUE(got->has_value());
      EXPECT_EQ((*got)->first, c.want_user);
      EXPECT_EQ((*got)->second, "pw");
    }
  }
}

}  // namespace
}  // namespace hashsieve::image
