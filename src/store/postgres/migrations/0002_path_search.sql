-- Substring search over the file paths of image results (search_paths):
-- a trigram GIN index serves LIKE '%...%' without a full scan.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX image_files_path_trgm ON image_files USING gin (path gin_trgm_ops);
