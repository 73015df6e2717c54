#include "platform/core/assert.hpp"

#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstdlib>

namespace serin::detail {

void assertion_failed(const char* condition, const char* file, int line,
                      std::string_view message) {
    // Straight to stderr as well as the log: the logger may be what is broken.
    std::fprintf(stderr, "serin: assertion failed at %s:%d: %s: %.*s\n", file, line, condition,
                 static_cast<int>(message.size()), message.data());
    std::fflush(stderr);
    spdlog::critical("assertion failed at {}:{}: {}: {}", file, line, condition, message);
    spdlog::shutdown();
    std::abort();
}

}  // namespace serin::detail
