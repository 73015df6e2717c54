#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

/// meshsim's model of Kuma and APISIX routing (pure): how their objects split an apex Service's
/// stream, and the label each destination gets in that data plane's metrics.
namespace serin::meshsim {

/// Shares (0..1 of an apex's stream) per Service, and each Service's metric label value.
struct ProviderSplit {
    std::map<std::string, double> shares;
    std::map<std::string, std::string> labels;
};

/// Kuma: the cluster-scoped TrafficRoute named `apex` whose destination is the Kuma service
/// `<apex>_<ns>_svc_<port>`; each split `<service>_<ns>_svc_<port>` gets its weight's share and
/// that name as its label (Envoy's `service`). nullopt when no such TrafficRoute exists.
std::optional<ProviderSplit> kuma_split(const std::vector<nlohmann::json>& routes, const std::string& ns,
                                        const std::string& apex);

/// APISIX: an ApisixRoute in `ns` with an http entry whose backends include `<apex>-primary` (the
/// canary route, which shadows the user's by its priority) splits by the backends' weights; else
/// one with a backend `apex` sends it everything. Each Service's label is APISIX's route name
/// `<ns>_<ApisixRoute>_<http entry name>`. nullopt when no ApisixRoute routes the apex.
std::optional<ProviderSplit> apisix_split(const std::vector<nlohmann::json>& routes,
                                          const std::string& ns, const std::string& apex);

}  // namespace serin::meshsim
