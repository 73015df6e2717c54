#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

/// What the dashboard shows of a Canary, computed from the object as the API server serves it.
/// Pure functions: no I/O, no clock.
namespace serin::dashboard {

using Json = nlohmann::json;

/// The row of the canary list: {namespace, name, uid, phase, weight, iterations, failedChecks,
/// step: {index, total}, created, lastTransitionTime, paused, target, strategy}. Fields the
/// object lacks get neutral values ("" phase, weight 0, total 0), never an error: a Canary is
/// untrusted input.
Json canary_summary(const Json& canary);

/// The actions a CanaryRequest may name (docs/runtime-control.md).
bool is_request_action(std::string_view action);

/// A Kubernetes object name or namespace (DNS-1123 subdomain: at most 253 bytes of [a-z0-9.-],
/// starting and ending alphanumeric).
bool is_object_name(std::string_view name);


}  // namespace serin::dashboard
