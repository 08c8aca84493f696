#include "hashsieve/queue/open_queue.h"

namespace hashsieve::queue {

Result<std::unique_ptr<JobQueue>> open_queue(const std::string& setting, const std::string& data_dir,
                                             QueueOptions options, RabbitMqOptions rabbit) {
  if (setting.empty() || setting == "embedded") return open_sqlite_queue(data_dir, options);
  if (setting.starts_with("amqp://")) return open_rabbitmq_queue(setting, options, std::move(rabbit));
  // Never echo the setting: it may hold a password.
  return Error(ErrorCode::invalid_argument, "queue: want \"embedded\" or an amqp:// URL");
}

}  // namespace hashsieve::queue
