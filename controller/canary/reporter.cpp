#include "controller/canary/reporter.hpp"

#include "metrics/metric_judge.hpp"
#include "platform/core/log.hpp"

#include <fmt/format.h>

#include <boost/asio/co_spawn.hpp>
#include <variant>

namespace serin::canary {

namespace asio = boost::asio;

namespace {

/// Posts one event webhook; a failure is only logged.
asio::awaitable<void> post_event(WebhookClient& webhooks, WebhookTarget target,
                                 WebhookPayload payload, std::string key) {
    auto result = co_await webhooks.call(std::move(target), std::move(payload));
    if (!result) {
        CanaryLog(key).warn("event webhook failed: {}", result.error().message);
    }
}

const char* severity_name(analysis::Severity s) {
    switch (s) {
        case analysis::Severity::kInfo:
            return "info";
        case analysis::Severity::kWarn:
            return "warn";
        case analysis::Severity::kError:
            return "error";
    }
    return "info";
}

}  // namespace

void Reporter::event(const CanaryContext& ctx, const analysis::RecordEvent& event) {
    if (event.warning) {
        CanaryLog(ctx.key).warn("{}", event.message);
    } else {
        CanaryLog(ctx.key).info("{}", event.message);
    }
    record(*ctx.raw, event.warning ? kube::EventType::kWarning : kube::EventType::kNormal,
           event.message, ctx.key);
    post_event_webhooks(ctx, event);
}

void Reporter::warning(const kube::ObjectPtr& raw, const std::string& key,
                       const std::string& message) {
    CanaryLog(key).warn("{}", message);
    record(*raw, kube::EventType::kWarning, message, key);
}

void Reporter::record(const kube::Json& involved, kube::EventType type, const std::string& message,
                      const std::string& key) {
    // Written in the background, in order: a worker does not wait on the API server for what
    // only reports (a release's first reconcile posts four Events).
    deps_.recorder.post(deps_.executor, involved, type, "Synced", message,
                        [key](const Error& error) {
                            CanaryLog(key).warn("event not recorded: {}", error.describe());
                        });
}

std::vector<notify::Field> Reporter::summary(const std::string& key,
                                             const api::CanaryStatus& before) const {
    std::vector<notify::Field> extra;
    const auto it = summaries_.find(key);
    const Summary seen = it != summaries_.end() ? it->second : Summary{};
    std::string analysis = std::to_string(seen.metric_steps) + " metric checks, " +
                           std::to_string(before.failed_checks) + " failed";
    if (before.canary_weight > 0) {
        analysis += ", canary weight reached " + std::to_string(before.canary_weight) + "%";
    } else if (before.iterations > 0) {
        analysis += ", " + std::to_string(before.iterations) + " iterations";
    }
    extra.push_back({"Analysis", analysis});
    if (!seen.last_metrics.empty()) {
        extra.push_back({"Last metrics", seen.last_metrics});
    }
    if (before.judge) {
        extra.push_back(
            {"Judge", fmt::format("score {:.2f} ({})", before.judge->score, before.judge->result)});
    }
    return extra;
}

asio::awaitable<void> Reporter::alert(const CanaryContext& ctx, const analysis::Alert& alert,
                                      const api::CanaryStatus& before) {
    CanaryLog(ctx.key).info("{} alert: {}", severity_name(alert.severity), alert.message);
    if (deps_.alerts == nullptr) {
        co_return;
    }
    std::vector<notify::Field> extra;
    if (alert.summary) {
        extra = summary(ctx.key, before);
    }
    // A post that fails later is reported on the canary too; the recorder outlives the post.
    // The canary is shared, not copied: alerts in flight at 1,000 canaries would hold a tree each.
    auto on_failure = [this, involved = ctx.raw, key = ctx.key](const std::string& why) {
        if (deps_.telemetry != nullptr) {
            deps_.telemetry->count_notification_failure();
        }
        record(*involved, kube::EventType::kWarning, why, key);
    };
    for (const std::string& problem : deps_.alerts->send(ctx.canary, alert, extra, on_failure)) {
        CanaryLog(ctx.key).warn("{}", problem);
        record(*ctx.raw, kube::EventType::kWarning, problem, ctx.key);
    }
}

void Reporter::post_event_webhooks(const CanaryContext& ctx, const analysis::RecordEvent& event) {
    std::vector<WebhookTarget> targets;
    if (ctx.canary.spec.analysis) {
        for (const auto& hook : ctx.canary.spec.analysis->webhooks) {
            if (analysis::hook_type(hook.type) == analysis::HookType::kEvent) {
                targets.push_back(webhook_target(hook));
            }
        }
    }
    if (targets.empty() && !event_webhook_.empty()) {
        WebhookTarget global;
        global.name = "events";
        global.url = event_webhook_;
        targets.push_back(std::move(global));
    }
    const std::string checksum = canary_checksum(ctx.canary.status);
    for (WebhookTarget& target : targets) {
        WebhookPayload base{ctx.canary.metadata.name, ctx.ns(), event.phase, checksum, {}};
        WebhookPayload payload = event_payload(std::move(base), target.metadata, event.message,
                                               event.warning, deps_.clock.system_now());
        // In the background: an event sink must never hold up a release. The timeout and
        // retries of the hook bound how long each post lives, and BackgroundCalls how many run.
        const std::string name = target.name;
        if (!deps_.calls.post(ctx.key, post_event(deps_.webhooks, std::move(target),
                                                  std::move(payload), ctx.key))) {
            CanaryLog(ctx.key).warn("event webhook {} dropped: {} background calls are already "
                                    "running",
                                    name, deps_.calls.posts_in_flight());
        }
    }
}

void Reporter::post_rollout(const CanaryContext& ctx, std::string phase) {
    if (!deps_.calls.post(ctx.key, run_post_rollout(ctx, std::move(phase)))) {
        CanaryLog(ctx.key).warn("post-rollout hooks not run: {} background calls are already "
                                "running",
                                deps_.calls.posts_in_flight());
    }
}

asio::awaitable<void> Reporter::run_post_rollout(CanaryContext ctx, std::string phase) {
    const analysis::HookRun run = co_await run_hooks(deps_.webhooks, ctx.canary,
                                                     analysis::HookType::kPostRollout, phase,
                                                     canary_checksum(ctx.canary.status));
    for (const analysis::HookCall& call : run) {
        analysis::RecordEvent outcome;
        outcome.phase = phase;
        outcome.warning = !call.ok;
        outcome.message = call.ok ? "Post-rollout check " + call.name + " passed"
                                  : "Post-rollout hook " + call.name + " failed " + call.error;
        event(ctx, outcome);
    }
}

void Reporter::release_started(const std::string& key) { summaries_[key] = Summary{}; }

void Reporter::metrics_checked(const std::string& key, int canary_weight,
                               const std::vector<analysis::MetricResult>& results) {
    Summary& seen = summaries_[key];
    seen.metric_steps += 1;
    seen.last_metrics = metrics::describe_metrics(results);
    CanaryLog(key).info("metrics at weight {}: {}", canary_weight, seen.last_metrics);
}

void Reporter::telemetry(const CanaryContext& ctx, const analysis::Observations& obs,
                         const analysis::Decision& decision, const api::CanaryStatus& before,
                         SteadyTime started) {
    telemetry::Telemetry* t = deps_.telemetry;
    if (t == nullptr) {
        return;
    }
    t->set_status(ctx.canary, decision.status.phase);
    std::optional<analysis::Routes> routes = obs.routes;
    for (const analysis::Action& action : decision.actions) {
        if (const auto* set = std::get_if<analysis::SetRoutes>(&action)) {
            routes = set->routes;
        }
    }
    if (routes) {
        t->set_weights(ctx.canary, routes->primary, routes->canary);
    }
    // Flagger's tick duration: a paced analysis step (with or without metrics).
    if (obs.metrics || (decision.consumed_tick && before.phase == "Progressing")) {
        t->observe_analysis(
            ctx.canary, std::chrono::duration<double>(deps_.clock.steady_now() - started).count());
    }
    if (obs.metrics) {
        for (const analysis::MetricResult& m : *obs.metrics) {
            if (m.value) {
                t->set_metric_value(ctx.canary, m.name,
                                    m.name == "request-duration" ? *m.value / 1000 : *m.value);
            }
        }
    }
    const std::string& phase = decision.status.phase;
    if (phase != before.phase && (phase == "Succeeded" || phase == "Failed")) {
        const bool skipped = ctx.canary.spec.skip_analysis || !ctx.canary.spec.analysis;
        t->count_release(ctx.canary, phase == "Succeeded", phase == "Succeeded" && skipped);
    }
}

void Reporter::reconciled(Duration took, bool ok) {
    if (deps_.telemetry != nullptr) {
        deps_.telemetry->observe_reconcile(std::chrono::duration<double>(took).count(), ok);
    }
}

void Reporter::forget(const std::string& key) {
    summaries_.erase(key);
    if (deps_.telemetry != nullptr) {
        const auto slash = key.find('/');
        if (slash != std::string::npos) {
            deps_.telemetry->forget_canary(key.substr(0, slash), key.substr(slash + 1));
        }
    }
}

}  // namespace serin::canary
