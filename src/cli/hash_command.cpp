// `hashsieve hash FILES...`: every digest of each file as one JSON object per
// line (JSON Lines), in argument order whatever the thread count.
#include <nlohmann/json.hpp>

#include <cstdio>
#include <string>
#include <thread>

#include "commands.h"
#include "hashsieve/digest/file_digests.h"
#include "input_files.h"
#include "ordered_parallel.h"

namespace hashsieve::cli {
namespace {

constexpr const char* kHashUsage =
    "usage: hashsieve hash [-r] [-p N] FILES...\n"
    "\n"
    "Prints every digest of each file as one JSON object per line:\n"
    "  {\"path\", \"size\", \"md5\", \"sha1\", \"sha256\", \"crc32\",\n"
    "   \"sdbf\": [digest lines], \"tlsh\", \"ssdeep\"}\n"
    "Digests that do not exist for an input are null (TLSH needs >= 256 bytes\n"
    "with enough variation; SDBF needs >= 512 bytes and gives [] below that).\n"
    "\n"
    "  -r        hash the files under directories (sorted order)\n"
    "  -p N      worker threads (default: all cores); output order never changes\n"
    "\n"
    "Exit status: 0 success; 1 some input could not be read; 2 bad arguments.\n";

template <typename T>
nlohmann::json hex_or_null(const std::optional<T>& v) {
  return v ? nlohmann::json(v->hex()) : nlohmann::json(nullptr);
}

std::string to_json_line(const std::string& path, const digest::FileDigests& d) {
  nlohmann::ordered_json j;
  j["path"] = path;
  j["size"] = d.size;
  j["md5"] = hex_or_null(d.crypto.md5);
  j["sha1"] = hex_or_null(d.crypto.sha1);
  j["sha256"] = hex_or_null(d.crypto.sha256);
  j["crc32"] = hex_or_null(d.crypto.crc32);
  auto sdbf = nlohmann::ordered_json::array();
  for (const auto& s : d.sdbf) {
    std::string line = digest::format_sdbf(s);
    line.pop_back();  // the trailing newline
    sdbf.push_back(std::move(line));
  }
  j["sdbf"] = std::move(sdbf);
  j["tlsh"] = d.tlsh ? nlohmann::ordered_json(d.tlsh->to_string()) : nlohmann::ordered_json(nullptr);
  j["ssdeep"] = d.ssdeep ? nlohmann::ordered_json(*d.ssdeep) : nlohmann::ordered_json(nullptr);
  // Paths in images are not always UTF-8; replace invalid bytes rather than fail.
  return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
}

struct HashOutcome {
  std::string line;
  std::string error;
};

}  // namespace

int run_hash(const std::vector<std::string>& args) {
  bool recursive = false;
  unsigned threads = std::thread::hardware_concurrency();
  if (threads == 0) threads = 1;
  std::vector<std::string> paths;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "-h" || a == "--help") {
      std::fputs(kHashUsage, stdout);
      return kExitOk;
    }
    if (a == "-r") {
      recursive = true;
    } else if (a == "-p") {
      int n = i + 1 < args.size() ? std::atoi(args[++i].c_str()) : 0;
      if (n < 1 || n > 1024) {
        std::fprintf(stderr, "hashsieve hash: -p needs a thread count 1..1024\n%s", kHashUsage);
        return kExitUsage;
      }
      threads = static_cast<unsigned>(n);
    } else if (!a.empty() && a[0] == '-') {
      std::fprintf(stderr, "hashsieve hash: unknown option '%s'\n%s", a.c_str(), kHashUsage);
      return kExitUsage;
    } else {
      paths.push_back(a);
    }
  }
  if (paths.empty()) {
    std::fprintf(stderr, "hashsieve hash: no input files\n%s", kHashUsage);
    return kExitUsage;
  }
  int status = kExitOk;
  ExpandedInputs inputs = expand_inputs(paths, recursive);
  for (const auto& p : inputs.problems) {
    std::fprintf(stderr, "hashsieve hash: %s: %s\n", p.path.c_str(), p.message.c_str());
    status = kExitFailure;
  }
  const digest::DigestSelection selection;
  ordered_parallel<HashOutcome>(
      inputs.files.size(), threads,
      [&](std::size_t i) {
        HashOutcome out;
        auto d = digest::digest_file(inputs.files[i].path, selection);
        if (d.ok()) out.line = to_json_line(inputs.files[i].path, *d);
        else out.error = d.error().message();
        return out;
      },
      [&](HashOutcome o) {
        if (!o.error.empty()) {
          std::fprintf(stderr, "hashsieve hash: %s\n", o.error.c_str());
          status = kExitFailure;
        }
        std::fwrite(o.line.data(), 1, o.line.size(), stdout);
      });
  if (std::fflush(stdout) != 0) {
    std::fprintf(stderr, "hashsieve hash: writing stdout failed\n");
    return kExitFailure;
  }
  return status;
}

}  // namespace hashsieve::cli
