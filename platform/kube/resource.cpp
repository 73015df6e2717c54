#include "platform/kube/resource.hpp"

#include <array>

namespace serin::kube {

std::string ResourceType::group_version_path() const {
    return group.empty() ? "/api/" + version : "/apis/" + group + "/" + version;
}

std::string ResourceType::collection_path(std::string_view ns) const {
    std::string path = group_version_path();
    if (namespaced && !ns.empty()) {
        path += "/namespaces/";
        path += ns;
    }
    path += "/";
    path += resource;
    return path;
}

std::string ResourceType::object_path(std::string_view ns, std::string_view name,
                                      std::string_view subresource) const {
    std::string path = collection_path(ns);
    path += "/";
    path += name;
    if (!subresource.empty()) {
        path += "/";
        path += subresource;
    }
    return path;
}

namespace types {
namespace {
ResourceType make(std::string group, std::string version, std::string resource, std::string kind,
                  bool namespaced) {
    return ResourceType{std::move(group), std::move(version), std::move(resource),
                        std::move(kind), namespaced};
}
}  // namespace

#define SERIN_RESOURCE_TYPE(fn, group, version, resource, kind, namespaced)  \
    const ResourceType& fn() {                                               \
        static const ResourceType type = make(group, version, resource, kind, namespaced); \
        return type;                                                         \
    }

SERIN_RESOURCE_TYPE(namespaces, "", "v1", "namespaces", "Namespace", false)
SERIN_RESOURCE_TYPE(pods, "", "v1", "pods", "Pod", true)
SERIN_RESOURCE_TYPE(services, "", "v1", "services", "Service", true)
SERIN_RESOURCE_TYPE(config_maps, "", "v1", "configmaps", "ConfigMap", true)
SERIN_RESOURCE_TYPE(secrets, "", "v1", "secrets", "Secret", true)
SERIN_RESOURCE_TYPE(events, "", "v1", "events", "Event", true)
SERIN_RESOURCE_TYPE(service_accounts, "", "v1", "serviceaccounts", "ServiceAccount", true)
SERIN_RESOURCE_TYPE(deployments, "apps", "v1", "deployments", "Deployment", true)
SERIN_RESOURCE_TYPE(daemon_sets, "apps", "v1", "daemonsets", "DaemonSet", true)
SERIN_RESOURCE_TYPE(replica_sets, "apps", "v1", "replicasets", "ReplicaSet", true)
SERIN_RESOURCE_TYPE(horizontal_pod_autoscalers, "autoscaling", "v2beta2",
                    "horizontalpodautoscalers", "HorizontalPodAutoscaler", true)
SERIN_RESOURCE_TYPE(leases, "coordination.k8s.io", "v1", "leases", "Lease", true)
SERIN_RESOURCE_TYPE(custom_resource_definitions, "apiextensions.k8s.io", "v1",
                    "customresourcedefinitions", "CustomResourceDefinition", false)
SERIN_RESOURCE_TYPE(cluster_roles, "rbac.authorization.k8s.io", "v1", "clusterroles",
                    "ClusterRole", false)
SERIN_RESOURCE_TYPE(cluster_role_bindings, "rbac.authorization.k8s.io", "v1",
                    "clusterrolebindings", "ClusterRoleBinding", false)
SERIN_RESOURCE_TYPE(canaries, "flagger.app", "v1beta1", "canaries", "Canary", true)
SERIN_RESOURCE_TYPE(metric_templates, "flagger.app", "v1beta1", "metrictemplates",
                    "MetricTemplate", true)
SERIN_RESOURCE_TYPE(alert_providers, "flagger.app", "v1beta1", "alertproviders",
                    "AlertProvider", true)
SERIN_RESOURCE_TYPE(canary_requests, "serin.dev", "v1alpha1", "canaryrequests", "CanaryRequest",
                    true)
SERIN_RESOURCE_TYPE(canary_histories, "serin.dev", "v1alpha1", "canaryhistories",
                    "CanaryHistory", true)

#undef SERIN_RESOURCE_TYPE
}  // namespace types

std::optional<ResourceType> find_known_type(std::string_view api_version, std::string_view kind) {
    using Getter = const ResourceType& (*)();
    static constexpr std::array<Getter, 20> kKnown = {
        &types::namespaces,       &types::pods,
        &types::services,         &types::config_maps,
        &types::secrets,          &types::events,
        &types::service_accounts, &types::deployments,
        &types::daemon_sets,      &types::replica_sets,
        &types::horizontal_pod_autoscalers, &types::leases,
        &types::custom_resource_definitions, &types::cluster_roles,
        &types::cluster_role_bindings, &types::canaries,
        &types::metric_templates, &types::alert_providers,
        &types::canary_requests,  &types::canary_histories,
    };
    for (Getter getter : kKnown) {
        const ResourceType& type = getter();
        if (type.kind == kind && type.api_version() == api_version) {
            return type;
        }
    }
    return std::nullopt;
}

}  // namespace serin::kube
