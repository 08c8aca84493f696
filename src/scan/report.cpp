#include "hashsieve/scan/report.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdio>

namespace hashsieve::scan {
namespace {

using Json = nlohmann::ordered_json;

std::string dump(const Json& j) {
  return j.dump(2, ' ', false, Json::error_handler_t::replace) + "\n";
}

// Four decimals keep the report stable across platforms' float printing.
double rounded(double x) { return std::round(x * 10000.0) / 10000.0; }

Json layer_ref(const ImageReport& r, std::size_t index) {
  Json j;
  j["index"] = index;
  j["diff_id"] = index < r.image.layers.size() ? r.image.layers[index].diff_id : "";
  return j;
}

Json evidence_json(const Evidence& e) {
  Json j;
  j["set"] = e.set;
  j["class"] = e.set_class;
  j["reference"] = e.reference;
  j["algorithm"] = e.algorithm;
  j["verdict"] = std::string(to_string(e.verdict));
  j["score"] = e.score ? Json(*e.score) : Json(nullptr);
  j["threshold"] = e.threshold ? Json(*e.threshold) : Json(nullptr);
  return j;
}

Json summary_object(const ScanSummary& s) {
  Json j;
  j["verdict"] = std::string(to_string(s.verdict));
  j["files"] = s.files;
  j["hidden"] = s.hidden;
  for (Verdict v : kAllVerdicts) j[std::string(to_string(v))] = s.count(v);
  j["reduction_ratio"] = rounded(s.reduction_ratio);
  return j;
}

std::string platform_text(const image::Platform& p);

Json report_json(const ImageReport& r, const JsonReportOptions& o) {
  Json j;
  j["schema_version"] = kReportSchemaVersion;
  j["tool"] = {{"name", "hashsieve"}, {"version", o.tool_version}};
  if (!o.scanned_at.empty()) j["scanned_at"] = o.scanned_at;
  Json image;
  image["reference"] = r.image.reference;
  image["digest"] = r.image.manifest_digest;
  image["config_digest"] = r.image.config_digest;
  image["platform"] = platform_text(r.image.platform);
  Json layers = Json::array();
  for (std::size_t i = 0; i < r.image.layers.size(); ++i) {
    layers.push_back({{"index", i}, {"diff_id", r.image.layers[i].diff_id}, {"digest", r.image.layers[i].digest},
                      {"size", r.image.layers[i].size}});
  }
  image["layers"] = std::move(layers);
  image["skipped"] = r.image.skipped;
  j["image"] = std::move(image);
  Json sets = Json::array();
  for (const auto& s : r.sets) sets.push_back({{"name", s.name}, {"class", s.set_class}, {"version", s.version}});
  j["sets"] = std::move(sets);
  Json scanners = Json::array();
  for (const auto& s : r.scanners) {
    scanners.push_back({{"name", s.name}, {"version", s.version}, {"signature_version", s.signature_version}});
  }
  j["scanners"] = std::move(scanners);
  j["thresholds"] = {{"sdbf_min_score", r.thresholds.sdbf_min_score},
                     {"tlsh_max_distance", r.thresholds.tlsh_max_distance},
                     {"ssdeep_min_score", r.thresholds.ssdeep_min_score},
                     {"max_size_ratio", r.thresholds.max_size_ratio},
                     {"similarity_min_bytes", r.thresholds.similarity_min_bytes},
                     {"rodata_sdbf_min_score", r.thresholds.rodata_sdbf_min_score},
                     {"rodata_tlsh_max_distance", r.thresholds.rodata_tlsh_max_distance},
                     {"rodata_ssdeep_min_score", r.thresholds.rodata_ssdeep_min_score},
                     {"rodata_max_size_ratio", r.thresholds.rodata_max_size_ratio}};
  j["summary"] = summary_object(r.summary);
  Json files = Json::array();
  for (const auto& f : r.files) {
    if (!o.all_files && f.verdict == Verdict::known) continue;
    Json fj;
    fj["path"] = "/" + f.path;
    fj["layer"] = layer_ref(r, f.layer);
    fj["hidden"] = f.hidden_by.has_value();
    fj["hidden_by"] = f.hidden_by ? layer_ref(r, *f.hidden_by) : Json(nullptr);
    fj["size"] = f.size;
    fj["sha256"] = f.sha256;
    fj["verdict"] = std::string(to_string(f.verdict));
    Json ev = Json::array();
    for (const auto& e : f.evidence) ev.push_back(evidence_json(e));
    fj["evidence"] = std::move(ev);
    files.push_back(std::move(fj));
  }
  j["files"] = std::move(files);
  Json warnings = Json::array();
  for (const auto& w : r.warnings) warnings.push_back(w.message);
  j["warnings"] = std::move(warnings);
  return j;
}

// dir: sources have no platform; print "" rather than "/".
std::string platform_text(const image::Platform& p) { return p.os.empty() ? "" : p.to_string(); }

bool flagged(Verdict v) { return v == Verdict::malicious || v == Verdict::suspicious || v == Verdict::modified; }

// RFC 3986 path: unreserved characters, sub-delims, ':', '@' and '/' stay;
// everything else is percent-encoded byte by byte.
std::string uri_path(const std::string& path) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : path) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
        std::string_view("-._~!$&'()*+,;=:@/").find(static_cast<char>(c)) != std::string_view::npos) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

std::string evidence_text(const Evidence& e) {
  std::string t = e.algorithm + " " + e.set + ": " + e.reference;
  if (e.score) t += " (" + std::string(e.algorithm == "tlsh" ? "distance " : "score ") + std::to_string(*e.score) + ")";
  return t;
}

}  // namespace

std::string summary_json(const ScanSummary& summary) { return summary_object(summary).dump(); }

std::string evidence_json(const std::vector<Evidence>& evidence) {
  Json ev = Json::array();
  for (const auto& e : evidence) ev.push_back(evidence_json(e));
  return ev.dump();
}

std::string write_json_report(const std::vector<ImageReport>& reports, const JsonReportOptions& options) {
  if (reports.size() == 1) return dump(report_json(reports[0], options));
  Json all = Json::array();
  for (const auto& r : reports) all.push_back(report_json(r, options));
  return dump(all);
}

std::string write_sarif_report(const std::vector<ImageReport>& reports, const SarifReportOptions& options) {
  struct Rule {
    Verdict verdict;
    const char* id;
    const char* name;
    const char* text;
    const char* level;
  };
  static constexpr Rule kRules[] = {
      {Verdict::malicious, "hashsieve.malicious", "MaliciousFile",
       "The file's bytes are a known-bad reference (exact hash).", "error"},
      {Verdict::suspicious, "hashsieve.suspicious", "SuspiciousFile",
       "The file is in a suspicious category or similar to a known-bad or suspicious reference.", "warning"},
      {Verdict::modified, "hashsieve.modified", "ModifiedFile",
       "The path holds known-good content in a reference set, but these bytes differ.", "warning"},
  };
  Json log;
  log["$schema"] = "https://json.schemastore.org/sarif-2.1.0.json";
  log["version"] = "2.1.0";
  Json runs = Json::array();
  for (const auto& r : reports) {
    Json rules = Json::array();
    for (const auto& rule : kRules) {
      rules.push_back({{"id", rule.id},
                       {"name", rule.name},
                       {"shortDescription", {{"text", rule.text}}},
                       {"defaultConfiguration", {{"level", rule.level}}}});
    }
    Json run;
    run["tool"] = {{"driver", {{"name", "hashsieve"}, {"version", options.tool_version}, {"rules", rules}}}};
    if (!r.scanners.empty()) {
      // The third-party scanners that ran are tool components of the run.
      Json extensions = Json::array();
      for (const auto& s : r.scanners) {
        extensions.push_back({{"name", s.name},
                              {"version", s.version},
                              {"properties", {{"signature_version", s.signature_version}}}});
      }
      run["tool"]["extensions"] = std::move(extensions);
    }
    run["properties"] = {{"image",
                          {{"reference", r.image.reference},
                           {"digest", r.image.manifest_digest},
                           {"platform", platform_text(r.image.platform)}}},
                         {"summary", summary_object(r.summary)}};
    Json results = Json::array();
    for (const auto& f : r.files) {
      if (!flagged(f.verdict)) continue;
      std::size_t rule_index = 0;
      while (kRules[rule_index].verdict != f.verdict) ++rule_index;
      const Rule& rule = kRules[rule_index];
      std::string text = "/" + f.path + " is " + std::string(to_string(f.verdict));
      if (!f.evidence.empty()) {
        // The most severe evidence explains the verdict.
        const Evidence* best = &f.evidence[0];
        for (const auto& e : f.evidence) {
          if (e.verdict > best->verdict) best = &e;
        }
        text += ": " + evidence_text(*best);
      }
      if (f.hidden_by) text += " (hidden by layer " + std::to_string(*f.hidden_by) + ")";
      Json ev = Json::array();
      for (const auto& e : f.evidence) ev.push_back(evidence_json(e));
      Json res;
      res["ruleId"] = rule.id;
      res["ruleIndex"] = rule_index;
      res["level"] = rule.level;
      res["message"] = {{"text", text}};
      res["locations"] = Json::array({{{"physicalLocation", {{"artifactLocation", {{"uri", uri_path(f.path)}}}}}}});
      res["partialFingerprints"] = {{"sha256", f.sha256}};
      res["properties"] = {{"layer", layer_ref(r, f.layer)},
                           {"hidden", f.hidden_by.has_value()},
                           {"hidden_by", f.hidden_by ? layer_ref(r, *f.hidden_by) : Json(nullptr)},
                           {"size", f.size},
                           {"evidence", std::move(ev)}};
      results.push_back(std::move(res));
    }
    run["results"] = std::move(results);
    runs.push_back(std::move(run));
  }
  log["runs"] = std::move(runs);
  return dump(log);
}

std::string write_table_report(const std::vector<ImageReport>& reports, const TableReportOptions& options) {
  std::string out;
  char line[512];
  for (const auto& r : reports) {
    const ScanSummary& s = r.summary;
    out += "image     " + r.image.reference;
    if (!r.image.platform.os.empty()) out += " (" + platform_text(r.image.platform) + ")";
    out += "\n";
    if (!r.image.manifest_digest.empty()) out += "digest    " + r.image.manifest_digest + "\n";
    out += "verdict   " + std::string(to_string(s.verdict)) + "\n";
    for (const auto& x : r.scanners) {
      out += "scanner   " + x.name + " " + x.version + " (" + x.signature_version + ")\n";
    }
    std::snprintf(line, sizeof line,
                  "files     %llu (%llu hidden): %llu known, %llu unknown, %llu modified, %llu suspicious, "
                  "%llu malicious; %.1f%% need no look\n",
                  static_cast<unsigned long long>(s.files), static_cast<unsigned long long>(s.hidden),
                  static_cast<unsigned long long>(s.count(Verdict::known)),
                  static_cast<unsigned long long>(s.count(Verdict::unknown)),
                  static_cast<unsigned long long>(s.count(Verdict::modified)),
                  static_cast<unsigned long long>(s.count(Verdict::suspicious)),
                  static_cast<unsigned long long>(s.count(Verdict::malicious)), 100.0 * s.reduction_ratio);
    out += line;
    for (const auto& w : r.warnings) out += "warning   " + w.message + "\n";
    std::vector<const FileFinding*> rows;
    for (const auto& f : r.files) {
      if (options.all_files || f.verdict != Verdict::known) rows.push_back(&f);
    }
    // Most severe first, then layer and path order as found.
    std::stable_sort(rows.begin(), rows.end(),
                     [](const FileFinding* a, const FileFinding* b) { return a->verdict > b->verdict; });
    if (!rows.empty()) {
      std::snprintf(line, sizeof line, "\n%-10s %-6s %-*s %s\n", "VERDICT", "LAYER",
                    static_cast<int>(options.max_path_width), "PATH", "EVIDENCE");
      out += line;
    }
    for (const FileFinding* f : rows) {
      std::string path = "/" + f->path;
      if (path.size() > options.max_path_width && options.max_path_width > 3) {
        path = "..." + path.substr(path.size() - (options.max_path_width - 3));
      }
      std::string layer = std::to_string(f->layer);
      if (f->hidden_by) {
        layer += 'h';  // appended in two steps: GCC 12 warns falsely (-Wrestrict) on "h" + string
        layer += std::to_string(*f->hidden_by);
      }
      std::string evidence;
      for (const auto& e : f->evidence) {
        if (!evidence.empty()) evidence += "; ";
        evidence += evidence_text(e);
      }
      out += std::string(to_string(f->verdict));
      out.append(std::max<std::size_t>(1, 11 - to_string(f->verdict).size()), ' ');
      out += layer;
      out.append(std::max<std::size_t>(1, 7 - layer.size()), ' ');
      out += path;
      out.append(std::max<std::size_t>(1, options.max_path_width + 1 - std::min(path.size(), options.max_path_width)), ' ');
      out += evidence;
      while (!out.empty() && out.back() == ' ') out.pop_back();
      out += "\n";
    }
    if (s.hidden > 0 && !rows.empty()) out += "(LAYER \"AhB\": added by layer A, hidden by layer B)\n";
    if (&r != &reports.back()) out += "\n";
  }
  return out;
}

}  // namespace hashsieve::scan
