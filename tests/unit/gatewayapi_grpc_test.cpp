// The Gateway API router's GRPCRoute (gatewayapi:v1 with spec.service.appProtocol grpc): the
// route of every shape (golden files), gRPC method and header matches, the routes read back,
// what GRPCRoute cannot express, and the router writing a GRPCRoute instead of an HTTPRoute.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>
#include <optional>
#include <string>
#include <vector>

#include "meshes/common/route_types.hpp"
#include "meshes/gatewayapi/gatewayapi_router.hpp"
#include "platform/core/clock.hpp"
#include "platform/kube/informer.hpp"
#include "platform/kube/object_store.hpp"
#include "tests/support/golden.hpp"
#include "tests/support/unimplemented_kube_client.hpp"

namespace {

namespace asio = boost::asio;
using serin::meshes::build_grpc_route;
using serin::meshes::http_route_routes;
using serin::meshes::RouteContext;
using serin::testing::golden;
using serin::testing::load_document;
using serin::testing::route_context;
using Routes = serin::analysis::Routes;
using Json = nlohmann::json;

RouteContext context_of(const std::string& name) {
    return route_context(load_document("tests/data/routes/gatewayapi/" + name + ".yaml"),
                         "gatewayapi:v1");
}

Json route_of(const RouteContext& context, Routes routes) {
    auto route = build_grpc_route(context, routes);
    if (!route) {
        FAIL("build_grpc_route failed: " << route.error().message);
    }
    return *route;
}

std::string build_error(const RouteContext& context) {
    auto route = build_grpc_route(context, Routes{90, 10, false});
    if (route) {
        return "(built: " + route->dump() + ")";
    }
    CHECK(route.error().kind == serin::ErrorKind::kInvalid);
    return route.error().message;
}

const Json& rules(const Json& route) { return route.at("spec").at("rules"); }

}  // namespace

TEST_CASE("a gRPC canary gets a GRPCRoute: one weighted rule taking every call, the filters kept") {
    const auto context = context_of("grpc");
    CHECK(serin::meshes::grpc_service(context.canary.spec.service));
    const Json route = route_of(context, Routes{90, 10, false});
    CHECK(golden("gatewayapi/grpc-weighted.json", route) == "");
    CHECK(route["apiVersion"] == "gateway.networking.k8s.io/v1");
    CHECK(route["kind"] == "GRPCRoute");
    REQUIRE(rules(route).size() == 1);
    CHECK_FALSE(rules(route)[0].contains("matches"));
    CHECK_FALSE(rules(route)[0].contains("timeouts"));
    CHECK(rules(route)[0]["backendRefs"] ==
          Json::parse(R"([{"group": "", "kind": "Service", "name": "podinfo-primary",
                           "port": 9999, "weight": 90},
                          {"group": "", "kind": "Service", "name": "podinfo-canary",
                           "port": 9999, "weight": 10}])"));
    std::vector<std::string> types;
    for (const Json& filter : rules(route)[0]["filters"]) {
        types.push_back(filter["type"].get<std::string>());
    }
    CHECK(types == std::vector<std::string>{"RequestHeaderModifier", "ResponseHeaderModifier",
                                            "RequestMirror"});
    CHECK(route["spec"]["hostnames"] == Json::array({"grpc.example.com"}));
}

TEST_CASE("gRPC A/B: method and header matches to both backends, then the service to the primary") {
    const auto context = context_of("grpc-ab");
    CHECK(serin::meshes::grpc_service(context.canary.spec.service));  // GRPC, any case
    const Json route = route_of(context, Routes{0, 100, false});
    CHECK(golden("gatewayapi/grpc-ab.json", route) == "");
    REQUIRE(rules(route).size() == 2);
    CHECK(rules(route)[0]["matches"] == Json::parse(R"([
        {"method": {"type": "Exact", "service": "podinfo.Api", "method": "Echo"},
         "headers": [{"name": "x-canary", "type": "Exact", "value": "insider"}]},
        {"method": {"type": "Exact", "service": "podinfo.v2.Api"},
         "headers": [{"name": "x-user", "type": "RegularExpression", "value": "^beta-.*"}]}])"));
    CHECK(rules(route)[1]["matches"] ==
          Json::parse(R"([{"method": {"type": "Exact", "service": "podinfo.Api"}}])"));
    CHECK(rules(route)[1]["backendRefs"].size() == 1);
    CHECK(*http_route_routes(context, route) == Routes{0, 100, false});
}

TEST_CASE("gRPC session affinity: cookie rules before the weighted rule, which takes every call") {
    const auto context = context_of("grpc-session-affinity");
    const Json route = route_of(context, Routes{80, 20, false});
    CHECK(golden("gatewayapi/grpc-session-affinity.json", route) == "");
    REQUIRE(rules(route).size() == 3);
    CHECK(rules(route)[0]["matches"] ==
          Json::parse(R"([{"headers": [{"name": "Cookie", "type": "RegularExpression",
                                        "value": ".*flagger-cookie.*AbCdEfGhIj.*"}]}])"));
    CHECK(rules(route)[0]["backendRefs"][1]["weight"] == 100);
    CHECK(rules(route)[1]["backendRefs"][0]["weight"] == 100);
    CHECK_FALSE(rules(route)[2].contains("matches"));
    CHECK(rules(route)[2]["backendRefs"][1]["filters"][0]["responseHeaderModifier"]["add"][0]
                       ["value"] == "flagger-cookie=AbCdEfGhIj; Max-Age=86400");
    CHECK(*http_route_routes(context, route) == Routes{80, 20, false});
}

TEST_CASE("gRPC blue/green mirrors to the canary while iterations are set") {
    const auto context = context_of("grpc-blue-green");
    const Json mirrored = route_of(context, Routes{100, 0, true});
    CHECK(golden("gatewayapi/grpc-blue-green-mirrored.json", mirrored) == "");
    CHECK(rules(mirrored)[0]["filters"] == Json::parse(R"([{"type": "RequestMirror",
        "requestMirror": {"backendRef": {"group": "", "kind": "Service",
                                         "name": "podinfo-canary", "port": 9999}}}])"));
    CHECK(*http_route_routes(context, mirrored) == Routes{100, 0, true});
    CHECK(*http_route_routes(context, route_of(context, Routes{0, 100, false})) ==
          Routes{0, 100, false});
}

TEST_CASE("what GRPCRoute cannot express is an error naming the field") {
    auto context = context_of("grpc");
    const auto with = [&](const char* field, const char* yaml_json) {
        RouteContext changed = context;
        if (std::string(field) == "match") {
            changed.canary.spec.service.match = Json::parse(yaml_json);
        } else if (std::string(field) == "ab") {
            changed.canary.spec.analysis->match = Json::parse(yaml_json);
        }
        return build_error(changed);
    };
    CHECK(with("match", R"([{"uri": {"regex": "/podinfo.*"}}])") ==
          "spec.service.match[0].uri.regex: GRPCRoute matches a method as /service/method "
          "(exact) or a service as /service/ (prefix), not a path regex");
    CHECK(with("match", R"([{"uri": {"exact": "/podinfo.Api"}}])") ==
          "spec.service.match[0].uri.exact: expected /package.Service/Method, got "
          "\"/podinfo.Api\"");
    CHECK(with("match", R"([{"uri": {"prefix": "/podinfo.Api/Ec"}}])") ==
          "spec.service.match[0].uri.prefix: expected /package.Service/ or /, got "
          "\"/podinfo.Api/Ec\"");
    CHECK(with("match", R"([{"uri": {"exact": "/1bad/Echo"}}])") ==
          "spec.service.match[0].uri.exact: expected /package.Service/Method, got "
          "\"/1bad/Echo\"");
    CHECK(with("ab", R"([{"method": {"exact": "POST"}}])") ==
          "spec.analysis.match[0].method: not supported by GRPCRoute (it matches uri as "
          "/service/method and headers)");
    CHECK(with("ab", R"([{"queryParams": {"a": {"exact": "b"}}}])") ==
          "spec.analysis.match[0].queryParams: not supported by GRPCRoute (it matches uri as "
          "/service/method and headers)");
    CHECK(with("ab", R"([{"headers": {"x": {"prefix": "b"}}}])") ==
          "spec.analysis.match[0].headers.x: prefix matches are not supported by Gateway API");

    RouteContext rewrite = context;
    rewrite.canary.spec.service.rewrite = Json{{"uri", "/"}};
    CHECK(build_error(rewrite) ==
          "spec.service.rewrite: not supported by GRPCRoute (appProtocol grpc); leave it unset");
    RouteContext cors = context;
    cors.canary.spec.service.cors_policy = Json{{"allowOrigin", Json::array({"*"})}};
    CHECK(build_error(cors) ==
          "spec.service.corsPolicy: not supported by GRPCRoute (appProtocol grpc); leave it unset");
    RouteContext timeout = context;
    timeout.canary.spec.service.timeout = "30s";
    CHECK(build_error(timeout) ==
          "spec.service.timeout: not supported by GRPCRoute (appProtocol grpc); leave it unset");
    RouteContext backend = context;
    backend.canary.spec.service.backend_timeout = "5s";
    CHECK(build_error(backend) ==
          "spec.service.backendTimeout: not supported by GRPCRoute (appProtocol grpc); leave it "
          "unset");
    RouteContext no_refs = context;
    no_refs.canary.spec.service.gateway_refs.clear();
    CHECK(build_error(no_refs) ==
          "spec.service.gatewayRefs: must be set for provider gatewayapi:v1");

    SECTION("a prefix of / takes every call, ignoreUriCase false is no condition") {
        RouteContext all = context;
        all.canary.spec.service.match =
            Json::parse(R"([{"uri": {"prefix": "/"}, "ignoreUriCase": false}])");
        CHECK_FALSE(rules(route_of(all, Routes{100, 0, false}))[0].contains("matches"));
    }
}

namespace {

/// An API server that stores what it is sent (create and update counted).
class FakeServer final : public serin::testing::UnimplementedKubeClient {
public:
    int creates = 0;
    int updates = 0;

    asio::awaitable<serin::Result<Json>> create(serin::kube::ResourceType, std::string, Json object,
                                                serin::kube::WriteOptions) override {
        ++creates;
        return stored(std::move(object));
    }
    asio::awaitable<serin::Result<Json>> update(serin::kube::ResourceType, std::string, Json object,
                                                serin::kube::WriteOptions) override {
        ++updates;
        return stored(std::move(object));
    }

private:
    asio::awaitable<serin::Result<Json>> stored(Json object) {
        ++version_;
        object["metadata"]["resourceVersion"] = std::to_string(version_);
        object["metadata"]["generation"] = version_;
        co_return serin::Result<Json>(boost::system::in_place_value, std::move(object));
    }
    int version_ = 0;
};

template <class T>
T run(asio::io_context& io, asio::awaitable<T> call) {
    std::optional<T> out;
    asio::co_spawn(io, std::move(call), [&out](std::exception_ptr error, T value) {
        if (error) {
            std::rethrow_exception(error);
        }
        out.emplace(std::move(value));
    });
    io.restart();
    io.run();
    REQUIRE(out.has_value());
    return std::move(*out);
}

}  // namespace

TEST_CASE("the gatewayapi:v1 router writes a GRPCRoute for a gRPC service, an HTTPRoute otherwise") {
    asio::io_context io;
    serin::ManualClock clock;
    FakeServer server;
    const auto& grpc = serin::meshes::route_types::gateway_grpc_routes();
    const auto http = serin::meshes::route_types::gateway_http_routes("v1");
    serin::kube::Informer grpc_informer(server, clock, grpc);
    serin::kube::Informer http_informer(server, clock, http);
    serin::kube::ObjectStore store(clock);
    store.add(grpc_informer);
    store.add(http_informer);
    serin::kube::CachedClient kube(server, store);
    auto router = serin::meshes::make_gatewayapi_router(serin::meshes::RouterDeps{kube}, "v1");
    const auto context = context_of("grpc");

    auto absent = run(io, router->get_routes(context));
    REQUIRE_FALSE(absent.has_value());
    CHECK(absent.error().message == "GRPCRoute podinfo.test not found");
    REQUIRE(run(io, router->reconcile(context)).has_value());
    CHECK(server.creates == 1);
    REQUIRE(store.get(grpc, "test", "podinfo") != nullptr);
    CHECK(store.get(http, "test", "podinfo") == nullptr);
    REQUIRE(run(io, router->set_routes(context, Routes{60, 40, false})).has_value());
    CHECK(*run(io, router->get_routes(context)) == Routes{60, 40, false});
    REQUIRE(run(io, router->reconcile(context)).has_value());
    CHECK(server.updates == 1);  // reconcile keeps the weights, nothing to write
    CHECK((*store.get(grpc, "test", "podinfo"))["spec"] ==
          route_of(context, Routes{60, 40, false})["spec"]);

    SECTION("a parent that has not accepted the GRPCRoute halts get_routes") {
        Json live = *store.get(grpc, "test", "podinfo");
        live["status"]["parents"] = Json::parse(R"([{
            "parentRef": {"name": "gateway", "namespace": "istio-ingress"},
            "controllerName": "example.com/gateway",
            "conditions": [{"type": "Accepted", "status": "False", "reason": "NotAllowedByListeners",
                            "observedGeneration": 2}]}])");
        live["metadata"]["resourceVersion"] = "100";
        store.wrote(grpc, live);
        auto routes = run(io, router->get_routes(context));
        REQUIRE_FALSE(routes.has_value());
        CHECK(routes.error().message ==
              "GRPCRoute podinfo.test parent gateway is not ready: Accepted is False "
              "(NotAllowedByListeners)");
    }
    SECTION("the same canary without appProtocol grpc gets an HTTPRoute") {
        RouteContext http_context = context;
        http_context.canary.spec.service.app_protocol = "http";
        REQUIRE(run(io, router->reconcile(http_context)).has_value());
        CHECK(store.get(http, "test", "podinfo") != nullptr);
    }
    SECTION("v1beta1 keeps the HTTPRoute for a gRPC service (no GRPCRoute v1beta1)") {
        serin::kube::Informer beta_informer(server, clock,
                                            serin::meshes::route_types::gateway_http_routes(
                                                "v1beta1"));
        store.add(beta_informer);
        auto beta = serin::meshes::make_gatewayapi_router(serin::meshes::RouterDeps{kube},
                                                          "v1beta1");
        REQUIRE(run(io, beta->reconcile(route_context(
                            load_document("tests/data/routes/gatewayapi/grpc.yaml"),
                            "gatewayapi:v1beta1")))
                    .has_value());
        CHECK(store.get(serin::meshes::route_types::gateway_http_routes("v1beta1"), "test",
                        "podinfo") != nullptr);
    }
}
