// The container engine as the runtime scanner sees it: an interface (the
// scheduler and drift tests use fakes) and its one real implementation, a
// Docker Engine API client over a unix socket (libcurl,
// CURLOPT_UNIX_SOCKET_PATH). Podman's Docker-compatible service answers the
// same requests (run it with `--time 0`, or it exits after 5 s idle).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "hashsieve/core/result.h"
#include "hashsieve/image/layer_entries.h"
#include "hashsieve/runtime/engine_json.h"

namespace hashsieve::runtime {

// Error codes callers branch on: not_found (no such container, or the socket
// does not exist), permission_denied (the socket may not be opened),
// unavailable (the engine does not answer or failed: retry later),
// limit_exceeded (an archive larger than allowed), parse_error (a reply that
// is not what API 1.41 documents).
class Engine {
 public:
  virtual ~Engine() = default;
  // Running containers.
  virtual Result<std::vector<ContainerSummary>> list_containers() = 0;
  virtual Result<ContainerInspect> inspect(const std::string& id) = 0;
  virtual Result<std::vector<Change>> changes(const std::string& id) = 0;
  // HEAD /containers/{id}/archive?path=: what the path is, without its bytes.
  virtual Result<PathStat> stat_path(const std::string& id, const std::string& path) = 0;
  // GET /containers/{id}/archive?path=: a tar holding the path (for a file,
  // one entry named by its base name). More than max_bytes of tar is
  // limit_exceeded (the transfer is cut off there).
  virtual Result<std::vector<std::uint8_t>> archive(const std::string& id, const std::string& path,
                                                    std::uint64_t max_bytes) = 0;
  // GET /containers/{id}/export: a tar of the container's whole filesystem,
  // as a pull stream (never held in memory). The reply's status is checked
  // before this returns; a failure while reading (the engine stopped) is
  // unavailable from ByteSource::read.
  virtual Result<std::unique_ptr<image::ByteSource>> export_container(const std::string& id) = 0;
  // Follows GET /events for container start and exec events (Docker's
  // exec_start, Podman's exec), calling
  // on_event for each, until `stop` becomes true (checked at least once a
  // second) or the stream fails (an error; ok when stopped).
  virtual Status watch_events(const std::function<void(const EngineEvent&)>& on_event,
                              const std::atomic<bool>& stop) = 0;
};

struct DockerEngineOptions {
  std::string host = "unix:///var/run/docker.sock";  // unix://PATH only
  std::string api_version = "v1.41";
  std::chrono::milliseconds timeout{std::chrono::seconds(60)};  // per request (not the event stream)
  std::chrono::milliseconds connect_timeout{std::chrono::seconds(5)};
  // A streamed export that moves no byte for this long is given up (unavailable).
  std::chrono::milliseconds stall_timeout{std::chrono::seconds(60)};
};

// Checks the socket (exists: not_found; is a socket; may be opened:
// permission_denied) and asks the engine for GET /_ping, so a dead engine
// is reported here (unavailable).
Result<std::unique_ptr<Engine>> connect_docker_engine(const DockerEngineOptions& options);

}  // namespace hashsieve::runtime
