# serin_sanitizers: SERIN_SANITIZE="address;undefined" or "thread".
add_library(serin_sanitizers INTERFACE)
if(SERIN_SANITIZE)
  set(_serin_san_flags "")
  foreach(s IN LISTS SERIN_SANITIZE)
    list(APPEND _serin_san_flags "-fsanitize=${s}")
  endforeach()
  list(APPEND _serin_san_flags -fno-omit-frame-pointer -fno-sanitize-recover=all)
  if(CMAKE_CXX_COMPILER_ID STREQUAL "Clang" AND "undefined" IN_LIST SERIN_SANITIZE)
    # clang 14 cannot compile coroutines with -fsanitize=function.
    list(APPEND _serin_san_flags -fno-sanitize=function)
  endif()
  # Sanitizers must reach every object, third-party code compiled here included.
  add_compile_options(${_serin_san_flags})
  add_link_options(${_serin_san_flags})
endif()
