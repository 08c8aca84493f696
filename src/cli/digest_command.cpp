#include "digest_command.h"

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <fstream>
#include <memory>
#include <optional>
#include <thread>

#include "commands.h"
#include "hashsieve/core/file.h"
#include "hashsieve/digest/sdbf.h"
#include "hashsieve/digest/sdbf_compare.h"
#include "hashsieve/digest/sdbf_generator.h"
#include "hashsieve/digest/sdbf_policy.h"
#include "input_files.h"
#include "ordered_parallel.h"

namespace hashsieve::cli {
namespace {

constexpr const char* kDigestUsage =
    "usage: hashsieve digest [options] FILES...\n"
    "       hashsieve digest -c DIGESTS [DIGESTS2] [options]\n"
    "       hashsieve digest -g [options] FILES...\n"
    "\n"
    "Makes SDBF similarity digests byte-identical to sdhash 3.4, or compares them.\n"
    "\n"
    "  -r, --deep           hash the files under directories (sorted order)\n"
    "  -f, --target-list F  read more input paths from F, one per line\n"
    "  -b, --block-size N   block mode with N KiB blocks (1..16); 0 = stream mode for all\n"
    "                       (default: stream below 16 MiB, 16 KiB blocks above)\n"
    "  -z, --segment-size N split block-mode inputs into N MiB segments (default 128)\n"
    "  -c, --compare F [F2] compare all pairs in F, or every digest of F with every one of F2\n"
    "  -g, --gen-compare    hash the inputs and print all-pairs comparisons of them\n"
    "  -t, --threshold T    print comparisons scoring >= T (default 1; -1 shows all)\n"
    "  -p, --threads N      worker threads (default: all cores); output order never changes\n"
    "  -o, --output NAME    write to NAME.sdbf (or NAME.compare) instead of stdout\n"
    "      --separator S    pipe (default), csv or tab\n"
    "      --hash-name N    name for stdin digests (default 'stdin')\n"
    "      --verbose        warn about inputs too small to digest (< 512 bytes)\n"
    "  -                    hash standard input (block mode, names <hash-name>.NNNNM)\n"
    "\n"
    "Exit status: 0 success; 1 some input could not be read or parsed (the rest\n"
    "was processed); 2 bad arguments.\n";

Result<int> parse_int(const std::string& flag, const std::string& text) {
  int value = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc() || ptr != end) {
    return Error(ErrorCode::invalid_argument, flag + ": '" + text + "' is not an integer");
  }
  return value;
}

// Splits "--name=value" and "-bVALUE" forms; returns the flag and, if attached, its value.
std::pair<std::string, std::optional<std::string>> split_flag(const std::string& arg) {
  if (arg.rfind("--", 0) == 0) {
    const auto eq = arg.find('=');
    if (eq != std::string::npos) return {arg.substr(0, eq), arg.substr(eq + 1)};
    return {arg, std::nullopt};
  }
  if (arg.size() > 2) return {arg.substr(0, 2), arg.substr(2)};
  return {arg, std::nullopt};
}

class OutputSink {
 public:
  static Result<OutputSink> open(const std::optional<std::string>& base, const char* suffix) {
    OutputSink sink;
    if (!base) {
      sink.file_ = stdout;
      return sink;
    }
    sink.path_ = *base + suffix;
    sink.file_ = std::fopen(sink.path_.c_str(), "wb");
    if (sink.file_ == nullptr) return errno_error(errno, "cannot write " + sink.path_);
    sink.owned_ = true;
    return sink;
  }
  OutputSink(OutputSink&& o) noexcept : file_(o.file_), owned_(o.owned_), path_(std::move(o.path_)) {
    o.file_ = nullptr;
    o.owned_ = false;
  }
  OutputSink& operator=(OutputSink&&) = delete;
  ~OutputSink() {
    if (owned_ && file_ != nullptr) std::fclose(file_);
  }
  void write(const std::string& text) {
    if (!text.empty()) std::fwrite(text.data(), 1, text.size(), file_);
  }
  // Flushes and reports a failed write (disk full, closed pipe).
  Status finish() {
    if (std::fflush(file_) != 0 || std::ferror(file_)) {
      return Error(ErrorCode::io_error, "writing " + (path_.empty() ? std::string("stdout") : path_) + " failed");
    }
    return {};
  }

 private:
  OutputSink() = default;
  std::FILE* file_ = nullptr;
  bool owned_ = false;
  std::string path_;
};

void report(const std::string& path, const std::string& message) {
  std::fprintf(stderr, "hashsieve digest: %s: %s\n", path.c_str(), message.c_str());
}

// Everything one input produced: digests (kept only for -g) and their text.
struct HashedInput {
  std::vector<digest::Sdbf> digests;
  std::string text;
  std::string error;
};

HashedInput hash_one(const InputFile& input, const DigestOptions& opt, unsigned threads, bool keep) {
  HashedInput out;
  auto file = MappedFile::open(input.path);
  if (!file.ok()) {
    out.error = file.error().message();
    return out;
  }
  out.digests = digest::make_sdbf_digests(input.path, file->bytes(), opt.policy, threads);
  for (const auto& d : out.digests) out.text += digest::format_sdbf(d);
  if (!keep) out.digests.clear();
  return out;
}

// Rows of an all-pairs or two-set comparison, computed in parallel and
// printed in the reference's loop order. Digests are prepared once (filters
// rearranged for the SIMD kernel), not once per pair.
void compare_sets(const std::vector<digest::Sdbf>& left, const std::vector<digest::Sdbf>* right,
                  const DigestOptions& opt, OutputSink& sink) {
  // One arena per set (digest::PreparedSdbfSet): rows are scored with
  // sdbf_score_row, the fastest path for sets of mostly small digests.
  const digest::PreparedSdbfSet prepared_left(left);
  std::optional<digest::PreparedSdbfSet> prepared_right;
  if (right != nullptr) prepared_right.emplace(*right);
  const digest::PreparedSdbfSet& targets = right != nullptr ? *prepared_right : prepared_left;
  ordered_parallel<std::string>(
      prepared_left.size(), opt.threads,
      [&](std::size_t i) {
        std::string lines;
        const std::size_t first = right != nullptr ? 0 : i + 1;
        thread_local std::vector<int> scores;
        scores.resize(targets.size() - std::min(first, targets.size()));
        digest::sdbf_score_row(prepared_left, i, targets, first, scores);
        for (std::size_t k = 0; k < scores.size(); ++k) {
          if (scores[k] >= opt.threshold) {
            lines += format_compare_line(left[i].name(), targets.digest(first + k).name(), scores[k], opt.separator);
          }
        }
        return lines;
      },
      [&](std::string lines) { sink.write(lines); });
}

Result<std::vector<digest::Sdbf>> load_digest_file(const std::string& path) {
  auto file = MappedFile::open(path);
  if (!file.ok()) return std::move(file).error();
  const auto bytes = file->bytes();
  auto parsed = digest::parse_sdbf_lines({reinterpret_cast<const char*>(bytes.data()), bytes.size()});
  if (!parsed.ok()) return std::move(parsed).error().with_context(path);
  if (parsed->empty()) return Error(ErrorCode::parse_error, path + ": no digests in file");
  return parsed;
}

int run_compare(const DigestOptions& opt) {
  auto left = load_digest_file(opt.compare_files[0]);
  if (!left.ok()) {
    std::fprintf(stderr, "hashsieve digest: %s\n", left.error().message().c_str());
    return kExitFailure;
  }
  std::optional<std::vector<digest::Sdbf>> right;
  if (opt.compare_files.size() == 2) {
    auto loaded = load_digest_file(opt.compare_files[1]);
    if (!loaded.ok()) {
      std::fprintf(stderr, "hashsieve digest: %s\n", loaded.error().message().c_str());
      return kExitFailure;
    }
    right = std::move(loaded).value();
  }
  auto sink = OutputSink::open(opt.output_base, ".compare");
  if (!sink.ok()) {
    std::fprintf(stderr, "hashsieve digest: %s\n", sink.error().message().c_str());
    return kExitFailure;
  }
  compare_sets(*left, right ? &*right : nullptr, opt, *sink);
  if (auto st = sink->finish(); !st.ok()) {
    std::fprintf(stderr, "hashsieve digest: %s\n", st.error().message().c_str());
    return kExitFailure;
  }
  return kExitOk;
}

int run_stdin(const DigestOptions& opt, OutputSink& sink) {
  auto data = read_all_fd(STDIN_FILENO);
  if (!data.ok()) {
    report("-", data.error().message());
    return kExitFailure;
  }
  if (data->empty()) report("-", "warning: empty input, no digest");
  // stdin is always block mode (16 KiB unless -b N), and its segments are
  // always suffixed, as in the reference.
  digest::SdbfPolicy policy = opt.policy;
  if (!policy.block_kib || *policy.block_kib <= 0) policy.block_kib = 16;
  const auto plan = digest::plan_sdbf(data->size(), policy);
  const std::span<const std::uint8_t> bytes(reinterpret_cast<const std::uint8_t*>(data->data()), data->size());
  for (const auto& seg : digest::segment_input(opt.stdin_name, bytes.size(), policy.segment_bytes, true)) {
    if (auto d = digest::make_block_sdbf(seg.name, bytes.subspan(seg.offset, seg.length), plan.block_size,
                                         opt.threads)) {
      sink.write(digest::format_sdbf(*d));
    }
  }
  return kExitOk;
}

int run_hash_inputs(const DigestOptions& opt) {
  auto sink = OutputSink::open(opt.output_base, opt.generate_compare ? ".compare" : ".sdbf");
  if (!sink.ok()) {
    std::fprintf(stderr, "hashsieve digest: %s\n", sink.error().message().c_str());
    return kExitFailure;
  }
  int status = kExitOk;
  if (opt.inputs.size() == 1 && opt.inputs[0] == "-" && !opt.generate_compare) {
    status = run_stdin(opt, *sink);
  } else {
    std::vector<std::string> paths = opt.inputs;
    for (const auto& list : opt.list_files) {
      std::ifstream in(list);
      if (!in) {
        report(list, "cannot read list file");
        status = kExitFailure;
        continue;
      }
      for (std::string line; std::getline(in, line);) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (!line.empty()) paths.push_back(line);
      }
    }
    ExpandedInputs expanded = expand_inputs(paths, opt.recursive);
    for (const auto& p : expanded.problems) report(p.path, p.message);
    if (!expanded.problems.empty()) status = kExitFailure;

    // The reference hashes every small file first, then the large ones.
    std::vector<InputFile> small, large;
    for (auto& f : expanded.files) {
      (f.size >= digest::kSdbfLargeFileBytes ? large : small).push_back(std::move(f));
    }
    std::vector<digest::Sdbf> generated;  // -g only
    auto consume = [&](HashedInput h, const InputFile& input) {
      if (!h.error.empty()) {
        report(input.path, h.error);
        status = kExitFailure;
        return;
      }
      // sdhash skips inputs under 512 bytes silently; an empty one is always
      // worth a word (stdout is unaffected either way).
      if (h.text.empty() && input.size == 0) {
        report(input.path, "warning: empty file, no digest");
      } else if (opt.verbose && h.text.empty() && input.size < digest::kSdbfMinInputBytes) {
        report(input.path, "warning: too small to digest (< 512 bytes), skipped");
      }
      if (opt.generate_compare) {
        for (auto& d : h.digests) generated.push_back(std::move(d));
      } else {
        sink->write(h.text);
      }
    };
    std::size_t next_small = 0;
    ordered_parallel<HashedInput>(
        small.size(), opt.threads,
        [&](std::size_t i) { return hash_one(small[i], opt, 1, opt.generate_compare); },
        [&](HashedInput h) { consume(std::move(h), small[next_small++]); });
    // Large inputs go one at a time, with their blocks split across threads.
    for (const auto& f : large) consume(hash_one(f, opt, opt.threads, opt.generate_compare), f);

    if (opt.generate_compare) compare_sets(generated, nullptr, opt, *sink);
  }
  if (auto st = sink->finish(); !st.ok()) {
    std::fprintf(stderr, "hashsieve digest: %s\n", st.error().message().c_str());
    return kExitFailure;
  }
  return status;
}

}  // namespace

std::string format_compare_line(const std::string& a, const std::string& b, int score, char separator) {
  char digits[16];
  if (score < 0) {
    std::snprintf(digits, sizeof digits, "%d", score);
  } else {
    std::snprintf(digits, sizeof digits, "%03d", score);
  }
  std::string line;
  line.reserve(a.size() + b.size() + 8);
  line.append(a).push_back(separator);
  line.append(b).push_back(separator);
  line.append(digits).push_back('\n');
  return line;
}

Result<DigestOptions> parse_digest_args(const std::vector<std::string>& args) {
  DigestOptions opt;
  const unsigned cores = std::thread::hardware_concurrency();
  opt.threads = cores == 0 ? 1 : cores;
  bool compare_mode = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "-" || arg.empty() || arg[0] != '-') {
      (compare_mode && opt.compare_files.size() < 2 && opt.inputs.empty() ? opt.compare_files : opt.inputs)
          .push_back(arg);
      continue;
    }
    compare_mode = false;
    // Plain variables, not a structured binding: lambdas below capture them.
    const auto split = split_flag(arg);
    const std::string flag = split.first;
    const std::optional<std::string> attached = split.second;
    auto value = [&]() -> Result<std::string> {
      if (attached) return *attached;
      if (i + 1 >= args.size()) return Error(ErrorCode::invalid_argument, flag + " needs a value");
      return args[++i];
    };
    auto int_value = [&]() -> Result<int> {
      auto v = value();
      if (!v.ok()) return std::move(v).error();
      return parse_int(flag, *v);
    };
    if (flag == "-h" || flag == "--help") {
      opt.help = true;
    } else if (flag == "-r" || flag == "--deep") {
      opt.recursive = true;
    } else if (flag == "-g" || flag == "--gen-compare") {
      opt.generate_compare = true;
    } else if (flag == "--verbose") {
      opt.verbose = true;
    } else if (flag == "-c" || flag == "--compare") {
      compare_mode = true;
      if (attached) opt.compare_files.push_back(*attached);
    } else if (flag == "-f" || flag == "--target-list") {
      auto v = value();
      if (!v.ok()) return std::move(v).error();
      opt.list_files.push_back(*v);
    } else if (flag == "-b" || flag == "--block-size") {
      auto v = int_value();
      if (!v.ok()) return std::move(v).error();
      // The reference treats values below -1 as "unset" and clamps above 16.
      if (*v >= 0) opt.policy.block_kib = *v;
      else opt.policy.block_kib.reset();
    } else if (flag == "-z" || flag == "--segment-size") {
      auto v = int_value();
      if (!v.ok()) return std::move(v).error();
      if (*v <= 0) return Error(ErrorCode::invalid_argument, "-z: segment size must be at least 1 MiB");
      opt.policy.segment_bytes = static_cast<std::uint64_t>(*v) << 20;
    } else if (flag == "-t" || flag == "--threshold") {
      auto v = int_value();
      if (!v.ok()) return std::move(v).error();
      opt.threshold = *v;
    } else if (flag == "-p" || flag == "--threads") {
      auto v = int_value();
      if (!v.ok()) return std::move(v).error();
      if (*v < 1 || *v > 1024) return Error(ErrorCode::invalid_argument, "-p: thread count must be 1..1024");
      opt.threads = static_cast<unsigned>(*v);
    } else if (flag == "-o" || flag == "--output") {
      auto v = value();
      if (!v.ok()) return std::move(v).error();
      opt.output_base = *v;
    } else if (flag == "--hash-name") {
      auto v = value();
      if (!v.ok()) return std::move(v).error();
      opt.stdin_name = *v;
    } else if (flag == "--separator") {
      auto v = value();
      if (!v.ok()) return std::move(v).error();
      if (*v == "pipe") opt.separator = '|';
      else if (*v == "csv") opt.separator = ',';
      else if (*v == "tab" || *v == "tabs") opt.separator = '\t';
      else return Error(ErrorCode::invalid_argument, "--separator: expected pipe, csv or tab, got '" + *v + "'");
    } else {
      return Error(ErrorCode::invalid_argument, "unknown option '" + arg + "'");
    }
  }
  if (opt.help) return opt;
  if (!opt.compare_files.empty()) {
    if (opt.compare_files.size() > 2 || !opt.inputs.empty() || opt.generate_compare) {
      return Error(ErrorCode::invalid_argument, "-c takes one or two digest files and no other inputs");
    }
    return opt;
  }
  if (opt.inputs.empty() && opt.list_files.empty()) {
    return Error(ErrorCode::invalid_argument, "no input files");
  }
  if (std::count(opt.inputs.begin(), opt.inputs.end(), "-") > 0 && opt.inputs.size() > 1) {
    return Error(ErrorCode::invalid_argument, "'-' (standard input) must be the only input");
  }
  return opt;
}

int run_digest(const std::vector<std::string>& args) {
  auto parsed = parse_digest_args(args);
  if (!parsed.ok()) {
    std::fprintf(stderr, "hashsieve digest: %s\n%s", parsed.error().message().c_str(), kDigestUsage);
    return kExitUsage;
  }
  const DigestOptions& opt = *parsed;
  if (opt.help) {
    std::fputs(kDigestUsage, stdout);
    return kExitOk;
  }
  if (!opt.compare_files.empty()) return run_compare(opt);
  return run_hash_inputs(opt);
}

}  // namespace hashsieve::cli
