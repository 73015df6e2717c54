// The SMI router's pure parts: the TrafficSplit each version gets (golden files), reading the
// weights back, and the provider strings that select it.
#include <catch2/catch.hpp>

#include "meshes/smi/smi_router.hpp"
#include "tests/support/golden.hpp"

namespace {

using serin::meshes::build_traffic_split;
using serin::meshes::smi_flavour;
using serin::meshes::SmiFlavour;
using serin::meshes::traffic_split_routes;
using serin::testing::golden;
using serin::testing::load_document;
using serin::testing::route_context;
using Routes = serin::analysis::Routes;
using Json = nlohmann::json;

}  // namespace

TEST_CASE("linkerd writes a v1alpha1 TrafficSplit with Quantity weights and the apex metadata") {
    const auto context = route_context(load_document("tests/data/routes/smi/podinfo.yaml"), "linkerd");
    const SmiFlavour flavour = *smi_flavour("linkerd");
    CHECK(flavour.version == "v1alpha1");
    CHECK(golden("smi/linkerd-v1alpha1-90-10.json",
                 build_traffic_split(context, Routes{90, 10, false}, flavour)) == "");
    CHECK(golden("smi/linkerd-v1alpha1-100-0.json",
                 build_traffic_split(context, Routes{100, 0, false}, flavour)) == "");
}

TEST_CASE("smi:v1alpha2 and smi:v1alpha3 write integer weights") {
    const auto context =
        route_context(load_document("tests/data/routes/smi/podinfo.yaml"), "smi:v1alpha3");
    for (const char* provider : {"smi:v1alpha2", "smi:v1alpha3"}) {
        const SmiFlavour flavour = *smi_flavour(provider);
        const Json split = build_traffic_split(context, Routes{70, 30, false}, flavour);
        CHECK(golden("smi/" + flavour.version + "-70-30.json", split) == "");
        CHECK(split["spec"]["backends"][0]["weight"] == 30);
    }
}

TEST_CASE("smi on Istio carries the gateways annotation and routes the first host") {
    const auto context = route_context(load_document("tests/data/routes/smi/istio-gateways.yaml"),
                                       "smi:v1alpha2:istio");
    const SmiFlavour flavour = *smi_flavour("smi:v1alpha2:istio");
    CHECK(flavour.mesh == "istio");
    const Json split = build_traffic_split(context, Routes{95, 5, false}, flavour);
    CHECK(golden("smi/istio-gateways.json", split) == "");
    CHECK(split["spec"]["service"] == "web.example.com");
    CHECK(split["metadata"]["annotations"]["VirtualService.v1alpha3.networking.istio.io/spec.gateways"] ==
          "[\"public-gateway.istio-system.svc.cluster.local\"]");
}

TEST_CASE("the weights read back are the weights written, in every version") {
    const auto context = route_context(load_document("tests/data/routes/smi/podinfo.yaml"), "linkerd");
    for (const char* provider : {"linkerd", "osm", "smi:v1alpha1", "smi:v1alpha2", "smi:v1alpha3:linkerd"}) {
        for (const Routes routes : {Routes{100, 0, false}, Routes{80, 20, false}, Routes{0, 100, false}}) {
            const Json split = build_traffic_split(context, routes, *smi_flavour(provider));
            auto read = traffic_split_routes(context, split);
            REQUIRE(read.has_value());
            CHECK(*read == routes);
        }
    }
}

TEST_CASE("a TrafficSplit with both weights at 0 or a missing backend is an error") {
    const auto context = route_context(load_document("tests/data/routes/smi/podinfo.yaml"), "linkerd");
    Json split = build_traffic_split(context, Routes{0, 0, false}, *smi_flavour("smi:v1alpha2"));
    auto zero = traffic_split_routes(context, split);
    REQUIRE_FALSE(zero.has_value());
    CHECK(zero.error().message == "TrafficSplit podinfo.test: both backend weights are 0");

    split["spec"]["backends"].erase(1);
    auto missing = traffic_split_routes(context, split);
    REQUIRE_FALSE(missing.has_value());
    CHECK(missing.error().message ==
          "TrafficSplit podinfo.test lacks a readable weight for backend podinfo-primary");

    split["spec"]["backends"] = Json::array({{{"service", "podinfo-primary"}, {"weight", "9x"}},
                                             {{"service", "podinfo-canary"}, {"weight", "1"}}});
    CHECK_FALSE(traffic_split_routes(context, split).has_value());
    split["spec"]["backends"][0]["weight"] = "99000m";  // a Quantity in milli-units
    CHECK(traffic_split_routes(context, split).value() == Routes{99, 1, false});
}

TEST_CASE("provider strings select the SMI version and mesh") {
    CHECK(smi_flavour("smi:v1alpha1").value().version == "v1alpha1");
    CHECK(smi_flavour("smi:v1alpha3:linkerd").value().version == "v1alpha3");
    CHECK(smi_flavour("smi:v1alpha3:linkerd").value().mesh == "linkerd");
    CHECK(smi_flavour("osm").value().version == "v1alpha2");
    auto bad = smi_flavour("smi:v2");
    REQUIRE_FALSE(bad.has_value());
    CHECK(bad.error().message.starts_with("spec.provider: \"smi:v2\" is not an SMI provider"));
}
