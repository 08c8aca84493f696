#include "hashsieve/runtime/report.h"

#include <nlohmann/json.hpp>

namespace hashsieve::runtime {
namespace {

using nlohmann::json;

json evidence_json(const scan::Evidence& e) {
  json j = {{"verdict", scan::to_string(e.verdict)}, {"set", e.set},         {"set_class", e.set_class},
            {"reference", e.reference},              {"algorithm", e.algorithm}};
  if (e.score) j["score"] = *e.score;
  if (e.threshold) j["threshold"] = *e.threshold;
  return j;
}

json container_object(const ContainerScan& s) {
  json files = json::array();
  for (const auto& f : s.files) {
    json ev = json::array();
    for (const auto& e : f.evidence) ev.push_back(evidence_json(e));
    files.push_back({{"path", f.path},
                     {"change", to_string(f.change)},
                     {"size", f.size},
                     {"mode", f.mode},
                     {"sha256", f.sha256},
                     {"new_executable", f.new_executable},
                     {"verdict", scan::to_string(f.verdict)},
                     {"evidence", ev}});
  }
  json errors = json::array();
  for (const auto& e : s.errors) {
    errors.push_back({{"path", e.path}, {"code", to_string(e.code)}, {"message", e.message}});
  }
  json counts = json::object();
  for (scan::Verdict v : scan::kAllVerdicts) counts[std::string(scan::to_string(v))] = 0;
  for (const auto& f : s.files) counts[std::string(scan::to_string(f.verdict))] = counts[std::string(scan::to_string(f.verdict))].get<int>() + 1;
  json image_scan = nullptr;
  if (s.image_scan_id != 0) image_scan = {{"id", s.image_scan_id}, {"verdict", s.image_verdict}};
  return {{"id", s.container.id},
          {"name", s.container.name},
          {"image", s.container.image},
          {"image_id", s.container.image_id},
          {"state", s.container.state},
          {"verdict", scan::to_string(s.verdict)},
          {"image_scan", image_scan},
          {"summary",
           {{"drifted_files", drifted_files(s)},
            {"full_scan", s.full},
            {"files", s.files.size()},
            {"skipped", s.skipped},
            {"counts", counts}}},
          {"files", files},
          {"errors", errors}};
}

}  // namespace

std::size_t drifted_files(const ContainerScan& scan) {
  std::size_t n = 0;
  for (const auto& f : scan.files) n += f.change != ChangeKind::unchanged ? 1 : 0;
  return n;
}

std::string container_json(const ContainerScan& scan) { return container_object(scan).dump(); }

std::string write_runtime_json(const std::vector<ContainerScan>& scans, const std::string& tool_version,
                               const std::string& scanned_at) {
  json containers = json::array();
  for (const auto& s : scans) containers.push_back(container_object(s));
  json j = {{"schema_version", kRuntimeReportSchemaVersion},
            {"tool", {{"name", "hashsieve"}, {"version", tool_version}}}};
  if (!scanned_at.empty()) j["scanned_at"] = scanned_at;
  j["containers"] = containers;
  return j.dump(2) + "\n";
}

std::vector<scan::ImageReport> to_image_reports(const std::vector<ContainerScan>& scans) {
  std::vector<scan::ImageReport> out;
  for (const auto& s : scans) {
    scan::ImageReport r;
    r.image.reference = "container " + (s.container.name.empty() ? std::string("?") : s.container.name) + " (" +
                        s.container.id.substr(0, 12) + ") of " + s.container.image;
    r.image.config_digest = s.container.image_id;
    for (const auto& f : s.files) {
      scan::FileFinding ff;
      ff.path = f.path.size() > 1 ? f.path.substr(1) : f.path;
      ff.size = f.size;
      ff.sha256 = f.sha256;
      ff.verdict = f.verdict;
      ff.evidence = f.evidence;
      r.files.push_back(std::move(ff));
    }
    r.summary = scan::summarize(r.files);
    for (const auto& e : s.errors) r.warnings.push_back(Warning{(e.path.empty() ? "" : e.path + ": ") + e.message});
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace hashsieve::runtime
