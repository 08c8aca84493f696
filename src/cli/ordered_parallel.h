// Runs `produce(i)` for i in [0, count) on `threads` workers and hands every
// result to `consume` on the calling thread in index order, so output is
// deterministic whatever the thread count. Workers run at most `window` items
// ahead of the consumer, which bounds memory for long inputs.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

namespace hashsieve::cli {

template <typename T, typename Produce, typename Consume>
void ordered_parallel(std::size_t count, unsigned threads, Produce&& produce, Consume&& consume) {
  if (threads <= 1 || count <= 1) {
    for (std::size_t i = 0; i < count; ++i) consume(produce(i));
    return;
  }
  const std::size_t window = static_cast<std::size_t>(threads) * 8;
  std::mutex mutex;
  std::condition_variable ready;      // a slot was filled
  std::condition_variable advanced;   // the consumer moved on
  std::vector<std::optional<T>> slots(count);
  std::size_t next_to_consume = 0;
  std::atomic<std::size_t> next_to_produce{0};

  auto worker = [&] {
    for (;;) {
      const std::size_t i = next_to_produce.fetch_add(1);
      if (i >= count) return;
      {
        std::unique_lock lock(mutex);
        advanced.wait(lock, [&] { return i < next_to_consume + window; });
      }
      T value = produce(i);
      {
        std::lock_guard lock(mutex);
        slots[i].emplace(std::move(value));
      }
      ready.notify_all();
    }
  };
  std::vector<std::thread> pool;
  pool.reserve(threads);
  for (unsigned t = 0; t < threads; ++t) pool.emplace_back(worker);
  for (std::size_t i = 0; i < count; ++i) {
    T value;
    {
      std::unique_lock lock(mutex);
      ready.wait(lock, [&] { return slots[i].has_value(); });
      value = std::move(*slots[i]);
      slots[i].reset();
      next_to_consume = i + 1;
    }
    advanced.notify_all();
    consume(std::move(value));
  }
  for (auto& t : pool) t.join();
}

}  // namespace hashsieve::cli
