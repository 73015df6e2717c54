#pragma once

#include <string_view>
#include <vector>

#include "platform/core/result.hpp"
#include "platform/kube/kube_client.hpp"

namespace serin::kube {

/// Converts a YAML stream of one or more documents ("---"-separated) to JSON objects, one per
/// non-empty document, in order. Documents that are empty or hold only comments are skipped.
///
/// Scalars follow the YAML 1.2 core schema: quoted and block scalars stay strings; a plain
/// (unquoted) scalar becomes null for "null"/"~"/empty, a bool for true/false (any case
/// spelling the schema allows), an integer (decimal, 0x hex, 0o octal) when it fits in 64 bits,
/// a double for a decimal float, and a string otherwise. YAML 1.1's yes/no/on/off stay strings.
/// Explicit tags (!!str, !!int, ...) are honoured. Mapping keys must be scalars.
///
/// Errors: kInvalid, with the line and column, for malformed YAML, non-scalar keys and
/// aliases nested too deeply or expanding too far.
/// Thread safety: a pure function.
Result<std::vector<Json>> parse_manifests(std::string_view yaml_text);

/// Parses one JSON document. Errors: kInvalid with the parser's message (which gives the byte
/// position). Thread safety: a pure function.
Result<Json> parse_json(std::string_view json_text);

}  // namespace serin::kube
