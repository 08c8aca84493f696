// The RabbitMQ backend of JobQueue (issue 7), through librabbitmq (rabbitmq-c).
//
// Topology, declared on connect (all durable, default exchange):
//   <queue>             the work queue (classic, durable); messages persistent
//                       (delivery_mode 2), every publish waits for the
//                       publisher confirm (basic.ack) before returning.
//   <queue>.delay.<ms>  one queue per retry delay, x-message-ttl = ms and
//                       dead-lettering back to <queue> (one TTL per queue
//                       keeps expiry FIFO-correct; x-expires removes it when
//                       idle).
//   <queue>.dead        the dead-letter queue (reason and attempts in headers).
// Consumers use basic.consume with basic.qos prefetch = RabbitMqOptions::prefetch
// (set it to the number of worker threads) and manual acks.
//
// Where AMQP differs from the embedded backend (see job_queue.h):
//   * No lease clock: a delivery stays "in flight" until acked or until the
//     consumer's connection closes (a killed worker), then the broker
//     redelivers it. extend_lease() only checks that the delivery is still
//     held. Delivery::lease_expires_ms is 0. RabbitMQ's consumer_timeout
//     (default 30 min) bounds how long one delivery may stay unacked.
//   * Attempts are counted in a message header (x-hs-attempt). A delivery the
//     broker marks `redelivered` (its consumer died) is republished with the
//     attempt + 1 (or dead-lettered past max_attempts) before it is handed
//     out, so a message that kills its worker every time ends in <queue>.dead
//     like the embedded backend's expired leases.
//   * retry, dead_letter and release publish a copy (confirmed) and then ack
//     the delivery: a crash between the two leaves a duplicate, which the
//     idempotent consumer absorbs (delivery is at least once either way).
//   * stats(): ready and dead are the broker's message counts; in_flight is
//     the deliveries this process holds (the broker does not report unacked
//     counts over AMQP); delayed sums the delay queues this process used.
//   * A receipt is bound to the connection that delivered it: after a
//     reconnect, old receipts are not_found (the broker requeued them).
//
// Thread safety: librabbitmq connections are not thread-safe. The object
// owns two connections, each behind its own mutex: one for publishing,
// declaring and inspecting, one for consuming and acking. receive() holds the
// consumer mutex only for short slices (20 ms), so acks from other threads
// interleave. Many threads may share one object; a process that wants
// independent flow control opens one object per thread.
//
// Broker loss: every operation returns ErrorCode::unavailable while the
// broker is unreachable; the object reconnects by itself (exponential backoff
// from 100 ms to 5 s) on the next call. Heartbeats are off: librabbitmq only
// answers them inside library calls, and a long scan would miss them and lose
// its delivery; a killed worker is still detected by its closed socket.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "hashsieve/queue/job_queue.h"

namespace hashsieve::queue {

struct RabbitMqOptions {
  std::string queue = "hashsieve.jobs";
  std::uint16_t prefetch = 1;  // basic.qos: deliveries held unacked per connection
  std::chrono::milliseconds confirm_timeout{std::chrono::seconds(10)};
  std::chrono::milliseconds connect_timeout{std::chrono::seconds(3)};
};

// url: amqp://user:pass@host:port/vhost ("%2f" for the default vhost "/").
// Connects once (an unreachable broker is ErrorCode::unavailable) and
// declares the topology; subscribes (basic.consume) only on the first
// receive(), so publish-only users hold no prefetched messages. options.lease, durability and poll_interval do not
// apply (see above); max_attempts does; clock stamps published_ms.
Result<std::unique_ptr<JobQueue>> open_rabbitmq_queue(const std::string& url, QueueOptions options = {},
                                                      RabbitMqOptions rabbit = {});

}  // namespace hashsieve::queue
