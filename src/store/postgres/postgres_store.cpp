// The PostgreSQL Store (layer facts, scan list) and the open functions.
// A layer's facts are written in one transaction: the layers row is
// upserted (its row lock serialises concurrent puts of one key), its old
// files deleted and the new ones sent with COPY, so readers, which go
// through the layers row in one snapshot, see a layer whole or not at all.
#include <limits>

#include "hashsieve/store/postgres_store.h"
#include "pg_pool.h"

namespace hashsieve::store {
namespace {

using pg::Connection;
using pg::Param;

std::string clamp_limit(std::size_t limit) {
  return std::to_string(std::min<std::size_t>(limit, static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max())));
}

class PostgresStore final : public Store {
 public:
  explicit PostgresStore(std::shared_ptr<pg::Pool> pool) : pool_(std::move(pool)) {}

  Result<bool> has_layer(const LayerKey& key) override {
    return pg::with_connection(*pool_, [&](Connection& c) -> Result<bool> {
      auto r = c.run("hs_has_layer", "SELECT 1 FROM layers WHERE diff_id = $1 AND hasher_versions = $2",
                     {key.diff_id, key.hasher_versions});
      if (!r.ok()) return std::move(r).error();
      return r->rows() > 0;
    });
  }

  Result<std::optional<LayerFacts>> get_layer_facts(const LayerKey& key) override {
    // One statement is one snapshot: the layer row and its files agree.
    return pg::with_connection(*pool_, [&](Connection& c) -> Result<std::optional<LayerFacts>> {
      auto r = c.run("hs_get_layer",
                     "SELECT l.files, f.path, f.kind, f.size, f.mode, f.link_target, f.md5, f.sha1, f.sha256,"
                     " f.crc32, f.sdbf, f.tlsh, f.ssdeep, f.content_keys, f.similarity,"
                     " f.rodata_size, f.rodata_sdbf, f.rodata_tlsh, f.rodata_ssdeep"
                     " FROM layers l LEFT JOIN layer_files f ON f.layer_id = l.id"
                     " WHERE l.diff_id = $1 AND l.hasher_versions = $2 ORDER BY f.seq",
                     {key.diff_id, key.hasher_versions});
      if (!r.ok()) return std::move(r).error();
      if (r->rows() == 0) return std::optional<LayerFacts>();
      LayerFacts facts;
      for (int i = 0; i < r->rows(); ++i) {
        if (r->is_null(i, 1)) continue;  // a layer without entries
        FileFacts f;
        auto path = r->bytes(i, 1);
        auto target = r->bytes(i, 5);
        if (!path.ok()) return std::move(path).error().with_context("store: layer " + key.diff_id);
        if (!target.ok()) return std::move(target).error().with_context("store: layer " + key.diff_id);
        f.path = std::move(path).value();
        auto kind = parse_fact_kind(r->text(i, 2));
        if (!kind.ok()) return std::move(kind).error().with_context("store: layer " + key.diff_id + ": " + f.path);
        f.kind = *kind;
        auto size = r->int64(i, 3);
        auto mode = r->int64(i, 4);
        if (!size.ok() || !mode.ok() || *size < 0 || *mode < 0 || *mode > 0xFFFFFFFF) {
          return Error(ErrorCode::parse_error, "store: layer " + key.diff_id + ": " + f.path + ": bad size or mode");
        }
        f.size = static_cast<std::uint64_t>(*size);
        f.mode = static_cast<std::uint32_t>(*mode);
        f.link_target = std::move(target).value();
        f.md5 = r->text(i, 6);
        f.sha1 = r->text(i, 7);
        f.sha256 = r->text(i, 8);
        f.crc32 = r->text(i, 9);
        f.sdbf = r->text(i, 10);
        f.tlsh = r->text(i, 11);
        f.ssdeep = r->text(i, 12);
        f.content_keys = r->text(i, 13);
        f.similarity_computed = r->boolean(i, 14);
        if (!r->is_null(i, 15)) {
          auto rodata_size = r->int64(i, 15);
          if (!rodata_size.ok() || *rodata_size < 0) {
            return Error(ErrorCode::parse_error, "store: layer " + key.diff_id + ": " + f.path + ": bad rodata_size");
          }
          f.rodata_size = static_cast<std::uint64_t>(*rodata_size);
        }
        f.rodata_sdbf = r->text(i, 16);  // NULL reads as ""
        f.rodata_tlsh = r->text(i, 17);
        f.rodata_ssdeep = r->text(i, 18);
        facts.files.push_back(std::move(f));
      }
      return std::optional<LayerFacts>(std::move(facts));
    });
  }

  Status put_layer_facts(const LayerKey& key, const LayerFacts& facts) override {
    // Encode first: a bad row fails before anything is sent.
    for (const FileFacts& f : facts.files) {
      if (f.size > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) ||
          (f.rodata_size && *f.rodata_size > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))) {
        return Error(ErrorCode::invalid_argument, f.path + ": size out of range")
            .with_context("storing facts of layer " + key.diff_id);
      }
    }
    auto out = pg::in_transaction(*pool_, [&](Connection& c) -> Result<bool> {
      auto id = c.run("hs_upsert_layer",
                      "INSERT INTO layers(diff_id, hasher_versions, files) VALUES($1, $2, $3)"
                      " ON CONFLICT (diff_id, hasher_versions) DO UPDATE SET files = EXCLUDED.files RETURNING id",
                      {key.diff_id, key.hasher_versions, std::to_string(facts.files.size())});
      if (!id.ok()) return std::move(id).error();
      const std::string layer_id = id->text(0, 0);
      auto del = c.run("hs_delete_layer_files", "DELETE FROM layer_files WHERE layer_id = $1", {layer_id});
      if (!del.ok()) return std::move(del).error();
      if (facts.files.empty()) return true;
      std::string data;
      for (std::size_t i = 0; i < facts.files.size(); ++i) {
        const FileFacts& f = facts.files[i];
        data += layer_id;
        data += '\t';
        data += std::to_string(i);
        data += '\t';
        pg::copy_field(data, pg::bytea_text(f.path), '\t');  // BYTEA: any bytes (migration 0005)
        pg::copy_field(data, to_string(f.kind), '\t');
        pg::copy_field(data, std::to_string(f.size), '\t');
        pg::copy_field(data, std::to_string(f.mode), '\t');
        pg::copy_field(data, pg::bytea_text(f.link_target), '\t');
        pg::copy_field(data, f.md5, '\t');
        pg::copy_field(data, f.sha1, '\t');
        pg::copy_field(data, f.sha256, '\t');
        pg::copy_field(data, f.crc32, '\t');
        pg::copy_field(data, f.sdbf, '\t');
        pg::copy_field(data, f.tlsh, '\t');
        pg::copy_field(data, f.ssdeep, '\t');
        pg::copy_field(data, f.content_keys, '\t');
        data += f.similarity_computed ? "t\t" : "f\t";
        // \N is COPY's NULL: no .rodata digests (or none of that algorithm).
        auto nullable = [&](const std::string& v, char sep) {
          if (v.empty()) {
            data += "\\N";
            data += sep;
          } else {
            pg::copy_field(data, v, sep);
          }
        };
        nullable(f.rodata_size ? std::to_string(*f.rodata_size) : std::string(), '\t');
        nullable(f.rodata_sdbf, '\t');
        nullable(f.rodata_tlsh, '\t');
        nullable(f.rodata_ssdeep, '\n');
      }
      if (auto st = c.copy_in("COPY layer_files(layer_id, seq, path, kind, size, mode, link_target, md5, sha1,"
                              " sha256, crc32, sdbf, tlsh, ssdeep, content_keys, similarity, rodata_size, rodata_sdbf,"
                              " rodata_tlsh, rodata_ssdeep) FROM STDIN",
                              data);
          !st.ok()) {
        return std::move(st).error();
      }
      return true;
    });
    if (!out.ok()) return std::move(out).error().with_context("storing facts of layer " + key.diff_id);
    return {};
  }

  Result<std::int64_t> put_scan_result(const ScanRecord& r) override {
    return pg::with_connection(*pool_, [&](Connection& c) -> Result<std::int64_t> {
      auto res = c.run("hs_put_scan",
                       "INSERT INTO scans(reference, image_digest, platform, scanned_at, verdict, summary_json)"
                       " VALUES($1, $2, $3, $4, $5, $6) RETURNING id",
                       {r.reference, r.image_digest, r.platform, r.scanned_at, r.verdict, r.summary_json});
      if (!res.ok()) return std::move(res).error().with_context("storing a scan result");
      return res->int64(0, 0);
    });
  }

  Result<std::vector<ScanRecord>> list_scan_results(std::size_t limit) override {
    return pg::with_connection(*pool_, [&](Connection& c) -> Result<std::vector<ScanRecord>> {
      auto res = c.run("hs_list_scans",
                       "SELECT id, reference, image_digest, platform, scanned_at, verdict, summary_json"
                       " FROM scans ORDER BY id DESC LIMIT $1",
                       {clamp_limit(limit)});
      if (!res.ok()) return std::move(res).error().with_context("listing scan results");
      std::vector<ScanRecord> out;
      for (int i = 0; i < res->rows(); ++i) {
        ScanRecord s;
        auto id = res->int64(i, 0);
        if (!id.ok()) return std::move(id).error();
        s.id = *id;
        s.reference = res->text(i, 1);
        s.image_digest = res->text(i, 2);
        s.platform = res->text(i, 3);
        s.scanned_at = res->text(i, 4);
        s.verdict = res->text(i, 5);
        s.summary_json = res->text(i, 6);
        out.push_back(std::move(s));
      }
      return out;
    });
  }

 private:
  std::shared_ptr<pg::Pool> pool_;
};

}  // namespace

Result<PostgresDatabase> PostgresDatabase::open(const std::string& conninfo, const PostgresOptions& options) {
  auto pool = pg::Pool::open(conninfo, options.pool_size);
  if (!pool.ok()) return std::move(pool).error();
  return PostgresDatabase(std::move(pool).value(), options.clock);
}

std::unique_ptr<Store> PostgresDatabase::store() const { return std::make_unique<PostgresStore>(pool_); }

std::unique_ptr<JobStore> PostgresDatabase::job_store() const {
  return make_postgres_job_store(pool_, clock_ != nullptr ? *clock_ : system_clock());
}

std::unique_ptr<ContainerStore> PostgresDatabase::container_store() const {
  return make_postgres_container_store(pool_);
}

Result<std::unique_ptr<Store>> open_postgres_store(const std::string& conninfo, const PostgresOptions& options) {
  auto db = PostgresDatabase::open(conninfo, options);
  if (!db.ok()) return std::move(db).error();
  return db->store();
}

Result<std::unique_ptr<JobStore>> open_postgres_job_store(const std::string& conninfo,
                                                          const PostgresOptions& options) {
  auto db = PostgresDatabase::open(conninfo, options);
  if (!db.ok()) return std::move(db).error();
  return db->job_store();
}

}  // namespace hashsieve::store
