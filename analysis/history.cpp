#include "analysis/history.hpp"

#include <algorithm>
#include <cmath>
#include <initializer_list>

#include "analysis/phases.hpp"
#include "platform/core/text.hpp"
#include "platform/core/time_format.hpp"

namespace serin::analysis {

namespace {

using api::HistoryStep;
using api::Release;
namespace outcome = api::outcome;

bool is_one_of(std::string_view phase, std::initializer_list<std::string_view> phases) {
    return std::find(phases.begin(), phases.end(), phase) != phases.end();
}

/// The phases of a release under way.
bool releasing(std::string_view p) {
    return is_one_of(p, {phase::kWaiting, phase::kProgressing, phase::kWaitingPromotion,
                         phase::kPromoting, phase::kFinalising});
}

bool promotes(const Decision& decision) {
    return std::any_of(decision.actions.begin(), decision.actions.end(),
                       [](const Action& a) { return std::holds_alternative<Promote>(a); });
}

/// A promotion without analysis: from a canary at rest straight to Succeeded.
bool promoted_at_once(const api::CanaryStatus& before, const Decision& decision) {
    return !releasing(before.phase) && decision.status.phase == phase::kSucceeded &&
           promotes(decision);
}

std::vector<const RecordEvent*> events_of(const Decision& decision) {
    std::vector<const RecordEvent*> out;
    for (const Action& a : decision.actions) {
        if (const auto* e = std::get_if<RecordEvent>(&a)) {
            out.push_back(e);
        }
    }
    return out;
}

/// Why a decision ended a release: its final Event, except a rollback's closing "Canary
/// failed! Scaling down", where the Event before it says why.
std::string end_reason(const Decision& decision) {
    const std::vector<const RecordEvent*> events = events_of(decision);
    for (auto it = events.rbegin(); it != events.rend(); ++it) {
        if (!(*it)->message.starts_with("Canary failed!")) {
            return (*it)->message;
        }
    }
    return events.empty() ? std::string() : events.back()->message;
}

std::string_view verdict_name(Verdict v) {
    switch (v) {
        case Verdict::kPass:
            return "Pass";
        case Verdict::kFail:
            return "Fail";
        case Verdict::kNoData:
            return "NoData";
        case Verdict::kError:
            return "Error";
    }
    return "Error";
}

/// A judged metric's label as a check's verdict.
std::string_view judged_verdict(judge::Label label) {
    switch (label) {
        case judge::Label::kPass:
            return "Pass";
        case judge::Label::kHigh:
        case judge::Label::kLow:
        case judge::Label::kNodataFailMetric:
            return "Fail";
        case judge::Label::kNodata:
            return "NoData";
        case judge::Label::kError:
            return "Error";
    }
    return "Error";
}

/// The spec of the `i`th metric result: by position (results come in spec order), else by name.
const api::CanaryMetric* metric_spec(const api::Canary& canary, std::size_t i,
                                     const std::string& name) {
    if (!canary.spec.analysis) {
        return nullptr;
    }
    const auto& metrics = canary.spec.analysis->metrics;
    if (i < metrics.size() && metrics[i].name == name) {
        return &metrics[i];
    }
    for (const auto& m : metrics) {
        if (m.name == name) {
            return &m;
        }
    }
    return nullptr;
}

std::vector<api::HistoryCheck> checks_of(const api::Canary& canary,
                                         const std::vector<MetricResult>& results) {
    std::vector<api::HistoryCheck> checks;
    for (std::size_t i = 0; i < results.size() && checks.size() < api::kHistoryMaxChecks; ++i) {
        const MetricResult& r = results[i];
        api::HistoryCheck c;
        c.name = r.name;
        if (r.value && std::isfinite(*r.value)) {
            c.value = r.value;
        }
        if (const api::CanaryMetric* spec = metric_spec(canary, i, r.name);
            spec != nullptr && spec->threshold_range) {
            c.min = spec->threshold_range->min;
            c.max = spec->threshold_range->max;
        }
        c.verdict =
            std::string(r.judged ? judged_verdict(r.judged->label) : verdict_name(r.verdict));
        c.message = text::clip(r.message, api::kHistoryMaxMessageBytes);
        checks.push_back(std::move(c));
    }
    return checks;
}

std::optional<api::HistoryJudge> judge_of(const api::CanaryStatus& status,
                                          const std::vector<MetricResult>& results) {
    const bool judged = std::any_of(results.begin(), results.end(),
                                    [](const MetricResult& r) { return r.judged.has_value(); });
    if (!judged || !status.judge) {
        return std::nullopt;
    }
    api::HistoryJudge out;
    out.score = status.judge->score;
    out.result = status.judge->result;
    for (const auto& m : status.judge->metrics) {
        if (out.metrics.size() == api::kHistoryMaxJudged) {
            break;
        }
        out.metrics.push_back(api::HistoryJudgedMetric{m.name, m.classification, m.ratio});
    }
    return out;
}

std::vector<api::HistoryGate> gates_of(const Observations& obs) {
    std::vector<api::HistoryGate> gates;
    for (const auto& [type, run] : obs.hooks) {
        for (const HookCall& call : run) {
            if (gates.size() == api::kHistoryMaxGates) {
                return gates;
            }
            gates.push_back(api::HistoryGate{call.name, std::string(to_string(type)), call.ok,
                                             text::clip(call.error, api::kHistoryMaxMessageBytes)});
        }
    }
    return gates;
}

/// Whether a decision that used the tick is a step worth recording.
bool is_step(const api::CanaryStatus& before, const Decision& decision, const Observations& obs) {
    const api::CanaryStatus& after = decision.status;
    return obs.metrics.has_value() || !obs.hooks.empty() ||
           after.canary_weight != before.canary_weight || after.iterations != before.iterations ||
           after.failed_checks != before.failed_checks || after.phase != before.phase;
}

HistoryStep step_of(const api::Canary& canary, const Decision& decision, const Observations& obs,
                    const std::string& now) {
    const api::CanaryStatus& before = canary.status;
    const api::CanaryStatus& after = decision.status;
    HistoryStep step;
    step.time = now;
    step.phase = after.phase;
    step.weight = after.canary_weight;
    step.iteration = after.iterations;
    // A rollback resets the counters; the step keeps the count that ended the release.
    step.failed_checks = after.phase == phase::kFailed
                             ? std::max(before.failed_checks, after.failed_checks)
                             : after.failed_checks;
    if (obs.metrics) {
        step.checks = checks_of(canary, *obs.metrics);
        step.judge = judge_of(after, *obs.metrics);
    }
    step.gates = gates_of(obs);
    return step;
}

Release* open_release(api::CanaryHistory& history) {
    if (history.releases.empty() || history.releases.back().outcome != outcome::kRunning) {
        return nullptr;
    }
    return &history.releases.back();
}

/// Whether the decision starts the release of a revision (or of the same one again: a retry).
bool starts_release(const api::CanaryStatus& before, const Decision& decision) {
    const api::CanaryStatus& after = decision.status;
    if (!releasing(before.phase)) {
        return releasing(after.phase) || promoted_at_once(before, decision);
    }
    // A new revision mid-analysis restarts it.
    return is_one_of(before.phase, {phase::kProgressing, phase::kWaitingPromotion}) &&
           after.phase == phase::kProgressing &&
           (after.last_applied_spec != before.last_applied_spec ||
            after.tracked_configs != before.tracked_configs);
}

/// The runtime requests this decision handled: in the new status.requests, not in the old.
std::vector<const api::HandledRequest*> new_requests(const api::CanaryStatus& before,
                                                     const api::CanaryStatus& after) {
    std::vector<const api::HandledRequest*> out;
    for (const api::HandledRequest& request : after.requests) {
        const bool known = std::any_of(
            before.requests.begin(), before.requests.end(),
            [&](const api::HandledRequest& old) { return old.uid == request.uid; });
        if (!known) {
            out.push_back(&request);
        }
    }
    return out;
}

}  // namespace

bool concerns_history(const api::CanaryStatus& before, const Decision& decision) {
    return releasing(before.phase) || releasing(decision.status.phase) ||
           promoted_at_once(before, decision) || !new_requests(before, decision.status).empty();
}

bool update_history(api::CanaryHistory& history, const api::Canary& canary,
                    const Decision& decision, const Observations& observations,
                    std::string_view image, SystemTime now) {
    const api::CanaryStatus& before = canary.status;
    const api::CanaryStatus& after = decision.status;
    if (decision.needs_input()) {
        return false;
    }
    const std::string now_text = format_time(now);
    if (!concerns_history(before, decision)) {
        // At rest with a release still open: the decision that ended it was not recorded (its
        // status was written, then the reconcile failed before the history).
        Release* open = open_release(history);
        if (open == nullptr ||
            (after.phase != phase::kSucceeded && after.phase != phase::kFailed)) {
            return false;
        }
        open->outcome = after.phase;
        open->end = now_text;
        open->reason =
            "The canary is " + after.phase + "; the step that ended this release was not recorded";
        api::bound_history(history);
        return true;
    }
    bool changed = false;
    if (history.canary_name != canary.metadata.name) {
        history.canary_name = canary.metadata.name;
        changed = true;
    }
    Release* open = open_release(history);
    const bool starts = starts_release(before, decision);
    if (starts || (open == nullptr && releasing(after.phase))) {
        if (open != nullptr) {
            open->outcome = std::string(outcome::kSuperseded);
            open->end = now_text;
            open->reason = releasing(before.phase)
                               ? end_reason(decision)
                               : "Superseded by revision " + observations.revision +
                                     " (the end of this release was not recorded)";
        }
        Release r;
        r.revision = observations.revision;
        r.previous_revision = before.last_promoted_spec;
        r.image = std::string(image);
        r.strategy = std::string(strategy(canary.spec));
        r.start = now_text;
        r.outcome = std::string(outcome::kRunning);
        history.releases.push_back(std::move(r));
        open = &history.releases.back();
        changed = true;
    }
    // Requests go to the newest release: the one they acted on, or the one a retry opened.
    for (const api::HandledRequest* request : new_requests(before, after)) {
        changed = record_request(history, {request->name, request->action, request->requested_by,
                                           request->result, request->time}) ||
                  changed;
    }
    if (open == nullptr) {
        if (changed) {
            api::bound_history(history);
        }
        return changed;
    }
    if (decision.consumed_tick && is_step(before, decision, observations)) {
        open->steps.push_back(step_of(canary, decision, observations, now_text));
        changed = true;
    }
    if (after.phase == phase::kSucceeded || after.phase == phase::kFailed) {
        open->outcome = after.phase;
        open->end = now_text;
        open->reason = end_reason(decision);
        changed = true;
    }
    if (changed) {
        api::bound_history(history);
    }
    return changed;
}

bool record_request(api::CanaryHistory& history, const RequestRecord& request) {
    if (history.releases.empty()) {
        return false;
    }
    history.releases.back().requests.push_back(request);
    api::bound_history(history);
    return true;
}

}  // namespace serin::analysis
