#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <map>
#include <string>
#include <vector>

#include "analysis/release.hpp"
#include "controller/canary/alerts.hpp"
#include "controller/canary/background_calls.hpp"
#include "controller/canary/context.hpp"
#include "controller/canary/webhook.hpp"
#include "controller/telemetry/telemetry.hpp"
#include "platform/core/clock.hpp"
#include "platform/kube/event_recorder.hpp"

namespace serin::canary {

struct ReporterDeps {
    boost::asio::any_io_executor executor;  ///< where Events are written and failed alert posts record theirs
    Clock& clock;
    kube::EventRecorder& recorder;
    WebhookClient& webhooks;
    /// Where event webhooks and post-rollout hooks are posted, so no worker waits on them.
    BackgroundCalls& calls;
    AlertDispatcher* alerts = nullptr;         ///< null: alerts are only logged
    telemetry::Telemetry* telemetry = nullptr;  ///< null: no metrics kept
};

/// Everything a release tells the world, apart from the status: log lines, Kubernetes Events,
/// event webhooks, alerts, post-rollout hooks and Flagger's metrics. None of it can fail a
/// reconcile: what cannot be reported is logged (and, for an alert, counted and recorded as a
/// Warning Event).
///
/// Remembers, per canary, the metric checks of the release so far, for the summary of the alert
/// that ends it (lost on restart).
/// Thread safety: one io_context thread.
class Reporter {
public:
    Reporter(ReporterDeps deps, std::string event_webhook)
        : deps_(deps), event_webhook_(std::move(event_webhook)) {}

    /// Logs the event, records it as a Kubernetes Event and posts it to the event webhooks, all
    /// in the background (the Events in the order they were reported).
    void event(const CanaryContext& ctx, const analysis::RecordEvent& event);
    /// A Warning Event about `raw` (a canary that could not be decoded has no context).
    void warning(const kube::ObjectPtr& raw, const std::string& key, const std::string& message);
    /// Sends an alert, with the analysis summary when it ends the release (`before`: the status
    /// the release ended from).
    boost::asio::awaitable<void> alert(const CanaryContext& ctx, const analysis::Alert& alert,
                                       const api::CanaryStatus& before);
    /// Runs the post-rollout hooks of `phase` in the background and records their outcome.
    void post_rollout(const CanaryContext& ctx, std::string phase);

    /// A release began: its summary starts afresh.
    void release_started(const std::string& key);
    /// The metric checks of a step, for the log and the release's summary.
    void metrics_checked(const std::string& key, int canary_weight,
                         const std::vector<analysis::MetricResult>& results);
    /// Flagger's series for what a reconcile observed and decided (`started`: when the step
    /// began, for the analysis duration).
    void telemetry(const CanaryContext& ctx, const analysis::Observations& obs,
                   const analysis::Decision& decision, const api::CanaryStatus& before,
                   SteadyTime started);
    /// How long a reconcile took, and whether it failed.
    void reconciled(Duration took, bool ok);
    /// Drops what is kept about a canary that no longer exists.
    void forget(const std::string& key);

private:
    struct Summary {
        int metric_steps = 0;
        std::string last_metrics;
    };

    void post_event_webhooks(const CanaryContext& ctx, const analysis::RecordEvent& event);
    /// Posts an Event ("Synced", as Flagger's) to the recorder; a failure is only logged.
    void record(const kube::Json& involved, kube::EventType type, const std::string& message,
                const std::string& key);
    boost::asio::awaitable<void> run_post_rollout(CanaryContext ctx, std::string phase);
    std::vector<notify::Field> summary(const std::string& key,
                                       const api::CanaryStatus& before) const;

    ReporterDeps deps_;
    std::string event_webhook_;  ///< -event-webhook: the global event sink
    std::map<std::string, Summary> summaries_;
};

}  // namespace serin::canary
