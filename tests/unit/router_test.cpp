// The router registry, the kubernetes router's selector rule and the object store's version
// comparison: the pure parts of the routing seam.
#include <catch2/catch.hpp>

#include "meshes/common/route_object.hpp"
#include "meshes/kubernetes/kubernetes_router.hpp"
#include "meshes/router.hpp"
#include "platform/kube/object_store.hpp"
#include "tests/support/unimplemented_kube_client.hpp"

namespace {

using serin::meshes::RouteContext;
using serin::meshes::RouterRegistry;
namespace asio = boost::asio;
using Json = nlohmann::json;

/// A KubeClient the registry can hold a reference to; routers built in these tests never call it.
class NoClient final : public serin::testing::UnimplementedKubeClient {};

RouteContext context() {
    RouteContext c;
    c.canary.metadata.ns = "test";
    c.apex = "podinfo";
    c.label_key = "app";
    c.label_value = "podinfo";
    return c;
}

}  // namespace

TEST_CASE("the kubernetes router selects the canary's pods only when it has all the traffic") {
    const RouteContext c = context();
    CHECK(serin::meshes::kubernetes_apex_selector(c, {100, 0, false}) ==
          Json{{"app", "podinfo-primary"}});
    CHECK(serin::meshes::kubernetes_apex_selector(c, {50, 50, false}) ==
          Json{{"app", "podinfo-primary"}});
    CHECK(serin::meshes::kubernetes_apex_selector(c, {0, 100, false}) == Json{{"app", "podinfo"}});
}

TEST_CASE("the registry finds routers by name and by prefix, and names what it supports") {
    NoClient client;
    serin::ManualClock clock;
    serin::kube::ObjectStore store(clock);
    serin::kube::CachedClient kube(client, store);
    RouterRegistry registry(serin::meshes::RouterDeps{kube});
    int built = 0;
    registry.add("kubernetes", [&](serin::meshes::RouterDeps deps) {
        ++built;
        return serin::meshes::make_kubernetes_router(deps);
    });
    registry.add("smi", [](serin::meshes::RouterDeps deps) {
        return serin::meshes::make_kubernetes_router(deps);
    });

    auto kubernetes = registry.find("kubernetes");
    REQUIRE(kubernetes.has_value());
    CHECK((*kubernetes)->owns_apex_selector());
    auto again = registry.find("kubernetes");
    REQUIRE(again.has_value());
    CHECK(*again == *kubernetes);
    CHECK(built == 1);  // built once, on first use
    CHECK(registry.find("smi:v1alpha3:linkerd").has_value());

    auto unknown = registry.find("istio");
    REQUIRE_FALSE(unknown.has_value());
    CHECK(unknown.error().kind == serin::ErrorKind::kInvalid);
    CHECK(unknown.error().message ==
          "spec.provider: \"istio\" is not supported by this build of Serin (supported: "
          "kubernetes, smi)");
}

TEST_CASE("resource versions compare as integers, opaque ones only by equality") {
    using serin::kube::resource_version_at_least;
    CHECK(resource_version_at_least("10", "9"));
    CHECK(resource_version_at_least("10", "10"));
    CHECK_FALSE(resource_version_at_least("9", "10"));
    CHECK(resource_version_at_least("abc", "abc"));
    CHECK_FALSE(resource_version_at_least("abc", "abd"));
    CHECK_FALSE(resource_version_at_least("", "1"));
}

TEST_CASE("the builtin registry gives gloo every provider string starting with gloo, and has traefik") {
    NoClient client;
    serin::ManualClock clock;
    serin::kube::ObjectStore store(clock);
    serin::kube::CachedClient kube(client, store);
    RouterRegistry registry(serin::meshes::RouterDeps{kube});
    serin::meshes::register_builtin_routers(registry);
    auto gloo = registry.find("gloo");
    REQUIRE(gloo.has_value());
    for (const char* provider : {"gloo:v1", "glooedge", "gloo-edge"}) {
        auto found = registry.find(provider);
        REQUIRE(found.has_value());
        CHECK(*found == *gloo);
    }
    CHECK(registry.find("traefik").has_value());
    CHECK_FALSE(registry.find("glo").has_value());
    CHECK_FALSE(registry.find("traefik2").has_value());
}

TEST_CASE("the builtin registry serves appmesh:v1beta2 and skipper, and refuses legacy appmesh naming the version to use") {
    NoClient client;
    serin::ManualClock clock;
    serin::kube::ObjectStore store(clock);
    serin::kube::CachedClient kube(client, store);
    RouterRegistry registry(serin::meshes::RouterDeps{kube});
    serin::meshes::register_builtin_routers(registry);
    CHECK(registry.find("appmesh:v1beta2").has_value());
    CHECK(registry.find("skipper").has_value());
    CHECK(registry.find("appmesh:v1beta2").value()->routes_before_workload());
    CHECK_FALSE(registry.find("skipper").value()->routes_before_workload());
    for (const char* legacy : {"appmesh", "appmesh:v1beta1"}) {
        auto refused = registry.find(legacy);
        REQUIRE_FALSE(refused.has_value());
        CHECK(refused.error().kind == serin::ErrorKind::kInvalid);
        CHECK(refused.error().message.starts_with("spec.provider: \"" + std::string(legacy) +
                                                  "\" is not supported by this build of Serin (supported: "));
        CHECK(refused.error().message.find(" appmesh:v1beta2, ") != std::string::npos);
    }
}

TEST_CASE("original_spec reads the recorded spec and ignores an annotation nested past the bound") {
    auto with_annotation = [](const std::string& key, const std::string& value) {
        return Json{{"metadata", {{"annotations", {{key, value}}}}}};
    };
    const std::string key(serin::meshes::kOriginalConfigKey);
    CHECK(serin::meshes::original_spec(with_annotation(key, R"({"hosts":["a"]})")) ==
          Json{{"hosts", {"a"}}});
    // A user can write any text into an annotation: a spec 100,000 levels deep is not parsed
    // (nlohmann's copy and comparison would recurse once per level).
    const std::string deep = std::string(100'000, '[') + std::string(100'000, ']');
    CHECK_FALSE(serin::meshes::original_spec(with_annotation(key, "{\"a\":" + deep + "}")));
    CHECK_FALSE(serin::meshes::original_spec(with_annotation(key, "not json")));
}
