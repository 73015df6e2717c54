#include "devcluster/meshsim/kuma_apisix.hpp"

namespace serin::meshsim {

using Json = nlohmann::json;

namespace {

const Json& at(const Json& object, const char* key) {
    static const Json null;
    return object.is_object() && object.contains(key) ? object[key] : null;
}

std::string text(const Json& value) { return value.is_string() ? value.get<std::string>() : std::string(); }

double weight_of(const Json& value, double fallback) {
    return value.is_number() ? value.get<double>() : fallback;
}

/// Adds each weight's share of the total to `out.shares`.
void normalise(ProviderSplit& out, const std::vector<std::pair<std::string, double>>& weights) {
    double total = 0;
    for (const auto& [service, weight] : weights) {
        total += weight > 0 ? weight : 0;
    }
    if (total <= 0) {
        return;
    }
    for (const auto& [service, weight] : weights) {
        if (weight > 0) {
            out.shares[service] += weight / total;
        }
    }
}

}  // namespace

std::optional<ProviderSplit> kuma_split(const std::vector<Json>& routes, const std::string& ns,
                                        const std::string& apex) {
    const std::string destination = apex + "_" + ns + "_svc_";
    for (const Json& r : routes) {
        if (text(at(r, "kind")) != "TrafficRoute" || text(at(at(r, "metadata"), "name")) != apex) {
            continue;
        }
        const Json& spec = at(r, "spec");
        bool routes_apex = false;
        const Json& destinations = at(spec, "destinations");
        if (destinations.is_array()) {
            for (const Json& d : destinations) {
                routes_apex |= text(at(at(d, "match"), "kuma.io/service")).starts_with(destination);
            }
        }
        if (!routes_apex) {
            continue;  // another namespace's service of the same name
        }
        ProviderSplit out;
        std::vector<std::pair<std::string, double>> weights;
        const Json& split = at(at(spec, "conf"), "split");
        if (split.is_array()) {
            for (const Json& s : split) {
                const std::string service = text(at(at(s, "destination"), "kuma.io/service"));
                const std::string name = service.substr(0, service.find('_'));
                weights.emplace_back(name, weight_of(at(s, "weight"), 0));
                out.labels[name] = service;
            }
        }
        normalise(out, weights);
        return out;
    }
    return std::nullopt;
}

std::optional<ProviderSplit> apisix_split(const std::vector<Json>& routes, const std::string& ns,
                                          const std::string& apex) {
    std::optional<ProviderSplit> direct;
    for (const Json& r : routes) {
        if (text(at(r, "kind")) != "ApisixRoute" || text(at(at(r, "metadata"), "namespace")) != ns) {
            continue;
        }
        const std::string route = ns + "_" + text(at(at(r, "metadata"), "name")) + "_";
        const Json& http = at(at(r, "spec"), "http");
        if (!http.is_array()) {
            continue;
        }
        for (const Json& entry : http) {
            const Json& backends = at(entry, "backends");
            if (!backends.is_array()) {
                continue;
            }
            const std::string label = route + text(at(entry, "name"));
            ProviderSplit out;
            std::vector<std::pair<std::string, double>> weights;
            bool canary_route = false;
            bool routes_apex = false;
            for (const Json& b : backends) {
                const std::string service = text(at(b, "serviceName"));
                canary_route |= service == apex + "-primary";
                routes_apex |= service == apex;
                weights.emplace_back(service, weight_of(at(b, "weight"), 100));  // APISIX's default
                out.labels[service] = label;
            }
            if (canary_route) {
                normalise(out, weights);
                return out;
            }
            if (routes_apex && !direct) {
                direct = ProviderSplit{{{apex, 1.0}}, {{apex, label}}};
            }
        }
    }
    return direct;
}

}  // namespace serin::meshsim
