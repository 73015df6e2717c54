#include "analysis/release.hpp"

#include "analysis/pacing.hpp"
#include "analysis/phases.hpp"

#include "platform/core/assert.hpp"
#include "platform/core/text.hpp"
#include "platform/core/time_format.hpp"

#include <algorithm>
#include <cmath>
#include <fmt/format.h>

namespace serin::analysis {

namespace {

using api::Canary;
using api::CanaryAnalysis;
using api::CanaryStatus;
using namespace phase;

constexpr std::string_view kRoutingToPrimary = "Routing all traffic to primary";

bool is_one_of(std::string_view phase, std::initializer_list<std::string_view> phases) {
    return std::find(phases.begin(), phases.end(), phase) != phases.end();
}

/// Whether two statuses differ in anything but the times that move on every write.
bool same_state(const CanaryStatus& a, const CanaryStatus& b) {
    auto key = [](const CanaryStatus& s) {
        return std::tie(s.phase, s.failed_checks, s.errored_checks, s.canary_weight, s.iterations,
                        s.tracked_configs, s.last_applied_spec, s.last_promoted_spec,
                        s.session_affinity_cookie, s.primary_session_affinity_cookie,
                        s.previous_session_affinity_cookie);
    };
    if (key(a) != key(b) || a.conditions.size() != b.conditions.size() ||
        a.paused.has_value() != b.paused.has_value() ||
        a.promotion.has_value() != b.promotion.has_value() ||
        a.requests.size() != b.requests.size() ||
        a.judge.has_value() != b.judge.has_value()) {
        return false;
    }
    if (a.judge && (a.judge->score != b.judge->score || a.judge->result != b.judge->result ||
                    a.judge->reason != b.judge->reason ||
                    a.judge->metrics.size() != b.judge->metrics.size())) {
        return false;
    }
    for (std::size_t i = 0; i < a.conditions.size(); ++i) {
        const auto& x = a.conditions[i];
        const auto& y = b.conditions[i];
        if (std::tie(x.type, x.status, x.reason, x.message) !=
            std::tie(y.type, y.status, y.reason, y.message)) {
            return false;
        }
    }
    return true;
}

/// One run of the algorithm of flagger-spec §2.3 (steps that need no I/O), as an object so the
/// many small steps share the canary, the observations and the decision being built.
class Tick {
public:
    Tick(const Canary& canary, const Observations& obs, const Settings& settings, SystemTime now)
        : c_(canary),
          obs_(obs),
          settings_(settings),
          now_(format_time(now)),
          step_time_(format_micro_time(now)),
          status_(canary.status),
          skip_(canary.spec.skip_analysis || !canary.spec.analysis),
          kind_(canary.spec.target_ref.kind.empty() ? "Deployment" : canary.spec.target_ref.kind),
          tick_due_(until_next_step(last_paced_step(canary.status, obs.last_step), now,
                                    interval_of(canary)) == Duration::zero()) {
        if (canary.spec.analysis) {
            analysis_ = *canary.spec.analysis;
        }
        kubernetes_ = settings_.provider == "kubernetes";
        const bool can_mirror = !kubernetes_ && (analysis_.iterations > 0
                                                      ? settings_.mirror_blue_green
                                                      : settings_.mirror_weighted);
        analysis_.mirror = analysis_.mirror && can_mirror;
    }

    Decision run() {
        step();
        if (decision_.needs_input()) {
            return std::move(decision_);
        }
        if (!same_state(status_, c_.status)) {
            status_.last_transition_time = now_;
        }
        // The step's time goes in the status write the step makes anyway; a paced tick that
        // changes nothing (a wait reported, a refused gate asked again) adds no write for it.
        if (decision_.consumed_tick && api::encode_status(status_) != api::encode_status(c_.status)) {
            status_.last_step_time = step_time_;
        }
        decision_.status = std::move(status_);
        const auto& p = decision_.status.phase;
        decision_.active = !is_one_of(p, {kInitialized, kSucceeded, kFailed});
        return std::move(decision_);
    }

private:
    // ---- names used in messages ----
    std::string canary_id() const { return c_.metadata.name + "." + c_.metadata.ns; }
    std::string target_id() const { return c_.spec.target_ref.name + "." + c_.metadata.ns; }
    std::string primary_id() const {
        return c_.spec.target_ref.name + "-primary." + c_.metadata.ns;
    }

    // ---- actions ----
    void event(std::string message, bool warning = false) {
        decision_.actions.emplace_back(RecordEvent{warning, std::move(message), status_.phase});
    }
    void warn(std::string message) { event(std::move(message), true); }
    void alert(Severity severity, std::string message, bool with_metadata = false) {
        decision_.actions.emplace_back(Alert{severity, std::move(message), with_metadata, false});
    }
    /// An alert that ends a release, with the analysis summary.
    void final_alert(Severity severity, std::string message) {
        decision_.actions.emplace_back(Alert{severity, std::move(message), false, true});
    }
    void set_routes(int primary, int canary, bool mirrored) {
        // Weights are computed from stepWeight(s) and maxWeight, which validate() bounds.
        SERIN_DEBUG_ASSERT(primary >= 0 && canary >= 0 && primary + canary == 100,
                           "a decision's routes must total 100");
        decision_.actions.emplace_back(SetRoutes{Routes{primary, canary, mirrored}});
    }
    void post_rollout(std::string_view phase) {
        if (has_hooks(HookType::kPostRollout)) {
            decision_.actions.emplace_back(RunHooks{HookType::kPostRollout, std::string(phase)});
        }
    }

    // ---- status primitives (flagger-spec §1.5) ----
    void set_condition() {
        set_promoted_condition(status_.conditions, status_.phase, kind_, now_);
    }
    /// SetStatusPhase.
    void set_phase(std::string_view phase) {
        status_.phase = std::string(phase);
        if (!is_one_of(phase, {kProgressing, kWaiting, kPromoting})) {
            status_.canary_weight = 0;
            status_.iterations = 0;
            if (phase == kWaitingPromotion) {
                status_.iterations = std::max(0, analysis_.iterations - 1);
            }
        }
        if (phase == kInitialized || phase == kSucceeded) {
            status_.last_promoted_spec = status_.last_applied_spec;
        }
        end_requested_state();
        set_condition();
    }
    /// A pause and a requested promotion last only while the canary releases.
    void end_requested_state() {
        if (!is_one_of(status_.phase, {kWaiting, kProgressing, kWaitingPromotion})) {
            status_.paused.reset();
            status_.promotion.reset();
        }
    }
    /// SyncStatus: the four counters verbatim, plus the revision and configs seen now.
    void sync_status(std::string_view phase, int weight, int failed_checks, int iterations) {
        status_.phase = std::string(phase);
        status_.canary_weight = weight;
        status_.failed_checks = failed_checks;
        status_.iterations = iterations;
        status_.errored_checks = 0;
        if (phase == kProgressing) {
            status_.judge.reset();  // a new analysis has not been judged yet
        }
        status_.last_applied_spec = obs_.revision;
        status_.tracked_configs = obs_.configs;
        if (phase == kInitialized) {
            status_.last_promoted_spec = obs_.revision;
        }
        end_requested_state();
        set_condition();
    }

    // ---- revision change (§2.2) ----
    bool spec_changed() const {
        if (c_.status.last_applied_spec.empty()) {
            return true;
        }
        if (obs_.revision == c_.status.last_promoted_spec) {
            return false;  // reverted to what the primary runs: a manual rollback, not a release
        }
        return obs_.revision != c_.status.last_applied_spec;
    }
    bool configs_changed() const {
        const bool have = obs_.configs && !obs_.configs->empty();
        const auto& tracked = c_.status.tracked_configs;
        if (!have) {
            return false;
        }
        if (!tracked) {
            return true;
        }
        return *tracked != *obs_.configs;
    }
    bool revision_changed() const { return spec_changed() || configs_changed(); }

    // ---- take-over (flagger-spec-providers §16.7) ----
    /// The first reconcile of a canary whose revision another controller wrote: its hashes
    /// cannot be compared with Serin's, so the decision is made by phase instead. True when the
    /// status was adopted and this reconcile is done; false when the release goes on as usual.
    bool take_over() {
        if (is_one_of(status_.phase, {kInitialized, kSucceeded})) {
            // Adopted only when the primary runs the target's template and configs: nothing
            // changed while no controller ran. Otherwise the change is released as usual.
            const bool same_configs = status_.tracked_configs.value_or(StringMap{}) ==
                                      obs_.configs.value_or(StringMap{});
            if (obs_.primary_revision != obs_.revision || !same_configs) {
                return false;
            }
            adopt(obs_.revision);
            return true;
        }
        if (is_one_of(status_.phase, {kFailed, kWaiting})) {
            // The target differs from the primary (Failed: by definition; Waiting: a revision
            // waits for confirm-rollout). Serin remembers both and keeps the phase, so a later
            // edit of the target starts a release and a revert to the primary's does not.
            adopt(obs_.primary_revision.value_or(obs_.revision));
            return true;
        }
        // Progressing and WaitingPromotion restart their analysis (a foreign revision differs
        // from Serin's, so step 17 sees a new one); Promoting and Finalising finish the promotion,
        // and Succeeded then adopts the promoted revision.
        return false;
    }
    void adopt(const std::string& promoted) {
        status_.last_applied_spec = obs_.revision;
        status_.last_promoted_spec = promoted;
        status_.tracked_configs = obs_.configs;
    }

    // ---- hooks ----
    bool has_hooks(HookType type) const {
        return std::any_of(analysis_.webhooks.begin(), analysis_.webhooks.end(),
                           [type](const api::CanaryWebhook& w) { return hook_type(w.type) == type; });
    }
    bool muted(const std::string& hook_name) const {
        for (const auto& w : analysis_.webhooks) {
            if (w.name == hook_name) {
                return w.mute_alert;
            }
        }
        return false;
    }
    /// The answers of `type`'s hooks, or nullptr after asking for them (the tick stops).
    const HookRun* hooks(HookType type, std::string_view phase) {
        static const HookRun kNone;
        if (!has_hooks(type)) {
            return &kNone;
        }
        auto it = obs_.hooks.find(type);
        if (it == obs_.hooks.end()) {
            decision_.need_hooks = HookRequest{type, std::string(phase)};
            return nullptr;
        }
        return &it->second;
    }
    static const HookCall* first_failure(const HookRun& run) {
        for (const auto& call : run) {
            if (!call.ok) {
                return &call;
            }
        }
        return nullptr;
    }

    // ---- runtime requests (docs/runtime-control.md) ----
    /// The first pending request not yet recorded in status.requests, or nullptr.
    const api::CanaryRequest* next_request() const {
        for (const api::CanaryRequest& r : obs_.requests) {
            if (!r.status.phase.empty() || r.spec.canary != c_.metadata.name) {
                continue;
            }
            const bool recorded =
                std::any_of(c_.status.requests.begin(), c_.status.requests.end(),
                            [&r](const api::HandledRequest& h) { return h.uid == r.metadata.uid; });
            if (!recorded) {
                return &r;
            }
        }
        return nullptr;
    }
    static std::string asker(const api::CanaryRequest& r) {
        return r.spec.requested_by.empty() ? "an unnamed client" : r.spec.requested_by;
    }
    static std::string noun(api::RequestAction action) {
        switch (action) {
        case api::RequestAction::kPromote:
            return "Promotion";
        case api::RequestAction::kAbort:
            return "Abort";
        case api::RequestAction::kPause:
            return "Pause";
        case api::RequestAction::kResume:
            return "Resume";
        case api::RequestAction::kRetry:
            return "Retry";
        }
        return "Request";
    }
    void record(const api::CanaryRequest& r, bool done, const std::string& message) {
        api::HandledRequest h;
        h.name = r.metadata.name;
        h.uid = r.metadata.uid;
        h.action = std::string(api::to_string(r.spec.action));
        h.full = r.spec.full;
        h.requested_by = r.spec.requested_by;
        h.result = done ? "Done" : "Refused";
        h.message = text::clip(message, api::kMaxRequestMessageBytes);
        h.time = now_;
        decision_.request = outcome_of(h, r.spec.reason);
        status_.requests.push_back(std::move(h));
        if (status_.requests.size() > api::kMaxHandledRequests) {
            status_.requests.erase(status_.requests.begin(),
                                   status_.requests.end() -
                                       static_cast<std::ptrdiff_t>(api::kMaxHandledRequests));
        }
    }
    void accept(const api::CanaryRequest& r, const std::string& what) {
        record(r, true, noun(r.spec.action) + " requested by " + asker(r) + ": " + what);
    }
    void refuse(const api::CanaryRequest& r, const std::string& why) {
        record(r, false, noun(r.spec.action) + " requested by " + asker(r) + " refused: " + why);
    }
    std::string not_releasing() const {
        return c_.metadata.name + " is not releasing (phase " +
               (status_.phase.empty() ? std::string("none") : status_.phase) + ")";
    }

    /// Handles the first pending request: accepted or refused as docs/runtime-control.md's
    /// table says, its effect on the status, and its record. True when the decision is complete
    /// (an abort rolled back).
    bool handle_request() {
        const api::CanaryRequest* request = next_request();
        if (request == nullptr) {
            return false;
        }
        const api::CanaryRequest& r = *request;
        const bool releasing = is_one_of(status_.phase, {kWaiting, kProgressing, kWaitingPromotion});
        const bool promoting = is_one_of(status_.phase, {kPromoting, kFinalising});
        switch (r.spec.action) {
        case api::RequestAction::kPromote:
            if (promoting) {
                refuse(r, "already promoting");
            } else if (!is_one_of(status_.phase, {kProgressing, kWaitingPromotion})) {
                refuse(r, not_releasing());
            } else if (status_.promotion && (status_.promotion->full || !r.spec.full)) {
                refuse(r, "already promoting (request " + status_.promotion->request +
                              " waits for the confirm-promotion gates)");
            } else {
                status_.promotion = api::RequestedPromotion{r.metadata.name, r.spec.full};
                status_.paused.reset();
                promote_now_ = true;
                accept(r, r.spec.full ? "skipping the remaining analysis steps and the "
                                        "confirm-promotion gates of " + canary_id()
                                      : "skipping the remaining analysis steps of " + canary_id());
            }
            return false;
        case api::RequestAction::kAbort:
            if (promoting) {
                refuse(r, "the primary is already being promoted");
                return false;
            }
            if (!releasing) {
                refuse(r, not_releasing());
                return false;
            }
            accept(r, "rolling back " + canary_id());
            warn("Rolling back " + canary_id() + " aborted by " + asker(r) + " (request " +
                 r.metadata.name + ")");
            final_alert(Severity::kWarn, "Rolling back: aborted by " + asker(r) + " (request " +
                                             r.metadata.name + ")");
            rollback();
            return true;
        case api::RequestAction::kPause:
            if (!releasing) {
                refuse(r, not_releasing());
            } else if (status_.paused) {
                refuse(r, "already paused by " + status_.paused->request);
            } else {
                status_.paused = api::PausedStatus{now_, r.metadata.name};
                accept(r, "the analysis of " + canary_id() + " holds at canary weight " +
                              std::to_string(status_.canary_weight));
            }
            return false;
        case api::RequestAction::kResume:
            if (!status_.paused) {
                refuse(r, c_.metadata.name + " is not paused");
            } else {
                status_.paused.reset();
                // The analysis clock starts again: the next step comes one interval from now.
                tick_due_ = false;
                decision_.consumed_tick = true;
                accept(r, "the next analysis step of " + canary_id() + " comes in " +
                              (analysis_.interval.empty() ? std::string("1m") : analysis_.interval));
            }
            return false;
        case api::RequestAction::kRetry:
            handle_retry(r);
            return false;
        }
        return false;
    }

    void handle_retry(const api::CanaryRequest& r) {
        if (is_one_of(status_.phase, {kSucceeded, kInitialized})) {
            refuse(r, "nothing to retry: the last release of " + c_.metadata.name + " succeeded");
        } else if (status_.phase != kFailed) {
            refuse(r, "nothing to retry: " + c_.metadata.name + " has not failed (phase " +
                          status_.phase + ")");
        } else if (revision_changed()) {
            refuse(r, "the target changed since the failure: a new release starts on its own");
        } else if (obs_.revision != c_.status.last_applied_spec) {
            refuse(r, "the target changed since the failure: it runs the primary's revision");
        } else if (!skip_ && !obs_.primary.ready) {
            refuse(r, "the primary is not ready: " + obs_.primary.message);
        } else if (!obs_.routes) {
            refuse(r, obs_.routes_error.empty() ? "routes unknown" : obs_.routes_error);
        } else {
            retry_ = true;
            accept(r, "the release of " + target_id() + " starts again");
        }
    }

    // ---- the tick ----
    void step() {
        if (c_.spec.suspend) {
            if (const api::CanaryRequest* request = next_request()) {
                refuse(*request, c_.metadata.name + " is suspended (spec.suspend)");
            }
            if (tick_due_) {
                event("skipping canary run as object is suspended");
                decision_.consumed_tick = true;
            }
            return;
        }
        // syncHandler: a canary without a Promoted condition starts Initializing.
        const bool has_promoted =
            std::any_of(status_.conditions.begin(), status_.conditions.end(),
                        [](const api::Condition& c) { return c.type == "Promoted"; });
        if (!has_promoted) {
            status_.phase = std::string(kInitializing);
            set_condition();
        }
        if (is_one_of(status_.phase, {"", kInitializing})) {
            initialize();
            return;
        }
        if (foreign_revision(c_.status.last_applied_spec) && take_over()) {
            return;
        }
        if (handle_request()) {
            return;
        }
        // §2.3 step 12: should the release advance?
        const bool changed = revision_changed() || retry_;
        if (status_.phase == kFailed) {
            // A failed canary follows its target, so reverting it to the primary's revision
            // leaves it alone and a new revision is compared with the last one seen.
            status_.last_applied_spec = obs_.revision;
            status_.tracked_configs = obs_.configs;
            // A rolled-back canary gets no traffic. Rollbacks record the status before moving
            // the traffic; a controller stopped in between finishes the move here. (A failed
            // promotion routes everything to the canary on purpose; its status says weight 100.)
            if (!changed && status_.canary_weight == 0 && obs_.routes &&
                (obs_.routes->canary > 0 || obs_.routes->mirrored)) {
                event(std::string(kRoutingToPrimary) + " (finishing the rollback)");
                set_routes(100, 0, false);
                return;
            }
        }
        const bool active = is_one_of(
            status_.phase, {kProgressing, kWaiting, kWaitingPromotion, kPromoting, kFinalising});
        if (!active && !changed) {
            return;
        }
        // Step 14: the primary must be healthy, except when analysis is skipped.
        if (!skip_ && !obs_.primary.ready) {
            if (!obs_.primary.retriable) {
                warn(obs_.primary.message);  // the readiness Warning comes first on both paths
                if (is_one_of(status_.phase, {kPromoting, kFinalising})) {
                    failed_promotion(obs_.primary.message);
                } else {
                    rollback();
                }
            } else {
                report_wait(obs_.primary.message);
            }
            return;
        }
        progress(changed);
    }

    /// Steps 15-22: a release under way, with a healthy primary (`changed`: the target has a
    /// revision or config the status has not seen).
    void progress(bool changed) {
        // Step 15: the router's view of the traffic.
        if (!obs_.routes) {
            report_wait(obs_.routes_error.empty() ? "routes unknown" : obs_.routes_error);
            return;
        }
        const Routes routes = *obs_.routes;

        // Step 16: start a run, gated by confirm-rollout.
        if (!is_one_of(status_.phase, {kProgressing, kWaitingPromotion, kPromoting, kFinalising})) {
            if (status_.paused && status_.phase == kWaiting && !changed) {
                return;  // paused: confirm-rollout is not asked until resumed
            }
            start_run();
            return;
        }
        // Step 17: a new revision mid-analysis restarts it.
        if (is_one_of(status_.phase, {kProgressing, kWaitingPromotion}) && changed) {
            event(foreign_revision(c_.status.last_applied_spec)
                      ? "Analysis of " + target_id() +
                            " was started by another controller: restarting it"
                      : "New revision detected! Restarting analysis for " + target_id());
            set_routes(100, 0, false);
            sync_status(kProgressing, 0, 0, 0);
            status_.promotion.reset();  // it was asked for the revision now replaced
            decision_.consumed_tick = true;
            return;
        }
        // Step 22 comes before pacing: finalising does not wait for a tick. Nor for the canary's
        // readiness: finalising scales the target to zero, so a controller stopped after that
        // write and before the status would otherwise wait for a workload that is gone.
        if (status_.phase == kFinalising) {
            finalise();
            return;
        }
        // A run under way needs its canary running: a target someone scaled to zero since the
        // start is scaled up again. The canary's readiness is awaited from the next reconcile on
        // (a DaemonSet kept off every node reads as ready).
        if (obs_.canary_scaled_down && obs_.canary.retriable &&
            is_one_of(status_.phase, {kProgressing, kWaitingPromotion, kPromoting})) {
            event("Scaling up " + target_id() + ": the analysis needs it running");
            decision_.actions.emplace_back(ScaleUp{});
            return;
        }
        // Step 18: the canary must become ready before its progress deadline.
        if (!obs_.canary.ready) {
            if (!obs_.canary.retriable) {
                warn(obs_.canary.message);
                warn("Rolling back " + canary_id() + " progress deadline exceeded " +
                     obs_.canary.message);
                final_alert(Severity::kError, "Progress deadline exceeded " + obs_.canary.message);
                rollback();
            } else {
                report_wait(obs_.canary.message);
            }
            return;
        }
        // A pause holds everything paced and the promotion without analysis; what is above
        // (a new revision, a dead workload, finalising, a target scaled down) still acts.
        if (status_.paused && is_one_of(status_.phase, {kProgressing, kWaitingPromotion})) {
            return;
        }
        // Step 19: no analysis: promote at once.
        if (skip_) {
            promote_without_analysis();
            return;
        }
        const bool promotion_steps = status_.phase == kPromoting &&
                                     analysis_.step_weight_promotion > 0 && !kubernetes_;
        if (status_.phase == kPromoting && !promotion_steps) {
            route_to_primary();
            return;
        }
        paced_step(routes);
    }

    /// Steps 20-27: what waits for the analysis interval.
    void paced_step(const Routes& routes) {
        // A promote request skips the remaining steps: its gates are asked when it is accepted,
        // then at each tick until they open.
        if (status_.promotion && is_one_of(status_.phase, {kProgressing, kWaitingPromotion})) {
            if (promote_now_ || tick_due_) {
                decision_.consumed_tick = true;
                if (status_.promotion->full || promotion_confirmed()) {
                    promote();
                }
            }
            return;
        }
        // Everything below is paced by the analysis interval.
        if (!tick_due_) {
            return;
        }
        decision_.consumed_tick = true;
        if (status_.phase == kPromoting) {
            promotion_step(routes);
            return;
        }
        // Step 20: a rollback hook that answers ok aborts the release.
        const HookRun* rollback_run = hooks(HookType::kRollback, status_.phase);
        if (rollback_run == nullptr) {
            return;
        }
        for (const auto& call : *rollback_run) {
            if (call.ok) {
                warn("Rollback check " + call.name + " passed");
                warn("Rolling back " + canary_id() + " manual webhook invoked");
                final_alert(Severity::kWarn, "Rolling back manual webhook invoked");
                rollback();
                return;
            }
            event("Rollback hook " + call.name + " not signaling a rollback");
        }
        // Step 23: too many failed checks.
        if (status_.failed_checks >= analysis_.threshold) {
            warn("Rolling back " + canary_id() + " failed checks threshold reached " +
                 std::to_string(status_.failed_checks));
            final_alert(Severity::kError,
                        "Failed checks threshold reached " + std::to_string(status_.failed_checks));
            rollback();
            return;
        }
        // Steps 24-25: pre-rollout on the first step, then rollout hooks and metrics.
        if (routes.canary == 0 && status_.iterations == 0 &&
            !(analysis_.mirror && routes.mirrored)) {
            if (!pre_rollout()) {
                return;
            }
        } else if (!run_checks()) {
            return;
        }
        // Step 26: what the kubernetes provider cannot do.
        int iterations = analysis_.iterations;
        bool ab = analysis_.match.is_array() && !analysis_.match.empty() && iterations > 0;
        if (kubernetes_) {
            if (analysis_.match.is_array() && !analysis_.match.empty()) {
                warn("A/B testing is not supported when using the kubernetes provider");
                ab = false;
            }
            if (iterations < 1) {
                warn("Progressive traffic is not supported when using the kubernetes provider");
                warn("Setting canaryAnalysis.iterations: 10");
                iterations = 10;
            }
        }
        // Step 27.
        if (ab) {
            ab_step(iterations);
        } else if (iterations > 0) {
            blue_green_step(iterations, routes);
        } else {
            canary_step(routes);
        }
    }

    /// A wait that is reported once per tick, not on every reconcile.
    void report_wait(const std::string& message) {
        if (tick_due_) {
            warn(message);
            decision_.consumed_tick = true;
        }
    }

    void initialize() {
        if (!skip_ && !obs_.primary.ready) {
            if (!obs_.primary.retriable) {
                warn(obs_.primary.message);
                rollback();
            } else {
                report_wait(obs_.primary.message);
            }
            return;
        }
        decision_.actions.emplace_back(ScaleToZero{});
        sync_status(kInitialized, 0, 0, 0);
        event("Initialization done! " + canary_id());
        alert(Severity::kInfo, "New " + kind_ + " detected, initialization completed.", true);
        decision_.consumed_tick = true;
    }

    void start_run() {
        if (status_.phase == kWaiting && !tick_due_) {
            return;  // the approval is asked again at the next tick
        }
        decision_.consumed_tick = true;
        const HookRun* run = hooks(HookType::kConfirmRollout, status_.phase);
        if (run == nullptr) {
            return;
        }
        if (const HookCall* denied = first_failure(*run)) {
            if (status_.phase != kWaiting) {
                set_phase(kWaiting);
                warn("Halt " + canary_id() + " advancement waiting for approval " + denied->name);
                if (!muted(denied->name)) {
                    alert(Severity::kWarn, "Canary is waiting for approval.");
                }
            }
            return;
        }
        for (const auto& call : *run) {
            event("Confirm-rollout check " + call.name + " passed");
        }
        const std::string previous_phase = status_.phase;
        status_.phase = std::string(kProgressing);  // the event carries the new phase
        event("New revision detected! Scaling up " + target_id());
        status_.phase = previous_phase;
        alert(Severity::kInfo, "New revision detected, progressing canary analysis.", true);
        decision_.actions.emplace_back(ScaleUp{});
        sync_status(kProgressing, 0, 0, 0);
    }

    void rollback() {
        decision_.status_first = true;
        set_routes(100, 0, false);
        status_.phase = std::string(kFailed);  // the event carries the new phase
        warn("Canary failed! Scaling down " + canary_id());
        decision_.actions.emplace_back(ScaleToZero{});
        sync_status(kFailed, 0, 0, 0);
        post_rollout(kFailed);
        decision_.consumed_tick = true;
    }

    void failed_promotion(const std::string& error) {
        warn("Promotion of " + target_id() + " failed, primary not ready: " + error);
        final_alert(Severity::kError, "Promotion failed, primary not ready: " + error);
        set_routes(0, 100, false);
        sync_status(kFailed, 100, status_.failed_checks, status_.iterations);
        post_rollout(kFailed);
        decision_.consumed_tick = true;
    }

    void promote_without_analysis() {
        set_routes(100, 0, false);
        event("Copying " + target_id() + " template spec to " + primary_id());
        decision_.actions.emplace_back(Promote{});
        decision_.actions.emplace_back(ScaleToZero{});
        set_phase(kSucceeded);
        post_rollout(kSucceeded);
        event("Promotion completed! Canary analysis was skipped for " + target_id());
        alert(Severity::kInfo, "Canary analysis was skipped, promotion finished.");
        decision_.consumed_tick = true;
    }

    void route_to_primary() {
        event(std::string(kRoutingToPrimary));
        set_routes(100, 0, false);
        set_phase(kFinalising);
        decision_.consumed_tick = true;
    }

    void promotion_step(const Routes& routes) {
        if (routes.canary <= 0) {
            return;  // Flagger makes no progress here either (§11)
        }
        const int step = analysis_.step_weight_promotion;
        const int primary = std::min(100, routes.primary + step);
        const int canary = std::max(0, routes.canary - step);
        set_routes(primary, canary, false);
        event("Advance " + canary_id() + " primary weight " + std::to_string(primary));
        if (primary == 100) {
            set_phase(kFinalising);
        } else {
            status_.canary_weight = canary;
        }
    }

    void finalise() {
        decision_.actions.emplace_back(ScaleToZero{});
        set_phase(kSucceeded);
        post_rollout(kSucceeded);
        event("Promotion completed! Scaling down " + target_id());
        final_alert(Severity::kInfo, "Canary analysis completed successfully, promotion finished.");
        decision_.consumed_tick = true;
    }

    /// Returns true when the analysis may take its first step in this tick.
    bool pre_rollout() {
        const HookRun* run = hooks(HookType::kPreRollout, kProgressing);
        if (run == nullptr) {
            return false;
        }
        event("Starting canary analysis for " + target_id());
        if (const HookCall* failed = first_failure(*run)) {
            // Serin alerts on the first failure of a run (Flagger does not: F#1663).
            if (status_.failed_checks == 0) {
                alert(Severity::kWarn,
                      "Pre-rollout check " + failed->name + " failed: " + failed->error);
            }
            status_.failed_checks += 1;
            warn("Halt " + canary_id() + " advancement pre-rollout check " + failed->name +
                 " failed " + failed->error);
            return false;
        }
        for (const auto& call : *run) {
            event("Pre-rollout check " + call.name + " passed");
        }
        return true;
    }

    /// Rollout hooks then metrics; false (and one more failed check) at the first failure.
    bool run_checks() {
        const HookRun* run = hooks(HookType::kRollout, kProgressing);
        if (run == nullptr) {
            return false;
        }
        if (const HookCall* failed = first_failure(*run)) {
            status_.failed_checks += 1;
            warn("Halt " + canary_id() + " advancement external check " + failed->name +
                 " failed " + failed->error);
            return false;
        }
        if (analysis_.metrics.empty()) {
            return true;
        }
        if (!obs_.metrics) {
            decision_.need_metrics = true;
            return false;
        }
        return judge_metrics(*obs_.metrics);
    }

    /// The metric checks of one step (spec order). A fail is a failed check, as in Flagger. No
    /// data is what the metric's `noData` says. An error is a failed check, unless the metric has
    /// an `errorLimit` not yet used up: then the step holds. Judged metrics are scored together
    /// after the others. False when the step must not advance.
    bool judge_metrics(const std::vector<MetricResult>& results) {
        const auto spec_of = [this](std::size_t i) -> const api::CanaryMetric* {
            return i < analysis_.metrics.size() ? &analysis_.metrics[i] : nullptr;
        };
        // erroredChecks counts the steps in a row in which an error was let hold the step.
        bool held_error = false;
        for (std::size_t i = 0; i < results.size(); ++i) {
            const api::CanaryMetric* spec = spec_of(i);
            if (results[i].verdict == Verdict::kError && spec != nullptr && spec->error_limit > 0) {
                held_error = true;
            }
        }
        status_.errored_checks = held_error ? status_.errored_checks + 1 : 0;

        const auto failed = [this](const MetricResult& m) {
            status_.failed_checks += 1;
            warn(m.message.empty() ? "Halt " + canary_id() + " advancement metric " + m.name +
                                         " failed"
                                   : m.message);
            return false;
        };
        bool hold = false;
        std::vector<judge::NamedClassification> judged;
        for (std::size_t i = 0; i < results.size(); ++i) {
            const MetricResult& m = results[i];
            const api::CanaryMetric* spec = spec_of(i);
            if (m.judged) {
                // A judged metric without data follows its noData policy too; with the
                // default (fail) it stays in the score, where Kayenta's rules weigh it.
                const auto policy = spec != nullptr ? spec->no_data : api::NoDataPolicy::kFail;
                if (m.judged->label == judge::Label::kNodata && policy != api::NoDataPolicy::kFail) {
                    const bool pass = policy == api::NoDataPolicy::kPass;
                    event(m.message + (pass ? " (noData: pass, left out of the score)"
                                            : " (noData: hold, the step waits)"),
                          !pass);
                    hold = hold || !pass;
                    continue;
                }
                judged.push_back(judge::NamedClassification{m.name, *m.judged});
                continue;
            }
            switch (m.verdict) {
            case Verdict::kPass:
                break;
            case Verdict::kFail:
                return failed(m);
            case Verdict::kNoData: {
                const auto policy = spec != nullptr ? spec->no_data : api::NoDataPolicy::kFail;
                if (policy == api::NoDataPolicy::kFail) {
                    return failed(m);
                }
                if (policy == api::NoDataPolicy::kPass) {
                    event(m.message + " (noData: pass, counted as a pass)");
                } else {
                    warn(m.message + " (noData: hold, the step waits)");
                    hold = true;
                }
                break;
            }
            case Verdict::kError: {
                const int limit = spec != nullptr ? spec->error_limit : 0;
                if (status_.errored_checks > limit || limit == 0) {
                    if (limit > 0) {
                        MetricResult counted = m;
                        counted.message += " (errorLimit " + std::to_string(limit) +
                                           " reached: counted as a failed check)";
                        return failed(counted);
                    }
                    return failed(m);
                }
                warn(m.message + " (error " + std::to_string(status_.errored_checks) + " of " +
                     std::to_string(limit) + " allowed by errorLimit, the step waits)");
                hold = true;
                break;
            }
            }
        }
        if (!judged.empty() && !score_judged(judged)) {
            return false;
        }
        return !hold;
    }

    /// Scores the judged metrics (field-notes §3.4) into status.judge. Below `judge.pass` is one
    /// failed check; a critical failure, or a score at or below `judge.marginal`, rolls back.
    bool score_judged(const std::vector<judge::NamedClassification>& judged) {
        const double marginal = analysis_.judge.marginal.value_or(-1);
        const judge::Score score = judge::score(judged, analysis_.judge.pass, marginal);
        api::JudgeStatus report;
        report.score = score.score;
        report.result = std::string(judge::to_string(score.summary));
        report.reason = score.reason;
        report.last_update_time = now_;
        for (const auto& j : judged) {
            api::JudgedMetricStatus m;
            m.name = j.name;
            m.classification = std::string(judge::to_string(j.result.label));
            if (std::isfinite(j.result.ratio)) {
                m.ratio = j.result.ratio;
            }
            m.canary_samples = static_cast<std::int32_t>(j.result.canary_count);
            m.primary_samples = static_cast<std::int32_t>(j.result.primary_count);
            report.metrics.push_back(std::move(m));
        }
        status_.judge = report;
        std::string verdicts;
        for (const auto& j : judged) {
            verdicts += (verdicts.empty() ? "" : ", ") + j.name + " " +
                        std::string(judge::to_string(j.result.label));
            if (std::isfinite(j.result.ratio)) {
                verdicts += fmt::format(" (ratio {:.2f}, {} vs {} samples)", j.result.ratio,
                                        j.result.canary_count, j.result.primary_count);
            }
        }
        const std::string text =
            fmt::format("Judge score {:.2f} ({}) for {}: {}{}", score.score, report.result,
                        canary_id(), verdicts, score.reason.empty() ? "" : "; " + score.reason);
        const bool critical = std::any_of(judged.begin(), judged.end(), [](const auto& j) {
            return j.result.critical && j.result.label != judge::Label::kPass;
        });
        if (score.summary == judge::Summary::kPass) {
            event(text);
            return true;
        }
        if (critical || score.summary == judge::Summary::kFail) {
            warn(text);
            warn("Rolling back " + canary_id() + " " +
                 (critical ? std::string("a critical metric failed")
                           : fmt::format("judge score {:.2f} at or below marginal {:g}",
                                         score.score, marginal)));
            final_alert(Severity::kError, text);
            rollback();
            return false;
        }
        status_.failed_checks += 1;
        warn(fmt::format("Halt {} advancement {} (below pass {:g})", canary_id(), text,
                         analysis_.judge.pass));
        return false;
    }

    /// §2.7: true when every confirm-promotion hook approves.
    bool promotion_confirmed() {
        const HookRun* run = hooks(HookType::kConfirmPromotion, kProgressing);
        if (run == nullptr) {
            return false;
        }
        if (const HookCall* denied = first_failure(*run)) {
            if (status_.phase != kWaitingPromotion) {
                set_phase(kWaitingPromotion);
                warn("Halt " + canary_id() + " advancement waiting for promotion approval " +
                     denied->name);
                if (!muted(denied->name)) {
                    alert(Severity::kWarn, "Canary promotion is waiting for approval.");
                }
            } else {
                status_.iterations = std::max(0, analysis_.iterations - 1);
            }
            return false;
        }
        for (const auto& call : *run) {
            event("Confirm-promotion check " + call.name + " passed");
        }
        return true;
    }

    void promote() {
        event("Copying " + target_id() + " template spec to " + primary_id());
        decision_.actions.emplace_back(Promote{});
        set_phase(kPromoting);
    }

    void iteration_event(int done, int total) {
        event("Advance " + canary_id() + " canary iteration " + std::to_string(done) + "/" +
              std::to_string(total));
    }

    void blue_green_step(int iterations, const Routes& routes) {
        if (status_.iterations < iterations) {
            if (!kubernetes_ && analysis_.mirror && !routes.mirrored) {
                set_routes(100, 0, true);
            }
            status_.iterations += 1;
            iteration_event(status_.iterations, iterations);
            return;
        }
        if (!promotion_confirmed()) {
            return;
        }
        if (status_.iterations == iterations) {
            event(analysis_.mirror && !kubernetes_
                      ? "Stop traffic mirroring and route all traffic to canary"
                      : "Routing all traffic to canary");
            set_routes(0, 100, false);
            status_.iterations += 1;
            return;
        }
        promote();
    }

    void ab_step(int iterations) {
        if (status_.iterations < iterations) {
            set_routes(0, 100, false);
            status_.iterations += 1;
            iteration_event(status_.iterations, iterations);
            return;
        }
        if (!promotion_confirmed()) {
            return;
        }
        promote();
    }

    int max_weight() const {
        if (!analysis_.step_weights.empty()) {
            return std::min(100, analysis_.step_weights.back());
        }
        return analysis_.max_weight;
    }

    int next_step_weight(int canary_weight) const {
        const auto& steps = analysis_.step_weights;
        if (analysis_.step_weight > 0 || steps.empty()) {
            return analysis_.step_weight;
        }
        const int max_step = 100 - canary_weight;
        if (max_step == 0) {
            return 1;
        }
        if (canary_weight == 0) {
            return std::min(max_step, steps.front());
        }
        for (std::size_t i = 0; i + 1 < steps.size(); ++i) {
            if (steps[i] == canary_weight) {
                return std::min(max_step, steps[i + 1] - canary_weight);
            }
        }
        return max_step;
    }

    void canary_step(const Routes& routes) {
        const int next = next_step_weight(routes.canary);
        if (next <= 0) {
            return;
        }
        if (!routes.mirrored && !is_one_of(status_.phase, {kWaitingPromotion, kPromoting})) {
            const HookRun* run = hooks(HookType::kConfirmTrafficIncrease, kProgressing);
            if (run == nullptr) {
                return;
            }
            if (const HookCall* denied = first_failure(*run)) {
                warn("Halt " + canary_id() + " advancement waiting for traffic increase approval " +
                     denied->name);
                if (!muted(denied->name)) {
                    alert(Severity::kWarn, "Canary traffic increase is waiting for approval.");
                }
                return;
            }
            for (const auto& call : *run) {
                event("Confirm-traffic-increase check " + call.name + " passed");
            }
        }
        if (routes.canary < max_weight()) {
            int primary = 0;
            int canary = 0;
            bool mirrored = false;
            if (analysis_.mirror && routes.canary == 0) {
                if (!routes.mirrored) {
                    primary = 100;
                    mirrored = true;
                } else {
                    primary = 100 - next;
                    canary = next;
                }
            } else {
                primary = std::max(0, routes.primary - next);
                canary = std::min(100, routes.canary + next);
            }
            set_routes(primary, canary, mirrored);
            status_.canary_weight = canary;
            event("Advance " + canary_id() + " canary weight " + std::to_string(canary));
            return;
        }
        if (!promotion_confirmed()) {
            return;
        }
        promote();
    }

    const Canary& c_;
    const Observations& obs_;
    const Settings& settings_;
    std::string now_;
    std::string step_time_;  ///< now, to the microsecond: status.lastStepTime
    CanaryStatus status_;
    CanaryAnalysis analysis_;
    bool skip_;
    bool kubernetes_ = false;
    std::string kind_;
    /// obs_.tick_due, until a resume request restarts the analysis clock.
    bool tick_due_;
    /// A retry request was accepted: the failed revision is released again.
    bool retry_ = false;
    /// A promote request was accepted in this decision: its gates are asked now, not at a tick.
    bool promote_now_ = false;
    Decision decision_;
};

}  // namespace

RequestOutcome outcome_of(const api::HandledRequest& record, std::string_view reason) {
    RequestOutcome out;
    out.uid = record.uid;
    out.name = record.name;
    out.action = api::request_action(record.action).value_or(api::RequestAction::kPromote);
    out.done = record.result == "Done";
    out.message = record.message;
    out.warning = !out.done;
    out.event = record.message + " (CanaryRequest " + record.name +
                (reason.empty() ? std::string() : "; reason: " + std::string(reason)) + ")";
    out.event = text::clip(out.event, text::kMaxMessageBytes);
    return out;
}

Decision advance(const api::Canary& canary, const Observations& observations,
                 const Settings& settings, SystemTime now) {
    return Tick(canary, observations, settings, now).run();
}

}  // namespace serin::analysis
