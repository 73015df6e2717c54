#include "analysis/decide.hpp"

namespace serin::analysis {

std::optional<Decision> decide(const api::Canary& canary, Observations& observations,
                               const Settings& settings, SystemTime now, Answers& answers) {
    // Every round answers one more question: the hooks of one type, or the metrics. There are
    // fewer kinds of question than this, so the bound is only a guard against a looping bug.
    constexpr int kMaxRounds = 16;
    Decision decision;
    for (int round = 0; round < kMaxRounds; ++round) {
        decision = advance(canary, observations, settings, now);
        if (decision.need_hooks) {
            const HookRequest request = *decision.need_hooks;
            if (observations.hooks.count(request.type) > 0) {
                break;  // asked twice: returned as needing input
            }
            std::optional<HookRun> run = answers.hooks(request);
            if (!run) {
                return std::nullopt;
            }
            observations.hooks[request.type] = std::move(*run);
        } else if (decision.need_metrics) {
            if (observations.metrics) {
                break;
            }
            std::optional<std::vector<MetricResult>> results = answers.metrics();
            if (!results) {
                return std::nullopt;
            }
            observations.metrics = std::move(*results);
        } else {
            break;
        }
    }
    return decision;
}

}  // namespace serin::analysis
