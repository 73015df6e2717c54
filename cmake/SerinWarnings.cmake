# serin_warnings: the warning set every Serin target compiles with. -Werror comes from SERIN_WERROR
# (on in CI, off by default, never forced on consumers).
add_library(serin_warnings INTERFACE)
target_compile_options(serin_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Woverloaded-virtual -Wold-style-cast
  -Wimplicit-fallthrough -Wunused-result)
if(SERIN_WERROR)
  target_compile_options(serin_warnings INTERFACE -Werror)
endif()
