// The release history (analysis/history, crds/api/canary_history): whole releases run through
// analysis::decide in a small simulated world, and every bound of docs/runtime-control.md.
#include "analysis/history.hpp"

#include <catch2/catch.hpp>
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "analysis/decide.hpp"
#include "crds/api/canary_history.hpp"
#include "platform/core/json.hpp"
#include "platform/core/time_format.hpp"

namespace {

namespace api = serin::api;
using namespace serin::analysis;
using serin::SystemTime;
using Json = nlohmann::json;
using namespace std::chrono_literals;

const SystemTime kStart = SystemTime{std::chrono::seconds{1'800'000'000}};

api::CanaryMetric metric(std::string name, std::optional<double> min, std::optional<double> max) {
    api::CanaryMetric m;
    m.name = std::move(name);
    m.threshold_range = api::ThresholdRange{min, max};
    return m;
}

/// A weighted canary: 20% steps up to 40%, two metric checks and a rollout gate.
api::Canary make_canary(int threshold) {
    api::Canary c;
    c.metadata.name = "podinfo";
    c.metadata.ns = "test";
    c.spec.target_ref = api::TargetRef{"apps/v1", "Deployment", "podinfo"};
    c.spec.service.port = 9898;
    api::CanaryAnalysis a;
    a.interval = "1m";
    a.threshold = threshold;
    a.step_weight = 20;
    a.max_weight = 40;
    a.metrics = {metric("request-success-rate", 99.0, std::nullopt),
                 metric("request-duration", std::nullopt, 500.0)};
    api::CanaryWebhook hook;
    hook.name = "load-test";
    hook.type = "rollout";
    hook.url = "http://loadtester/";
    a.webhooks = {hook};
    c.spec.analysis = a;
    return c;
}

/// Answers every gate with ok and the metrics with what `values` gives for the weight now.
class WorldAnswers final : public Answers {
public:
    std::function<std::vector<MetricResult>()> values;
    const api::Canary* canary = nullptr;

    std::optional<HookRun> hooks(const HookRequest& request) override {
        HookRun run;
        for (const auto& w : canary->spec.analysis->webhooks) {
            if (hook_type(w.type) == request.type) {
                run.push_back(HookCall{w.name, true, ""});
            }
        }
        return run;
    }
    std::optional<std::vector<MetricResult>> metrics() override { return values(); }
};

MetricResult pass(std::string name, double value) {
    return MetricResult{std::move(name), Verdict::kPass, value, "", std::nullopt};
}

/// The canary, its routes and its history, one reconcile per minute.
struct World {
    api::Canary canary;
    Routes routes;
    std::string revision = "s1:one";
    std::string image = "podinfo:1.0.0";
    api::CanaryHistory history;
    SystemTime now = kStart;
    WorldAnswers answers;
    int history_changes = 0;
    /// The next decision is not recorded (a reconcile that failed after its status write).
    bool lose_next_record = false;

    explicit World(int threshold = 2) : canary(make_canary(threshold)) {
        answers.canary = &canary;
        answers.values = [] {
            return std::vector<MetricResult>{pass("request-success-rate", 99.5),
                                             pass("request-duration", 120)};
        };
    }

    /// One reconcile: decide, apply the routes, record the history, keep the status.
    void tick() {
        Observations obs;
        obs.revision = revision;
        obs.primary = Readiness{true, true, ""};
        obs.canary = Readiness{true, true, ""};
        obs.routes = routes;
        const Settings settings{"istio"};
        std::optional<Decision> decision = decide(canary, obs, settings, now, answers);
        REQUIRE(decision.has_value());
        for (const Action& a : decision->actions) {
            if (const auto* r = std::get_if<SetRoutes>(&a)) {
                routes = r->routes;
            }
        }
        if (lose_next_record) {
            lose_next_record = false;
        } else if (update_history(history, canary, *decision, obs, image, now)) {
            ++history_changes;
        }
        canary.status = decision->status;
        now += 1min;
    }

    /// Reconciles at least once, then until the canary is in `phase`.
    void run_until(const std::string& phase, int limit = 40) {
        tick();
        for (int i = 0; i < limit && canary.status.phase != phase; ++i) {
            tick();
        }
        REQUIRE(canary.status.phase == phase);
    }

    void release(std::string next_revision, std::string next_image) {
        revision = std::move(next_revision);
        image = std::move(next_image);
    }
};

const api::Release& last(const api::CanaryHistory& h) {
    REQUIRE_FALSE(h.releases.empty());
    return h.releases.back();
}

}  // namespace

TEST_CASE("initialization is not a release and leaves the history empty") {
    World w;
    w.run_until("Initialized");
    CHECK(w.history.releases.empty());
    CHECK(w.history_changes == 0);
    w.tick();  // at rest
    CHECK(w.history.releases.empty());
}

TEST_CASE(
    "a promoted release records its steps with weights, each check against its thresholds, "
    "its gates and its outcome") {
    World w;
    w.run_until("Initialized");
    w.release("s1:two", "podinfo:2.0.0");
    w.run_until("Succeeded");

    REQUIRE(w.history.releases.size() == 1);
    const api::Release& r = last(w.history);
    CHECK(w.history.canary_name == "podinfo");
    CHECK(r.revision == "s1:two");
    CHECK(r.previous_revision == "s1:one");
    CHECK(r.image == "podinfo:2.0.0");
    CHECK(r.strategy == "canary");
    CHECK(r.outcome == "Succeeded");
    CHECK(r.reason == "Promotion completed! Scaling down podinfo.test");
    CHECK_FALSE(r.start.empty());
    CHECK(r.end > r.start);
    CHECK(r.dropped_steps == 0);

    std::vector<int> weights;
    std::vector<std::string> phases;
    for (const auto& s : r.steps) {
        weights.push_back(s.weight);
        phases.push_back(s.phase);
    }
    // The run starts (0), two 20% steps, the last analysis step approves promotion, then the
    // primary is promoted, traffic returns to it and the canary is scaled down.
    CHECK(weights == std::vector<int>{0, 20, 40, 40, 0, 0});
    CHECK(phases == std::vector<std::string>{"Progressing", "Progressing", "Progressing",
                                             "Promoting", "Finalising", "Succeeded"});
    // The first step to 20% runs the pre-rollout gates (none here); the step that moved to 40%
    // ran the rollout gate and both checks.
    CHECK(r.steps[1].checks.empty());
    const api::HistoryStep& at40 = r.steps[2];
    REQUIRE(at40.checks.size() == 2);
    CHECK(at40.checks[0].name == "request-success-rate");
    CHECK(at40.checks[0].value == Approx(99.5));
    CHECK(at40.checks[0].min == Approx(99.0));
    CHECK_FALSE(at40.checks[0].max.has_value());
    CHECK(at40.checks[0].verdict == "Pass");
    CHECK(at40.checks[1].name == "request-duration");
    CHECK(at40.checks[1].value == Approx(120));
    CHECK_FALSE(at40.checks[1].min.has_value());
    CHECK(at40.checks[1].max == Approx(500));
    REQUIRE(at40.gates.size() == 1);
    CHECK(at40.gates[0].name == "load-test");
    CHECK(at40.gates[0].type == "rollout");
    CHECK(at40.gates[0].ok);
    CHECK(at40.failed_checks == 0);

    // Decoding what was encoded gives the same history.
    const Json object = {{"spec", api::encode_canary_history_spec(w.history)}};
    auto decoded = api::decode_canary_history(object);
    REQUIRE(decoded.has_value());
    CHECK(*decoded == w.history);
    CHECK(object["spec"]["releases"][0]["steps"][2]["checks"][0]["max"].is_null());
    CHECK(object["spec"]["releases"][0].contains("end"));

    // At rest afterwards: nothing changes.
    const int changes = w.history_changes;
    w.tick();
    w.tick();
    CHECK(w.history_changes == changes);
}

TEST_CASE("a rolled-back release records the failed checks' values, its outcome and the reason") {
    World w(2);
    w.run_until("Initialized");
    w.release("s1:two", "podinfo:2.0.0");
    w.answers.values = [] {
        return std::vector<MetricResult>{
            MetricResult{"request-success-rate", Verdict::kFail, 81.39,
                         "Halt podinfo.test advancement success rate 81.39% < 99%", std::nullopt},
            pass("request-duration", 120)};
    };
    w.run_until("Failed");

    const api::Release& r = last(w.history);
    CHECK(r.outcome == "Failed");
    CHECK(r.reason == "Rolling back podinfo.test failed checks threshold reached 2");
    CHECK_FALSE(r.end.empty());
    REQUIRE(r.steps.size() == 5);  // start, 20%, two failed checks, the rollback
    const api::HistoryStep& failing = r.steps[2];
    CHECK(failing.weight == 20);
    REQUIRE(failing.checks.size() == 2);
    CHECK(failing.checks[0].value == Approx(81.39));
    CHECK(failing.checks[0].min == Approx(99));
    CHECK(failing.checks[0].verdict == "Fail");
    CHECK(failing.checks[0].message == "Halt podinfo.test advancement success rate 81.39% < 99%");
    CHECK(failing.failed_checks == 1);
    const api::HistoryStep& rollback = r.steps.back();
    CHECK(rollback.phase == "Failed");
    CHECK(rollback.weight == 0);
    CHECK(rollback.failed_checks == 2);  // the count that ended it, not the reset one
}

TEST_CASE("a release whose ending decision was not recorded is closed by the next one at rest") {
    World w(1);
    w.run_until("Initialized");
    w.release("s1:two", "podinfo:2.0.0");
    w.answers.values = [] {
        return std::vector<MetricResult>{
            MetricResult{"request-success-rate", Verdict::kFail, 50.0, "failing", std::nullopt},
            pass("request-duration", 120)};
    };
    for (int i = 0; i < 10 && w.canary.status.failed_checks < 1; ++i) {
        w.tick();
    }
    REQUIRE(w.canary.status.failed_checks == 1);
    w.lose_next_record = true;
    w.tick();  // the rollback: its status is written, its record lost
    REQUIRE(w.canary.status.phase == "Failed");
    CHECK(last(w.history).outcome == "Running");
    w.tick();  // at rest
    CHECK(last(w.history).outcome == "Failed");
    CHECK_FALSE(last(w.history).end.empty());
    CHECK(last(w.history).reason ==
          "The canary is Failed; the step that ended this release was not recorded");
    const int changes = w.history_changes;
    w.tick();
    CHECK(w.history_changes == changes);
}

TEST_CASE("a new revision mid-analysis supersedes the running release and opens another") {
    World w;
    w.run_until("Initialized");
    w.release("s1:two", "podinfo:2.0.0");
    w.tick();  // Progressing
    w.tick();  // 20%
    REQUIRE(w.canary.status.canary_weight == 20);
    w.release("s1:three", "podinfo:3.0.0");
    w.tick();
    REQUIRE(w.history.releases.size() == 2);
    const api::Release& first = w.history.releases[0];
    CHECK(first.revision == "s1:two");
    CHECK(first.outcome == "Superseded");
    CHECK(first.reason == "New revision detected! Restarting analysis for podinfo.test");
    CHECK_FALSE(first.end.empty());
    const api::Release& second = w.history.releases[1];
    CHECK(second.revision == "s1:three");
    CHECK(second.image == "podinfo:3.0.0");
    CHECK(second.outcome == "Running");
    CHECK(second.end.empty());
    w.run_until("Succeeded");
    CHECK(w.history.releases[1].outcome == "Succeeded");
    CHECK(w.history.releases[0].outcome == "Superseded");
}

TEST_CASE("a canary releasing with no open release in its history opens one") {
    World w;
    w.run_until("Initialized");
    w.release("s1:two", "podinfo:2.0.0");
    w.tick();
    w.tick();
    w.history = api::CanaryHistory{};  // lost, or installed mid-release
    w.tick();
    REQUIRE(w.history.releases.size() == 1);
    CHECK(w.history.releases[0].outcome == "Running");
    CHECK(w.history.releases[0].revision == "s1:two");
    w.run_until("Succeeded");
    CHECK(w.history.releases[0].outcome == "Succeeded");
}

TEST_CASE("record_request appends a handled request to the newest release") {
    api::CanaryHistory h;
    const RequestRecord request{"podinfo-pause-x7k2p", "pause", "alice", "Done",
                                "2026-12-05T20:01:02Z"};
    CHECK_FALSE(record_request(h, request));  // no release yet
    h.releases.push_back(api::Release{});
    h.releases.push_back(api::Release{});
    CHECK(record_request(h, request));
    REQUIRE(h.releases.back().requests.size() == 1);
    CHECK(h.releases.back().requests[0] == request);
    CHECK(h.releases.front().requests.empty());
    for (int i = 0; i < 30; ++i) {
        RequestRecord r = request;
        r.name = "r" + std::to_string(i);
        CHECK(record_request(h, r));
    }
    CHECK(h.releases.back().requests.size() == api::kHistoryMaxRequests);
    CHECK(h.releases.back().requests.back().name == "r29");
    const Json spec = api::encode_canary_history_spec(h);
    CHECK(spec["releases"][1]["requests"][19]["requestedBy"] == "alice");
}

TEST_CASE("a 150-step release keeps the last 100 steps and counts 50 dropped") {
    api::CanaryHistory h;
    h.releases.push_back(api::Release{});
    for (int i = 0; i < 150; ++i) {
        api::HistoryStep s;
        s.iteration = i;
        h.releases[0].steps.push_back(s);
        api::bound_history(h);
    }
    REQUIRE(h.releases[0].steps.size() == 100);
    CHECK(h.releases[0].dropped_steps == 50);
    CHECK(h.releases[0].steps.front().iteration == 50);
    CHECK(h.releases[0].steps.back().iteration == 149);

    // The same through update_history: a blue/green release of 150 iterations.
    World w;
    w.canary.spec.analysis->step_weight = 0;
    w.canary.spec.analysis->iterations = 150;
    w.canary.spec.analysis->metrics.clear();
    w.run_until("Initialized");
    w.release("s1:two", "podinfo:2.0.0");
    w.run_until("Succeeded", 200);
    const api::Release& r = last(w.history);
    CHECK(r.steps.size() == 100);
    CHECK(r.dropped_steps + static_cast<std::int64_t>(r.steps.size()) > 150);
    CHECK(r.outcome == "Succeeded");
    CHECK(r.strategy == "blue-green");
}

TEST_CASE("11 releases keep the newest 10") {
    World w;
    w.run_until("Initialized");
    for (int i = 1; i <= 11; ++i) {
        w.release("s1:r" + std::to_string(i), "podinfo:" + std::to_string(i));
        w.run_until("Succeeded");
    }
    REQUIRE(w.history.releases.size() == 10);
    CHECK(w.history.releases.front().revision == "s1:r2");
    CHECK(w.history.releases.back().revision == "s1:r11");
    for (const auto& r : w.history.releases) {
        CHECK(r.outcome == "Succeeded");
    }
}

TEST_CASE("long messages are clipped to 512 bytes of valid UTF-8, checks and gates to 20 a step") {
    World w;
    const std::string long_text(2000, 'x');
    w.canary.spec.analysis->metrics.clear();
    for (int i = 0; i < 25; ++i) {
        w.canary.spec.analysis->metrics.push_back(
            metric("m" + std::to_string(i), 1.0, std::nullopt));
    }
    w.answers.values = [&] {
        std::vector<MetricResult> out;
        for (int i = 0; i < 25; ++i) {
            out.push_back(MetricResult{"m" + std::to_string(i), Verdict::kPass, 2.0,
                                       long_text + "\xC3\xA9", std::nullopt});
        }
        return out;
    };
    for (int i = 0; i < 24; ++i) {
        api::CanaryWebhook hook = w.canary.spec.analysis->webhooks[0];
        hook.name = "gate-" + std::to_string(i);
        w.canary.spec.analysis->webhooks.push_back(hook);
    }
    w.run_until("Initialized");
    w.release("s1:two", std::string(3000, 'i'));
    w.tick();  // the run starts
    w.tick();  // 20%
    w.tick();  // 40%: the rollout gates and the checks
    const api::Release& r = last(w.history);
    CHECK(r.image.size() <= api::kHistoryMaxMessageBytes);
    REQUIRE_FALSE(r.steps.empty());
    const api::HistoryStep& s = r.steps.back();
    REQUIRE(s.checks.size() == 20);
    CHECK(s.gates.size() == 20);
    CHECK(s.checks[0].message.size() <= 512);
    CHECK(s.checks[0].message.ends_with("..."));

    // A message that was stored too long (a hand edit) is clipped when read.
    Json object = {{"spec", api::encode_canary_history_spec(w.history)}};
    object["spec"]["releases"][0]["reason"] = std::string(600, 'r') + "\xFF";
    object["spec"]["releases"][0]["steps"][0]["gates"][0]["error"] = long_text;
    auto decoded = api::decode_canary_history(object);
    REQUIRE(decoded.has_value());
    CHECK(decoded->releases[0].reason.size() <= 512);
    CHECK(decoded->releases[0].steps[0].gates[0].error.size() <= 512);
}

TEST_CASE("the encoded spec stays under 512 KiB whatever the steps hold") {
    api::CanaryHistory h;
    h.canary_name = "podinfo";
    for (int r = 0; r < 10; ++r) {
        api::Release release;
        release.outcome = "Succeeded";
        for (int s = 0; s < 100; ++s) {
            api::HistoryStep step;
            for (int c = 0; c < 20; ++c) {
                step.checks.push_back(api::HistoryCheck{"check", 1.0, 1.0, std::nullopt, "Fail",
                                                        std::string(500, 'm')});
            }
            release.steps.push_back(step);
        }
        h.releases.push_back(release);
    }
    CHECK(api::history_spec_size_bound(h) >=
          serin::dump_json(api::encode_canary_history_spec(h)).size());
    CHECK(api::bound_history(h));
    CHECK(serin::dump_json(api::encode_canary_history_spec(h)).size() <= api::kHistoryMaxSpecBytes);
    REQUIRE_FALSE(h.releases.empty());
    CHECK(h.releases.back().dropped_steps > 0);
}

TEST_CASE("the size bound is at least the encoded size, escapes and numbers included") {
    World w;
    w.run_until("Initialized");
    w.release("s1:two", "podinfo:\"2\"\x01\\");
    w.answers.values = [] {
        return std::vector<MetricResult>{
            MetricResult{"request-success-rate", Verdict::kFail, -1.2345678901234567e+300,
                         "\"quoted\"\n\t\x02 caf\xC3\xA9", std::nullopt},
            pass("request-duration", 0.1 + 0.2)};
    };
    w.run_until("Failed");
    const std::size_t encoded = serin::dump_json(api::encode_canary_history_spec(w.history)).size();
    CHECK(api::history_spec_size_bound(w.history) >= encoded);
    CHECK(api::history_spec_size_bound(w.history) < 4 * encoded);
    CHECK(api::history_spec_size_bound(api::CanaryHistory{}) >=
          serin::dump_json(api::encode_canary_history_spec(api::CanaryHistory{})).size());
}

TEST_CASE("decoding is tolerant: unknown fields, wrong types and too many entries") {
    Json releases = Json::array();
    for (int i = 0; i < 12; ++i) {
        releases.push_back(
            {{"revision", "s1:" + std::to_string(i)},
             {"outcome", "Succeeded"},
             {"future", {{"field", true}}},
             {"steps", Json::array({{{"weight", "ten"}, {"phase", 5}}, "not an object"})},
             {"droppedSteps", -3}});
    }
    const Json object = {
        {"apiVersion", "serin.dev/v1alpha1"},
        {"kind", "CanaryHistory"},
        {"spec", {{"canaryRef", {{"name", "podinfo"}}}, {"releases", releases}, {"x", 1}}}};
    auto h = api::decode_canary_history(object);
    REQUIRE(h.has_value());
    CHECK(h->canary_name == "podinfo");
    REQUIRE(h->releases.size() == 10);
    CHECK(h->releases.front().revision == "s1:2");
    REQUIRE(h->releases[0].steps.size() == 1);
    CHECK(h->releases[0].steps[0].weight == 0);
    CHECK(h->releases[0].steps[0].phase.empty());
    CHECK(h->releases[0].dropped_steps == 0);
    CHECK_FALSE(api::decode_canary_history(Json::array()).has_value());
    auto empty = api::decode_canary_history(Json::object());
    REQUIRE(empty.has_value());
    CHECK(empty->releases.empty());
}

TEST_CASE("the requests a decision handled are recorded in the release they acted on") {
    api::Canary canary = make_canary(2);
    canary.status.phase = "Progressing";
    api::CanaryHistory h;
    api::Release open;
    open.revision = "s1:0000000000000001";
    open.outcome = "Running";
    h.releases.push_back(open);

    Decision decision;
    decision.status = canary.status;
    decision.status.requests.push_back({"podinfo-pause-x7k2p", "uid-1", "pause", false, "alice",
                                        "Done", "paused", "2026-12-05T20:01:02Z"});
    CHECK(concerns_history(canary.status, decision));
    CHECK(update_history(h, canary, decision, Observations{}, "podinfo:6.0.1", kStart));
    REQUIRE(h.releases.back().requests.size() == 1);
    CHECK(h.releases.back().requests[0] ==
          RequestRecord{"podinfo-pause-x7k2p", "pause", "alice", "Done", "2026-12-05T20:01:02Z"});

    // The next decision sees the same record in the status it starts from: not recorded again.
    canary.status = decision.status;
    CHECK_FALSE(update_history(h, canary, decision, Observations{}, "podinfo:6.0.1", kStart));
    CHECK(h.releases.back().requests.size() == 1);

    // A refusal while at rest goes to the last release too.
    canary.status.phase = "Succeeded";
    h.releases.back().outcome = "Succeeded";
    decision.status = canary.status;
    decision.status.requests.push_back({"podinfo-retry-abcde", "uid-2", "retry", false, "bob",
                                        "Refused", "nothing to retry", "2026-12-05T20:02:00Z"});
    CHECK(update_history(h, canary, decision, Observations{}, "podinfo:6.0.1", kStart));
    REQUIRE(h.releases.back().requests.size() == 2);
    CHECK(h.releases.back().requests[1].result == "Refused");
}
