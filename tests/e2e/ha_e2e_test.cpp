// High availability: two serin binaries with leader election on a Lease in the canary's
// namespace. Only the leader writes; when it dies or is stopped, the other finishes the release.
// And the SIGTERM drain: a reconcile in flight finishes within -shutdown-grace, or is cancelled;
// a second signal gives up on the drain.
#include <catch2/catch.hpp>

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

#include "tests/e2e/e2e.hpp"

namespace {

using namespace serin::e2e;
namespace types = serin::kube::types;

const std::string kV1 = "ghcr.io/stefanprodan/podinfo:6.0.0";
const std::string kV2 = "ghcr.io/stefanprodan/podinfo:6.0.1";

std::vector<std::string> ha_args() {
    return {"--enable-leader-election", "--leader-election-lease-duration=3s",
            "--leader-election-renew-deadline=2s", "--leader-election-retry-period=500ms"};
}

/// The identity a serin logged when it started leading, or "".
std::string leader_identity(const SerinProcess& serin) {
    std::ifstream in(serin.log_file());
    std::string line;
    const std::string marker = "leading as ";
    while (std::getline(in, line)) {
        if (const auto at_marker = line.find(marker); at_marker != std::string::npos) {
            return line.substr(at_marker + marker.size());
        }
    }
    return "";
}

/// Who created the canary's Events (reportingInstance), each once.
std::set<std::string> event_writers(Scenario& s) {
    serin::kube::ListOptions options;
    options.field_selector = "involvedObject.kind=Canary,involvedObject.name=podinfo";
    auto page = serin::testing::run(s.io(), s.client().list(types::events(), s.ns(), options));
    REQUIRE(page.has_value());
    std::set<std::string> writers;
    for (const Json& e : page->items) {
        writers.insert(e.value("reportingInstance", ""));
    }
    return writers;
}

int iterations(const Json& canary) {
    const Json it = at(canary, "/status/iterations");
    return it.is_number() ? it.get<int>() : 0;
}

}  // namespace

TEST_CASE("two serins: only the leader writes, killing it mid-release lets the other finish") {
    Scenario s;
    GateServer hooks(s.io());
    SerinProcess a(s.cluster(), s.ns(), ha_args());
    SerinProcess b(s.cluster(), s.ns(), ha_args());
    const Json analysis = {
        {"interval", "1s"},
        {"threshold", 2},
        {"iterations", 8},
        {"webhooks", {{{"name", "checks"}, {"type", "rollout"}, {"url", hooks.url("/approve")}}}}};
    s.create(types::deployments(), s.deployment(kV1));
    s.create(types::canaries(), s.canary(analysis));
    s.wait_phase("Initialized");
    s.wait_until([&] { return !leader_identity(a).empty() || !leader_identity(b).empty(); },
                 "a leader");
    SerinProcess& leader = leader_identity(a).empty() ? b : a;
    SerinProcess& standby = &leader == &a ? b : a;
    const std::string first = leader_identity(leader);
    const Json lease = s.get(types::leases(), "flagger-leader-election");
    CHECK(at(lease, "/spec/holderIdentity") == first);

    s.bump_image(kV2);
    s.wait_canary([](const Json& c) { return phase(c) == "Progressing" && iterations(c) >= 2; },
                  "two iterations");
    // Until now only the leader has written: every Event is its own.
    CHECK(event_writers(s) == std::set<std::string>{first});
    CHECK(leader_identity(standby).empty());

    leader.kill();  // no chance to release the lease or finish a write
    s.wait_until([&] { return !leader_identity(standby).empty(); }, "the standby to take over",
                 std::chrono::seconds{20});
    const std::string second = leader_identity(standby);
    CHECK(second != first);
    const Json done = s.wait_phase("Succeeded", std::chrono::seconds{60});
    CHECK(image_of(s.get(types::deployments(), "podinfo-primary")) == kV2);
    CHECK(at(done, "/status/canaryWeight") == 0);
    CHECK(at(s.get(types::leases(), "flagger-leader-election"), "/spec/holderIdentity") == second);
    CHECK(event_writers(s) == std::set<std::string>{first, second});
    CHECK_FALSE(leader.running());
}

TEST_CASE("SIGTERM: the leader releases its Lease and exits, the standby takes over at once") {
    Scenario s;
    GateServer hooks(s.io());
    // A long lease: a takeover well inside it shows the lease was released, not expired.
    std::vector<std::string> args = {"--enable-leader-election",
                                     "--leader-election-lease-duration=30s",
                                     "--leader-election-renew-deadline=20s",
                                     "--leader-election-retry-period=500ms"};
    SerinProcess a(s.cluster(), s.ns(), args);
    s.wait_until([&] { return !leader_identity(a).empty(); }, "a to lead");
    SerinProcess b(s.cluster(), s.ns(), args);
    s.create(types::deployments(), s.deployment(kV1));
    s.create(types::canaries(), s.canary({{"interval", "1s"},
                                          {"threshold", 2},
                                          {"iterations", 2},
                                          {"webhooks",
                                           {{{"name", "checks"},
                                             {"type", "rollout"},
                                             {"url", hooks.url("/approve")}}}}}));
    s.wait_phase("Initialized");
    const auto stopped_at = std::chrono::steady_clock::now();
    a.stop();  // SIGTERM, and wait for the exit
    INFO("a's log ends:\n" << a.log_tail(30));
    CHECK_FALSE(a.running());
    CHECK(a.exit_status() == "exited with status 0");
    s.wait_until([&] { return !leader_identity(b).empty(); }, "b to take over",
                 std::chrono::seconds{15});
    CHECK(std::chrono::steady_clock::now() - stopped_at < std::chrono::seconds{15});
    s.bump_image(kV2);
    s.wait_phase("Succeeded");
    CHECK(image_of(s.get(types::deployments(), "podinfo-primary")) == kV2);
}

namespace {

/// A canary whose pre-rollout check answers after `delay_ms`, so a reconcile is in flight while
/// the check is waited for.
Json slow_check_canary(Scenario& s, GateServer& hooks, int delay_ms) {
    return s.canary({{"interval", "1s"},
                     {"threshold", 2},
                     {"iterations", 2},
                     {"webhooks",
                      {{{"name", "slow-check"},
                        {"type", "pre-rollout"},
                        {"timeout", "90s"},
                        {"url", hooks.url("/slow/" + std::to_string(delay_ms))}}}}});
}

std::string whole_log(const SerinProcess& serin) {
    std::ifstream in(serin.log_file());
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

bool has_event(Scenario& s, const std::string& text) {
    const auto events = s.events();
    return std::any_of(events.begin(), events.end(),
                       [&](const std::string& e) { return e.find(text) != std::string::npos; });
}

/// Starts a release of kV2 and returns once its pre-rollout check, which answers after
/// `answer_ms`, has been called: a reconcile is then in flight.
void start_release_held_by_check(Scenario& s, GateServer& hooks, int answer_ms) {
    s.create(types::deployments(), s.deployment(kV1));
    s.create(types::canaries(), slow_check_canary(s, hooks, answer_ms));
    s.wait_phase("Initialized");
    s.bump_image(kV2);
    const std::string path = "/slow/" + std::to_string(answer_ms);
    s.wait_until([&] { return hooks.calls(path) == 1; }, "the pre-rollout check to be called",
                 std::chrono::seconds{60});
}

}  // namespace

TEST_CASE("SIGTERM drains: the leader finishes a reconcile waiting on a webhook, then exits 0") {
    Scenario s;
    GateServer hooks(s.io());
    std::vector<std::string> args = ha_args();
    args.push_back("--shutdown-grace=30s");
    SerinProcess a(s.cluster(), s.ns(), args);
    s.wait_until([&] { return !leader_identity(a).empty(); }, "a to lead");
    start_release_held_by_check(s, hooks, 3000);
    const auto signalled = std::chrono::steady_clock::now();
    a.terminate();
    s.wait_until([&] { return !a.running(); }, "a to exit", std::chrono::seconds{45});
    const std::string log = whole_log(a);
    INFO("a's log ends:\n" << a.log_tail(30));
    CHECK(a.exit_status() == "exited with status 0");
    // It waited for the check's answer (3 s after the call) instead of cancelling the reconcile.
    CHECK(std::chrono::steady_clock::now() - signalled > std::chrono::seconds{2});
    CHECK_THAT(log, Catch::Contains("draining, 1 reconciles in flight"));
    CHECK_THAT(log, Catch::Contains("reconcile finished while draining"));
    CHECK_THAT(log, !Catch::Contains("shutdown grace over"));
    CHECK(has_event(s, "Pre-rollout check slow-check passed"));
    CHECK(hooks.calls("/slow/3000") == 1);  // no reconcile began after the signal
}

TEST_CASE("SIGTERM drains: a reconcile still in flight when the grace is over is cancelled") {
    Scenario s;
    GateServer hooks(s.io());
    SerinProcess serin(s.cluster(), s.ns(), {"--shutdown-grace=1s"});
    start_release_held_by_check(s, hooks, 60000);
    serin.terminate();
    s.wait_until([&] { return !serin.running(); }, "serin to exit", std::chrono::seconds{15});
    const std::string log = whole_log(serin);
    INFO("serin's log ends:\n" << serin.log_tail(30));
    CHECK(serin.exit_status() == "exited with status 0");
    CHECK_THAT(log, Catch::Contains("draining, 1 reconciles in flight, 1000 ms to finish"));
    CHECK_THAT(log, Catch::Contains("shutdown grace over: cancelling 1 reconciles"));
    CHECK_THAT(log, Catch::Contains("webhook or metric check cancelled"));
    CHECK_FALSE(has_event(s, "Pre-rollout check slow-check passed"));
}

TEST_CASE("SIGTERM drains: a second signal during the drain gives up at once and exits 1") {
    Scenario s;
    GateServer hooks(s.io());
    SerinProcess serin(s.cluster(), s.ns(), {"--shutdown-grace=60s"});
    start_release_held_by_check(s, hooks, 60000);
    serin.terminate();
    s.wait_until(
        [&] { return whole_log(serin).find("draining, 1 reconciles") != std::string::npos; },
        "serin to start draining", std::chrono::seconds{10});
    serin.terminate();
    // Well inside the 60 s grace and the webhook's 60 s answer.
    s.wait_until([&] { return !serin.running(); }, "serin to exit", std::chrono::seconds{15});
    const std::string log = whole_log(serin);
    INFO("serin's log ends:\n" << serin.log_tail(30));
    CHECK(serin.exit_status() == "exited with status 1");
    CHECK_THAT(log, Catch::Contains("signal 15 during shutdown; exiting without a clean shutdown"));
    CHECK_THAT(log, !Catch::Contains("shutdown grace over"));
}
