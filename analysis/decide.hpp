#pragma once

#include <optional>
#include <vector>

#include "analysis/release.hpp"

/// The loop around advance(): it asks questions (the webhooks of a type, the metric checks) and
/// is called again with each answer until it decides. The reconciler and the unit tests both run
/// releases through this one loop.
namespace serin::analysis {

/// Answers advance()'s questions. Each returns nullopt while its answer is being worked out (the
/// reconciler works them out in the background and is woken when they are ready).
class Answers {
public:
    virtual ~Answers() = default;
    virtual std::optional<HookRun> hooks(const HookRequest& request) = 0;
    virtual std::optional<std::vector<MetricResult>> metrics() = 0;
};

/// Runs advance() on `observations`, filling in each answer it asks for, until it asks for no
/// more. nullopt: an answer is not ready yet (nothing may be acted on). Each question is asked
/// at most once; a Decision that still needs_input() means advance() asked again, which is a bug.
std::optional<Decision> decide(const api::Canary& canary, Observations& observations,
                               const Settings& settings, SystemTime now, Answers& answers);

}  // namespace serin::analysis
