// The scanner's own verdicts for the calibration corpus (docs/detection.md,
// "The rules as the scanner applies them"): every reference file becomes a
// malicious set of its own (refset build), the query files are scanned as
// one image layer through scan::Scanner with the default ScanThresholds
// (layer hasher, .rodata digests, similarity matcher: exactly what
// `hashsieve scan` runs), and every piece of evidence is written out.
//
//   calibration_scan REF_LIST QUERY_LIST WORK_DIR OUT.tsv
//
// REF_LIST / QUERY_LIST: one file path per line (make_lists.py). WORK_DIR
// holds the built sets (emptied first). OUT.tsv: "ref\tquery\talgorithms"
// for every (reference, query) pair with evidence, algorithms a comma list
// ("sdbf,tlsh:.rodata"); pairs without evidence are not listed. Exit 1 on
// any error (a file that cannot be read, a set that does not build).
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "hashsieve/core/file.h"
#include "hashsieve/image/source.h"
#include "hashsieve/refset/builder.h"
#include "hashsieve/refset/catalog.h"
#include "hashsieve/scan/scanner.h"

namespace {

namespace fs = std::filesystem;
namespace hs = hashsieve;

std::vector<std::string> read_list(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) out.push_back(line);
  }
  return out;
}

// The query files as the regular files of one layer, read from disk in
// list order; entry paths are the files' positions ("q/<index>") so that any
// path maps back.
class FileListLayer final : public hs::image::LayerEntries {
 public:
  explicit FileListLayer(const std::vector<std::string>& files) : files_(files) {}
  hs::Result<std::optional<hs::image::LayerEntry>> next() override {
    file_.reset();
    if (next_ >= files_.size()) return std::optional<hs::image::LayerEntry>();
    const std::size_t i = next_++;
    auto mapped = hs::MappedFile::open(files_[i]);
    if (!mapped.ok()) return std::move(mapped).error().with_context(files_[i]);
    file_.emplace(std::move(mapped).value());
    offset_ = 0;
    hs::image::LayerEntry e;
    e.path = "q/" + std::to_string(i);
    e.kind = hs::image::EntryKind::regular;
    e.size = file_->bytes().size();
    e.mode = 0755;
    return std::optional<hs::image::LayerEntry>(std::move(e));
  }
  hs::Result<std::size_t> read(std::span<std::uint8_t> out) override {
    const auto bytes = file_->bytes();
    const std::size_t n = std::min(out.size(), bytes.size() - offset_);
    std::copy_n(bytes.begin() + static_cast<std::ptrdiff_t>(offset_), n, out.begin());
    offset_ += n;
    return n;
  }
  hs::Status finish() override { return {}; }

 private:
  const std::vector<std::string>& files_;
  std::size_t next_ = 0, offset_ = 0;
  std::optional<hs::MappedFile> file_;
};

class FileListSource final : public hs::image::ImageSource {
 public:
  explicit FileListSource(const std::vector<std::string>& files) : files_(files) {}
  hs::image::ResolvedImage image() const {
    hs::image::ResolvedImage img;
    img.reference = "calibration";
    img.platform = {"linux", "amd64", ""};
    hs::image::LayerDescriptor d;
    d.diff_id = "sha256:" + std::string(64, '0');
    img.layers.push_back(d);
    return img;
  }
  hs::Result<std::vector<hs::image::ResolvedImage>> resolve() override {
    return std::vector<hs::image::ResolvedImage>{image()};
  }
  hs::Result<std::unique_ptr<hs::image::LayerEntries>> open_layer(const hs::image::ResolvedImage&,
                                                                   std::size_t) override {
    return std::unique_ptr<hs::image::LayerEntries>(new FileListLayer(files_));
  }

 private:
  const std::vector<std::string>& files_;
};

int run(const std::string& ref_list, const std::string& query_list, const std::string& work, const std::string& out_path) {
  const auto refs = read_list(ref_list);
  const auto queries = read_list(query_list);
  if (refs.empty() || queries.empty()) {
    std::cerr << "calibration_scan: empty reference or query list\n";
    return 1;
  }
  std::error_code ec;
  fs::remove_all(work, ec);
  auto catalog = hs::refset::RefsetCatalog::open(work);
  if (!catalog.ok()) {
    std::cerr << "calibration_scan: " << catalog.error().message() << "\n";
    return 1;
  }
  std::vector<hs::refset::LoadedRefset> sets;
  for (std::size_t i = 0; i < refs.size(); ++i) {
    hs::refset::BuildRequest req;
    req.name = "r" + std::to_string(i);
    req.set_class = hs::refset::ReferenceClass::malicious;
    req.paths = {refs[i]};
    auto built = hs::refset::build_refset(*catalog, req);
    if (!built.ok()) {
      std::cerr << "calibration_scan: " << built.error().message() << "\n";
      return 1;
    }
    for (const auto& w : built->warnings) std::cerr << "calibration_scan: " << refs[i] << ": " << w.message << "\n";
    auto loaded = catalog->load(req.name);
    if (!loaded.ok()) {
      std::cerr << "calibration_scan: " << loaded.error().message() << "\n";
      return 1;
    }
    sets.push_back(std::move(loaded).value());
  }
  FileListSource source(queries);
  hs::scan::ScanOptions options;  // the defaults `hashsieve scan` uses
  options.threads = 1;
  options.use_cache = false;
  hs::scan::Scanner scanner(nullptr, sets, nullptr, options);
  auto report = scanner.scan(source, source.image());
  if (!report.ok()) {
    std::cerr << "calibration_scan: " << report.error().message() << "\n";
    return 1;
  }
  std::ofstream out(out_path);
  out << "ref\tquery\talgorithms\n";
  for (const auto& f : report->files) {
    const std::size_t q = std::stoul(f.path.substr(2));
    std::map<std::size_t, std::vector<std::string>> by_ref;
    for (const auto& e : f.evidence) by_ref[std::stoul(e.set.substr(1))].push_back(e.algorithm);
    for (auto& [r, algorithms] : by_ref) {
      std::sort(algorithms.begin(), algorithms.end());
      std::string joined;
      for (const auto& a : algorithms) joined += (joined.empty() ? "" : ",") + a;
      out << refs[r] << '\t' << queries[q] << '\t' << joined << '\n';
    }
  }
  if (!out.flush()) {
    std::cerr << "calibration_scan: cannot write " << out_path << "\n";
    return 1;
  }
  std::cerr << "calibration_scan: " << report->files.size() << " files, " << report->stats.bytes_hashed
            << " bytes hashed, " << refs.size() << " sets\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) {
    std::cerr << "usage: calibration_scan REF_LIST QUERY_LIST WORK_DIR OUT.tsv\n";
    return 2;
  }
  return run(argv[1], argv[2], argv[3], argv[4]);
}
