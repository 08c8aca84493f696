// Helpers of the integration tests that start a real engine (dockerd, or
// Podman's service): programs, shell commands and files.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "hashsieve/refset/builder.h"
#include "scan_fixture.h"

namespace hashsieve::runtime::testing {

inline std::string eicar() {
  return std::string("X5O!P%@AP[4\\PZX54(P^)7CC)7}$") + "EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";
}

inline std::string find_program(const std::string& name) {
  for (const char* dir : {"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"}) {
    const std::string p = std::string(dir) + "/" + name;
    if (::access(p.c_str(), X_OK) == 0) return p;
  }
  return "";
}

// Runs a shell command; returns its exit status and its output (stdout and stderr).
inline std::pair<int, std::string> run(const std::string& cmd) {
  std::string out;
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  if (p == nullptr) return {-1, ""};
  std::array<char, 4096> buf{};
  while (std::size_t n = std::fread(buf.data(), 1, buf.size(), p)) out.append(buf.data(), n);
  const int status = ::pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

inline void write_file(const std::filesystem::path& p, const std::string& data,
                       std::filesystem::perms perms = std::filesystem::perms(0644)) {
  std::filesystem::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << data;
  std::filesystem::permissions(p, perms);
}

inline std::string as_string(const std::vector<std::uint8_t>& b) { return std::string(b.begin(), b.end()); }

// The root filesystem both engine suites import as their image: a static
// busybox with `applets`, a reference "bad" binary the containers copy
// (/opt/samples/tool.bin), an ELF-looking binary they modify (/opt/app) and,
// when asked, the EICAR file (/opt/samples/eicar.dat).
struct TestRootfs {
  std::string tool_bin;
  std::string app_bin;
};

inline TestRootfs write_test_rootfs(const std::filesystem::path& root, const std::vector<std::string>& applets,
                                    bool with_eicar) {
  namespace fs = std::filesystem;
  fs::create_directories(root / "bin");
  fs::create_directories(root / "tmp");
  fs::copy_file("/bin/busybox", root / "bin/busybox");
  for (const auto& applet : applets) fs::create_symlink("busybox", root / "bin" / applet);
  TestRootfs out;
  out.tool_bin = as_string(scan::testing::random_bytes(8192, 77));
  scan::testing::Bytes app = scan::testing::random_bytes(4096, 78);
  app[0] = 0x7f, app[1] = 'E', app[2] = 'L', app[3] = 'F';
  out.app_bin = as_string(app);
  if (with_eicar) write_file(root / "opt/samples/eicar.dat", eicar());
  write_file(root / "opt/samples/tool.bin", out.tool_bin);
  write_file(root / "opt/app", out.app_bin, fs::perms(0755));
  return out;
}

// Builds the malicious reference set "bad" in `data_dir` from `files` (name
// -> contents) and loads it.
inline std::vector<refset::LoadedRefset> build_bad_set(const std::string& data_dir,
                                                       const std::vector<std::pair<std::string, std::string>>& files) {
  for (const auto& [name, contents] : files) write_file(std::filesystem::path(data_dir) / "src/bad" / name, contents);
  auto catalog = refset::RefsetCatalog::open(data_dir);
  EXPECT_TRUE(catalog.ok());
  if (!catalog.ok()) return {};
  refset::BuildRequest req;
  req.name = "bad";
  req.set_class = refset::ReferenceClass::malicious;
  req.paths = {data_dir + "/src/bad"};
  auto built = refset::build_refset(*catalog, req);
  EXPECT_TRUE(built.ok()) << built.error().message();
  return scan::testing::load_sets(data_dir, {"bad"});
}

// Starts a detached container of the test image (hsbox:it) through an
// engine's CLI (`cli` = the docker or podman command with its global flags)
// running `script` then sleeping, waits until the script is done and
// returns the container's id (the last line: podman may print notes first).
inline std::string start_container(const std::string& cli, const std::string& run_flags, const std::string& name,
                                   const std::string& script) {
  auto [rc, out] = run(cli + " run -d " + run_flags + " --name " + name + " hsbox:it /bin/sh -c '" + script +
                       " && echo done > /tmp/.ready; sleep 100000'");
  EXPECT_EQ(rc, 0) << out;
  for (int i = 0; i < 100; ++i) {
    if (run(cli + " exec " + name + " cat /tmp/.ready").first == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  out.erase(out.find_last_not_of('\n') + 1);
  return out.substr(out.rfind('\n') + 1);
}

}  // namespace hashsieve::runtime::testing
