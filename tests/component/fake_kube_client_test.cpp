// FakeApiServer and FakeKubeClient: the kube-apiserver semantics they promise, and the real
// Informer and ObjectStore running on them.
#include "tests/support/fake_kube_client.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <catch2/catch.hpp>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "platform/core/time_format.hpp"
#include "platform/kube/informer.hpp"
#include "platform/kube/object_store.hpp"
#include "tests/support/catch_result.hpp"
#include "tests/support/fake_loop.hpp"

namespace {

namespace asio = boost::asio;
namespace types = serin::kube::types;
using namespace serin;
using namespace serin::testing;
using kube::WatchEvent;

using Fixture = FakeLoop;

Json config_map(const std::string& ns, const std::string& name, Json data = Json::object(),
                Json labels = nullptr) {
    Json object = {{"apiVersion", "v1"},
                   {"kind", "ConfigMap"},
                   {"metadata", {{"name", name}, {"namespace", ns}}},
                   {"data", std::move(data)}};
    if (!labels.is_null()) {
        object["metadata"]["labels"] = std::move(labels);
    }
    return object;
}

Json deployment(const std::string& ns, const std::string& name, const std::string& image) {
    return Json{
        {"apiVersion", "apps/v1"},
        {"kind", "Deployment"},
        {"metadata", {{"name", name}, {"namespace", ns}}},
        {"spec",
         {{"replicas", 1},
          {"selector", {{"matchLabels", {{"app", name}}}}},
          {"template",
           {{"metadata", {{"labels", {{"app", name}}}}},
            {"spec",
             {{"containers", Json::array({{{"name", "app"},
                                           {"image", image},
                                           {"ports", Json::array({{{"containerPort", 8080}}})}},
                                          {{"name", "sidecar"}, {"image", "proxy:1"}}})}}}}}}}};
}

Json canary(const std::string& ns, const std::string& name) {
    return Json{
        {"apiVersion", "flagger.app/v1beta1"},
        {"kind", "Canary"},
        {"metadata", {{"name", name}, {"namespace", ns}}},
        {"spec",
         {{"targetRef", {{"apiVersion", "apps/v1"}, {"kind", "Deployment"}, {"name", name}}},
          {"analysis", {{"interval", "1m"}}}}},
        {"status", {{"phase", "Succeeded"}}}};
}

std::uint64_t version_of(const Json& object) {
    return std::stoull(kube::object_resource_version(object));
}

std::int64_t generation(const Json& object) {
    return object.at("metadata").value("generation", std::int64_t{0});
}

std::string describe(const WatchEvent& event) {
    switch (event.type) {
        case WatchEvent::Type::kAdded:
            return "ADDED " + kube::object_name(event.object);
        case WatchEvent::Type::kModified:
            return "MODIFIED " + kube::object_name(event.object);
        case WatchEvent::Type::kDeleted:
            return "DELETED " + kube::object_name(event.object);
        case WatchEvent::Type::kBookmark:
            return "BOOKMARK " + kube::object_resource_version(event.object);
    }
    return "?";
}

/// A watch running in the background, recording what it sees.
struct Recorder {
    std::vector<std::string> events;
    std::vector<Json> objects;
    std::optional<Result<void>> ended;
    asio::cancellation_signal cancel;

    void start(Fixture& f, const kube::ResourceType& type, const std::string& ns,
               kube::WatchOptions options) {
        asio::co_spawn(f.io,
                       f.client->watch(type, ns, std::move(options),
                                       [this](WatchEvent&& event) {
                                           events.push_back(describe(event));
                                           objects.push_back(std::move(event.object));
                                           return true;
                                       }),
                       asio::bind_cancellation_slot(cancel.slot(),
                                                    [this](std::exception_ptr e, Result<void> r) {
                                                        if (e) {
                                                            std::rethrow_exception(e);
                                                        }
                                                        ended.emplace(std::move(r));
                                                    }));
        f.run_until_idle();
    }
};

kube::WatchOptions watch_from(const std::string& version) {
    kube::WatchOptions options;
    options.resource_version = version;
    return options;
}

kube::WriteOptions status_write() {
    kube::WriteOptions options;
    options.subresource = "status";
    return options;
}

}  // namespace

// ---- metadata, create and the errors of a missing object
// -----------------------------------------

TEST_CASE("create sets uid creationTimestamp generation and a resourceVersion from one counter") {
    Fixture f;
    f.clock.advance(std::chrono::seconds{42});
    auto cm = f.run(f.client->create(types::config_maps(), "ns", config_map("ns", "a")));
    REQUIRE(cm);
    auto dep =
        f.run(f.client->create(types::deployments(), "ns", deployment("ns", "web", "app:1")));
    REQUIRE(dep);
    const Json& meta = cm->at("metadata");
    CHECK_FALSE(meta.value("uid", "").empty());
    CHECK(meta.value("uid", "") != dep->at("metadata").value("uid", ""));
    CHECK(meta.value("creationTimestamp", "") == format_time(f.clock.system_now()));
    // One counter for every type: the Deployment's version follows the ConfigMap's.
    CHECK(version_of(*dep) > version_of(*cm));
    CHECK(f.api.resource_version() == kube::object_resource_version(*dep));
    CHECK(generation(*dep) == 1);
    CHECK_FALSE(meta.contains("generation"));  // ConfigMaps have none
    CHECK(cm->value("apiVersion", "") == "v1");
    CHECK(cm->value("kind", "") == "ConfigMap");

    auto again = f.run(f.client->create(types::config_maps(), "ns", config_map("ns", "a")));
    REQUIRE_FALSE(again);
    CHECK(again.error().kind == ErrorKind::kAlreadyExists);
    CHECK(again.error().message == "configmaps \"a\" already exists");
    // A create may not carry a resourceVersion (the server answers 500).
    Json with_version = config_map("ns", "b");
    with_version["metadata"]["resourceVersion"] = "5";
    auto refused = f.run(f.client->create(types::config_maps(), "ns", with_version));
    REQUIRE_FALSE(refused);
    CHECK(refused.error().http_status == 500);
    // generateName picks a free name; a bad name is Invalid.
    Json generated = config_map("ns", "");
    generated["metadata"].erase("name");
    generated["metadata"]["generateName"] = "gen-";
    auto named = f.run(f.client->create(types::config_maps(), "ns", generated));
    REQUIRE(named);
    CHECK(kube::object_name(*named).rfind("gen-", 0) == 0);
    CHECK(kube::object_name(*named).size() == 9);
    auto bad = f.run(f.client->create(types::config_maps(), "ns", config_map("ns", "Bad_Name")));
    REQUIRE_FALSE(bad);
    CHECK(bad.error().kind == ErrorKind::kInvalid);
    REQUIRE(bad.error().causes.size() == 1);
    CHECK(bad.error().causes[0].field == "metadata.name");
    // The namespace of the body must be the request's.
    auto elsewhere = f.run(f.client->create(types::config_maps(), "other", config_map("ns", "c")));
    REQUIRE_FALSE(elsewhere);
    CHECK(elsewhere.error().kind == ErrorKind::kBadRequest);
}

TEST_CASE("get update patch and delete of a missing object are NotFound") {
    Fixture f;
    const auto& cm = types::config_maps();
    auto got = f.run(f.client->get(types::deployments(), "ns", "nope"));
    REQUIRE_FALSE(got);
    CHECK(got.error().kind == ErrorKind::kNotFound);
    CHECK(got.error().http_status == 404);
    CHECK(got.error().message == "deployments.apps \"nope\" not found");
    auto updated = f.run(f.client->update(cm, "ns", config_map("ns", "nope")));
    REQUIRE_FALSE(updated);
    CHECK(updated.error().kind == ErrorKind::kNotFound);
    auto patched = f.run(f.client->patch(cm, "ns", "nope", kube::PatchType::kMerge, "{}"));
    REQUIRE_FALSE(patched);
    CHECK(patched.error().kind == ErrorKind::kNotFound);
    auto removed = f.run(f.client->remove(cm, "ns", "nope"));
    REQUIRE_FALSE(removed);
    CHECK(removed.error().kind == ErrorKind::kNotFound);
    // The same name in another namespace is another object.
    REQUIRE(f.api.seed(cm, config_map("a", "x")));
    auto other = f.run(f.client->get(cm, "b", "x"));
    REQUIRE_FALSE(other);
    CHECK(other.error().kind == ErrorKind::kNotFound);
    CHECK(f.run(f.client->get(cm, "a", "x")));
}

// ---- updates: preconditions, no-ops, generation
// ---------------------------------------------------

TEST_CASE("an update with a stale resourceVersion is a Conflict and one without is unconditional") {
    Fixture f;
    const auto& cm = types::config_maps();
    auto created = f.run(f.client->create(cm, "ns", config_map("ns", "a", {{"k", "1"}})));
    REQUIRE(created);
    Json first = *created;
    first["data"]["k"] = "2";
    auto updated = f.run(f.client->update(cm, "ns", first));
    REQUIRE(updated);
    CHECK(version_of(*updated) > version_of(*created));
    CHECK(updated->at("data").at("k") == "2");

    Json stale = *created;  // still carries the first resourceVersion
    stale["data"]["k"] = "3";
    auto conflict = f.run(f.client->update(cm, "ns", stale));
    REQUIRE_FALSE(conflict);
    CHECK(conflict.error().kind == ErrorKind::kConflict);
    CHECK(conflict.error().http_status == 409);
    CHECK(f.api.object(cm, "ns", "a")->at("data").at("k") == "2");

    stale["metadata"].erase("resourceVersion");
    auto unconditional = f.run(f.client->update(cm, "ns", stale));
    REQUIRE(unconditional);
    CHECK(unconditional->at("data").at("k") == "3");
    // A uid of another object is a failed precondition too.
    Json other_uid = *unconditional;
    other_uid["metadata"]["uid"] = "someone-else";
    auto uid_conflict = f.run(f.client->update(cm, "ns", other_uid));
    REQUIRE_FALSE(uid_conflict);
    CHECK(uid_conflict.error().kind == ErrorKind::kConflict);
    // The server keeps what the client may not change.
    Json rewrite = *unconditional;
    rewrite["metadata"]["creationTimestamp"] = "2001-01-01T00:00:00Z";
    rewrite["data"]["k"] = "4";
    auto kept = f.run(f.client->update(cm, "ns", rewrite));
    REQUIRE(kept);
    CHECK(kept->at("metadata").at("creationTimestamp") ==
          created->at("metadata").at("creationTimestamp"));
}

TEST_CASE("a write that changes nothing bumps nothing and sends no event") {
    Fixture f;
    const auto& cm = types::config_maps();
    auto created = f.run(f.client->create(cm, "ns", config_map("ns", "a", {{"k", "1"}})));
    REQUIRE(created);
    Recorder watch;
    watch.start(f, cm, "ns", watch_from(kube::object_resource_version(*created)));
    auto same = f.run(f.client->update(cm, "ns", *created));
    REQUIRE(same);
    CHECK(kube::object_resource_version(*same) == kube::object_resource_version(*created));
    auto same_patch =
        f.run(f.client->patch(cm, "ns", "a", kube::PatchType::kMerge, R"({"data":{"k":"1"}})"));
    REQUIRE(same_patch);
    CHECK(kube::object_resource_version(*same_patch) == kube::object_resource_version(*created));
    f.run_until_idle();
    CHECK(watch.events.empty());
    CHECK(f.api.resource_version() == kube::object_resource_version(*created));
    // The calls were made, so the log has them.
    CHECK(f.api.write_log() == std::vector<std::string>{"create configmaps ns/a",
                                                        "update configmaps ns/a",
                                                        "patch configmaps ns/a"});
}

TEST_CASE("generation is 1 on create and bumped by spec changes only") {
    Fixture f;
    const auto& deployments = types::deployments();
    auto dep = f.run(f.client->create(deployments, "ns", deployment("ns", "web", "app:1")));
    REQUIRE(dep);
    Json labelled = *dep;
    labelled["metadata"]["labels"] = {{"team", "a"}};
    labelled["metadata"]["generation"] = 99;  // not the client's to set
    auto after_label = f.run(f.client->update(deployments, "ns", labelled));
    REQUIRE(after_label);
    CHECK(generation(*after_label) == 1);
    Json new_image = *after_label;
    new_image["spec"]["template"]["spec"]["containers"][0]["image"] = "app:2";
    auto after_spec = f.run(f.client->update(deployments, "ns", new_image));
    REQUIRE(after_spec);
    CHECK(generation(*after_spec) == 2);
    // A Deployment's annotations are copied to its ReplicaSets, so they count.
    auto after_annotation = f.run(f.client->patch(deployments, "ns", "web", kube::PatchType::kMerge,
                                                  R"({"metadata":{"annotations":{"a":"b"}}})"));
    REQUIRE(after_annotation);
    CHECK(generation(*after_annotation) == 3);
    // A custom resource: anything but metadata counts; metadata does not.
    const auto& canaries = types::canaries();
    auto c = f.run(f.client->create(canaries, "ns", canary("ns", "podinfo")));
    REQUIRE(c);
    CHECK(generation(*c) == 1);
    auto c_label = f.run(f.client->patch(canaries, "ns", "podinfo", kube::PatchType::kMerge,
                                         R"({"metadata":{"labels":{"x":"y"}}})"));
    REQUIRE(c_label);
    CHECK(generation(*c_label) == 1);
    auto c_spec = f.run(f.client->patch(canaries, "ns", "podinfo", kube::PatchType::kMerge,
                                        R"({"spec":{"analysis":{"interval":"2m"}}})"));
    REQUIRE(c_spec);
    CHECK(generation(*c_spec) == 2);
    auto c_status = f.run(f.client->patch(canaries, "ns", "podinfo", kube::PatchType::kMerge,
                                          R"({"status":{"phase":"Progressing"}})", status_write()));
    REQUIRE(c_status);
    CHECK(generation(*c_status) == 2);
}

// ---- the status subresource ---------------------------------------------------------------------

TEST_CASE("the status subresource: main writes keep the status and status writes change only it") {
    Fixture f;
    const auto& canaries = types::canaries();
    // A custom resource's create drops the status.
    auto created = f.run(f.client->create(canaries, "ns", canary("ns", "podinfo")));
    REQUIRE(created);
    CHECK_FALSE(created->contains("status"));

    Json with_status = *created;
    with_status["status"] = {{"phase", "Progressing"}, {"canaryWeight", 10}};
    with_status["spec"]["analysis"]["interval"] = "5m";  // ignored by a status write
    auto status = f.run(f.client->update(canaries, "ns", with_status, status_write()));
    REQUIRE(status);
    CHECK(status->at("status").at("phase") == "Progressing");
    CHECK(status->at("spec").at("analysis").at("interval") == "1m");

    Json main = *status;
    main["status"] = {{"phase", "Failed"}};  // ignored by a write of the main resource
    main["spec"]["analysis"]["interval"] = "2m";
    auto written = f.run(f.client->update(canaries, "ns", main));
    REQUIRE(written);
    CHECK(written->at("status").at("phase") == "Progressing");
    CHECK(written->at("spec").at("analysis").at("interval") == "2m");
    CHECK(f.api.object(canaries, "ns", "podinfo")->at("status").at("canaryWeight") == 10);

    // A stale status write is a Conflict as well.
    auto stale = f.run(f.client->update(canaries, "ns", with_status, status_write()));
    REQUIRE_FALSE(stale);
    CHECK(stale.error().kind == ErrorKind::kConflict);

    // A built-in type: create empties the status; /status keeps the spec but takes metadata.
    const auto& deployments = types::deployments();
    Json dep = deployment("ns", "web", "app:1");
    dep["status"] = {{"replicas", 3}};
    auto d = f.run(f.client->create(deployments, "ns", dep));
    REQUIRE(d);
    CHECK(d->at("status") == Json::object());
    Json d_status = *d;
    d_status["status"] = {{"readyReplicas", 1}};
    d_status["spec"]["replicas"] = 5;
    d_status["metadata"]["annotations"] = {{"note", "kept"}};
    auto ds = f.run(f.client->update(deployments, "ns", d_status, status_write()));
    REQUIRE(ds);
    CHECK(ds->at("status").at("readyReplicas") == 1);
    CHECK(ds->at("spec").at("replicas") == 1);
    CHECK(ds->at("metadata").at("annotations").at("note") == "kept");

    // ConfigMaps have no status subresource.
    auto cm = f.run(f.client->create(types::config_maps(), "ns", config_map("ns", "a")));
    REQUIRE(cm);
    auto no_status = f.run(f.client->update(types::config_maps(), "ns", *cm, status_write()));
    REQUIRE_FALSE(no_status);
    CHECK(no_status.error().kind == ErrorKind::kNotFound);
}

// ---- patches ------------------------------------------------------------------------------------

TEST_CASE("merge patches follow RFC 7386 and JSON patches RFC 6902") {
    Fixture f;
    const auto& cm = types::config_maps();
    Json object = config_map("ns", "a", {{"keep", "1"}, {"drop", "2"}}, {{"l", "v"}});
    object["binaryData"] = {{"b", "AA=="}};
    REQUIRE(f.run(f.client->create(cm, "ns", object)));
    auto merged = f.run(f.client->patch(
        cm, "ns", "a", kube::PatchType::kMerge,
        R"({"data":{"drop":null,"new":"3"},"metadata":{"labels":{"m":"w"}},"binaryData":null})"));
    REQUIRE(merged);
    CHECK(merged->at("data") == Json{{"keep", "1"}, {"new", "3"}});
    CHECK(merged->at("metadata").at("labels") == Json{{"l", "v"}, {"m", "w"}});
    CHECK_FALSE(merged->contains("binaryData"));
    // A resourceVersion in a patch is a precondition.
    auto stale = f.run(f.client->patch(cm, "ns", "a", kube::PatchType::kMerge,
                                       R"({"metadata":{"resourceVersion":"1"},"data":{"x":"y"}})"));
    REQUIRE_FALSE(stale);
    CHECK(stale.error().kind == ErrorKind::kConflict);

    auto json_patched = f.run(f.client->patch(
        cm, "ns", "a", kube::PatchType::kJson,
        R"([{"op":"test","path":"/data/keep","value":"1"},{"op":"replace","path":"/data/keep","value":"9"},{"op":"remove","path":"/data/new"}])"));
    REQUIRE(json_patched);
    CHECK(json_patched->at("data") == Json{{"keep", "9"}});
    auto failed_test = f.run(f.client->patch(cm, "ns", "a", kube::PatchType::kJson,
                                             R"([{"op":"test","path":"/data/keep","value":"1"}])"));
    REQUIRE_FALSE(failed_test);
    CHECK(failed_test.error().kind == ErrorKind::kInvalid);
    auto not_json = f.run(f.client->patch(cm, "ns", "a", kube::PatchType::kMerge, "{nope"));
    REQUIRE_FALSE(not_json);
    CHECK(not_json.error().kind == ErrorKind::kBadRequest);
}

TEST_CASE("strategic merge patches merge lists by key on built-in types only") {
    Fixture f;
    const auto& deployments = types::deployments();
    REQUIRE(f.run(f.client->create(deployments, "ns", deployment("ns", "web", "app:1"))));
    auto patched = f.run(f.client->patch(deployments, "ns", "web", kube::PatchType::kStrategicMerge,
                                         R"({"spec":{"template":{"spec":{"containers":[
                                             {"name":"app","image":"app:2",
                                              "ports":[{"containerPort":9090}]},
                                             {"name":"sidecar","$patch":"delete"},
                                             {"name":"new","image":"new:1"}]}}}})"));
    REQUIRE(patched);
    const Json& containers = patched->at("spec").at("template").at("spec").at("containers");
    REQUIRE(containers.size() == 2);
    CHECK(containers[0].at("name") == "app");
    CHECK(containers[0].at("image") == "app:2");
    // Container ports merge by containerPort: the old one stays.
    CHECK(containers[0].at("ports").size() == 2);
    CHECK(containers[1].at("name") == "new");
    CHECK_FALSE(containers[1].contains("$patch"));
    // A merge patch replaces the list instead.
    auto merged = f.run(f.client->patch(deployments, "ns", "web", kube::PatchType::kMerge,
                                        R"({"spec":{"template":{"spec":{"containers":[
                                            {"name":"only","image":"x:1"}]}}}})"));
    REQUIRE(merged);
    CHECK(merged->at("spec").at("template").at("spec").at("containers").size() == 1);
    // Custom resources do not take strategic merge patches (415).
    REQUIRE(f.run(f.client->create(types::canaries(), "ns", canary("ns", "c"))));
    auto refused = f.run(f.client->patch(types::canaries(), "ns", "c",
                                         kube::PatchType::kStrategicMerge, R"({"spec":{}})"));
    REQUIRE_FALSE(refused);
    CHECK(refused.error().http_status == 415);
    CHECK(refused.error().kind == ErrorKind::kBadRequest);
}

// ---- deletion and finalizers
// ------------------------------------------------------------------------

TEST_CASE("delete with finalizers marks the object and the last finalizer's removal deletes it") {
    Fixture f;
    const auto& canaries = types::canaries();
    Json c = canary("ns", "podinfo");
    c["metadata"]["finalizers"] = {"finalizer.flagger.app"};
    auto created = f.run(f.client->create(canaries, "ns", c));
    REQUIRE(created);
    Recorder watch;
    watch.start(f, canaries, "ns", watch_from(kube::object_resource_version(*created)));

    f.clock.advance(std::chrono::seconds{10});
    REQUIRE(f.run(f.client->remove(canaries, "ns", "podinfo")));
    auto marked = f.api.object(canaries, "ns", "podinfo");
    REQUIRE(marked);
    CHECK(marked->at("metadata").at("deletionTimestamp") == format_time(f.clock.system_now()));
    CHECK(generation(*marked) == 2);  // markAsDeleting bumps a set generation
    // Deleting again changes nothing.
    REQUIRE(f.run(f.client->remove(canaries, "ns", "podinfo")));
    CHECK(f.api.object(canaries, "ns", "podinfo")->at("metadata").at("resourceVersion") ==
          marked->at("metadata").at("resourceVersion"));
    // No new finalizer once deleting.
    Json more = *marked;
    more["metadata"]["finalizers"].push_back("another");
    auto refused = f.run(f.client->update(canaries, "ns", more));
    REQUIRE_FALSE(refused);
    CHECK(refused.error().kind == ErrorKind::kInvalid);
    // The deletionTimestamp is the server's: an update cannot clear it.
    Json cleared = *marked;
    cleared["metadata"].erase("deletionTimestamp");
    cleared["metadata"]["labels"] = {{"a", "b"}};
    auto relabelled = f.run(f.client->update(canaries, "ns", cleared));
    REQUIRE(relabelled);
    CHECK(relabelled->at("metadata").contains("deletionTimestamp"));

    Json done = *relabelled;
    done["metadata"]["finalizers"] = Json::array();
    auto last = f.run(f.client->update(canaries, "ns", done));
    REQUIRE(last);
    CHECK_FALSE(f.api.object(canaries, "ns", "podinfo"));
    auto gone = f.run(f.client->get(canaries, "ns", "podinfo"));
    REQUIRE_FALSE(gone);
    CHECK(gone.error().kind == ErrorKind::kNotFound);
    f.run_until_idle();
    CHECK(watch.events ==
          std::vector<std::string>{"MODIFIED podinfo", "MODIFIED podinfo", "DELETED podinfo"});
    // The DELETED event carries the last stored state at a newer version.
    CHECK(version_of(watch.objects.back()) > version_of(*relabelled));

    // Without finalizers a delete is immediate; a stale precondition is a Conflict.
    auto cm = f.run(f.client->create(types::config_maps(), "ns", config_map("ns", "a")));
    REQUIRE(cm);
    kube::DeleteOptions precondition;
    precondition.precondition_resource_version = "1";
    auto stale = f.run(f.client->remove(types::config_maps(), "ns", "a", precondition));
    REQUIRE_FALSE(stale);
    CHECK(stale.error().kind == ErrorKind::kConflict);
    precondition.precondition_resource_version = kube::object_resource_version(*cm);
    REQUIRE(f.run(f.client->remove(types::config_maps(), "ns", "a", precondition)));
    CHECK_FALSE(f.api.object(types::config_maps(), "ns", "a"));
}

// ---- kind-specific rules ------------------------------------------------------------------------

TEST_CASE("Secrets fold stringData Services keep their cluster IP and selectors are immutable") {
    Fixture f;
    Json secret = {{"apiVersion", "v1"},
                   {"kind", "Secret"},
                   {"metadata", {{"name", "s"}, {"namespace", "ns"}}},
                   {"stringData", {{"token", "hunter2"}}}};
    auto s = f.run(f.client->create(types::secrets(), "ns", secret));
    REQUIRE(s);
    CHECK_FALSE(s->contains("stringData"));
    CHECK(kube::secret_data(*s, "token") == "hunter2");

    Json service = {{"apiVersion", "v1"},
                    {"kind", "Service"},
                    {"metadata", {{"name", "web"}, {"namespace", "ns"}}},
                    {"spec", {{"selector", {{"app", "web"}}}, {"ports", {{{"port", 80}}}}}}};
    auto svc = f.run(f.client->create(types::services(), "ns", service));
    REQUIRE(svc);
    const std::string ip = svc->at("spec").value("clusterIP", "");
    CHECK_FALSE(ip.empty());
    // Writing the live object back with a new selector keeps the IP; leaving out both clusterIP
    // fields unsets it, which v1.20 refuses.
    Json reselected = *svc;
    reselected["spec"]["selector"] = {{"app", "web-primary"}};
    auto kept = f.run(f.client->update(types::services(), "ns", reselected));
    REQUIRE(kept);
    CHECK(kept->at("spec").value("clusterIP", "") == ip);
    Json without_ip = *kept;
    without_ip["spec"].erase("clusterIP");
    without_ip["spec"].erase("clusterIPs");
    auto unset = f.run(f.client->update(types::services(), "ns", without_ip));
    REQUIRE_FALSE(unset);
    CHECK(unset.error().kind == ErrorKind::kInvalid);

    auto dep = f.run(f.client->create(types::deployments(), "ns", deployment("ns", "web", "a:1")));
    REQUIRE(dep);
    Json moved = *dep;
    moved["spec"]["selector"]["matchLabels"]["app"] = "other";
    auto immutable = f.run(f.client->update(types::deployments(), "ns", moved));
    REQUIRE_FALSE(immutable);
    CHECK(immutable.error().kind == ErrorKind::kInvalid);
    REQUIRE(immutable.error().causes.size() == 1);
    CHECK(immutable.error().causes[0].field == "spec.selector");
}

// ---- list
// -----------------------------------------------------------------------------------------

TEST_CASE("list filters by namespace and selectors and pages through one snapshot") {
    Fixture f;
    const auto& cm = types::config_maps();
    for (int i = 0; i < 7; ++i) {
        const std::string name = "cm-" + std::to_string(i);
        REQUIRE(f.api.seed(cm, config_map("a", name, {},
                                          {{"parity", i % 2 == 0 ? "even" : "odd"},
                                           {"index", std::to_string(i)}})));
    }
    REQUIRE(f.api.seed(cm, config_map("b", "cm-0", {}, {{"parity", "even"}})));

    auto names = [](const kube::ListPage& page) {
        std::vector<std::string> out;
        for (const auto& item : page.items) {
            out.push_back(kube::object_name(item));
        }
        return out;
    };
    auto all = f.run(f.client->list(cm, ""));
    REQUIRE(all);
    CHECK(all->items.size() == 8);
    CHECK(all->resource_version == f.api.resource_version());
    CHECK(all->items[0].value("kind", "") == "ConfigMap");

    kube::ListOptions selected;
    selected.label_selector = "parity=even,index notin (2,4)";
    auto even = f.run(f.client->list(cm, "a", selected));
    REQUIRE(even);
    CHECK(names(*even) == std::vector<std::string>{"cm-0", "cm-6"});
    selected.label_selector = "!index";
    auto no_index = f.run(f.client->list(cm, "", selected));
    REQUIRE(no_index);
    REQUIRE(no_index->items.size() == 1);
    CHECK(kube::object_namespace(no_index->items[0]) == "b");
    kube::ListOptions by_field;
    by_field.field_selector = "metadata.name=cm-3";
    auto one = f.run(f.client->list(cm, "", by_field));
    REQUIRE(one);
    CHECK(names(*one) == std::vector<std::string>{"cm-3"});
    by_field.field_selector = "data.x=y";
    auto unsupported = f.run(f.client->list(cm, "", by_field));
    REQUIRE_FALSE(unsupported);
    CHECK(unsupported.error().kind == ErrorKind::kBadRequest);
    kube::ListOptions broken;
    broken.label_selector = "a in (b";
    auto unparsable = f.run(f.client->list(cm, "", broken));
    REQUIRE_FALSE(unparsable);
    CHECK(unparsable.error().kind == ErrorKind::kBadRequest);

    // Pages: later pages read the first page's snapshot, whatever changes meanwhile.
    kube::ListOptions paged;
    paged.limit = 3;
    auto page1 = f.run(f.client->list(cm, "a", paged));
    REQUIRE(page1);
    CHECK(names(*page1) == std::vector<std::string>{"cm-0", "cm-1", "cm-2"});
    REQUIRE_FALSE(page1->continue_token.empty());
    REQUIRE(f.api.remove(cm, "a", "cm-4"));
    REQUIRE(f.api.seed(cm, config_map("a", "cm-35")));
    paged.continue_token = page1->continue_token;
    paged.resource_version = page1->resource_version;  // not allowed with continue
    auto both = f.run(f.client->list(cm, "a", paged));
    REQUIRE_FALSE(both);
    CHECK(both.error().kind == ErrorKind::kBadRequest);
    paged.resource_version.clear();
    auto page2 = f.run(f.client->list(cm, "a", paged));
    REQUIRE(page2);
    CHECK(names(*page2) == std::vector<std::string>{"cm-3", "cm-4", "cm-5"});
    CHECK(page2->resource_version == page1->resource_version);
    paged.continue_token = page2->continue_token;
    auto page3 = f.run(f.client->list(cm, "a", paged));
    REQUIRE(page3);
    CHECK(names(*page3) == std::vector<std::string>{"cm-6"});
    CHECK(page3->continue_token.empty());

    // After compaction the old snapshot is gone.
    f.api.compact();
    paged.continue_token = page1->continue_token;
    auto expired = f.run(f.client->list(cm, "a", paged));
    REQUIRE_FALSE(expired);
    CHECK(expired.error().kind == ErrorKind::kGone);

    // Metadata only: no data.
    kube::ListOptions meta_only;
    meta_only.metadata_only = true;
    auto metas = f.run(f.client->list(cm, "b", meta_only));
    REQUIRE(metas);
    REQUIRE(metas->items.size() == 1);
    CHECK_FALSE(metas->items[0].contains("data"));
    CHECK(kube::object_name(metas->items[0]) == "cm-0");
}

// ---- watch
// ----------------------------------------------------------------------------------------

TEST_CASE("a watch replays changes in order after its resourceVersion") {
    Fixture f;
    const auto& cm = types::config_maps();
    auto a = f.run(f.client->create(cm, "ns", config_map("ns", "a")));
    REQUIRE(a);
    const std::string from = kube::object_resource_version(*a);
    // Changes before the watch starts are replayed from the history.
    REQUIRE(f.run(f.client->create(cm, "ns", config_map("ns", "b"))));
    REQUIRE(f.run(f.client->create(cm, "other", config_map("other", "elsewhere"))));
    Recorder watch;
    watch.start(f, cm, "ns", watch_from(from));
    CHECK(watch.events == std::vector<std::string>{"ADDED b"});
    REQUIRE(
        f.run(f.client->patch(cm, "ns", "a", kube::PatchType::kMerge, R"({"data":{"x":"1"}})")));
    REQUIRE(f.run(f.client->remove(cm, "ns", "b")));
    REQUIRE(f.run(f.client->create(types::secrets(), "ns",
                                   Json{{"metadata", {{"name", "not-a-configmap"}}}})));
    f.run_until_idle();
    CHECK(watch.events == std::vector<std::string>{"ADDED b", "MODIFIED a", "DELETED b"});
    // Versions only grow.
    for (std::size_t i = 1; i < watch.objects.size(); ++i) {
        CHECK(version_of(watch.objects[i]) > version_of(watch.objects[i - 1]));
    }
    CHECK(f.api.open_watches() == 1);
    CHECK_FALSE(watch.ended);

    // From "" a watch starts with the current state as ADDED events.
    Recorder fresh;
    fresh.start(f, cm, "", watch_from(""));
    CHECK(fresh.events == std::vector<std::string>{"ADDED a", "ADDED elsewhere"});  // key order
}

TEST_CASE("a watch sees an object leave and enter its label selector") {
    Fixture f;
    const auto& cm = types::config_maps();
    REQUIRE(f.api.seed(cm, config_map("ns", "a", {}, {{"app", "web"}})));
    kube::WatchOptions options = watch_from(f.api.resource_version());
    options.label_selector = "app=web";
    Recorder watch;
    watch.start(f, cm, "ns", options);
    REQUIRE(f.run(f.client->patch(cm, "ns", "a", kube::PatchType::kMerge,
                                  R"({"metadata":{"labels":{"app":"db"}}})")));
    REQUIRE(f.run(
        f.client->patch(cm, "ns", "a", kube::PatchType::kMerge, R"({"data":{"unseen":"1"}})")));
    REQUIRE(f.run(f.client->patch(cm, "ns", "a", kube::PatchType::kMerge,
                                  R"({"metadata":{"labels":{"app":"web"}}})")));
    f.run_until_idle();
    CHECK(watch.events == std::vector<std::string>{"DELETED a", "ADDED a"});
}

TEST_CASE("bookmarks Gone and the server's timeout end or mark a watch as the real server does") {
    Fixture f;
    const auto& cm = types::config_maps();
    REQUIRE(f.api.seed(cm, config_map("ns", "a")));
    const std::string old_version = f.api.resource_version();
    REQUIRE(f.api.seed(cm, config_map("ns", "b")));

    kube::WatchOptions options = watch_from(f.api.resource_version());
    options.timeout_seconds = 60;
    Recorder watch;
    watch.start(f, cm, "ns", options);
    REQUIRE(f.api.seed(cm, config_map("ns", "c")));
    f.api.send_bookmarks();
    f.run_until_idle();
    REQUIRE(watch.events.size() == 2);
    CHECK(watch.events[0] == "ADDED c");
    CHECK(watch.events[1] == "BOOKMARK " + f.api.resource_version());
    // A watch that does not ask for bookmarks gets none.
    kube::WatchOptions no_bookmarks = watch_from(f.api.resource_version());
    no_bookmarks.allow_bookmarks = false;
    Recorder quiet;
    quiet.start(f, cm, "ns", no_bookmarks);
    f.api.send_bookmarks();
    f.run_until_idle();
    CHECK(quiet.events.empty());

    // The server ends a watch after its timeoutSeconds, with a bookmark first.
    f.clock.advance(std::chrono::seconds{59});
    f.run_until_idle();
    CHECK_FALSE(watch.ended);
    f.clock.advance(std::chrono::seconds{1});
    f.run_until_idle();
    REQUIRE(watch.ended);
    CHECK(*watch.ended);
    CHECK(watch.events.back() == "BOOKMARK " + f.api.resource_version());

    // Below the compaction point: Gone.
    f.api.compact();
    Recorder late;
    late.start(f, cm, "ns", watch_from(old_version));
    REQUIRE(late.ended);
    REQUIRE_FALSE(*late.ended);
    CHECK(late.ended->error().kind == ErrorKind::kGone);
    CHECK(late.ended->error().http_status == 410);
    // At the compaction point itself the history is still there.
    Recorder current;
    current.start(f, cm, "ns", watch_from(f.api.resource_version()));
    CHECK_FALSE(current.ended);

    // end_watches ends every open watch, cleanly or with an error.
    f.api.end_watches(fail(ErrorKind::kTransient, "server restarted"));
    f.run_until_idle();
    REQUIRE(current.ended);
    REQUIRE_FALSE(*current.ended);
    CHECK(current.ended->error().kind == ErrorKind::kTransient);
    CHECK(f.api.open_watches() == 0);
}

namespace {

struct Observed {
    bool posted_ran = false;
    std::size_t events_when_create_returned = 99;
    bool done = false;
};

/// Posts a handler, creates an object and notes what had happened by the time the create
/// returned. Pointers, not references: the coroutine outlives nothing, but takes nothing it
/// could outlive either.
asio::awaitable<void> create_and_observe(asio::io_context* io, FakeKubeClient* client,
                                         const Recorder* watch, Observed* out) {
    // Posted before the call: it runs before the call completes, as it would while a real
    // request is on the network.
    asio::post(*io, [out] { out->posted_ran = true; });
    auto created = co_await client->create(types::config_maps(), "ns", config_map("ns", "a"));
    CHECK(created);
    out->events_when_create_returned = watch->events.size();
    out->done = out->posted_ran;
}

}  // namespace

TEST_CASE("calls complete asynchronously and events arrive after the write that caused them") {
    Fixture f;
    Recorder watch;
    watch.start(f, types::config_maps(), "ns", watch_from(f.api.resource_version()));
    Observed observed;
    asio::co_spawn(f.io, create_and_observe(&f.io, f.client.get(), &watch, &observed),
                   [](std::exception_ptr e) {
                       if (e) {
                           std::rethrow_exception(e);
                       }
                   });
    f.run_until_idle();
    CHECK(observed.posted_ran);
    CHECK(observed.done);  // the posted handler ran before the create completed
    CHECK(observed.events_when_create_returned == 0);
    CHECK(watch.events == std::vector<std::string>{"ADDED a"});
}

TEST_CASE("cancelling a watch ends it with Cancelled") {
    Fixture f;
    Recorder watch;
    watch.start(f, types::config_maps(), "ns", watch_from(f.api.resource_version()));
    CHECK(f.api.open_watches() == 1);
    CHECK_FALSE(watch.ended);
    watch.cancel.emit(asio::cancellation_type::all);
    f.run_until_idle();
    REQUIRE(watch.ended);
    REQUIRE_FALSE(*watch.ended);
    CHECK(watch.ended->error().kind == ErrorKind::kCancelled);
    CHECK(f.api.open_watches() == 0);
    CHECK(f.clock.sleepers() == 0);  // its timeout is cancelled with it
}

// ---- test hooks ---------------------------------------------------------------------------------

TEST_CASE("injected faults fail the next matching calls only and the write log keeps the order") {
    Fixture f;
    const auto& cm = types::config_maps();
    REQUIRE(f.api.seed(cm, config_map("ns", "a")));
    f.api.fail_next(writes_to(cm, "a"), 2, ErrorKind::kConflict);
    f.api.fail_next(calls(Verb::kGet), 1, ErrorKind::kForbidden);
    CHECK(f.api.faults_pending() == 3);

    auto get = f.run(f.client->get(cm, "ns", "a"));
    REQUIRE_FALSE(get);
    CHECK(get.error().kind == ErrorKind::kForbidden);
    CHECK(f.run(f.client->get(cm, "ns", "a")));  // only once
    auto first =
        f.run(f.client->patch(cm, "ns", "a", kube::PatchType::kMerge, R"({"data":{"k":"1"}})"));
    REQUIRE_FALSE(first);
    CHECK(first.error().kind == ErrorKind::kConflict);
    CHECK(f.run(f.client->create(cm, "ns", config_map("ns", "b"))));  // another name: passes
    auto second = f.run(f.client->remove(cm, "ns", "a"));
    REQUIRE_FALSE(second);
    CHECK(second.error().kind == ErrorKind::kConflict);
    CHECK(f.api.object(cm, "ns", "a"));  // refused writes changed nothing
    CHECK(f.api.faults_pending() == 0);
    CHECK(f.run(f.client->patch(cm, "ns", "a", kube::PatchType::kMerge, R"({"data":{"k":"1"}})")));

    // After the server: the write happens, the answer is lost.
    f.api.fail_next(writes(), 1, ErrorKind::kTransient, FaultTiming::kAfterServer);
    auto lost =
        f.run(f.client->patch(cm, "ns", "a", kube::PatchType::kMerge, R"({"data":{"k":"2"}})"));
    REQUIRE_FALSE(lost);
    CHECK(lost.error().kind == ErrorKind::kTransient);
    CHECK(f.api.object(cm, "ns", "a")->at("data").at("k") == "2");

    CHECK(f.api.write_log() == std::vector<std::string>{
                                   "patch configmaps ns/a -> Conflict",
                                   "create configmaps ns/b",
                                   "delete configmaps ns/a -> Conflict",
                                   "patch configmaps ns/a",
                                   "patch configmaps ns/a -> applied, answer lost: Transient",
                               });
    CHECK(f.api.write_log(true).size() == 3);
    CHECK(f.api.writes()[1].resource_version ==
          kube::object_resource_version(*f.api.object(cm, "ns", "b")));
}

TEST_CASE(
    "a client crashed after its k-th write fails every later call and a fresh one carries on") {
    Fixture f;
    const auto& cm = types::config_maps();
    Recorder watch;
    watch.start(f, cm, "ns", watch_from(f.api.resource_version()));
    f.client->crash_after_writes(2);
    CHECK(f.run(f.client->create(cm, "ns", config_map("ns", "a"))));
    auto refused = f.run(f.client->create(cm, "ns", config_map("ns", "a")));  // not carried out
    REQUIRE_FALSE(refused);
    CHECK_FALSE(f.client->crashed());
    CHECK(f.run(f.client->create(cm, "ns", config_map("ns", "b"))));  // the 2nd: answered
    CHECK(f.client->crashed());
    f.run_until_idle();
    // Its watch ends, and every call fails as Transient, reads included.
    REQUIRE(watch.ended);
    REQUIRE_FALSE(*watch.ended);
    CHECK(watch.ended->error().kind == ErrorKind::kTransient);
    for (auto result : {f.run(f.client->get(cm, "ns", "a")),
                        f.run(f.client->create(cm, "ns", config_map("ns", "c")))}) {
        REQUIRE_FALSE(result);
        CHECK(result.error().kind == ErrorKind::kTransient);
    }
    CHECK_FALSE(f.api.object(cm, "ns", "c"));
    CHECK(f.client->writes_applied() == 2);
    // A new process, a new client, the same objects.
    auto fresh = f.api.client();
    auto listed = f.run(fresh->list(cm, "ns"));
    REQUIRE(listed);
    CHECK(listed->items.size() == 2);
    CHECK(f.run(fresh->create(cm, "ns", config_map("ns", "c"))));
    CHECK(f.api.write_log(true) == std::vector<std::string>{"create configmaps ns/a",
                                                            "create configmaps ns/b",
                                                            "create configmaps ns/c"});
}

TEST_CASE("seed put set_status and remove write around the clients with watch events") {
    Fixture f;
    const auto& deployments = types::deployments();
    Recorder watch;
    watch.start(f, deployments, "ns", watch_from(f.api.resource_version()));
    Json dep = deployment("ns", "web", "app:1");
    dep["status"] = {{"replicas", 1}};
    auto seeded = f.api.seed(deployments, dep);
    REQUIRE(seeded);
    CHECK(seeded->at("status").at("replicas") == 1);  // kept, unlike a create
    CHECK(generation(*seeded) == 1);
    auto status = f.api.set_status(deployments, "ns", "web",
                                   {{"observedGeneration", 1}, {"readyReplicas", 1}});
    REQUIRE(status);
    CHECK(status->at("status").at("readyReplicas") == 1);
    CHECK(version_of(*status) > version_of(*seeded));
    Json replaced = *status;
    replaced["spec"]["replicas"] = 3;
    auto put = f.api.put(deployments, replaced);
    REQUIRE(put);
    CHECK(put->at("spec").at("replicas") == 3);
    CHECK(put->at("metadata").at("uid") == seeded->at("metadata").at("uid"));
    REQUIRE_FALSE(f.api.put(deployments, deployment("ns", "missing", "x:1")));
    Json upserted = deployment("ns", "other", "x:1");
    upserted["metadata"]["resourceVersion"] = "1";
    auto other = f.api.put(deployments, upserted, true);
    REQUIRE(other);
    CHECK(kube::object_resource_version(*other) == f.api.resource_version());
    REQUIRE(f.api.remove(deployments, "ns", "other"));
    REQUIRE(f.api.remove(deployments, "ns", "web"));
    f.run_until_idle();
    CHECK(watch.events == std::vector<std::string>{"ADDED web", "MODIFIED web", "MODIFIED web",
                                                   "ADDED other", "DELETED other", "DELETED web"});
    CHECK(f.api.writes().empty());
    CHECK(f.api.objects(deployments).empty());
}

TEST_CASE("discovery lists the served types and calls on others are NotFound") {
    Fixture f;
    const kube::ResourceType virtual_services{"networking.istio.io", "v1beta1", "virtualservices",
                                              "VirtualService", true};
    auto missing = f.run(f.client->get_raw("/apis/networking.istio.io/v1beta1"));
    REQUIRE_FALSE(missing);
    CHECK(missing.error().kind == ErrorKind::kNotFound);
    auto create = f.run(f.client->create(
        virtual_services, "ns", Json{{"metadata", {{"name", "vs"}}}, {"spec", Json::object()}}));
    REQUIRE_FALSE(create);
    CHECK(create.error().kind == ErrorKind::kNotFound);

    f.api.serve(virtual_services, TypeTraits{});
    auto listed = f.run(f.client->get_raw("/apis/networking.istio.io/v1beta1"));
    REQUIRE(listed);
    Json list = Json::parse(*listed);
    std::vector<std::string> names;
    for (const auto& resource : list.at("resources")) {
        names.push_back(resource.at("name"));
    }
    CHECK(names == std::vector<std::string>{"virtualservices", "virtualservices/status"});
    CHECK(f.run(f.client->create(virtual_services, "ns",
                                 Json{{"metadata", {{"name", "vs"}}}, {"spec", Json::object()}})));
    // autoscaling/v2 does not exist in v1.20; autoscaling/v2beta2 does.
    CHECK_FALSE(f.run(f.client->get_raw("/apis/autoscaling/v2")));
    kube::ResourceType hpa_v2 = types::horizontal_pod_autoscalers();
    hpa_v2.version = "v2";
    auto v2_list = f.run(f.client->list(hpa_v2, "ns"));
    REQUIRE_FALSE(v2_list);
    CHECK(v2_list.error().kind == ErrorKind::kNotFound);
    CHECK(f.run(f.client->get_raw("/apis/autoscaling/v2beta2")));
    auto ready = f.run(f.client->get_raw("/readyz"));
    REQUIRE(ready);
    CHECK(*ready == "ok");
}

// ---- the real Informer and ObjectStore on the fake
// --------------------------------------------------

namespace {

struct InformerRecorder {
    std::vector<std::string> seen;
    kube::EventHandlers handlers() {
        return {
            [this](const kube::ObjectPtr& o) { seen.push_back("add " + kube::object_name(*o)); },
            [this](const kube::ObjectPtr&, const kube::ObjectPtr& o) {
                seen.push_back("update " + kube::object_name(*o));
            },
            [this](const kube::ObjectPtr& o) {
                seen.push_back("delete " + kube::object_name(*o));
            }};
    }
};

std::map<std::string, std::string> cache_state(const kube::Informer& informer) {
    std::map<std::string, std::string> out;
    for (const auto& object : informer.list()) {
        out[kube::object_name(*object)] = kube::object_resource_version(*object);
    }
    return out;
}

std::map<std::string, std::string> server_state(const FakeApiServer& api,
                                                const kube::ResourceType& type,
                                                const std::string& ns) {
    std::map<std::string, std::string> out;
    for (const auto& object : api.objects(type, ns)) {
        out[kube::object_name(object)] = kube::object_resource_version(object);
    }
    return out;
}

}  // namespace

TEST_CASE("the informer lists in pages then watches creates updates and deletes") {
    Fixture f;
    const auto& cm = types::config_maps();
    for (int i = 0; i < 5; ++i) {
        REQUIRE(f.api.seed(cm, config_map("ns", "cm-" + std::to_string(i))));
    }
    REQUIRE(f.api.seed(cm, config_map("other", "not-mine")));
    kube::InformerOptions options;
    options.ns = "ns";
    options.page_size = 2;
    kube::Informer informer(*f.client, f.clock, cm, options);
    InformerRecorder recorder;
    informer.add_handlers(recorder.handlers());
    informer.start(f.io.get_executor());
    f.run_until_idle();
    REQUIRE(informer.has_synced());
    CHECK(informer.size() == 5);
    CHECK(informer.resource_version() == f.api.resource_version());
    CHECK(f.api.open_watches() == 1);
    recorder.seen.clear();

    REQUIRE(f.run(f.client->create(cm, "ns", config_map("ns", "new"))));
    REQUIRE(
        f.run(f.client->patch(cm, "ns", "cm-1", kube::PatchType::kMerge, R"({"data":{"a":"b"}})")));
    REQUIRE(f.run(f.client->remove(cm, "ns", "cm-2")));
    REQUIRE(f.run(f.client->create(cm, "other", config_map("other", "still-not-mine"))));
    f.run_until_idle();
    CHECK(recorder.seen == std::vector<std::string>{"add new", "update cm-1", "delete cm-2"});
    CHECK(cache_state(informer) == server_state(f.api, cm, "ns"));
    CHECK(informer.stats().lists == 1);
    CHECK(informer.stats().events == 3);

    // The server ends the watch after its timeout; the informer watches again from where it
    // was, without a re-list.
    f.clock.advance(std::chrono::seconds{options.watch_timeout_max_seconds});
    f.run_until_idle();
    CHECK(informer.stats().watches == 2);
    CHECK(informer.stats().lists == 1);
    REQUIRE(f.run(f.client->remove(cm, "ns", "cm-3")));
    f.run_until_idle();
    CHECK(recorder.seen.back() == "delete cm-3");

    informer.stop();
    f.run_until_idle();
    CHECK(f.api.open_watches() == 0);
}

TEST_CASE("the informer counts its objects per index value as they come and go") {
    Fixture f;
    const auto& cm = types::config_maps();
    REQUIRE(f.api.seed(cm, config_map("a", "one")));
    REQUIRE(f.api.seed(cm, config_map("a", "two")));
    REQUIRE(f.api.seed(cm, config_map("b", "one")));
    kube::Informer informer(*f.client, f.clock, cm);
    informer.start(f.io.get_executor());
    f.run_until_idle();
    REQUIRE(informer.has_synced());
    using Counts = std::map<std::string, std::size_t>;
    CHECK(informer.count_by_index("namespace") == Counts{{"a", 2}, {"b", 1}});
    CHECK(informer.count_by_index("no such index").empty());

    REQUIRE(f.run(f.client->remove(cm, "b", "one")));
    REQUIRE(f.run(f.client->create(cm, "c", config_map("c", "three"))));
    f.run_until_idle();
    // A namespace whose last object went is not counted as 0: it is gone.
    CHECK(informer.count_by_index("namespace") == Counts{{"a", 2}, {"c", 1}});
    informer.stop();
    f.run_until_idle();
}

TEST_CASE("the informer re-lists after 410 Gone and reports exactly what changed meanwhile") {
    Fixture f;
    const auto& cm = types::config_maps();
    for (int i = 0; i < 4; ++i) {
        REQUIRE(f.api.seed(cm, config_map("ns", "cm-" + std::to_string(i))));
    }
    kube::Informer informer(*f.client, f.clock, cm);
    InformerRecorder recorder;
    informer.add_handlers(recorder.handlers());
    informer.start(f.io.get_executor());
    f.run_until_idle();
    REQUIRE(informer.has_synced());
    recorder.seen.clear();

    // The watch drops; while it is down objects change and the history is compacted, so the
    // informer's resourceVersion is too old to watch from.
    f.api.end_watches();
    REQUIRE(f.api.put(cm, config_map("ns", "cm-0", {{"changed", "yes"}})));
    REQUIRE(f.api.remove(cm, "ns", "cm-1"));
    REQUIRE(f.api.seed(cm, config_map("ns", "cm-9")));
    f.api.compact();
    f.run_until_idle();

    CHECK(informer.stats().relists_after_gone == 1);
    CHECK(informer.stats().lists == 2);
    std::sort(recorder.seen.begin(), recorder.seen.end());
    CHECK(recorder.seen == std::vector<std::string>{"add cm-9", "delete cm-1", "update cm-0"});
    CHECK(cache_state(informer) == server_state(f.api, cm, "ns"));
    CHECK(f.api.open_watches() == 1);
    informer.stop();
    f.run_until_idle();
}

TEST_CASE("a compact informer serves the objects the server holds and counts their encoded bytes") {
    Fixture f;
    const auto& cm = types::config_maps();
    // Every kind of JSON value, since the cache keeps an encoding and decodes it when read.
    Json odd = config_map("ns", "odd", {{"text", "caf\u00e9 \u2603 \"quoted\""}});
    odd["metadata"]["annotations"] = {{"serin.dev/x", "y"}};
    odd["extra"] = {{"int", -42},
                    {"big", std::uint64_t{18446744073709551615ULL}},
                    {"float", 1.5},
                    {"whole-float", 2.0},
                    {"null", nullptr},
                    {"bools", {true, false}},
                    {"nested", {{"a", {1, {{"b", Json::array()}}}}}}};
    REQUIRE(f.api.seed(cm, odd));
    REQUIRE(f.api.seed(cm, config_map("ns", "plain", {{"k", "v"}})));

    kube::Informer compact(*f.client, f.clock, cm);
    kube::InformerOptions trees_options;
    trees_options.compact = false;
    kube::Informer trees(*f.client, f.clock, cm, trees_options);
    compact.start(f.io.get_executor());
    trees.start(f.io.get_executor());
    f.run_until_idle();
    REQUIRE(compact.has_synced());
    REQUIRE(trees.has_synced());

    for (const char* name : {"odd", "plain"}) {
        INFO(name);
        const kube::ObjectPtr decoded = compact.get("ns", name);
        REQUIRE(decoded);
        CHECK(*decoded == *trees.get("ns", name));
        // Types survive the round trip: a float that is whole stays a float.
        CHECK(decoded->dump() == trees.get("ns", name)->dump());
    }
    CHECK(compact.get("ns", "odd")->at("extra").at("whole-float").is_number_float());
    CHECK(compact.get("ns", "odd")->at("extra").at("big").get<std::uint64_t>() ==
          18446744073709551615ULL);

    // While a reader holds an object, readers share it instead of decoding it again.
    const kube::ObjectPtr held = compact.get("ns", "plain");
    CHECK(compact.get("ns", "plain").get() == held.get());
    CHECK(compact.by_index("namespace", "ns").size() == 2);

    // The encodings are counted, and are no larger than the JSON text.
    const kube::CacheSize two = compact.cache_size();
    CHECK(two.objects == 2);
    CHECK(two.encoded_bytes > 0);
    CHECK(two.encoded_bytes <= compact.get("ns", "odd")->dump().size() + held->dump().size());
    CHECK(trees.cache_size().encoded_bytes == 0);

    // An update replaces the encoding (the handlers see the old and the new object), a delete
    // removes it from the count.
    std::vector<std::pair<std::string, std::string>> updates;
    compact.add_handlers({nullptr,
                          [&](const kube::ObjectPtr& before, const kube::ObjectPtr& after) {
                              updates.emplace_back(before->at("data").dump(),
                                                   after->at("data").dump());
                          },
                          nullptr});
    REQUIRE(f.run(
        f.client->patch(cm, "ns", "plain", kube::PatchType::kMerge, R"({"data":{"k":"w"}})")));
    f.run_until_idle();
    REQUIRE(updates.size() == 1);
    CHECK(updates[0] == std::pair<std::string, std::string>{R"({"k":"v"})", R"({"k":"w"})"});
    CHECK(compact.get("ns", "plain")->at("data").at("k") == "w");
    CHECK(held->at("data").at("k") == "v");  // a reader's copy is its own
    REQUIRE(f.run(f.client->remove(cm, "ns", "odd")));
    f.run_until_idle();
    CHECK(compact.cache_size().objects == 1);
    CHECK(compact.cache_size().encoded_bytes < two.encoded_bytes);
    CHECK(compact.get("ns", "odd") == nullptr);
    compact.stop();
    trees.stop();
    f.run_until_idle();
}

namespace {

struct StoreCheck {
    bool done = false;
    bool informer_was_behind = false;
    std::string read_image;
    std::size_t overlaid = 0;
};

std::string image_of(const Json& deployment) {
    return deployment.at("spec").at("template").at("spec").at("containers")[0].at("image");
}

/// Updates the Deployment the store serves, tells the store, and reads it back before the
/// informer can have seen the event (it is delivered after the update returns).
asio::awaitable<void> update_and_read(FakeKubeClient* client, const kube::Informer* informer,
                                      kube::ObjectStore* store, StoreCheck* out) {
    const auto& deployments = types::deployments();
    kube::ObjectPtr live = store->get(deployments, "ns", "web");
    Json changed = *live;
    changed["spec"]["template"]["spec"]["containers"][0]["image"] = "app:2";
    auto written = co_await client->update(deployments, "ns", changed);
    if (!written) {
        co_return;
    }
    out->informer_was_behind = kube::object_resource_version(*informer->get("ns", "web")) ==
                               kube::object_resource_version(*live);
    store->wrote(deployments, *written);
    out->read_image = image_of(*store->get(deployments, "ns", "web"));
    out->overlaid = store->overlaid();
    out->done = true;
}

/// Deployment "ns/web" (app:1) served by a synced informer through an ObjectStore.
struct StoredWeb {
    explicit StoredWeb(Fixture& f) : fixture(f) {
        REQUIRE(f.api.seed(types::deployments(), deployment("ns", "web", "app:1")));
        store.add(informer);
        informer.start(f.io.get_executor());
        f.run_until_idle();
        REQUIRE(store.synced());
    }
    ~StoredWeb() {
        informer.stop();
        fixture.run_until_idle();
    }
    StoredWeb(const StoredWeb&) = delete;
    StoredWeb& operator=(const StoredWeb&) = delete;

    Fixture& fixture;
    kube::Informer informer{*fixture.client, fixture.clock, types::deployments()};
    kube::ObjectStore store{fixture.clock};
};

}  // namespace

TEST_CASE("ObjectStore reads its own writes through wrote until the informer catches up") {
    Fixture f;
    const auto& deployments = types::deployments();
    StoredWeb web(f);
    kube::Informer& informer = web.informer;
    kube::ObjectStore& store = web.store;

    StoreCheck check;
    asio::co_spawn(f.io, update_and_read(f.client.get(), &informer, &store, &check),
                   [](std::exception_ptr e) {
                       if (e) {
                           std::rethrow_exception(e);
                       }
                   });
    f.run_until_idle();
    REQUIRE(check.done);
    CHECK(check.informer_was_behind);
    CHECK(check.read_image == "app:2");
    CHECK(check.overlaid == 1);
    // The informer's own event for the write let go of the overlay, before any read.
    CHECK(store.overlaid() == 0);
    CHECK(image_of(*store.get(deployments, "ns", "web")) == "app:2");
}

TEST_CASE("ObjectStore keeps no write the informer has already delivered, nor a copy of any") {
    Fixture f;
    const auto& deployments = types::deployments();
    StoredWeb web(f);
    kube::ObjectStore& store = web.store;
    const kube::ObjectPtr cached = web.informer.get("ns", "web");
    REQUIRE(cached != nullptr);
    // The watch delivered this version before the write's answer was read: nothing to overlay.
    store.wrote(deployments, std::make_shared<const Json>(*cached));
    CHECK(store.overlaid() == 0);
    // An older version than the cache's is not overlaid either.
    Json older = *cached;
    older["metadata"]["resourceVersion"] = "1";
    store.wrote(deployments, older);
    CHECK(store.overlaid() == 0);
    // A newer one is, and is the very object written (shared with the writer, not copied).
    auto newer = std::make_shared<Json>(*cached);
    (*newer)["metadata"]["resourceVersion"] = "999999";
    (*newer)["spec"]["template"]["spec"]["containers"][0]["image"] = "app:3";
    const kube::ObjectPtr written = newer;
    store.wrote(deployments, written);
    CHECK(store.overlaid() == 1);
    CHECK(store.get(deployments, "ns", "web") == written);
}

TEST_CASE("ObjectStore lets go of a delete once the informer sees the object gone") {
    Fixture f;
    const auto& deployments = types::deployments();
    StoredWeb web(f);
    kube::ObjectStore& store = web.store;
    REQUIRE(f.api.remove(deployments, "ns", "web"));
    store.deleted(deployments, "ns", "web");
    CHECK(store.overlaid() == 1);
    CHECK(store.get(deployments, "ns", "web") == nullptr);
    f.run_until_idle();
    CHECK(store.overlaid() == 0);  // the informer's delete event let go of it
}

TEST_CASE("ObjectStore lets go of a write nobody reads again once its time is over") {
    Fixture f;
    const auto& deployments = types::deployments();
    kube::Informer informer(*f.client, f.clock, deployments);
    kube::ObjectStore store(f.clock, std::chrono::seconds{30});
    store.add(informer);
    // Written and never read again (a Service created once, say): before, held for good.
    Json written = deployment("ns", "once", "app:1");
    written["metadata"]["resourceVersion"] = "7";
    store.wrote(deployments, written);
    store.deleted(deployments, "ns", "gone");
    CHECK(store.overlaid() == 2);
    f.clock.advance(std::chrono::seconds{20});
    Json again = deployment("ns", "again", "app:1");
    again["metadata"]["resourceVersion"] = "8";
    store.wrote(deployments, again);
    CHECK(store.overlaid() == 3);  // none is 30 s old yet
    // "again" is written a second time later: its first turn must not drop the second write.
    f.clock.advance(std::chrono::seconds{11});
    store.wrote(deployments, again);
    CHECK(store.overlaid() == 1);  // "once" and "gone" are over; "again" stays
    CHECK(store.get(deployments, "ns", "again") != nullptr);
    f.clock.advance(std::chrono::seconds{25});
    store.deleted(deployments, "ns", "other");
    CHECK(store.overlaid() == 2);  // the second "again" is 25 s old: it stays
    f.clock.advance(std::chrono::seconds{6});
    CHECK(store.get(deployments, "ns", "missing") == nullptr);
    CHECK(store.overlaid() == 1);  // a read lets go of the old ones too
}

TEST_CASE("a metadata-only informer of Secrets holds no data") {
    Fixture f;
    Json secret = {{"apiVersion", "v1"},
                   {"kind", "Secret"},
                   {"metadata", {{"name", "s"}, {"namespace", "ns"}}},
                   {"data", {{"token", "aGk="}}}};
    REQUIRE(f.api.seed(types::secrets(), secret));
    kube::InformerOptions options;
    options.metadata_only = true;
    kube::Informer informer(*f.client, f.clock, types::secrets(), options);
    informer.start(f.io.get_executor());
    f.run_until_idle();
    REQUIRE(informer.size() == 1);
    REQUIRE(f.run(f.client->patch(types::secrets(), "ns", "s", kube::PatchType::kMerge,
                                  R"({"stringData":{"token":"new"}})")));
    f.run_until_idle();
    auto cached = informer.get("ns", "s");
    REQUIRE(cached);
    CHECK_FALSE(cached->contains("data"));
    CHECK(cached->at("metadata").at("resourceVersion") == f.api.resource_version());
    CHECK(kube::secret_data(*f.api.object(types::secrets(), "ns", "s"), "token") == "new");
    informer.stop();
    f.run_until_idle();
}

TEST_CASE("each watch request asks for 5 to 10 minutes, drawn anew, the same from the same seed") {
    // The draws: within the range, spread over it, reproducible from a seed.
    std::mt19937_64 a(7);
    std::mt19937_64 b(7);
    std::set<std::int64_t> drawn;
    for (int i = 0; i < 2000; ++i) {
        const std::int64_t x = kube::draw_watch_timeout(a, 300, 600);
        REQUIRE(x >= 300);
        REQUIRE(x <= 600);
        REQUIRE(x == kube::draw_watch_timeout(b, 300, 600));
        drawn.insert(x);
    }
    CHECK(drawn.size() > 250);
    std::mt19937_64 c(1);
    const std::int64_t reversed = kube::draw_watch_timeout(c, 600, 300);
    CHECK((reversed >= 300 && reversed <= 600));
    CHECK(kube::draw_watch_timeout(c, 0, 0) == 1);

    // An informer on the fake: the timeout each watch request carries, and the renewal when
    // the server ends the watch after it (not before).
    Fixture f;
    const auto& cm = types::config_maps();
    kube::InformerOptions options;
    options.ns = "ns";
    options.watch_timeout_seed = 42;
    kube::Informer informer(*f.client, f.clock, cm, options);
    informer.start(f.io.get_executor());
    f.run_until_idle();
    REQUIRE(informer.has_synced());
    REQUIRE(informer.stats().watches == 1);
    const std::int64_t first = informer.last_watch_timeout();
    CHECK(first >= 300);
    CHECK(first <= 600);
    f.clock.advance(std::chrono::seconds{first - 1});
    f.run_until_idle();
    CHECK(informer.stats().watches == 1);
    f.clock.advance(std::chrono::seconds{1});
    f.run_until_idle();
    CHECK(informer.stats().watches == 2);
    CHECK(informer.last_watch_timeout() >= 300);
    CHECK(informer.last_watch_timeout() <= 600);
    CHECK(informer.stats().lists == 1);

    kube::Informer twin(*f.client, f.clock, cm, options);
    twin.start(f.io.get_executor());
    f.run_until_idle();
    CHECK(twin.last_watch_timeout() == first);
    informer.stop();
    twin.stop();
    f.run_until_idle();
}
