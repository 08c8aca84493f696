// libFuzzer target: a .deb package as `refset build` reads it (ar archive,
// compressed control and data tars). Hostile packages must give an error,
// never a crash; file sizes are capped so the target stays fast.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

#include "../src/refset/deb_reader.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  char path[] = "/tmp/hashsieve_deb_fuzz_XXXXXX";
  const int fd = ::mkstemp(path);
  if (fd < 0) return 0;
  const bool written = ::write(fd, data, size) == static_cast<ssize_t>(size);
  ::close(fd);
  if (written) {
    std::uint64_t bytes = 0;
    auto info = hashsieve::refset::read_deb(
        path, 1 << 20,
        [&](const std::string&, const std::string&, std::span<const std::uint8_t> file) {
          bytes += file.size();
          return hashsieve::Status{};
        },
        [](std::string) {});
    (void)info;
  }
  ::unlink(path);
  return 0;
}
