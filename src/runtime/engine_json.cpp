#include "hashsieve/runtime/engine_json.h"

#include <nlohmann/json.hpp>

namespace hashsieve::runtime {
namespace {

using nlohmann::json;

Result<json> parse_json(std::string_view text, const char* what) {
  json j = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Error(ErrorCode::parse_error, std::string(what) + ": not valid JSON");
  return j;
}

// A string member; absent or null is "" unless `required`.
Result<std::string> string_field(const json& obj, const char* key, bool required, const char* what) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) {
    if (required) return Error(ErrorCode::parse_error, std::string(what) + ": missing \"" + key + "\"");
    return std::string();
  }
  if (!it->is_string()) return Error(ErrorCode::parse_error, std::string(what) + ": \"" + key + "\" is not a string");
  return it->get<std::string>();
}

std::string strip_slash(std::string name) {
  if (!name.empty() && name[0] == '/') name.erase(0, 1);
  return name;
}

bool valid_id(const std::string& id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    const bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-' ||
                    c == '_' || c == '.';
    if (!ok) return false;
  }
  return true;
}

Result<std::string> id_field(const json& obj, const char* key, const char* what) {
  auto id = string_field(obj, key, true, what);
  if (!id.ok()) return id;
  if (!valid_id(*id)) return Error(ErrorCode::parse_error, std::string(what) + ": \"" + key + "\" is not a container ID");
  return id;
}

int base64_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+' || c == '-') return 62;
  if (c == '/' || c == '_') return 63;
  return -1;
}

// Standard or URL alphabet, padding optional (Go's base64.StdEncoding pads).
Result<std::string> decode_base64(std::string_view in) {
  while (!in.empty() && (in.back() == '=' || in.back() == ' ' || in.back() == '\r' || in.back() == '\n')) {
    in.remove_suffix(1);
  }
  std::string out;
  std::uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    const int v = base64_value(c);
    if (v < 0) return Error(ErrorCode::parse_error, "path stat: not base64");
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  if (bits >= 6) return Error(ErrorCode::parse_error, "path stat: truncated base64");
  return out;
}

}  // namespace

std::string_view to_string(ChangeKind kind) {
  switch (kind) {
    case ChangeKind::modified: return "modified";
    case ChangeKind::added: return "added";
    case ChangeKind::deleted: return "deleted";
    case ChangeKind::unchanged: return "unchanged";
  }
  return "?";
}

Result<std::vector<ContainerSummary>> parse_container_list(std::string_view text) {
  auto j = parse_json(text, "container list");
  if (!j.ok()) return std::move(j).error();
  if (!j->is_array()) return Error(ErrorCode::parse_error, "container list: not an array");
  std::vector<ContainerSummary> out;
  for (const json& item : *j) {
    if (!item.is_object()) return Error(ErrorCode::parse_error, "container list: an item is not an object");
    ContainerSummary c;
    auto id = id_field(item, "Id", "container list");
    if (!id.ok()) return std::move(id).error();
    c.id = *id;
    if (auto names = item.find("Names"); names != item.end() && !names->is_null()) {
      if (!names->is_array()) return Error(ErrorCode::parse_error, "container " + c.id + ": \"Names\" is not an array");
      if (!names->empty()) {
        if (!(*names)[0].is_string()) return Error(ErrorCode::parse_error, "container " + c.id + ": bad \"Names\"");
        c.name = strip_slash((*names)[0].get<std::string>());
      }
    }
    for (auto [field, key] : {std::pair{&c.image, "Image"}, std::pair{&c.image_id, "ImageID"},
                              std::pair{&c.state, "State"}}) {
      auto v = string_field(item, key, false, "container list");
      if (!v.ok()) return std::move(v).error().with_context("container " + c.id);
      *field = std::move(v).value();
    }
    out.push_back(std::move(c));
  }
  return out;
}

Result<ContainerInspect> parse_container_inspect(std::string_view text) {
  auto j = parse_json(text, "container inspect");
  if (!j.ok()) return std::move(j).error();
  if (!j->is_object()) return Error(ErrorCode::parse_error, "container inspect: not an object");
  ContainerInspect c;
  auto id = id_field(*j, "Id", "container inspect");
  if (!id.ok()) return std::move(id).error();
  c.id = *id;
  auto name = string_field(*j, "Name", false, "container inspect");
  if (!name.ok()) return std::move(name).error();
  c.name = strip_slash(*name);
  auto image_id = string_field(*j, "Image", false, "container inspect");
  if (!image_id.ok()) return std::move(image_id).error();
  c.image_id = *image_id;
  if (auto cfg = j->find("Config"); cfg != j->end() && cfg->is_object()) {
    auto image = string_field(*cfg, "Image", false, "container inspect: Config");
    if (!image.ok()) return std::move(image).error();
    c.image = *image;
  }
  if (auto st = j->find("State"); st != j->end() && !st->is_null()) {
    if (!st->is_object()) return Error(ErrorCode::parse_error, "container inspect: \"State\" is not an object");
    if (auto r = st->find("Running"); r != st->end()) {
      if (!r->is_boolean()) return Error(ErrorCode::parse_error, "container inspect: \"State.Running\" is not a boolean");
      c.running = r->get<bool>();
    }
    if (auto p = st->find("Pid"); p != st->end()) {
      if (!p->is_number_integer()) return Error(ErrorCode::parse_error, "container inspect: \"State.Pid\" is not an integer");
      c.pid = p->get<std::int64_t>();
    }
  }
  return c;
}

Result<std::vector<Change>> parse_changes(std::string_view text) {
  auto j = parse_json(text, "changes");
  if (!j.ok()) return std::move(j).error();
  std::vector<Change> out;
  if (j->is_null()) return out;
  if (!j->is_array()) return Error(ErrorCode::parse_error, "changes: not an array");
  for (const json& item : *j) {
    if (!item.is_object()) return Error(ErrorCode::parse_error, "changes: an item is not an object");
    auto path = string_field(item, "Path", true, "changes");
    if (!path.ok()) return std::move(path).error();
    if (path->empty() || (*path)[0] != '/' || path->find('\0') != std::string::npos) {
      return Error(ErrorCode::parse_error, "changes: path '" + *path + "' is not absolute");
    }
    auto kind = item.find("Kind");
    if (kind == item.end() || !kind->is_number_integer()) {
      return Error(ErrorCode::parse_error, "changes: " + *path + ": \"Kind\" is not an integer");
    }
    const auto k = kind->get<std::int64_t>();
    if (k < 0 || k > 2) return Error(ErrorCode::parse_error, "changes: " + *path + ": unknown Kind " + std::to_string(k));
    out.push_back({*path, static_cast<ChangeKind>(k)});
  }
  return out;
}

std::string PathStat::type_name() const {
  if (mode & kModeDir) return "directory";
  if (mode & kModeSymlink) return "symlink";
  if (mode & kModeNamedPipe) return "fifo";
  if (mode & kModeSocket) return "socket";
  if (mode & kModeCharDevice) return "character device";
  if (mode & kModeDevice) return "block device";
  if (mode & kModeIrregular) return "irregular file";
  return "regular file";
}

Result<PathStat> parse_path_stat(std::string_view header_value) {
  auto decoded = decode_base64(header_value);
  if (!decoded.ok()) return std::move(decoded).error();
  auto j = parse_json(*decoded, "path stat");
  if (!j.ok()) return std::move(j).error();
  if (!j->is_object()) return Error(ErrorCode::parse_error, "path stat: not an object");
  PathStat s;
  auto name = string_field(*j, "name", false, "path stat");
  if (!name.ok()) return std::move(name).error();
  s.name = *name;
  auto link = string_field(*j, "linkTarget", false, "path stat");
  if (!link.ok()) return std::move(link).error();
  s.link_target = *link;
  auto size = j->find("size");
  if (size == j->end() || !size->is_number_integer() || size->get<std::int64_t>() < 0) {
    return Error(ErrorCode::parse_error, "path stat: \"size\" is not a size");
  }
  s.size = size->get<std::uint64_t>();
  auto mode = j->find("mode");
  if (mode == j->end() || !mode->is_number_unsigned() || mode->get<std::uint64_t>() > UINT32_MAX) {
    return Error(ErrorCode::parse_error, "path stat: \"mode\" is not a file mode");
  }
  s.mode = static_cast<std::uint32_t>(mode->get<std::uint64_t>());
  return s;
}

std::string_view EngineEvent::verb() const {
  std::string_view a = action;
  if (auto colon = a.find(':'); colon != std::string_view::npos) a = a.substr(0, colon);
  return a;
}

Result<EngineEvent> parse_event(std::string_view text) {
  auto j = parse_json(text, "event");
  if (!j.ok()) return std::move(j).error();
  if (!j->is_object()) return Error(ErrorCode::parse_error, "event: not an object");
  EngineEvent e;
  auto type = string_field(*j, "Type", false, "event");
  if (!type.ok()) return std::move(type).error();
  e.type = *type;
  auto action = string_field(*j, "Action", false, "event");
  if (!action.ok()) return std::move(action).error();
  e.action = *action;
  if (auto actor = j->find("Actor"); actor != j->end() && !actor->is_null()) {
    if (!actor->is_object()) return Error(ErrorCode::parse_error, "event: \"Actor\" is not an object");
    auto id = string_field(*actor, "ID", false, "event: Actor");
    if (!id.ok()) return std::move(id).error();
    e.actor_id = *id;
  }
  if (auto t = j->find("timeNano"); t != j->end() && !t->is_null()) {
    if (!t->is_number_integer()) return Error(ErrorCode::parse_error, "event: \"timeNano\" is not an integer");
    e.time_nano = t->get<std::int64_t>();
  }
  if (e.type == "container" && !e.actor_id.empty() && !valid_id(e.actor_id)) {
    return Error(ErrorCode::parse_error, "event: Actor.ID is not a container ID");
  }
  return e;
}

}  // namespace hashsieve::runtime
