#include "crds/api/canary_history.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "crds/api/json_access.hpp"
#include "platform/core/json.hpp"
#include "platform/core/text.hpp"

namespace serin::api {

namespace {

// ---- lenient reading: a wrong type reads as absent -------------------------------------------

std::string text_at(const Json& object, std::string_view key, std::size_t limit) {
    const Json* value = member(object, key);
    return value != nullptr && value->is_string()
               ? text::clip(value->get_ref<const std::string&>(), limit)
               : std::string();
}

std::string name_at(const Json& object, std::string_view key) {
    return text_at(object, key, kHistoryMaxNameBytes);
}

std::string message_at(const Json& object, std::string_view key) {
    return text_at(object, key, kHistoryMaxMessageBytes);
}

std::optional<double> number_at(const Json& object, std::string_view key) {
    const Json* value = member(object, key);
    if (value == nullptr || !value->is_number()) {
        return std::nullopt;
    }
    const double d = value->get<double>();
    return std::isfinite(d) ? std::optional<double>(d) : std::nullopt;
}

std::int64_t int64_at(const Json& object, std::string_view key) {
    const Json* value = member(object, key);
    if (value == nullptr) {
        return 0;
    }
    if (value->is_number_integer()) {
        return value->get<std::int64_t>();
    }
    if (value->is_number_unsigned()) {
        return static_cast<std::int64_t>(std::min<std::uint64_t>(
            value->get<std::uint64_t>(),
            static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())));
    }
    return 0;
}

std::int32_t int32_at(const Json& object, std::string_view key) {
    return static_cast<std::int32_t>(
        std::clamp<std::int64_t>(int64_at(object, key), std::numeric_limits<std::int32_t>::min(),
                                 std::numeric_limits<std::int32_t>::max()));
}

/// The objects of the array at `key`, keeping only the last `limit` of them.
std::vector<const Json*> objects_at(const Json& object, std::string_view key, std::size_t limit) {
    std::vector<const Json*> out;
    const Json* array = member(object, key);
    if (array == nullptr || !array->is_array()) {
        return out;
    }
    const std::size_t skip = array->size() > limit ? array->size() - limit : 0;
    for (std::size_t i = skip; i < array->size(); ++i) {
        if ((*array)[i].is_object()) {
            out.push_back(&(*array)[i]);
        }
    }
    return out;
}

HistoryCheck decode_check(const Json& j) {
    return HistoryCheck{name_at(j, "name"),  number_at(j, "value"), number_at(j, "min"),
                        number_at(j, "max"), name_at(j, "verdict"), message_at(j, "message")};
}

std::optional<HistoryJudge> decode_judge(const Json& step) {
    const Json* j = member(step, "judge");
    if (j == nullptr || !j->is_object()) {
        return std::nullopt;
    }
    HistoryJudge judge;
    judge.score = number_at(*j, "score").value_or(0);
    judge.result = name_at(*j, "result");
    for (const Json* m : objects_at(*j, "metrics", kHistoryMaxJudged)) {
        judge.metrics.push_back(HistoryJudgedMetric{
            name_at(*m, "name"), name_at(*m, "classification"), number_at(*m, "ratio")});
    }
    return judge;
}

HistoryStep decode_step(const Json& j) {
    HistoryStep step;
    step.time = name_at(j, "time");
    step.phase = name_at(j, "phase");
    step.weight = int32_at(j, "weight");
    step.iteration = int32_at(j, "iteration");
    step.failed_checks = int32_at(j, "failedChecks");
    for (const Json* c : objects_at(j, "checks", kHistoryMaxChecks)) {
        step.checks.push_back(decode_check(*c));
    }
    step.judge = decode_judge(j);
    for (const Json* g : objects_at(j, "gates", kHistoryMaxGates)) {
        const Json* ok = member(*g, "ok");
        step.gates.push_back(HistoryGate{name_at(*g, "name"), name_at(*g, "type"),
                                         ok != nullptr && ok->is_boolean() && ok->get<bool>(),
                                         message_at(*g, "error")});
    }
    return step;
}

Release decode_release(const Json& j) {
    Release r;
    r.revision = name_at(j, "revision");
    r.previous_revision = name_at(j, "previousRevision");
    r.image = message_at(j, "image");
    r.strategy = name_at(j, "strategy");
    r.start = name_at(j, "start");
    r.end = name_at(j, "end");
    r.outcome = name_at(j, "outcome");
    r.reason = message_at(j, "reason");
    const Json* steps = member(j, "steps");
    const std::size_t stored = steps != nullptr && steps->is_array() ? steps->size() : 0;
    for (const Json* s : objects_at(j, "steps", kHistoryMaxSteps)) {
        r.steps.push_back(decode_step(*s));
    }
    r.dropped_steps = std::max<std::int64_t>(0, int64_at(j, "droppedSteps"));
    if (stored > kHistoryMaxSteps) {
        r.dropped_steps += static_cast<std::int64_t>(stored - kHistoryMaxSteps);
    }
    for (const Json* q : objects_at(j, "requests", kHistoryMaxRequests)) {
        r.requests.push_back(HistoryRequest{name_at(*q, "name"), name_at(*q, "action"),
                                            name_at(*q, "requestedBy"), name_at(*q, "result"),
                                            name_at(*q, "time")});
    }
    return r;
}

// ---- encoding ----------------------------------------------------------------------------------

Json optional_number(const std::optional<double>& value) {
    return value && std::isfinite(*value) ? Json(*value) : Json(nullptr);
}

Json encode_step(const HistoryStep& step) {
    Json checks = Json::array();
    for (const HistoryCheck& c : step.checks) {
        Json check = {{"name", c.name},
                      {"min", optional_number(c.min)},
                      {"max", optional_number(c.max)},
                      {"verdict", c.verdict},
                      {"message", c.message}};
        if (c.value && std::isfinite(*c.value)) {
            check["value"] = *c.value;
        }
        checks.push_back(std::move(check));
    }
    Json gates = Json::array();
    for (const HistoryGate& g : step.gates) {
        gates.push_back({{"name", g.name}, {"type", g.type}, {"ok", g.ok}, {"error", g.error}});
    }
    Json out = {{"time", step.time},
                {"phase", step.phase},
                {"weight", step.weight},
                {"iteration", step.iteration},
                {"failedChecks", step.failed_checks},
                {"checks", std::move(checks)},
                {"gates", std::move(gates)}};
    if (step.judge) {
        Json metrics = Json::array();
        for (const HistoryJudgedMetric& m : step.judge->metrics) {
            Json metric = {{"name", m.name}, {"classification", m.classification}};
            if (m.ratio && std::isfinite(*m.ratio)) {
                metric["ratio"] = *m.ratio;
            }
            metrics.push_back(std::move(metric));
        }
        out["judge"] = {{"score", std::isfinite(step.judge->score) ? step.judge->score : 0.0},
                        {"result", step.judge->result},
                        {"metrics", std::move(metrics)}};
    }
    return out;
}

Json encode_release(const Release& r) {
    Json steps = Json::array();
    for (const HistoryStep& s : r.steps) {
        steps.push_back(encode_step(s));
    }
    Json requests = Json::array();
    for (const HistoryRequest& q : r.requests) {
        requests.push_back({{"name", q.name},
                            {"action", q.action},
                            {"requestedBy", q.requested_by},
                            {"result", q.result},
                            {"time", q.time}});
    }
    Json out = {{"revision", r.revision},
                {"previousRevision", r.previous_revision},
                {"image", r.image},
                {"strategy", r.strategy},
                {"start", r.start},
                {"outcome", r.outcome},
                {"reason", r.reason},
                {"steps", std::move(steps)},
                {"droppedSteps", r.dropped_steps},
                {"requests", std::move(requests)}};
    if (!r.end.empty()) {
        out["end"] = r.end;
    }
    return out;
}

// ---- bounds ------------------------------------------------------------------------------------

/// Clips `s` to `limit` bytes of valid UTF-8; true when that changed it.
bool clip_in_place(std::string& s, std::size_t limit) {
    if (s.size() <= limit && text::is_valid_utf8(s)) {
        return false;
    }
    s = text::clip(s, limit);
    return true;
}

template <class T>
bool keep_last(std::vector<T>& items, std::size_t limit) {
    if (items.size() <= limit) {
        return false;
    }
    items.erase(items.begin(), items.begin() + static_cast<std::ptrdiff_t>(items.size() - limit));
    return true;
}

template <class T>
bool keep_first(std::vector<T>& items, std::size_t limit) {
    if (items.size() <= limit) {
        return false;
    }
    items.resize(limit);
    return true;
}

bool bound_step(HistoryStep& step) {
    bool changed = keep_first(step.checks, kHistoryMaxChecks);
    changed = keep_first(step.gates, kHistoryMaxGates) || changed;
    changed = clip_in_place(step.time, kHistoryMaxNameBytes) || changed;
    changed = clip_in_place(step.phase, kHistoryMaxNameBytes) || changed;
    for (HistoryCheck& c : step.checks) {
        changed = clip_in_place(c.name, kHistoryMaxNameBytes) || changed;
        changed = clip_in_place(c.verdict, kHistoryMaxNameBytes) || changed;
        changed = clip_in_place(c.message, kHistoryMaxMessageBytes) || changed;
    }
    for (HistoryGate& g : step.gates) {
        changed = clip_in_place(g.name, kHistoryMaxNameBytes) || changed;
        changed = clip_in_place(g.type, kHistoryMaxNameBytes) || changed;
        changed = clip_in_place(g.error, kHistoryMaxMessageBytes) || changed;
    }
    if (step.judge) {
        changed = keep_first(step.judge->metrics, kHistoryMaxJudged) || changed;
        changed = clip_in_place(step.judge->result, kHistoryMaxNameBytes) || changed;
        for (HistoryJudgedMetric& m : step.judge->metrics) {
            changed = clip_in_place(m.name, kHistoryMaxNameBytes) || changed;
            changed = clip_in_place(m.classification, kHistoryMaxNameBytes) || changed;
        }
    }
    return changed;
}

bool drop_oldest_steps(Release& r, std::size_t keep) {
    if (r.steps.size() <= keep) {
        return false;
    }
    const std::size_t drop = r.steps.size() - keep;
    r.steps.erase(r.steps.begin(), r.steps.begin() + static_cast<std::ptrdiff_t>(drop));
    r.dropped_steps += static_cast<std::int64_t>(drop);
    return true;
}

bool bound_release(Release& r) {
    bool changed = drop_oldest_steps(r, kHistoryMaxSteps);
    changed = keep_last(r.requests, kHistoryMaxRequests) || changed;
    for (std::string* s :
         {&r.revision, &r.previous_revision, &r.strategy, &r.start, &r.end, &r.outcome}) {
        changed = clip_in_place(*s, kHistoryMaxNameBytes) || changed;
    }
    changed = clip_in_place(r.image, kHistoryMaxMessageBytes) || changed;
    changed = clip_in_place(r.reason, kHistoryMaxMessageBytes) || changed;
    for (HistoryStep& s : r.steps) {
        changed = bound_step(s) || changed;
    }
    for (HistoryRequest& q : r.requests) {
        for (std::string* s : {&q.name, &q.action, &q.requested_by, &q.result, &q.time}) {
            changed = clip_in_place(*s, kHistoryMaxNameBytes) || changed;
        }
    }
    return changed;
}

std::size_t encoded_size(const Json& json) { return dump_json(json).size(); }

// ---- an upper bound of the encoded size, without encoding --------------------------------------

/// A JSON string's length at most: quotes, and each byte escaped as JSON would.
std::size_t string_bound(const std::string& s) {
    std::size_t n = 2;
    for (const unsigned char c : s) {
        n += c == '"' || c == '\\' ? 2 : (c < 0x20 ? 6 : 1);
    }
    return n;
}

/// Any number, as nlohmann writes it ("-1.2345678901234567e+308").
constexpr std::size_t kNumberBound = 26;

/// A number's length at most: null when absent, an integral value's digits (with a sign and
/// ".0"), else kNumberBound.
std::size_t number_bound(const std::optional<double>& value) {
    if (!value || !std::isfinite(*value)) {
        return 4;
    }
    double v = std::fabs(*value);
    if (v != std::floor(v) || v >= 1e15) {
        return kNumberBound;
    }
    std::size_t digits = 1;
    for (; v >= 10; v /= 10) {
        ++digits;
    }
    return digits + 3;
}

// The constants are the keys, punctuation and integers of each object with its arrays empty
// (counted from encode_step and encode_release, rounded up); each array element adds a comma.
std::size_t step_bound(const HistoryStep& step) {
    std::size_t n = 120 + string_bound(step.time) + string_bound(step.phase);
    for (const HistoryCheck& c : step.checks) {
        n += 57 + number_bound(c.value) + number_bound(c.min) + number_bound(c.max) +
             string_bound(c.name) + string_bound(c.verdict) + string_bound(c.message);
    }
    for (const HistoryGate& g : step.gates) {
        n += 41 + string_bound(g.name) + string_bound(g.type) + string_bound(g.error);
    }
    if (step.judge) {
        n += 48 + kNumberBound + string_bound(step.judge->result);
        for (const HistoryJudgedMetric& m : step.judge->metrics) {
            n += 41 + number_bound(m.ratio) + string_bound(m.name) + string_bound(m.classification);
        }
    }
    return n;
}

std::size_t release_bound(const Release& r) {
    std::size_t n = 160 + kNumberBound;
    for (const std::string* s : {&r.revision, &r.previous_revision, &r.image, &r.strategy, &r.start,
                                 &r.end, &r.outcome, &r.reason}) {
        n += string_bound(*s);
    }
    for (const HistoryStep& step : r.steps) {
        n += step_bound(step) + 1;
    }
    for (const HistoryRequest& q : r.requests) {
        n += 57;
        for (const std::string* s : {&q.name, &q.action, &q.requested_by, &q.result, &q.time}) {
            n += string_bound(*s);
        }
    }
    return n;
}

/// Keeps the encoded spec under kHistoryMaxSpecBytes: older releases go first, then the oldest
/// steps of the one left.
bool bound_size(CanaryHistory& history) {
    if (history_spec_size_bound(history) <= kHistoryMaxSpecBytes) {
        return false;  // the usual case: nothing encoded
    }
    std::vector<std::size_t> sizes;
    std::size_t total = 64 + history.canary_name.size();
    for (const Release& r : history.releases) {
        sizes.push_back(encoded_size(encode_release(r)) + 1);
        total += sizes.back();
    }
    bool changed = false;
    while (total > kHistoryMaxSpecBytes && history.releases.size() > 1) {
        total -= sizes.front();
        sizes.erase(sizes.begin());
        history.releases.erase(history.releases.begin());
        changed = true;
    }
    if (total <= kHistoryMaxSpecBytes || history.releases.empty()) {
        return changed;
    }
    Release& last = history.releases.back();
    std::size_t release_size = sizes.back();
    std::size_t drop = 0;
    while (drop < last.steps.size() && total > kHistoryMaxSpecBytes) {
        const std::size_t step_size = encoded_size(encode_step(last.steps[drop])) + 1;
        total -= std::min(step_size, release_size);
        release_size -= std::min(step_size, release_size);
        ++drop;
    }
    drop_oldest_steps(last, last.steps.size() - drop);
    return true;
}

}  // namespace

std::size_t history_spec_size_bound(const CanaryHistory& history) {
    std::size_t n = 64 + string_bound(history.canary_name);
    for (const Release& r : history.releases) {
        n += release_bound(r) + 1;
    }
    return n;
}

Result<CanaryHistory> decode_canary_history(const Json& object) {
    if (!object.is_object()) {
        return fail(ErrorKind::kInvalid, "expected a CanaryHistory object");
    }
    CanaryHistory history;
    const Json* spec = member(object, "spec");
    if (spec == nullptr || !spec->is_object()) {
        return history;
    }
    if (const Json* ref = member(*spec, "canaryRef"); ref != nullptr && ref->is_object()) {
        history.canary_name = name_at(*ref, "name");
    }
    for (const Json* r : objects_at(*spec, "releases", kHistoryMaxReleases)) {
        history.releases.push_back(decode_release(*r));
    }
    bound_size(history);
    return history;
}

Json encode_canary_history_spec(const CanaryHistory& history) {
    Json releases = Json::array();
    for (const Release& r : history.releases) {
        releases.push_back(encode_release(r));
    }
    return Json{{"canaryRef", {{"name", history.canary_name}}}, {"releases", std::move(releases)}};
}

bool bound_history(CanaryHistory& history) {
    bool changed = keep_last(history.releases, kHistoryMaxReleases);
    changed = clip_in_place(history.canary_name, kHistoryMaxNameBytes) || changed;
    for (Release& r : history.releases) {
        changed = bound_release(r) || changed;
    }
    changed = bound_size(history) || changed;
    return changed;
}

}  // namespace serin::api
