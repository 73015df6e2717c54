#include "cli/explain.hpp"

#include <algorithm>
#include <fmt/format.h>

#include "cli/format.hpp"
#include "platform/core/text.hpp"
#include "platform/core/time_format.hpp"

namespace serin::cli {

namespace {

std::string words(std::string_view text) {
    std::string line = text::clip(text, 400);
    std::replace(line.begin(), line.end(), '\n', ' ');
    return line;
}

std::string number(double value) {
    std::string text = fmt::format("{:.2f}", value);
    while (text.back() == '0') {
        text.pop_back();
    }
    if (text.back() == '.') {
        text.pop_back();
    }
    return text;
}

const Json* condition(const Json& canary, std::string_view type) {
    const Json* conditions = find(canary, "status/conditions");
    if (conditions == nullptr || !conditions->is_array()) {
        return nullptr;
    }
    for (const auto& c : *conditions) {
        if (get_string(c, "type") == type) {
            return &c;
        }
    }
    return nullptr;
}

/// The last step of the newest release, or nullptr.
const Json* last_step(const Json& history) {
    const Json* releases = find(history, "spec/releases");
    if (releases == nullptr || !releases->is_array() || releases->empty()) {
        return nullptr;
    }
    const Json* steps = find(releases->back(), "steps");
    if (steps == nullptr || !steps->is_array() || steps->empty()) {
        return nullptr;
    }
    return &steps->back();
}

const Json* last_release(const Json& history) {
    const Json* releases = find(history, "spec/releases");
    if (releases == nullptr || !releases->is_array() || releases->empty()) {
        return nullptr;
    }
    return &releases->back();
}

/// "request-success-rate is 81.39, below its minimum 99".
std::string check_words(const Json& check) {
    std::string name = words(get_string(check, "name", "a metric"));
    std::string verdict = get_string(check, "verdict");
    std::string message = words(get_string(check, "message"));
    auto value = get_number(check, "value");
    auto min = get_number(check, "min");
    auto max = get_number(check, "max");
    if (verdict == "NoData") {
        return "metric check " + name + " has no data" + (message.empty() ? "" : ": " + message);
    }
    if (verdict == "Error") {
        return "metric check " + name + " could not be queried" +
               (message.empty() ? "" : ": " + message);
    }
    if (value && min && *value < *min) {
        return fmt::format("metric check {} failed: {} is below its minimum {}", name,
                           number(*value), number(*min));
    }
    if (value && max && *value > *max) {
        return fmt::format("metric check {} failed: {} is above its maximum {}", name,
                           number(*value), number(*max));
    }
    if (value) {
        return fmt::format("metric check {} failed at {}{}", name, number(*value),
                           message.empty() ? "" : ": " + message);
    }
    return "metric check " + name + " failed" + (message.empty() ? "" : ": " + message);
}

struct Event {
    std::string type;
    std::string message;
    SystemTime time;
};

std::vector<Event> sorted_events(const std::vector<Json>& events) {
    std::vector<Event> out;
    for (const auto& e : events) {
        std::optional<SystemTime> time;
        for (const char* field : {"lastTimestamp", "eventTime", "firstTimestamp",
                                  "metadata/creationTimestamp"}) {
            if (!time) {
                time = parse_time(get_string(e, field));
            }
        }
        out.push_back(Event{get_string(e, "type"), words(get_string(e, "message")),
                            time.value_or(SystemTime{})});
    }
    std::stable_sort(out.begin(), out.end(),
                     [](const Event& a, const Event& b) { return a.time < b.time; });
    return out;
}

std::string ago(SystemTime then, SystemTime now) {
    if (then == SystemTime{}) {
        return "";
    }
    return " (" + format_age(std::chrono::duration_cast<std::chrono::seconds>(now - then)) +
           " ago)";
}

class Explainer {
public:
    explicit Explainer(const ExplainInput& in)
        : in_(in), canary_(in.canary), events_(sorted_events(in.events)) {
        name_ = words(get_string(canary_, "metadata/name", "the canary"));
        phase_ = get_string(canary_, "status/phase");
    }

    std::vector<std::string> run() {
        if (phase_.empty() && find(canary_, "status") == nullptr) {
            say(name_ + " has no status yet: serin has not reconciled it (is serin running and "
                        "watching namespace " +
                words(get_string(canary_, "metadata/namespace")) + "?)");
        }
        accepted();
        suspended();
        paused();
        if (phase_ == "Failed") {
            failed();
        } else if (phase_ == "Succeeded" || phase_ == "Initialized") {
            at_rest();
        } else if (!phase_.empty()) {
            releasing();
        }
        requests();
        return std::move(out_);
    }

private:
    void say(std::string sentence) { out_.push_back(std::move(sentence)); }

    void accepted() {
        const Json* c = condition(canary_, "Accepted");
        if (c != nullptr && get_string(*c, "status") == "False") {
            say("serin does not accept " + name_ + "'s spec (" +
                words(get_string(*c, "reason", "Invalid")) + "): " +
                words(get_string(*c, "message")) +
                "; nothing moves until the spec is changed");
        }
    }

    void suspended() {
        const Json* s = find(canary_, "spec/suspend");
        if (s != nullptr && s->is_boolean() && s->get<bool>()) {
            say(name_ + " is suspended (spec.suspend: true): serin leaves it alone and refuses "
                        "requests until it is resumed in the spec");
        }
    }

    void paused() {
        const Json* p = find(canary_, "status/paused");
        if (p == nullptr || !p->is_object()) {
            return;
        }
        auto since = parse_time(get_string(*p, "since"));
        say("paused by request " + words(get_string(*p, "request", "?")) +
            (since ? " since " + format_time(*since) + ago(*since, in_.now) : "") +
            ": the analysis clock is frozen at weight " +
            std::to_string(get_int(canary_, "status/canaryWeight")) +
            "%; `kubectl serin resume " + name_ + "` continues it");
    }

    /// The failed checks and closed gates of the history's last step; true when any.
    bool last_step_problems() {
        const Json* step = last_step(in_.history);
        if (step == nullptr) {
            return false;
        }
        bool any = false;
        if (const Json* checks = find(*step, "checks"); checks != nullptr && checks->is_array()) {
            for (const auto& check : *checks) {
                std::string verdict = get_string(check, "verdict");
                if (verdict == "Fail" || verdict == "NoData" || verdict == "Error") {
                    say(check_words(check));
                    any = true;
                }
            }
        }
        if (const Json* judge = find(*step, "judge"); judge != nullptr && judge->is_object()) {
            if (get_string(*judge, "result") == "Fail") {
                auto score = get_number(*judge, "score");
                say("the statistical judge failed the canary" +
                    (score ? " with a score of " + number(*score) : std::string()));
                any = true;
            }
        }
        if (const Json* gates = find(*step, "gates"); gates != nullptr && gates->is_array()) {
            for (const auto& gate : *gates) {
                const Json* ok = find(gate, "ok");
                if (ok != nullptr && ok->is_boolean() && ok->get<bool>()) {
                    continue;
                }
                std::string error = words(get_string(gate, "error"));
                say("gate " + words(get_string(gate, "name", "?")) + " (" +
                    words(get_string(gate, "type", "webhook")) + ") is closed" +
                    (error.empty() ? "" : ": " + error));
                any = true;
            }
        }
        return any;
    }

    void failed() {
        std::string reason;
        if (const Json* r = last_release(in_.history); r != nullptr) {
            reason = words(get_string(*r, "reason"));
        }
        if (reason.empty()) {
            if (const Json* c = condition(canary_, "Promoted")) {
                reason = words(get_string(*c, "message"));
            }
        }
        say("the release of " + name_ + " failed and was rolled back" +
            (reason.empty() ? "" : ": " + reason));
        if (!last_step_problems()) {
            last_warning();
        }
        say("`kubectl serin retry " + name_ +
            "` starts it again; a new revision of the target starts a new release");
    }

    void at_rest() {
        if (phase_ == "Initialized") {
            say(name_ + " is initialized and waits for a new revision of its target");
            return;
        }
        std::string detail;
        if (const Json* r = last_release(in_.history); r != nullptr) {
            std::string image = words(get_string(*r, "image"));
            std::string end = words(get_string(*r, "end"));
            detail = (image.empty() ? "" : " (" + image + ")") + (end.empty() ? "" : " at " + end);
        }
        say("the last release of " + name_ + detail +
            " was promoted; it waits for a new revision of its target");
    }

    void releasing() {
        const int failed = get_int(canary_, "status/failedChecks");
        const Json* found = find(canary_, "spec/analysis");
        const Json analysis = found != nullptr ? *found : Json::object();
        int threshold = get_int(analysis, "threshold", 1);
        threshold = threshold <= 0 ? 1 : threshold;
        bool explained = false;
        if (phase_ == "Waiting") {
            say(name_ + " waits for its confirm-rollout gate to open before the release starts");
            explained = true;
        } else if (phase_ == "WaitingPromotion") {
            say(name_ + " finished its analysis and waits for its confirm-promotion gate to open");
            explained = true;
        } else if (phase_ == "Promoting" || phase_ == "Finalising") {
            say(name_ + " passed its analysis: the primary is being " +
                (phase_ == "Promoting" ? "updated to the new revision" : "finalised"));
            explained = true;
        }
        if (last_step_problems()) {
            explained = true;
        }
        if (failed > 0) {
            say(fmt::format("{} failed check{} so far; the release is rolled back at {} "
                            "(analysis.threshold)",
                            failed, failed == 1 ? "" : "s", threshold));
        }
        if (readiness()) {
            explained = true;
        }
        if (!explained) {
            std::string where = status_line(canary_);
            say(where.substr(where.find(": ") + 2) + ": the analysis advances one step per " +
                words(get_string(analysis, "interval", "1m")) + " while the checks pass");
            last_warning();
        }
    }

    /// A readiness wait named by the newest Event, if the newest Warning is one.
    bool readiness() {
        for (auto it = events_.rbegin(); it != events_.rend(); ++it) {
            if (it->type != "Warning") {
                continue;
            }
            auto pos = it->message.find(" not ready: ");
            if (pos == std::string::npos) {
                return false;
            }
            say("waiting for readiness: " + it->message + ago(it->time, in_.now));
            return true;
        }
        return false;
    }

    void last_warning() {
        for (auto it = events_.rbegin(); it != events_.rend(); ++it) {
            if (it->type == "Warning") {
                say("last warning: " + it->message + ago(it->time, in_.now));
                return;
            }
        }
    }

    /// A refused request of the last ones handled, when it is the newest: the user just asked.
    void requests() {
        const Json* list = find(canary_, "status/requests");
        if (list == nullptr || !list->is_array() || list->empty()) {
            return;
        }
        const Json& last = list->back();
        if (get_string(last, "result") == "Refused") {
            say("the last request (" + words(get_string(last, "action", "?")) + " by " +
                words(get_string(last, "requestedBy", "?")) + ") was refused: " +
                words(get_string(last, "message")));
        }
    }

    const ExplainInput& in_;
    const Json& canary_;
    std::vector<Event> events_;
    std::string name_;
    std::string phase_;
    std::vector<std::string> out_;
};

}  // namespace

std::vector<std::string> explain(const ExplainInput& input) {
    return Explainer(input).run();
}

}  // namespace serin::cli
