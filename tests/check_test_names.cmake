# Fails when a Catch2 test name would be mangled by CTest: catch_discover_tests passes the
# names through a CMake list, where ';' splits a name and an unmatched '[' swallows every
# later name into one test (so those tests would silently not run on their own).
# The checks work on the raw text, since the names cannot safely become a CMake list.
# Usage: cmake -DTEST_EXE=path -P check_test_names.cmake
execute_process(COMMAND ${TEST_EXE} --list-test-names-only
  OUTPUT_VARIABLE names)
# (Catch2 v2 exits with the number of tests listed, so the exit code says nothing here.)
if(names STREQUAL "")
  message(FATAL_ERROR "${TEST_EXE} --list-test-names-only listed no tests")
endif()
string(REGEX MATCH "[^\n]*;[^\n]*" with_semicolon "${names}")
if(with_semicolon)
  message(FATAL_ERROR "a test name CTest would split at ';': ${with_semicolon}")
endif()
# Remove the balanced [..] pairs; a bracket left over is unmatched.
string(REGEX REPLACE "\\[[^][\n]*\\]" "" stripped "${names}")
string(REGEX MATCH "[^\n]*[][][^\n]*" unmatched "${stripped}")
if(unmatched)
  message(FATAL_ERROR "a test name with an unmatched bracket (CTest would merge the names after it): ${unmatched}")
endif()
