#include <catch2/catch.hpp>

#include "devcluster/podsim/podsim.hpp"

using serin::podsim::desired_pod_status;
using serin::podsim::format_time;
using serin::podsim::parse_time;
using serin::podsim::PodBehavior;
using serin::podsim::status_satisfies;
using serin::podsim::status_update;
using Json = nlohmann::json;
using namespace std::chrono_literals;

namespace {

const serin::SystemTime kNow = serin::SystemTime{std::chrono::seconds{1'700'000'000}};

Json make_pod(Json annotations = Json::object()) {
    return {{"apiVersion", "v1"},
            {"kind", "Pod"},
            {"metadata",
             {{"name", "web-abc"},
              {"namespace", "demo"},
              {"uid", "0b5a6f3e-1111-2222-3333-444455556666"},
              {"annotations", std::move(annotations)}}},
            {"spec",
             {{"containers",
               {{{"name", "app"}, {"image", "nginx:1.25"}},
                {{"name", "sidecar"}, {"image", "envoy:1.30"}}}}}},
            {"status", {{"phase", "Pending"}, {"qosClass", "BestEffort"}}}};
}

/// The pod after a successful status write.
Json with_status(Json pod, const Json& status) {
    pod["status"] = status;
    return pod;
}

const Json& condition(const Json& status, const std::string& type) {
    for (const auto& c : status.at("conditions")) {
        if (c.at("type") == type) {
            return c;
        }
    }
    FAIL("no condition " << type);
    static Json none;
    return none;
}

}  // namespace

TEST_CASE("a plain pod becomes Running and Ready", "[podsim]") {
    auto status = desired_pod_status(make_pod(), kNow);
    REQUIRE(status);
    CHECK(status->at("phase") == "Running");
    CHECK(status->at("hostIP") == "127.0.0.1");
    CHECK(status->at("podIP").get<std::string>().rfind("10.244.", 0) == 0);
    CHECK(status->at("podIPs").at(0).at("ip") == status->at("podIP"));
    CHECK(status->at("startTime") == format_time(kNow));
    CHECK(status->at("qosClass") == "BestEffort");  // kept: not podsim's field
    for (const char* type : {"PodScheduled", "Initialized", "ContainersReady", "Ready"}) {
        CHECK(condition(*status, type).at("status") == "True");
        CHECK(condition(*status, type).at("lastTransitionTime") == format_time(kNow));
    }
    const auto& containers = status->at("containerStatuses");
    REQUIRE(containers.size() == 2);
    CHECK(containers[0].at("name") == "app");
    CHECK(containers[0].at("image") == "nginx:1.25");
    CHECK(containers[0].at("ready") == true);
    CHECK(containers[0].at("started") == true);
    CHECK(containers[0].at("restartCount") == 0);
    CHECK(containers[0].at("state").at("running").at("startedAt") == format_time(kNow));
    CHECK(containers[1].at("name") == "sidecar");
    CHECK(serin::podsim::pod_behavior(make_pod()) == PodBehavior::kReady);
}

TEST_CASE("the desired status is stable: nothing to write a second time", "[podsim]") {
    auto pod = make_pod();
    auto first = status_update(pod, kNow);
    REQUIRE(first);
    auto written = with_status(pod, *first);
    CHECK_FALSE(status_update(written, kNow));
    CHECK_FALSE(status_update(written, kNow + 1h));  // timestamps are kept, not renewed

    // The server adds members of its own and returns nulls as absent: still nothing to write.
    written["status"]["containerStatuses"][0]["lastState"] = Json::object();
    for (auto& c : written["status"]["conditions"]) {
        c.erase("lastProbeTime");
    }
    CHECK_FALSE(status_update(written, kNow + 1min));
}

TEST_CASE("sim.serin.dev/ready false keeps the pod Running but not ready", "[podsim]") {
    auto pod = make_pod({{"sim.serin.dev/ready", "false"}});
    CHECK(serin::podsim::pod_behavior(pod) == PodBehavior::kNotReady);
    auto status = desired_pod_status(pod, kNow);
    REQUIRE(status);
    CHECK(status->at("phase") == "Running");
    CHECK(condition(*status, "Ready").at("status") == "False");
    CHECK(condition(*status, "Ready").at("reason") == "ContainersNotReady");
    CHECK(condition(*status, "Ready").at("message") ==
          "containers with unready status: [app sidecar]");
    CHECK(condition(*status, "ContainersReady").at("status") == "False");
    CHECK(condition(*status, "PodScheduled").at("status") == "True");
    for (const auto& c : status->at("containerStatuses")) {
        CHECK(c.at("ready") == false);
        CHECK(c.at("started") == true);
        CHECK(c.at("state").contains("running"));
    }
    CHECK_FALSE(status_update(with_status(pod, *status), kNow + 10s));
}

TEST_CASE("sim.serin.dev/crash true crash-loops with a growing restartCount", "[podsim]") {
    auto pod = make_pod({{"sim.serin.dev/crash", "true"}, {"sim.serin.dev/ready", "false"}});
    CHECK(serin::podsim::pod_behavior(pod) == PodBehavior::kCrashLoop);
    serin::podsim::SimSettings settings;
    settings.crash_restart_interval = 2s;

    auto first = desired_pod_status(pod, kNow, settings);
    REQUIRE(first);
    const auto& app = first->at("containerStatuses").at(0);
    CHECK(app.at("state").at("waiting").at("reason") == "CrashLoopBackOff");
    CHECK(app.at("lastState").at("terminated").at("exitCode") == 1);
    CHECK(app.at("lastState").at("terminated").at("reason") == "Error");
    CHECK(app.at("ready") == false);
    CHECK(app.at("restartCount") == 1);
    CHECK(condition(*first, "Ready").at("status") == "False");
    CHECK(first->at("phase") == "Running");

    auto written = with_status(pod, *first);
    CHECK_FALSE(status_update(written, kNow + 1s, settings));  // same interval: nothing new
    auto later = status_update(written, kNow + 5s, settings);
    REQUIRE(later);
    CHECK(later->at("containerStatuses").at(0).at("restartCount") == 3);
    auto written_later = with_status(written, *later);
    CHECK_FALSE(status_update(written_later, kNow + 5s, settings));
    // A count already reported is never lowered, whatever the clock says.
    CHECK_FALSE(status_update(written_later, kNow, settings));
}

TEST_CASE("a condition keeps its lastTransitionTime until its status changes", "[podsim]") {
    auto pod = make_pod({{"sim.serin.dev/ready", "false"}});
    auto not_ready = desired_pod_status(pod, kNow);
    REQUIRE(not_ready);
    auto written = with_status(pod, *not_ready);
    written["metadata"]["annotations"] = Json::object();  // now asks to be ready
    auto ready = status_update(written, kNow + 30s);
    REQUIRE(ready);
    CHECK(condition(*ready, "Ready").at("status") == "True");
    CHECK(condition(*ready, "Ready").at("lastTransitionTime") == format_time(kNow + 30s));
    CHECK(condition(*ready, "PodScheduled").at("lastTransitionTime") == format_time(kNow));
    CHECK(ready->at("startTime") == format_time(kNow));
    // The container kept running: its startedAt stays.
    CHECK(ready->at("containerStatuses").at(0).at("state").at("running").at("startedAt") ==
          format_time(kNow));
}

TEST_CASE("init containers are reported as completed", "[podsim]") {
    auto pod = make_pod();
    pod["spec"]["initContainers"] = {{{"name", "migrate"}, {"image", "tool:1"}}};
    auto status = desired_pod_status(pod, kNow);
    REQUIRE(status);
    const auto& init = status->at("initContainerStatuses");
    REQUIRE(init.size() == 1);
    CHECK(init[0].at("name") == "migrate");
    CHECK(init[0].at("state").at("terminated").at("reason") == "Completed");
    CHECK(init[0].at("state").at("terminated").at("exitCode") == 0);
    CHECK(init[0].at("ready") == true);
}

TEST_CASE("pods being deleted or finished are left alone", "[podsim]") {
    auto deleting = make_pod();
    deleting["metadata"]["deletionTimestamp"] = format_time(kNow);
    CHECK_FALSE(desired_pod_status(deleting, kNow));

    auto done = make_pod();
    done["status"]["phase"] = "Succeeded";
    CHECK_FALSE(desired_pod_status(done, kNow));

    CHECK_FALSE(desired_pod_status(Json::object(), kNow));
    CHECK_FALSE(desired_pod_status(Json("not a pod"), kNow));
}

TEST_CASE("the pod IP is stable and derived from the uid", "[podsim]") {
    auto a = desired_pod_status(make_pod(), kNow);
    auto b = desired_pod_status(make_pod(), kNow + 1h);
    auto other = make_pod();
    other["metadata"]["uid"] = "ffffffff-0000-0000-0000-000000000000";
    auto c = desired_pod_status(other, kNow);
    REQUIRE((a && b && c));
    CHECK(a->at("podIP") == b->at("podIP"));
    CHECK(a->at("podIP") != c->at("podIP"));
}

TEST_CASE("status_satisfies compares what is desired, treating null as absent", "[podsim]") {
    Json current = {{"a", 1}, {"b", {{"c", "x"}, {"extra", true}}}, {"list", {1, 2}}};
    CHECK(status_satisfies(current, {{"a", 1}}));
    CHECK(status_satisfies(current, {{"b", {{"c", "x"}}}}));
    CHECK(status_satisfies(current, {{"missing", nullptr}}));
    CHECK_FALSE(status_satisfies(current, {{"a", 2}}));
    CHECK_FALSE(status_satisfies(current, {{"missing", 0}}));
    CHECK_FALSE(status_satisfies(current, {{"list", {1}}}));
    CHECK(status_satisfies(current, {{"list", {1, 2}}}));
    CHECK(status_satisfies(Json::parse(R"({"n": 3})"), {{"n", 3}}));  // unsigned vs signed
}

TEST_CASE("times round-trip through the API server's format", "[podsim]") {
    CHECK(format_time(kNow) == "2023-11-14T22:13:20Z");
    auto parsed = parse_time("2023-11-14T22:13:20Z");
    REQUIRE(parsed);
    CHECK(*parsed == kNow);
    CHECK(parse_time("2023-11-14T22:13:20.123456Z") == kNow);
    CHECK_FALSE(parse_time("yesterday"));
    CHECK_FALSE(parse_time(""));
}
