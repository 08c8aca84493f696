-- File paths as bytes (ADR 0018). A path in a layer tar is any byte string,
-- and a TEXT column rejects what is not valid UTF-8 (byte 0xff, Latin-1
-- names), so such an image could not be cached nor its result stored. Paths
-- and link targets become BYTEA: what is read back is byte for byte what was
-- written, as in the SQLite backend. Substring search keeps its trigram
-- index on path_search, the path with each invalid byte replaced by U+FFFD:
-- the index narrows the candidates, position() on the bytes decides.
-- Numbered 0005: 0004 is taken by the rodata digest columns of another
-- branch; migrations apply in number order, so both land in either order of
-- merging on a fresh database.
ALTER TABLE layer_files
  ALTER COLUMN path TYPE BYTEA USING convert_to(path, 'UTF8'),
  ALTER COLUMN link_target TYPE BYTEA USING convert_to(link_target, 'UTF8');
DROP INDEX image_files_path_trgm;
ALTER TABLE image_files ADD COLUMN path_search TEXT;
UPDATE image_files SET path_search = path;
ALTER TABLE image_files ALTER COLUMN path_search SET NOT NULL,
  ALTER COLUMN path TYPE BYTEA USING convert_to(path, 'UTF8');
CREATE INDEX image_files_path_trgm ON image_files USING gin (path_search gin_trgm_ops);
