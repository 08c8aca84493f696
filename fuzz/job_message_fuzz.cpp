// libFuzzer target: what the worker reads back from the queue and the job
// store — a job message body and a stored resolved image (JSON). Parsing must
// fail with a parse_error or succeed; a parsed resolved image must write back
// to JSON that parses to the same image.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "hashsieve/worker/worker_pool.h"
#include "resolved_json.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using hashsieve::ErrorCode;
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto id = hashsieve::worker::parse_job_message(text);
  if (!id.ok() && id.error().code() != ErrorCode::parse_error) std::abort();
  if (id.ok() && *id <= 0) std::abort();
  auto img = hashsieve::worker::resolved_from_json(text);
  if (!img.ok()) {
    if (img.error().code() != ErrorCode::parse_error) std::abort();
    return 0;
  }
  auto again = hashsieve::worker::resolved_from_json(hashsieve::worker::resolved_to_json(*img));
  if (!again.ok()) std::abort();
  if (again->reference != img->reference || again->manifest_digest != img->manifest_digest ||
      again->config_digest != img->config_digest || !(again->platform == img->platform) ||
      again->layers.size() != img->layers.size() || again->skipped != img->skipped) {
    std::abort();
  }
  for (std::size_t i = 0; i < img->layers.size(); ++i) {
    const auto& a = img->layers[i];
    const auto& b = again->layers[i];
    if (a.media_type != b.media_type || a.digest != b.digest || a.diff_id != b.diff_id || a.size != b.size) {
      std::abort();
    }
  }
  return 0;
}
