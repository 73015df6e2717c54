#include "controller/workload/workload.hpp"

#include "controller/workload/detail.hpp"
#include "crds/api/json_access.hpp"
#include "platform/core/json.hpp"
#include "platform/core/time_format.hpp"


#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <tuple>
#include <utility>
#include <variant>


namespace serin::canary {

using namespace detail;  // the builders' shared helpers

// ---- readiness --------------------------------------------------------------------------------

analysis::Readiness deployment_readiness(const Json& deployment, int threshold_percent,
                                         int deadline_seconds, SystemTime now,
                                         std::string_view prefix) {
    auto not_ready = [prefix](bool retriable, const std::string& message) {
        return analysis::Readiness{false, retriable, std::string(prefix) + message};
    };
    const Json& status = object_at(deployment, {"status"});
    if (int_or_zero(deployment, {"metadata", "generation"}) >
        int_or_zero(status, {"observedGeneration"})) {
        return not_ready(true, std::string(kWaiting) +
                                   "observed deployment generation less than desired generation");
    }
    const Json* progressing = nullptr;
    const Json* available = nullptr;
    for (const Json& condition : array_at(status, {"conditions"})) {
        const std::string type = string_at(condition, {"type"});
        if (type == "Progressing" && progressing == nullptr) {
            progressing = &condition;
        } else if (type == "Available" && available == nullptr) {
            available = &condition;
        }
    }
    if (progressing != nullptr &&
        string_at(*progressing, {"reason"}) == "ProgressDeadlineExceeded") {
        return not_ready(false, "deployment \"" + string_at(deployment, {"metadata", "name"}) +
                                    "\" exceeded its progress deadline");
    }
    bool retriable = true;
    if (available != nullptr && string_at(*available, {"status"}) == "False" &&
        string_at(*available, {"reason"}) == "MinimumReplicasUnavailable") {
        if (const auto since = parse_time(string_at(*available, {"lastUpdateTime"}))) {
            retriable = !(*since + std::chrono::seconds{deadline_seconds} < now);
        }
    }
    const auto desired = int_at(deployment, {"spec", "replicas"});
    if (desired && *desired == 0) {
        return not_ready(true, std::string(kWaiting) + "scaled to zero");
    }
    const std::int64_t updated = int_or_zero(status, {"updatedReplicas"});
    if (desired && updated < *desired) {
        return not_ready(retriable, std::string(kWaiting) + std::to_string(updated) + " out of " +
                                        std::to_string(*desired) +
                                        " new replicas have been updated");
    }
    const std::int64_t replicas = int_or_zero(status, {"replicas"});
    if (replicas > updated) {
        return not_ready(retriable, std::string(kWaiting) + std::to_string(replicas - updated) +
                                        " old replicas are pending termination");
    }
    const std::int64_t threshold = updated * threshold_percent / 100;
    const std::int64_t ready = int_or_zero(status, {"availableReplicas"});
    if (ready < threshold) {
        return not_ready(retriable, std::string(kWaiting) + std::to_string(ready) + " of " +
                                        std::to_string(threshold) + " (readyThreshold " +
                                        std::to_string(threshold_percent) +
                                        "%) updated replicas are available");
    }
    return analysis::Readiness{true, true, {}};
}

analysis::Readiness daemonset_readiness(const Json& daemonset, int threshold_percent,
                                        int deadline_seconds, SystemTime now, SystemTime since,
                                        std::string_view prefix) {
    const Json& status = object_at(daemonset, {"status"});
    if (int_or_zero(daemonset, {"metadata", "generation"}) >
        int_or_zero(status, {"observedGeneration"})) {
        return analysis::Readiness{
            false, true,
            std::string(prefix) + std::string(kWaiting) +
                "observed daemon set generation less than desired generation"};
    }
    const std::int64_t desired = int_or_zero(status, {"desiredNumberScheduled"});
    const std::int64_t updated = int_or_zero(status, {"updatedNumberScheduled"});
    const std::int64_t available = int_or_zero(status, {"numberAvailable"});
    const std::int64_t threshold = desired * threshold_percent / 100;
    std::string message;
    if (updated < desired) {
        message = std::to_string(updated) + " out of " + std::to_string(desired) +
                  " new pods have been updated";
    } else if (available < threshold) {
        message = std::to_string(available) + " of " + std::to_string(threshold) +
                  " (readyThreshold " + std::to_string(threshold_percent) +
                  "%) updated pods are available";
    } else {
        return analysis::Readiness{true, true, {}};
    }
    const bool retriable = !(since + std::chrono::seconds{deadline_seconds} < now);
    return analysis::Readiness{false, retriable,
                               std::string(prefix) + std::string(kWaiting) + message};
}

}  // namespace serin::canary
