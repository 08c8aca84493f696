// The in-process ClamAV adapter over libclamav.
#include <clamav.h>

#include <algorithm>
#include <filesystem>
#include <mutex>

#include "fingerprint.h"
#include "hashsieve/scanners/clamav.h"

namespace hashsieve::scanners {
namespace {

// libclamav logs through one process-wide callback. While a database loads
// on a thread, that thread's messages go into `t_load_messages` so the error
// can quote them ("Malformed database", the line number); scan-time messages
// arrive with the scan's context and are kept there.
thread_local std::string* t_load_messages = nullptr;

struct ScanContext {
  std::vector<std::string> names;
  std::string messages;
};

void append_message(std::string& to, const char* msg) {
  std::string m = msg != nullptr ? msg : "";
  while (!m.empty() && (m.back() == '\n' || m.back() == '\r' || m.back() == ' ')) m.pop_back();
  if (m.empty()) return;
  if (!to.empty()) to += "; ";
  to += m;
}

void on_message(enum cl_msg severity, const char* /*fullmsg*/, const char* msg, void* context) {
  if (severity < CL_MSG_WARN) return;
  if (context != nullptr) {
    append_message(static_cast<ScanContext*>(context)->messages, msg);
  } else if (t_load_messages != nullptr) {
    append_message(*t_load_messages, msg);
  }
}

void on_virus_found(int /*fd*/, const char* virname, void* context) {
  if (context == nullptr || virname == nullptr) return;
  static_cast<ScanContext*>(context)->names.emplace_back(virname);
}

Status init_libclamav() {
  static std::once_flag once;
  static cl_error_t rc = CL_SUCCESS;
  std::call_once(once, [] {
    cl_set_clcb_msg(&on_message);
    rc = cl_init(CL_INIT_DEFAULT);
  });
  if (rc != CL_SUCCESS) return Error(ErrorCode::internal, std::string("cl_init: ") + cl_strerror(rc));
  return {};
}

struct EngineDeleter {
  void operator()(cl_engine* e) const { cl_engine_free(e); }
};
using EnginePtr = std::unique_ptr<cl_engine, EngineDeleter>;

Error clamav_error(ErrorCode code, const std::string& what, cl_error_t rc, const std::string& messages) {
  std::string m = what + ": " + cl_strerror(rc);
  if (!messages.empty()) m += " (" + messages + ")";
  return Error(code, std::move(m));
}

class ClamavScanner final : public ExternalScanner {
 public:
  ClamavScanner(EnginePtr engine, ScanLimits limits, std::string signature_version)
      : engine_(std::move(engine)), limits_(limits), signature_version_(std::move(signature_version)) {}

  std::string name() const override { return std::string(kClamavScannerName); }
  std::string version() const override { return cl_retver(); }
  std::string signature_version() const override { return signature_version_; }
  const ScanLimits& limits() const override { return limits_; }

  Result<std::vector<ScanFinding>> scan_buffer(std::span<const std::uint8_t> bytes,
                                               const std::string& display_name) const override {
    if (auto s = check_size(bytes.size(), limits_, display_name); !s.ok()) return std::move(s).error();
    // cl_fmap_open_memory refuses an empty range, and libclamav reports every
    // empty file clean without matching (clamscan prints "Empty file").
    if (bytes.empty()) return std::vector<ScanFinding>{};
    cl_fmap_t* map = cl_fmap_open_memory(bytes.data(), bytes.size());
    if (map == nullptr) return Error(ErrorCode::internal, display_name + ": cl_fmap_open_memory failed");
    ScanContext context;
    cl_scan_options options{};
    options.general = CL_SCAN_GENERAL_ALLMATCHES | CL_SCAN_GENERAL_HEURISTICS;
    options.parse = ~0u;
    options.heuristic = CL_SCAN_HEURISTIC_EXCEEDS_MAX;
    const char* virname = nullptr;
    unsigned long scanned = 0;
    const cl_error_t rc =
        cl_scanmap_callback(map, display_name.c_str(), &virname, &scanned, engine_.get(), &options, &context);
    cl_fmap_close(map);
    if (rc == CL_VIRUS && context.names.empty() && virname != nullptr) context.names.emplace_back(virname);
    if (rc != CL_CLEAN && rc != CL_VIRUS) {
      const ErrorCode code = (rc == CL_ETIMEOUT || rc == CL_EMAXSIZE || rc == CL_EMAXREC || rc == CL_EMAXFILES)
                                 ? ErrorCode::limit_exceeded
                                 : ErrorCode::io_error;
      return clamav_error(code, display_name + ": libclamav scan", rc, context.messages);
    }
    std::vector<ScanFinding> findings;
    for (const std::string& n : context.names) {
      const bool seen = std::any_of(findings.begin(), findings.end(),
                                    [&](const ScanFinding& f) { return f.signature == n; });
      if (!seen) findings.push_back({name(), n, {}});
    }
    return findings;
  }

 private:
  EnginePtr engine_;
  ScanLimits limits_;
  std::string signature_version_;
};

// The files a database path stands for, for the fingerprint.
Result<std::vector<detail::NamedFile>> database_files(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    auto files = detail::list_files(path, {});
    if (!files.ok()) return std::move(files).error();
    for (auto& f : *files) f.name = path + "/" + f.name;
    return files;
  }
  return std::vector<detail::NamedFile>{{path, path}};
}

}  // namespace

Result<std::unique_ptr<ExternalScanner>> open_clamav(const ClamavOptions& options) {
  if (options.database_paths.empty()) {
    return Error(ErrorCode::invalid_argument, "clamav: no database path given");
  }
  if (auto s = init_libclamav(); !s.ok()) return std::move(s).error();
  EnginePtr engine(cl_engine_new());
  if (!engine) return Error(ErrorCode::internal, "clamav: cl_engine_new failed");

  // Our limit is the only size limit: libclamav skips larger files (and
  // larger archive members) otherwise. Its scan-time budget is our timeout.
  const auto max_bytes = static_cast<long long>(
      std::min<std::uint64_t>(options.limits.max_bytes, std::uint64_t{1} << 62));
  cl_engine_set_num(engine.get(), CL_ENGINE_MAX_FILESIZE, max_bytes);
  cl_engine_set_num(engine.get(), CL_ENGINE_MAX_SCANSIZE, max_bytes);
  if (options.limits.timeout.count() > 0) {
    cl_engine_set_num(engine.get(), CL_ENGINE_MAX_SCANTIME,
                      std::min<long long>(options.limits.timeout.count(), 0xffffffffLL));
  }
  cl_engine_set_clcb_virus_found(engine.get(), &on_virus_found);
  if (!options.temp_dir.empty()) {
    std::error_code ec;
    if (!std::filesystem::is_directory(options.temp_dir, ec)) {
      return Error(ErrorCode::invalid_argument, "clamav temporary directory " + options.temp_dir + ": not a directory");
    }
    if (const cl_error_t rc = cl_engine_set_str(engine.get(), CL_ENGINE_TMPDIR, options.temp_dir.c_str());
        rc != CL_SUCCESS) {
      return clamav_error(ErrorCode::internal, "clamav temporary directory " + options.temp_dir, rc, "");
    }
  }

  unsigned int signatures = 0;
  std::vector<detail::NamedFile> files;
  for (const std::string& path : options.database_paths) {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) {
      return Error(ErrorCode::not_found, "clamav database " + path + ": no such file or directory");
    }
    std::string messages;
    t_load_messages = &messages;
    const cl_error_t rc = cl_load(path.c_str(), engine.get(), &signatures, CL_DB_STDOPT);
    t_load_messages = nullptr;
    if (rc != CL_SUCCESS) {
      const ErrorCode code = rc == CL_EACCES ? ErrorCode::permission_denied
                             : rc == CL_EOPEN ? ErrorCode::io_error
                                              : ErrorCode::parse_error;
      return clamav_error(code, "clamav database " + path, rc, messages);
    }
    auto more = database_files(path);
    if (!more.ok()) return std::move(more).error().with_context("clamav database");
    files.insert(files.end(), more->begin(), more->end());
  }
  if (signatures == 0) {
    return Error(ErrorCode::invalid_argument, "clamav: the databases hold no signatures");
  }
  std::string messages;
  t_load_messages = &messages;
  const cl_error_t rc = cl_engine_compile(engine.get());
  t_load_messages = nullptr;
  if (rc != CL_SUCCESS) return clamav_error(ErrorCode::parse_error, "clamav: compiling the databases", rc, messages);

  auto fingerprint = detail::fingerprint_files(files);
  if (!fingerprint.ok()) return std::move(fingerprint).error().with_context("clamav database");
  int err = 0;
  const long long db_version = cl_engine_get_num(engine.get(), CL_ENGINE_DB_VERSION, &err);
  std::string signature_version = std::to_string(signatures) + " signatures, db " +
                                  std::to_string(err == 0 ? db_version : 0) + ", " + *fingerprint;
  return std::unique_ptr<ExternalScanner>(
      std::make_unique<ClamavScanner>(std::move(engine), options.limits, std::move(signature_version)));
}

}  // namespace hashsieve::scanners
