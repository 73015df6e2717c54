#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

/// meshsim's model of the Gloo Edge and Traefik routing objects (pure): how each splits an apex
/// Service's stream, and the names their proxies report the canary and primary under.
namespace serin::meshsim {

/// Share of an apex's stream per Service name, and the label each Service's requests carry in
/// the proxy's metric families (Gloo: Envoy's cluster; Traefik: its service name).
struct EdgeSplit {
    std::map<std::string, double> shares;
    std::map<std::string, std::string> labels;
};

/// Gloo: the RouteTable's routes (kMatchedShare for every route but the last) split by their
/// multi destinations' weights; each destination Upstream, looked up among `objects` (kind
/// Upstream in the table's namespace unless the destination names another), reaches the
/// Service of its spec.kube. Envoy's cluster of an Upstream is `<upstream>_<its namespace>`.
EdgeSplit route_table_split(const nlohmann::json& table, const std::vector<nlohmann::json>& objects);

/// Traefik: the TraefikService's weighted services by weight (an entry without a weight counts
/// 1, as Traefik reads it); each one's Traefik service is `<ns>-<name>-<port>@kubernetescrd`.
EdgeSplit traefik_service_split(const nlohmann::json& service);

}  // namespace serin::meshsim
