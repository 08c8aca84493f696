-- The .rodata section digests of ELF files in the layer facts (FileFacts::
-- rodata_*, docs/adr/0012-section-digests.md), as SQLite schema 2. Nullable:
-- NULL rodata_size means the file has none; rows written before this
-- migration are read as having none (and their hasher_versions key is an
-- older one, so a scan recomputes them anyway).
ALTER TABLE layer_files
  ADD COLUMN rodata_size BIGINT,
  ADD COLUMN rodata_sdbf TEXT,
  ADD COLUMN rodata_tlsh TEXT,
  ADD COLUMN rodata_ssdeep TEXT;
