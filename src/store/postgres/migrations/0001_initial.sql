-- The layer-facts cache and scan list (store.h) and the job store
-- (job_store.h): the same tables as the SQLite backend, PostgreSQL types.
-- Keys that are ordered or compared with < use COLLATE "C": byte order, as
-- SQLite, whatever locale the cluster was created with.
CREATE TABLE layers(
  id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  diff_id TEXT NOT NULL,
  hasher_versions TEXT NOT NULL,
  files BIGINT NOT NULL,
  UNIQUE(diff_id, hasher_versions));
CREATE TABLE layer_files(
  layer_id BIGINT NOT NULL REFERENCES layers(id) ON DELETE CASCADE,
  seq BIGINT NOT NULL, path TEXT NOT NULL, kind TEXT NOT NULL,
  size BIGINT NOT NULL, mode BIGINT NOT NULL, link_target TEXT NOT NULL,
  md5 TEXT NOT NULL, sha1 TEXT NOT NULL, sha256 TEXT NOT NULL, crc32 TEXT NOT NULL,
  sdbf TEXT NOT NULL, tlsh TEXT NOT NULL, ssdeep TEXT NOT NULL, content_keys TEXT NOT NULL,
  similarity BOOLEAN NOT NULL,
  PRIMARY KEY(layer_id, seq));
CREATE TABLE scans(
  id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  reference TEXT NOT NULL, image_digest TEXT NOT NULL, platform TEXT NOT NULL,
  scanned_at TEXT NOT NULL, verdict TEXT NOT NULL, summary_json TEXT NOT NULL);

CREATE TABLE jobs(
  id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  repository TEXT NOT NULL, reference TEXT NOT NULL, manifest_digest TEXT NOT NULL,
  source TEXT NOT NULL, state TEXT NOT NULL, attempts BIGINT NOT NULL,
  error_code TEXT NOT NULL, error_message TEXT NOT NULL,
  created_ms BIGINT NOT NULL, updated_ms BIGINT NOT NULL, started_ms BIGINT NOT NULL, finished_ms BIGINT NOT NULL,
  published BOOLEAN NOT NULL, runs BIGINT NOT NULL);
-- The dedupe keys of create_or_get_job, as unique indexes so concurrent
-- requests resolve with INSERT ... ON CONFLICT instead of a table lock.
CREATE UNIQUE INDEX jobs_by_digest ON jobs(repository, manifest_digest) WHERE manifest_digest <> '';
CREATE UNIQUE INDEX jobs_unfinished_by_reference ON jobs(repository, reference)
  WHERE manifest_digest = '' AND state NOT IN ('done', 'failed');
CREATE INDEX jobs_by_state ON jobs(state, id);
CREATE INDEX jobs_by_updated ON jobs(updated_ms) WHERE state NOT IN ('done', 'failed');

CREATE TABLE images(
  image_digest TEXT COLLATE "C" PRIMARY KEY, repository TEXT NOT NULL, reference TEXT NOT NULL, platform TEXT NOT NULL,
  job_id BIGINT NOT NULL, scanned_ms BIGINT NOT NULL, verdict TEXT NOT NULL, summary_json TEXT NOT NULL,
  report_json TEXT NOT NULL, resolved_json TEXT NOT NULL, refset_fingerprint TEXT NOT NULL,
  bytes_hashed BIGINT NOT NULL, duration_ms BIGINT NOT NULL);
CREATE INDEX images_by_time ON images(scanned_ms, image_digest);
CREATE INDEX images_by_job ON images(job_id);
CREATE TABLE image_files(
  image_digest TEXT COLLATE "C" NOT NULL, seq BIGINT NOT NULL, path TEXT NOT NULL, layer BIGINT NOT NULL,
  hidden_by BIGINT, size BIGINT NOT NULL, sha256 TEXT NOT NULL, verdict TEXT NOT NULL,
  evidence_json TEXT NOT NULL, PRIMARY KEY(image_digest, seq));
CREATE INDEX image_files_by_verdict ON image_files(image_digest, verdict, seq);
CREATE TABLE verdict_changes(
  id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  image_digest TEXT NOT NULL, job_id BIGINT NOT NULL, changed_ms BIGINT NOT NULL,
  old_verdict TEXT NOT NULL, new_verdict TEXT NOT NULL,
  old_fingerprint TEXT NOT NULL, new_fingerprint TEXT NOT NULL);
CREATE INDEX verdict_changes_by_image ON verdict_changes(image_digest, id);
CREATE TABLE scan_totals(
  id INTEGER PRIMARY KEY CHECK(id = 1), scans BIGINT NOT NULL, bytes_hashed BIGINT NOT NULL,
  duration_ms_sum BIGINT NOT NULL);
INSERT INTO scan_totals(id, scans, bytes_hashed, duration_ms_sum) VALUES(1, 0, 0, 0);
