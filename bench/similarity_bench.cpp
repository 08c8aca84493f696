// Similarity lookups against 1 M reference files: latency per query file
// (p50, p99) of the SDBF and TLSH index paths, and their recall against
// brute-force scoring (docs/performance.md, "Similarity lookups").
//
// The references. 1 M real files are not at hand, so they are derived from
// real ones in a way that keeps the statistics the index depends on:
//  - world 0: R real files under /usr/lib (sorted path order, every k-th
//    regular file of 512 B .. 4 MB), whole;
//  - worlds 1..W: the same files, each cut to a random window of at most
//    16 KiB and passed through a byte substitution (a random permutation of
//    the 256 byte values, one per world), with a few random byte edits in a
//    third of them.
// A byte substitution keeps each 64-byte window's byte histogram, so SDBF's
// entropy ranks, and with them which windows become features, are exactly
// those of real files; it changes every feature's bytes, so the worlds do not
// match each other. Within a world, content the real files share (runtime
// code, headers) is shared as in the real corpus, so posting lengths are those
// of R real files while the number of distinct keys is that of W x R files.
//
// The queries are real files: refs of world 0 unchanged, with 0.5 % byte
// edits, with an inserted random run, truncated to 50-95 %, and real files
// that are not in the set, in equal parts.
//
// Each lookup is timed by wall clock and by its thread's CPU time (the
// machine is shared); TLSH is timed twice per pass, with the index pruning
// by the digests it keeps (the default) and without (every reference
// sharing a group value, scored by the caller, as before format 2).
//
// Generated references are cached (HASHSIEVE_SIM_CACHE, default
// /tmp/hashsieve-simbench/<parameters and a hash of the real files chosen>): similarity.idx as `refset build`
// writes it, refs.sdbf and refs.tlsh. Environment: HASHSIEVE_SIM_REFS
// (default 1000000), HASHSIEVE_SIM_REAL (3000), HASHSIEVE_SIM_QUERIES (1000),
// HASHSIEVE_SIM_THREADS (2, generation and brute force only; lookups are
// timed on one thread).
#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <climits>
#include <ctime>
#include <vector>

#include "hashsieve/core/file.h"
#include "hashsieve/digest/file_digests.h"
#include "hashsieve/digest/sdbf.h"
#include "hashsieve/digest/sdbf_compare.h"
#include "hashsieve/digest/tlsh.h"
#include "hashsieve/refset/catalog.h"
#include "hashsieve/refset/similarity_index.h"

namespace {

namespace fs = std::filesystem;
using hashsieve::digest::Sdbf;
using hashsieve::digest::TlshDigest;
using Bytes = std::vector<std::uint8_t>;
using Clock = std::chrono::steady_clock;

std::size_t env_size(const char* name, std::size_t fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? static_cast<std::size_t>(std::strtoull(v, nullptr, 10)) : fallback;
}

Bytes read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), {});
}

std::vector<fs::path> real_files(std::size_t want) {
  std::vector<fs::path> all;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator("/usr/lib", fs::directory_options::skip_permission_denied, ec);
       it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) break;
    if (it->is_symlink(ec) || !it->is_regular_file(ec)) continue;
    const auto size = it->file_size(ec);
    if (!ec && size >= 512 && size <= (4u << 20)) all.push_back(it->path());
  }
  std::sort(all.begin(), all.end());
  std::vector<fs::path> out;
  const std::size_t step = std::max<std::size_t>(1, all.size() / want);
  for (std::size_t i = 0; i < all.size() && out.size() < want; i += step) out.push_back(all[i]);
  return out;
}

// Reference `id` of the synthetic corpus (see the file comment).
Bytes make_reference(std::size_t id, const std::vector<Bytes>& real,
                     const std::vector<std::array<std::uint8_t, 256>>& perms) {
  const std::size_t world = id / real.size();
  const Bytes& src = real[id % real.size()];
  if (world == 0) return src;
  std::mt19937_64 rng(0x5eed0000 + id);
  constexpr std::size_t kMaxWindow = 16 << 10;
  const std::size_t len = std::min(src.size(), kMaxWindow);
  const std::size_t off = src.size() > len ? rng() % (src.size() - len + 1) : 0;
  const auto& perm = perms[(world - 1) % perms.size()];
  Bytes out(len);
  for (std::size_t i = 0; i < len; ++i) out[i] = perm[src[off + i]];
  if (rng() % 3 == 0) {
    for (int e = 0; e < 8; ++e) out[rng() % len] = static_cast<std::uint8_t>(rng());
  }
  return out;
}

struct Corpus {
  std::vector<Sdbf> sdbf;
  std::vector<TlshDigest> tlsh;
  std::optional<hashsieve::refset::SimilarityIndex> index;
};

// Generates (or loads from the cache) the references and their index.
Corpus load_or_generate(const fs::path& cache, std::size_t refs, const std::vector<Bytes>& real, unsigned threads) {
  const fs::path idx = cache / "similarity.idx";
  if (!fs::exists(idx)) {
    std::fprintf(stderr, "generating %zu references into %s ...\n", refs, cache.c_str());
    const auto t0 = Clock::now();
    fs::create_directories(cache);
    std::vector<std::array<std::uint8_t, 256>> perms(4096);
    std::mt19937_64 prng(42);
    for (auto& p : perms) {
      for (int i = 0; i < 256; ++i) p[i] = static_cast<std::uint8_t>(i);
      std::shuffle(p.begin(), p.end(), prng);
    }
    hashsieve::refset::SimilarityIndexWriter writer;
    std::ofstream sdbf_out(cache / "refs.sdbf.tmp", std::ios::binary);
    std::ofstream tlsh_out(cache / "refs.tlsh.tmp", std::ios::binary);
    std::uint32_t sdbf_count = 0, tlsh_count = 0;
    constexpr std::size_t kChunk = 4096;
    struct Made {
      std::string sdbf_line;
      std::optional<TlshDigest> tlsh;
      std::vector<std::uint32_t> keys;
    };
    std::vector<Made> chunk(kChunk);
    hashsieve::digest::DigestSelection selection;
    selection.crypto = hashsieve::digest::CryptoSelection::none();
    selection.ssdeep = false;
    for (std::size_t base = 0; base < refs; base += kChunk) {
      const std::size_t n = std::min(kChunk, refs - base);
      std::atomic<std::size_t> next{0};
      auto work = [&] {
        for (std::size_t i; (i = next.fetch_add(1)) < n;) {
          const Bytes bytes = make_reference(base + i, real, perms);
          std::string name = "r";
          name += std::to_string(base + i);
          auto d = hashsieve::digest::compute_digests(name, bytes, selection);
          Made& m = chunk[i];
          m.sdbf_line.clear();
          m.tlsh.reset();
          m.keys.clear();
          if (!d.ok()) continue;
          if (!d->sdbf.empty()) m.sdbf_line = hashsieve::digest::format_sdbf(d->sdbf[0]);
          m.tlsh = d->tlsh;
          m.keys = hashsieve::refset::sample_content_keys(bytes);
        }
      };
      std::vector<std::thread> pool;
      for (unsigned t = 1; t < threads; ++t) pool.emplace_back(work);
      work();
      for (auto& t : pool) t.join();
      for (std::size_t i = 0; i < n; ++i) {
        if (!chunk[i].sdbf_line.empty()) {
          sdbf_out << chunk[i].sdbf_line;
          writer.add_sdbf(sdbf_count++, chunk[i].keys);
        }
        if (chunk[i].tlsh) {
          tlsh_out << chunk[i].tlsh->to_string() << '\n';
          writer.add_tlsh(tlsh_count++, *chunk[i].tlsh);
        }
      }
      if ((base / kChunk) % 25 == 0) std::fprintf(stderr, "  %zu / %zu\n", base + n, refs);
    }
    sdbf_out.close();
    tlsh_out.close();
    if (auto st = writer.write((cache / "similarity.idx.tmp").string(), sdbf_count, tlsh_count); !st.ok()) {
      std::fprintf(stderr, "%s\n", st.error().message().c_str());
      std::exit(1);
    }
    fs::rename(cache / "refs.sdbf.tmp", cache / "refs.sdbf");
    fs::rename(cache / "refs.tlsh.tmp", cache / "refs.tlsh");
    fs::rename(cache / "similarity.idx.tmp", idx);
    std::fprintf(stderr, "generated in %.1f s\n", std::chrono::duration<double>(Clock::now() - t0).count());
  }
  Corpus c;
  const auto t0 = Clock::now();
  auto file = hashsieve::MappedFile::open((cache / "refs.sdbf").string());
  auto parsed = hashsieve::digest::parse_sdbf_lines(
      {reinterpret_cast<const char*>(file->bytes().data()), file->bytes().size()});
  if (!parsed.ok()) {
    std::fprintf(stderr, "%s\n", parsed.error().message().c_str());
    std::exit(1);
  }
  c.sdbf = std::move(parsed).value();
  std::ifstream tin(cache / "refs.tlsh");
  for (std::string line; std::getline(tin, line);) c.tlsh.push_back(*TlshDigest::parse(line));
  const auto t1 = Clock::now();
  auto index = hashsieve::refset::SimilarityIndex::open(idx.string());
  if (!index.ok()) {
    std::fprintf(stderr, "%s\n", index.error().message().c_str());
    std::exit(1);
  }
  c.index = std::move(index).value();
  std::fprintf(stderr, "loaded %zu SDBF and %zu TLSH references in %.1f s; index %.0f MB opened in %.2f s\n",
               c.sdbf.size(), c.tlsh.size(), std::chrono::duration<double>(t1 - t0).count(),
               c.index->file_bytes() / 1e6, std::chrono::duration<double>(Clock::now() - t1).count());
  return c;
}

struct Query {
  std::string kind;
  std::size_t size = 0;
  std::size_t candidates = 0;
  std::vector<Sdbf> sdbf;
  std::optional<TlshDigest> tlsh;
  std::vector<std::uint32_t> keys;
};

// CPU time of this thread: on a shared machine, time spent waiting for a
// core is not the lookup's.
double thread_cpu_us() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e6 + static_cast<double>(ts.tv_nsec) / 1e3;
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

}  // namespace

int main() {
  const std::size_t refs = env_size("HASHSIEVE_SIM_REFS", 1000000);
  const std::size_t nreal = env_size("HASHSIEVE_SIM_REAL", 3000);
  const std::size_t nqueries = env_size("HASHSIEVE_SIM_QUERIES", 1000);
  const unsigned threads = static_cast<unsigned>(std::max<std::size_t>(1, env_size("HASHSIEVE_SIM_THREADS", 2)));
  const int min_score = hashsieve::refset::kSdbfIndexedMinScore;
  // For experiments: HASHSIEVE_SIM_TLSH_ONLY=1 skips the SDBF brute force.
  const bool tlsh_only = env_size("HASHSIEVE_SIM_TLSH_ONLY", 0) != 0;
  const auto tlsh_max_posting = static_cast<std::uint32_t>(
      env_size("HASHSIEVE_SIM_TLSH_MAX_POSTING", hashsieve::refset::kTlshMaxPostingRead));
  const unsigned tlsh_min_shared =
      static_cast<unsigned>(env_size("HASHSIEVE_SIM_TLSH_MIN_SHARED", hashsieve::refset::kTlshMinSharedGroups));
  const int max_distance = hashsieve::refset::kTlshIndexedMaxDistance;

  // Real files: the first nreal are world 0 of the references, the rest are
  // queries that are not in the set.
  const std::size_t unrelated = nqueries / 5;
  const auto paths = real_files(nreal + unrelated);
  if (paths.size() < nreal + unrelated) {
    std::fprintf(stderr, "only %zu usable files under /usr/lib\n", paths.size());
    return 1;
  }
  // The cache is keyed by the real files chosen (paths and sizes), which
  // change when packages are installed.
  std::uint64_t files_hash = 1469598103934665603ULL;
  for (std::size_t i = 0; i < nreal; ++i) {
    std::error_code ec;
    std::string id = paths[i].string();
    id += '\t';
    id += std::to_string(fs::file_size(paths[i], ec));
    for (const char ch : id) files_hash = (files_hash ^ static_cast<unsigned char>(ch)) * 1099511628211ULL;
  }
  const char* cache_env = std::getenv("HASHSIEVE_SIM_CACHE");
  char hash_hex[17];
  std::snprintf(hash_hex, sizeof hash_hex, "%016llx", static_cast<unsigned long long>(files_hash));
  // "v4": similarity.idx format 2 (TLSH digests in the index).
  std::string cache_name = "v4-refs";
  cache_name += std::to_string(refs) + "-real" + std::to_string(nreal) + "-" + hash_hex;
  const fs::path cache = fs::path(cache_env != nullptr ? cache_env : "/tmp/hashsieve-simbench") / cache_name;
  std::vector<Bytes> real;
  for (std::size_t i = 0; i < nreal; ++i) real.push_back(read_file(paths[i]));
  Corpus corpus = load_or_generate(cache, refs, real, threads);

  std::vector<Query> queries;
  std::mt19937_64 rng(7);
  for (std::size_t q = 0; q < nqueries; ++q) {
    Bytes b;
    std::string kind;
    const Bytes& src = real[(q / 5 * 7919) % nreal];
    switch (q % 5) {
      case 0: b = src, kind = "same"; break;
      case 1:
        b = src, kind = "edits";
        for (std::size_t e = 0; e < std::max<std::size_t>(1, b.size() / 200); ++e) b[rng() % b.size()] = static_cast<std::uint8_t>(rng());
        break;
      case 2: {
        b = src, kind = "insert";
        Bytes extra(512 + rng() % 4096);
        for (auto& x : extra) x = static_cast<std::uint8_t>(rng());
        b.insert(b.begin() + static_cast<std::ptrdiff_t>(rng() % b.size()), extra.begin(), extra.end());
        break;
      }
      case 3: b = src, kind = "truncate", b.resize(b.size() * (50 + rng() % 46) / 100); break;
      default: b = read_file(paths[nreal + q / 5]), kind = "unrelated"; break;
    }
    std::string name = "q";
    name += std::to_string(q);
    auto d = hashsieve::digest::compute_digests(name, b,
                                                {hashsieve::digest::CryptoSelection::none(), true, true, false, {}});
    Query query;
    query.kind = kind;
    query.size = b.size();
    query.sdbf = std::move(d->sdbf);
    query.tlsh = d->tlsh;
    query.keys = hashsieve::refset::sample_content_keys(b);
    queries.push_back(std::move(query));
  }

  // Content keys cost, for the record: one pass over the real files.
  {
    std::size_t bytes = 0;
    const auto t0 = Clock::now();
    for (const auto& r : real) {
      auto k = hashsieve::refset::sample_content_keys(r);
      bytes += r.size() + (k.empty() ? 0 : 0);
    }
    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
    std::printf("content keys: %.0f MB/s over %zu real files\n", bytes / s / 1e6, real.size());
  }

  // Brute force (the truth), on `threads` threads.
  std::fprintf(stderr, "brute force over %zu queries ...\n", queries.size());
  const hashsieve::digest::PreparedSdbfSet prepared(corpus.sdbf);
  std::vector<std::vector<std::uint32_t>> bf_sdbf(queries.size()), bf_tlsh(queries.size());
  {
    std::atomic<std::size_t> next{0};
    auto work = [&] {
      std::vector<int> scores(corpus.sdbf.size());
      for (std::size_t q; (q = next.fetch_add(1)) < queries.size();) {
        for (const auto& d : queries[q].sdbf) {
          if (tlsh_only) break;
          const std::vector<Sdbf> one{d};
          const hashsieve::digest::PreparedSdbfSet qs(one);
          hashsieve::digest::sdbf_score_row(qs, 0, prepared, 0, scores);
          for (std::size_t j = 0; j < scores.size(); ++j) {
            if (scores[j] >= min_score) bf_sdbf[q].push_back(static_cast<std::uint32_t>(j));
          }
        }
        if (queries[q].tlsh) {
          for (std::size_t j = 0; j < corpus.tlsh.size(); ++j) {
            if (hashsieve::digest::tlsh_distance(*queries[q].tlsh, corpus.tlsh[j]) <= max_distance) {
              bf_tlsh[q].push_back(static_cast<std::uint32_t>(j));
            }
          }
        }
      }
    };
    std::vector<std::thread> pool;
    for (unsigned t = 1; t < threads; ++t) pool.emplace_back(work);
    work();
    for (auto& t : pool) t.join();
  }

  // Index lookups, timed on this thread: candidates, then exact scoring, as
  // LoadedRefset::similar does. A warm-up pass, then kTimedPasses timed ones;
  // a query's latency is its median over those (the machine is shared, and a
  // single pass would time the neighbours' bursts as much as ours). Each
  // lookup gets its wall time and its thread CPU time.
  //
  // TLSH runs two variants in every pass, each over all queries (so neither
  // finds the other's postings in the cache; which goes first alternates):
  // "pruned", the index dropping candidates beyond the distance by the
  // digests it keeps (the default, as LoadedRefset::similar calls it), and
  // "unpruned", every reference sharing a group value (max_distance INT_MAX,
  // as before format 2), scored by the caller.
  constexpr int kTimedPasses = 5;
  constexpr int kVariants = 2;
  const char* const kVariantName[kVariants] = {"pruned", "unpruned"};
  std::vector<double> sdbf_us(queries.size()), sdbf_cpu(queries.size());
  std::vector<std::vector<double>> sdbf_runs(queries.size()), sdbf_cpu_runs(queries.size());
  std::vector<std::vector<double>> tlsh_us(kVariants, std::vector<double>(queries.size())),
      tlsh_cpu(kVariants, std::vector<double>(queries.size()));
  std::vector<std::vector<std::vector<double>>> tlsh_runs(kVariants, std::vector<std::vector<double>>(queries.size())),
      tlsh_cpu_runs(kVariants, std::vector<std::vector<double>>(queries.size()));
  std::vector<std::vector<std::uint32_t>> ix_sdbf(queries.size());
  std::vector<std::vector<std::vector<std::uint32_t>>> ix_tlsh(kVariants,
                                                               std::vector<std::vector<std::uint32_t>>(queries.size()));
  std::size_t sdbf_candidates = 0;
  std::array<std::size_t, kVariants> tlsh_candidates{};
  std::vector<std::uint32_t> cand;
  for (int pass = 0; pass <= kTimedPasses; ++pass) {
    sdbf_candidates = 0;
    for (std::size_t q = 0; q < queries.size() && !tlsh_only; ++q) {
      ix_sdbf[q].clear();
      if (queries[q].sdbf.empty()) continue;
      const double c0 = thread_cpu_us();
      const auto t0 = Clock::now();
      corpus.index->sdbf_candidates(queries[q].keys, cand, hashsieve::refset::kSdbfMinSharedKeys);
      sdbf_candidates += cand.size();
      queries[q].candidates = cand.size();
      for (const auto& d : queries[q].sdbf) {
        for (const auto j : cand) {
          if (hashsieve::digest::sdbf_score(d, corpus.sdbf[j]) >= min_score) ix_sdbf[q].push_back(j);
        }
      }
      const auto t1 = Clock::now();
      const double c1 = thread_cpu_us();
      if (pass == 0) continue;
      sdbf_runs[q].push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
      sdbf_cpu_runs[q].push_back(c1 - c0);
    }
    for (int k = 0; k < kVariants; ++k) {
      const int v = (pass + k) % kVariants;
      const int max_d = v == 0 ? hashsieve::refset::kTlshCandidateMaxDistance : INT_MAX;
      tlsh_candidates[v] = 0;
      for (std::size_t q = 0; q < queries.size(); ++q) {
        ix_tlsh[v][q].clear();
        if (!queries[q].tlsh) continue;
        const double c0 = thread_cpu_us();
        const auto t0 = Clock::now();
        corpus.index->tlsh_candidates(*queries[q].tlsh, cand, tlsh_min_shared, tlsh_max_posting, max_d);
        tlsh_candidates[v] += cand.size();
        // As LoadedRefset::similar: prefetch the digests a few candidates ahead.
        for (std::size_t i = 0; i < cand.size(); ++i) {
          if (i + 8 < cand.size()) __builtin_prefetch(&corpus.tlsh[cand[i + 8]]);
          const auto j = cand[i];
          if (hashsieve::digest::tlsh_distance(*queries[q].tlsh, corpus.tlsh[j]) <= max_distance) {
            ix_tlsh[v][q].push_back(j);
          }
        }
        const auto t1 = Clock::now();
        const double c1 = thread_cpu_us();
        if (pass == 0) continue;
        tlsh_runs[v][q].push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
        tlsh_cpu_runs[v][q].push_back(c1 - c0);
      }
    }
  }
  for (std::size_t q = 0; q < queries.size(); ++q) {
    sdbf_us[q] = percentile(sdbf_runs[q], 0.5);
    sdbf_cpu[q] = percentile(sdbf_cpu_runs[q], 0.5);
    for (int v = 0; v < kVariants; ++v) {
      tlsh_us[v][q] = percentile(tlsh_runs[v][q], 0.5);
      tlsh_cpu[v][q] = percentile(tlsh_cpu_runs[v][q], 0.5);
    }
  }

  auto recall = [&](const std::vector<std::vector<std::uint32_t>>& truth,
                    const std::vector<std::vector<std::uint32_t>>& got, std::size_t& total, std::size_t& found) {
    total = found = 0;
    for (std::size_t q = 0; q < truth.size(); ++q) {
      for (const auto j : truth[q]) {
        ++total;
        found += std::binary_search(got[q].begin(), got[q].end(), j) ? 1 : 0;
      }
    }
    return total == 0 ? 1.0 : static_cast<double>(found) / static_cast<double>(total);
  };
  for (auto& v : ix_sdbf) std::sort(v.begin(), v.end());
  std::size_t st = 0, sf = 0;
  const double sdbf_recall = recall(bf_sdbf, ix_sdbf, st, sf);
  std::vector<double> sdbf_with, sdbf_cpu_with;
  std::vector<std::vector<double>> tlsh_with(kVariants), tlsh_cpu_with(kVariants);
  std::size_t nsdbf = 0, ntlsh = 0;
  for (std::size_t q = 0; q < queries.size(); ++q) {
    if (!queries[q].sdbf.empty()) {
      ++nsdbf;
      sdbf_with.push_back(sdbf_us[q]);
      sdbf_cpu_with.push_back(sdbf_cpu[q]);
    }
    if (queries[q].tlsh) {
      ++ntlsh;
      for (int v = 0; v < kVariants; ++v) {
        tlsh_with[v].push_back(tlsh_us[v][q]);
        tlsh_cpu_with[v].push_back(tlsh_cpu[v][q]);
      }
    }
  }
  std::printf("references: %zu SDBF, %zu TLSH; queries: %zu (%zu with SDBF, %zu with TLSH)\n", corpus.sdbf.size(),
              corpus.tlsh.size(), queries.size(), nsdbf, ntlsh);
  if (!tlsh_only) {
    std::printf("SDBF >= %d: p50 %.1f us, p90 %.1f us, p99 %.1f us, max %.1f us; CPU p50 %.1f us, p99 %.1f us; "
                "mean candidates %.1f; recall %zu/%zu = %.4f\n",
                min_score, percentile(sdbf_with, 0.5), percentile(sdbf_with, 0.9), percentile(sdbf_with, 0.99),
                percentile(sdbf_with, 1.0), percentile(sdbf_cpu_with, 0.5), percentile(sdbf_cpu_with, 0.99),
                static_cast<double>(sdbf_candidates) / std::max<std::size_t>(1, nsdbf), sf, st, sdbf_recall);
  }
  for (int v = 0; v < kVariants; ++v) {
    std::size_t tt = 0, tf = 0;
    const double tlsh_recall = recall(bf_tlsh, ix_tlsh[v], tt, tf);
    std::printf("TLSH <= %d (%s): p50 %.1f us, p90 %.1f us, p99 %.1f us, max %.1f us; CPU p50 %.1f us, p99 %.1f us; "
                "mean candidates %.1f; recall %zu/%zu = %.4f\n",
                max_distance, kVariantName[v], percentile(tlsh_with[v], 0.5), percentile(tlsh_with[v], 0.9),
                percentile(tlsh_with[v], 0.99), percentile(tlsh_with[v], 1.0), percentile(tlsh_cpu_with[v], 0.5),
                percentile(tlsh_cpu_with[v], 0.99),
                static_cast<double>(tlsh_candidates[v]) / std::max<std::size_t>(1, ntlsh), tf, tt, tlsh_recall);
  }
  // The slowest SDBF queries, so the tail can be explained.
  {
    std::vector<std::size_t> order(queries.size());
    for (std::size_t q = 0; q < order.size(); ++q) order[q] = q;
    std::sort(order.begin(), order.end(), [&](auto a, auto b) { return sdbf_us[a] > sdbf_us[b]; });
    for (std::size_t i = 0; i < std::min<std::size_t>(5, order.size()); ++i) {
      const Query& q = queries[order[i]];
      std::printf("  slow SDBF query: %s, %zu bytes, %zu filters, %zu keys, %zu candidates, %zu hits: %.0f us\n",
                  q.kind.c_str(), q.size, q.sdbf.empty() ? 0 : q.sdbf[0].filter_count(), q.keys.size(), q.candidates,
                  ix_sdbf[order[i]].size(), sdbf_us[order[i]]);
    }
  }
  // Per kind of query, so a weak spot shows.
  for (const char* kind : {"same", "edits", "insert", "truncate", "unrelated"}) {
    std::size_t t1 = 0, f1 = 0, t2 = 0, f2 = 0;
    std::vector<double> a, b;
    for (std::size_t q = 0; q < queries.size(); ++q) {
      if (queries[q].kind != kind) continue;
      for (const auto j : bf_sdbf[q]) ++t1, f1 += std::binary_search(ix_sdbf[q].begin(), ix_sdbf[q].end(), j);
      for (const auto j : bf_tlsh[q]) ++t2, f2 += std::binary_search(ix_tlsh[0][q].begin(), ix_tlsh[0][q].end(), j);
      if (!queries[q].sdbf.empty()) a.push_back(sdbf_us[q]);
      if (queries[q].tlsh) b.push_back(tlsh_us[0][q]);
    }
    std::printf("  %-9s SDBF recall %zu/%zu, p50 %.1f us, p99 %.1f us | TLSH recall %zu/%zu, p50 %.1f us, p99 %.1f us\n",
                kind, f1, t1, percentile(a, 0.5), percentile(a, 0.99), f2, t2, percentile(b, 0.5), percentile(b, 0.99));
  }
  return 0;
}
