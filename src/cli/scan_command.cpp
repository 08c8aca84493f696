// `hashsieve scan REF`: scan an image (registry, docker-archive:, oci:, dir:)
// against the installed reference sets and write a report.
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <optional>
#include <string>

#include "commands.h"
#include "common_options.h"
#include "hashsieve/image/source.h"
#include "hashsieve/refset/catalog.h"
#include "hashsieve/scan/report.h"
#include "hashsieve/scan/scanner.h"
#include "hashsieve/scanners/scanner_set.h"
#include "hashsieve/store/store.h"
#include "progress_bar.h"

namespace hashsieve::cli {
namespace {

constexpr const char* kScanUsage =
    "usage: hashsieve scan [options] REF\n"
    "\n"
    "REF: host[:port]/repo[:tag][@digest] (a registry), docker-archive:PATH,\n"
    "     oci:PATH[:tag] or dir:PATH (a root filesystem)\n"
    "\n"
    "  --data-dir DIR          reference sets and the layer cache (default $HASHSIEVE_DATA_DIR,\n"
    "                          else $XDG_DATA_HOME/hashsieve, else ~/.local/share/hashsieve)\n"
    "  --set NAME              match against this set (repeatable; default: every installed set)\n"
    "  --format F              table | json | sarif (default: table on a terminal, else json)\n"
    "  --output FILE           write the report to FILE instead of stdout\n"
    "  --all                   list known files too\n"
    "  --fail-on V             exit 4 when the image verdict is V or worse:\n"
    "                          malicious | suspicious | modified | unknown\n"
    "  --platform P            os/arch[/variant] (default linux/amd64)\n"
    "  --all-platforms         scan every platform of an index\n"
    "  --insecure              plain HTTP to the registry\n"
    "  --ca-file F             extra CA bundle for HTTPS\n"
    "  --username U --password P | --token T   registry credentials\n"
    "  --threads N             hashing threads per layer (default 2)\n"
    "  --layers-in-flight N    layers read at the same time (default 2)\n"
    "  --no-cache              neither read nor write cached layer facts\n"
    "  --sdbf-min-score N      SDBF similarity hit at score >= N (0..100)\n"
    "  --tlsh-max-distance N   TLSH similarity hit at distance <= N\n"
    "  --ssdeep-min-score N    ssdeep similarity hit at score >= N (0..100)\n"
    "  --max-layer-bytes N     limit on a layer's uncompressed bytes\n"
    "  --max-entries N         limit on a layer's entries\n"
    "  --max-ratio N           limit on a layer's compression ratio\n"
    "  --clamav-db PATH        also scan every non-known file with libclamav and this\n"
    "                          database file or directory (repeatable)\n"
    "  --clamd-socket PATH     also scan every non-known file with a running clamd\n"
    "  --yara-rules DIR        also scan every non-known file with the YARA rules in DIR\n"
    "\n"
    "Exit status: 0 scanned (verdict below --fail-on); 1 failure (including a\n"
    "third-party scanner that cannot be opened or became unavailable); 2 bad\n"
    "arguments; 4 scanned and the verdict reached --fail-on.\n";

int usage_error(const std::string& message) {
  std::fprintf(stderr, "hashsieve scan: %s\n%s", message.c_str(), kScanUsage);
  return kExitUsage;
}

int failure(const Error& e) {
  std::fprintf(stderr, "hashsieve scan: %s\n", e.message().c_str());
  return kExitFailure;
}

struct ScanArgs {
  std::string data_dir;
  std::vector<std::string> sets;
  std::string format;
  std::string output;
  bool all = false;
  std::optional<scan::Verdict> fail_on;
  image::SourceOptions source;
  scan::ScanOptions scan;
  scanners::ScannerConfig externals;
  std::string reference;
};

// Parses the arguments; returns an exit code on a usage error.
std::optional<int> parse(const std::vector<std::string>& args, ScanArgs& out) {
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&]() -> std::optional<std::string> {
      if (i + 1 >= args.size()) return std::nullopt;
      return args[++i];
    };
    auto number = [&](std::uint64_t max) -> std::optional<std::uint64_t> {
      auto v = value();
      if (!v) return std::nullopt;
      auto n = parse_uint(*v);
      if (!n || *n > max) return std::nullopt;
      return n;
    };
    if (a == "--help" || a == "-h") {
      std::fputs(kScanUsage, stdout);
      return kExitOk;
    } else if (a == "--all") {
      out.all = true;
    } else if (a == "--all-platforms") {
      out.source.platforms.all_platforms = true;
    } else if (a == "--insecure") {
      out.source.insecure = true;
    } else if (a == "--no-cache") {
      out.scan.use_cache = false;
    } else if (a == "--data-dir" || a == "--set" || a == "--format" || a == "--output" || a == "--fail-on" ||
               a == "--platform" || a == "--ca-file" || a == "--username" || a == "--password" || a == "--token" ||
               is_external_scanner_flag(a)) {
      auto v = value();
      if (!v || v->empty()) return usage_error(a + " needs a value");
      if (a == "--data-dir") out.data_dir = *v;
      if (a == "--set") out.sets.push_back(*v);
      if (a == "--format") {
        if (auto e = check_format(*v)) return usage_error(*e);
        out.format = *v;
      }
      if (a == "--output") out.output = *v;
      if (a == "--fail-on") {
        out.fail_on = parse_fail_on(*v);
        if (!out.fail_on) return usage_error(kFailOnError);
      }
      apply_external_scanner_flag(a, *v, out.externals);
      if (a == "--platform") {
        auto p = image::Platform::parse(*v);
        if (!p.ok()) return usage_error(p.error().message());
        out.source.platforms.platform = *p;
      }
      if (a == "--ca-file") out.source.ca_file = *v;
      if (a == "--username") out.source.credentials.username = *v;
      if (a == "--password") out.source.credentials.password = *v;
      if (a == "--token") out.source.credentials.bearer_token = *v;
    } else if (a == "--threads") {
      auto n = number(256);
      if (!n || *n == 0) return usage_error("--threads needs a number 1..256");
      out.scan.threads = static_cast<unsigned>(*n);
    } else if (a == "--layers-in-flight") {
      auto n = number(64);
      if (!n || *n == 0) return usage_error("--layers-in-flight needs a number 1..64");
      out.scan.layers_in_flight = static_cast<unsigned>(*n);
    } else if (a == "--sdbf-min-score" || a == "--ssdeep-min-score") {
      auto n = number(100);
      if (!n) return usage_error(a + " needs a number 0..100");
      (a == "--sdbf-min-score" ? out.scan.thresholds.sdbf_min_score : out.scan.thresholds.ssdeep_min_score) =
          static_cast<int>(*n);
    } else if (a == "--tlsh-max-distance") {
      auto n = number(100000);
      if (!n) return usage_error("--tlsh-max-distance needs a number >= 0");
      out.scan.thresholds.tlsh_max_distance = static_cast<int>(*n);
    } else if (a == "--max-layer-bytes" || a == "--max-entries" || a == "--max-ratio") {
      auto n = number(UINT64_MAX / 10);
      if (!n || *n == 0) return usage_error(a + " needs a positive number");
      if (a == "--max-layer-bytes") out.source.limits.max_layer_bytes = *n;
      if (a == "--max-entries") out.source.limits.max_entries = *n;
      if (a == "--max-ratio") out.source.limits.max_ratio = *n;
    } else if (!a.empty() && a[0] == '-') {
      return usage_error("unknown option '" + a + "'");
    } else if (out.reference.empty()) {
      out.reference = a;
    } else {
      return usage_error("scan takes one REF");
    }
  }
  if (out.reference.empty()) return usage_error("scan needs a REF");
  const auto& c = out.source.credentials;
  if (!c.bearer_token.empty() && (!c.username.empty() || !c.password.empty())) {
    return usage_error("--token excludes --username/--password");
  }
  if (c.username.empty() != c.password.empty()) return usage_error("--username and --password go together");
  if (out.source.platforms.platform && out.source.platforms.all_platforms) {
    return usage_error("--platform excludes --all-platforms");
  }
  if (auto e = check_external_scanner_flags(out.externals)) return usage_error(*e);
  return std::nullopt;
}

}  // namespace

int run_scan(const std::vector<std::string>& args) {
  ScanArgs a;
  if (auto code = parse(args, a)) return *code;
  if (a.data_dir.empty()) a.data_dir = refset::default_data_dir();
  if (a.format.empty()) a.format = (a.output.empty() && ::isatty(STDOUT_FILENO) == 1) ? "table" : "json";

  auto loaded_sets = load_named_sets(a.data_dir, a.sets);
  if (!loaded_sets.ok()) return failure(loaded_sets.error());
  const std::vector<refset::LoadedRefset> sets = std::move(loaded_sets).value();
  if (a.sets.empty()) {
    std::fprintf(stderr, "hashsieve scan: warning: no reference sets installed in %s; every file will be unknown\n",
                 a.data_dir.c_str());
  }

  // Opened before the image is touched: a missing rules directory or clamd
  // socket fails at once.
  auto externals = scanners::open_scanners(a.externals);
  if (!externals.ok()) return failure(externals.error());
  for (const auto& w : externals->warnings) std::fprintf(stderr, "hashsieve scan: warning: %s\n", w.message.c_str());
  a.scan.external_scanners = externals->pointers();

  // The cache is an optimisation: without a store the scan still runs.
  std::unique_ptr<store::Store> store;
  if (auto s = store::open_sqlite_store(a.data_dir); s.ok()) {
    store = std::move(s).value();
  } else {
    std::fprintf(stderr, "hashsieve scan: warning: no layer cache: %s\n", s.error().message().c_str());
  }

  const auto paths = scan::make_refset_path_index(sets);

  a.source.scratch_dir = a.data_dir + "/tmp";
  auto source = image::open_image_source(a.reference, a.source);
  if (!source.ok()) return failure(source.error());
  auto images = (*source)->resolve();
  if (!images.ok()) return failure(images.error());

  std::vector<scan::ImageReport> reports;
  for (const auto& img : *images) {
    ProgressBar bar("scanning " + img.platform.to_string());
    a.scan.progress = [&bar](const scan::ScanProgress& p) {
      // Content bytes against the compressed blob sizes is only a rough
      // fraction, so the bar shows files and layers and no percentage.
      bar.update(p.files, p.layer, p.layers);
    };
    scan::Scanner scanner(store.get(), sets, paths.get(), a.scan);
    auto report = scanner.scan(**source, img);
    bar.finish();
    if (!report.ok()) return failure(report.error());
    for (const auto& w : report->warnings) std::fprintf(stderr, "hashsieve scan: warning: %s\n", w.message.c_str());
    reports.push_back(std::move(report).value());
  }

  std::string text;
  if (a.format == "json") {
    scan::JsonReportOptions o;
    o.all_files = a.all;
    o.tool_version = HASHSIEVE_VERSION;
    o.scanned_at = utc_now();
    text = scan::write_json_report(reports, o);
  } else if (a.format == "sarif") {
    text = scan::write_sarif_report(reports, {HASHSIEVE_VERSION});
  } else {
    scan::TableReportOptions o;
    o.all_files = a.all;
    text = scan::write_table_report(reports, o);
  }
  if (a.output.empty()) {
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
  } else {
    std::ofstream out(a.output, std::ios::binary | std::ios::trunc);
    out << text;
    out.close();
    if (!out) return failure(Error(ErrorCode::io_error, "writing " + a.output));
  }

  const std::string now = utc_now();
  scan::Verdict worst = scan::Verdict::known;
  for (const auto& r : reports) {
    worst = std::max(worst, r.summary.verdict);
    if (store) {
      store::ScanRecord rec;
      rec.reference = r.image.reference;
      rec.image_digest = r.image.manifest_digest;
      rec.platform = r.image.platform.to_string();
      rec.scanned_at = now;
      rec.verdict = std::string(scan::to_string(r.summary.verdict));
      rec.summary_json = scan::summary_json(r.summary);
      if (auto id = store->put_scan_result(rec); !id.ok()) {
        std::fprintf(stderr, "hashsieve scan: warning: scan result not stored: %s\n", id.error().message().c_str());
      }
    }
  }
  if (a.fail_on && worst >= *a.fail_on) return kExitPolicy;
  return kExitOk;
}

}  // namespace hashsieve::cli
