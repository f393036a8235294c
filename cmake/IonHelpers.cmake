# One way to declare every library and test, so they all get the same flags.

function(ion_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow -Wconversion
                                           -Wno-sign-conversion -Wnon-virtual-dtor)
  if(ION_WARNINGS_AS_ERRORS)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()

# ion_add_library(NAME SOURCES ... DEPS ...): public headers live in <folder>/include.
function(ion_add_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(${name} STATIC ${ARG_SOURCES})
  add_library(ion::${name} ALIAS ${name})
  target_include_directories(${name} PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/include
                                     PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/src)
  target_link_libraries(${name} PUBLIC ${ARG_DEPS} PRIVATE ${ARG_PRIVATE_DEPS})
  ion_warnings(${name})
endfunction()

# ion_add_executable(NAME SOURCES ... DEPS ...)
function(ion_add_executable name)
  cmake_parse_arguments(ARG "" "OUTPUT_NAME" "SOURCES;DEPS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS})
  if(ARG_OUTPUT_NAME)
    set_target_properties(${name} PROPERTIES OUTPUT_NAME ${ARG_OUTPUT_NAME})
  endif()
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bin)
  ion_warnings(${name})
endfunction()

# ion_add_gtest(NAME SOURCES ... DEPS ... LABELS ... TIMEOUT seconds)
# Tests run shuffled; GoogleTest prints the seed so a failing order can be replayed.
include(GoogleTest)
# SERIAL: nothing else runs beside these tests (they load both cores on purpose).
function(ion_add_gtest name)
  cmake_parse_arguments(ARG "SERIAL" "TIMEOUT" "SOURCES;DEPS;LABELS" ${ARGN})
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 60)
  endif()
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gtest GTest::gmock GTest::gtest_main)
  ion_warnings(${name})
  # One ctest entry per test case: failures are named in CI output and -j2 spreads them.
  set(serial FALSE)
  if(ARG_SERIAL)
    set(serial TRUE)
  endif()
  gtest_discover_tests(${name}
    EXTRA_ARGS --gtest_shuffle --gtest_color=no
    PROPERTIES LABELS "${ARG_LABELS}" TIMEOUT ${ARG_TIMEOUT} RUN_SERIAL ${serial}
    DISCOVERY_TIMEOUT 60)
endfunction()

# ion_realtime_sources(FILES ...): device emulators must keep pace with real time in every build
# type (a culture that falls behind stamps its spikes late), so their numeric kernels are
# optimised even in Debug builds; the rest of a Debug build stays -O0 for debugging.
function(ion_realtime_sources)
  set_source_files_properties(${ARGN} DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR}
                              PROPERTIES COMPILE_OPTIONS "$<$<CONFIG:Debug>:-O2>")
endfunction()
