// The JobQueue contract (job_queue.h), run against both backends: embedded
// SQLite and RabbitMQ (a real rabbitmq-server started once for the binary by
// tests/support/rabbitmq_fixture.h; its cases skip when it is missing).
// Real clocks throughout: the broker cannot be driven by a ManualClock, so
// delays and leases here are short and the assertions bound them loosely.
// RabbitMQ-only behaviour (broker restarts, consumers dying) follows.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <filesystem>
#include <functional>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "hashsieve/queue/job_queue.h"
#include "hashsieve/queue/rabbitmq_queue.h"
#include "rabbitmq_fixture.h"

namespace hashsieve::queue {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using Steady = std::chrono::steady_clock;

testsupport::RabbitMqFixture* g_broker = nullptr;
std::string g_broker_error;

class BrokerEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    g_broker = new testsupport::RabbitMqFixture();
    g_broker_error = g_broker->start();
  }
  void TearDown() override {
    delete g_broker;
    g_broker = nullptr;
  }
};
const auto* const kEnv = ::testing::AddGlobalTestEnvironment(new BrokerEnvironment);

std::string unique_name(const std::string& prefix) {
  static std::atomic<int> n{0};
  std::random_device rd;
  return prefix + "." + std::to_string(::getpid()) + "." + std::to_string(rd() % 1000000) + "." +
         std::to_string(n++);
}

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "hashsieve-queue-conf-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() { fs::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// One queue "place" per test: a data dir or a broker queue name. Every open()
// of the same Place sees the same messages (a reopen, another consumer).
class Place {
 public:
  virtual ~Place() = default;
  virtual Result<std::unique_ptr<JobQueue>> open(std::uint32_t max_attempts, milliseconds lease) = 0;
  // How long until a delivery whose consumer vanished is delivered again.
  virtual milliseconds redelivery_wait(milliseconds lease) const = 0;
};

class SqlitePlace final : public Place {
 public:
  Result<std::unique_ptr<JobQueue>> open(std::uint32_t max_attempts, milliseconds lease) override {
    QueueOptions o;
    o.max_attempts = max_attempts;
    o.lease = lease;
    o.poll_interval = milliseconds(5);
    return open_sqlite_queue(dir_.path(), o);
  }
  milliseconds redelivery_wait(milliseconds lease) const override { return lease + milliseconds(500); }

 private:
  TempDir dir_;
};

class RabbitPlace final : public Place {
 public:
  Result<std::unique_ptr<JobQueue>> open(std::uint32_t max_attempts, milliseconds lease) override {
    QueueOptions o;
    o.max_attempts = max_attempts;
    o.lease = lease;
    RabbitMqOptions r;
    r.queue = name_;
    r.prefetch = 4;
    return open_rabbitmq_queue(g_broker->url(), o, r);
  }
  milliseconds redelivery_wait(milliseconds) const override { return milliseconds(3000); }

 private:
  std::string name_ = unique_name("conformance");
};

class ConformanceTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "rabbitmq") {
      if (!g_broker_error.empty()) GTEST_SKIP() << g_broker_error;
      place_ = std::make_unique<RabbitPlace>();
    } else {
      place_ = std::make_unique<SqlitePlace>();
    }
  }

  std::unique_ptr<JobQueue> open(std::uint32_t max_attempts = 3, milliseconds lease = milliseconds(10'000)) {
    auto q = place_->open(max_attempts, lease);
    EXPECT_TRUE(q.ok()) << (q.ok() ? "" : q.error().message());
    return q.ok() ? std::move(q).value() : nullptr;
  }

  static Delivery must_receive(JobQueue& q, milliseconds wait = milliseconds(3000)) {
    auto d = q.receive(wait);
    EXPECT_TRUE(d.ok()) << (d.ok() ? "" : d.error().message());
    EXPECT_TRUE(d.ok() && d->has_value());
    return d.ok() && d->has_value() ? **d : Delivery{};
  }

  static bool empty(JobQueue& q, milliseconds wait = milliseconds(100)) {
    auto d = q.receive(wait);
    return d.ok() && !d->has_value();
  }

  std::unique_ptr<Place> place_;
};

TEST_P(ConformanceTest, DeliversInPublishOrderAndAckRemoves) {
  auto q = open();
  ASSERT_NE(q, nullptr);
  for (const char* k : {"job:1", "job:2", "job:3"}) ASSERT_TRUE(q->publish({k, std::string("body ") + k}).ok());
  for (const char* k : {"job:1", "job:2", "job:3"}) {
    Delivery d = must_receive(*q);
    EXPECT_EQ(d.key, k);
    EXPECT_EQ(d.body, std::string("body ") + k);
    EXPECT_EQ(d.attempt, 1u);
    EXPECT_GT(d.published_ms, 0);
    EXPECT_TRUE(q->ack(d).ok());
  }
  EXPECT_TRUE(empty(*q));
  auto s = q->stats();
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->depth(), 0u);
}

// publish_batch (the webhook's group commit, ADR 0017): every message of the
// batch durable on return, in order, interleaving correctly with single
// publishes on the same connection (the RabbitMQ backend counts delivery
// tags across both), and surviving a reopen.
TEST_P(ConformanceTest, PublishBatchStoresEveryMessageInOrder) {
  struct Case {
    std::string name;
    std::vector<std::size_t> batches;  // sizes; 0 = one single publish
  };
  const Case cases[] = {
      {"empty batch is a no-op", {}},
      {"one batch", {5}},
      {"batches and single publishes interleaved", {3, 0, 1, 0, 40}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    std::vector<std::string> want;
    {
      auto q = open();
      ASSERT_NE(q, nullptr);
      EXPECT_TRUE(q->publish_batch({}).ok());
      for (std::size_t size : c.batches) {
        if (size == 0) {
          want.push_back("single:" + std::to_string(want.size()));
          ASSERT_TRUE(q->publish({want.back(), "body " + want.back()}).ok());
          continue;
        }
        std::vector<Message> batch;
        for (std::size_t i = 0; i < size; ++i) {
          want.push_back("batch:" + std::to_string(want.size()));
          batch.push_back({want.back(), "body " + want.back()});
        }
        auto st = q->publish_batch(batch);
        ASSERT_TRUE(st.ok()) << st.error().message();
      }
    }
    auto q = open();  // durable on return: a new connection sees them all
    ASSERT_NE(q, nullptr);
    for (const auto& key : want) {
      Delivery d = must_receive(*q);
      EXPECT_EQ(d.key, key);
      EXPECT_EQ(d.body, "body " + key);
      EXPECT_EQ(d.attempt, 1u);
      EXPECT_TRUE(q->ack(d).ok());
    }
    EXPECT_TRUE(empty(*q));
  }
}

TEST_P(ConformanceTest, BinaryBodiesRoundTrip) {
  auto q = open();
  ASSERT_NE(q, nullptr);
  std::string body;
  for (int i = 0; i < 70'000; ++i) body.push_back(static_cast<char>(i * 7));  // NULs, > one frame
  ASSERT_TRUE(q->publish({"bin", body}).ok());
  Delivery d = must_receive(*q);
  EXPECT_EQ(d.body, body);
  EXPECT_TRUE(q->ack(d).ok());
}

TEST_P(ConformanceTest, ReceiveWaitsAndReturnsNothingWhenEmpty) {
  auto q = open();
  ASSERT_NE(q, nullptr);
  const auto start = Steady::now();
  auto d = q->receive(milliseconds(300));
  ASSERT_TRUE(d.ok());
  EXPECT_FALSE(d->has_value());
  EXPECT_GE(Steady::now() - start, milliseconds(250));
}

TEST_P(ConformanceTest, PublishWakesABlockedReceiver) {
  auto consumer = open();
  auto producer = open();
  ASSERT_NE(consumer, nullptr);
  ASSERT_NE(producer, nullptr);
  std::thread t([&] {
    std::this_thread::sleep_for(milliseconds(200));
    EXPECT_TRUE(producer->publish({"late", "x"}).ok());
  });
  const auto start = Steady::now();
  Delivery d = must_receive(*consumer, milliseconds(5000));
  t.join();
  EXPECT_EQ(d.key, "late");
  EXPECT_LT(Steady::now() - start, milliseconds(3000));
  EXPECT_TRUE(consumer->ack(d).ok());
}

TEST_P(ConformanceTest, AckTwiceAndUnknownReceiptsAreNotFound) {
  auto q = open();
  ASSERT_NE(q, nullptr);
  ASSERT_TRUE(q->publish({"a", ""}).ok());
  Delivery d = must_receive(*q);
  ASSERT_TRUE(q->ack(d).ok());
  for (auto st : {q->ack(d), q->release(d), q->extend_lease(d)}) {
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().code(), ErrorCode::not_found) << st.error().message();
  }
}

TEST_P(ConformanceTest, MalformedReceiptIsInvalidArgument) {
  auto q = open();
  ASSERT_NE(q, nullptr);
  Delivery d;
  for (const char* r : {"", "12", "x:1", "1:y", "1:2:3"}) {
    SCOPED_TRACE(r);
    d.receipt = r;
    auto st = q->ack(d);
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().code(), ErrorCode::invalid_argument);
  }
}

TEST_P(ConformanceTest, RetryDelaysAndCountsAttempts) {
  auto q = open(5);
  ASSERT_NE(q, nullptr);
  ASSERT_TRUE(q->publish({"job:7", "b"}).ok());
  Delivery d = must_receive(*q);
  EXPECT_EQ(d.attempt, 1u);
  const auto start = Steady::now();
  auto r = q->retry(d, milliseconds(400), "registry 503");
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_FALSE(*r);
  EXPECT_TRUE(empty(*q, milliseconds(200)));  // still delayed
  auto st = q->stats();
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->delayed, 1u);
  Delivery again = must_receive(*q, milliseconds(5000));
  EXPECT_GE(Steady::now() - start, milliseconds(380));
  EXPECT_EQ(again.key, "job:7");
  EXPECT_EQ(again.body, "b");
  EXPECT_EQ(again.attempt, 2u);
  EXPECT_EQ(again.published_ms, d.published_ms);
  EXPECT_TRUE(q->ack(again).ok());
}

TEST_P(ConformanceTest, RetryDeadLettersAfterMaxAttempts) {
  auto q = open(3);
  ASSERT_NE(q, nullptr);
  ASSERT_TRUE(q->publish({"poison", "{not json"}).ok());
  for (std::uint32_t attempt = 1; attempt <= 3; ++attempt) {
    SCOPED_TRACE(attempt);
    Delivery d = must_receive(*q);
    EXPECT_EQ(d.attempt, attempt);
    auto r = q->retry(d, milliseconds(0), "parse error " + std::to_string(attempt));
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_EQ(*r, attempt == 3);
  }
  EXPECT_TRUE(empty(*q));
  auto dead = q->list_dead(10);
  ASSERT_TRUE(dead.ok()) << dead.error().message();
  ASSERT_EQ(dead->size(), 1u);
  EXPECT_EQ((*dead)[0].key, "poison");
  EXPECT_EQ((*dead)[0].body, "{not json");
  EXPECT_EQ((*dead)[0].attempts, 3u);
  EXPECT_NE((*dead)[0].reason.find("parse error 3"), std::string::npos) << (*dead)[0].reason;
  EXPECT_GT((*dead)[0].dead_at_ms, 0);
  auto st = q->stats();
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->dead, 1u);
  EXPECT_EQ(st->depth(), 0u);
  // Listing does not consume: a second listing sees the same letter.
  auto again = q->list_dead(10);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->size(), 1u);
}

TEST_P(ConformanceTest, DeadLetterNowAndReleaseDoesNotCountAnAttempt) {
  auto q = open(2);
  ASSERT_NE(q, nullptr);
  ASSERT_TRUE(q->publish({"a", ""}).ok());
  ASSERT_TRUE(q->publish({"b", ""}).ok());
  Delivery a = must_receive(*q);
  ASSERT_EQ(a.key, "a");
  ASSERT_TRUE(q->dead_letter(a, "manifest not found").ok());
  Delivery b = must_receive(*q);
  ASSERT_EQ(b.key, "b");
  ASSERT_TRUE(q->release(b).ok());
  Delivery b2 = must_receive(*q);
  EXPECT_EQ(b2.key, "b");
  EXPECT_EQ(b2.attempt, 1u);
  EXPECT_FALSE(q->release(b).ok());  // settled receipts are refused
  EXPECT_TRUE(q->ack(b2).ok());
  auto dead = q->list_dead(5);
  ASSERT_TRUE(dead.ok());
  ASSERT_EQ(dead->size(), 1u);
  EXPECT_EQ((*dead)[0].reason, "manifest not found");
  EXPECT_EQ(q->stats()->dead, 1u);
}

TEST_P(ConformanceTest, ListDeadIsNewestFirstAndLimited) {
  auto q = open(1);
  ASSERT_NE(q, nullptr);
  for (const char* k : {"d1", "d2", "d3"}) {
    ASSERT_TRUE(q->publish({k, ""}).ok());
    Delivery d = must_receive(*q);
    ASSERT_TRUE(q->dead_letter(d, k).ok());
  }
  auto dead = q->list_dead(2);
  ASSERT_TRUE(dead.ok());
  ASSERT_EQ(dead->size(), 2u);
  EXPECT_EQ((*dead)[0].key, "d3");
  EXPECT_EQ((*dead)[1].key, "d2");
}

TEST_P(ConformanceTest, MessagesSurviveReopen) {
  {
    auto q = open();
    ASSERT_NE(q, nullptr);
    ASSERT_TRUE(q->publish({"kept", "1"}).ok());
  }
  auto q = open();
  ASSERT_NE(q, nullptr);
  Delivery d = must_receive(*q);
  EXPECT_EQ(d.key, "kept");
  EXPECT_TRUE(q->ack(d).ok());
}

// A consumer that vanishes without acking (its process was killed, its
// connection dropped): the message comes back with the attempt counted.
TEST_P(ConformanceTest, AbandonedDeliveryIsRedeliveredWithTheAttemptCounted) {
  const milliseconds lease(400);
  {
    auto q = open(3, lease);
    ASSERT_NE(q, nullptr);
    ASSERT_TRUE(q->publish({"job:9", "scan"}).ok());
    Delivery d = must_receive(*q);
    EXPECT_EQ(d.attempt, 1u);
  }  // closed without ack
  auto q = open(3, lease);
  ASSERT_NE(q, nullptr);
  Delivery again = must_receive(*q, place_->redelivery_wait(lease) + milliseconds(3000));
  EXPECT_EQ(again.key, "job:9");
  EXPECT_EQ(again.body, "scan");
  EXPECT_EQ(again.attempt, 2u);
  EXPECT_TRUE(q->ack(again).ok());
  EXPECT_TRUE(empty(*q, place_->redelivery_wait(lease)));
}

// A message whose consumer dies every time ends in the dead letters.
TEST_P(ConformanceTest, AMessageThatKillsEveryConsumerIsDeadLettered) {
  const milliseconds lease(300);
  for (std::uint32_t attempt = 1; attempt <= 2; ++attempt) {
    SCOPED_TRACE(attempt);
    auto q = open(2, lease);
    ASSERT_NE(q, nullptr);
    if (attempt == 1) {
      ASSERT_TRUE(q->publish({"crasher", ""}).ok());
    }
    Delivery d = must_receive(*q, place_->redelivery_wait(lease) + milliseconds(3000));
    EXPECT_EQ(d.attempt, attempt);
  }
  auto q = open(2, lease);
  ASSERT_NE(q, nullptr);
  EXPECT_TRUE(empty(*q, place_->redelivery_wait(lease) + milliseconds(500)));
  auto dead = q->list_dead(5);
  ASSERT_TRUE(dead.ok());
  ASSERT_EQ(dead->size(), 1u);
  EXPECT_EQ((*dead)[0].key, "crasher");
  EXPECT_EQ((*dead)[0].attempts, 2u);
}

TEST_P(ConformanceTest, ConcurrentConsumersGetEachMessageOnce) {
  constexpr int kMessages = 200;
  auto producer = open();
  ASSERT_NE(producer, nullptr);
  for (int i = 0; i < kMessages; ++i) ASSERT_TRUE(producer->publish({std::string("m").append(std::to_string(i)), ""}).ok());
  std::mutex mu;
  std::multiset<std::string> seen;
  std::vector<std::thread> threads;
  std::vector<std::unique_ptr<JobQueue>> consumers;
  for (int c = 0; c < 2; ++c) consumers.push_back(open());
  for (auto& c : consumers) ASSERT_NE(c, nullptr);
  // Two threads per queue object: shared objects must be thread-safe too.
  for (int t = 0; t < 4; ++t) {
    JobQueue* q = consumers[t % 2].get();
    threads.emplace_back([&, q] {
      while (true) {
        auto d = q->receive(milliseconds(500));
        if (!d.ok()) {
          ADD_FAILURE() << d.error().message();
          return;
        }
        if (!d->has_value()) return;
        EXPECT_TRUE(q->ack(**d).ok());
        std::lock_guard lock(mu);
        seen.insert((*d)->key);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(seen.size(), static_cast<std::size_t>(kMessages));
  EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()).size(), static_cast<std::size_t>(kMessages));
}

TEST_P(ConformanceTest, ZeroMaxAttemptsIsRejected) {
  auto q = place_->open(0, milliseconds(1000));
  ASSERT_FALSE(q.ok());
  EXPECT_EQ(q.error().code(), ErrorCode::invalid_argument);
}

INSTANTIATE_TEST_SUITE_P(Backends, ConformanceTest, ::testing::Values("sqlite", "rabbitmq"),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });

// ---- RabbitMQ only ----

class RabbitMqQueueTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!g_broker_error.empty()) GTEST_SKIP() << g_broker_error;
    if (!g_broker->running()) {
      auto why = g_broker->restart();
      ASSERT_TRUE(why.empty()) << why;
    }
  }
  std::unique_ptr<JobQueue> open() {
    RabbitMqOptions r;
    r.queue = name_;
    r.connect_timeout = milliseconds(500);
    auto q = open_rabbitmq_queue(g_broker->url(), {}, r);
    EXPECT_TRUE(q.ok()) << (q.ok() ? "" : q.error().message());
    return q.ok() ? std::move(q).value() : nullptr;
  }
  std::string name_ = unique_name("rabbit");
};

TEST_F(RabbitMqQueueTest, BadUrlsAreRejectedClearly) {
  struct Case {
    std::string name, url;
    ErrorCode want;
  };
  const int closed = testsupport::free_loopback_port();
  for (const Case& c : std::vector<Case>{
           {"not a url", "http://x", ErrorCode::invalid_argument},
           {"tls", "amqps://guest:guest@127.0.0.1:5671/", ErrorCode::unsupported},
           {"nobody listening", "amqp://guest:guest@127.0.0.1:" + std::to_string(closed) + "/%2f",
            ErrorCode::unavailable},
           {"wrong password", "amqp://guest:nope@127.0.0.1:" + std::to_string(g_broker->port()) + "/%2f",
            ErrorCode::unavailable},
       }) {
    SCOPED_TRACE(c.name);
    auto q = open_rabbitmq_queue(c.url);
    ASSERT_FALSE(q.ok());
    EXPECT_EQ(q.error().code(), c.want) << q.error().message();
  }
}

TEST_F(RabbitMqQueueTest, PersistentMessagesSurviveABrokerRestartAndClientsReconnect) {
  auto q = open();
  ASSERT_NE(q, nullptr);
  for (const char* k : {"r1", "r2"}) ASSERT_TRUE(q->publish({k, "x"}).ok());
  auto first = q->receive(milliseconds(3000));
  ASSERT_TRUE(first.ok() && first->has_value());
  Delivery held = **first;  // in flight when the broker goes
  g_broker->stop();
  // While it is gone: unavailable, not a crash or a hang.
  auto down = q->publish({"r3", "x"});
  ASSERT_FALSE(down.ok());
  EXPECT_EQ(down.error().code(), ErrorCode::unavailable);
  auto why = g_broker->restart();
  ASSERT_TRUE(why.empty()) << why;
  // The held receipt died with the connection: the broker requeued it.
  std::set<std::string> keys;
  const auto deadline = Steady::now() + std::chrono::seconds(20);
  while (keys.size() < 2 && Steady::now() < deadline) {
    auto d = q->receive(milliseconds(200));
    if (!d.ok()) {
      EXPECT_EQ(d.error().code(), ErrorCode::unavailable) << d.error().message();
      std::this_thread::sleep_for(milliseconds(100));
      continue;
    }
    if (!d->has_value()) continue;
    keys.insert((*d)->key);
    EXPECT_TRUE(q->ack(**d).ok());
  }
  EXPECT_EQ(keys, (std::set<std::string>{"r1", "r2"}));
  auto stale = q->ack(held);
  ASSERT_FALSE(stale.ok());
  EXPECT_EQ(stale.error().code(), ErrorCode::not_found);
  EXPECT_TRUE(q->publish({"r4", "x"}).ok());
}

}  // namespace
}  // namespace hashsieve::queue
