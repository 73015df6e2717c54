#pragma once

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "crds/api/canary.hpp"
#include "platform/core/result.hpp"

/// `CanaryHistory` (serin.dev/v1alpha1, docs/runtime-control.md): the last releases of one
/// canary, written by Serin only, one object per canary named after it.
namespace serin::api {

/// The bounds the history keeps (docs/runtime-control.md).
inline constexpr std::size_t kHistoryMaxReleases = 10;
inline constexpr std::size_t kHistoryMaxSteps = 100;    ///< per release; older ones dropped
inline constexpr std::size_t kHistoryMaxChecks = 20;    ///< per step
inline constexpr std::size_t kHistoryMaxGates = 20;     ///< per step
inline constexpr std::size_t kHistoryMaxJudged = 20;    ///< judged metrics per step
inline constexpr std::size_t kHistoryMaxRequests = 20;  ///< per release; older ones dropped
inline constexpr std::size_t kHistoryMaxMessageBytes = 512;
inline constexpr std::size_t kHistoryMaxNameBytes = 253;  ///< names, phases, revisions, times
/// The encoded spec is kept under this by dropping the oldest releases, then the oldest steps.
inline constexpr std::size_t kHistoryMaxSpecBytes = 512 * 1024;

/// One metric check of a step against its thresholds.
struct HistoryCheck {
    std::string name;
    std::optional<double> value;  ///< absent: no data or the query failed
    std::optional<double> min;    ///< thresholdRange.min as in the spec
    std::optional<double> max;    ///< thresholdRange.max as in the spec
    std::string verdict;          ///< Pass, Fail, NoData or Error
    std::string message;

    bool operator==(const HistoryCheck&) const = default;
};

struct HistoryJudgedMetric {
    std::string name;
    std::string classification;  ///< Pass, High, Low, Nodata, NodataFailMetric, Error
    std::optional<double> ratio;

    bool operator==(const HistoryJudgedMetric&) const = default;
};

/// The statistical judge's verdict on a step.
struct HistoryJudge {
    double score = 0;
    std::string result;  ///< Pass, Marginal or Fail
    std::vector<HistoryJudgedMetric> metrics;

    bool operator==(const HistoryJudge&) const = default;
};

/// A webhook asked at a step and its answer.
struct HistoryGate {
    std::string name;
    std::string type;  ///< confirm-rollout, pre-rollout, rollout, ...
    bool ok = false;
    std::string error;

    bool operator==(const HistoryGate&) const = default;
};

/// One analysis step.
struct HistoryStep {
    std::string time;
    std::string phase;
    std::int32_t weight = 0;  ///< canary weight after the step
    std::int32_t iteration = 0;
    std::int32_t failed_checks = 0;
    std::vector<HistoryCheck> checks;
    std::optional<HistoryJudge> judge;
    std::vector<HistoryGate> gates;

    bool operator==(const HistoryStep&) const = default;
};

/// A runtime request handled during a release.
struct HistoryRequest {
    std::string name;
    std::string action;
    std::string requested_by;
    std::string result;  ///< Done or Refused
    std::string time;

    bool operator==(const HistoryRequest&) const = default;
};

/// The outcomes of a release.
namespace outcome {
inline constexpr std::string_view kRunning = "Running";
inline constexpr std::string_view kSucceeded = "Succeeded";
inline constexpr std::string_view kFailed = "Failed";
inline constexpr std::string_view kSuperseded = "Superseded";
}  // namespace outcome

struct Release {
    std::string revision;
    std::string previous_revision;
    std::string image;
    std::string strategy;  ///< canary, blue-green or ab-testing
    std::string start;
    std::string end;      ///< empty while running
    std::string outcome;  ///< Running, Succeeded, Failed or Superseded
    std::string reason;
    std::vector<HistoryStep> steps;  ///< oldest first, at most kHistoryMaxSteps
    std::int64_t dropped_steps = 0;
    std::vector<HistoryRequest> requests;

    bool operator==(const Release&) const = default;
};

struct CanaryHistory {
    std::string canary_name;        ///< spec.canaryRef.name
    std::vector<Release> releases;  ///< oldest first, at most kHistoryMaxReleases

    bool operator==(const CanaryHistory&) const = default;
};

/// Decodes a CanaryHistory object's `spec`. Tolerant: unknown fields are ignored, a field of the
/// wrong type reads as absent, and the bounds above are applied (the newest entries kept; text
/// made valid UTF-8 and clipped), so a hand-edited object never stops Serin from recording.
/// Errors: kInvalid only when `object` is not a JSON object. Never throws.
Result<CanaryHistory> decode_canary_history(const Json& object);

/// The `spec` of a CanaryHistory (optional fields omitted when absent, except a check's `min`
/// and `max`, which are null when the spec has none).
Json encode_canary_history_spec(const CanaryHistory& history);

/// Applies every bound to `history`: the newest kHistoryMaxReleases releases, the newest
/// kHistoryMaxSteps steps of each (the others counted in droppedSteps), kHistoryMaxChecks checks
/// and kHistoryMaxGates gates per step, clipped text, and an encoded spec under
/// kHistoryMaxSpecBytes (older releases go first, then the oldest steps of what is left).
/// Returns whether anything was dropped or changed.
bool bound_history(CanaryHistory& history);

/// At least the size of encode_canary_history_spec(history) as JSON text, found without
/// encoding (so that keeping the size bound costs nothing while a history is far below it).
std::size_t history_spec_size_bound(const CanaryHistory& history);

}  // namespace serin::api
