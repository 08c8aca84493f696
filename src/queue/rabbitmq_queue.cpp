// RabbitMQ JobQueue backend; the model is described in rabbitmq_queue.h.
#include "hashsieve/queue/rabbitmq_queue.h"

#include <amqp.h>
#include <amqp_framing.h>
#include <amqp_tcp_socket.h>
#include <sys/time.h>

#include <algorithm>
#include <charconv>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <utility>
#include <vector>

namespace hashsieve::queue {
namespace {

using Steady = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr amqp_channel_t kChannel = 1;     // publish+confirms (pub) / consume (con)
constexpr amqp_channel_t kInspect = 2;     // passive declares and list_dead (pub connection)
constexpr const char* kAttemptHeader = "x-hs-attempt";
constexpr const char* kPublishedHeader = "x-hs-published-ms";
constexpr const char* kReasonHeader = "x-hs-reason";
constexpr const char* kDeadAtHeader = "x-hs-dead-at-ms";

amqp_bytes_t bytes(const std::string& s) { return amqp_bytes_t{s.size(), const_cast<char*>(s.data())}; }
std::string str(amqp_bytes_t b) { return std::string(static_cast<const char*>(b.bytes), b.len); }

timeval to_timeval(milliseconds ms) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(ms.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms.count() % 1000) * 1000);
  return tv;
}

// A readable message for a failed RPC.
std::string reply_text(const amqp_rpc_reply_t& r) {
  switch (r.reply_type) {
    case AMQP_RESPONSE_NORMAL:
      return "ok";
    case AMQP_RESPONSE_NONE:
      return "no reply (missing RPC reply type)";
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
      return amqp_error_string2(r.library_error);
    case AMQP_RESPONSE_SERVER_EXCEPTION:
      if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
        const auto* m = static_cast<amqp_connection_close_t*>(r.reply.decoded);
        return "connection closed by broker: " + std::to_string(m->reply_code) + " " + str(m->reply_text);
      }
      if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
        const auto* m = static_cast<amqp_channel_close_t*>(r.reply.decoded);
        return "channel closed by broker: " + std::to_string(m->reply_code) + " " + str(m->reply_text);
      }
      return "broker error (method " + std::to_string(r.reply.id) + ")";
  }
  return "unknown reply";
}

bool channel_closed_404(const amqp_rpc_reply_t& r) {
  if (r.reply_type != AMQP_RESPONSE_SERVER_EXCEPTION || r.reply.id != AMQP_CHANNEL_CLOSE_METHOD) return false;
  return static_cast<amqp_channel_close_t*>(r.reply.decoded)->reply_code == 404;
}

// Headers of a message, as read from or written to AMQP.
struct Headers {
  std::uint32_t attempt = 1;
  std::int64_t published_ms = 0;
  std::string reason;
  std::int64_t dead_at_ms = 0;
};

std::int64_t int_field(const amqp_field_value_t& v) {
  switch (v.kind) {
    case AMQP_FIELD_KIND_I8: return v.value.i8;
    case AMQP_FIELD_KIND_U8: return v.value.u8;
    case AMQP_FIELD_KIND_I16: return v.value.i16;
    case AMQP_FIELD_KIND_U16: return v.value.u16;
    case AMQP_FIELD_KIND_I32: return v.value.i32;
    case AMQP_FIELD_KIND_U32: return v.value.u32;
    case AMQP_FIELD_KIND_I64: return v.value.i64;
    case AMQP_FIELD_KIND_U64: return static_cast<std::int64_t>(v.value.u64);
    default: return 0;
  }
}

Headers read_headers(const amqp_basic_properties_t& p) {
  Headers h;
  if ((p._flags & AMQP_BASIC_HEADERS_FLAG) == 0) return h;
  for (int i = 0; i < p.headers.num_entries; ++i) {
    const amqp_table_entry_t& e = p.headers.entries[i];
    const std::string key = str(e.key);
    if (key == kAttemptHeader) {
      h.attempt = static_cast<std::uint32_t>(std::clamp<std::int64_t>(int_field(e.value), 1, 1'000'000));
    } else if (key == kPublishedHeader) {
      h.published_ms = int_field(e.value);
    } else if (key == kDeadAtHeader) {
      h.dead_at_ms = int_field(e.value);
    } else if (key == kReasonHeader && (e.value.kind == AMQP_FIELD_KIND_UTF8 || e.value.kind == AMQP_FIELD_KIND_BYTES)) {
      h.reason = str(e.value.value.bytes);
    }
  }
  return h;
}

struct Url {
  std::string host, user, password, vhost;
  int port = 5672;
};

Result<Url> parse_url(const std::string& url) {
  std::string copy = url;  // amqp_parse_url writes into its argument
  amqp_connection_info info{};
  if (amqp_parse_url(copy.data(), &info) != AMQP_STATUS_OK) {
    return Error(ErrorCode::invalid_argument, "bad AMQP URL (want amqp://user:pass@host:port/vhost): " + url);
  }
  if (info.ssl != 0) return Error(ErrorCode::unsupported, "amqps:// is not supported: " + url);
  return Url{info.host, info.user, info.password, info.vhost, info.port};
}

// One AMQP connection; not thread-safe (the caller holds its mutex).
class Connection {
 public:
  Connection() = default;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection() { close(); }

  bool open() const { return state_ != nullptr; }
  amqp_connection_state_t get() const { return state_; }

  Status connect(const Url& url, milliseconds timeout) {
    close();
    state_ = amqp_new_connection();
    if (state_ == nullptr) return Error(ErrorCode::internal, "amqp_new_connection failed");
    amqp_socket_t* socket = amqp_tcp_socket_new(state_);
    if (socket == nullptr) {
      close();
      return Error(ErrorCode::internal, "amqp_tcp_socket_new failed");
    }
    timeval tv = to_timeval(timeout);
    const int rc = amqp_socket_open_noblock(socket, url.host.c_str(), url.port, &tv);
    if (rc != AMQP_STATUS_OK) {
      close();
      return Error(ErrorCode::unavailable, "connecting to " + url.host + ":" + std::to_string(url.port) + ": " +
                                               amqp_error_string2(rc));
    }
    // heartbeat 0: see the header (long scans would miss heartbeats).
    const amqp_rpc_reply_t login = amqp_login(state_, url.vhost.c_str(), 0, 131072, 0, AMQP_SASL_METHOD_PLAIN,
                                              url.user.c_str(), url.password.c_str());
    if (login.reply_type != AMQP_RESPONSE_NORMAL) {
      const std::string why = reply_text(login);
      close();
      // Bad credentials or vhost are not transient, but a broker still booting
      // refuses logins too; report unavailable and let the backoff decide.
      return Error(ErrorCode::unavailable, "AMQP login to vhost " + url.vhost + ": " + why);
    }
    return Status{};
  }

  Status open_channel(amqp_channel_t ch) {
    amqp_channel_open(state_, ch);
    return check("opening channel " + std::to_string(ch));
  }

  // The reply of the last synchronous call; closes the connection on a
  // connection-level failure so that the next call reconnects.
  Status check(const std::string& what) {
    const amqp_rpc_reply_t r = amqp_get_rpc_reply(state_);
    if (r.reply_type == AMQP_RESPONSE_NORMAL) return Status{};
    const std::string why = what + ": " + reply_text(r);
    close();
    return Error(ErrorCode::unavailable, why);
  }

  void close() {
    if (state_ == nullptr) return;
    // No graceful close handshake: it can block on a dead broker, and the
    // broker treats a dropped socket the same (unacked deliveries requeue).
    amqp_destroy_connection(state_);
    state_ = nullptr;
  }

 private:
  amqp_connection_state_t state_ = nullptr;
};

// Builds a header table whose strings stay alive with the object.
class HeaderTable {
 public:
  explicit HeaderTable(const Headers& h) : reason_(h.reason) {
    add_i64(kAttemptHeader, h.attempt);
    add_i64(kPublishedHeader, h.published_ms);
    if (!reason_.empty()) {
      amqp_table_entry_t e{};
      e.key = amqp_cstring_bytes(kReasonHeader);
      e.value.kind = AMQP_FIELD_KIND_UTF8;
      e.value.value.bytes = bytes(reason_);
      entries_.push_back(e);
      add_i64(kDeadAtHeader, h.dead_at_ms);
    }
  }
  amqp_table_t table() { return amqp_table_t{static_cast<int>(entries_.size()), entries_.data()}; }

 private:
  void add_i64(const char* key, std::int64_t v) {
    amqp_table_entry_t e{};
    e.key = amqp_cstring_bytes(key);
    e.value.kind = AMQP_FIELD_KIND_I64;
    e.value.value.i64 = v;
    entries_.push_back(e);
  }
  std::string reason_;
  std::vector<amqp_table_entry_t> entries_;
};

class RabbitMqQueue final : public JobQueue {
 public:
  RabbitMqQueue(Url url, QueueOptions options, RabbitMqOptions rabbit)
      : url_(std::move(url)),
        options_(options),
        rabbit_(std::move(rabbit)),
        clock_(options.clock != nullptr ? options.clock : &system_clock()),
        dead_queue_(rabbit_.queue + ".dead") {}

  // The consumer connects on the first receive(): a publish-only user (the
  // front end) must not subscribe, or the broker would push it `prefetch`
  // messages that it never reads.
  Status connect() {
    std::lock_guard lock(pub_mu_);
    return ensure_pub();
  }

  Status publish(const Message& message) override {
    Headers h;
    h.published_ms = clock_->now_ms();
    std::lock_guard lock(pub_mu_);
    return publish_locked(rabbit_.queue, message.key, message.body, h);
  }

  Status publish_batch(const std::vector<Message>& messages) override {
    if (messages.empty()) return Status{};
    Headers h;
    h.published_ms = clock_->now_ms();
    std::lock_guard lock(pub_mu_);
    if (auto s = ensure_pub(); !s.ok()) return s;
    // Every basic.publish first, then one wait for all their confirms: the
    // broker persists them together (one flush) instead of one by one.
    const std::uint64_t first = pub_seq_ + 1;
    for (const auto& m : messages) {
      if (auto s = send_locked(rabbit_.queue, m.key, m.body, h); !s.ok()) {
        return std::move(s).error().with_context("publishing a batch of " + std::to_string(messages.size()));
      }
    }
    if (auto s = await_confirms_locked(first, pub_seq_, rabbit_.queue); !s.ok()) {
      return std::move(s).error().with_context("publishing a batch of " + std::to_string(messages.size()));
    }
    return Status{};
  }

  Result<std::optional<Delivery>> receive(milliseconds wait) override {
    const auto deadline = Steady::now() + wait;
    while (true) {
      std::optional<Received> got;
      {
        std::lock_guard lock(con_mu_);
        if (auto s = ensure_con(); !s.ok()) return std::move(s).error();
        const auto remaining = std::chrono::duration_cast<milliseconds>(deadline - Steady::now());
        const milliseconds slice = std::clamp(remaining, milliseconds(0), milliseconds(20));
        timeval tv = to_timeval(slice);
        amqp_maybe_release_buffers(con_.get());
        amqp_envelope_t envelope{};
        const amqp_rpc_reply_t r = amqp_consume_message(con_.get(), &envelope, &tv, 0);
        if (r.reply_type == AMQP_RESPONSE_NORMAL) {
          // Copied out under the lock: the envelope lives in the
          // connection's buffers, which the next consume releases.
          got = copy_envelope(envelope, con_generation_);
          amqp_destroy_envelope(&envelope);
        } else if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION && r.library_error == AMQP_STATUS_TIMEOUT) {
          // nothing yet
        } else if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
                   r.library_error == AMQP_STATUS_UNEXPECTED_STATE) {
          // A frame other than a delivery: a close from the broker, or an ack
          // of something else. Read it; any close means reconnecting.
          amqp_frame_t frame{};
          timeval zero{0, 0};
          const int rc = amqp_simple_wait_frame_noblock(con_.get(), &frame, &zero);
          if (rc != AMQP_STATUS_OK && rc != AMQP_STATUS_TIMEOUT) {
            drop_con();
            return Error(ErrorCode::unavailable, std::string("AMQP consumer: ") + amqp_error_string2(rc));
          }
          if (rc == AMQP_STATUS_OK && frame.frame_type == AMQP_FRAME_METHOD &&
              (frame.payload.method.id == AMQP_CHANNEL_CLOSE_METHOD ||
               frame.payload.method.id == AMQP_CONNECTION_CLOSE_METHOD)) {
            drop_con();
            return Error(ErrorCode::unavailable, "AMQP consumer: the broker closed the channel");
          }
        } else {
          const std::string why = reply_text(r);
          drop_con();
          return Error(ErrorCode::unavailable, "AMQP consumer: " + why);
        }
      }
      if (got) {
        auto d = take(std::move(*got));
        if (!d.ok()) return std::move(d).error();
        if (d->has_value()) return d;
        continue;  // a redelivery was requeued with its attempt counted
      }
      if (Steady::now() >= deadline) return std::optional<Delivery>{};
    }
  }

  Status ack(const Delivery& delivery) override {
    std::lock_guard lock(con_mu_);
    return ack_locked(delivery);
  }

  Result<bool> retry(const Delivery& delivery, milliseconds delay, const std::string& reason) override {
    if (auto s = check_held(delivery); !s.ok()) return std::move(s).error();
    if (delivery.attempt >= options_.max_attempts) {
      // Same wording as the embedded backend.
      const std::string why = "gave up after " + std::to_string(delivery.attempt) + " attempts: " + reason;
      if (auto s = dead_letter(delivery, why); !s.ok()) return std::move(s).error();
      return true;
    }
    Headers h;
    h.attempt = delivery.attempt + 1;
    h.published_ms = delivery.published_ms;
    {
      std::lock_guard lock(pub_mu_);
      Status s = delay.count() <= 0 ? publish_locked(rabbit_.queue, delivery.key, delivery.body, h)
                                    : publish_delayed_locked(delivery, h, delay);
      if (!s.ok()) {
        requeue(delivery);
        return std::move(s).error();
      }
    }
    std::lock_guard lock(con_mu_);
    if (auto s = ack_locked(delivery); !s.ok()) return std::move(s).error();
    return false;
  }

  Status dead_letter(const Delivery& delivery, const std::string& reason) override {
    if (auto s = check_held(delivery); !s.ok()) return s;
    Headers h;
    h.attempt = delivery.attempt;
    h.published_ms = delivery.published_ms;
    h.reason = reason.empty() ? "dead-lettered" : reason;
    h.dead_at_ms = clock_->now_ms();
    {
      std::lock_guard lock(pub_mu_);
      if (auto s = publish_locked(dead_queue_, delivery.key, delivery.body, h); !s.ok()) {
        requeue(delivery);
        return s;
      }
    }
    std::lock_guard lock(con_mu_);
    return ack_locked(delivery);
  }

  Status release(const Delivery& delivery) override {
    if (auto s = check_held(delivery); !s.ok()) return s;
    Headers h;
    h.attempt = delivery.attempt;  // not counted, unlike basic.nack(requeue) which marks it redelivered
    h.published_ms = delivery.published_ms;
    {
      std::lock_guard lock(pub_mu_);
      if (auto s = publish_locked(rabbit_.queue, delivery.key, delivery.body, h); !s.ok()) {
        requeue(delivery);
        return s;
      }
    }
    std::lock_guard lock(con_mu_);
    return ack_locked(delivery);
  }

  Status extend_lease(const Delivery& delivery) override { return check_held(delivery); }

  Result<QueueStats> stats() override {
    QueueStats st;
    std::lock_guard lock(pub_mu_);
    if (auto s = ensure_pub(); !s.ok()) return std::move(s).error();
    auto ready = count_locked(rabbit_.queue);
    if (!ready.ok()) return std::move(ready).error();
    st.ready = *ready;
    auto dead = count_locked(dead_queue_);
    if (!dead.ok()) return std::move(dead).error();
    st.dead = *dead;
    for (const auto& [ms, name] : delay_queues_) {
      auto n = count_locked(name);
      if (!n.ok()) return std::move(n).error();
      st.delayed += *n;
    }
    {
      std::lock_guard held(held_mu_);
      st.in_flight = held_.size();
    }
    return st;
  }

  Result<std::vector<DeadLetter>> list_dead(std::size_t limit) override {
    std::lock_guard lock(pub_mu_);
    if (auto s = ensure_pub(); !s.ok()) return std::move(s).error();
    // basic.get without ack, then close the channel: the broker puts every
    // message back in its place. Reads at most kMaxScan (oldest first).
    constexpr std::size_t kMaxScan = 10'000;
    std::vector<DeadLetter> all;
    Status failed = Status{};
    while (all.size() < kMaxScan) {
      const amqp_rpc_reply_t r = amqp_basic_get(pub_.get(), kInspect, bytes(dead_queue_), 0);
      if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        failed = Error(ErrorCode::unavailable, "listing dead letters: " + reply_text(r));
        break;
      }
      if (r.reply.id != AMQP_BASIC_GET_OK_METHOD) break;  // get-empty
      amqp_message_t message{};
      const amqp_rpc_reply_t m = amqp_read_message(pub_.get(), kInspect, &message, 0);
      if (m.reply_type != AMQP_RESPONSE_NORMAL) {
        failed = Error(ErrorCode::unavailable, "listing dead letters: " + reply_text(m));
        break;
      }
      const Headers h = read_headers(message.properties);
      DeadLetter d;
      if ((message.properties._flags & AMQP_BASIC_MESSAGE_ID_FLAG) != 0) d.key = str(message.properties.message_id);
      d.body = str(message.body);
      d.attempts = h.attempt;
      d.reason = h.reason;
      d.dead_at_ms = h.dead_at_ms;
      all.push_back(std::move(d));
      amqp_destroy_message(&message);
    }
    if (!failed.ok()) {
      drop_pub();
      return std::move(failed).error();
    }
    amqp_channel_close(pub_.get(), kInspect, AMQP_REPLY_SUCCESS);
    if (auto s = pub_.check("closing the inspection channel"); !s.ok()) {
      drop_pub();
      return std::move(s).error();
    }
    if (auto s = pub_.open_channel(kInspect); !s.ok()) {
      drop_pub();
      return std::move(s).error();
    }
    std::reverse(all.begin(), all.end());  // newest first
    if (all.size() > limit) all.resize(limit);
    return all;
  }

 private:
  // ---- connections (callers hold the matching mutex) ----

  void note_failure(Steady::time_point& next, milliseconds& backoff) {
    next = Steady::now() + backoff;
    backoff = std::min(backoff * 2, milliseconds(5000));
  }

  Status ensure_pub() {
    if (pub_.open()) return Status{};
    if (Steady::now() < pub_next_try_) {
      return Error(ErrorCode::unavailable, "RabbitMQ unreachable (retrying): " + pub_last_error_);
    }
    Status s = connect_pub();
    if (!s.ok()) {
      pub_.close();
      pub_last_error_ = s.error().message();
      note_failure(pub_next_try_, pub_backoff_);
      return s;
    }
    pub_backoff_ = milliseconds(100);
    return s;
  }

  Status connect_pub() {
    if (auto s = pub_.connect(url_, rabbit_.connect_timeout); !s.ok()) return s;
    if (auto s = pub_.open_channel(kChannel); !s.ok()) return s;
    amqp_confirm_select(pub_.get(), kChannel);
    if (auto s = pub_.check("confirm.select"); !s.ok()) return s;
    pub_seq_ = 0;  // delivery tags count from 1 on a new channel
    if (auto s = pub_.open_channel(kInspect); !s.ok()) return s;
    if (auto s = declare_locked(rabbit_.queue, amqp_empty_table); !s.ok()) return s;
    if (auto s = declare_locked(dead_queue_, amqp_empty_table); !s.ok()) return s;
    return Status{};
  }

  Status ensure_con() {
    if (con_.open()) return Status{};
    if (Steady::now() < con_next_try_) {
      return Error(ErrorCode::unavailable, "RabbitMQ unreachable (retrying): " + con_last_error_);
    }
    Status s = connect_con();
    if (!s.ok()) {
      con_.close();
      con_last_error_ = s.error().message();
      note_failure(con_next_try_, con_backoff_);
      return s;
    }
    con_backoff_ = milliseconds(100);
    return s;
  }

  Status connect_con() {
    if (auto s = con_.connect(url_, rabbit_.connect_timeout); !s.ok()) return s;
    if (auto s = con_.open_channel(kChannel); !s.ok()) return s;
    // The consumer may connect first (a worker that never publishes).
    amqp_queue_declare(con_.get(), kChannel, bytes(rabbit_.queue), 0, 1, 0, 0, amqp_empty_table);
    if (auto s = con_.check("declaring " + rabbit_.queue); !s.ok()) return s;
    amqp_basic_qos(con_.get(), kChannel, 0, std::max<std::uint16_t>(rabbit_.prefetch, 1), 0);
    if (auto s = con_.check("basic.qos"); !s.ok()) return s;
    amqp_basic_consume(con_.get(), kChannel, bytes(rabbit_.queue), amqp_empty_bytes, 0, /*no_ack=*/0, 0,
                       amqp_empty_table);
    if (auto s = con_.check("basic.consume on " + rabbit_.queue); !s.ok()) return s;
    ++con_generation_;
    return Status{};
  }

  void drop_con() {
    con_.close();
    std::lock_guard held(held_mu_);
    held_.clear();  // the broker requeues them
  }
  void drop_pub() { pub_.close(); }

  Status declare_locked(const std::string& name, amqp_table_t args) {
    amqp_queue_declare(pub_.get(), kChannel, bytes(name), 0, /*durable=*/1, 0, 0, args);
    return pub_.check("declaring queue " + name);
  }

  Status publish_delayed_locked(const Delivery& delivery, const Headers& h, milliseconds delay) {
    if (auto s = ensure_pub(); !s.ok()) return s;
    const std::string name = rabbit_.queue + ".delay." + std::to_string(delay.count());
    // Redeclared on every use: x-expires counts from the last declare, and
    // the queue must outlive its last message (delay + 60 s).
    amqp_table_entry_t entries[4];
    entries[0].key = amqp_cstring_bytes("x-message-ttl");
    entries[0].value.kind = AMQP_FIELD_KIND_I64;
    entries[0].value.value.i64 = delay.count();
    entries[1].key = amqp_cstring_bytes("x-dead-letter-exchange");
    entries[1].value.kind = AMQP_FIELD_KIND_UTF8;
    entries[1].value.value.bytes = amqp_cstring_bytes("");
    entries[2].key = amqp_cstring_bytes("x-dead-letter-routing-key");
    entries[2].value.kind = AMQP_FIELD_KIND_UTF8;
    entries[2].value.value.bytes = bytes(rabbit_.queue);
    entries[3].key = amqp_cstring_bytes("x-expires");
    entries[3].value.kind = AMQP_FIELD_KIND_I64;
    entries[3].value.value.i64 = delay.count() + 60'000;
    if (auto s = declare_locked(name, amqp_table_t{4, entries}); !s.ok()) return s;
    delay_queues_[delay.count()] = name;
    return publish_locked(name, delivery.key, delivery.body, h);
  }

  // basic.publish (persistent) and wait for the broker's confirm.
  Status publish_locked(const std::string& routing_key, const std::string& key, const std::string& body,
                        const Headers& h) {
    if (auto s = ensure_pub(); !s.ok()) return s;
    if (auto s = send_locked(routing_key, key, body, h); !s.ok()) return s;
    return await_confirms_locked(pub_seq_, pub_seq_, routing_key);
  }

  // basic.publish without waiting: the channel's next delivery tag (pub_seq_)
  // names it in the confirm.
  Status send_locked(const std::string& routing_key, const std::string& key, const std::string& body,
                     const Headers& h) {
    HeaderTable table(h);
    amqp_basic_properties_t props{};
    props._flags = AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_HEADERS_FLAG | AMQP_BASIC_MESSAGE_ID_FLAG |
                   AMQP_BASIC_CONTENT_TYPE_FLAG;
    props.delivery_mode = AMQP_DELIVERY_PERSISTENT;
    props.headers = table.table();
    props.message_id = bytes(key);
    props.content_type = amqp_cstring_bytes("application/octet-stream");
    const int rc = amqp_basic_publish(pub_.get(), kChannel, amqp_empty_bytes, bytes(routing_key), /*mandatory=*/1, 0,
                                      &props, bytes(body));
    if (rc != AMQP_STATUS_OK) {
      drop_pub();
      return Error(ErrorCode::unavailable, std::string("basic.publish: ") + amqp_error_string2(rc));
    }
    ++pub_seq_;
    return Status{};
  }

  // Waits until the broker confirmed every delivery tag in [first, last] of
  // the publishing channel (we hold pub_mu_, so nothing else is outstanding).
  // A basic.nack of any, or a basic.return (mandatory, no queue bound; it
  // comes before that message's ack), fails the whole range.
  Status await_confirms_locked(std::uint64_t first, std::uint64_t last, const std::string& routing_key) {
    std::vector<bool> confirmed(last - first + 1, false);
    std::size_t pending = confirmed.size();
    auto confirm = [&](std::uint64_t tag, bool multiple) {
      const std::uint64_t from = multiple ? first : std::max(tag, first);
      for (std::uint64_t t = from; t <= std::min(tag, last); ++t) {
        if (!confirmed[t - first]) {
          confirmed[t - first] = true;
          --pending;
        }
      }
    };
    const auto deadline = Steady::now() + rabbit_.confirm_timeout;
    bool returned = false;
    bool nacked = false;
    while (pending > 0) {
      const auto remaining = std::chrono::duration_cast<milliseconds>(deadline - Steady::now());
      if (remaining.count() <= 0) {
        drop_pub();  // the confirm may still come; the connection state is unknown
        return Error(ErrorCode::unavailable, "no publisher confirm within " +
                                                 std::to_string(rabbit_.confirm_timeout.count()) + " ms");
      }
      timeval tv = to_timeval(remaining);
      amqp_frame_t frame{};
      const int wr = amqp_simple_wait_frame_noblock(pub_.get(), &frame, &tv);
      if (wr != AMQP_STATUS_OK) {
        if (wr == AMQP_STATUS_TIMEOUT) continue;
        drop_pub();
        return Error(ErrorCode::unavailable, std::string("waiting for publisher confirm: ") + amqp_error_string2(wr));
      }
      if (frame.frame_type != AMQP_FRAME_METHOD) continue;  // body/header of a basic.return
      switch (frame.payload.method.id) {
        case AMQP_BASIC_ACK_METHOD: {
          const auto* ack = static_cast<const amqp_basic_ack_t*>(frame.payload.method.decoded);
          confirm(ack->delivery_tag, ack->multiple != 0);
          break;
        }
        case AMQP_BASIC_NACK_METHOD: {
          const auto* nack = static_cast<const amqp_basic_nack_t*>(frame.payload.method.decoded);
          confirm(nack->delivery_tag, nack->multiple != 0);
          nacked = true;
          break;
        }
        case AMQP_BASIC_RETURN_METHOD:
          returned = true;
          break;
        case AMQP_CHANNEL_CLOSE_METHOD:
        case AMQP_CONNECTION_CLOSE_METHOD:
          drop_pub();
          return Error(ErrorCode::unavailable, "the broker closed the publishing channel");
        default:
          break;
      }
    }
    // Every outstanding confirm has arrived, so the channel is clean for the
    // next publish even on failure.
    if (nacked) return Error(ErrorCode::unavailable, "the broker refused the message (basic.nack)");
    if (returned) return Error(ErrorCode::not_found, "no queue " + routing_key + " to route the message to");
    return Status{};
  }

  Result<std::uint64_t> count_locked(const std::string& name) {
    amqp_queue_declare_ok_t* ok = amqp_queue_declare(pub_.get(), kInspect, bytes(name), /*passive=*/1, 0, 0, 0,
                                                     amqp_empty_table);
    const amqp_rpc_reply_t r = amqp_get_rpc_reply(pub_.get());
    if (r.reply_type == AMQP_RESPONSE_NORMAL && ok != nullptr) return static_cast<std::uint64_t>(ok->message_count);
    if (channel_closed_404(r)) {
      // An idle delay queue expired: nothing delayed there. The broker closed
      // the channel; confirm the close and reopen it.
      amqp_channel_close_ok_t close_ok{};
      amqp_send_method(pub_.get(), kInspect, AMQP_CHANNEL_CLOSE_OK_METHOD, &close_ok);
      if (auto s = pub_.open_channel(kInspect); !s.ok()) return std::move(s).error();
      return std::uint64_t{0};
    }
    const std::string why = reply_text(r);
    drop_pub();
    return Error(ErrorCode::unavailable, "counting " + name + ": " + why);
  }

  // ---- deliveries ----

  struct Received {
    Delivery delivery;
    Headers headers;
    bool redelivered = false;
  };

  static std::string receipt_of(std::uint64_t generation, std::uint64_t tag) {
    return std::to_string(generation) + ":" + std::to_string(tag);
  }

  static std::optional<std::pair<std::uint64_t, std::uint64_t>> parse_receipt(const std::string& receipt) {
    const auto colon = receipt.find(':');
    if (colon == std::string::npos) return std::nullopt;
    std::uint64_t g = 0, t = 0;
    const char* b = receipt.data();
    const char* e = b + receipt.size();
    auto r1 = std::from_chars(b, b + colon, g);
    auto r2 = std::from_chars(b + colon + 1, e, t);
    if (r1.ec != std::errc{} || r1.ptr != b + colon || r2.ec != std::errc{} || r2.ptr != e || colon == 0) {
      return std::nullopt;
    }
    return std::make_pair(g, t);
  }

  Status check_held(const Delivery& d) {
    if (!parse_receipt(d.receipt)) return Error(ErrorCode::invalid_argument, "malformed receipt: " + d.receipt);
    std::lock_guard held(held_mu_);
    if (held_.count(d.receipt) == 0) {
      return Error(ErrorCode::not_found, "delivery " + d.receipt + " of " + d.key +
                                             " is not held (acked already, or its connection was lost and the "
                                             "broker requeued it)");
    }
    return Status{};
  }

  // When the copy that retry/dead_letter/release publish cannot be published
  // (the broker is going away), the delivery must not stay held: with
  // prefetch it would block this consumer. basic.nack(requeue) hands it back;
  // the broker marks it redelivered, which counts an attempt on its return.
  void requeue(const Delivery& d) {
    auto parsed = parse_receipt(d.receipt);
    if (!parsed) return;
    std::lock_guard lock(con_mu_);
    {
      std::lock_guard held(held_mu_);
      if (held_.erase(d.receipt) == 0 || parsed->first != con_generation_ || !con_.open()) return;
    }
    if (amqp_basic_nack(con_.get(), kChannel, parsed->second, 0, /*requeue=*/1) != AMQP_STATUS_OK) drop_con();
  }

  // Caller holds con_mu_.
  Status ack_locked(const Delivery& d) {
    auto parsed = parse_receipt(d.receipt);
    if (!parsed) return Error(ErrorCode::invalid_argument, "malformed receipt: " + d.receipt);
    {
      std::lock_guard held(held_mu_);
      if (held_.count(d.receipt) == 0 || parsed->first != con_generation_ || !con_.open()) {
        return Error(ErrorCode::not_found, "delivery " + d.receipt + " of " + d.key + " is not held");
      }
      held_.erase(d.receipt);
    }
    const int rc = amqp_basic_ack(con_.get(), kChannel, parsed->second, 0);
    if (rc != AMQP_STATUS_OK) {
      drop_con();
      return Error(ErrorCode::unavailable, std::string("basic.ack: ") + amqp_error_string2(rc));
    }
    return Status{};
  }

  // Turns an envelope into a Delivery; a redelivered one (its consumer died)
  // is instead republished with its attempt counted, or dead-lettered.
  static Received copy_envelope(const amqp_envelope_t& envelope, std::uint64_t generation) {
    Received r;
    r.headers = read_headers(envelope.message.properties);
    Delivery& d = r.delivery;
    d.receipt = receipt_of(generation, envelope.delivery_tag);
    if ((envelope.message.properties._flags & AMQP_BASIC_MESSAGE_ID_FLAG) != 0) {
      d.key = str(envelope.message.properties.message_id);
    }
    d.body = str(envelope.message.body);
    d.attempt = r.headers.attempt;
    d.published_ms = r.headers.published_ms;
    r.redelivered = envelope.redelivered != 0;
    return r;
  }

  Result<std::optional<Delivery>> take(Received received) {
    Delivery d = std::move(received.delivery);
    const Headers& h = received.headers;
    {
      std::lock_guard held(held_mu_);
      held_.insert(d.receipt);
    }
    if (!received.redelivered) return std::optional<Delivery>(std::move(d));
    if (d.attempt >= options_.max_attempts) {
      auto s = dead_letter(d, "delivered " + std::to_string(d.attempt) +
                                  " times without an ack (its consumers died or lost the broker)");
      if (!s.ok()) return std::move(s).error();
      return std::optional<Delivery>{};
    }
    Headers next = h;
    next.attempt = d.attempt + 1;
    {
      std::lock_guard lock(pub_mu_);
      if (auto s = publish_locked(rabbit_.queue, d.key, d.body, next); !s.ok()) {
        // Typically the publishing connection still points at a broker that
        // restarted. Held, this delivery would use up the prefetch and the
        // broker would send this consumer nothing more, for ever.
        requeue(d);
        return std::move(s).error().with_context("republishing redelivered " + d.key);
      }
    }
    std::lock_guard lock(con_mu_);
    if (auto s = ack_locked(d); !s.ok()) return std::move(s).error();
    return std::optional<Delivery>{};
  }

  const Url url_;
  const QueueOptions options_;
  const RabbitMqOptions rabbit_;
  const Clock* clock_;
  const std::string dead_queue_;

  std::mutex pub_mu_;  // pub_, pub_seq_, delay_queues_, pub backoff
  std::uint64_t pub_seq_ = 0;  // delivery tag of the last basic.publish on the publishing channel
  Connection pub_;
  std::map<std::int64_t, std::string> delay_queues_;
  Steady::time_point pub_next_try_{};
  milliseconds pub_backoff_{100};
  std::string pub_last_error_;

  std::mutex con_mu_;  // con_, con_generation_, con backoff
  Connection con_;
  std::uint64_t con_generation_ = 0;
  Steady::time_point con_next_try_{};
  milliseconds con_backoff_{100};
  std::string con_last_error_;

  std::mutex held_mu_;  // innermost
  std::set<std::string> held_;
};

}  // namespace

Result<std::unique_ptr<JobQueue>> open_rabbitmq_queue(const std::string& url, QueueOptions options,
                                                      RabbitMqOptions rabbit) {
  if (options.max_attempts == 0) return Error(ErrorCode::invalid_argument, "max_attempts must be at least 1");
  if (rabbit.queue.empty()) return Error(ErrorCode::invalid_argument, "empty RabbitMQ queue name");
  auto parsed = parse_url(url);
  if (!parsed.ok()) return std::move(parsed).error();
  auto q = std::make_unique<RabbitMqQueue>(std::move(parsed).value(), options, std::move(rabbit));
  if (auto s = q->connect(); !s.ok()) return std::move(s).error().with_context("opening RabbitMQ queue " + url);
  return std::unique_ptr<JobQueue>(std::move(q));
}

}  // namespace hashsieve::queue
