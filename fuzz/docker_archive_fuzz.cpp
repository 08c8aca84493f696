// libFuzzer target: a docker-archive (the tar `docker save` writes) as
// open_docker_archive_source reads it: outer tar index, manifest.json, the
// config, then every layer. Hostile archives must give an error, never a
// crash; the limits are small so the target stays fast.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "../src/image/sources_internal.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  char path[] = "/tmp/hashsieve_docker_archive_fuzz_XXXXXX";
  const int fd = ::mkstemp(path);
  if (fd < 0) return 0;
  const bool written = ::write(fd, data, size) == static_cast<ssize_t>(size);
  ::close(fd);
  if (written) {
    hashsieve::image::SourceOptions options;
    options.limits.max_layer_bytes = 16 << 20;
    options.limits.max_entries = 10000;
    options.limits.max_file_bytes = 8 << 20;
    auto source = hashsieve::image::open_docker_archive_source(path, options);
    if (source) {
      auto images = (*source)->resolve();
      if (images) {
        std::vector<std::uint8_t> buf(4096);
        for (std::size_t i = 0; i < (*images)[0].layers.size(); ++i) {
          auto layer = (*source)->open_layer((*images)[0], i);
          if (!layer) continue;
          for (;;) {
            auto entry = (*layer)->next();
            if (!entry || !*entry) break;
            for (;;) {
              auto n = (*layer)->read(buf);
              if (!n || *n == 0) break;
            }
          }
          (void)(*layer)->finish();
        }
      }
    }
  }
  ::unlink(path);
  return 0;
}
