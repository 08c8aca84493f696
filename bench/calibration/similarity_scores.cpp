// similarity_scores: every pairwise similarity figure between a list of
// reference files and a list of query files, as TSV, for calibrating the
// scanner's thresholds (docs/detection.md). Not a Google Benchmark.
//
//   similarity_scores [--sections NAME[,NAME...]] REF_LIST QUERY_LIST [OUT.tsv]
//
// REF_LIST and QUERY_LIST name one file per line (empty lines ignored). Each
// reference is digested once and kept; each query is digested, compared with
// every reference and dropped, so thousands of large queries fit in memory.
// One row per (reference, query) pair:
//
//   ref  query  ref_size  query_size  sdbf  tlsh  ssdeep
//
// sdbf    sdbf_score, 0..100 (higher = closer); -1 when sdhash finds no
//         comparable filter pair; NA when either file has no SDBF digest
//         (below 512 bytes). Files above 128 MiB have one digest per
//         segment: the best score over segment pairs is reported.
// tlsh    tlsh_distance with the length term (lower = closer); NA when either
//         file has no TLSH digest (below 256 bytes or too little variation).
// ssdeep  ssdeep_compare, 0..100 (higher = closer); NA when either input is
//         empty.
//
// --sections digests only the named ELF sections of each file (their bytes
// concatenated in the order named; absent sections add nothing) instead of
// the whole file, to measure whether section-aware digests would separate
// builds better. The size columns are then the digested bytes. Files that are
// not ELF or have a damaged section table are errors.
//
// Any file that cannot be read or digested stops the run with an error naming
// it (exit 1): a silently missing row would bias the measured rates.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "hashsieve/core/file.h"
#include "hashsieve/core/result.h"
#include "hashsieve/digest/elf_sections.h"
#include "hashsieve/digest/file_digests.h"
#include "hashsieve/digest/sdbf.h"
#include "hashsieve/digest/sdbf_compare.h"
#include "hashsieve/digest/ssdeep.h"
#include "hashsieve/digest/tlsh.h"

namespace {

namespace dg = hashsieve::digest;

struct Digested {
  std::string path;
  std::uint64_t size = 0;
  std::vector<dg::Sdbf> sdbf;
  std::optional<dg::TlshDigest> tlsh;
  std::optional<std::string> ssdeep;  // nullopt for empty input
};

dg::DigestSelection similarity_only() {
  dg::DigestSelection s;
  s.crypto = dg::CryptoSelection::none();
  return s;
}

hashsieve::Result<std::vector<std::string>> read_list(const std::string& list_path) {
  std::ifstream in(list_path);
  if (!in) {
    return hashsieve::Error(hashsieve::ErrorCode::io_error, "cannot open list file " + list_path);
  }
  std::vector<std::string> paths;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty()) paths.push_back(line);
  }
  if (in.bad()) {
    return hashsieve::Error(hashsieve::ErrorCode::io_error, "read error in list file " + list_path);
  }
  return paths;
}

Digested from_digests(const std::string& path, dg::FileDigests&& d) {
  Digested out;
  out.path = path;
  out.size = d.size;
  out.sdbf = std::move(d.sdbf);
  out.tlsh = d.tlsh;
  if (d.size > 0) out.ssdeep = std::move(d.ssdeep);
  return out;
}

// Digests the whole file, or with `sections` non-empty only those ELF sections.
hashsieve::Result<Digested> digest(const std::string& path, const std::vector<std::string>& sections) {
  if (sections.empty()) {
    auto d = dg::digest_file(path, similarity_only());
    if (!d) return std::move(d).error().with_context("digesting " + path);
    if (!d->ssdeep) return hashsieve::Error(hashsieve::ErrorCode::internal, "no ssdeep digest for " + path);
    return from_digests(path, std::move(d).value());
  }
  auto file = hashsieve::MappedFile::open(path);
  if (!file) return std::move(file).error().with_context("reading " + path);
  auto bytes = dg::elf_section_bytes(file->bytes(), sections);
  if (!bytes) return std::move(bytes).error().with_context("ELF sections of " + path);
  auto d = dg::compute_digests(path, *bytes, similarity_only());
  if (!d) return std::move(d).error().with_context("digesting sections of " + path);
  return from_digests(path, std::move(d).value());
}

// Best SDBF score over every (reference segment, query segment) pair, or
// nullopt when either side has no digest.
std::optional<int> best_sdbf(const dg::PreparedSdbfSet& refs, std::size_t first, std::size_t count,
                             const dg::PreparedSdbfSet& query) {
  if (count == 0 || query.size() == 0) return std::nullopt;
  int best = -1;
  for (std::size_t i = first; i < first + count; ++i) {
    for (std::size_t j = 0; j < query.size(); ++j) best = std::max(best, dg::sdbf_score(refs, i, query, j));
  }
  return best;
}

int run(const std::vector<std::string>& sections, const std::string& ref_list, const std::string& query_list,
        std::ostream& out) {
  auto ref_paths = read_list(ref_list);
  auto query_paths = read_list(query_list);
  for (const auto* r : {&ref_paths, &query_paths}) {
    if (!*r) {
      std::cerr << "similarity_scores: " << r->error().message() << "\n";
      return 1;
    }
  }
  if (ref_paths->empty() || query_paths->empty()) {
    std::cerr << "similarity_scores: " << (ref_paths->empty() ? ref_list : query_list) << " lists no files\n";
    return 1;
  }

  std::vector<Digested> refs;
  refs.reserve(ref_paths->size());
  for (const std::string& p : *ref_paths) {
    auto d = digest(p, sections);
    if (!d) {
      std::cerr << "similarity_scores: " << d.error().message() << "\n";
      return 1;
    }
    refs.push_back(std::move(d).value());
  }
  // All reference segments in one prepared set; ref k owns [first[k], first[k] + count[k]).
  std::vector<dg::Sdbf> ref_sdbf;
  std::vector<std::size_t> first(refs.size());
  for (std::size_t k = 0; k < refs.size(); ++k) {
    first[k] = ref_sdbf.size();
    ref_sdbf.insert(ref_sdbf.end(), refs[k].sdbf.begin(), refs[k].sdbf.end());
  }
  const dg::PreparedSdbfSet ref_set(ref_sdbf);

  out << "ref\tquery\tref_size\tquery_size\tsdbf\ttlsh\tssdeep\n";
  std::size_t done = 0;
  for (const std::string& qp : *query_paths) {
    auto q = digest(qp, sections);
    if (!q) {
      std::cerr << "similarity_scores: " << q.error().message() << "\n";
      return 1;
    }
    const dg::PreparedSdbfSet query_set(q->sdbf);
    for (std::size_t k = 0; k < refs.size(); ++k) {
      const Digested& r = refs[k];
      out << r.path << '\t' << q->path << '\t' << r.size << '\t' << q->size << '\t';
      const auto s = best_sdbf(ref_set, first[k], r.sdbf.size(), query_set);
      if (s) out << *s; else out << "NA";
      out << '\t';
      if (r.tlsh && q->tlsh) out << dg::tlsh_distance(*r.tlsh, *q->tlsh); else out << "NA";
      out << '\t';
      if (r.ssdeep && q->ssdeep) {
        auto ss = dg::ssdeep_compare(*r.ssdeep, *q->ssdeep);
        if (!ss) {
          std::cerr << "similarity_scores: " << ss.error().message() << " (" << r.path << " vs " << qp << ")\n";
          return 1;
        }
        out << *ss << '\n';
      } else {
        out << "NA\n";
      }
    }
    if (++done % 500 == 0) std::cerr << "similarity_scores: " << done << "/" << query_paths->size() << " queries\n";
  }
  out.flush();
  if (!out) {
    std::cerr << "similarity_scores: write error on the output\n";
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  std::vector<std::string> sections;
  if (args.size() >= 2 && args[0] == "--sections") {
    std::string_view list = args[1];
    while (!list.empty()) {
      const std::size_t comma = list.find(',');
      const std::string_view name = list.substr(0, comma);
      if (name.empty()) {
        std::cerr << "similarity_scores: empty section name in --sections " << args[1] << "\n";
        return 2;
      }
      sections.emplace_back(name);
      list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
    }
    if (sections.empty()) {
      std::cerr << "similarity_scores: --sections needs at least one name\n";
      return 2;
    }
    args.erase(args.begin(), args.begin() + 2);
  }
  if (args.size() < 2 || args.size() > 3 || args[0].starts_with("-")) {
    std::cerr << "usage: similarity_scores [--sections NAME[,NAME...]] REF_LIST QUERY_LIST [OUT.tsv]\n";
    return 2;
  }
  if (args.size() == 3) {
    std::ofstream out(args[2], std::ios::binary);
    if (!out) {
      std::cerr << "similarity_scores: cannot create " << args[2] << "\n";
      return 1;
    }
    return run(sections, args[0], args[1], out);
  }
  return run(sections, args[0], args[1], std::cout);
}
