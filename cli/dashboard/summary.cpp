#include "cli/dashboard/summary.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <iterator>

#include "cli/request.hpp"
#include "platform/core/json.hpp"

namespace serin::dashboard {

namespace {

/// The integer at `key` of `object`, or `fallback` when absent or not a number.
std::int64_t int_at(const Json& object, std::string_view key, std::int64_t fallback = 0) {
    if (!object.is_object()) {
        return fallback;
    }
    const auto it = object.find(key);
    if (it == object.end() || !it->is_number()) {
        return fallback;
    }
    if (it->is_number_float()) {
        const double d = it->get<double>();
        if (!(d > -1e15 && d < 1e15)) {
            return fallback;
        }
        return static_cast<std::int64_t>(d);
    }
    if (it->is_number_unsigned()) {
        return static_cast<std::int64_t>(std::min<std::uint64_t>(it->get<std::uint64_t>(), 1ULL << 53));
    }
    return it->get<std::int64_t>();
}

const Json& member(const Json& object, std::string_view key) {
    static const Json kNull;
    if (!object.is_object()) {
        return kNull;
    }
    const auto it = object.find(key);
    return it == object.end() ? kNull : *it;
}

/// The analysis settings: spec.analysis, or Flagger's older spec.canaryAnalysis.
const Json& analysis_of(const Json& spec) {
    const Json& analysis = member(spec, "analysis");
    return analysis.is_object() ? analysis : member(spec, "canaryAnalysis");
}

/// Which step of how many the weight stands at: stepWeights, else stepWeight up to maxWeight,
/// else the iterations of a blue/green or A/B analysis.
Json step_of(const Json& analysis, const Json& status) {
    const std::int64_t weight = int_at(status, "canaryWeight");
    const Json& weights = member(analysis, "stepWeights");
    if (weights.is_array() && !weights.empty()) {
        std::int64_t index = 0;
        for (const auto& w : weights) {
            if (w.is_number() && weight > 0 && w.get<double>() <= static_cast<double>(weight)) {
                ++index;
            }
        }
        return {{"index", index}, {"total", static_cast<std::int64_t>(weights.size())}};
    }
    const std::int64_t step = int_at(analysis, "stepWeight");
    if (step > 0) {
        std::int64_t max = int_at(analysis, "maxWeight");
        if (max <= 0) {
            max = 100;
        }
        const std::int64_t total = (max + step - 1) / step;
        return {{"index", std::clamp<std::int64_t>(weight / step, 0, total)}, {"total", total}};
    }
    const std::int64_t iterations = int_at(analysis, "iterations");
    if (iterations > 0) {
        return {{"index", std::clamp<std::int64_t>(int_at(status, "iterations"), 0, iterations)},
                {"total", iterations}};
    }
    return {{"index", 0}, {"total", 0}};
}

std::string strategy_of(const Json& analysis) {
    if (member(analysis, "match").is_array() && !member(analysis, "match").empty()) {
        return "ab-testing";
    }
    if (int_at(analysis, "stepWeight") > 0 || (member(analysis, "stepWeights").is_array() &&
                                              !member(analysis, "stepWeights").empty())) {
        return "canary";
    }
    if (int_at(analysis, "iterations") > 0) {
        return "blue-green";
    }
    return "";
}

bool is_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

}  // namespace

Json canary_summary(const Json& canary) {
    const Json& metadata = member(canary, "metadata");
    const Json& spec = member(canary, "spec");
    const Json& status = member(canary, "status");
    const Json& analysis = analysis_of(spec);
    Json out = {
        {"namespace", json_string(metadata, "namespace")},
        {"name", json_string(metadata, "name")},
        {"uid", json_string(metadata, "uid")},
        {"phase", json_string(status, "phase")},
        {"weight", int_at(status, "canaryWeight")},
        {"iterations", int_at(status, "iterations")},
        {"failedChecks", int_at(status, "failedChecks")},
        {"step", step_of(analysis, status)},
        {"created", json_string(metadata, "creationTimestamp")},
        {"lastTransitionTime", json_string(status, "lastTransitionTime")},
        {"paused", member(status, "paused").is_object()},
        {"target", json_string(member(spec, "targetRef"), "name")},
        {"strategy", strategy_of(analysis)},
    };
    return out;
}

bool is_request_action(std::string_view action) {
    return std::find(std::begin(cli::kActions), std::end(cli::kActions), action) !=
           std::end(cli::kActions);
}

bool is_object_name(std::string_view name) {
    if (name.empty() || name.size() > 253 || !is_alnum(name.front()) || !is_alnum(name.back())) {
        return false;
    }
    return std::all_of(name.begin(), name.end(),
                       [](char c) { return is_alnum(c) || c == '-' || c == '.'; });
}


}  // namespace serin::dashboard
