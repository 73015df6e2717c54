#include "controller/canary/event_filter.hpp"

#include "crds/api/json_access.hpp"

#include <array>
#include <string_view>

namespace serin::canary {

namespace {

/// The member `key` of `object`, or null when absent (absent and null compare equal).
const kube::Json& field(const kube::Json& object, std::string_view key) {
    static const kube::Json kNull;
    const kube::Json* value = api::member(object, key);
    return value != nullptr ? *value : kNull;
}

}  // namespace

bool workload_changed_beyond_status(const kube::Json& before, const kube::Json& after) {
    if (field(before, "spec") != field(after, "spec")) {
        return true;
    }
    const kube::Json& a = field(before, "metadata");
    const kube::Json& b = field(after, "metadata");
    constexpr std::array<std::string_view, 6> kRead = {"generation",      "labels",
                                                       "annotations",     "ownerReferences",
                                                       "finalizers",      "deletionTimestamp"};
    for (std::string_view key : kRead) {
        if (field(a, key) != field(b, key)) {
            return true;
        }
    }
    return false;
}

bool workload_template_changed(const kube::Json& before, const kube::Json& after) {
    return field(field(before, "spec"), "template") != field(field(after, "spec"), "template");
}

bool reads_workload_status(const kube::Json& canary) {
    if (api::find_path(canary, {"metadata", "deletionTimestamp"}) != nullptr) {
        return true;
    }
    const std::string phase = api::string_at(canary, {"status", "phase"});
    return phase != "Initialized" && phase != "Succeeded" && phase != "Failed";
}

}  // namespace serin::canary
