#pragma once

#include <string_view>

/// Invariants in two tiers. Expected failures (bad input, a server that does not answer) are
/// never asserted: they are Results. An assertion states what Serin's own code guarantees, so a
/// failed one is a bug.
///
/// - SERIN_ASSERT(condition, message): always checked. For invariants whose breach means Serin's
///   state is wrong and going on could write wrong objects (a key reconciled twice at once, a
///   count gone negative). Logs the condition, where it is and the message, then aborts: the
///   pod restarts, and all release state is in the Canary's status.
/// - SERIN_DEBUG_ASSERT(condition, message): checked in Debug and sanitizer builds (NDEBUG not
///   set), a no-op in Release. For checks too costly for every call in production.
namespace serin::detail {

[[noreturn]] void assertion_failed(const char* condition, const char* file, int line,
                                   std::string_view message);

}  // namespace serin::detail

#define SERIN_ASSERT(condition, message)                                                \
    do {                                                                                \
        if (!(condition)) [[unlikely]] {                                                \
            ::serin::detail::assertion_failed(#condition, __FILE__, __LINE__, message); \
        }                                                                               \
    } while (false)

#ifdef NDEBUG
#define SERIN_DEBUG_ASSERT(condition, message) \
    do {                                       \
    } while (false)
#else
#define SERIN_DEBUG_ASSERT(condition, message) SERIN_ASSERT(condition, message)
#endif
