// `hashsieve refset import|list|show|remove|lookup`: manage reference sets.
#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>
#include <string>

#include "commands.h"
#include "hashsieve/core/file.h"
#include "hashsieve/digest/crypto.h"
#include "hashsieve/digest/file_digests.h"
#include "hashsieve/refset/builder.h"
#include "hashsieve/refset/catalog.h"
#include "hashsieve/refset/importer.h"
#include "progress_bar.h"

namespace hashsieve::cli {
namespace {

using refset::RefsetCatalog;

constexpr const char* kRefsetUsage =
    "usage: hashsieve refset [--data-dir DIR] <subcommand> ...\n"
    "\n"
    "  import --name NAME --format FMT [--class CLASS] [--force] PATH\n"
    "         FMT: nsrl-v3 (RDS SQLite), nsrl-v2 (NSRLFile.txt; NSRLProd.txt beside it),\n"
    "              clamav (.hdb/.hsb), virusshare (.md5 lists), hashlist (sha*sum output),\n"
    "              sdbf (sdhash digest files: a similarity set)\n"
    "         CLASS: known | malicious | suspicious (default: known for NSRL,\n"
    "              malicious for clamav/virusshare; required for hashlist)\n"
    "         An unchanged source (same fingerprint) is not imported again.\n"
    "  build --name NAME --class CLASS [--threads N] [--force] PATH...\n"
    "         hash files, directories (files named /<relative path>) and .deb packages\n"
    "         (files named as installed) into a set with every digest, path and package\n"
    "  list                       the installed sets, one JSON object per line\n"
    "  show NAME                  one set's manifest\n"
    "  remove NAME                delete a set\n"
    "  lookup [--set NAME] [--min-score N] [--max-tlsh D] [--min-ssdeep S] HASH|FILE...\n"
    "                             every hit, one JSON object per line; a FILE is hashed\n"
    "                             first (MD5, SHA-1, SHA-256, SDBF, TLSH, ssdeep) and its\n"
    "                             similarity hits are included: SDBF scores >= N\n"
    "                             (default 21), TLSH distances <= D (default 60),\n"
    "                             ssdeep scores >= S (only when given). Sets made by\n"
    "                             `build` answer from their similarity index for\n"
    "                             N >= 21 and D <= 60 and scan every reference otherwise\n"
    "\n"
    "The data directory defaults to $HASHSIEVE_DATA_DIR, else ~/.local/share/hashsieve.\n"
    "Exit status: 0 success; 1 failure (the sets are left as they were); 2 bad arguments.\n";

void report_outcome(const refset::ImportOutcome& outcome);

int usage_error(const std::string& message) {
  std::fprintf(stderr, "hashsieve refset: %s\n%s", message.c_str(), kRefsetUsage);
  return kExitUsage;
}

int failure(const Error& e) {
  std::fprintf(stderr, "hashsieve refset: %s\n", e.message().c_str());
  return kExitFailure;
}

void print_json(const nlohmann::ordered_json& j) {
  const std::string line = j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
  std::fwrite(line.data(), 1, line.size(), stdout);
}

int run_import(const RefsetCatalog& catalog, const std::vector<std::string>& args) {
  refset::ImportRequest request;
  std::optional<std::string> format;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&]() -> std::optional<std::string> {
      if (i + 1 >= args.size()) return std::nullopt;
      return args[++i];
    };
    if (a == "--name" || a == "--format" || a == "--class" || a == "--memory-mb") {
      auto v = value();
      if (!v) return usage_error(a + " needs a value");
      if (a == "--name") request.name = *v;
      if (a == "--format") format = *v;
      if (a == "--class") {
        auto c = refset::parse_reference_class(*v);
        if (!c.ok()) return usage_error(c.error().message());
        request.set_class = *c;
      }
      if (a == "--memory-mb") request.memory_budget = std::stoull(*v) << 20;
    } else if (a == "--force") {
      request.force = true;
    } else if (!a.empty() && a[0] == '-') {
      return usage_error("unknown option '" + a + "'");
    } else if (request.path.empty()) {
      request.path = a;
    } else {
      return usage_error("import takes one PATH");
    }
  }
  if (request.name.empty() || !format || request.path.empty()) return usage_error("import needs --name, --format and PATH");
  if (*format == "sdbf") {
    request.sdbf_digests = true;
  } else {
    auto parsed_format = refset::parse_source_format(*format);
    if (!parsed_format.ok()) return usage_error(parsed_format.error().message());
    request.format = *parsed_format;
  }

  ProgressBar bar("importing " + request.name);
  request.source_options.progress = [&bar](const refset::SourceProgress& p) {
    if (p.bytes_total) bar.update(p.rows_done, p.bytes_done, p.bytes_total);
    else bar.update(p.rows_done, p.rows_done, p.rows_estimate);
  };
  auto outcome = refset::import_refset(catalog, request);
  bar.finish();
  if (!outcome.ok()) return failure(outcome.error());
  report_outcome(*outcome);
  return kExitOk;
}

void report_outcome(const refset::ImportOutcome& outcome) {
  for (const auto& w : outcome.warnings) std::fprintf(stderr, "warning: %s\n", w.message.c_str());
  const auto& m = outcome.manifest;
  if (m.warnings > outcome.warnings.size()) {
    std::fprintf(stderr, "warning: ... %llu warnings in all\n", static_cast<unsigned long long>(m.warnings));
  }
  if (outcome.unchanged) {
    std::printf("%s: unchanged (fingerprint %s), nothing imported\n", m.name.c_str(), m.fingerprint.substr(0, 16).c_str());
  } else {
    std::printf("%s: version %u, %llu rows, %llu MD5 / %llu SHA-1 / %llu SHA-256 distinct, %llu SDBF digests, "
                "%llu warnings\n",
                m.name.c_str(), m.version, static_cast<unsigned long long>(m.rows),
                static_cast<unsigned long long>(m.md5_count), static_cast<unsigned long long>(m.sha1_count),
                static_cast<unsigned long long>(m.sha256_count), static_cast<unsigned long long>(m.sdbf_count),
                static_cast<unsigned long long>(m.warnings));
  }
}

int run_build(const RefsetCatalog& catalog, const std::vector<std::string>& args) {
  refset::BuildRequest request;
  bool have_class = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--name" || a == "--class" || a == "--threads") {
      if (i + 1 >= args.size()) return usage_error(a + " needs a value");
      const std::string v = args[++i];
      if (a == "--name") request.name = v;
      if (a == "--threads") request.threads = static_cast<unsigned>(std::max(1, std::atoi(v.c_str())));
      if (a == "--class") {
        auto c = refset::parse_reference_class(v);
        if (!c.ok()) return usage_error(c.error().message());
        request.set_class = *c;
        have_class = true;
      }
    } else if (a == "--force") {
      request.force = true;
    } else if (!a.empty() && a[0] == '-') {
      return usage_error("unknown option '" + a + "'");
    } else {
      request.paths.push_back(a);
    }
  }
  if (request.name.empty() || !have_class || request.paths.empty()) {
    return usage_error("build needs --name, --class and at least one PATH");
  }
  auto outcome = refset::build_refset(catalog, request);
  if (!outcome.ok()) return failure(outcome.error());
  report_outcome(*outcome);
  return kExitOk;
}

nlohmann::ordered_json manifest_json(const refset::RefsetManifest& m) {
  return nlohmann::ordered_json::parse(refset::manifest_to_json(m));
}

// Lookups of one query (a hash, or every hash of a file) in the chosen sets.
int run_lookup(const RefsetCatalog& catalog, const std::vector<std::string>& args) {
  std::vector<std::string> set_names;
  std::vector<std::string> queries;
  refset::SimilarityThresholds thresholds;
  thresholds.sdbf_min_score = refset::kSdbfIndexedMinScore;
  thresholds.tlsh_max_distance = refset::kTlshIndexedMaxDistance;
  thresholds.ssdeep_min_score = -1;  // off unless asked for
  int& min_score = thresholds.sdbf_min_score;
  int& max_tlsh = thresholds.tlsh_max_distance;
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--min-ssdeep") {
      if (i + 1 >= args.size()) return usage_error("--min-ssdeep needs a number");
      thresholds.ssdeep_min_score = std::atoi(args[++i].c_str());
      if (thresholds.ssdeep_min_score < 0 || thresholds.ssdeep_min_score > 100) {
        return usage_error("--min-ssdeep must be 0..100");
      }
    } else if (args[i] == "--max-tlsh") {
      if (i + 1 >= args.size()) return usage_error("--max-tlsh needs a number");
      max_tlsh = std::atoi(args[++i].c_str());
      if (max_tlsh < 0) return usage_error("--max-tlsh must be >= 0");
    } else if (args[i] == "--min-score") {
      if (i + 1 >= args.size()) return usage_error("--min-score needs a number");
      min_score = std::atoi(args[++i].c_str());
      if (min_score < 0 || min_score > 100) return usage_error("--min-score must be 0..100");
    } else if (args[i] == "--set") {
      if (i + 1 >= args.size()) return usage_error("--set needs a name");
      set_names.push_back(args[++i]);
    } else if (!args[i].empty() && args[i][0] == '-') {
      return usage_error("unknown option '" + args[i] + "'");
    } else {
      queries.push_back(args[i]);
    }
  }
  if (queries.empty()) return usage_error("lookup needs a HASH or FILE");
  if (set_names.empty()) {
    auto all = catalog.list();
    if (!all.ok()) return failure(all.error());
    for (const auto& m : *all) set_names.push_back(m.name);
  }
  std::vector<refset::LoadedRefset> sets;
  for (const auto& name : set_names) {
    auto loaded = catalog.load(name);
    if (!loaded.ok()) return failure(loaded.error());
    sets.push_back(std::move(loaded).value());
  }
  int status = kExitOk;
  for (const auto& query : queries) {
    std::optional<digest::Md5Digest> md5;
    std::optional<digest::Sha1Digest> sha1;
    std::optional<digest::Sha256Digest> sha256;
    refset::SimilarityQuery similarity;
    std::error_code ec;
    if (std::filesystem::exists(query, ec)) {
      digest::DigestSelection selection;
      selection.crypto = {digest::CryptoAlgorithm::md5, digest::CryptoAlgorithm::sha1,
                          digest::CryptoAlgorithm::sha256};
      selection.ssdeep = thresholds.ssdeep_min_score >= 0;
      auto file = MappedFile::open(query);
      auto hashed = file.ok() ? digest::compute_digests(query, file->bytes(), selection)
                              : Result<digest::FileDigests>(file.error());
      if (!hashed.ok()) {
        std::fprintf(stderr, "hashsieve refset: %s\n", hashed.error().message().c_str());
        status = kExitFailure;
        continue;
      }
      md5 = hashed->crypto.md5;
      sha1 = hashed->crypto.sha1;
      sha256 = hashed->crypto.sha256;
      similarity.sdbf = std::move(hashed->sdbf);
      similarity.tlsh = hashed->tlsh;
      similarity.ssdeep = std::move(hashed->ssdeep);
      // The content keys let sets with a similarity index skip the scan.
      similarity.content_keys = refset::sample_content_keys(file->bytes());
    } else if (query.size() == 32) {
      if (auto d = digest::Md5Digest::parse_hex(query); d.ok()) md5 = *d;
    } else if (query.size() == 40) {
      if (auto d = digest::Sha1Digest::parse_hex(query); d.ok()) sha1 = *d;
    } else if (query.size() == 64) {
      if (auto d = digest::Sha256Digest::parse_hex(query); d.ok()) sha256 = *d;
    }
    if (!md5 && !sha1 && !sha256) {
      std::fprintf(stderr, "hashsieve refset: '%s' is neither a file nor an MD5/SHA-1/SHA-256 hex digest\n",
                   query.c_str());
      status = kExitFailure;
      continue;
    }
    for (const auto& set : sets) {
      auto emit = [&](const Result<std::optional<refset::RefsetHit>>& hit) {
        if (!hit.ok()) {
          std::fprintf(stderr, "hashsieve refset: %s\n", hit.error().message().c_str());
          status = kExitFailure;
          return;
        }
        if (!*hit) return;
        const refset::RefsetHit& h = **hit;
        nlohmann::ordered_json j;
        j["query"] = query;
        j["set"] = h.set;
        j["class"] = std::string(refset::to_string(h.hit_class));
        j["digest_type"] = h.digest_type;
        j["product"] = h.label;
        j["version"] = h.version;
        j["categories"] = h.categories;
        print_json(j);
      };
      if (md5) emit(set.lookup(*md5));
      if (sha1) emit(set.lookup(*sha1));
      if (sha256) emit(set.lookup(*sha256));
      const std::vector<refset::SimilarityHit> similar = set.similar(similarity, thresholds);
      {
        for (const auto& h : similar) {
          nlohmann::ordered_json j;
          j["query"] = query;
          j["set"] = h.set;
          j["class"] = std::string(refset::to_string(h.hit_class));
          j["algorithm"] = h.algorithm;
          j["reference"] = h.reference;
          // SDBF gives a similarity score, TLSH a distance: name them apart.
          j[h.algorithm == "tlsh" ? "distance" : "score"] = h.score;
          print_json(j);
        }
      }
    }
  }
  std::fflush(stdout);
  return status;
}

}  // namespace

int run_refset(const std::vector<std::string>& all_args) {
  std::vector<std::string> args = all_args;
  std::string data_dir = refset::default_data_dir();
  if (args.size() >= 2 && args[0] == "--data-dir") {
    data_dir = args[1];
    args.erase(args.begin(), args.begin() + 2);
  }
  if (args.empty()) return usage_error("missing subcommand");
  const std::string sub = args[0];
  args.erase(args.begin());
  if (sub == "-h" || sub == "--help") {
    std::fputs(kRefsetUsage, stdout);
    return kExitOk;
  }
  auto catalog = RefsetCatalog::open(data_dir);
  if (!catalog.ok()) return failure(catalog.error());
  if (sub == "import") return run_import(*catalog, args);
  if (sub == "build") return run_build(*catalog, args);
  if (sub == "lookup") return run_lookup(*catalog, args);
  if (sub == "list") {
    auto sets = catalog->list();
    if (!sets.ok()) return failure(sets.error());
    for (const auto& m : *sets) print_json(manifest_json(m));
    return kExitOk;
  }
  if (sub == "show" || sub == "remove") {
    if (args.size() != 1) return usage_error(sub + " takes one NAME");
    if (sub == "remove") {
      auto st = catalog->remove(args[0]);
      return st.ok() ? kExitOk : failure(st.error());
    }
    auto m = catalog->manifest(args[0]);
    if (!m.ok()) return failure(m.error());
    std::fputs(refset::manifest_to_json(*m).c_str(), stdout);
    return kExitOk;
  }
  return usage_error("unknown subcommand '" + sub + "'");
}

}  // namespace hashsieve::cli
