// Switching from Flagger (issue 16 item 4, flagger-spec-providers §16.7): serin meets canaries
// whose objects and status Flagger wrote, and takes them over without a needless release.
// The "Flagger" state is built here object by object, as Flagger leaves it: a primary built from
// the target (selector label and config references renamed -primary, a random flagger-id), the
// three Services, the target scaled to zero, the -primary config copy, and a status with
// Flagger's FNV hashes, its trackedConfigs checksum and its Promoted condition.
#include <catch2/catch.hpp>

#include <algorithm>

#include "tests/e2e/e2e.hpp"

namespace {

using namespace serin::e2e;
namespace types = serin::kube::types;

const std::string kV1 = "ghcr.io/stefanprodan/podinfo:6.0.0";
const std::string kV2 = "ghcr.io/stefanprodan/podinfo:6.0.1";
const std::string kV3 = "ghcr.io/stefanprodan/podinfo:6.0.2";

/// Flagger's checksum of ConfigMap data {"color":"blue"}: the first 8 bytes of
/// sha256('{"color":"blue"}') in hex (flagger-spec-providers §16.3).
const std::string kBlueChecksum = "f234cb93c08ad64e";

std::size_t count_containing(const std::vector<std::string>& events, const std::string& text) {
    return static_cast<std::size_t>(
        std::count_if(events.begin(), events.end(),
                      [&](const std::string& e) { return e.find(text) != std::string::npos; }));
}

/// What Argo CD's health check for flagger.app/Canary needs of a status: canaryWeight a number,
/// and a conditions list whose every message is a string (it concatenates them).
bool argo_readable(const Json& canary) {
    const Json conditions = at(canary, "/status/conditions");
    return at(canary, "/status/canaryWeight").is_number() && conditions.is_array() &&
           std::all_of(conditions.begin(), conditions.end(), [](const Json& c) {
               return c.contains("message") && c.at("message").is_string();
           });
}

/// The podinfo Deployment with its color from ConfigMap podinfo-config-env (tracked).
Json target(Scenario& s, const std::string& image, int replicas) {
    Json d = s.deployment(image, replicas);
    d["spec"]["template"]["spec"]["containers"][0]["env"] = Json::parse(R"([
        {"name": "COLOR", "valueFrom": {"configMapKeyRef": {"name": "podinfo-config-env",
                                                            "key": "color"}}}])");
    return d;
}

/// What Flagger makes of `target`: podinfo-primary, owned by the canary.
Json flagger_primary(const Json& target, const Json& canary, const std::string& image) {
    Json p = target;
    p["metadata"] = {{"name", "podinfo-primary"},
                     {"namespace", target["metadata"]["namespace"]},
                     {"labels", {{"app", "podinfo-primary"}}},
                     {"ownerReferences",
                      {{{"apiVersion", "flagger.app/v1beta1"},
                        {"kind", "Canary"},
                        {"name", "podinfo"},
                        {"uid", canary["metadata"]["uid"]},
                        {"controller", true},
                        {"blockOwnerDeletion", true}}}}};
    p["spec"]["replicas"] = 2;
    p["spec"]["selector"]["matchLabels"] = {{"app", "podinfo-primary"}};
    Json& pod = p["spec"]["template"];
    pod["metadata"]["labels"]["app"] = "podinfo-primary";
    pod["metadata"]["annotations"]["flagger-id"] = "6f0e6d2c-1d7b-4f36-9c57-2b8e0c51d3aa";
    pod["spec"]["containers"][0]["image"] = image;
    pod["spec"]["containers"][0]["env"][0]["valueFrom"]["configMapKeyRef"]["name"] =
        "podinfo-config-env-primary";
    return p;
}

Json service(const std::string& name, const std::string& selector) {
    return {{"apiVersion", "v1"},
            {"kind", "Service"},
            {"metadata", {{"name", name}}},
            {"spec",
             {{"type", "ClusterIP"},
              {"selector", {{"app", selector}}},
              {"ports",
               {{{"name", "http"}, {"port", 80}, {"protocol", "TCP"},
                 {"targetPort", "http"}}}}}}};
}

Json config_map(const std::string& name) {
    return {{"apiVersion", "v1"},
            {"kind", "ConfigMap"},
            {"metadata", {{"name", name}}},
            {"data", {{"color", "blue"}}}};
}

/// Flagger's status for `phase`; `applied`/`promoted` are Flagger's FNV hashes.
Json flagger_status(const std::string& phase, const std::string& applied,
                    const std::string& promoted) {
    const bool done = phase == "Succeeded" || phase == "Initialized";
    return {{"phase", phase},
            {"canaryWeight", 0},
            {"failedChecks", 0},
            {"iterations", done ? 0 : 1},
            {"lastAppliedSpec", applied},
            {"lastPromotedSpec", promoted},
            {"lastTransitionTime", "2026-12-01T10:00:00Z"},
            {"trackedConfigs", {{"configmap/podinfo-config-env", kBlueChecksum}}},
            {"conditions",
             {{{"type", "Promoted"},
               {"status", done ? "True" : "Unknown"},
               {"lastUpdateTime", "2026-12-01T10:00:00Z"},
               {"lastTransitionTime", "2026-12-01T10:00:00Z"},
               {"reason", phase},
               {"message", done ? "Canary analysis completed successfully, promotion finished."
                                : "New revision detected, progressing canary analysis."}}}}};
}

/// Builds Flagger's objects for a canary whose target runs `target_image` at `target_replicas`
/// and whose primary runs `primary_image`, with `status`; no controller runs yet.
Json flagger_state(Scenario& s, const Json& canary_spec, const std::string& target_image,
                   int target_replicas, const std::string& primary_image, const Json& status) {
    s.create(types::config_maps(), config_map("podinfo-config-env"));
    s.create(types::config_maps(), config_map("podinfo-config-env-primary"));
    const Json t = s.create(types::deployments(), target(s, target_image, target_replicas));
    Json canary = s.create(types::canaries(), canary_spec);
    s.create(types::deployments(), flagger_primary(t, canary, primary_image));
    s.create(types::services(), service("podinfo", "podinfo-primary"));
    s.create(types::services(), service("podinfo-primary", "podinfo-primary"));
    s.create(types::services(), service("podinfo-canary", "podinfo"));

    serin::kube::WriteOptions options;
    options.subresource = "status";
    const Json body = {{"status", status}};
    auto written = serin::testing::run(
        s.io(), s.client().patch(types::canaries(), s.ns(), "podinfo",
                                 serin::kube::PatchType::kMerge, body.dump(), options));
    REQUIRE(written.has_value());
    s.wait_object(
        types::deployments(), "podinfo-primary",
        [](const Json& d) { return at(d, "/status/availableReplicas") == 2; }, "primary ready");
    return *written;
}

Json blue_green(GateServer& gates) {
    return {{"interval", "1s"},
            {"threshold", 2},
            {"iterations", 2},
            {"webhooks",
             {{{"name", "gate"}, {"type", "confirm-rollout"}, {"url", gates.url("/approve")}},
              {{"name", "load-test"}, {"type", "rollout"}, {"url", gates.url("/approve")}}}}};
}

}  // namespace

TEST_CASE("take-over: a Succeeded canary of Flagger's is adopted quietly, then released as usual") {
    Scenario s;
    GateServer gates(s.io());
    flagger_state(s, s.canary(blue_green(gates)), kV1, 0, kV1,
                  flagger_status("Succeeded", "5498f4fcd6", "5498f4fcd6"));
    const Json primary_before = s.get(types::deployments(), "podinfo-primary");

    // The event webhook receives every Event and alert serin would send.
    SerinProcess serin(s.cluster(), s.ns(), {"-event-webhook=" + gates.url("/ok/events")});
    const Json adopted = s.wait_canary(
        [](const Json& c) {
            return at(c, "/status/lastAppliedSpec").get<std::string>().rfind("s1:", 0) == 0;
        },
        "serin's revision recorded");
    CHECK(phase(adopted) == "Succeeded");
    CHECK(argo_readable(adopted));
    CHECK(at(adopted, "/status/lastPromotedSpec") == at(adopted, "/status/lastAppliedSpec"));
    CHECK(at(adopted, "/status/trackedConfigs") ==
          Json{{"configmap/podinfo-config-env", kBlueChecksum}});
    // Nothing else happens: the phase stays, no gate is asked, nothing is announced.
    CHECK(s.canary_stays([](const Json& c) { return phase(c) != "Succeeded"; }, 3s));
    CHECK(gates.calls("/approve") == 0);
    CHECK(gates.calls("/ok/events") == 0);
    CHECK(s.events().empty());
    const Json primary_after = s.get(types::deployments(), "podinfo-primary");
    CHECK(at(primary_after, "/metadata/generation") == at(primary_before, "/metadata/generation"));
    CHECK(at(primary_after, "/spec/template") == at(primary_before, "/spec/template"));
    CHECK(at(s.get(types::deployments(), "podinfo"), "/spec/replicas") == 0);

    // The next image bump is a release like any other.
    s.bump_image(kV2);
    s.wait_phase("Progressing", 10s);
    const Json done = s.wait_phase("Succeeded");
    CHECK(image_of(s.get(types::deployments(), "podinfo-primary")) == kV2);
    CHECK(at(done, "/status/lastPromotedSpec") == at(done, "/status/lastAppliedSpec"));
    CHECK(at(done, "/status/lastAppliedSpec") != at(adopted, "/status/lastAppliedSpec"));
    CHECK(argo_readable(done));
    CHECK(gates.calls("/approve") >= 2);
    CHECK(count_containing(s.events(), "New revision detected! Scaling up podinfo." + s.ns()) == 1);
}

TEST_CASE("take-over: a target changed while no controller ran is released once") {
    Scenario s;
    GateServer gates(s.io());
    // Flagger promoted v1; the target was bumped to v2 after Flagger stopped.
    flagger_state(s, s.canary(blue_green(gates)), kV2, 0, kV1,
                  flagger_status("Succeeded", "5498f4fcd6", "5498f4fcd6"));
    s.start_serin();
    s.wait_phase("Progressing", 20s);
    s.wait_phase("Succeeded");
    CHECK(image_of(s.get(types::deployments(), "podinfo-primary")) == kV2);
    CHECK(count_containing(s.events(), "New revision detected! Scaling up podinfo." + s.ns()) == 1);
}

TEST_CASE("take-over: an analysis Flagger started is restarted once and finishes") {
    Scenario s;
    GateServer gates(s.io());
    // Mid-analysis: the target runs v2 and is scaled up, the primary still runs v1.
    flagger_state(s, s.canary(blue_green(gates)), kV2, 2, kV1,
                  flagger_status("Progressing", "547d5765b7", "5498f4fcd6"));
    s.start_serin();
    s.wait_event("Analysis of podinfo." + s.ns() + " was started by another controller");
    s.wait_phase("Succeeded");
    CHECK(image_of(s.get(types::deployments(), "podinfo-primary")) == kV2);
    const auto events = s.events();
    CHECK(count_containing(events, "was started by another controller") == 1);
    CHECK(count_containing(events, "New revision detected") == 0);

    // And the canary is serin's from then on.
    s.bump_image(kV3);
    s.wait_phase("Progressing", 10s);
    s.wait_phase("Succeeded");
    CHECK(image_of(s.get(types::deployments(), "podinfo-primary")) == kV3);
}
