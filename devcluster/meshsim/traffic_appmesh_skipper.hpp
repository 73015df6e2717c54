#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

/// meshsim's model of App Mesh and Skipper (pure), used by plan() in traffic.cpp.
namespace serin::meshsim {

/// App Mesh: the shares of apex S that VirtualRouter S (`router`) sends to each Service, by its
/// routes' weighted targets (kMatchedShare for every route but the last). A target names a
/// VirtualNode; its Service is the first label of the node's DNS hostname when the node is in
/// `routes`, else the node's name (Flagger names them after the Services).
std::map<std::string, double> virtual_router_shares(const nlohmann::json& router,
                                                    const std::vector<nlohmann::json>& routes);

/// Skipper: how a canary Ingress (annotation zalando.org/backend-weights, a path to S-canary)
/// splits apex `apex`, with the route id Skipper gives each Service's path
/// (`kube_<ns>__<ingress>__<host>__<path>__<service>`, every non-word character as '_'). With
/// the predicate False() (canary weight 0) the user's Ingress routes all of it to S. nullopt
/// when no such canary Ingress exists.
struct SkipperSplit {
    std::map<std::string, double> shares;        ///< Service -> share
    std::map<std::string, std::string> route_ids;  ///< Service -> route id
};
std::optional<SkipperSplit> skipper_split(const std::vector<nlohmann::json>& routes,
                                          const std::string& ns, const std::string& apex);

/// Skipper's route id of `ingress`'s path `path` on `host` to `service`.
std::string skipper_route_id(const std::string& ns, const std::string& ingress, const std::string& host,
                             const std::string& path, const std::string& service);

}  // namespace serin::meshsim
