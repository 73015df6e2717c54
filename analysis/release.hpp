#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "analysis/canary_judge.hpp"
#include "analysis/routes.hpp"
#include "analysis/severity.hpp"
#include "crds/api/canary.hpp"
#include "crds/api/canary_request.hpp"
#include "platform/core/time.hpp"

/// The release state machine as a pure function (flagger-spec §2.3-§2.12).
///
/// The reconciler gathers what it knows about a canary into Observations, calls advance(), and
/// carries out the Decision: the actions in order, then the status write when the status changed.
/// advance() does no I/O. When it needs the answer of webhooks or metric checks it has not been
/// given, it stops and asks for them (Decision::need_hooks / need_metrics); the reconciler runs
/// them, adds the results to the Observations and calls advance() again. Because advance() is
/// deterministic, the second call retraces the first and goes further.
namespace serin::analysis {

using api::StringMap;

// ---- webhooks ------------------------------------------------------------------------------

enum class HookType {
    kConfirmRollout,
    kPreRollout,
    kRollout,
    kConfirmTrafficIncrease,
    kConfirmPromotion,
    kPostRollout,
    kRollback,
    kEvent,
};

/// Flagger's spelling: "confirm-rollout", ...
std::string_view to_string(HookType type);
/// The type of a webhook spec entry; an empty type is `rollout`. nullopt for unknown strings.
std::optional<HookType> hook_type(std::string_view type);

/// The answer of one webhook.
struct HookCall {
    std::string name;
    bool ok = false;    ///< 200-202; for rollback hooks: "roll back now"
    std::string error;  ///< why it was not ok
};

/// The answers of the hooks of one type, in spec order. Gating types stop at the first hook that
/// is not ok; rollback hooks stop at the first that is.
using HookRun = std::vector<HookCall>;

/// Which hooks to run before advance() can go on, and the phase their payload carries.
struct HookRequest {
    HookType type = HookType::kConfirmRollout;
    std::string phase;
};

// ---- metric checks -------------------------------------------------------------------------

/// A check is pass, fail, or could not be judged (no data, or the query failed).
enum class Verdict { kPass, kFail, kNoData, kError };

struct MetricResult {
    std::string name;
    Verdict verdict = Verdict::kError;
    std::optional<double> value;
    /// For a fail, no-data or error: the Warning event's text (Flagger's wording).
    std::string message;
    /// For a metric with a `judge`: how its canary series compares with the primary's. The
    /// judged metrics of a step are scored together; `verdict` is then not used.
    std::optional<judge::Classification> judged;
};

// ---- what the reconciler saw -----------------------------------------------------------------

/// Whether a workload has finished rolling out. `retriable == false` means it never will
/// (its progress deadline passed).
struct Readiness {
    bool ready = false;
    bool retriable = true;
    std::string message;  ///< why it is not ready
};

/// Serin's revisions (status.lastAppliedSpec and lastPromotedSpec) start with this prefix. Any
/// other value was written by another controller: Flagger (`^[456789bcdf]{1,10}$`, or decimal
/// before Flagger 1.0) or a Serin before 0.2.
inline constexpr std::string_view kRevisionPrefix = "s1:";

/// Whether status.lastAppliedSpec `revision` was written by another controller, so that it
/// cannot be compared with Serin's own: non-empty and without kRevisionPrefix.
inline bool foreign_revision(std::string_view revision) {
    return !revision.empty() && !revision.starts_with(kRevisionPrefix);
}

struct Observations {
    /// Serin's revision of the target's pod template now (flagger-spec §2.2; kRevisionPrefix).
    std::string revision;
    /// Only when the status holds a foreign revision (a canary taken over from Flagger): the
    /// revision of what the primary runs, in its target's form, comparable with `revision`;
    /// nullopt when there is no primary.
    std::optional<std::string> primary_revision;
    /// Checksums of the ConfigMaps and Secrets the target uses now ("configmap/<name>" -> hash);
    /// nullopt when config tracking is off or the target uses none.
    std::optional<StringMap> configs;
    Readiness primary;
    Readiness canary;
    /// The target is out of service: scaled to zero (its kind has a scale-up to write). A run
    /// under way scales it up again (someone scaled it down, or wrote an old manifest).
    bool canary_scaled_down = false;
    /// The router's weights; nullopt when they could not be read (routes_error says why).
    std::optional<Routes> routes;
    std::string routes_error;
    /// Hooks already run in this reconcile, by type.
    std::map<HookType, HookRun> hooks;
    /// Metric checks already run in this reconcile, in spec order.
    std::optional<std::vector<MetricResult>> metrics;
    /// When this controller last took a paced step for the canary (its own record, wall
    /// clock); nullopt: none since it started. advance() paces from the later of this and
    /// status.lastStepTime (last_paced_step(), until_next_step()): a tick is due once an
    /// analysis interval has passed. Detection of a new revision, initialization, promotion once
    /// the primary is ready and rollbacks on a dead workload happen whenever the reconciler
    /// runs; analysis steps only when a tick is due.
    std::optional<SystemTime> last_step;
    /// The canary's pending CanaryRequests (status.phase empty), oldest first
    /// (api::handled_before). advance() handles at most one per call: the first whose uid is
    /// not in status.requests.
    std::vector<api::CanaryRequest> requests;
};

/// Controller-wide settings that shape a decision.
struct Settings {
    /// spec.provider, else the -mesh-provider flag.
    std::string provider = "kubernetes";
    /// Whether the router can mirror traffic to the canary in a blue/green release
    /// (analysis.iterations) and in a weighted one. Where it cannot, analysis.mirror is ignored:
    /// a release must not wait for a mirror that will never appear.
    bool mirror_blue_green = true;
    bool mirror_weighted = true;
};

// ---- what to do ----------------------------------------------------------------------------

struct SetRoutes {
    Routes routes;
};
/// Scales the target up for analysis (flagger-spec §3.4).
struct ScaleUp {};
/// Scales the target to zero.
struct ScaleToZero {};
/// Copies the target's template and configs to the primary (§3.7).
struct Promote {};
/// A Kubernetes Event about the canary, also sent to its `event` webhooks.
struct RecordEvent {
    bool warning = false;
    std::string message;
    std::string phase;  ///< the phase the event webhook payload carries
};
/// A notification to the canary's alert providers (or the global notifier).
struct Alert {
    Severity severity = Severity::kInfo;
    std::string message;
    bool with_metadata = false;  ///< add Target, threshold, deadline and routing fields
    /// The release ended (promoted or rolled back): the notification carries what the analysis
    /// saw (Serin; Flagger sends the bare message).
    bool summary = false;
};
/// Fire-and-report hooks (post-rollout): their failures are only reported.
struct RunHooks {
    HookType type = HookType::kPostRollout;
    std::string phase;
};

using Action = std::variant<SetRoutes, ScaleUp, ScaleToZero, Promote, RecordEvent, Alert, RunHooks>;

/// A CanaryRequest handled by a decision (also recorded in status.requests): the reconciler
/// writes the request's status after the canary's, then records `event` on the canary.
struct RequestOutcome {
    std::string uid;
    std::string name;
    api::RequestAction action = api::RequestAction::kPromote;
    bool done = false;  ///< Done; false: Refused
    std::string message;
    bool warning = false;  ///< the Event's type: Warning for a refusal
    std::string event;     ///< names the request and who asked
};

/// The request's status and the Event text for a request recorded in status.requests (a
/// controller stopped between the canary's status write and the request's completes it
/// from this record).
RequestOutcome outcome_of(const api::HandledRequest& record, std::string_view reason);

struct Decision {
    api::CanaryStatus status;
    /// The request this decision handled, if any.
    std::optional<RequestOutcome> request;
    /// In order: routing and workload changes first as the algorithm makes them, events where they
    /// happen. The reconciler performs the non-event actions, then writes the status, then sends
    /// events, alerts and fire-and-report hooks.
    std::vector<Action> actions;
    /// Set when advance() stopped to ask for hook answers; nothing else in the Decision counts.
    std::optional<HookRequest> need_hooks;
    /// Set when advance() stopped to ask for the metric checks.
    bool need_metrics = false;
    /// True when this reconcile used up the analysis tick: the next paced step waits an interval.
    /// When the decision's status differs from the canary's anyway, it carries the step's time
    /// in status.lastStepTime (no write is added for it); otherwise only the reconciler's own
    /// record (Observations::last_step) keeps it.
    bool consumed_tick = false;
    /// True when the canary is mid-release or waiting for something, so it needs ticks.
    bool active = false;
    /// True for a rollback: the reconciler writes the status (phase Failed) before it moves the
    /// traffic and scales down, so a controller killed in between comes back to a Failed canary
    /// (whose traffic advance() then moves back to the primary) instead of one that looks as if
    /// its analysis had not started and would be given traffic again.
    bool status_first = false;

    bool needs_input() const { return need_hooks.has_value() || need_metrics; }
};

/// The deployment strategy (metrics label and control flow): "canary", "blue-green" or
/// "ab-testing".
std::string_view strategy(const api::CanarySpec& spec);

/// One step of the release of `canary` given what was observed at `now`.
Decision advance(const api::Canary& canary, const Observations& observations,
                 const Settings& settings, SystemTime now);

/// The Promoted condition for `phase` (flagger-spec §2.12), merged into `conditions`: replaced
/// only when status or reason change; lastTransitionTime kept when only the reason changes.
void set_promoted_condition(std::vector<api::Condition>& conditions, std::string_view phase,
                            std::string_view kind, std::string_view now);

}  // namespace serin::analysis
