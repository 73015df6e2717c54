#include "devcluster/meshsim/edge_routes.hpp"

#include "devcluster/meshsim/traffic.hpp"

namespace serin::meshsim {

namespace {

const Json& field(const Json& object, const char* key) {
    static const Json null;
    return object.is_object() && object.contains(key) ? object[key] : null;
}

std::string text(const Json& value) { return value.is_string() ? value.get<std::string>() : std::string(); }

double weight_of(const Json& value, double fallback) {
    return value.is_number() ? value.get<double>() : fallback;
}

std::string port_text(const Json& port) {
    if (port.is_number_integer()) {
        return std::to_string(port.get<long>());
    }
    return text(port);
}

/// Adds `route_share` of the stream, split by `weights`, to `out`.
void add_split(EdgeSplit& out, const std::vector<std::pair<std::string, double>>& weights,
               double route_share) {
    double total = 0;
    for (const auto& [name, weight] : weights) {
        total += weight;
    }
    if (total <= 0) {
        return;
    }
    for (const auto& [name, weight] : weights) {
        out.shares[name] += route_share * weight / total;
    }
}

}  // namespace

EdgeSplit route_table_split(const Json& table, const std::vector<Json>& objects) {
    EdgeSplit out;
    const std::string ns = text(field(field(table, "metadata"), "namespace"));
    const Json& routes = field(field(table, "spec"), "routes");
    if (!routes.is_array()) {
        return out;
    }
    auto upstream = [&](const std::string& name, const std::string& upstream_ns) -> const Json* {
        for (const Json& o : objects) {
            const Json& metadata = field(o, "metadata");
            if (text(field(o, "kind")) == "Upstream" && text(field(metadata, "name")) == name &&
                text(field(metadata, "namespace")) == upstream_ns) {
                return &o;
            }
        }
        return nullptr;
    };
    for (std::size_t i = 0; i < routes.size(); ++i) {
        std::vector<std::pair<std::string, double>> weights;
        const Json& destinations = field(field(field(routes[i], "routeAction"), "multi"), "destinations");
        if (destinations.is_array()) {
            for (const Json& d : destinations) {
                const Json& ref = field(field(d, "destination"), "upstream");
                const std::string name = text(field(ref, "name"));
                std::string upstream_ns = text(field(ref, "namespace"));
                if (upstream_ns.empty()) {
                    upstream_ns = ns;
                }
                const Json* found = upstream(name, upstream_ns);
                if (found == nullptr) {
                    continue;  // Gloo has no such cluster
                }
                const Json& kube = field(field(*found, "spec"), "kube");
                const std::string service = text(field(kube, "serviceName"));
                if (service.empty() || text(field(kube, "serviceNamespace")) != ns) {
                    continue;
                }
                weights.emplace_back(service, weight_of(field(d, "weight"), 0));
                out.labels[service] = name + "_" + upstream_ns;
            }
        }
        const double share = routes.size() <= 1 ? 1
                             : i + 1 < routes.size()
                                 ? kMatchedShare
                                 : 1 - kMatchedShare * static_cast<double>(routes.size() - 1);
        add_split(out, weights, share);
    }
    return out;
}

EdgeSplit traefik_service_split(const Json& service) {
    EdgeSplit out;
    const std::string ns = text(field(field(service, "metadata"), "namespace"));
    const Json& entries = field(field(field(service, "spec"), "weighted"), "services");
    std::vector<std::pair<std::string, double>> weights;
    if (entries.is_array()) {
        for (const Json& e : entries) {
            const std::string name = text(field(e, "name"));
            std::string entry_ns = text(field(e, "namespace"));
            if (name.empty() || (!entry_ns.empty() && entry_ns != ns) ||
                text(field(e, "kind")) == "TraefikService") {
                continue;  // meshsim follows Services of the apex's namespace only
            }
            weights.emplace_back(name, weight_of(field(e, "weight"), 1));
            out.labels[name] = ns + "-" + name + "-" + port_text(field(e, "port")) + "@kubernetescrd";
        }
    }
    add_split(out, weights, 1);
    return out;
}

}  // namespace serin::meshsim
