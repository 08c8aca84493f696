// Webhook load: starts hashsieve serve in-process (temporary data dir, crawler
// off, one worker whose scans fail fast against an unreachable registry) and
// sends EVENTS manifest-push notifications over CONNECTIONS keep-alive
// connections, one event per envelope, every digest distinct. Reports the
// latency percentiles of the 202s and checks that the job store holds exactly
// one job per digest (none lost, none doubled).
//
//   webhook_load [EVENTS=10000] [CONNECTIONS=8] [DUPLICATE_EVERY=0] [FSYNC=1] [WORKERS=1]
// DUPLICATE_EVERY=k re-sends every k-th envelope once more (deduplication).
#include <httplib.h>
#include <stdlib.h>

#include <algorithm>
#include <cstdlib>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "hashsieve/service/service.h"
#include "hashsieve/store/job_store.h"

namespace {

std::string digest_of(std::size_t i) {
  static const char* hex = "0123456789abcdef";
  std::string d = "sha256:";
  // Distinct, valid: the index spread over 64 hex digits.
  std::uint64_t x = i * 0x9E3779B97F4A7C15ull + 1;
  for (int k = 0; k < 64; ++k) {
    x ^= x >> 29;
    x *= 0xBF58476D1CE4E5B9ull;
    d += hex[(x >> 60) & 15];
  }
  return d;
}

std::string envelope(std::size_t i) {
  const std::string d = digest_of(i);
  return R"({"events":[{"id":"ev-)" + std::to_string(i) +
         R"(","action":"push","target":{"mediaType":"application/vnd.oci.image.manifest.v1+json","size":500,"digest":")" +
         d + R"(","repository":"load/app)" + std::to_string(i % 50) + R"(","tag":"t)" + std::to_string(i) +
         R"("}}]})";
}

}  // namespace

int main(int argc, char** argv) {
  const std::size_t events = argc > 1 ? std::stoul(argv[1]) : 10000;
  const int connections = argc > 2 ? std::stoi(argv[2]) : 8;
  const std::size_t duplicate_every = argc > 3 ? std::stoul(argv[3]) : 0;
  const bool fsync = argc > 4 ? std::string(argv[4]) != "0" : true;
  const int workers = argc > 5 ? std::stoi(argv[5]) : 1;
  std::string tmpl = (std::filesystem::temp_directory_path() / "hashsieve-webhook-load-XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) return 1;
  const std::string data_dir = tmpl;

  hashsieve::service::ServiceConfig config;
  config.data_dir = data_dir;
  config.listen.port = 0;
  config.listen.threads = static_cast<int>(connections) + 2;
  config.webhook.token = "Bearer load";
  config.api_tokens = {"api"};
  config.registry.host = "127.0.0.1:1";  // nothing listens: scans fail fast
  config.registry.insecure = true;
  config.crawler.enabled = false;
  config.workers.count = workers;
  config.storage.fsync = fsync;
  config.workers.stop_deadline = std::chrono::seconds(5);
  auto svc = hashsieve::service::Service::create(config);
  if (!svc) {
    std::fprintf(stderr, "webhook_load: %s\n", svc.error().message().c_str());
    return 1;
  }
  if (auto st = (*svc)->start(); !st) {
    std::fprintf(stderr, "webhook_load: %s\n", st.error().message().c_str());
    return 1;
  }
  const int port = (*svc)->port();

  std::atomic<std::size_t> next{0};
  std::atomic<std::size_t> failures{0};
  std::vector<std::vector<double>> latencies(static_cast<std::size_t>(connections));
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (int c = 0; c < connections; ++c) {
    threads.emplace_back([&, c] {
      httplib::Client client("127.0.0.1", port);
      client.set_keep_alive(true);
      client.set_tcp_nodelay(true);
      const httplib::Headers headers = {{"Authorization", "Bearer load"}};
      auto send = [&](std::size_t i) {
        const std::string body = envelope(i);
        const auto s = std::chrono::steady_clock::now();
        auto r = client.Post("/v1/registry/events", headers, body,
                             "application/vnd.docker.distribution.events.v1+json");
        const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - s).count();
        if (!r || r->status != 202) {
          failures.fetch_add(1);
          if (r) std::fprintf(stderr, "status %d: %s\n", r->status, r->body.c_str());
          return;
        }
        latencies[static_cast<std::size_t>(c)].push_back(ms);
      };
      for (std::size_t i; (i = next.fetch_add(1)) < events;) {
        send(i);
        if (duplicate_every != 0 && i % duplicate_every == 0) send(i);
      }
    });
  }
  for (auto& t : threads) t.join();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  // The group committer's batches (ADR 0017): how many commits the burst
  // cost, from the service's own histogram (absent before group commit).
  double batch_sum = 0, batch_count = 0;
  {
    const std::string text = (*svc)->metrics().render();
    auto value_of = [&](const std::string& name) {
      const auto at = text.find("\n" + name + " ");
      return at == std::string::npos ? 0.0 : std::strtod(text.c_str() + at + name.size() + 2, nullptr);
    };
    batch_sum = value_of("hashsieve_enqueue_batch_requests_sum");
    batch_count = value_of("hashsieve_enqueue_batch_requests_count");
  }
  (*svc)->stop();

  std::vector<double> all;
  for (const auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
  std::sort(all.begin(), all.end());
  auto pct = [&](double p) {
    return all.empty() ? 0.0 : all[std::min(all.size() - 1, static_cast<std::size_t>(p * static_cast<double>(all.size())))];
  };
  std::size_t jobs = 0;
  if (auto store = hashsieve::store::open_sqlite_job_store(data_dir); store) {
    if (auto counts = (*store)->count_jobs_by_state(); counts) {
      for (auto n : *counts) jobs += n;
    }
  }
  std::printf("fsync %s  workers %d\n", fsync ? "on" : "off", workers);
  std::printf("events %zu  connections %d  requests %zu  failed %zu  time %.2f s  (%.0f req/s)\n", events, connections,
              all.size(), failures.load(), seconds, static_cast<double>(all.size()) / seconds);
  std::printf("latency ms: p50 %.2f  p90 %.2f  p99 %.2f  max %.2f\n", pct(0.50), pct(0.90), pct(0.99),
              all.empty() ? 0.0 : all.back());
  if (batch_count > 0) {
    std::printf("group commits %.0f  requests per commit %.2f\n", batch_count, batch_sum / batch_count);
  }
  std::printf("jobs in store %zu (distinct digests %zu): %s\n", jobs, events, jobs == events ? "none lost" : "MISMATCH");
  std::error_code ec;
  std::filesystem::remove_all(data_dir, ec);
  return failures.load() == 0 && jobs == events ? 0 : 1;
}
