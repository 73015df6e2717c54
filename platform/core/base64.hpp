#pragma once

#include <optional>
#include <string>
#include <string_view>

/// Standard base64 (RFC 4648 §4), as Go's StdEncoding reads and writes it: kubeconfig `*-data`
/// fields, Secret data, Basic authorization.
namespace serin {

/// With padding and without line breaks.
std::string encode_base64(std::string_view data);

/// Whitespace is ignored and the padding may be left out; nullopt for anything else.
std::optional<std::string> decode_base64(std::string_view text);

}  // namespace serin
