// Knative (flagger-spec-providers §10): the router's pure builders and readers (golden patches),
// the Knative target kind (no primary workload, readiness from Revisions, Flagger's revision
// hash), the validation rules of §2.14, the builtin queries, and knativesim's pure model.
#include "devcluster/meshsim/knative.hpp"

#include <catch2/catch.hpp>

#include "analysis/validate.hpp"
#include "controller/canary/target_kind.hpp"
#include "meshes/knative/knative_router.hpp"
#include "metrics/queries.hpp"
#include "tests/support/golden.hpp"

namespace {

using Json = nlohmann::json;
using Routes = serin::analysis::Routes;
using serin::testing::golden;
namespace meshes = serin::meshes;
namespace meshsim = serin::meshsim;

/// Knative Service podinfo as Knative leaves it after its second Revision, primary the first.
Json service() {
    return Json::parse(R"({
      "apiVersion": "serving.knative.dev/v1", "kind": "Service",
      "metadata": {"name": "podinfo", "namespace": "test", "generation": 4, "uid": "u-1",
                   "annotations": {"flagger.app/primary-revision": "podinfo-00001"}},
      "spec": {"template": {"metadata": {"annotations": {"sim.serin.dev/error-rate": "0.2"}},
                            "spec": {"containers": [{"image": "podinfo:2"}]}},
               "traffic": [{"latestRevision": true, "percent": 0},
                           {"revisionName": "podinfo-00001", "latestRevision": false, "percent": 100}]},
      "status": {"observedGeneration": 4, "latestCreatedRevisionName": "podinfo-00002",
                 "latestReadyRevisionName": "podinfo-00002",
                 "traffic": [{"revisionName": "podinfo-00002", "latestRevision": true, "percent": 30},
                             {"revisionName": "podinfo-00001", "latestRevision": false, "percent": 70}]}
    })");
}

Json patch_of(const std::optional<std::string>& text) {
    REQUIRE(text.has_value());
    return Json::parse(*text);
}

serin::api::CanarySpec knative_spec() {
    serin::api::CanarySpec spec;
    spec.provider = "knative";
    spec.target_ref = {"serving.knative.dev/v1", "Service", "podinfo"};
    spec.service.port = 80;
    return spec;
}

}  // namespace

TEST_CASE(
    "knative set_routes writes spec.traffic between the latest revision and the primary one") {
    const Json patch =
        patch_of(meshes::knative_traffic_patch(service(), Routes{70, 30, false}).value());
    CHECK(golden("knative/traffic-70-30.json", patch) == "");
    CHECK(patch["spec"]["traffic"] == Json::parse(R"([{"latestRevision": true, "percent": 30},
                          {"revisionName": "podinfo-00001", "latestRevision": false, "percent": 70}])"));
    // Nothing to write when the Service holds them already.
    CHECK_FALSE(
        meshes::knative_traffic_patch(service(), Routes{100, 0, false}).value().has_value());
}

TEST_CASE("knative set_routes without the primary-revision annotation is refused naming it") {
    Json s = service();
    s["metadata"].erase("annotations");
    auto patch = meshes::knative_traffic_patch(s, Routes{90, 10, false});
    REQUIRE_FALSE(patch.has_value());
    CHECK(patch.error().kind == serin::ErrorKind::kInvalid);
    CHECK(patch.error().message ==
          "Service podinfo.test update failed: annotation flagger.app/primary-revision not found");
}

TEST_CASE("knative get_routes reads status.traffic, what Knative applied, not spec.traffic") {
    CHECK(meshes::knative_routes(service()).value() == Routes{70, 30, false});
    // The primary entry is the one naming the annotation's revision that is not the latest.
    Json same = service();
    same["status"]["traffic"] =
        Json::parse(R"([{"revisionName": "podinfo-00001", "latestRevision": true, "percent": 0},
                                                {"revisionName": "podinfo-00001", "latestRevision": false, "percent": 100}])");
    CHECK(meshes::knative_routes(same).value() == Routes{100, 0, false});
}

TEST_CASE("knative get_routes waits for Knative and refuses a traffic list without both entries") {
    Json behind = service();
    behind["metadata"]["generation"] = 5;
    auto waiting = meshes::knative_routes(behind);
    REQUIRE_FALSE(waiting.has_value());
    CHECK(waiting.error().kind == serin::ErrorKind::kTransient);
    CHECK(waiting.error().message ==
          "Service podinfo.test traffic not applied yet: observedGeneration 4 < generation 5");

    Json only_latest = service();
    only_latest["status"]["traffic"].erase(1);
    CHECK(meshes::knative_routes(only_latest).error().message ==
          "Service podinfo.test traffic spec invalid");
    Json other_primary = service();
    other_primary["metadata"]["annotations"]["flagger.app/primary-revision"] = "podinfo-00009";
    CHECK(meshes::knative_routes(other_primary).error().message ==
          "Service podinfo.test traffic spec invalid");
    Json no_percent = service();
    no_percent["status"]["traffic"][0].erase("percent");
    CHECK(meshes::knative_routes(no_percent).error().message ==
          "Service podinfo.test traffic percent missing");
}

TEST_CASE(
    "knative initialization and promotion move the annotation to the latest created revision") {
    const Json init = patch_of(meshes::knative_primary_patch(service(), true));
    CHECK(golden("knative/initialize.json", init) == "");
    CHECK(init["metadata"]["annotations"]["flagger.app/primary-revision"] == "podinfo-00002");
    CHECK(init["spec"]["traffic"][1] ==
          Json{{"revisionName", "podinfo-00002"}, {"latestRevision", false}, {"percent", 100}});
    // Promotion mid-release keeps the weights: the primary entry names the new primary.
    Json releasing = service();
    releasing["spec"]["traffic"] = meshes::knative_traffic("podinfo-00001", Routes{60, 40, false});
    const Json promote = patch_of(meshes::knative_primary_patch(releasing, false));
    CHECK(golden("knative/promote.json", promote) == "");
    CHECK(promote["spec"]["traffic"] ==
          meshes::knative_traffic("podinfo-00002", Routes{60, 40, false}));

    Json promoted = releasing;
    promoted.merge_patch(promote);
    CHECK_FALSE(meshes::knative_primary_patch(promoted, false).has_value());
    Json fresh = service();
    fresh.erase("status");  // Knative has created no revision yet: nothing to name
    CHECK_FALSE(meshes::knative_primary_patch(fresh, true).has_value());
}

TEST_CASE("knative finalize removes the annotation and leaves spec.traffic") {
    const Json patch = patch_of(meshes::knative_finalize_patch(service()));
    CHECK(patch ==
          Json::parse(R"({"metadata": {"annotations": {"flagger.app/primary-revision": null}}})"));
    Json bare = service();
    bare["metadata"].erase("annotations");
    CHECK_FALSE(meshes::knative_finalize_patch(bare).has_value());
}

TEST_CASE("the Knative target kind has no primary workload and is found by kind and apiVersion") {
    const serin::canary::TargetKinds kinds;
    const serin::canary::TargetKind* kind = kinds.find("Service", "serving.knative.dev/v1").value();
    CHECK_FALSE(kind->has_primary_workload());
    CHECK(kind->type().group == "serving.knative.dev");
    CHECK(kind->revision_type()->resource == "revisions");
    CHECK(kind->primary_revision_name(service()) == "podinfo-00001");
    CHECK(kind->canary_revision_name(service()) == "podinfo-00002");
    CHECK(kind->metric_route(service()) == std::optional<std::string>("podinfo-00002"));
    CHECK_FALSE(kind->scale_to_zero_patch(service()).has_value());
    CHECK_FALSE(kind->scale_up_patch(service(), nullptr, nullptr).has_value());
    CHECK(kind->promote_patch(service()) == meshes::knative_primary_patch(service(), false));
    CHECK(kind->initialize_patch(service()) == meshes::knative_primary_patch(service(), true));
    // A plain Service is not the Knative kind.
    CHECK_FALSE(kinds.find("Service", "v1").has_value());
    CHECK(kinds.find("Deployment", "apps/v1").value()->has_primary_workload());
}

TEST_CASE("the Knative revision is Flagger's hash of status.latestCreatedRevisionName") {
    const serin::canary::TargetKinds kinds;
    const auto* kind = kinds.find("Service", "serving.knative.dev/v1").value();
    Json s = service();
    s["status"]["latestCreatedRevisionName"] = "podinfo-00001";
    CHECK(kind->revision(s) == "s1:5498f4fcd6");  // flagger-spec-providers §16.2 vectors
    s["status"]["latestCreatedRevisionName"] = "podinfo-00002";
    CHECK(kind->revision(s) == "s1:547d5765b7");
}

TEST_CASE("a Knative revision is ready when its Ready condition is True, and always retriable") {
    const serin::canary::TargetKinds kinds;
    const auto* kind = kinds.find("Service", "serving.knative.dev/v1").value();
    const serin::api::Canary canary;
    const auto now = std::chrono::system_clock::now();
    Json revision{
        {"status", {{"conditions", Json::array({{{"type", "Ready"}, {"status", "True"}}})}}}};
    CHECK(kind->readiness(canary, revision, 100, now, "p: ").ready);
    revision["status"]["conditions"][0] =
        Json{{"type", "Ready"}, {"status", "False"}, {"message", "image pull"}};
    auto not_ready = kind->readiness(canary, revision, 100, now,
                                     "canary revision podinfo-00002.test not ready: ");
    CHECK_FALSE(not_ready.ready);
    CHECK(not_ready.retriable);
    CHECK(not_ready.message ==
          "canary revision podinfo-00002.test not ready: Ready condition is False: image pull");
    CHECK(kind->readiness(canary, Json::object(), 100, now, "x: ").message ==
          "x: no Ready condition yet");
}

TEST_CASE("a Knative Service target needs provider knative, and provider knative needs one") {
    auto spec = knative_spec();
    CHECK(serin::analysis::validate(spec, "knative").has_value());
    auto istio = serin::analysis::validate(spec, "istio");
    REQUIRE_FALSE(istio.has_value());
    CHECK(istio.error().message.starts_with(
        "spec.provider: \"istio\" cannot release a Knative Service"));
    spec.target_ref = {"apps/v1", "Deployment", "podinfo"};
    auto deployment = serin::analysis::validate(spec, "knative");
    REQUIRE_FALSE(deployment.has_value());
    CHECK(deployment.error().message.starts_with(
        "spec.targetRef: provider knative releases only Knative Services"));
}

TEST_CASE("A/B matches are refused with a Knative Service target, naming the field") {
    auto spec = knative_spec();
    spec.analysis.emplace();
    spec.analysis->match = nlohmann::json::parse(R"([{"headers": {"x-canary": {"exact": "insider"}}}])");
    auto refused = serin::analysis::validate(spec, "knative");
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error().kind == serin::ErrorKind::kInvalid);
    CHECK(refused.error().message.starts_with(
        "spec.analysis.match: A/B testing is not supported by provider knative"));
}

TEST_CASE("autoscalerRef is refused with a Knative Service target, naming the field") {
    auto spec = knative_spec();
    spec.autoscaler_ref = serin::api::AutoscalerRef{};
    spec.autoscaler_ref->kind = "HorizontalPodAutoscaler";
    spec.autoscaler_ref->name = "podinfo";
    auto refused = serin::analysis::validate(spec, "knative");
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error().kind == serin::ErrorKind::kInvalid);
    CHECK(refused.error().message.starts_with(
        "spec.autoscalerRef: not allowed with a Knative Service target"));
}

TEST_CASE(
    "knative builtin metrics query Envoy's cluster of the route, the latest created revision") {
    serin::api::Canary canary;
    canary.metadata.ns = "test";
    canary.spec = knative_spec();
    canary.spec.route_ref =
        serin::api::LocalObjectRef{"", "", "podinfo-00002"};  // set by the reconciler
    serin::api::CanaryMetric metric;
    metric.interval = "1m";
    const auto observer = serin::metrics::observer_for("", canary.spec);
    REQUIRE(observer == serin::metrics::Observer::kKnative);
    const auto vars = serin::metrics::template_vars(canary, metric);
    const std::string success =
        serin::metrics::render_query(
            serin::metrics::builtin_query(observer, "request-success-rate")->query, vars)
            .value();
    CHECK(success ==
          "sum(rate(envoy_cluster_upstream_rq{envoy_cluster_name=~\"test/podinfo-00002\","
          "envoy_response_code!~\"5.*\"}[1m])) / sum(rate(envoy_cluster_upstream_rq{"
          "envoy_cluster_name=~\"test/podinfo-00002\"}[1m])) * 100");
    const std::string duration =
        serin::metrics::render_query(
            serin::metrics::builtin_query(observer, "request-duration")->query, vars)
            .value();
    CHECK(duration ==
          "histogram_quantile(0.99, sum(rate(envoy_cluster_upstream_rq_time_bucket{"
          "envoy_cluster_name=~\"test/podinfo-00002\"}[1m])) by (le))");
}

TEST_CASE("knativesim creates a Ready revision per template change and reports it in the status") {
    Json s = service();
    s.erase("status");
    s["spec"].erase("traffic");
    auto first = meshsim::knative_reconcile(s, {});
    REQUIRE(first.revision.has_value());
    const Json& rev = *first.revision;
    CHECK(rev["metadata"]["name"] == "podinfo-00001");
    CHECK(rev["metadata"]["labels"]["serving.knative.dev/service"] == "podinfo");
    CHECK(rev["metadata"]["annotations"]["sim.serin.dev/error-rate"] == "0.2");
    CHECK(rev["spec"] == s["spec"]["template"]["spec"]);
    CHECK(rev["status"]["conditions"][0] == Json{{"type", "Ready"}, {"status", "True"}});
    CHECK(first.status["observedGeneration"] == 4);
    CHECK(first.status["latestCreatedRevisionName"] == "podinfo-00001");
    CHECK(first.status["traffic"] ==
          Json::parse(
              R"([{"revisionName": "podinfo-00001", "latestRevision": true, "percent": 100}])"));

    // Same template: nothing new. A changed one: the next number.
    CHECK_FALSE(meshsim::knative_reconcile(s, {rev}).revision.has_value());
    s["spec"]["template"]["spec"]["containers"][0]["image"] = "podinfo:3";
    auto second = meshsim::knative_reconcile(s, {rev});
    REQUIRE(second.revision.has_value());
    CHECK((*second.revision)["metadata"]["name"] == "podinfo-00002");
    CHECK(second.status["latestCreatedRevisionName"] == "podinfo-00002");
}

TEST_CASE("knativesim resolves spec.traffic and does not apply one naming a missing revision") {
    Json s = service();
    s.erase("status");
    auto rev1 = *meshsim::knative_reconcile(s, {}).revision;
    s["spec"]["template"]["spec"]["containers"][0]["image"] = "podinfo:3";
    auto rev2 = *meshsim::knative_reconcile(s, {rev1}).revision;
    s["spec"]["traffic"] = meshes::knative_traffic("podinfo-00001", Routes{60, 40, false});
    auto applied = meshsim::knative_reconcile(s, {rev1, rev2});
    CHECK_FALSE(applied.revision.has_value());
    CHECK(applied.status["traffic"] ==
          Json::parse(R"([{"latestRevision": true, "percent": 40, "revisionName": "podinfo-00002"},
                          {"revisionName": "podinfo-00001", "latestRevision": false, "percent": 60}])"));
    s["status"] = applied.status;
    CHECK(meshes::knative_routes(s).value() == Routes{60, 40, false});

    s["spec"]["traffic"][1]["revisionName"] = "podinfo-00007";
    auto refused = meshsim::knative_reconcile(s, {rev1, rev2});
    CHECK(refused.status["traffic"] == applied.status["traffic"]);  // the last applied, kept
    CHECK(refused.status["conditions"][0]["status"] == "False");
}

TEST_CASE("meshsim sends a Knative Service's stream to its revisions by status.traffic") {
    Json s = service();
    Json rev1{{"metadata", {{"name", "podinfo-00001"}, {"namespace", "test"}}},
              {"status", {{"conditions", Json::array({{{"type", "Ready"}, {"status", "True"}}})}}}};
    Json rev2 = rev1;
    rev2["metadata"]["name"] = "podinfo-00002";
    rev2["metadata"]["annotations"] = {{"sim.serin.dev/error-rate", "20"},
                                       {"sim.serin.dev/latency-ms", "80"}};
    const auto flows = meshsim::knative_flows({s}, {rev1, rev2});
    REQUIRE(flows.size() == 2);
    CHECK(flows[0].version.workload == "podinfo-00001");
    CHECK(flows[0].share == Approx(0.7));
    CHECK(flows[0].envoy_cluster == "test/podinfo-00001");
    CHECK(flows[0].apex == "podinfo");
    CHECK(flows[1].share == Approx(0.3));
    CHECK(flows[1].version.error_rate == Approx(0.2));
    CHECK(flows[1].version.latency_ms == Approx(80));
    // A revision that is not Ready gets nothing.
    rev2["status"]["conditions"][0]["status"] = "False";
    CHECK(meshsim::knative_flows({s}, {rev1, rev2}).size() == 1);
}
