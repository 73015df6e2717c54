#include "analysis/release.hpp"

#include "analysis/phases.hpp"

#include <algorithm>

/// The small public helpers of release.hpp: the Promoted condition per phase, hook type names,
/// the deployment strategy.
namespace serin::analysis {

using namespace phase;

namespace {

struct ConditionText {
    std::string_view status;
    std::string message;
};

ConditionText condition_text(std::string_view phase, std::string_view kind) {
    const std::string k(kind);
    if (phase == kInitialized) {
        return {"True", k + " initialization completed."};
    }
    if (phase == kWaiting || phase == kWaitingPromotion) {
        return {"Unknown", "Waiting for approval."};
    }
    if (phase == kProgressing) {
        return {"Unknown", "New revision detected, progressing canary analysis."};
    }
    if (phase == kPromoting) {
        return {"Unknown", "Canary analysis completed, starting primary rolling update."};
    }
    if (phase == kFinalising) {
        return {"Unknown", "Canary analysis completed, routing all traffic to primary."};
    }
    if (phase == kSucceeded) {
        return {"True", "Canary analysis completed successfully, promotion finished."};
    }
    if (phase == kFailed) {
        return {"False", "Canary analysis failed, " + k + " scaled to zero."};
    }
    return {"Unknown", "New " + k + " detected, starting initialization."};
}

}  // namespace

std::string_view to_string(HookType type) {
    switch (type) {
        case HookType::kConfirmRollout:
            return "confirm-rollout";
        case HookType::kPreRollout:
            return "pre-rollout";
        case HookType::kRollout:
            return "rollout";
        case HookType::kConfirmTrafficIncrease:
            return "confirm-traffic-increase";
        case HookType::kConfirmPromotion:
            return "confirm-promotion";
        case HookType::kPostRollout:
            return "post-rollout";
        case HookType::kRollback:
            return "rollback";
        case HookType::kEvent:
            return "event";
    }
    return "rollout";
}

std::optional<HookType> hook_type(std::string_view type) {
    if (type.empty()) {
        return HookType::kRollout;
    }
    for (HookType t : {HookType::kConfirmRollout, HookType::kPreRollout, HookType::kRollout,
                       HookType::kConfirmTrafficIncrease, HookType::kConfirmPromotion,
                       HookType::kPostRollout, HookType::kRollback, HookType::kEvent}) {
        if (to_string(t) == type) {
            return t;
        }
    }
    return std::nullopt;
}

std::string_view strategy(const api::CanarySpec& spec) {
    if (!spec.analysis) {
        return "canary";
    }
    const auto& a = *spec.analysis;
    if (a.iterations > 0 && a.match.is_array() && !a.match.empty()) {
        return "ab-testing";
    }
    if (a.iterations > 0) {
        return "blue-green";
    }
    return "canary";
}


void set_promoted_condition(std::vector<api::Condition>& conditions, std::string_view phase,
                            std::string_view kind, std::string_view now) {
    const ConditionText text = condition_text(phase, kind);
    const std::string reason = phase.empty() ? std::string(kInitializing) : std::string(phase);
    auto it = std::find_if(conditions.begin(), conditions.end(),
                           [](const api::Condition& c) { return c.type == "Promoted"; });
    if (it == conditions.end()) {
        conditions.push_back(api::Condition{"Promoted", std::string(text.status), std::string(now),
                                            std::string(now), reason, text.message});
        return;
    }
    if (it->status == text.status && it->reason == reason) {
        return;
    }
    if (it->status != text.status) {
        it->last_transition_time = std::string(now);
    }
    it->status = std::string(text.status);
    it->reason = reason;
    it->message = text.message;
    it->last_update_time = std::string(now);
}

}  // namespace serin::analysis
