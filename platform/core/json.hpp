#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "platform/core/result.hpp"

/// Reading and writing JSON that crosses a trust boundary, without nlohmann's throwing paths:
/// parsing bounded in nesting (nlohmann's dump, copy and comparison recurse once per level, so
/// an answer nested 50,000 deep would overflow the stack), and dumping that never throws on text
/// that is not valid UTF-8.
namespace serin {

/// How deep a JSON answer from a metrics server, a webhook or a chat service may nest. Real
/// answers nest under ten levels.
inline constexpr std::size_t kMaxRemoteJsonDepth = 64;

/// The deepest nesting of arrays and objects in `text`, counting brackets outside strings; it
/// stops counting once it passes `stop_above` (the text is then too deep anyway).
std::size_t json_nesting_depth(std::string_view text, std::size_t stop_above);

/// Checks that `text` nests at most `max_depth` levels deep, before anything recurses into it.
/// Errors: kBadRequest "<what> is nested deeper than N levels".
Result<void> check_json_depth(std::string_view text, std::size_t max_depth,
                              std::string_view what = "the body");

/// Parses `text` as one JSON value nested at most `max_depth` levels deep.
/// Errors: kBadRequest "<what> is not JSON" or "<what> is nested deeper than N levels".
Result<nlohmann::json> parse_json(std::string_view text, std::size_t max_depth,
                                  std::string_view what = "the body");

/// The compact JSON text of `value`. Never throws: text that is not valid UTF-8 is written with
/// U+FFFD in place of each bad sequence.
std::string dump_json(const nlohmann::json& value);

/// `value` as JSON text for a message, at most `max_bytes` bytes ("..." when cut), valid UTF-8.
std::string show_json(const nlohmann::json& value, std::size_t max_bytes = 80);

/// The string member `key` of `object`, or `fallback` when `object` is not an object or the
/// member is absent or not a string (nlohmann's value() throws on a member of another type).
std::string json_string(const nlohmann::json& object, std::string_view key,
                        std::string_view fallback = {});

}  // namespace serin
