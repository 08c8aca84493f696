// The NSRL RDS v3 minimal schema as NIST publishes it (see
// docs/formats.md), for tools and tests that make RDS files: the benchmark
// generator and the reader and importer tests. Only the tables and the view;
// callers insert their own rows.
#pragma once

namespace hashsieve::refset {

inline constexpr const char* kNsrlV3MinimalSchema = R"sql(
CREATE TABLE FILE (sha256 VARCHAR NOT NULL, sha1 VARCHAR NOT NULL, md5 VARCHAR NOT NULL,
                   crc32 VARCHAR NOT NULL, file_name VARCHAR NOT NULL, file_size INTEGER NOT NULL,
                   package_id INTEGER NOT NULL);
CREATE TABLE MFG (manufacturer_id INTEGER PRIMARY KEY, name VARCHAR NOT NULL);
CREATE TABLE OS (operating_system_id INTEGER NOT NULL, name VARCHAR NOT NULL, version VARCHAR NOT NULL,
                 manufacturer_id INTEGER NOT NULL, PRIMARY KEY (operating_system_id, manufacturer_id));
CREATE TABLE PKG (package_id INTEGER NOT NULL, name VARCHAR NOT NULL, version VARCHAR NOT NULL,
                  operating_system_id INTEGER NOT NULL, manufacturer_id INTEGER NOT NULL,
                  language VARCHAR NOT NULL, application_type VARCHAR NOT NULL,
                  PRIMARY KEY (package_id, operating_system_id, manufacturer_id, language, application_type));
CREATE TABLE VERSION (version VARCHAR UNIQUE NOT NULL, build_set VARCHAR NOT NULL, build_date TIMESTAMP NOT NULL,
                      release_date TIMESTAMP NOT NULL, description VARCHAR NOT NULL);
CREATE VIEW DISTINCT_HASH AS SELECT DISTINCT sha256, sha1, md5, crc32 FROM FILE;
)sql";

}  // namespace hashsieve::refset
