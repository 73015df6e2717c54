#pragma once

#include <cstddef>
#include <string>
#include <string_view>

/// Text that crosses a trust boundary: whatever a namespace user or a remote server wrote
/// (webhook and metrics answers, object fields, error bodies) is made valid UTF-8 and bounded in
/// size before it reaches a JSON body, an Event, an alert or a log line.
namespace serin::text {

/// Whether `s` is well-formed UTF-8 (RFC 3629: shortest forms only, no surrogates, at most
/// U+10FFFF).
bool is_valid_utf8(std::string_view s);

/// `s` with each ill-formed sequence replaced by U+FFFD (one per maximal ill-formed subpart, as
/// the Unicode standard recommends), so the result is always valid UTF-8.
std::string to_valid_utf8(std::string_view s);

/// `s` made valid UTF-8 and, when that is longer than `max_bytes`, cut at a character boundary
/// and ended with "..." so the whole is at most `max_bytes` bytes. Never splits a character.
std::string clip(std::string_view s, std::size_t max_bytes);

/// The longest prefix of `s` (which must be valid UTF-8) of at most `max_bytes` bytes that ends
/// on a character boundary.
std::string_view utf8_prefix(std::string_view s, std::size_t max_bytes);

/// Whether `s` holds a CR, an LF or a NUL, which must never reach an HTTP header.
bool has_line_break(std::string_view s);

/// `s` without leading and trailing ASCII whitespace (space, tab, CR, LF).
std::string_view trim(std::string_view s);

/// Limits on text that Serin writes about things a user or a remote server controls.
inline constexpr std::size_t kMaxMessageBytes = 1024;  ///< an Event, a status condition
inline constexpr std::size_t kMaxRemoteBodyBytes = 512;  ///< a remote answer quoted in an error

}  // namespace serin::text
