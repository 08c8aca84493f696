// The PostgreSQL ContainerStore (container_store.h): migration 0003's
// tables; same semantics as sqlite_container_store.cpp.
#include <limits>

#include "hashsieve/store/container_store.h"
#include "pg_pool.h"

namespace hashsieve::store {
namespace {

using pg::Connection;
using pg::PgResult;

#define HS_CONTAINER_COLUMNS \
  "id, name, image, image_id, image_scan_id, scanned_at, verdict, drifted_files, errors, result_json"

std::string u64(std::uint64_t v) {
  return std::to_string(std::min<std::uint64_t>(v, std::numeric_limits<std::int64_t>::max()));
}

Result<std::vector<ContainerRecord>> read_records(Result<PgResult> r) {
  if (!r.ok()) return std::move(r).error();
  std::vector<ContainerRecord> out;
  for (int i = 0; i < r->rows(); ++i) {
    ContainerRecord c;
    c.id = r->text(i, 0);
    c.name = r->text(i, 1);
    c.image = r->text(i, 2);
    c.image_id = r->text(i, 3);
    auto scan = r->int64(i, 4);
    auto drifted = r->int64(i, 7);
    auto errors = r->int64(i, 8);
    for (auto* v : {&scan, &drifted, &errors}) {
      if (!v->ok()) return std::move(*v).error().with_context("container " + c.id);
    }
    c.image_scan_id = *scan;
    c.scanned_at = r->text(i, 5);
    c.verdict = r->text(i, 6);
    c.drifted_files = static_cast<std::uint64_t>(*drifted);
    c.errors = static_cast<std::uint64_t>(*errors);
    c.result_json = r->text(i, 9);
    out.push_back(std::move(c));
  }
  return out;
}

class PostgresContainerStore final : public ContainerStore {
 public:
  explicit PostgresContainerStore(std::shared_ptr<pg::Pool> pool) : pool_(std::move(pool)) {}

  Status put_container_result(const ContainerRecord& r) override {
    auto out = pg::with_connection(*pool_, [&](Connection& c) -> Result<bool> {
      auto res = c.run("hs_put_container",
                       "INSERT INTO containers(" HS_CONTAINER_COLUMNS ") VALUES($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)"
                       " ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, image = EXCLUDED.image,"
                       " image_id = EXCLUDED.image_id, image_scan_id = EXCLUDED.image_scan_id,"
                       " scanned_at = EXCLUDED.scanned_at, verdict = EXCLUDED.verdict,"
                       " drifted_files = EXCLUDED.drifted_files, errors = EXCLUDED.errors,"
                       " result_json = EXCLUDED.result_json",
                       {r.id, r.name, r.image, r.image_id, std::to_string(r.image_scan_id), r.scanned_at, r.verdict,
                        u64(r.drifted_files), u64(r.errors), r.result_json});
      if (!res.ok()) return std::move(res).error().with_context("storing container " + r.id);
      return true;
    });
    if (!out.ok()) return std::move(out).error();
    return {};
  }

  Result<std::optional<ContainerRecord>> get_container_result(const std::string& id) override {
    if (id.size() < 4) return Error(ErrorCode::invalid_argument, "container ID prefix '" + id + "' is shorter than 4");
    return pg::with_connection(*pool_, [&](Connection& c) -> Result<std::optional<ContainerRecord>> {
      // Prefix match by range (byte order), so LIKE wildcards in `id` mean
      // nothing; an exact ID sorts first.
      std::string upper = id;
      upper.push_back('\x7f');
      auto found = read_records(c.run("hs_get_container",
                                      "SELECT " HS_CONTAINER_COLUMNS " FROM containers WHERE id >= $1 AND id < $2"
                                      " ORDER BY id LIMIT 2",
                                      {id, upper}));
      if (!found.ok()) return std::move(found).error().with_context("reading container " + id);
      if (found->empty()) return std::optional<ContainerRecord>();
      if (found->size() > 1 && (*found)[0].id != id) {
        return Error(ErrorCode::invalid_argument, "container ID prefix '" + id + "' matches several containers");
      }
      return std::optional<ContainerRecord>(std::move((*found)[0]));
    });
  }

  Result<std::vector<ContainerRecord>> list_container_results(std::size_t limit) override {
    return pg::with_connection(*pool_, [&](Connection& c) {
      return read_records(
          c.run("hs_list_containers", "SELECT " HS_CONTAINER_COLUMNS " FROM containers ORDER BY scanned_at DESC, id LIMIT $1",
                {u64(limit)}));
    });
  }

  Result<std::vector<ContainerRecord>> list_containers(const ContainerFilter& filter) override {
    // id is the primary key (COLLATE "C", byte order like SQLite's).
    return pg::with_connection(*pool_, [&](Connection& c) {
      return read_records(c.run("hs_list_containers_after",
                                "SELECT " HS_CONTAINER_COLUMNS " FROM containers WHERE id > $1"
                                " AND ($2::text = '' OR verdict = $2) ORDER BY id LIMIT $3",
                                {filter.after_id, filter.verdict, u64(filter.limit)}));
    });
  }

  Status remove_container(const std::string& id) override {
    auto out = pg::in_transaction(*pool_, [&](Connection& c) -> Result<bool> {
      auto a = c.run("hs_remove_container", "DELETE FROM containers WHERE id = $1", {id});
      if (!a.ok()) return std::move(a).error().with_context("removing container " + id);
      auto b = c.run("hs_remove_schedule", "DELETE FROM container_schedule WHERE id = $1", {id});
      if (!b.ok()) return std::move(b).error().with_context("removing container " + id);
      return true;
    });
    if (!out.ok()) return std::move(out).error();
    return {};
  }

  Status put_schedule(const ScheduleState& s) override {
    auto out = pg::with_connection(*pool_, [&](Connection& c) -> Result<bool> {
      auto r = c.run("hs_put_schedule",
                     "INSERT INTO container_schedule(id, last_scan_ms, last_event_ms, failures) VALUES($1,$2,$3,$4)"
                     " ON CONFLICT (id) DO UPDATE SET last_scan_ms = EXCLUDED.last_scan_ms,"
                     " last_event_ms = EXCLUDED.last_event_ms, failures = EXCLUDED.failures",
                     {s.container_id, std::to_string(s.last_scan_ms), std::to_string(s.last_event_ms),
                      std::to_string(s.failures)});
      if (!r.ok()) return std::move(r).error().with_context("storing schedule of " + s.container_id);
      return true;
    });
    if (!out.ok()) return std::move(out).error();
    return {};
  }

  Result<std::vector<ScheduleState>> list_schedule() override {
    return pg::with_connection(*pool_, [&](Connection& c) -> Result<std::vector<ScheduleState>> {
      auto r = c.run("hs_list_schedule",
                     "SELECT id, last_scan_ms, last_event_ms, failures FROM container_schedule ORDER BY id", {});
      if (!r.ok()) return std::move(r).error().with_context("listing the schedule");
      std::vector<ScheduleState> out;
      for (int i = 0; i < r->rows(); ++i) {
        auto scan = r->int64(i, 1);
        auto event = r->int64(i, 2);
        auto failures = r->int64(i, 3);
        for (auto* v : {&scan, &event, &failures}) {
          if (!v->ok()) return std::move(*v).error();
        }
        out.push_back(ScheduleState{r->text(i, 0), *scan, *event, static_cast<std::uint32_t>(*failures)});
      }
      return out;
    });
  }

 private:
  std::shared_ptr<pg::Pool> pool_;
};

}  // namespace

std::unique_ptr<ContainerStore> make_postgres_container_store(std::shared_ptr<pg::Pool> pool) {
  return std::make_unique<PostgresContainerStore>(std::move(pool));
}

}  // namespace hashsieve::store
