// Queue throughput of both JobQueue backends, the way the workers use them:
// N publishes (RabbitMQ: persistent + publisher confirm each; embedded:
// one fsync'd transaction each), then N receive + ack with C consumer
// threads sharing one queue object. Starts its own rabbitmq-server
// (tests/support/rabbitmq_fixture.h); prints one line per backend and phase.
//   queue_throughput [MESSAGES] [CONSUMER_THREADS] [BODY_BYTES]
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "hashsieve/queue/job_queue.h"
#include "hashsieve/queue/rabbitmq_queue.h"
#include "rabbitmq_fixture.h"

namespace {

using hashsieve::queue::JobQueue;
using Steady = std::chrono::steady_clock;

double seconds_since(Steady::time_point t) { return std::chrono::duration<double>(Steady::now() - t).count(); }

bool run(const char* name, JobQueue& q, int messages, int consumers, std::size_t body_bytes) {
  const std::string body(body_bytes, 'x');
  auto t0 = Steady::now();
  for (int i = 0; i < messages; ++i) {
    if (auto s = q.publish({"job:" + std::to_string(i), body}); !s.ok()) {
      std::fprintf(stderr, "%s publish: %s\n", name, s.error().message().c_str());
      return false;
    }
  }
  const double publish_s = seconds_since(t0);
  std::atomic<int> consumed{0};
  std::atomic<bool> failed{false};
  t0 = Steady::now();
  std::vector<std::thread> threads;
  for (int c = 0; c < consumers; ++c) {
    threads.emplace_back([&] {
      while (consumed.load() < messages && !failed.load()) {
        auto d = q.receive(std::chrono::milliseconds(200));
        if (!d.ok()) {
          failed = true;
          return;
        }
        if (!d->has_value()) continue;
        if (!q.ack(**d).ok()) failed = true;
        ++consumed;
      }
    });
  }
  for (auto& t : threads) t.join();
  const double consume_s = seconds_since(t0);
  if (failed.load()) {
    std::fprintf(stderr, "%s: consume failed\n", name);
    return false;
  }
  std::printf("%-9s publish (durable, confirmed) %6d msgs %7.2f s %8.0f msg/s | receive+ack %d threads %7.2f s %8.0f msg/s\n",
              name, messages, publish_s, messages / publish_s, consumers, consume_s, messages / consume_s);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  const int messages = argc > 1 ? std::atoi(argv[1]) : 5000;
  const int consumers = argc > 2 ? std::atoi(argv[2]) : 2;
  const std::size_t body = argc > 3 ? static_cast<std::size_t>(std::atoi(argv[3])) : 64;
  if (messages <= 0 || consumers <= 0) {
    std::fprintf(stderr, "usage: queue_throughput [MESSAGES>0] [CONSUMER_THREADS>0] [BODY_BYTES]\n");
    return 2;
  }
  hashsieve::testsupport::RabbitMqFixture broker;
  if (auto why = broker.start(); !why.empty()) {
    std::fprintf(stderr, "rabbitmq: %s\n", why.c_str());
    return 1;
  }
  hashsieve::queue::RabbitMqOptions ro;
  ro.queue = "bench";
  ro.prefetch = static_cast<std::uint16_t>(consumers);
  auto rq = hashsieve::queue::open_rabbitmq_queue(broker.url(), {}, ro);
  if (!rq.ok()) {
    std::fprintf(stderr, "%s\n", rq.error().message().c_str());
    return 1;
  }
  std::string tmpl = (std::filesystem::temp_directory_path() / "hashsieve-qbench-XXXXXX").string();
  const std::string dir = ::mkdtemp(tmpl.data());
  auto sq = hashsieve::queue::open_sqlite_queue(dir);
  if (!sq.ok()) {
    std::fprintf(stderr, "%s\n", sq.error().message().c_str());
    return 1;
  }
  const bool ok = run("rabbitmq", **rq, messages, consumers, body) && run("embedded", **sq, messages, consumers, body);
  std::filesystem::remove_all(dir);
  return ok ? 0 : 1;
}
