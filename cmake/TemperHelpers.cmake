# Shared CMake helpers: warnings for temper's own targets and one way to register tests.

# temper_warnings(target): strict warnings for our code; errors unless TEMPER_WERROR is off.
function(temper_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor
                                           -Wno-unused-parameter)
  if(CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    target_compile_options(${target} PRIVATE -Wthread-safety)
  endif()
  if(TEMPER_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()

# temper_library(name SOURCES ... [DEPS ...]): a static library of ours with include root at the repo.
function(temper_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(${name} STATIC ${ARG_SOURCES})
  target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR} ${PROJECT_BINARY_DIR})
  target_link_libraries(${name} PUBLIC ${ARG_DEPS} PRIVATE ${ARG_PRIVATE_DEPS})
  temper_warnings(${name})
endfunction()

# temper_test(name SOURCES ... DEPS ... LABELS unit|pg|e2e|gpu|slow [TIMEOUT s] [ENV k=v ...]):
# one GoogleTest binary registered with CTest under the given labels, so `ctest -L unit` picks a tier.
function(temper_test name)
  cmake_parse_arguments(ARG "" "TIMEOUT" "SOURCES;DEPS;LABELS;ENV" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gtest GTest::gmock GTest::gtest_main)
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR} ${PROJECT_BINARY_DIR})
  temper_warnings(${name})
  add_test(NAME ${name} COMMAND ${name})
  if(NOT ARG_LABELS)
    message(FATAL_ERROR "temper_test(${name}) needs LABELS")
  endif()
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 300)
  endif()
  set_tests_properties(${name} PROPERTIES LABELS "${ARG_LABELS}" TIMEOUT ${ARG_TIMEOUT}
                       ENVIRONMENT "TEMPER_SOURCE_DIR=${PROJECT_SOURCE_DIR};TEMPER_BINARY_DIR=${PROJECT_BINARY_DIR};${ARG_ENV}")
endfunction()
