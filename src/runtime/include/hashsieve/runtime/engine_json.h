// Parsers of the Docker Engine API's JSON (API 1.41; Podman's compatible
// service answers the same shapes): container list, inspect, /changes, the
// archive stat header and the events stream. Pure functions over untrusted
// text: a malformed document is a parse_error naming the field, never an
// exception.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "hashsieve/core/result.h"

namespace hashsieve::runtime {

struct ContainerSummary {
  std::string id;
  std::string name;      // first of Names, without the leading '/'
  std::string image;     // Image: the name it was created from
  std::string image_id;  // ImageID: "sha256:<config digest>"
  std::string state;     // "running", "exited", ...
};

// GET /containers/json
Result<std::vector<ContainerSummary>> parse_container_list(std::string_view json);

struct ContainerInspect {
  std::string id;
  std::string name;
  std::string image;     // Config.Image
  std::string image_id;  // Image
  bool running = false;  // State.Running
  std::int64_t pid = 0;  // State.Pid
};

// GET /containers/{id}/json
Result<ContainerInspect> parse_container_inspect(std::string_view json);

// Kind 0 Modified, 1 Added, 2 Deleted.
// unchanged is never in /changes: a file of a full (export) scan that is
// not part of the drift.
enum class ChangeKind : std::uint8_t { modified = 0, added = 1, deleted = 2, unchanged = 3 };
std::string_view to_string(ChangeKind kind);

struct Change {
  std::string path;  // absolute, as the engine reports it
  ChangeKind kind = ChangeKind::modified;
  bool operator==(const Change&) const = default;
};

// GET /containers/{id}/changes. `null` (no changes) is an empty list. Paths
// must be absolute and free of NUL.
Result<std::vector<Change>> parse_changes(std::string_view json);

// The Go os.FileMode of an archive stat: type bits in the high bits.
struct PathStat {
  std::string name;
  std::uint64_t size = 0;
  std::uint32_t mode = 0;  // Go FileMode
  std::string link_target;
  bool is_dir() const { return (mode & kModeDir) != 0; }
  bool is_symlink() const { return (mode & kModeSymlink) != 0; }
  // Not a directory, symlink, device, FIFO, socket or irregular file.
  bool is_regular() const { return (mode & kModeType) == 0; }
  // "directory", "symlink", "fifo", "socket", "device", "regular", ...
  std::string type_name() const;
  std::uint32_t permissions() const { return mode & 07777; }

  static constexpr std::uint32_t kModeDir = 1u << 31;
  static constexpr std::uint32_t kModeSymlink = 1u << 27;
  static constexpr std::uint32_t kModeDevice = 1u << 26;
  static constexpr std::uint32_t kModeNamedPipe = 1u << 25;
  static constexpr std::uint32_t kModeSocket = 1u << 24;
  static constexpr std::uint32_t kModeCharDevice = 1u << 21;
  static constexpr std::uint32_t kModeIrregular = 1u << 19;
  static constexpr std::uint32_t kModeType =
      kModeDir | kModeSymlink | kModeDevice | kModeNamedPipe | kModeSocket | kModeCharDevice | kModeIrregular;
};

// The X-Docker-Container-Path-Stat header of HEAD /containers/{id}/archive:
// base64 of a JSON object {name, size, mode, mtime, linkTarget}.
Result<PathStat> parse_path_stat(std::string_view header_value);

struct EngineEvent {
  std::string type;      // "container", "image", ...
  std::string action;    // "start", "exec_start: sh -c ...", "die", ...
  std::string actor_id;  // Actor.ID (container ID for container events)
  std::int64_t time_nano = 0;
  // The action without the command Docker appends ("exec_start: ls" -> "exec_start").
  std::string_view verb() const;
};

// One line of GET /events.
Result<EngineEvent> parse_event(std::string_view json);

}  // namespace hashsieve::runtime
