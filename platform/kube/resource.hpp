#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace serin::kube {

/// A kind of object the API server serves: where it lives and what it is called.
struct ResourceType {
    std::string group;     ///< "" for the core group
    std::string version;   ///< "v1"
    std::string resource;  ///< plural, lower case: "configmaps"
    std::string kind;      ///< "ConfigMap"
    bool namespaced = true;

    std::string api_version() const { return group.empty() ? version : group + "/" + version; }
    /// "/api/v1" or "/apis/apps/v1".
    std::string group_version_path() const;
    /// The collection path: "/api/v1/namespaces/NS/configmaps"; all namespaces when `ns` is empty.
    std::string collection_path(std::string_view ns) const;
    /// "…/configmaps/NAME", plus "/SUBRESOURCE" when given.
    std::string object_path(std::string_view ns, std::string_view name,
                            std::string_view subresource = {}) const;

    bool operator==(const ResourceType&) const = default;
};

/// The types Serin and its tests use. Custom resources are described the same way.
namespace types {
const ResourceType& namespaces();
const ResourceType& pods();
const ResourceType& services();
const ResourceType& config_maps();
const ResourceType& secrets();
const ResourceType& events();
const ResourceType& service_accounts();
const ResourceType& deployments();
const ResourceType& daemon_sets();
const ResourceType& replica_sets();
const ResourceType& horizontal_pod_autoscalers();
const ResourceType& leases();
const ResourceType& custom_resource_definitions();
const ResourceType& cluster_roles();
const ResourceType& cluster_role_bindings();
const ResourceType& canaries();
const ResourceType& metric_templates();
const ResourceType& alert_providers();
/// Serin's own API group (docs/runtime-control.md).
const ResourceType& canary_requests();
const ResourceType& canary_histories();
}  // namespace types

/// The built-in type for an apiVersion and kind, if Serin knows it without discovery.
std::optional<ResourceType> find_known_type(std::string_view api_version, std::string_view kind);

}  // namespace serin::kube
