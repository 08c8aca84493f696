// The PostgreSQL backend of the store interfaces (store.h, job_store.h,
// container_store.h),
// through libpq (issue 7). Same semantics as the SQLite backend; the
// conformance suite (src/store/tests/store_conformance_test.cpp) runs both.
//
// - One connection pool per PostgresDatabase, shared by the stores made from
//   it; thread-safe; at most `pool_size` connections, a caller waits for one.
// - Statements are prepared by name on each connection at first use.
// - Numbered migrations (migrations/NNNN_*.sql, compiled in) are applied at
//   open in one transaction under an advisory lock, recorded in
//   schema_migrations; a database newer than this build is refused.
// - A lost connection is ErrorCode::unavailable; the pool drops its idle
//   connections and reconnects on the next call, so a retry after the
//   server is back succeeds.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "hashsieve/core/clock.h"
#include "hashsieve/core/result.h"
#include "hashsieve/store/container_store.h"
#include "hashsieve/store/job_store.h"
#include "hashsieve/store/store.h"

namespace hashsieve::store {

struct PostgresOptions {
  std::size_t pool_size = 4;
  const Clock* clock = nullptr;  // job timestamps; null: system_clock()
};

namespace pg {
class Pool;
}

// An open database: the pool, migrated. Stores made from it share the pool
// and may outlive this object.
class PostgresDatabase {
 public:
  // `conninfo`: a libpq connection string or URI ("postgresql://u@h:5432/db").
  static Result<PostgresDatabase> open(const std::string& conninfo, const PostgresOptions& options = {});

  std::unique_ptr<Store> store() const;
  std::unique_ptr<JobStore> job_store() const;
  std::unique_ptr<ContainerStore> container_store() const;

 private:
  PostgresDatabase(std::shared_ptr<pg::Pool> pool, const Clock* clock) : pool_(std::move(pool)), clock_(clock) {}
  std::shared_ptr<pg::Pool> pool_;
  const Clock* clock_;
};

Result<std::unique_ptr<Store>> open_postgres_store(const std::string& conninfo, const PostgresOptions& options = {});
Result<std::unique_ptr<JobStore>> open_postgres_job_store(const std::string& conninfo,
                                                          const PostgresOptions& options = {});

}  // namespace hashsieve::store
