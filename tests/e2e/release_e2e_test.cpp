// Whole releases on the devcluster: the real serin binary, the real API server and
// controller-manager, podsim for the kubelet, and a loopback webhook receiver.
#include <catch2/catch.hpp>

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <optional>
#include <string>
#include <vector>

#include "tests/e2e/e2e.hpp"

namespace {

using namespace serin::e2e;
namespace types = serin::kube::types;
using Clock = std::chrono::steady_clock;
using serin::Result;

const std::string kV1 = "ghcr.io/stefanprodan/podinfo:6.0.0";
const std::string kV2 = "ghcr.io/stefanprodan/podinfo:6.0.1";
const std::string kV3 = "ghcr.io/stefanprodan/podinfo:6.0.2";

bool contains(const std::vector<std::string>& events, const std::string& text) {
    return std::any_of(events.begin(), events.end(),
                       [&](const std::string& e) { return e.find(text) != std::string::npos; });
}

int iterations(const Json& canary) {
    Json it = at(canary, "/status/iterations");
    return it.is_number() ? it.get<int>() : 0;
}

Json condition(const Json& canary, const std::string& type) {
    const Json* c = serin::testing::find_condition(canary, type);
    return c != nullptr ? *c : Json::object();
}

double seconds_since(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}

/// Creates podinfo at v1 and the canary, and waits until it is initialized.
Json initialize(Scenario& s, const Json& canary) {
    s.create(types::deployments(), s.deployment(kV1));
    s.create(types::canaries(), canary);
    return s.wait_phase("Initialized");
}

}  // namespace

TEST_CASE("a blue/green release on the kubernetes provider is promoted") {
    Scenario s;
    GateServer gates(s.io());
    SerinProcess& serin = s.start_serin();
    const Json analysis = {
        {"interval", "1s"},
        {"threshold", 2},
        {"iterations", 2},
        {"webhooks", {{{"name", "load-test"}, {"type", "rollout"}, {"url", gates.url("/approve")}}}}};
    Json initialized = initialize(s, s.canary(analysis));

    // Initialization (flagger-spec §3): primary, three Services, target at zero, condition.
    Json primary = s.wait_object(
        types::deployments(), "podinfo-primary",
        [](const Json& d) { return at(d, "/status/availableReplicas") == 2; }, "primary ready");
    CHECK(at(primary, "/spec/selector/matchLabels/app") == "podinfo-primary");
    CHECK(at(primary, "/metadata/ownerReferences/0/kind") == "Canary");
    CHECK(image_of(primary) == kV1);
    s.wait_target_replicas(0);
    Json apex = s.get(types::services(), "podinfo");
    CHECK(at(apex, "/spec/selector") == Json{{"app", "podinfo-primary"}});
    CHECK(at(apex, "/metadata/annotations/kustomize.toolkit.fluxcd.io~1reconcile") == "disabled");
    CHECK(at(s.get(types::services(), "podinfo-canary"), "/spec/selector") ==
          Json{{"app", "podinfo"}});
    CHECK(at(s.get(types::services(), "podinfo-primary"), "/spec/selector") ==
          Json{{"app", "podinfo-primary"}});
    CHECK(condition(initialized, "Promoted").value("status", "") == "True");
    CHECK(condition(initialized, "Accepted").value("status", "") == "True");
    CHECK(at(initialized, "/status/lastPromotedSpec") == at(initialized, "/status/lastAppliedSpec"));

    const auto start = Clock::now();
    s.bump_image(kV2);
    s.wait_phase("Progressing", 10s);
    const double detected = seconds_since(start);
    // Blue/green on the kubernetes provider: after the iterations the apex Service switches to
    // the canary's pods, and back to the primary once it runs the new version.
    s.wait_object(types::services(), "podinfo",
                  [](const Json& svc) { return at(svc, "/spec/selector/app") == "podinfo"; },
                  "apex switched to the canary");
    Json done = s.wait_phase("Succeeded");
    const double released = seconds_since(start);
    WARN("blue/green release (2 iterations at 1s): Progressing after " << detected
                                                                      << " s, Succeeded after "
                                                                      << released << " s");

    CHECK(image_of(s.get(types::deployments(), "podinfo-primary")) == kV2);
    CHECK(at(s.get(types::deployments(), "podinfo"), "/spec/replicas") == 0);
    CHECK(at(s.get(types::services(), "podinfo"), "/spec/selector/app") == "podinfo-primary");
    CHECK(condition(done, "Promoted").value("reason", "") == "Succeeded");
    CHECK(at(done, "/status/lastPromotedSpec") == at(done, "/status/lastAppliedSpec"));
    CHECK(at(done, "/status/lastPromotedSpec") != at(initialized, "/status/lastPromotedSpec"));

    // The rollout hook ran at each analysis step with Flagger's payload.
    auto bodies = gates.bodies("/approve");
    REQUIRE(bodies.size() >= 2);
    CHECK(bodies.front().value("name", "") == "podinfo");
    CHECK(bodies.front().value("namespace", "") == s.ns());
    CHECK(bodies.front().value("phase", "") == "Progressing");
    CHECK(!bodies.front().value("checksum", "").empty());

    s.wait_event("Promotion completed! Scaling down podinfo." + s.ns());
    auto events = s.events();
    CHECK(contains(events, "Initialization done! podinfo." + s.ns()));
    CHECK(contains(events, "New revision detected! Scaling up podinfo." + s.ns()));
    CHECK(contains(events, "Advance podinfo." + s.ns() + " canary iteration 2/2"));
    CHECK(contains(events, "Routing all traffic to canary"));
    CHECK(contains(events, "Copying podinfo." + s.ns() + " template spec to podinfo-primary." +
                               s.ns()));
    CHECK(contains(events, "Routing all traffic to primary"));
    CHECK(serin.running());
}

TEST_CASE("a canary that never becomes ready is rolled back at its progress deadline") {
    Scenario s;
    s.start_serin();
    initialize(s, s.canary({{"interval", "1s"}, {"threshold", 2}, {"iterations", 2}},
                           {{"progressDeadlineSeconds", 5}}));
    const auto start = Clock::now();
    s.patch(types::deployments(), "podinfo",
            {{"spec",
              {{"template",
                {{"metadata", {{"annotations", {{"sim.serin.dev/ready", "false"}}}}},
                 {"spec", {{"containers", {{{"name", "podinfod"}, {"image", kV2}}}}}}}}}}});
    s.wait_phase("Progressing", 10s);
    Json failed = s.wait_phase("Failed", 60s);
    WARN("rollback at a 5 s progress deadline: Failed after " << seconds_since(start) << " s");

    CHECK(condition(failed, "Promoted").value("status", "") == "False");
    CHECK(image_of(s.get(types::deployments(), "podinfo-primary")) == kV1);
    s.wait_target_replicas(0);
    s.wait_event("Canary failed! Scaling down podinfo." + s.ns());
    CHECK(contains(s.events(), "Rolling back podinfo." + s.ns() + " progress deadline exceeded"));
    // Failed stays Failed: nothing is retried until a new revision comes.
    CHECK(s.canary_stays([](const Json& c) { return phase(c) != "Failed"; }, 3s));
}

TEST_CASE("a release is held at confirm-rollout until the gate opens") {
    Scenario s;
    GateServer gates(s.io());
    s.start_serin();
    initialize(s, s.canary({{"interval", "1s"},
                            {"threshold", 2},
                            {"iterations", 1},
                            {"webhooks",
                             {{{"name", "approval"},
                               {"type", "confirm-rollout"},
                               {"url", gates.url("/gate/rollout")}}}}}));
    s.bump_image(kV2);
    s.wait_phase("Waiting", 20s);
    s.wait_event("Halt podinfo." + s.ns() + " advancement waiting for approval approval");
    CHECK(s.canary_stays([](const Json& c) { return phase(c) != "Waiting"; }, 3s));
    CHECK(at(s.get(types::deployments(), "podinfo"), "/spec/replicas") == 0);
    CHECK(image_of(s.get(types::deployments(), "podinfo-primary")) == kV1);
    const std::size_t asked = gates.calls("/gate/rollout");
    CHECK(asked >= 2);  // asked again at each tick

    gates.open("rollout");
    s.wait_phase("Succeeded");
    CHECK(image_of(s.get(types::deployments(), "podinfo-primary")) == kV2);
    auto bodies = gates.bodies("/gate/rollout");
    CHECK(bodies.front().value("phase", "") == "Initialized");
    CHECK(bodies.back().value("phase", "") == "Waiting");
}

TEST_CASE("a rollback webhook that answers ok aborts the release") {
    Scenario s;
    GateServer gates(s.io());
    s.start_serin();
    initialize(s, s.canary({{"interval", "1s"},
                            {"threshold", 2},
                            {"iterations", 60},
                            {"webhooks",
                             {{{"name", "abort"},
                               {"type", "rollback"},
                               {"url", gates.url("/gate/abort")}}}}}));
    s.bump_image(kV2);
    s.wait_canary([](const Json& c) { return phase(c) == "Progressing" && iterations(c) >= 2; },
                  "two iterations");
    gates.open("abort");
    s.wait_phase("Failed", 20s);
    s.wait_event("Rolling back podinfo." + s.ns() + " manual webhook invoked");
    CHECK(contains(s.events(), "Rollback check abort passed"));
    CHECK(image_of(s.get(types::deployments(), "podinfo-primary")) == kV1);
    s.wait_target_replicas(0);
}

TEST_CASE("a new revision in the middle of an analysis restarts it") {
    Scenario s;
    s.start_serin();
    initialize(s, s.canary({{"interval", "1s"}, {"threshold", 2}, {"iterations", 5}}));
    s.bump_image(kV2);
    Json mid = s.wait_canary(
        [](const Json& c) { return phase(c) == "Progressing" && iterations(c) >= 2; },
        "two iterations");
    s.bump_image(kV3);
    s.wait_canary(
        [&](const Json& c) {
            return phase(c) == "Progressing" && iterations(c) == 0 &&
                   at(c, "/status/lastAppliedSpec") != at(mid, "/status/lastAppliedSpec");
        },
        "the analysis restarted for the new revision");
    s.wait_phase("Succeeded");
    CHECK(image_of(s.get(types::deployments(), "podinfo-primary")) == kV3);
    s.wait_event("New revision detected! Restarting analysis for podinfo." + s.ns());
}

TEST_CASE("a target scaled to zero in the middle of an analysis is scaled up again and the release goes on") {
    Scenario s;
    s.start_serin();
    initialize(s, s.canary({{"interval", "1s"}, {"threshold", 2}, {"iterations", 8}}));
    s.bump_image(kV2);
    s.wait_canary([](const Json& c) { return phase(c) == "Progressing" && iterations(c) >= 1; },
                  "one iteration");
    s.patch(types::deployments(), "podinfo", {{"spec", {{"replicas", 0}}}});
    s.wait_event("Scaling up podinfo." + s.ns() + ": the analysis needs it running");
    s.wait_object(
        types::deployments(), "podinfo",
        [](const Json& d) {
            const Json replicas = at(d, "/spec/replicas");
            return replicas.is_number() && replicas.get<int>() > 0;
        },
        "the target scaled up again");
    s.wait_phase("Succeeded");
    CHECK(image_of(s.get(types::deployments(), "podinfo-primary")) == kV2);
}

TEST_CASE("skipAnalysis promotes a new revision as soon as it is ready") {
    Scenario s;
    s.start_serin();
    // A long interval: skipping analysis must not wait for it.
    initialize(s, s.canary({{"interval", "1m"}, {"threshold", 2}, {"iterations", 5}},
                           {{"skipAnalysis", true}}));
    const auto start = Clock::now();
    s.bump_image(kV2);
    s.wait_phase("Succeeded", 30s);
    CHECK(seconds_since(start) < 30);
    CHECK(image_of(s.get(types::deployments(), "podinfo-primary")) == kV2);
    s.wait_event("Promotion completed! Canary analysis was skipped for podinfo." + s.ns());
    CHECK_FALSE(contains(s.events(), "canary iteration"));
}

TEST_CASE("suspend freezes a release and resuming continues it") {
    Scenario s;
    s.start_serin();
    initialize(s, s.canary({{"interval", "1s"}, {"threshold", 2}, {"iterations", 60}}));
    s.bump_image(kV2);
    s.wait_canary([](const Json& c) { return iterations(c) >= 1; }, "one iteration");
    s.patch(types::canaries(), "podinfo", {{"spec", {{"suspend", true}}}});
    s.wait_event("skipping canary run as object is suspended");
    const int frozen = iterations(s.get(types::canaries(), "podinfo"));
    CHECK(s.canary_stays([&](const Json& c) { return iterations(c) != frozen; }, 3s));
    CHECK(phase(s.get(types::canaries(), "podinfo")) == "Progressing");

    s.patch(types::canaries(), "podinfo", {{"spec", {{"suspend", false}}}});
    s.wait_canary([&](const Json& c) { return iterations(c) > frozen; }, "the release resumed");
}

TEST_CASE("a change to a tracked ConfigMap starts a release and reaches the primary's copy") {
    Scenario s;
    s.start_serin();
    s.create(types::config_maps(), serin::testing::config_map(s.ns(), "podinfo-config",
                                                              {{"color", "blue"}}));
    Json deployment = s.deployment(kV1);
    deployment["spec"]["template"]["spec"]["containers"][0]["envFrom"] =
        Json::array({{{"configMapRef", {{"name", "podinfo-config"}}}}});
    s.create(types::deployments(), deployment);
    s.create(types::canaries(),
             s.canary({{"interval", "1s"}, {"threshold", 2}, {"iterations", 1}}));
    Json initialized = s.wait_phase("Initialized");
    CHECK(at(initialized, "/status/trackedConfigs/configmap~1podinfo-config").is_string());
    Json copy = s.get(types::config_maps(), "podinfo-config-primary");
    CHECK(at(copy, "/data/color") == "blue");
    CHECK(at(s.get(types::deployments(), "podinfo-primary"),
             "/spec/template/spec/containers/0/envFrom/0/configMapRef/name") ==
          "podinfo-config-primary");

    s.patch(types::config_maps(), "podinfo-config", {{"data", {{"color", "green"}}}});
    s.wait_phase("Progressing", 10s);
    s.wait_phase("Succeeded");
    CHECK(at(s.get(types::config_maps(), "podinfo-config-primary"), "/data/color") == "green");
}

TEST_CASE("an image bump starts its release ahead of the canaries woken before it") {
    // One worker and no release-start workers: what is left is the work queue's order. Twenty
    // canaries whose tracked ConfigMaps change at once wait in the queue; the bump that comes
    // after them must not wait for all their release starts.
    constexpr int kTracked = 20;
    Scenario s;
    SerinProcess serin(s.cluster(), s.ns(),
                       {"--threadiness=1", "--concurrent-reconciles=1", "--release-start-workers=0"});
    const Json analysis = {{"interval", "1m"}, {"threshold", 2}, {"iterations", 10}};
    std::vector<std::string> tracked;
    for (int i = 0; i < kTracked; ++i) {
        const std::string name = "tracked-" + std::to_string(i);
        tracked.push_back(name);
        s.create(types::config_maps(),
                 serin::testing::config_map(s.ns(), name + "-config", {{"color", "blue"}}));
        Json deployment = s.deployment(kV1, 1);
        deployment["metadata"]["name"] = name;
        deployment["metadata"]["labels"]["app"] = name;
        deployment["spec"]["selector"]["matchLabels"]["app"] = name;
        deployment["spec"]["template"]["metadata"]["labels"]["app"] = name;
        deployment["spec"]["template"]["spec"]["containers"][0]["envFrom"] =
            Json::array({{{"configMapRef", {{"name", name + "-config"}}}}});
        s.create(types::deployments(), deployment);
        Json canary = s.canary(analysis);
        canary["metadata"]["name"] = name;
        canary["spec"]["targetRef"]["name"] = name;
        s.create(types::canaries(), canary);
    }
    s.create(types::deployments(), s.deployment(kV1, 1));
    s.create(types::canaries(), s.canary(analysis));
    auto initialized = serin::testing::run(
        s.io(),
        serin::testing::wait_for_objects(
            s.client(), types::canaries(), s.ns(), "",
            [](const serin::testing::ObjectMap& m) {
                return m.size() == kTracked + 1 &&
                       std::all_of(m.begin(), m.end(),
                                   [](const auto& c) { return phase(c.second) == "Initialized"; });
            },
            180s),
        200s);
    REQUIRE(initialized.has_value());

    // The order in which the canaries turn Progressing, as one watch sees their status writes.
    std::vector<std::string> order;
    bool listed = false;
    std::optional<Result<serin::testing::ObjectMap>> watched;
    boost::asio::co_spawn(
        s.io(),
        serin::testing::wait_for_objects(
            s.client(), types::canaries(), s.ns(), "",
            [&order, &listed](const serin::testing::ObjectMap& m) {
                listed = true;
                for (const auto& [name, c] : m) {
                    if (phase(c) == "Progressing" &&
                        std::find(order.begin(), order.end(), name) == order.end()) {
                        order.push_back(name);
                    }
                }
                return order.size() == kTracked + 1;
            },
            120s),
        [&watched](std::exception_ptr, Result<serin::testing::ObjectMap> result) {
            watched = std::move(result);
        });
    // Listed before anything changes: its watch starts from that list, so it misses nothing.
    // (Each wait below runs the io_context, which keeps the watch going.)
    s.wait_until([&] { return listed; }, "the canaries listed");

    // Every tracked ConfigMap changes at once (the patches in flight together), then the image.
    int patched = 0;
    for (const std::string& name : tracked) {
        boost::asio::co_spawn(
            s.io(),
            s.client().patch(types::config_maps(), s.ns(), name + "-config",
                             serin::kube::PatchType::kMerge,
                             Json{{"data", {{"color", "green"}}}}.dump()),
            [&patched](std::exception_ptr, Result<Json> result) {
                CHECK(result.has_value());
                ++patched;
            });
    }
    s.wait_until([&] { return patched == kTracked; }, "the ConfigMap patches");
    s.bump_image(kV2);
    s.wait_until([&] { return watched.has_value(); }, "every canary Progressing", 120s);
    REQUIRE(watched->has_value());

    const auto bumped = std::find(order.begin(), order.end(), "podinfo");
    REQUIRE(bumped != order.end());
    const auto ahead = bumped - order.begin();
    INFO("turned Progressing, in order: " << Json(order).dump());
    // Behind the twenty in first-in, first-out order it would be last; ahead of them it waits
    // at most for the reconciles begun before its watch event arrived.
    CHECK(ahead < kTracked / 2);
    // And the canaries woken before it still start their releases.
    CHECK(order.size() == kTracked + 1);
}

TEST_CASE("deleting a canary with revertOnDeletion gives the target its replicas back") {
    Scenario s;
    s.start_serin();
    initialize(s, s.canary({{"interval", "1s"}, {"threshold", 2}, {"iterations", 1}},
                           {{"revertOnDeletion", true}}));
    Json canary = s.wait_canary(
        [](const Json& c) {
            Json f = at(c, "/metadata/finalizers");
            return f.is_array() &&
                   std::find(f.begin(), f.end(), Json("finalizer.flagger.app")) != f.end();
        },
        "the finalizer");
    s.wait_target_replicas(0);

    s.remove(types::canaries(), "podinfo");
    s.wait_target_replicas(2);
    auto gone = serin::testing::run(
        s.io(), serin::testing::wait_for_objects(
                    s.client(), types::canaries(), s.ns(), "",
                    [](const serin::testing::ObjectMap& m) { return !m.contains("podinfo"); }, 60s),
        90s);
    REQUIRE(gone.has_value());
    s.wait_event("Terminated canary podinfo." + s.ns());
}

TEST_CASE("serin killed with SIGKILL mid-release finishes it after a restart") {
    Scenario s;
    SerinProcess& serin = s.start_serin();
    initialize(s, s.canary({{"interval", "1s"}, {"threshold", 2}, {"iterations", 6}}));
    s.bump_image(kV2);
    s.wait_canary([](const Json& c) { return phase(c) == "Progressing" && iterations(c) >= 2; },
                  "two iterations");
    serin.kill();
    const int reached = iterations(s.get(types::canaries(), "podinfo"));
    serin.start();
    // It resumes from the status, not from the start.
    s.wait_canary([&](const Json& c) { return iterations(c) > reached || phase(c) != "Progressing"; },
                  "the release resumed");
    s.wait_phase("Succeeded");
    CHECK(image_of(s.get(types::deployments(), "podinfo-primary")) == kV2);
    s.wait_target_replicas(0);
    CHECK_FALSE(contains(s.events(), "Restarting analysis"));
}

TEST_CASE("bad input is reported on the canary without a crash or a hot loop") {
    Scenario s;
    SerinProcess& serin = s.start_serin();
    // A canary whose target does not exist yet.
    s.create(types::canaries(),
             s.canary({{"interval", "1s"}, {"threshold", 2}, {"iterations", 1}}));
    Json rejected = s.wait_canary(
        [](const Json& c) { return condition(c, "Accepted").value("status", "") == "False"; },
        "Accepted=False");
    CHECK_THAT(condition(rejected, "Accepted").value("message", ""),
               Catch::Contains("spec.targetRef.name") && Catch::Contains("podinfo"));
    s.wait_event("spec.targetRef.name");
    const Json version = at(rejected, "/metadata/resourceVersion");
    CHECK(s.canary_stays([&](const Json& c) { return at(c, "/metadata/resourceVersion") != version; },
                         3s));
    CHECK(serin.running());

    // The target appears: the canary is initialized, no restart needed.
    s.create(types::deployments(), s.deployment(kV1));
    Json initialized = s.wait_phase("Initialized");
    CHECK(condition(initialized, "Accepted").value("status", "") == "True");

    // A second canary on the same target is refused, naming the first.
    Json second = s.canary({{"interval", "1s"}, {"threshold", 2}, {"iterations", 1}});
    second["metadata"]["name"] = "podinfo-two";
    s.create(types::canaries(), second);
    Json refused = s.wait_object(
        types::canaries(), "podinfo-two",
        [](const Json& c) { return condition(c, "Accepted").value("status", "") == "False"; },
        "the second canary refused");
    CHECK_THAT(condition(refused, "Accepted").value("message", ""),
               Catch::Contains("already released by canary \"podinfo\""));

    // Identical session-affinity cookie names are refused (flagger-spec §2.14).
    Json cookies = s.canary({{"interval", "1s"},
                             {"threshold", 2},
                             {"iterations", 1},
                             {"sessionAffinity",
                              {{"cookieName", "flagger"}, {"primaryCookieName", "flagger"}}}});
    cookies["metadata"]["name"] = "podinfo-cookies";
    cookies["spec"]["targetRef"]["name"] = "other";
    s.create(types::canaries(), cookies);
    Json cookie_refused = s.wait_object(
        types::canaries(), "podinfo-cookies",
        [](const Json& c) { return condition(c, "Accepted").value("status", "") == "False"; },
        "identical cookie names refused");
    CHECK_THAT(condition(cookie_refused, "Accepted").value("message", ""),
               Catch::Contains("spec.analysis.sessionAffinity.primaryCookieName"));
    CHECK(serin.running());
}

TEST_CASE("a release needs no permission beyond crds/base/rbac.yaml") {
    Scenario s;
    const auto kubeconfig = least_privilege_kubeconfig(s, "serin");
    SerinProcess& serin = s.start_serin(kubeconfig);
    Json initialized = initialize(
        s, s.canary({{"interval", "1s"}, {"threshold", 2}, {"iterations", 1}},
                    {{"revertOnDeletion", true}}));
    s.bump_image(kV2);
    s.wait_phase("Succeeded");
    CHECK(image_of(s.get(types::deployments(), "podinfo-primary")) == kV2);
    s.wait_event("Promotion completed! Scaling down podinfo." + s.ns());
    s.remove(types::canaries(), "podinfo");
    s.wait_event("Terminated canary podinfo." + s.ns());
    CHECK_THAT(serin.log_tail(400), !Catch::Contains("Forbidden"));
}

TEST_CASE("a target with an HPA gets a -primary HPA that scales the primary") {
    Scenario s;
    s.start_serin();
    s.create(types::deployments(), s.deployment(kV1));
    s.create(types::horizontal_pod_autoscalers(), Json::parse(R"({
      "apiVersion": "autoscaling/v2beta2", "kind": "HorizontalPodAutoscaler",
      "metadata": {"name": "podinfo"},
      "spec": {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
        "minReplicas": 2, "maxReplicas": 4,
        "metrics": [{"type": "Resource", "resource": {"name": "cpu",
                     "target": {"type": "Utilization", "averageUtilization": 90}}}]
      }
    })"));
    s.create(types::canaries(),
             s.canary({{"interval", "1s"}, {"threshold", 2}, {"iterations", 1}},
                      {{"autoscalerRef",
                        {{"apiVersion", "autoscaling/v2beta2"},
                         {"kind", "HorizontalPodAutoscaler"},
                         {"name", "podinfo"}}}}));
    s.wait_phase("Initialized");
    Json hpa = s.get(types::horizontal_pod_autoscalers(), "podinfo-primary");
    CHECK(at(hpa, "/spec/scaleTargetRef/name") == "podinfo-primary");
    CHECK(at(hpa, "/spec/minReplicas") == 2);
    CHECK(at(hpa, "/spec/maxReplicas") == 4);
    CHECK(at(hpa, "/metadata/ownerReferences/0/kind") == "Canary");
    CHECK(at(s.get(types::horizontal_pod_autoscalers(), "podinfo"), "/spec/scaleTargetRef/name") ==
          "podinfo");
    s.bump_image(kV2);
    s.wait_phase("Succeeded");
    CHECK(image_of(s.get(types::deployments(), "podinfo-primary")) == kV2);
}
