// libFuzzer target: the Docker Engine API parsers of the runtime module
// (container list, inspect, /changes, the archive stat header, events).
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "hashsieve/runtime/engine_json.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace hashsieve::runtime;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  if (auto changes = parse_changes(text); changes.ok()) {
    for (const auto& c : *changes) {
      // Only absolute paths and the three documented kinds get through.
      if (c.path.empty() || c.path[0] != '/' || static_cast<int>(c.kind) > 2) std::abort();
    }
  }
  if (auto list = parse_container_list(text); list.ok()) {
    for (const auto& c : *list) {
      if (c.id.empty() || c.id.find('/') != std::string::npos) std::abort();
    }
  }
  (void)parse_container_inspect(text);
  if (auto e = parse_event(text); e.ok() && e->verb().size() > e->action.size()) std::abort();
  if (auto s = parse_path_stat(text); s.ok() && s->is_regular() && (s->mode & PathStat::kModeType) != 0) std::abort();
  return 0;
}
