# Every dependency is a Debian package (scripts/setup.sh installs them).
find_package(PkgConfig REQUIRED)
find_package(OpenSSL 3 REQUIRED)
find_package(Threads REQUIRED)
find_package(SQLite3 REQUIRED)
find_package(ZLIB REQUIRED)  # zlib1g-dev: crc32_z for CRC-32 where PCLMULQDQ is missing
find_package(nlohmann_json 3.10 REQUIRED)
# libfuzzy (ssdeep) ships no pkg-config file.
find_path(FUZZY_INCLUDE_DIR fuzzy.h REQUIRED)
find_library(FUZZY_LIBRARY fuzzy REQUIRED)
add_library(Fuzzy::fuzzy UNKNOWN IMPORTED)
set_target_properties(Fuzzy::fuzzy PROPERTIES
  IMPORTED_LOCATION ${FUZZY_LIBRARY} INTERFACE_INCLUDE_DIRECTORIES ${FUZZY_INCLUDE_DIR})
if(HASHSIEVE_BUILD_TESTS)
  find_package(GTest REQUIRED)
endif()
if(HASHSIEVE_BUILD_BENCH)
  find_package(benchmark REQUIRED)
endif()
