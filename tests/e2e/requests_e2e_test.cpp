// Runtime requests on the devcluster (docs/runtime-control.md): CanaryRequests created as plain
// objects through the test's client, handled by the real serin binary: promote mid-way, abort,
// pause across intervals and resume, retry after a failure, and exactly-once handling across a
// SIGKILL of serin right after a request is created.
#include <catch2/catch.hpp>

#include <algorithm>

#include "tests/e2e/e2e.hpp"

namespace {

using namespace serin::e2e;
namespace kube = serin::kube;
namespace types = serin::kube::types;
using Clock = std::chrono::steady_clock;

const std::string kV1 = "ghcr.io/stefanprodan/podinfo:6.0.0";
const std::string kV2 = "ghcr.io/stefanprodan/podinfo:6.0.1";

const kube::ResourceType& requests() { return kube::types::canary_requests(); }

int iterations(const Json& canary) {
    Json it = at(canary, "/status/iterations");
    return it.is_number() ? it.get<int>() : 0;
}

double seconds_since(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}

/// podinfo at v1 and its blue/green canary with `analysis`, initialized, then v2 released until
/// the analysis has taken `steps` iterations.
void release_until(Scenario& s, const Json& analysis, int steps) {
    s.create(types::deployments(), s.deployment(kV1));
    s.create(types::canaries(), s.canary(analysis));
    s.wait_phase("Initialized");
    s.bump_image(kV2);
    s.wait_canary([steps](const Json& c) { return phase(c) == "Progressing" && iterations(c) >= steps; },
                  "Progressing with " + std::to_string(steps) + " iterations");
}

/// Creates a CanaryRequest for podinfo, as `kubectl serin <action>` would; returns its uid.
std::string request(Scenario& s, const std::string& name, const std::string& action) {
    Json created = s.create(requests(), {{"apiVersion", "serin.dev/v1alpha1"},
                                         {"kind", "CanaryRequest"},
                                         {"metadata", {{"name", name}}},
                                         {"spec",
                                          {{"canaryRef", {{"name", "podinfo"}}},
                                           {"action", action},
                                           {"requestedBy", "e2e"}}}});
    return at(created, "/metadata/uid").get<std::string>();
}

/// Waits until the request's status says `result` (Done or Refused); returns it.
Json wait_handled(Scenario& s, const std::string& name, const std::string& result = "Done") {
    Json handled = s.wait_object(
        requests(), name, [](const Json& r) { return !at(r, "/status/phase").is_null(); },
        "request " + name + " handled");
    CHECK(at(handled, "/status/phase") == result);
    return handled;
}

/// How often the canary's status.requests records `uid`.
int records_of(const Json& canary, const std::string& uid) {
    const Json list = at(canary, "/status/requests");
    if (!list.is_array()) {
        return 0;
    }
    return static_cast<int>(std::count_if(list.begin(), list.end(), [&](const Json& r) {
        return r.value("uid", "") == uid;
    }));
}

int events_naming(Scenario& s, const std::string& name) {
    const auto events = s.events();
    return static_cast<int>(std::count_if(events.begin(), events.end(), [&](const std::string& e) {
        return e.find("(CanaryRequest " + name) != std::string::npos;
    }));
}

/// Once serin has handled request `name` (its status and its Event written), kills it with
/// SIGKILL and starts it again: the new process must not act on the request a second time.
void kill_and_restart_after(Scenario& s, SerinProcess& serin, const std::string& name) {
    s.wait_event("(CanaryRequest " + name);
    serin.kill();
    serin.start();
}

Json analysis(GateServer& gates, int iterations_total, const std::string& interval,
              const std::string& hook = "/approve") {
    return {{"interval", interval},
            {"threshold", 2},
            {"iterations", iterations_total},
            {"webhooks", {{{"name", "load-test"}, {"type", "rollout"}, {"url", gates.url(hook)}}}}};
}

}  // namespace

TEST_CASE("a promote request ends a long release well before its steps would") {
    Scenario s;
    GateServer gates(s.io());
    SerinProcess& serin = s.start_serin();
    // 30 iterations at 2 s: a minute of analysis left when the request comes.
    release_until(s, analysis(gates, 30, "2s"), 2);
    const auto start = Clock::now();
    const std::string uid = request(s, "podinfo-promote-e2e", "promote");
    Json handled = wait_handled(s, "podinfo-promote-e2e");
    kill_and_restart_after(s, serin, "podinfo-promote-e2e");
    Json done = s.wait_phase("Succeeded", 40s);
    const double took = seconds_since(start);
    WARN("promote request at iteration 2 of 30 (2 s interval): Succeeded after " << took << " s");
    CHECK(took < 30.0);
    CHECK(iterations(done) == 0);
    CHECK(image_of(s.get(types::deployments(), "podinfo-primary")) == kV2);
    CHECK(at(handled, "/status/message").get<std::string>().rfind("Promotion requested by e2e", 0) == 0);
    CHECK(at(handled, "/status/revision").get<std::string>().rfind("s1:", 0) == 0);
    CHECK(records_of(done, uid) == 1);
    CHECK(events_naming(s, "podinfo-promote-e2e") == 1);
}

TEST_CASE("an abort request rolls the release back and leaves the primary untouched") {
    Scenario s;
    GateServer gates(s.io());
    SerinProcess& serin = s.start_serin();
    release_until(s, analysis(gates, 30, "2s"), 1);
    const std::string uid = request(s, "podinfo-abort-e2e", "abort");
    wait_handled(s, "podinfo-abort-e2e");
    // The rollback's own Event comes after the request's (Events are best effort: one not yet
    // written when serin is killed is not written again), so it is awaited before the kill.
    s.wait_event("aborted by e2e (request podinfo-abort-e2e)");
    kill_and_restart_after(s, serin, "podinfo-abort-e2e");
    const Json failed = s.wait_phase("Failed", 20s);
    CHECK(records_of(failed, uid) == 1);
    s.wait_target_replicas(0);
    CHECK(image_of(s.get(types::deployments(), "podinfo-primary")) == kV1);
    // Failed stays Failed: the aborted revision is not released again on its own.
    CHECK(s.canary_stays([](const Json& c) { return phase(c) != "Failed"; }, 3s));
    CHECK(events_naming(s, "podinfo-abort-e2e") == 1);
}

TEST_CASE("a pause request holds the analysis for two intervals and more, resume finishes it") {
    Scenario s;
    GateServer gates(s.io());
    SerinProcess& serin = s.start_serin();
    release_until(s, analysis(gates, 6, "2s"), 1);
    request(s, "podinfo-pause-e2e", "pause");
    wait_handled(s, "podinfo-pause-e2e");
    // The pause is in the status: a restarted serin keeps holding.
    kill_and_restart_after(s, serin, "podinfo-pause-e2e");
    Json paused = s.wait_canary([](const Json& c) { return !at(c, "/status/paused").is_null(); },
                                "status.paused");
    CHECK(at(paused, "/status/paused/request") == "podinfo-pause-e2e");
    const int held = iterations(paused);
    // Three intervals (2 s each) without a step.
    CHECK(s.canary_stays([held](const Json& c) { return iterations(c) != held; }, 6s));

    const auto resumed_at = Clock::now();
    request(s, "podinfo-resume-e2e", "resume");
    wait_handled(s, "podinfo-resume-e2e");
    s.wait_canary([held](const Json& c) { return iterations(c) > held || phase(c) != "Progressing"; },
                  "the analysis moving again", 20s);
    WARN("first step after the resume: " << seconds_since(resumed_at) << " s (interval 2 s)");
    s.wait_phase("Succeeded", 60s);
    CHECK(image_of(s.get(types::deployments(), "podinfo-primary")) == kV2);
    CHECK(events_naming(s, "podinfo-pause-e2e") == 1);
    CHECK(events_naming(s, "podinfo-resume-e2e") == 1);
}

TEST_CASE("a retry request releases a failed revision again, which now succeeds") {
    Scenario s;
    GateServer gates(s.io());
    SerinProcess& serin = s.start_serin();
    // The rollout gate is closed: two failed checks roll the release back.
    s.create(types::deployments(), s.deployment(kV1));
    s.create(types::canaries(), s.canary(analysis(gates, 2, "1s", "/gate/load")));
    s.wait_phase("Initialized");
    s.bump_image(kV2);
    s.wait_phase("Failed", 60s);
    CHECK(image_of(s.get(types::deployments(), "podinfo-primary")) == kV1);

    gates.open("load");
    const std::string uid = request(s, "podinfo-retry-e2e", "retry");
    wait_handled(s, "podinfo-retry-e2e");
    kill_and_restart_after(s, serin, "podinfo-retry-e2e");
    const Json done = s.wait_phase("Succeeded", 60s);
    CHECK(image_of(s.get(types::deployments(), "podinfo-primary")) == kV2);
    CHECK(records_of(done, uid) == 1);
    s.wait_event("Retry requested by e2e: the release of podinfo." + s.ns() + " starts again");
    CHECK(events_naming(s, "podinfo-retry-e2e") == 1);
}

TEST_CASE("a request is handled exactly once across a SIGKILL of serin right after it is created") {
    Scenario s;
    GateServer gates(s.io());
    SerinProcess& serin = s.start_serin();
    release_until(s, analysis(gates, 30, "2s"), 1);
    const std::string uid = request(s, "podinfo-pause-kill", "pause");
    serin.kill();
    serin.start();
    wait_handled(s, "podinfo-pause-kill");
    s.wait_event("(CanaryRequest podinfo-pause-kill)");
    // Give a second handling every chance to happen (several intervals), then count.
    CHECK(s.canary_stays([&uid](const Json& c) { return records_of(c, uid) != 1; }, 5s));
    const Json canary = s.get(types::canaries(), "podinfo");
    CHECK(records_of(canary, uid) == 1);
    CHECK(at(canary, "/status/paused/request") == "podinfo-pause-kill");
    CHECK(events_naming(s, "podinfo-pause-kill") == 1);
    const Json handled = s.get(requests(), "podinfo-pause-kill");
    CHECK(at(handled, "/status/phase") == "Done");
}
