// Persistence for running-container scans (hashsieve runtime): the newest
// result of each container and the scheduler's state, in their own tables of
// the same <data-dir>/store.db as the image scans. Separate from store.h so
// the image store's interface stays as it is.
//
// Data access for the REST API:
//   GET /v1/containers        -> list_containers(filter): keyset pages by ID
//   GET /v1/containers/{id}   -> get_container_result(id) (full id, or a
//                                unique prefix of at least 4 characters)
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "hashsieve/core/result.h"

namespace hashsieve::store {

// The newest scan of one container. result_json is the runtime report's
// entry for the container (docs/cli.md, `hashsieve runtime`).
struct ContainerRecord {
  std::string id;             // full container ID
  std::string name;           // without the leading '/'
  std::string image;          // as the engine names it (Config.Image)
  std::string image_id;       // "sha256:<hex>" of the image config
  std::int64_t image_scan_id = 0;  // ScanRecord::id of the image's scan; 0 = none
  std::string scanned_at;     // UTC, ISO 8601
  std::string verdict;        // worst drifted-file verdict, "known" when no drift
  std::uint64_t drifted_files = 0;
  std::uint64_t errors = 0;   // files or steps that could not be scanned
  std::string result_json;
  bool operator==(const ContainerRecord&) const = default;
};

// What the scheduler needs to carry on after a restart. Times are Unix
// milliseconds of the scheduler's clock.
struct ScheduleState {
  std::string container_id;
  std::int64_t last_scan_ms = 0;   // 0 = never scanned
  std::int64_t last_event_ms = 0;  // newest start/exec event not yet scanned (0 = none)
  std::uint32_t failures = 0;      // consecutive failed scans
  bool operator==(const ScheduleState&) const = default;
};

// One page of GET /v1/containers. Keyset pagination on the container ID: a
// result replaced between two pages keeps its place (the ID does not
// change, scanned_at does), so no row is skipped or repeated.
struct ContainerFilter {
  std::string verdict;   // exact match; empty = any
  std::string after_id;  // only IDs greater (byte order) than this; empty = from the start
  std::size_t limit = 50;
};

class ContainerStore {
 public:
  virtual ~ContainerStore() = default;
  // Replaces the container's previous result.
  virtual Status put_container_result(const ContainerRecord& record) = 0;
  // By exact ID, else by a unique prefix (>= 4 characters); nullopt when none
  // matches; invalid_argument when a prefix matches several.
  virtual Result<std::optional<ContainerRecord>> get_container_result(const std::string& id) = 0;
  // Newest first (scanned_at, then id).
  virtual Result<std::vector<ContainerRecord>> list_container_results(std::size_t limit) = 0;
  // At most filter.limit results in ascending ID (byte) order.
  virtual Result<std::vector<ContainerRecord>> list_containers(const ContainerFilter& filter) = 0;
  virtual Status remove_container(const std::string& id) = 0;  // result and schedule

  virtual Status put_schedule(const ScheduleState& state) = 0;
  virtual Result<std::vector<ScheduleState>> list_schedule() = 0;
};

// Opens (creating if needed) <data_dir>/store.db in WAL mode, adding the
// container tables. Safe to share between threads.
Result<std::unique_ptr<ContainerStore>> open_sqlite_container_store(const std::string& data_dir);

}  // namespace hashsieve::store
