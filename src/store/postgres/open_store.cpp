// open_store: the backend from the URL scheme (open_store.h).
#include "hashsieve/store/open_store.h"

namespace hashsieve::store {

Result<StoreSet> open_store(const std::string& url, const PostgresOptions& options) {
  auto starts = [&](const char* p) { return url.rfind(p, 0) == 0; };
  if (url.empty()) return Error(ErrorCode::invalid_argument, "store: no store URL or data directory given");
  if (starts("postgres://") || starts("postgresql://")) {
    auto db = PostgresDatabase::open(url, options);
    if (!db.ok()) return std::move(db).error();
    return StoreSet{"postgres", db->store(), db->job_store(), db->container_store()};
  }
  std::string dir = url;
  if (starts("sqlite:")) {
    dir = url.substr(7);
    if (dir.rfind("//", 0) == 0) dir = dir.substr(2);  // sqlite:///var/lib/x -> /var/lib/x
  } else if (url.find("://") != std::string::npos) {
    return Error(ErrorCode::invalid_argument,
                 "store: unknown store URL scheme in '" + url + "' (expected postgres://, sqlite: or a directory)");
  }
  if (dir.empty()) return Error(ErrorCode::invalid_argument, "store: '" + url + "' names no directory");
  auto store = open_sqlite_store(dir);
  if (!store.ok()) return std::move(store).error();
  auto jobs = open_sqlite_job_store(dir, options.clock);
  if (!jobs.ok()) return std::move(jobs).error();
  auto containers = open_sqlite_container_store(dir);
  if (!containers.ok()) return std::move(containers).error();
  return StoreSet{"sqlite", std::move(store).value(), std::move(jobs).value(), std::move(containers).value()};
}

}  // namespace hashsieve::store
