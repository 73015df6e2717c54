// Whole releases through the mesh routers on the devcluster: the real serin binary writes the
// Istio, SMI and Gateway API objects (real CRDs); at every step the weight the routing object
// holds is the status' canaryWeight.
#include <catch2/catch.hpp>

#include <set>

#include "meshes/common/route_types.hpp"
#include "tests/e2e/e2e.hpp"

namespace {

using namespace serin::e2e;
namespace types = serin::kube::types;
namespace route_types = serin::meshes::route_types;

const std::string kV1 = "ghcr.io/stefanprodan/podinfo:6.0.0";
const std::string kV2 = "ghcr.io/stefanprodan/podinfo:6.0.1";

int as_int(const Json& weight) {
    if (weight.is_number()) {
        return weight.get<int>();
    }
    if (weight.is_string()) {
        return std::stoi(weight.get<std::string>());  // SMI v1alpha1: a Quantity
    }
    return 0;  // absent
}

/// The routing object a provider's weights live in, and the canary weight it holds, read with
/// JSON pointers here rather than with the routers' own parsers.
struct Mesh {
    std::string provider;
    serin::kube::ResourceType type;

    /// The canary Service's weight in the route that also holds the primary.
    int canary_weight(const Json& object) const {
        const Json& spec = object["spec"];
        if (type.kind == "VirtualService") {
            for (const char* kind : {"http", "tcp"}) {
                for (const Json& route : spec.value(kind, Json::array())) {
                    for (const Json& d : route.value("route", Json::array())) {
                        if (d["destination"]["host"] == "podinfo-canary") {
                            return as_int(d.value("weight", Json()));
                        }
                    }
                }
            }
        } else if (type.kind == "TrafficSplit") {
            for (const Json& b : spec.value("backends", Json::array())) {
                if (b["service"] == "podinfo-canary") {
                    return as_int(b.value("weight", Json()));
                }
            }
        } else {
            for (const Json& rule : spec.value("rules", Json::array())) {
                for (const Json& b : rule.value("backendRefs", Json::array())) {
                    if (b["name"] == "podinfo-canary") {
                        return as_int(b.value("weight", Json()));
                    }
                }
            }
        }
        return -1;  // no canary backend at all
    }
};

Json service_for(const Mesh& mesh) {
    Json service = {{"port", 80}, {"targetPort", "http"}};
    if (mesh.type.kind == "HTTPRoute" || mesh.type.kind == "GRPCRoute") {
        service["gatewayRefs"] = Json::array({{{"name", "public"}, {"namespace", "gateways"}}});
        service["hosts"] = Json::array({"podinfo.example.com"});
    }
    if (mesh.type.kind == "GRPCRoute") {
        service["appProtocol"] = "grpc";  // gatewayapi:v1 then writes a GRPCRoute
    }
    return service;
}

int weight_of(const Json& canary) {
    const Json w = at(canary, "/status/canaryWeight");
    return w.is_number() ? w.get<int>() : 0;
}

/// A release at stepWeight 10 up to 50, then promotion; at each step the routing object is read
/// between two reads of the canary that agree, and must hold the status' weight.
void stepped_release(const Mesh& mesh) {
    INFO("provider " << mesh.provider);
    Scenario s;
    s.start_serin();
    const Json analysis = {{"interval", "2s"}, {"threshold", 2}, {"stepWeight", 10}, {"maxWeight", 50}};
    Json extra = {{"provider", mesh.provider}, {"service", service_for(mesh)}};
    s.create(types::deployments(), s.deployment(kV1));
    s.create(types::canaries(), s.canary(analysis, extra));
    s.wait_phase("Initialized");
    CHECK(mesh.canary_weight(s.get(mesh.type, "podinfo")) == 0);

    s.bump_image(kV2);
    std::set<int> seen;
    for (int step = 10; step <= 50; step += 10) {
        s.wait_canary(
            [&](const Json& c) {
                const std::string p = phase(c);
                return (p == "Progressing" && weight_of(c) >= step) || p == "Promoting" ||
                       p == "Finalising" || p == "Succeeded" || p == "Failed";
            },
            "canary weight " + std::to_string(step));
        const Json before = s.get(types::canaries(), "podinfo");
        const Json route = s.get(mesh.type, "podinfo");
        const Json after = s.get(types::canaries(), "podinfo");
        if (at(before, "/metadata/resourceVersion") != at(after, "/metadata/resourceVersion") ||
            phase(before) != "Progressing") {
            continue;  // the canary moved on while we looked; the next step is checked
        }
        INFO("status weight " << weight_of(before) << ", route " << route["spec"].dump());
        CHECK(mesh.canary_weight(route) == weight_of(before));
        seen.insert(weight_of(before));
    }
    CHECK(seen == std::set<int>{10, 20, 30, 40, 50});

    s.wait_phase("Succeeded");
    CHECK(mesh.canary_weight(s.get(mesh.type, "podinfo")) == 0);
    CHECK(image_of(s.get(types::deployments(), "podinfo-primary")) == kV2);
}

}  // namespace

TEST_CASE("istio: a canary release steps the VirtualService weights to promotion") {
    stepped_release(Mesh{"istio", route_types::istio_virtual_services()});
}

TEST_CASE("linkerd: a canary release steps the v1alpha1 TrafficSplit weights to promotion") {
    stepped_release(Mesh{"linkerd", route_types::smi_traffic_splits("v1alpha1")});
}

TEST_CASE("smi:v1alpha3: a canary release steps the TrafficSplit weights to promotion") {
    stepped_release(Mesh{"smi:v1alpha3:linkerd", route_types::smi_traffic_splits("v1alpha3")});
}

TEST_CASE("gatewayapi:v1: a canary release steps the HTTPRoute weights to promotion") {
    stepped_release(Mesh{"gatewayapi:v1", route_types::gateway_http_routes("v1")});
}

TEST_CASE("gatewayapi:v1 with appProtocol grpc: a canary release steps the GRPCRoute weights to promotion") {
    stepped_release(Mesh{"gatewayapi:v1", route_types::gateway_grpc_routes()});
}

TEST_CASE("gatewayapi:v1: a user's HTTPRoute rule survives a whole release and the original rules come back on deletion") {
    Scenario s;
    s.start_serin();
    const Mesh mesh{"gatewayapi:v1", route_types::gateway_http_routes("v1")};
    const Json admin = Json::parse(R"({
        "matches": [{"path": {"type": "PathPrefix", "value": "/admin"}}],
        "backendRefs": [{"group": "", "kind": "Service", "name": "admin", "port": 8080, "weight": 1}]})");
    const Json apex = Json::parse(R"({
        "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
        "backendRefs": [{"group": "", "kind": "Service", "name": "podinfo", "port": 80, "weight": 1}]})");
    const Json original = {
        {"parentRefs", Json::array({{{"group", "gateway.networking.k8s.io"}, {"kind", "Gateway"},
                                     {"name", "public"}, {"namespace", "gateways"}}})},
        {"hostnames", Json::array({"podinfo.example.com"})},
        {"rules", Json::array({admin, apex})}};
    s.create(mesh.type, {{"apiVersion", mesh.type.api_version()}, {"kind", mesh.type.kind},
                         {"metadata", {{"name", "podinfo"}}}, {"spec", original}});
    const Json analysis = {{"interval", "2s"}, {"threshold", 2}, {"stepWeight", 25}, {"maxWeight", 50}};
    s.create(types::deployments(), s.deployment(kV1));
    s.create(types::canaries(), s.canary(analysis, {{"provider", mesh.provider},
                                                    {"revertOnDeletion", true},
                                                    {"service", service_for(mesh)}}));
    s.wait_phase("Initialized");
    const Json taken = s.get(mesh.type, "podinfo");
    REQUIRE(at(taken, "/spec/rules").size() == 2);
    CHECK(at(taken, "/spec/rules/0") == admin);
    CHECK(at(taken, "/spec/rules/1/backendRefs/0/name") == "podinfo-primary");
    CHECK(at(taken, "/spec/rules/1/backendRefs/1/name") == "podinfo-canary");

    s.bump_image(kV2);
    const Json mid = s.wait_object(
        mesh.type, "podinfo", [&](const Json& r) { return mesh.canary_weight(r) == 50; },
        "the canary at 50%");
    CHECK(at(mid, "/spec/rules/0") == admin);
    s.wait_phase("Succeeded");
    const Json done = s.get(mesh.type, "podinfo");
    CHECK(at(done, "/spec/rules/0") == admin);
    CHECK(mesh.canary_weight(done) == 0);

    s.remove(types::canaries(), "podinfo");
    const Json reverted = s.wait_object(
        mesh.type, "podinfo",
        [](const Json& r) { return at(r, "/spec/rules/1/backendRefs/0/name") == "podinfo"; },
        "the original rules back");
    CHECK(reverted["spec"] == original);
}

TEST_CASE("istio: an A/B release routes the matching requests to the canary") {
    Scenario s;
    s.start_serin();
    const Json match = Json::array({{{"headers", {{"x-canary", {{"exact", "insider"}}}}}}});
    const Json analysis = {{"interval", "1s"}, {"threshold", 2}, {"iterations", 3}, {"match", match}};
    s.create(types::deployments(), s.deployment(kV1));
    s.create(types::canaries(), s.canary(analysis, {{"provider", "istio"}}));
    s.wait_phase("Initialized");
    s.bump_image(kV2);
    s.wait_phase("Progressing");
    const Json vs = s.wait_object(
        route_types::istio_virtual_services(), "podinfo",
        [](const Json& v) { return at(v, "/spec/http/0/route/1/weight") == 100; },
        "the A/B route sending the match to the canary");
    CHECK(at(vs, "/spec/http/0/match/0/headers/x-canary/exact") == "insider");
    CHECK(at(vs, "/spec/http/0/route/1/destination/host") == "podinfo-canary");
    CHECK(at(vs, "/spec/http/0/route/0/weight") == 0);
    // Everyone else stays on the primary.
    CHECK(at(vs, "/spec/http/1/match").is_null());
    CHECK(at(vs, "/spec/http/1/route").size() == 1);
    CHECK(at(vs, "/spec/http/1/route/0/destination/host") == "podinfo-primary");
    s.wait_phase("Succeeded");
    const Json done = s.get(route_types::istio_virtual_services(), "podinfo");
    CHECK(at(done, "/spec/http/0/route/0/weight") == 100);
    CHECK(at(done, "/spec/http/0/route/1/weight") == 0);
}

TEST_CASE("gatewayapi:v1: an A/B release routes the matching requests to the canary") {
    Scenario s;
    s.start_serin();
    const Json match = Json::array({{{"headers", {{"x-canary", {{"exact", "insider"}}}}}}});
    const Json analysis = {{"interval", "1s"}, {"threshold", 2}, {"iterations", 3}, {"match", match}};
    const Mesh mesh{"gatewayapi:v1", route_types::gateway_http_routes("v1")};
    s.create(types::deployments(), s.deployment(kV1));
    s.create(types::canaries(),
             s.canary(analysis, {{"provider", mesh.provider}, {"service", service_for(mesh)}}));
    s.wait_phase("Initialized");
    s.bump_image(kV2);
    s.wait_phase("Progressing");
    const Json route = s.wait_object(
        mesh.type, "podinfo",
        [](const Json& r) { return at(r, "/spec/rules/0/backendRefs/1/weight") == 100; },
        "the A/B rule sending the match to the canary");
    const Json header = at(route, "/spec/rules/0/matches/0/headers/0");
    CHECK(header["name"] == "x-canary");
    CHECK(header["value"] == "insider");
    CHECK(at(route, "/spec/rules/0/backendRefs/1/name") == "podinfo-canary");
    CHECK(at(route, "/spec/rules/1/backendRefs").size() == 1);
    CHECK(at(route, "/spec/rules/1/backendRefs/0/name") == "podinfo-primary");
    s.wait_phase("Succeeded");
    CHECK(mesh.canary_weight(s.get(mesh.type, "podinfo")) == 0);
}

TEST_CASE("istio: a blue/green release mirrors traffic to the canary, then switches, then promotes") {
    Scenario s;
    s.start_serin();
    const Json analysis = {{"interval", "1s"}, {"threshold", 2}, {"iterations", 4},
                           {"mirror", true},   {"mirrorWeight", 50}};
    s.create(types::deployments(), s.deployment(kV1));
    s.create(types::canaries(), s.canary(analysis, {{"provider", "istio"}}));
    s.wait_phase("Initialized");
    s.bump_image(kV2);
    const auto vs_type = route_types::istio_virtual_services();
    const Json mirrored = s.wait_object(
        vs_type, "podinfo", [](const Json& v) { return !at(v, "/spec/http/0/mirror").is_null(); },
        "mirroring to the canary");
    CHECK(at(mirrored, "/spec/http/0/mirror/host") == "podinfo-canary");
    CHECK(at(mirrored, "/spec/http/0/mirrorPercentage/value") == 50);
    CHECK(at(mirrored, "/spec/http/0/route/0/weight") == 100);  // users still see the primary
    CHECK(at(mirrored, "/spec/http/0/route/1/weight") == 0);
    const Json switched = s.wait_object(
        vs_type, "podinfo",
        [](const Json& v) { return at(v, "/spec/http/0/route/1/weight") == 100; },
        "all traffic to the canary after the last iteration");
    CHECK(at(switched, "/spec/http/0/mirror").is_null());
    s.wait_event("Stop traffic mirroring and route all traffic to canary");
    s.wait_phase("Succeeded");
    const Json done = s.get(vs_type, "podinfo");
    CHECK(at(done, "/spec/http/0/route/0/weight") == 100);
    CHECK(at(done, "/spec/http/0/mirror").is_null());
    CHECK(image_of(s.get(types::deployments(), "podinfo-primary")) == kV2);
}

TEST_CASE("istio: an edit to the VirtualService mid-analysis is repaired without resetting the weights") {
    Scenario s;
    s.start_serin();
    const Json analysis = {{"interval", "3s"}, {"threshold", 2}, {"stepWeight", 10}, {"maxWeight", 50}};
    const Mesh mesh{"istio", route_types::istio_virtual_services()};
    s.create(types::deployments(), s.deployment(kV1));
    s.create(types::canaries(), s.canary(analysis, {{"provider", "istio"}}));
    s.wait_phase("Initialized");
    s.bump_image(kV2);
    s.wait_canary([](const Json& c) { return phase(c) == "Progressing" && weight_of(c) >= 20; },
                  "the analysis at 20%");

    // Someone (a GitOps tool, a person) edits the route: a field Serin owns and one it does not.
    s.patch(mesh.type, "podinfo",
            {{"metadata", {{"annotations", {{"example.com/edited-by", "ops"}}}}},
             {"spec", {{"gateways", Json::array({"someone-elses-gateway"})}}}});
    const Json repaired = s.wait_object(
        mesh.type, "podinfo",
        [](const Json& v) { return at(v, "/spec/gateways/0") == "mesh"; },
        "the VirtualService repaired");
    CHECK(at(repaired, "/metadata/annotations/example.com~1edited-by") == "ops");
    const int weight = mesh.canary_weight(repaired);
    CHECK(weight >= 20);  // Flagger would have reset it to 0 here
    CHECK(weight == weight_of(s.get(types::canaries(), "podinfo")));
    s.wait_phase("Succeeded");
}

TEST_CASE("gatewayapi:v1 without gatewayRefs is refused with a condition and a Warning Event") {
    Scenario s;
    s.start_serin();
    s.create(types::deployments(), s.deployment(kV1));
    s.create(types::canaries(),
             s.canary({{"interval", "1s"}, {"threshold", 2}, {"stepWeight", 10}},
                      {{"provider", "gatewayapi:v1"}}));
    const Json refused = s.wait_canary(
        [](const Json& c) {
            const Json* accepted = serin::testing::find_condition(c, "Accepted");
            return accepted != nullptr && (*accepted)["status"] == "False";
        },
        "Accepted=False");
    const Json* accepted = serin::testing::find_condition(refused, "Accepted");
    CHECK((*accepted)["message"].get<std::string>().find("spec.service.gatewayRefs") !=
          std::string::npos);
    s.wait_event("spec.service.gatewayRefs");
}

TEST_CASE("istio: session affinity keeps the canary's users on it and expires their cookie after promotion") {
    Scenario s;
    s.start_serin();
    const Json analysis = {{"interval", "2s"},
                           {"threshold", 2},
                           {"stepWeight", 20},
                           {"maxWeight", 40},
                           {"sessionAffinity", {{"cookieName", "flagger-cookie"}, {"maxAge", 600}}}};
    const auto vs_type = route_types::istio_virtual_services();
    s.create(types::deployments(), s.deployment(kV1));
    s.create(types::canaries(), s.canary(analysis, {{"provider", "istio"}}));
    s.wait_phase("Initialized");
    s.bump_image(kV2);

    // The reconciler makes the cookie and keeps it in the status; the VirtualService routes by it.
    const Json progressing = s.wait_canary(
        [](const Json& c) { return at(c, "/status/sessionAffinityCookie").is_string(); },
        "a session affinity cookie in the status");
    const std::string cookie = at(progressing, "/status/sessionAffinityCookie");
    REQUIRE(cookie.starts_with("flagger-cookie="));
    CHECK(cookie.size() == std::string("flagger-cookie=").size() + 10);
    const std::string value = cookie.substr(cookie.find('=') + 1);
    const Json sticky = s.get(vs_type, "podinfo");
    CHECK(at(sticky, "/spec/http/0/match/0/headers/Cookie/regex") ==
          ".*flagger-cookie.*" + value + ".*");
    CHECK(at(sticky, "/spec/http/0/route/1/weight") == 100);  // sticky users: all canary
    CHECK(at(sticky, "/spec/http/1/route/1/headers/response/add/Set-Cookie") ==
          cookie + "; Max-Age=600");

    // After promotion the cookie is retired and expired by the route.
    const Json done = s.wait_phase("Succeeded");
    CHECK(at(done, "/status/previousSessionAffinityCookie") == cookie);
    CHECK(at(done, "/status/sessionAffinityCookie").is_null());
    const Json expiring = s.get(vs_type, "podinfo");
    CHECK(at(expiring, "/spec/http/0/headers/response/add/Set-Cookie") == cookie + "; Max-Age=-1");
    CHECK(at(expiring, "/spec/http/0/route/0/destination/host") == "podinfo-primary");
    CHECK(Mesh{"istio", vs_type}.canary_weight(expiring) == 0);
}
