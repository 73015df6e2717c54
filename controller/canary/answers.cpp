#include "controller/canary/answers.hpp"

#include <fmt/format.h>

#include <chrono>

#include "controller/canary/target_kind.hpp"

namespace serin::canary {

namespace asio = boost::asio;

namespace {

/// A question's answer made by a coroutine, as BackgroundCalls holds answers.
asio::awaitable<Answer> as_answer(asio::awaitable<analysis::HookRun> run) {
    co_return Answer{co_await std::move(run)};
}
asio::awaitable<Answer> as_answer(asio::awaitable<std::vector<analysis::MetricResult>> results) {
    co_return Answer{co_await std::move(results)};
}

std::string budget_text(Duration budget) {
    return std::to_string(std::chrono::duration_cast<std::chrono::seconds>(budget).count()) + "s";
}

/// The answer of hooks that ran past the budget: the first hook of the type did not answer.
analysis::HookRun unanswered_hooks(const api::Canary& canary, analysis::HookType type,
                                   Duration budget) {
    analysis::HookRun run;
    if (canary.spec.analysis) {
        for (const api::CanaryWebhook& hook : canary.spec.analysis->webhooks) {
            if (analysis::hook_type(hook.type) == type) {
                run.push_back(analysis::HookCall{
                    hook.name, false, "no answer within the " + budget_text(budget) + " budget"});
                break;
            }
        }
    }
    return run;
}

/// The answer of metric checks that ran past the budget: an error for each metric.
std::vector<analysis::MetricResult> unanswered_metrics(const api::Canary& canary,
                                                       Duration budget) {
    std::vector<analysis::MetricResult> results;
    if (canary.spec.analysis) {
        for (const api::CanaryMetric& metric : canary.spec.analysis->metrics) {
            results.push_back(analysis::MetricResult{
                metric.name, analysis::Verdict::kError, std::nullopt,
                "Metric query failed for " + metric.name + ": no answer within the " +
                    budget_text(budget) + " budget",
                std::nullopt});
        }
    }
    return results;
}

}  // namespace

std::string question_about(const api::Canary& canary) {
    const api::CanaryStatus& status = canary.status;
    return fmt::format("{}|{}|{}|{}|{}|{}|{}", canary.metadata.generation, status.phase,
                       status.canary_weight, status.iterations, status.failed_checks,
                       status.last_transition_time, canary_checksum(status));
}

std::optional<analysis::HookRun> BackgroundAnswers::hooks(const analysis::HookRequest& request) {
    const std::string checksum = canary_checksum(ctx_.canary.status);
    auto answer = calls_.ask(
        ctx_.key,
        fmt::format("hooks {} {} {}", static_cast<int>(request.type), request.phase, about_),
        [&webhooks = webhooks_, canary = ctx_.canary, request, checksum] {
            return as_answer(run_hooks(webhooks, canary, request.type, request.phase, checksum));
        },
        [canary = ctx_.canary, type = request.type, budget = calls_.budget()] {
            return Answer{unanswered_hooks(canary, type, budget)};
        });
    if (!answer) {
        return std::nullopt;
    }
    return std::get<analysis::HookRun>(std::move(*answer));
}

std::optional<std::vector<analysis::MetricResult>> BackgroundAnswers::metrics() {
    // The kind may set the metrics' `route` (Knative: the latest created revision).
    api::Canary checked = ctx_.canary;
    if (ctx_.kind != nullptr && ctx_.target != nullptr) {
        if (std::optional<std::string> route = ctx_.kind->metric_route(*ctx_.target)) {
            checked.spec.route_ref = api::LocalObjectRef{};
            checked.spec.route_ref->name = std::move(*route);
        }
    }
    auto answer = calls_.ask(
        ctx_.key, "metrics " + about_,
        [&checker = checker_, canary = std::move(checked)] {
            return as_answer(checker.check(canary));
        },
        [canary = ctx_.canary, budget = calls_.budget()] {
            return Answer{unanswered_metrics(canary, budget)};
        });
    if (!answer) {
        return std::nullopt;
    }
    return std::get<std::vector<analysis::MetricResult>>(std::move(*answer));
}

}  // namespace serin::canary
