# serin_header_check: one translation unit per production header that includes it (twice, which
# also checks the include guard), so a header that compiles only after another include is found.
# On with -DSERIN_HEADER_CHECK=ON (hack/test turns it on with SERIN_CHECKS=1, as CI does).
function(serin_add_header_check)
  set(folders platform crds analysis metrics meshes controller devcluster loadtester cli)
  set(globs)
  foreach(folder IN LISTS folders)
    list(APPEND globs ${PROJECT_SOURCE_DIR}/${folder}/*.hpp)
  endforeach()
  file(GLOB_RECURSE headers CONFIGURE_DEPENDS RELATIVE ${PROJECT_SOURCE_DIR} ${globs})
  # A library's *_internal.hpp needs that library's private definitions (devcluster's paths).
  list(FILTER headers EXCLUDE REGEX "_internal\\.hpp$")
  set(sources)
  foreach(header IN LISTS headers)
    string(MAKE_C_IDENTIFIER ${header} id)
    set(source ${CMAKE_BINARY_DIR}/header_check/${id}.cpp)
    set(content "#include \"${header}\"\n#include \"${header}\"\n")
    # Written only when it changes, so a reconfigure does not rebuild every check.
    if(EXISTS ${source})
      file(READ ${source} old)
    else()
      set(old "")
    endif()
    if(NOT old STREQUAL content)
      file(WRITE ${source} "${content}")
    endif()
    list(APPEND sources ${source})
  endforeach()
  add_library(serin_header_check OBJECT ${sources})
  # Every library, for include paths and compile definitions; nothing is linked.
  target_link_libraries(serin_header_check PRIVATE serin_canary serin_meshes serin_metrics
                        serin_devcluster serin_podsim serin_meshsim serin_loadtester serin_cli CLI11::CLI11
                        serin_warnings)
  if(TARGET serin_app)
    target_link_libraries(serin_header_check PRIVATE serin_app)
  endif()
  if(TARGET serin_dashboard)
    target_link_libraries(serin_header_check PRIVATE serin_dashboard)
  endif()
  list(LENGTH sources count)
  message(STATUS "header check: ${count} headers")
endfunction()
