#include <catch2/catch.hpp>

#include "platform/kube/informer.hpp"
#include "platform/kube/resource.hpp"

using namespace serin::kube;

TEST_CASE("resource paths for core and group resources, namespaced and cluster-scoped") {
    CHECK(types::config_maps().collection_path("ns") == "/api/v1/namespaces/ns/configmaps");
    CHECK(types::config_maps().collection_path("") == "/api/v1/configmaps");
    CHECK(types::deployments().object_path("ns", "web") ==
          "/apis/apps/v1/namespaces/ns/deployments/web");
    CHECK(types::canaries().object_path("ns", "web", "status") ==
          "/apis/flagger.app/v1beta1/namespaces/ns/canaries/web/status");
    // Cluster-scoped types ignore a namespace.
    CHECK(types::namespaces().object_path("ignored", "default") == "/api/v1/namespaces/default");
    CHECK(types::custom_resource_definitions().collection_path("") ==
          "/apis/apiextensions.k8s.io/v1/customresourcedefinitions");
    CHECK(types::deployments().api_version() == "apps/v1");
    CHECK(types::pods().api_version() == "v1");
}

TEST_CASE("known types are found by apiVersion and kind") {
    auto canary = find_known_type("flagger.app/v1beta1", "Canary");
    REQUIRE(canary);
    CHECK(canary->resource == "canaries");
    CHECK(canary->namespaced);
    auto crd = find_known_type("apiextensions.k8s.io/v1", "CustomResourceDefinition");
    REQUIRE(crd);
    CHECK_FALSE(crd->namespaced);
    CHECK_FALSE(find_known_type("apps/v1beta1", "Deployment"));
    CHECK_FALSE(find_known_type("v1", "Gizmo"));
}

TEST_CASE("object keys are namespace/name, or name for cluster-scoped objects") {
    CHECK(object_key(Json{{"metadata", {{"namespace", "ns"}, {"name", "a"}}}}) == "ns/a");
    CHECK(object_key(Json{{"metadata", {{"name", "node-1"}}}}) == "node-1");
    CHECK(object_name(Json::object()).empty());
    CHECK(object_name(Json{{"metadata", 5}}).empty());
}
