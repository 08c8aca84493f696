// Picks the queue backend from one setting (config `queue:` or
// HASHSIEVE_QUEUE), for `serve` and `worker`:
//   "amqp://user:pass@host:port/vhost"   RabbitMQ (rabbitmq_queue.h)
//   "" or "embedded"                      SQLite, <data_dir>/queue.db
#pragma once

#include <memory>
#include <string>

#include "hashsieve/queue/job_queue.h"
#include "hashsieve/queue/rabbitmq_queue.h"

namespace hashsieve::queue {

Result<std::unique_ptr<JobQueue>> open_queue(const std::string& setting, const std::string& data_dir,
                                             QueueOptions options = {}, RabbitMqOptions rabbit = {});

}  // namespace hashsieve::queue
