#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <mutex>
#include <set>
#include <thread>

#include "hashsieve/queue/job_queue.h"

namespace hashsieve::queue {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "hashsieve-queue-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() { fs::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

class QueueTest : public ::testing::Test {
 protected:
  std::unique_ptr<JobQueue> open(std::uint32_t max_attempts = 3, milliseconds lease = milliseconds(10'000)) {
    QueueOptions o;
    o.clock = &clock_;
    o.max_attempts = max_attempts;
    o.lease = lease;
    o.poll_interval = milliseconds(5);
    auto q = open_sqlite_queue(dir_.path(), o);
    EXPECT_TRUE(q.ok()) << (q.ok() ? "" : q.error().message());
    return std::move(q).value();
  }

  static Delivery must_receive(JobQueue& q) {
    auto d = q.receive(milliseconds(0));
    EXPECT_TRUE(d.ok()) << (d.ok() ? "" : d.error().message());
    EXPECT_TRUE(d.ok() && d->has_value());
    return d.ok() && d->has_value() ? **d : Delivery{};
  }

  static bool empty(JobQueue& q) {
    auto d = q.receive(milliseconds(0));
    return d.ok() && !d->has_value();
  }

  TempDir dir_;
  ManualClock clock_;
};

TEST_F(QueueTest, DeliversInPublishOrderAndAckRemoves) {
  auto q = open();
  for (const char* k : {"job:1", "job:2", "job:3"}) ASSERT_TRUE(q->publish({k, std::string("body ") + k}).ok());
  auto s = q->stats();
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(*s, (QueueStats{3, 0, 0, 0}));
  for (const char* k : {"job:1", "job:2", "job:3"}) {
    Delivery d = must_receive(*q);
    EXPECT_EQ(d.key, k);
    EXPECT_EQ(d.body, std::string("body ") + k);
    EXPECT_EQ(d.attempt, 1u);
    EXPECT_TRUE(q->ack(d).ok());
  }
  EXPECT_TRUE(empty(*q));
  EXPECT_EQ(q->stats()->depth(), 0u);
}

TEST_F(QueueTest, ReceiveWaitsAndReturnsNothingWhenEmpty) {
  auto q = open();
  const auto t0 = std::chrono::steady_clock::now();
  auto d = q->receive(milliseconds(30));
  ASSERT_TRUE(d.ok());
  EXPECT_FALSE(d->has_value());
  EXPECT_GE(std::chrono::steady_clock::now() - t0, milliseconds(30));
}

TEST_F(QueueTest, PublishWakesABlockedReceiver) {
  auto q = open();
  std::optional<Delivery> got;
  std::thread consumer([&] {
    auto d = q->receive(milliseconds(5'000));
    if (d.ok()) got = *d;
  });
  std::this_thread::sleep_for(milliseconds(20));
  ASSERT_TRUE(q->publish({"job:7", "x"}).ok());
  consumer.join();
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->key, "job:7");
}

TEST_F(QueueTest, ExpiredLeaseIsRedeliveredAndTheOldReceiptIsRefused) {
  auto q = open(3, milliseconds(1'000));
  ASSERT_TRUE(q->publish({"job:1", "b"}).ok());
  Delivery first = must_receive(*q);
  EXPECT_TRUE(empty(*q));  // leased, invisible
  EXPECT_EQ(q->stats()->in_flight, 1u);
  clock_.advance_ms(999);
  EXPECT_TRUE(empty(*q));
  clock_.advance_ms(1);
  Delivery second = must_receive(*q);
  EXPECT_EQ(second.key, "job:1");
  EXPECT_EQ(second.attempt, 2u);
  EXPECT_NE(second.receipt, first.receipt);
  auto stale = q->ack(first);
  ASSERT_FALSE(stale.ok());
  EXPECT_EQ(stale.error().code(), ErrorCode::not_found);
  EXPECT_TRUE(q->ack(second).ok());
  EXPECT_EQ(q->stats()->depth(), 0u);
}

TEST_F(QueueTest, ExtendLeaseKeepsTheMessage) {
  auto q = open(3, milliseconds(1'000));
  ASSERT_TRUE(q->publish({"job:1", "b"}).ok());
  Delivery d = must_receive(*q);
  clock_.advance_ms(800);
  ASSERT_TRUE(q->extend_lease(d).ok());
  clock_.advance_ms(800);
  EXPECT_TRUE(empty(*q));
  clock_.advance_ms(200);
  EXPECT_EQ(must_receive(*q).attempt, 2u);
}

TEST_F(QueueTest, RetryDelaysAndCountsAttempts) {
  struct Case {
    std::string name;
    std::int64_t delay_ms;
  };
  const std::vector<Case> cases = {{"no delay", 0}, {"one second", 1'000}, {"five minutes", 300'000}};
  auto q = open(10);
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    ASSERT_TRUE(q->publish({c.name, ""}).ok());
    Delivery d = must_receive(*q);
    auto dead = q->retry(d, milliseconds(c.delay_ms), "registry unavailable");
    ASSERT_TRUE(dead.ok());
    EXPECT_FALSE(*dead);
    if (c.delay_ms > 0) {
      EXPECT_EQ(q->stats()->delayed, 1u);
      clock_.advance_ms(c.delay_ms - 1);
      EXPECT_TRUE(empty(*q));
      clock_.advance_ms(1);
    }
    Delivery again = must_receive(*q);
    EXPECT_EQ(again.key, c.name);
    EXPECT_EQ(again.attempt, 2u);
    EXPECT_TRUE(q->ack(again).ok());
  }
}

TEST_F(QueueTest, RetryDeadLettersAfterMaxAttempts) {
  auto q = open(3);
  ASSERT_TRUE(q->publish({"job:9", "payload"}).ok());
  for (std::uint32_t attempt = 1; attempt <= 3; ++attempt) {
    SCOPED_TRACE(attempt);
    Delivery d = must_receive(*q);
    EXPECT_EQ(d.attempt, attempt);
    auto dead = q->retry(d, milliseconds(0), "timeout");
    ASSERT_TRUE(dead.ok());
    EXPECT_EQ(*dead, attempt == 3);
  }
  EXPECT_TRUE(empty(*q));
  EXPECT_EQ(*q->stats(), (QueueStats{0, 0, 0, 1}));
  auto dead = q->list_dead(10);
  ASSERT_TRUE(dead.ok());
  ASSERT_EQ(dead->size(), 1u);
  EXPECT_EQ((*dead)[0].key, "job:9");
  EXPECT_EQ((*dead)[0].body, "payload");
  EXPECT_EQ((*dead)[0].attempts, 3u);
  EXPECT_NE((*dead)[0].reason.find("timeout"), std::string::npos);
}

TEST_F(QueueTest, ExpiringLeasesDeadLetterAPoisonMessage) {
  auto q = open(2, milliseconds(100));
  ASSERT_TRUE(q->publish({"poison", ""}).ok());
  EXPECT_EQ(must_receive(*q).attempt, 1u);
  clock_.advance_ms(100);
  EXPECT_EQ(must_receive(*q).attempt, 2u);
  clock_.advance_ms(100);
  EXPECT_TRUE(empty(*q));
  EXPECT_EQ(q->stats()->dead, 1u);
  EXPECT_NE((*q->list_dead(1))[0].reason.find("lease expired"), std::string::npos);
}

TEST_F(QueueTest, DeadLetterNowAndReleaseDoesNotCountAnAttempt) {
  auto q = open(2);
  ASSERT_TRUE(q->publish({"a", ""}).ok());
  ASSERT_TRUE(q->publish({"b", ""}).ok());
  Delivery a = must_receive(*q);
  ASSERT_TRUE(q->dead_letter(a, "manifest not found").ok());
  Delivery b = must_receive(*q);
  ASSERT_TRUE(q->release(b).ok());
  Delivery b2 = must_receive(*q);
  EXPECT_EQ(b2.key, "b");
  EXPECT_EQ(b2.attempt, 1u);
  EXPECT_FALSE(q->release(b).ok());  // settled receipts are refused
  EXPECT_EQ(q->stats()->dead, 1u);
}

TEST_F(QueueTest, MalformedReceiptIsInvalidArgument) {
  auto q = open();
  Delivery d;
  for (const char* r : {"", "12", "x:1", "1:y", "1:2:3"}) {
    SCOPED_TRACE(r);
    d.receipt = r;
    auto st = q->ack(d);
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().code(), ErrorCode::invalid_argument);
  }
}

TEST_F(QueueTest, MessagesAndLeasesSurviveReopen) {
  {
    auto q = open(3, milliseconds(1'000));
    ASSERT_TRUE(q->publish({"leased", ""}).ok());
    ASSERT_TRUE(q->publish({"ready", ""}).ok());
    (void)must_receive(*q);  // "leased" stays leased: the process "dies"
  }
  auto q = open(3, milliseconds(1'000));
  EXPECT_EQ(*q->stats(), (QueueStats{1, 1, 0, 0}));
  EXPECT_EQ(must_receive(*q).key, "ready");
  clock_.advance_ms(1'000);
  Delivery d = must_receive(*q);
  EXPECT_EQ(d.key, "leased");
  EXPECT_EQ(d.attempt, 2u);
}

TEST_F(QueueTest, ZeroMaxAttemptsIsRejected) {
  QueueOptions o;
  o.max_attempts = 0;
  auto q = open_sqlite_queue(dir_.path(), o);
  ASSERT_FALSE(q.ok());
  EXPECT_EQ(q.error().code(), ErrorCode::invalid_argument);
}

// A consumer process is SIGKILLed holding a lease: after the lease runs out
// the message is delivered again, to another process, exactly once more.
TEST_F(QueueTest, KilledConsumerProcessLeaseExpiresAndIsRedelivered) {
  {
    auto q = open(3, milliseconds(5'000));
    ASSERT_TRUE(q->publish({"job:1", "scan me"}).ok());
  }
  int pipefd[2];
  ASSERT_EQ(::pipe(pipefd), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(pipefd[0]);
    QueueOptions o;
    o.lease = milliseconds(5'000);
    o.clock = &clock_;
    auto q = open_sqlite_queue(dir_.path(), o);
    if (!q.ok()) ::_exit(2);
    auto d = (*q)->receive(milliseconds(0));
    const char c = d.ok() && d->has_value() ? 'y' : 'n';
    (void)!::write(pipefd[1], &c, 1);
    ::pause();  // "working" until killed
    ::_exit(0);
  }
  ::close(pipefd[1]);
  char c = 0;
  ASSERT_EQ(::read(pipefd[0], &c, 1), 1);
  ::close(pipefd[0]);
  ASSERT_EQ(c, 'y');
  ::kill(child, SIGKILL);
  int status = 0;
  ::waitpid(child, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status));

  auto q = open(3, milliseconds(5'000));
  EXPECT_TRUE(empty(*q));
  EXPECT_EQ(q->stats()->in_flight, 1u);
  clock_.advance_ms(5'000);
  Delivery d = must_receive(*q);
  EXPECT_EQ(d.body, "scan me");
  EXPECT_EQ(d.attempt, 2u);
  ASSERT_TRUE(q->ack(d).ok());
  EXPECT_TRUE(empty(*q));
}

// Threads sharing one queue and threads with their own connection (as
// separate processes would) each get every message exactly once.
TEST_F(QueueTest, ConcurrentConsumersGetEachMessageOnce) {
  constexpr int kMessages = 200;
  auto shared = open(3, milliseconds(600'000));
  auto own = open(3, milliseconds(600'000));
  for (int i = 0; i < kMessages; ++i) ASSERT_TRUE(shared->publish({std::to_string(i), ""}).ok());
  std::mutex m;
  std::multiset<std::string> seen;
  std::atomic<int> errors{0};
  auto consume = [&](JobQueue* q) {
    for (;;) {
      auto d = q->receive(milliseconds(0));
      if (!d.ok()) {
        ++errors;
        return;
      }
      if (!d->has_value()) return;
      if (!q->ack(**d).ok()) ++errors;
      std::lock_guard lock(m);
      seen.insert((*d)->key);
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) threads.emplace_back(consume, t % 2 == 0 ? shared.get() : own.get());
  for (auto& t : threads) t.join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(seen.size(), static_cast<std::size_t>(kMessages));
  for (const auto& k : seen) EXPECT_EQ(seen.count(k), 1u) << k;
}

}  // namespace
}  // namespace hashsieve::queue
