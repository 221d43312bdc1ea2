# Builds and runs tests/consumer against piano. MODE=install: configure and build piano
# alone with its compiled library, install it into WORK_DIR/prefix, then find_package it
# from there. MODE=subdirectory: add piano's source tree with add_subdirectory. piano's
# own warnings apply to its compiled library in both, as errors. USE_BLAS is the outer
# build's PIANO_USE_BLAS; EXPECT_BLAS, the BLAS it found (empty: none).
cmake_minimum_required(VERSION 3.16)
file(REMOVE_RECURSE ${WORK_DIR})

function(run_step)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "step failed (${rc}): ${ARGN}\n${out}\n${err}")
  endif()
  message(STATUS "${out}")
endfunction()

set(consumer_src ${CMAKE_CURRENT_LIST_DIR})
if(MODE STREQUAL "install")
  run_step(${CMAKE_COMMAND} -S ${PIANO_SOURCE_DIR} -B ${WORK_DIR}/piano-build
    -DPIANO_BUILD_TESTS=OFF -DPIANO_BUILD_EXAMPLES=OFF -DPIANO_BUILD_BENCH=OFF
    -DPIANO_BUILD_COMPILED=ON -DPIANO_WARNINGS_AS_ERRORS=ON -DPIANO_USE_BLAS=${USE_BLAS})
  run_step(${CMAKE_COMMAND} --build ${WORK_DIR}/piano-build)
  run_step(${CMAKE_COMMAND} --install ${WORK_DIR}/piano-build --prefix ${WORK_DIR}/prefix)
  run_step(${CMAKE_COMMAND} -S ${consumer_src} -B ${WORK_DIR}/consumer-build
    -DPIANO_CONSUME=package -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix)
else()
  run_step(${CMAKE_COMMAND} -S ${consumer_src} -B ${WORK_DIR}/consumer-build
    -DPIANO_CONSUME=subdirectory -DPIANO_SOURCE_DIR=${PIANO_SOURCE_DIR} -DPIANO_WARNINGS_AS_ERRORS=ON
    -DPIANO_USE_BLAS=${USE_BLAS})
endif()
run_step(${CMAKE_COMMAND} --build ${WORK_DIR}/consumer-build)
run_step(${WORK_DIR}/consumer-build/consumer)
# piano::blas runs a BLAS's products exactly when piano's own configure found one
# (EXPECT_BLAS), through the installed package as through add_subdirectory.
execute_process(COMMAND ${WORK_DIR}/consumer-build/consumer_blas RESULT_VARIABLE rc OUTPUT_VARIABLE out)
if(EXPECT_BLAS)
  set(expected "products: blas")
else()
  set(expected "products: eigen")
endif()
string(FIND "${out}" "${expected}" at)
if(NOT rc EQUAL 0 OR at EQUAL -1)
  message(FATAL_ERROR "consumer_blas (${rc}) should have printed \"${expected}\": ${out}")
endif()
run_step(${WORK_DIR}/consumer-build/consumer_compiled)

if(MODE STREQUAL "install")
  # The same program built with the flags of the installed pkg-config file, and the
  # license installed beside the headers' package.
  if(NOT EXISTS ${WORK_DIR}/prefix/share/doc/piano/LICENSE)
    message(FATAL_ERROR "the install did not put LICENSE in ${WORK_DIR}/prefix/share/doc/piano")
  endif()
  set(ENV{PKG_CONFIG_PATH} ${WORK_DIR}/prefix/share/pkgconfig)
  execute_process(COMMAND pkg-config --cflags piano RESULT_VARIABLE rc OUTPUT_VARIABLE cflags
    ERROR_VARIABLE err OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "pkg-config --cflags piano failed (${rc}): ${err}")
  endif()
  separate_arguments(cflags UNIX_COMMAND "${cflags}")
  run_step(${CXX} ${cflags} ${consumer_src}/main.cpp -o ${WORK_DIR}/consumer_pkgconfig)
  run_step(${WORK_DIR}/consumer_pkgconfig)
endif()
