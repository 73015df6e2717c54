#include "controller/workload/workload.hpp"

#include "controller/workload/detail.hpp"
#include "crds/api/json_access.hpp"
#include "platform/core/json.hpp"
#include "platform/core/time_format.hpp"


#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <tuple>
#include <utility>
#include <variant>


namespace serin::canary {

using namespace detail;  // the builders' shared helpers

namespace {

// ---- services --------------------------------------------------------------------------------

Json main_service_port(const api::CanaryService& service) {
    Json port = Json::object();
    port["name"] = service.port_name.empty() ? std::string("http") : service.port_name;
    port["protocol"] = "TCP";
    port["port"] = service.port;
    if (const auto* number = std::get_if<std::int32_t>(&service.target_port)) {
        port["targetPort"] = *number == 0 ? service.port : *number;
    } else {
        const auto& name = std::get<std::string>(service.target_port);
        if (name.empty()) {
            port["targetPort"] = service.port;
        } else {
            port["targetPort"] = name;
        }
    }
    if (!service.app_protocol.empty()) {
        port["appProtocol"] = service.app_protocol;
    }
    return port;
}

/// flagger-spec §3.2 portDiscovery: every container port but the main target port and those of
/// mesh sidecars.
std::vector<Json> discovered_ports(const api::CanaryService& service, const Json& target) {
    std::vector<Json> ports;
    for (const Json& container : array_at(target, {"spec", "template", "spec", "containers"})) {
        const std::string container_name = string_at(container, {"name"});
        if (container_name == "istio-proxy" || container_name == "envoy") {
            continue;
        }
        const Json& container_ports = array_at(container, {"ports"});
        for (std::size_t i = 0; i < container_ports.size(); ++i) {
            const Json& p = container_ports.at(i);
            const auto container_port = int_at(p, {"containerPort"});
            if (!container_port) {
                continue;
            }
            const std::string port_name = string_at(p, {"name"});
            if (const auto* number = std::get_if<std::int32_t>(&service.target_port)) {
                const std::int64_t main = *number == 0 ? service.port : *number;
                if (*container_port == main) {
                    continue;
                }
            } else if (port_name == std::get<std::string>(service.target_port)) {
                continue;
            }
            Json port = Json::object();
            port["name"] =
                port_name.empty() ? "tcp-" + container_name + "-" + std::to_string(i) : port_name;
            port["protocol"] = "TCP";
            port["port"] = *container_port;
            port["targetPort"] = *container_port;
            ports.push_back(std::move(port));
        }
    }
    return ports;
}

Json make_service(const std::string& name, const std::string& ns, const Json& selector,
                  const Json& ports, const std::optional<api::CustomMetadata>& custom,
                  const api::CanaryService& service, const SelectorLabel& label,
                  const Json& owner_reference) {
    Json labels = Json::object();
    Json annotations = Json::object();
    if (custom) {
        labels = custom->labels;
        annotations = custom->annotations;
    }
    labels[label.key] = name;
    annotations[std::string(kFluxReconcileAnnotation)] = "disabled";
    annotations[std::string(kHelmDriftAnnotation)] = "disabled";

    Json svc = Json::object();
    svc["apiVersion"] = "v1";
    svc["kind"] = "Service";
    Json& metadata = svc["metadata"];
    metadata["name"] = name;
    metadata["namespace"] = ns;
    metadata["labels"] = std::move(labels);
    metadata["annotations"] = std::move(annotations);
    if (owner_reference.is_object()) {
        metadata["ownerReferences"] = Json::array({owner_reference});
    }
    Json& spec = svc["spec"];
    spec["type"] = "ClusterIP";
    if (service.headless) {
        spec["clusterIP"] = "None";
    }
    if (!service.traffic_distribution.empty()) {
        spec["trafficDistribution"] = service.traffic_distribution;
    }
    spec["selector"] = selector;
    spec["ports"] = ports;
    return svc;
}

using PortKey = std::tuple<std::string, std::string, std::int64_t, std::string, std::string>;

std::vector<PortKey> port_keys(const Json& ports) {
    std::vector<PortKey> keys;
    if (!ports.is_array()) {
        return keys;
    }
    for (const Json& p : ports) {
        const std::int64_t number = int_or_zero(p, {"port"});
        std::string protocol = string_at(p, {"protocol"});
        if (protocol.empty()) {
            protocol = "TCP";
        }
        const Json* target = member(p, "targetPort");
        // The API server defaults an absent targetPort to the port.
        const std::string target_text = target != nullptr ? dump(*target) : std::to_string(number);
        keys.emplace_back(string_at(p, {"name"}), protocol, number, target_text,
                          string_at(p, {"appProtocol"}));
    }
    std::sort(keys.begin(), keys.end());
    return keys;
}

/// `desired` with the live values of `keys` (absent live = absent).
void keep_live_keys(Json& desired, const Json& live, const std::vector<std::string>& keys) {
    for (const std::string& key : keys) {
        if (const Json* value = member(live, key)) {
            desired[key] = *value;
        } else {
            desired.erase(key);
        }
    }
}

}  // namespace

// ---- services ---------------------------------------------------------------------------------

ServiceSet make_services(const api::Canary& canary, const Json& target, const SelectorLabel& label,
                         const Json& owner_reference) {
    const api::CanaryService& service = canary.spec.service;
    std::string apex_name = service.name;
    if (apex_name.empty()) {
        apex_name = string_at(target, {"metadata", "name"});
    }
    std::string ns = canary.metadata.ns;
    if (ns.empty()) {
        ns = string_at(target, {"metadata", "namespace"});
    }

    Json ports = Json::array({main_service_port(service)});
    if (service.port_discovery) {
        for (Json& port : discovered_ports(service, target)) {
            // Two ports of one name would make the Service invalid; the first one wins.
            const bool taken = std::any_of(ports.begin(), ports.end(), [&port](const Json& p) {
                return string_at(p, {"name"}) == string_at(port, {"name"});
            });
            if (!taken) {
                ports.push_back(std::move(port));
            }
        }
    }

    Json primary_selector = Json::object();
    primary_selector[label.key] = label.value + std::string(kPrimarySuffix);
    Json canary_selector = Json::object();
    canary_selector[label.key] = label.value;

    const std::string primary_name = apex_name + std::string(kPrimarySuffix);
    const std::string canary_name = apex_name + "-canary";
    return ServiceSet{
        make_service(apex_name, ns, primary_selector, ports, service.apex, service, label,
                     owner_reference),
        make_service(primary_name, ns, primary_selector, ports, service.primary, service, label,
                     owner_reference),
        make_service(canary_name, ns, canary_selector, ports, service.canary, service, label,
                     owner_reference),
    };
}

std::optional<Json> service_update(const Json& live, const Json& desired, const api::Canary& canary,
                                   bool keep_selector) {
    Json out = live.is_object() ? live : Json::object();
    out.erase("status");
    bool changed = false;

    const Json& desired_ports = array_at(desired, {"spec", "ports"});
    const Json& live_ports = array_at(live, {"spec", "ports"});
    if (port_keys(desired_ports) != port_keys(live_ports)) {
        Json ports = Json::array();
        for (const Json& port : desired_ports) {
            Json p = port;
            const std::string name = string_at(port, {"name"});
            for (const Json& existing : live_ports) {
                if (string_at(existing, {"name"}) == name) {
                    if (const Json* node_port = member(existing, "nodePort")) {
                        p["nodePort"] = *node_port;
                    }
                    break;
                }
            }
            ports.push_back(std::move(p));
        }
        out["spec"]["ports"] = std::move(ports);
        changed = true;
    }

    if (!keep_selector) {
        const Json& selector = object_at(desired, {"spec", "selector"});
        if (selector != object_at(live, {"spec", "selector"})) {
            out["spec"]["selector"] = selector;
            changed = true;
        }
    }

    if (owned_by(live, canary.metadata.uid)) {
        const auto& unmanaged = canary.spec.service.unmanaged_metadata;
        const Json& live_labels = object_at(live, {"metadata", "labels"});
        const Json& live_annotations = object_at(live, {"metadata", "annotations"});

        Json labels = object_at(desired, {"metadata", "labels"});
        Json annotations = object_at(desired, {"metadata", "annotations"});
        if (unmanaged) {
            keep_live_keys(labels, live_labels, unmanaged->labels);
            keep_live_keys(annotations, live_annotations, unmanaged->annotations);
        }
        for (auto it = live_annotations.begin(); it != live_annotations.end(); ++it) {
            if (starts_with(it.key(), kKubectlAnnotationPrefix)) {
                annotations[it.key()] = *it;
            }
        }
        if (labels != live_labels) {
            out["metadata"]["labels"] = std::move(labels);
            changed = true;
        }
        if (annotations != live_annotations) {
            out["metadata"]["annotations"] = std::move(annotations);
            changed = true;
        }
    }

    if (!changed) {
        return std::nullopt;
    }
    return out;
}

// ---- autoscaler
// ----------------------------------------------------------------------------------

Json make_primary_hpa(const Json& hpa, const api::Canary& canary, const Json& owner_reference) {
    const std::string api_version = string_at(hpa, {"apiVersion"});
    std::string ns = string_at(hpa, {"metadata", "namespace"});
    if (ns.empty()) {
        ns = canary.metadata.ns;
    }
    Json out = Json::object();
    out["apiVersion"] = api_version.empty() ? std::string("autoscaling/v2") : api_version;
    out["kind"] = "HorizontalPodAutoscaler";
    Json& metadata = out["metadata"];
    metadata["name"] = string_at(hpa, {"metadata", "name"}) + std::string(kPrimarySuffix);
    metadata["namespace"] = ns;
    metadata["labels"] = without_toolkit_keys(object_at(hpa, {"metadata", "labels"}));
    if (owner_reference.is_object()) {
        metadata["ownerReferences"] = Json::array({owner_reference});
    }

    const Json& source = object_at(hpa, {"spec"});
    Json& spec = out["spec"];
    Json& scale_target = spec["scaleTargetRef"];
    const std::string target_api_version = string_at(source, {"scaleTargetRef", "apiVersion"});
    if (!target_api_version.empty()) {
        scale_target["apiVersion"] = target_api_version;
    }
    scale_target["kind"] = string_at(source, {"scaleTargetRef", "kind"});
    scale_target["name"] = canary.spec.target_ref.name + std::string(kPrimarySuffix);
    copy_field(source, spec, "minReplicas");
    copy_field(source, spec, "maxReplicas");
    copy_field(source, spec, "metrics");
    copy_field(source, spec, "behavior");
    if (canary.spec.autoscaler_ref && canary.spec.autoscaler_ref->primary_scaler_replicas) {
        const api::ScalerReplicas& replicas = *canary.spec.autoscaler_ref->primary_scaler_replicas;
        if (replicas.min_replicas) {
            spec["minReplicas"] = *replicas.min_replicas;
        }
        if (replicas.max_replicas) {
            spec["maxReplicas"] = *replicas.max_replicas;
        }
    }
    return out;
}

std::optional<Json> hpa_update(const Json& live, const Json& desired) {
    const Json& want = object_at(desired, {"spec"});
    const Json& have = object_at(live, {"spec"});
    // An absent minReplicas means 1 (the API default).
    const bool same =
        int_at(want, {"minReplicas"}).value_or(1) == int_at(have, {"minReplicas"}).value_or(1) &&
        int_at(want, {"maxReplicas"}) == int_at(have, {"maxReplicas"}) &&
        matches(member(want, "metrics"), member(have, "metrics")) &&
        matches(member(want, "behavior"), member(have, "behavior"));
    if (same) {
        return std::nullopt;
    }
    Json out = live.is_object() ? live : Json::object();
    out.erase("status");
    Json& spec = out["spec"];
    for (std::string_view key : {"minReplicas", "maxReplicas", "metrics", "behavior"}) {
        if (const Json* value = member(want, key)) {
            spec[std::string(key)] = *value;
        } else {
            spec.erase(std::string(key));
        }
    }
    return out;
}

}  // namespace serin::canary
