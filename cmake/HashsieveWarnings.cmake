# hashsieve_module(NAME ...) helpers: warnings and sanitizers applied per target,
# never globally, so third-party code is compiled as its authors intended.
add_library(hashsieve_warnings INTERFACE)
target_compile_options(hashsieve_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wold-style-cast
  -Wcast-align -Wunused -Woverloaded-virtual -Wimplicit-fallthrough)

if(HASHSIEVE_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()

# Adds a unit-test executable for a module and registers its cases with CTest.
function(hashsieve_add_test NAME)
  cmake_parse_arguments(ARG "" "" "SOURCES;LIBS;LABELS" ${ARGN})
  add_executable(${NAME} ${ARG_SOURCES})
  target_link_libraries(${NAME} PRIVATE ${ARG_LIBS} GTest::gtest_main GTest::gmock hashsieve_warnings)
  target_compile_definitions(${NAME} PRIVATE
    HASHSIEVE_TEST_DATA="${PROJECT_SOURCE_DIR}/tests/data"
    HASHSIEVE_BINARY_DIR="${PROJECT_BINARY_DIR}")
  if(NOT ARG_LABELS)
    set(ARG_LABELS unit)
  endif()
  gtest_discover_tests(${NAME} PROPERTIES LABELS "${ARG_LABELS}" DISCOVERY_TIMEOUT 60)
endfunction()
