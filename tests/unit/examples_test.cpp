// Every Canary in examples/ is valid and its provider's router can build its routing objects for
// each step of its strategy: the examples are manifests users copy, so they must work.
#include <catch2/catch.hpp>
#include <filesystem>
#include <limits>
#include <optional>

#include "analysis/release.hpp"
#include "analysis/validate.hpp"
#include "meshes/common/route_object.hpp"
#include "meshes/apisix/apisix_router.hpp"
#include "meshes/appmesh/appmesh_router.hpp"
#include "meshes/contour/contour_router.hpp"
#include "meshes/gatewayapi/gatewayapi_router.hpp"
#include "meshes/gloo/gloo_router.hpp"
#include "meshes/istio/istio_router.hpp"
#include "meshes/knative/knative_router.hpp"
#include "meshes/kuma/kuma_router.hpp"
#include "meshes/nginx/nginx_router.hpp"
#include "meshes/skipper/skipper_router.hpp"
#include "meshes/smi/smi_router.hpp"
#include "meshes/traefik/traefik_router.hpp"
#include "tests/support/golden.hpp"

namespace {

namespace fs = std::filesystem;
using serin::analysis::Routes;
using Json = nlohmann::json;
using serin::Result;

/// The routes a release of `canary` passes through (flagger-spec §2.4-§2.6).
std::vector<Routes> steps(const serin::api::Canary& canary) {
    const auto& analysis = *canary.spec.analysis;
    if (analysis.iterations > 0 && (analysis.match.is_null() || analysis.match.empty())) {
        return {{100, 0, analysis.mirror}, {0, 100, false}, {100, 0, false}};  // blue/green
    }
    if (analysis.iterations > 0) {
        return {{0, 100, false}, {100, 0, false}};  // A/B
    }
    return {{90, 10, false}, {50, 50, false}, {100, 0, false}};
}

/// Knative: the example Service, initialized by Serin and applied by Knative, gets spec.traffic
/// for `routes`, which reads back once Knative reports it in status.traffic.
std::string knative_step(const Routes& routes) {
    Json service = serin::testing::load_document("examples/knative/service.yaml");
    service["metadata"]["generation"] = 1;
    service["status"] =
        Json{{"observedGeneration", 1}, {"latestCreatedRevisionName", "podinfo-00002"}};
    service["metadata"]["annotations"][std::string(serin::meshes::kPrimaryRevisionAnnotation)] =
        "podinfo-00001";
    auto patch = serin::meshes::knative_traffic_patch(service, routes);
    if (!patch) {
        return patch.error().message;
    }
    REQUIRE(patch->has_value());
    service["spec"].merge_patch(Json::parse(**patch)["spec"]);
    Json traffic = service["spec"]["traffic"];
    traffic[0]["revisionName"] = "podinfo-00002";  // Knative resolves latestRevision
    service["status"]["traffic"] = traffic;
    Routes plain = routes;
    plain.mirrored = false;
    CHECK(serin::meshes::knative_routes(service).value() == plain);
    return {};
}

/// Builds the routing objects for `routes`; the error message when the router refuses.
std::string build(const serin::meshes::RouteContext& context, const Routes& routes) {
    const std::string& provider = context.provider;
    if (provider == "istio") {
        auto vs = serin::meshes::build_virtual_service(context, routes);
        if (!vs) {
            return vs.error().message;
        }
        auto read = serin::meshes::virtual_service_routes(context, *vs);
        CHECK(read.has_value());
        if (read && routes.canary + routes.primary > 0) {
            CHECK(*read == routes);
        }
        CHECK(serin::meshes::build_destination_rules(context).size() == 2);
    } else if (provider.starts_with("gatewayapi:")) {
        const bool grpc = provider == "gatewayapi:v1" &&
                          serin::meshes::grpc_service(context.canary.spec.service);
        auto route = grpc ? serin::meshes::build_grpc_route(context, routes)
                          : serin::meshes::build_http_route(context, routes, provider.substr(11));
        if (!route) {
            return route.error().message;
        }
        auto read = serin::meshes::http_route_routes(context, *route);
        REQUIRE(read.has_value());
        CHECK(*read == routes);
    } else if (provider == "linkerd" || provider.starts_with("smi:")) {
        const auto flavour = serin::meshes::smi_flavour(provider);
        REQUIRE(flavour.has_value());
        Routes plain = routes;
        plain.mirrored = false;
        const Json split = serin::meshes::build_traffic_split(context, plain, *flavour);
        CHECK(serin::meshes::traffic_split_routes(context, split).value() == plain);
    } else if (provider == "contour") {
        auto proxy = serin::meshes::build_http_proxy(context, routes, "");
        if (!proxy) {
            return proxy.error().message;
        }
        Routes plain = routes;
        plain.mirrored = false;
        CHECK(serin::meshes::http_proxy_routes(context, *proxy).value() == plain);
    } else if (provider.starts_with("gloo")) {
        auto table = serin::meshes::build_route_table(context, routes);
        if (!table) {
            return table.error().message;
        }
        Routes plain = routes;
        plain.mirrored = false;
        CHECK(serin::meshes::route_table_routes(context, *table).value() == plain);
    } else if (provider == "traefik") {
        auto service = serin::meshes::build_traefik_service(context, routes);
        if (!service) {
            return service.error().message;
        }
        Routes plain = routes;
        plain.mirrored = false;
        CHECK(serin::meshes::traefik_service_routes(context, *service).value() == plain);
    } else if (provider == "knative") {
        CHECK(knative_step(routes) == "");
    } else if (provider == "kuma") {
        auto route = serin::meshes::build_traffic_route(context, routes);
        if (!route) {
            return route.error().message;
        }
        CHECK(serin::meshes::traffic_route_routes(context, *route).value() == routes);
    } else if (provider == "apisix") {
        // The canary route is a copy of the user's ApisixRoute beside the example.
        const Json user = serin::testing::load_document("examples/apisix/route.yaml");
        auto route = serin::meshes::build_apisix_canary_route(context, user, routes);
        if (!route) {
            return route.error().message;
        }
        CHECK(serin::meshes::apisix_routes(context, *route).value() == routes);
    } else if (provider == "nginx") {
        // The canary Ingress is a copy of the user's Ingress beside the example.
        const Json user = serin::testing::load_document("examples/nginx/ingress.yaml");
        const std::string prefix(serin::meshes::kDefaultIngressAnnotationsPrefix);
        auto ingress = serin::meshes::build_canary_ingress(context, user, routes, prefix);
        if (!ingress) {
            return ingress.error().message;
        }
        auto read = serin::meshes::canary_ingress_routes(context, *ingress, prefix);
        REQUIRE(read.has_value());
        Routes plain = routes;
        plain.mirrored = false;
        CHECK(*read == plain);
    } else if (provider == "appmesh:v1beta2") {
        auto objects = serin::meshes::build_appmesh_objects(context, routes);
        if (!objects) {
            return objects.error().message;
        }
        Routes plain = routes;
        plain.mirrored = false;
        CHECK(serin::meshes::virtual_router_routes(context, objects->apex_router).value() == plain);
    } else if (provider == "skipper") {
        const Json user = serin::testing::load_document("examples/skipper/ingress.yaml");
        auto ingress = serin::meshes::build_skipper_ingress(context, user, routes);
        if (!ingress) {
            return ingress.error().message;
        }
        Routes plain = routes;
        plain.mirrored = false;
        CHECK(serin::meshes::skipper_ingress_routes(context, *ingress).value() == plain);
    }
    return {};
}

}  // namespace

TEST_CASE("every example Canary is valid and its routing objects build at every step") {
    int canaries = 0;
    for (const auto& entry : fs::recursive_directory_iterator(serin::testing::source_dir() / "examples")) {
        if (!entry.is_regular_file() || entry.path().extension() != ".yaml") {
            continue;
        }
        const std::string relative = fs::relative(entry.path(), serin::testing::source_dir()).string();
        INFO(relative);
        const Json manifest = serin::testing::load_document(relative);
        if (manifest.value("kind", "") != "Canary") {
            continue;
        }
        ++canaries;
        const auto context =
            serin::testing::route_context(manifest, manifest["spec"].value("provider", "istio"));
        REQUIRE(serin::analysis::validate(context.canary.spec, context.provider).has_value());
        REQUIRE(context.canary.spec.analysis.has_value());
        for (const Routes& routes : steps(context.canary)) {
            CHECK(build(context, routes) == "");
        }
    }
    CHECK(canaries >= 12);
}

namespace {

/// Every "weight" member anywhere in `object`, set to `value`.
void poison_weights(Json& object, const Json& value) {
    if (object.is_object()) {
        for (auto& [key, member] : object.items()) {
            if (key == "weight") {
                member = value;
            } else {
                poison_weights(member, value);
            }
        }
    } else if (object.is_array()) {
        for (Json& item : object) {
            poison_weights(item, value);
        }
    }
}

/// The routes each router reads back from its object at {90, 10} with every weight poisoned.
std::optional<Routes> read_poisoned(const serin::meshes::RouteContext& context, const Json& value) {
    const std::string& provider = context.provider;
    const Routes routes{90, 10, false};
    Result<Routes> read = serin::fail(serin::ErrorKind::kInternal, "no router");
    if (provider == "istio") {
        Json vs = serin::meshes::build_virtual_service(context, routes).value();
        poison_weights(vs, value);
        read = serin::meshes::virtual_service_routes(context, vs);
    } else if (provider.starts_with("gatewayapi:")) {
        Json route = serin::meshes::build_http_route(context, routes, provider.substr(11)).value();
        poison_weights(route, value);
        read = serin::meshes::http_route_routes(context, route);
    } else if (provider == "contour") {
        Json proxy = serin::meshes::build_http_proxy(context, routes, "").value();
        poison_weights(proxy, value);
        read = serin::meshes::http_proxy_routes(context, proxy);
    } else if (provider.starts_with("gloo")) {
        Json table = serin::meshes::build_route_table(context, routes).value();
        poison_weights(table, value);
        read = serin::meshes::route_table_routes(context, table);
    } else if (provider == "traefik") {
        Json service = serin::meshes::build_traefik_service(context, routes).value();
        poison_weights(service, value);
        read = serin::meshes::traefik_service_routes(context, service);
    } else if (provider == "kuma") {
        Json route = serin::meshes::build_traffic_route(context, routes).value();
        poison_weights(route, value);
        read = serin::meshes::traffic_route_routes(context, route);
    } else if (provider == "apisix") {
        const Json user = serin::testing::load_document("examples/apisix/route.yaml");
        Json route = serin::meshes::build_apisix_canary_route(context, user, routes).value();
        poison_weights(route, value);
        read = serin::meshes::apisix_routes(context, route);
    } else if (provider == "appmesh:v1beta2") {
        Json router = serin::meshes::build_appmesh_objects(context, routes).value().apex_router;
        poison_weights(router, value);
        read = serin::meshes::virtual_router_routes(context, router);
    } else if (provider == "linkerd" || provider.starts_with("smi:")) {
        Json split = serin::meshes::build_traffic_split(
            context, routes, *serin::meshes::smi_flavour(provider));
        poison_weights(split, value);
        read = serin::meshes::traffic_split_routes(context, split);
    } else {
        return std::nullopt;
    }
    if (!read) {
        return std::nullopt;
    }
    return *read;
}

}  // namespace

TEST_CASE("weights read back from routing objects anyone can edit are clamped, never cast out of range") {
    int routers = 0;
    for (const auto& entry : fs::recursive_directory_iterator(serin::testing::source_dir() / "examples")) {
        if (!entry.is_regular_file() || entry.path().extension() != ".yaml") {
            continue;
        }
        const std::string relative = fs::relative(entry.path(), serin::testing::source_dir()).string();
        const Json manifest = serin::testing::load_document(relative);
        if (manifest.value("kind", "") != "Canary" || manifest["spec"].contains("analysis") == false ||
            manifest["spec"]["analysis"].contains("match")) {
            continue;
        }
        const auto context =
            serin::testing::route_context(manifest, manifest["spec"].value("provider", "istio"));
        for (const Json& value : {Json(1e300), Json(-1e300), Json(9.3e18), Json(-5),
                                  Json(std::numeric_limits<std::uint64_t>::max()),
                                  Json("90000000000000000000"), Json("9000000000000000000m")}) {
            INFO(relative << " weight " << value.dump());
            if (auto read = read_poisoned(context, value)) {
                ++routers;
                CHECK(read->primary >= 0);
                CHECK(read->primary <= serin::meshes::kMaxReadWeight);
                CHECK(read->canary >= 0);
                CHECK(read->canary <= serin::meshes::kMaxReadWeight);
            }
        }
    }
    CHECK(routers > 10);
}
