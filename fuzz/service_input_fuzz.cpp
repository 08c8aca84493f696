// libFuzzer target: the service's untrusted-input parsers: registry
// notification envelopes (the webhook body), the YAML configuration and the
// Link header of catalog pages.
#include <cstdint>
#include <cstdlib>
#include <set>
#include <string>
#include <string_view>

#include "hashsieve/image/reference.h"
#include "hashsieve/image/registry_catalog.h"
#include "hashsieve/service/config.h"
#include "hashsieve/service/notifications.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace hashsieve;
  const std::string input(reinterpret_cast<const char*>(data), size);
  auto envelope = service::parse_envelope(input);
  if (envelope.ok()) {
    std::set<std::pair<std::string, std::string>> seen;
    for (const auto& p : envelope->pushes) {
      // Only valid names reach the job store, each (repository, digest) once.
      if (!image::is_valid_repository(p.repository) || !image::is_valid_sha256_digest(p.digest)) std::abort();
      if (!seen.emplace(p.repository, p.digest).second) std::abort();
    }
  } else if (envelope.error().message().empty()) {
    std::abort();
  }
  auto config = service::parse_config(input, {});
  if (config.ok() && (config->data_dir.empty() || config->api_tokens.empty() || config->webhook.token.empty())) {
    std::abort();  // validation let an incomplete configuration through
  }
  if (config.ok()) {
    const auto& sc = config->scanners;
    // One ClamAV path; image scans only with a scanner to run.
    if (!sc.engines.clamav_dbs.empty() && !sc.engines.clamd_socket.empty()) std::abort();
    if (sc.image_scans && sc.engines.empty()) std::abort();
    if (sc.engines.limits.max_bytes == 0) std::abort();
  }
  if (auto next = image::parse_next_link(input); next && (next->empty() || next->front() != '/')) std::abort();
  return 0;
}
