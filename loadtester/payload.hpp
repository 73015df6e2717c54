#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <string_view>

#include "platform/core/result.hpp"

/// What Flagger posts to a webhook, read with limits: the load tester's callers are whoever can
/// reach its port, so nothing about a body is trusted.
namespace serin::loadtester {

/// The most a request body may hold; Flagger's payloads are a few hundred bytes.
inline constexpr std::size_t kMaxBodyBytes = 1024 * 1024;
/// How deep a payload may nest. A payload is an object whose `metadata` is an object of strings:
/// two levels; a little slack for fields Flagger may add.
inline constexpr std::size_t kMaxPayloadDepth = 8;
/// The longest name or namespace read (Kubernetes allows 253 for names, 63 for namespaces).
inline constexpr std::size_t kMaxNameBytes = 253;

/// A Flagger webhook payload: {"name", "namespace", "phase", "checksum", "metadata"}.
struct Payload {
    std::string name;
    std::string ns;
    std::string phase;
    std::string checksum;
    std::map<std::string, std::string> metadata;

    /// The gate and de-duplication key of the canary: "<name>.<namespace>", as Flagger's.
    std::string canary() const { return name + "." + ns; }
};

/// Reads a payload. Absent fields are empty, as Go's decoder leaves them; a field of the wrong
/// type (a metadata value that is not a string, say) fails as it does in Go.
/// Errors: kBadRequest, naming what is wrong (too large, not JSON, too deep, not valid UTF-8, a
/// field of the wrong type, a name longer than kMaxNameBytes).
Result<Payload> read_payload(std::string_view body);

}  // namespace serin::loadtester
