# serin_add_test(NAME LABEL SOURCES ... [LIBRARIES ...] [FIXTURE name] [TIMEOUT s] [SERIAL])
# One Catch2 executable; each TEST_CASE becomes a ctest test carrying LABEL.
function(serin_add_test name label)
  cmake_parse_arguments(ARG "SERIAL" "FIXTURE;TIMEOUT" "SOURCES;LIBRARIES" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE serin_catch_main ${ARG_LIBRARIES} serin_warnings)
  set(props LABELS ${label})
  if(ARG_TIMEOUT)
    list(APPEND props TIMEOUT ${ARG_TIMEOUT})
  endif()
  if(ARG_SERIAL)  # alone: for a test whose subject sees the whole cluster
    list(APPEND props RUN_SERIAL TRUE)
  endif()
  if(ARG_FIXTURE)
    list(APPEND props FIXTURES_REQUIRED ${ARG_FIXTURE}
                      ENVIRONMENT "SERIN_DEVCLUSTER_DIR=${SERIN_DEVCLUSTER_DIR}")
  endif()
  # --warn NoTests: a test name ctest cannot pass back to Catch (e.g. one with a ";") fails
  # instead of running nothing.
  catch_discover_tests(${name} TEST_PREFIX "${label}/${name}/" EXTRA_ARGS --warn NoTests
                       PROPERTIES ${props})
endfunction()
