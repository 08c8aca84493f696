#include "hashsieve/worker/worker_pool.h"

namespace hashsieve::worker {

std::string refset_fingerprint(const std::vector<refset::LoadedRefset>& sets) {
  // Name, class, version and source fingerprint of each set in load order:
  // a new version, a new source, a set added or removed all change it. Order
  // matters too (evidence lists follow it), so it is not sorted.
  std::string out;
  for (const auto& s : sets) {
    const auto& m = s.manifest();
    if (!out.empty()) out += ';';
    out += m.name + "/" + std::string(refset::to_string(m.set_class)) + "/v" + std::to_string(m.version) + "/" +
           m.fingerprint;
  }
  return out;
}

std::string result_fingerprint(const std::vector<refset::LoadedRefset>& sets,
                               const std::vector<const scanners::ExternalScanner*>& external_scanners) {
  std::string out = refset_fingerprint(sets);
  for (const scanners::ExternalScanner* s : external_scanners) {
    out.append(";scanner:").append(s->name()).append("/").append(s->version()).append("/").append(
        s->signature_version());
  }
  return out;
}

}  // namespace hashsieve::worker
