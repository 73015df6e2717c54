// Which watch events wake a canary (controller/canary/event_filter): the controller-manager's
// status updates of Deployments reach only the canaries that read workload status in their phase.
#include <catch2/catch.hpp>

#include "controller/canary/event_filter.hpp"

namespace {

using Json = nlohmann::json;
using serin::canary::reads_workload_status;
using serin::canary::workload_changed_beyond_status;
using serin::canary::workload_template_changed;

Json deployment() {
    return Json::parse(R"({
      "apiVersion": "apps/v1", "kind": "Deployment",
      "metadata": {"name": "podinfo-primary", "namespace": "test", "generation": 3,
                   "resourceVersion": "100", "labels": {"app": "podinfo-primary"},
                   "annotations": {"deployment.kubernetes.io/revision": "2"},
                   "ownerReferences": [{"apiVersion": "flagger.app/v1beta1", "kind": "Canary",
                                        "name": "podinfo", "uid": "u-1", "controller": true}]},
      "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "podinfo-primary"}},
               "template": {"metadata": {"labels": {"app": "podinfo-primary"}},
                            "spec": {"containers": [{"name": "podinfo", "image": "podinfo:6.0.0"}]}}},
      "status": {"observedGeneration": 3, "replicas": 2, "updatedReplicas": 2, "readyReplicas": 2,
                 "availableReplicas": 2,
                 "conditions": [{"type": "Available", "status": "True",
                                 "lastUpdateTime": "2026-12-05T10:00:00Z"}]}
    })");
}

Json canary_in(const std::string& phase) {
    Json c = {{"metadata", {{"name", "podinfo"}, {"namespace", "test"}}}};
    if (!phase.empty()) {
        c["status"] = {{"phase", phase}};
    }
    return c;
}

}  // namespace

TEST_CASE("a workload update that changed only its status, resourceVersion or managedFields is status-only") {
    const Json before = deployment();
    Json after = before;
    after["metadata"]["resourceVersion"] = "101";
    after["metadata"]["managedFields"] = Json::array({{{"manager", "kube-controller-manager"}}});
    after["status"]["readyReplicas"] = 1;
    after["status"]["conditions"][0]["lastUpdateTime"] = "2026-12-05T10:00:05Z";
    CHECK_FALSE(workload_changed_beyond_status(before, after));
    CHECK_FALSE(workload_changed_beyond_status(before, before));
}

TEST_CASE("a workload update of its spec or of the metadata Serin reads is more than status") {
    const Json before = deployment();
    const auto changed = [&before](const auto& edit) {
        Json after = before;
        edit(after);
        return workload_changed_beyond_status(before, after);
    };
    CHECK(changed([](Json& d) {
        d["spec"]["template"]["spec"]["containers"][0]["image"] = "podinfo:6.0.1";
    }));
    CHECK(changed([](Json& d) { d["spec"]["replicas"] = 0; }));
    CHECK(changed([](Json& d) { d["metadata"]["generation"] = 4; }));
    CHECK(changed([](Json& d) { d["metadata"]["labels"]["team"] = "a"; }));
    CHECK(changed([](Json& d) { d["metadata"]["annotations"].erase("deployment.kubernetes.io/revision"); }));
    CHECK(changed([](Json& d) { d["metadata"]["ownerReferences"] = Json::array(); }));
    CHECK(changed([](Json& d) { d["metadata"]["finalizers"] = Json::array({"x"}); }));
    CHECK(changed([](Json& d) { d["metadata"]["deletionTimestamp"] = "2026-12-05T10:01:00Z"; }));
    CHECK(changed([](Json& d) { d.erase("spec"); }));
}

TEST_CASE("a new revision is a change of the workload's pod template, not of its scale or status") {
    const Json before = deployment();
    const auto changed = [&before](const auto& edit) {
        Json after = before;
        edit(after);
        return workload_template_changed(before, after);
    };
    CHECK(changed([](Json& d) {
        d["spec"]["template"]["spec"]["containers"][0]["image"] = "podinfo:6.0.1";
    }));
    CHECK(changed([](Json& d) {
        d["spec"]["template"]["metadata"]["annotations"]["restartedAt"] = "now";
    }));
    CHECK(changed([](Json& d) { d.erase("spec"); }));
    CHECK_FALSE(changed([](Json& d) { d["spec"]["replicas"] = 0; }));
    CHECK_FALSE(changed([](Json& d) { d["metadata"]["generation"] = 4; }));
    CHECK_FALSE(changed([](Json& d) { d["status"]["readyReplicas"] = 1; }));
}

TEST_CASE("only canaries that initialize, release, promote or are deleted read workload status") {
    for (const char* phase : {"", "Initializing", "Waiting", "Progressing", "WaitingPromotion",
                              "Promoting", "Finalising", "Terminating"}) {
        INFO(phase);
        CHECK(reads_workload_status(canary_in(phase)));
    }
    for (const char* phase : {"Initialized", "Succeeded", "Failed"}) {
        INFO(phase);
        CHECK_FALSE(reads_workload_status(canary_in(phase)));
    }
    Json deleted = canary_in("Succeeded");
    deleted["metadata"]["deletionTimestamp"] = "2026-12-05T10:01:00Z";
    CHECK(reads_workload_status(deleted));
}
