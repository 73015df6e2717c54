#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "platform/core/time.hpp"

namespace serin::cli {

/// What `kubectl serin explain` reads: the canary, its CanaryHistory (null when it has none)
/// and the Events recorded about it (any order).
struct ExplainInput {
    nlohmann::json canary;
    nlohmann::json history;
    std::vector<nlohmann::json> events;
    SystemTime now;
};

/// Why the release is where it is, in words, most important first: the spec not accepted, the
/// suspension, the pause, the failed check and its value against its threshold, the closed
/// gate, the readiness awaited, then where the release stands. Pure; never throws on any input.
std::vector<std::string> explain(const ExplainInput& input);

}  // namespace serin::cli
