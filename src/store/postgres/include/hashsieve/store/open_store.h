// Picks the store backend from one setting (config `store:` or
// HASHSIEVE_STORE), for `serve` and `worker`:
//   "postgres://..." or "postgresql://..."  PostgreSQL (libpq URI)
//   "sqlite:<dir>" or a plain directory     SQLite, <dir>/store.db
#pragma once

#include <memory>
#include <string>

#include "hashsieve/core/result.h"
#include "hashsieve/store/container_store.h"
#include "hashsieve/store/job_store.h"
#include "hashsieve/store/postgres_store.h"
#include "hashsieve/store/store.h"

namespace hashsieve::store {

struct StoreSet {
  std::string backend;  // "sqlite" or "postgres"
  std::unique_ptr<Store> store;
  std::unique_ptr<JobStore> jobs;
  std::unique_ptr<ContainerStore> containers;
};

// `options` applies to PostgreSQL (pool size) and to both (clock).
Result<StoreSet> open_store(const std::string& url_or_data_dir, const PostgresOptions& options = {});

}  // namespace hashsieve::store
