// The YARA adapter over libyara.
#include <yara.h>

#include <cstdio>
#include <mutex>

#include "fingerprint.h"
#include "hashsieve/core/file.h"
#include "hashsieve/scanners/yara.h"

namespace hashsieve::scanners {
namespace {

// yr_initialize/yr_finalize keep a count of their own but are not safe to
// call from two threads at once; every open_yara and every scanner's
// destruction goes through this lock.
class YaraLibrary {
 public:
  static Result<std::shared_ptr<YaraLibrary>> acquire() {
    std::lock_guard lock(mutex());
    const int rc = yr_initialize();
    if (rc != ERROR_SUCCESS) {
      return Error(ErrorCode::internal, "yr_initialize failed with YARA error " + std::to_string(rc));
    }
    return std::shared_ptr<YaraLibrary>(new YaraLibrary());
  }
  ~YaraLibrary() {
    std::lock_guard lock(mutex());
    yr_finalize();
  }
  YaraLibrary(const YaraLibrary&) = delete;
  YaraLibrary& operator=(const YaraLibrary&) = delete;

 private:
  YaraLibrary() = default;
  static std::mutex& mutex() {
    static std::mutex m;
    return m;
  }
};

struct CompilerDeleter {
  void operator()(YR_COMPILER* c) const { yr_compiler_destroy(c); }
};
struct RulesDeleter {
  void operator()(YR_RULES* r) const { yr_rules_destroy(r); }
};

struct CompileMessages {
  std::vector<std::string> errors;
  std::vector<Warning> warnings;
};

void on_compile_message(int level, const char* file_name, int line, const YR_RULE* /*rule*/,
                        const char* message, void* user_data) {
  auto* out = static_cast<CompileMessages*>(user_data);
  std::string text = std::string(file_name != nullptr ? file_name : "<rules>") + ":" + std::to_string(line) +
                     ": " + (message != nullptr ? message : "unknown error");
  if (level == YARA_ERROR_LEVEL_ERROR) {
    out->errors.push_back(std::move(text));
  } else {
    out->warnings.push_back({std::move(text)});
  }
}

struct ScanState {
  std::vector<ScanFinding> findings;
};

int on_scan_message(YR_SCAN_CONTEXT* /*context*/, int message, void* message_data, void* user_data) {
  if (message != CALLBACK_MSG_RULE_MATCHING) return CALLBACK_CONTINUE;
  const auto* rule = static_cast<const YR_RULE*>(message_data);
  ScanFinding f;
  f.scanner = std::string(kYaraScannerName);
  f.signature = rule->identifier;
  const char* tag = nullptr;
  yr_rule_tags_foreach(rule, tag) { f.tags.emplace_back(tag); }
  static_cast<ScanState*>(user_data)->findings.push_back(std::move(f));
  return CALLBACK_CONTINUE;
}

class YaraScanner final : public ExternalScanner {
 public:
  YaraScanner(std::shared_ptr<YaraLibrary> library, std::unique_ptr<YR_RULES, RulesDeleter> rules,
              ScanLimits limits, std::string signature_version)
      : library_(std::move(library)),
        rules_(std::move(rules)),
        limits_(limits),
        signature_version_(std::move(signature_version)) {}

  std::string name() const override { return std::string(kYaraScannerName); }
  std::string version() const override { return YR_VERSION; }
  std::string signature_version() const override { return signature_version_; }
  const ScanLimits& limits() const override { return limits_; }

  Result<std::vector<ScanFinding>> scan_buffer(std::span<const std::uint8_t> bytes,
                                               const std::string& display_name) const override {
    if (auto s = check_size(bytes.size(), limits_, display_name); !s.ok()) return std::move(s).error();
    // YARA counts whole seconds and reads 0 as "no limit": round up.
    const long long ms = limits_.timeout.count();
    const int timeout_s = ms <= 0 ? 0 : static_cast<int>(std::min<long long>((ms + 999) / 1000, 1 << 30));
    ScanState state;
    // Rules are shared read-only; libyara gives each call its own scan
    // context, so concurrent calls are safe (up to YR_MAX_THREADS at once).
    const int rc = yr_rules_scan_mem(rules_.get(), bytes.data(), bytes.size(), 0, &on_scan_message, &state,
                                     timeout_s);
    switch (rc) {
      case ERROR_SUCCESS:
        return std::move(state.findings);
      case ERROR_SCAN_TIMEOUT:
        return Error(ErrorCode::limit_exceeded,
                     display_name + ": YARA scan timed out after " + std::to_string(timeout_s) + " s");
      case ERROR_TOO_MANY_SCAN_THREADS:
        return Error(ErrorCode::unavailable,
                     display_name + ": more than " + std::to_string(YR_MAX_THREADS) + " concurrent YARA scans");
      case ERROR_INSUFFICIENT_MEMORY:
        return Error(ErrorCode::io_error, display_name + ": YARA ran out of memory");
      default:
        return Error(ErrorCode::internal, display_name + ": YARA scan failed with error " + std::to_string(rc));
    }
  }

 private:
  // Declared first so it is destroyed last: yr_finalize after the rules go.
  std::shared_ptr<YaraLibrary> library_;
  std::unique_ptr<YR_RULES, RulesDeleter> rules_;
  ScanLimits limits_;
  std::string signature_version_;
};

}  // namespace

Result<WithWarnings<std::unique_ptr<ExternalScanner>>> open_yara(const YaraOptions& options) {
  auto files = detail::list_files(options.rules_dir, {".yar", ".yara"});
  if (!files.ok()) return std::move(files).error().with_context("YARA rules directory");
  if (files->empty()) {
    return Error(ErrorCode::invalid_argument,
                 "YARA rules directory " + options.rules_dir + ": no *.yar or *.yara files");
  }
  auto library = YaraLibrary::acquire();
  if (!library.ok()) return std::move(library).error();

  YR_COMPILER* raw_compiler = nullptr;
  if (yr_compiler_create(&raw_compiler) != ERROR_SUCCESS) {
    return Error(ErrorCode::internal, "yr_compiler_create failed");
  }
  std::unique_ptr<YR_COMPILER, CompilerDeleter> compiler(raw_compiler);
  CompileMessages messages;
  yr_compiler_set_callback(compiler.get(), &on_compile_message, &messages);

  for (const detail::NamedFile& f : *files) {
    // open_regular_file: a FIFO named x.yar must not hang the compiler.
    auto opened = open_regular_file(f.path);
    if (!opened.ok()) return std::move(opened).error().with_context("YARA rules");
    const int errors = yr_compiler_add_fd(compiler.get(), opened->fd.get(), nullptr, f.path.c_str());
    if (errors > 0) {
      // After an error the compiler cannot take more input; report this file.
      std::string text;
      for (const std::string& e : messages.errors) text += (text.empty() ? "" : "; ") + e;
      if (text.empty()) text = f.path + ": " + std::to_string(errors) + " compile errors";
      return Error(ErrorCode::parse_error, "YARA rules: " + text);
    }
  }
  YR_RULES* raw_rules = nullptr;
  if (const int rc = yr_compiler_get_rules(compiler.get(), &raw_rules); rc != ERROR_SUCCESS) {
    return Error(ErrorCode::internal, "yr_compiler_get_rules failed with YARA error " + std::to_string(rc));
  }
  std::unique_ptr<YR_RULES, RulesDeleter> rules(raw_rules);
  compiler.reset();

  std::uint64_t count = 0;
  const YR_RULE* rule = nullptr;
  yr_rules_foreach(rules.get(), rule) { ++count; }
  auto fingerprint = detail::fingerprint_files(*files);
  if (!fingerprint.ok()) return std::move(fingerprint).error().with_context("YARA rules");

  WithWarnings<std::unique_ptr<ExternalScanner>> out;
  out.value = std::make_unique<YaraScanner>(std::move(*library), std::move(rules), options.limits,
                                            std::to_string(count) + " rules, " + *fingerprint);
  out.warnings = std::move(messages.warnings);
  return out;
}

}  // namespace hashsieve::scanners
