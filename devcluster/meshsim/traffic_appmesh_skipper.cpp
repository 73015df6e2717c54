#include "devcluster/meshsim/traffic_appmesh_skipper.hpp"

#include <cctype>

#include "devcluster/meshsim/traffic.hpp"

namespace serin::meshsim {

namespace {

const Json& at(const Json& object, const char* key) {
    static const Json null;
    return object.is_object() && object.contains(key) ? object[key] : null;
}

std::string text(const Json& value) { return value.is_string() ? value.get<std::string>() : std::string(); }

double weight_of(const Json& value) {
    if (value.is_number()) {
        return value.get<double>();
    }
    return 0;
}

std::string word_characters(std::string value) {
    for (char& c : value) {
        if (std::isalnum(static_cast<unsigned char>(c)) == 0 && c != '_') {
            c = '_';
        }
    }
    return value;
}

}  // namespace

std::map<std::string, double> virtual_router_shares(const Json& router, const std::vector<Json>& routes) {
    const std::string ns = text(at(at(router, "metadata"), "namespace"));
    auto service_of = [&](const std::string& node) {
        for (const Json& r : routes) {
            if (text(at(r, "kind")) == "VirtualNode" && text(at(at(r, "metadata"), "namespace")) == ns &&
                text(at(at(r, "metadata"), "name")) == node) {
                const std::string host = text(at(at(at(at(r, "spec"), "serviceDiscovery"), "dns"), "hostname"));
                if (!host.empty()) {
                    return host.substr(0, host.find('.'));
                }
            }
        }
        return node;
    };
    std::map<std::string, double> shares;
    const Json& list = at(at(router, "spec"), "routes");
    if (!list.is_array()) {
        return shares;
    }
    for (std::size_t i = 0; i < list.size(); ++i) {
        const Json& targets = at(at(at(list[i], "httpRoute"), "action"), "weightedTargets");
        double total = 0;
        std::vector<std::pair<std::string, double>> weights;
        if (targets.is_array()) {
            for (const Json& t : targets) {
                weights.emplace_back(service_of(text(at(at(t, "virtualNodeRef"), "name"))), weight_of(at(t, "weight")));
                total += weights.back().second;
            }
        }
        const double share = list.size() <= 1          ? 1
                             : i + 1 < list.size() ? kMatchedShare
                                                   : 1 - kMatchedShare * static_cast<double>(list.size() - 1);
        if (total <= 0) {
            continue;
        }
        for (const auto& [service, weight] : weights) {
            shares[service] += share * weight / total;
        }
    }
    return shares;
}

std::string skipper_route_id(const std::string& ns, const std::string& ingress, const std::string& host,
                             const std::string& path, const std::string& service) {
    return "kube_" + word_characters(ns) + "__" + word_characters(ingress) + "__" + word_characters(host) + "__" +
           word_characters(path) + "__" + word_characters(service);
}

std::optional<SkipperSplit> skipper_split(const std::vector<Json>& routes, const std::string& ns,
                                          const std::string& apex) {
    const std::string canary_service = apex + "-canary";
    for (const Json& r : routes) {
        const Json& metadata = at(r, "metadata");
        const Json& annotations = at(metadata, "annotations");
        if (text(at(r, "kind")) != "Ingress" || text(at(metadata, "namespace")) != ns ||
            !at(annotations, "zalando.org/backend-weights").is_string()) {
            continue;
        }
        const std::string name = text(at(metadata, "name"));
        // The first rule and path to S-canary, and the paths of that rule to the others.
        const Json& rules = at(at(r, "spec"), "rules");
        if (!rules.is_array()) {
            continue;
        }
        for (const Json& rule : rules) {
            const Json& paths = at(at(rule, "http"), "paths");
            if (!paths.is_array()) {
                continue;
            }
            std::map<std::string, std::string> ids;
            for (const Json& p : paths) {
                const std::string service = text(at(at(at(p, "backend"), "service"), "name"));
                if (!ids.count(service)) {
                    ids[service] = skipper_route_id(ns, name, text(at(rule, "host")), text(at(p, "path")), service);
                }
            }
            if (!ids.count(canary_service)) {
                continue;
            }
            SkipperSplit out;
            const std::string predicate = text(at(annotations, "zalando.org/skipper-predicate"));
            if (predicate.starts_with("False()")) {
                // The user's Ingress (the canary's name without -canary) routes S.
                const std::string user = name.ends_with("-canary") ? name.substr(0, name.size() - 7) : name;
                out.shares[apex] = 1;
                out.route_ids[apex] = skipper_route_id(ns, user, text(at(rule, "host")),
                                                       text(at(paths[0], "path")), apex);
                return out;
            }
            const Json weights =
                Json::parse(text(at(annotations, "zalando.org/backend-weights")), nullptr, false);
            double total = 0;
            for (const auto& [service, id] : ids) {
                const double w = weights.is_object() ? weight_of(at(weights, service.c_str())) : 0;
                if (w > 0 && (service == canary_service || service == apex + "-primary")) {
                    out.shares[service] = w;
                    out.route_ids[service] = id;
                    total += w;
                }
            }
            for (auto& [service, share] : out.shares) {
                share /= total;
            }
            return out;
        }
    }
    return std::nullopt;
}

}  // namespace serin::meshsim
