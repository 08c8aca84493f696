# Every dependency is a Debian package (scripts/setup.sh installs them).
find_package(PkgConfig REQUIRED)
find_package(OpenSSL 3 REQUIRED)
find_package(Threads REQUIRED)
find_package(SQLite3 REQUIRED)
find_package(LibArchive 3 REQUIRED)  # libarchive-dev: .deb packages and image layers
find_package(ZLIB REQUIRED)  # zlib1g-dev: crc32_z for CRC-32 where PCLMULQDQ is missing
find_package(nlohmann_json 3.10 REQUIRED)
find_package(CURL 7.80 REQUIRED)  # libcurl4-openssl-dev: the registry client
# libfuzzy (ssdeep) ships no pkg-config file.
find_path(FUZZY_INCLUDE_DIR fuzzy.h REQUIRED)
find_library(FUZZY_LIBRARY fuzzy REQUIRED)
add_library(Fuzzy::fuzzy UNKNOWN IMPORTED)
set_target_properties(Fuzzy::fuzzy PROPERTIES
  IMPORTED_LOCATION ${FUZZY_LIBRARY} INTERFACE_INCLUDE_DIRECTORIES ${FUZZY_INCLUDE_DIR})
# Debian's static libtlsh (libtlsh-dev): the reference our own TLSH is checked
# and benchmarked against. Linked into test and bench executables only.
if(HASHSIEVE_BUILD_TESTS OR HASHSIEVE_BUILD_BENCH)
  find_path(TLSH_INCLUDE_DIR tlsh.h REQUIRED)
  find_library(TLSH_STATIC_LIBRARY libtlsh.a REQUIRED)
  add_library(Tlsh::reference STATIC IMPORTED)
  set_target_properties(Tlsh::reference PROPERTIES
    IMPORTED_LOCATION ${TLSH_STATIC_LIBRARY} INTERFACE_INCLUDE_DIRECTORIES ${TLSH_INCLUDE_DIR})
endif()
if(HASHSIEVE_BUILD_TESTS)
  find_package(GTest REQUIRED)
endif()
if(HASHSIEVE_BUILD_BENCH)
  find_package(benchmark REQUIRED)
endif()
