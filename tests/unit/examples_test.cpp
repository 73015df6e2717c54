// Every Canary in examples/ is valid and its provider's router can build its routing objects for
// each step of its strategy: the examples are manifests users copy, so they must work.
#include <catch2/catch.hpp>

#include <filesystem>

#include "analysis/release.hpp"
#include "meshes/gatewayapi/gatewayapi_router.hpp"
#include "meshes/istio/istio_router.hpp"
#include "meshes/smi/smi_router.hpp"
#include "tests/support/golden.hpp"

namespace {

namespace fs = std::filesystem;
using serin::analysis::Routes;
using Json = nlohmann::json;

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
        auto route = serin::meshes::build_http_route(context, routes, provider.substr(11));
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
        REQUIRE(serin::analysis::validate(context.canary.spec).has_value());
        REQUIRE(context.canary.spec.analysis.has_value());
        for (const Routes& routes : steps(context.canary)) {
            CHECK(build(context, routes) == "");
        }
    }
    CHECK(canaries >= 12);
}
