-- Running-container results and the runtime scheduler's state
-- (container_store.h), as in the SQLite backend.
CREATE TABLE containers(
  id TEXT COLLATE "C" PRIMARY KEY, name TEXT NOT NULL, image TEXT NOT NULL, image_id TEXT NOT NULL,
  image_scan_id BIGINT NOT NULL, scanned_at TEXT COLLATE "C" NOT NULL, verdict TEXT NOT NULL,
  drifted_files BIGINT NOT NULL, errors BIGINT NOT NULL, result_json TEXT NOT NULL);
CREATE INDEX containers_by_time ON containers(scanned_at DESC, id);
CREATE TABLE container_schedule(
  id TEXT COLLATE "C" PRIMARY KEY, last_scan_ms BIGINT NOT NULL, last_event_ms BIGINT NOT NULL,
  failures BIGINT NOT NULL);
