#pragma once

#include <optional>
#include <string>
#include <vector>

#include "analysis/decide.hpp"
#include "controller/canary/background_calls.hpp"
#include "controller/canary/context.hpp"
#include "controller/canary/webhook.hpp"
#include "metrics/metric_checker.hpp"

namespace serin::canary {

/// advance()'s questions about one canary, answered from BackgroundCalls: the first reconcile
/// that asks starts the webhooks or the metric checks and gets nullopt; the canary is woken
/// when the answer is ready and the next reconcile finds it. A question names the status it is
/// about (`about`), so a status that moved on asks anew.
class BackgroundAnswers final : public analysis::Answers {
public:
    BackgroundAnswers(BackgroundCalls& calls, WebhookClient& webhooks,
                      metrics::MetricChecker& checker, const CanaryContext& ctx,
                      std::string about)
        : calls_(calls), webhooks_(webhooks), checker_(checker), ctx_(ctx),
          about_(std::move(about)) {}

    std::optional<analysis::HookRun> hooks(const analysis::HookRequest& request) override;
    std::optional<std::vector<analysis::MetricResult>> metrics() override;

private:
    BackgroundCalls& calls_;
    WebhookClient& webhooks_;
    metrics::MetricChecker& checker_;
    const CanaryContext& ctx_;
    std::string about_;
};

/// What a question is about: everything in the canary that its answers depend on (the spec's
/// generation and the release's place in its status).
std::string question_about(const api::Canary& canary);

}  // namespace serin::canary
