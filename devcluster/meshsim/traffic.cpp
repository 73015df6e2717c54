#include "devcluster/meshsim/traffic.hpp"

#include "devcluster/meshsim/edge_routes.hpp"
#include "devcluster/meshsim/kuma_apisix.hpp"
#include "devcluster/meshsim/traffic_appmesh_skipper.hpp"

#include <algorithm>
#include <cmath>
#include <functional>
#include <optional>
#include <set>

namespace serin::meshsim {

namespace {

std::string str(const Json& object, std::initializer_list<const char*> path) {
    const Json* at = &object;
    for (const char* key : path) {
        if (!at->is_object() || !at->contains(key)) {
            return {};
        }
        at = &(*at)[key];
    }
    return at->is_string() ? at->get<std::string>() : std::string();
}

const Json& member(const Json& object, const char* key) {
    static const Json null;
    return object.is_object() && object.contains(key) ? object[key] : null;
}

double number(const Json& value, double fallback) {
    if (value.is_number()) {
        return value.get<double>();
    }
    if (value.is_string()) {
        try {
            return std::stod(value.get<std::string>());  // a Quantity such as "90"
        } catch (const std::exception&) {
        }
    }
    return fallback;
}

/// A pod-template annotation as a number, `fallback` when absent or not a number.
double annotation(const Json& deployment, const char* key, double fallback) {
    const Json& annotations =
        member(member(member(member(deployment, "spec"), "template"), "metadata"), "annotations");
    const Json& value = member(annotations, key);
    return value.is_string() ? number(value, fallback) : fallback;
}

std::optional<Version> version_of(const Json& deployment) {
    const Json& status = member(deployment, "status");
    if (number(member(status, "availableReplicas"), 0) <= 0) {
        return std::nullopt;  // no pod to answer
    }
    Version v;
    v.ns = str(deployment, {"metadata", "namespace"});
    v.workload = str(deployment, {"metadata", "name"});
    std::string hash = std::to_string(std::hash<std::string>{}(v.ns + "/" + v.workload) % 100000000);
    v.pod = v.workload + "-" + hash + "-sim";
    // An error rate may be a fraction (0.2) or a percentage (20).
    const double rate = annotation(deployment, kErrorRateAnnotation, 0);
    v.error_rate = rate > 1 ? rate / 100 : rate;
    v.latency_ms = annotation(deployment, kLatencyAnnotation, 10);
    return v;
}

bool selects(const Json& selector, const Json& labels) {
    if (!selector.is_object() || selector.empty() || !labels.is_object()) {
        return false;
    }
    for (auto it = selector.begin(); it != selector.end(); ++it) {
        if (!labels.contains(it.key()) || labels[it.key()] != *it) {
            return false;
        }
    }
    return true;
}

using Shares = std::map<std::string, double>;  // Service name -> share of the apex's stream

/// Adds `route_share` of the stream split by `weights` (service -> weight) to `shares`.
void split(Shares& shares, const std::vector<std::pair<std::string, double>>& weights,
           double route_share) {
    double total = 0;
    for (const auto& [service, weight] : weights) {
        total += weight;
    }
    if (total <= 0) {
        return;
    }
    for (const auto& [service, weight] : weights) {
        shares[service] += route_share * weight / total;
    }
}

/// Each route but the last gets kMatchedShare, the last what is left.
double route_share(std::size_t index, std::size_t count) {
    if (count <= 1) {
        return 1;
    }
    return index + 1 < count ? kMatchedShare : 1 - kMatchedShare * static_cast<double>(count - 1);
}

Shares virtual_service_shares(const Json& vs) {
    Shares shares;
    const Json& spec = member(vs, "spec");
    const Json& http = member(spec, "http");
    const Json& routes = http.is_array() && !http.empty() ? http : member(spec, "tcp");
    if (!routes.is_array()) {
        return shares;
    }
    for (std::size_t i = 0; i < routes.size(); ++i) {
        const Json& destinations = member(routes[i], "route");
        std::vector<std::pair<std::string, double>> weights;
        if (destinations.is_array()) {
            for (const Json& d : destinations) {
                weights.emplace_back(str(d, {"destination", "host"}),
                                     number(member(d, "weight"), destinations.size() == 1 ? 100 : 0));
            }
        }
        const double share = route_share(i, routes.size());
        split(shares, weights, share);
        const std::string mirror = str(routes[i], {"mirror", "host"});
        if (!mirror.empty()) {
            const double percent = number(member(member(routes[i], "mirrorPercentage"), "value"), 100);
            shares[mirror] += share * percent / 100;
        }
    }
    return shares;
}

Shares traffic_split_shares(const Json& split_object) {
    Shares shares;
    std::vector<std::pair<std::string, double>> weights;
    const Json& backends = member(member(split_object, "spec"), "backends");
    if (backends.is_array()) {
        for (const Json& b : backends) {
            weights.emplace_back(str(b, {"service"}), number(member(b, "weight"), 0));
        }
    }
    split(shares, weights, 1);
    return shares;
}

Shares http_route_shares(const Json& route) {
    Shares shares;
    const Json& rules = member(member(route, "spec"), "rules");
    if (!rules.is_array()) {
        return shares;
    }
    for (std::size_t i = 0; i < rules.size(); ++i) {
        std::vector<std::pair<std::string, double>> weights;
        const Json& backends = member(rules[i], "backendRefs");
        if (backends.is_array()) {
            for (const Json& b : backends) {
                weights.emplace_back(str(b, {"name"}), number(member(b, "weight"), 1));
            }
        }
        const double share = route_share(i, rules.size());
        split(shares, weights, share);
        const Json& filters = member(rules[i], "filters");
        if (filters.is_array()) {
            for (const Json& f : filters) {
                if (str(f, {"type"}) == "RequestMirror") {
                    shares[str(f, {"requestMirror", "backendRef", "name"})] += share;
                }
            }
        }
    }
    return shares;
}

/// Whether `key` is `<any prefix>/<name>`.
bool prefixed(const std::string& key, std::string_view name) {
    return key.size() > name.size() && key.ends_with(name) &&
           key[key.size() - name.size() - 1] == '/';
}

/// The Services an Ingress's paths send to.
std::vector<std::pair<std::string, std::string>> ingress_backends(const Json& ingress) {
    std::vector<std::pair<std::string, std::string>> out;  // service, port
    const Json& rules = member(member(ingress, "spec"), "rules");
    if (!rules.is_array()) {
        return out;
    }
    for (const Json& rule : rules) {
        const Json& paths = member(member(rule, "http"), "paths");
        if (!paths.is_array()) {
            continue;
        }
        for (const Json& p : paths) {
            const Json& service = member(member(p, "backend"), "service");
            const Json& port = member(service, "port");
            const std::string number =
                member(port, "number").is_number() ? std::to_string(member(port, "number").get<long>())
                                                   : str(port, {"name"});
            out.emplace_back(str(service, {"name"}), number);
        }
    }
    return out;
}

/// How NGINX ingresses split apex `name`: nullopt when no Ingress routes it.
struct IngressSplit {
    std::string ingress;
    std::string upstream;
    double canary_share = 0;
};

std::optional<IngressSplit> ingress_split(const std::vector<Json>& routes, const std::string& ns,
                                          const std::string& name) {
    std::optional<IngressSplit> out;
    std::string canary_name;
    for (const Json& r : routes) {
        if (str(r, {"kind"}) != "Ingress" || str(r, {"metadata", "namespace"}) != ns) {
            continue;
        }
        const Json& annotations = member(member(r, "metadata"), "annotations");
        bool canary = false;
        double weight = 0;
        bool matched = false;
        if (annotations.is_object()) {
            for (auto it = annotations.begin(); it != annotations.end(); ++it) {
                const std::string value = it->is_string() ? it->get<std::string>() : "";
                if (prefixed(it.key(), "canary")) {
                    canary = value == "true";
                } else if (prefixed(it.key(), "canary-weight")) {
                    weight = number(*it, 0);
                } else if (prefixed(it.key(), "canary-by-header") ||
                           prefixed(it.key(), "canary-by-cookie")) {
                    matched = !value.empty();
                }
            }
        }
        for (const auto& [service, port] : ingress_backends(r)) {
            if (canary && service == name + "-canary") {
                if (!out) {
                    out = IngressSplit{};
                }
                const double w = std::clamp(weight, 0.0, 100.0) / 100;
                out->canary_share = matched ? kMatchedShare + (1 - kMatchedShare) * w : w;
                out->upstream = ns + "-" + service + "-" + port;
                canary_name = str(r, {"metadata", "name"});
                break;
            }
            if (!canary && service == name) {
                if (!out) {
                    out = IngressSplit{};
                }
                out->ingress = str(r, {"metadata", "name"});
                break;
            }
        }
    }
    if (out && out->ingress.empty() && canary_name.ends_with("-canary")) {
        out->ingress = canary_name.substr(0, canary_name.size() - 7);
    }
    return out;
}

/// Contour: each route's services by weight (kMatchedShare for every route but the last); the
/// port of each service in `ports`, for Envoy's cluster names.
Shares http_proxy_shares(const Json& proxy, std::map<std::string, std::string>& ports) {
    Shares shares;
    const Json& routes = member(member(proxy, "spec"), "routes");
    if (!routes.is_array()) {
        return shares;
    }
    for (std::size_t i = 0; i < routes.size(); ++i) {
        std::vector<std::pair<std::string, double>> weights;
        const Json& services = member(routes[i], "services");
        if (services.is_array()) {
            for (const Json& s : services) {
                const std::string name = str(s, {"name"});
                weights.emplace_back(name, number(member(s, "weight"), 0));
                const Json& port = member(s, "port");
                if (port.is_number()) {
                    ports[name] = std::to_string(port.get<long>());
                }
            }
        }
        split(shares, weights, route_share(i, routes.size()));
    }
    return shares;
}

/// The versions (ready Deployments) `service` reaches.
std::vector<Version> reached(const Json& service, const std::vector<Json>& deployments) {
    std::vector<Version> out;
    const std::string ns = str(service, {"metadata", "namespace"});
    const Json& selector = member(member(service, "spec"), "selector");
    for (const Json& d : deployments) {
        if (str(d, {"metadata", "namespace"}) != ns ||
            !selects(selector,
                     member(member(member(member(d, "spec"), "template"), "metadata"), "labels"))) {
            continue;
        }
        if (auto v = version_of(d)) {
            out.push_back(*v);
        }
    }
    return out;
}

}  // namespace

std::vector<Flow> plan(const std::vector<Json>& services, const std::vector<Json>& deployments,
                       const std::vector<Json>& routes) {
    std::map<std::pair<std::string, std::string>, const Json*> by_name;  // (ns, name) -> Service
    for (const Json& s : services) {
        by_name[{str(s, {"metadata", "namespace"}), str(s, {"metadata", "name"})}] = &s;
    }
    std::vector<Flow> flows;
    for (const auto& [key, service] : by_name) {
        const auto& [ns, name] = key;
        if (!by_name.count({ns, name + "-primary"}) || !by_name.count({ns, name + "-canary"})) {
            continue;  // not an apex
        }
        Shares shares;
        bool routed = false;
        std::map<std::string, std::string> envoy_ports;  // Contour: service -> port
        std::map<std::string, std::string> edge_labels;  // Gloo, Traefik: service -> label
        std::string edge_kind;
        bool appmesh = false;
        for (const Json& r : routes) {
            const std::string kind = str(r, {"kind"});
            if (str(r, {"metadata", "namespace"}) != ns || str(r, {"metadata", "name"}) != name ||
                kind == "Ingress" || kind == "Upstream" || kind == "ApisixRoute" ||
                kind == "TrafficRoute") {
                continue;  // Ingress, ApisixRoute, TrafficRoute: below; Upstreams: through RouteTables
            }
            if (kind == "RouteTable" || kind == "TraefikService") {
                EdgeSplit edge = kind == "RouteTable" ? route_table_split(r, routes) : traefik_service_split(r);
                shares = std::move(edge.shares);
                edge_labels = std::move(edge.labels);
                edge_kind = kind;
                routed = true;
                break;
            }
            if (kind == "VirtualRouter") {
                shares = virtual_router_shares(r, routes);
                appmesh = routed = true;
                break;
            }
            shares = kind == "VirtualService" ? virtual_service_shares(r)
                     : kind == "TrafficSplit" ? traffic_split_shares(r)
                     : kind == "HTTPProxy"    ? http_proxy_shares(r, envoy_ports)
                                              : http_route_shares(r);
            routed = true;
            break;
        }
        // Kuma's TrafficRoute, APISIX's routes: their metric labels per destination Service.
        std::map<std::string, std::string> kuma_services;
        std::map<std::string, std::string> apisix_routes;
        if (auto kuma = routed ? std::nullopt : kuma_split(routes, ns, name)) {
            shares = kuma->shares;
            kuma_services = kuma->labels;
            routed = true;
        }
        if (auto apisix = routed ? std::nullopt : apisix_split(routes, ns, name)) {
            shares = apisix->shares;
            apisix_routes = apisix->labels;
            routed = true;
        }
        const std::optional<SkipperSplit> skipper = routed ? std::nullopt : skipper_split(routes, ns, name);
        if (skipper) {
            shares = skipper->shares;
            routed = true;
        }
        std::optional<IngressSplit> nginx = routed ? std::nullopt : ingress_split(routes, ns, name);
        if (nginx) {
            shares[name] = 1 - nginx->canary_share;
            shares[name + "-canary"] = nginx->canary_share;
        } else if (!routed) {
            shares[name] = 1;  // the apex Service's own selector
        }
        for (const auto& [target, share] : shares) {
            auto found = by_name.find({ns, target});
            if (share <= 0 || found == by_name.end()) {
                continue;
            }
            const std::vector<Version> versions = reached(*found->second, deployments);
            for (const Version& v : versions) {
                Flow flow;  // fields by name: every router adds its own
                flow.ns = ns;
                flow.apex = name;
                flow.version = v;
                flow.share = share / static_cast<double>(versions.size());
                if (auto port = envoy_ports.find(target); port != envoy_ports.end()) {
                    flow.envoy_cluster = ns + "_" + target + "_" + port->second;
                }
                if (auto label = edge_labels.find(target); label != edge_labels.end()) {
                    (edge_kind == "RouteTable" ? flow.envoy_cluster : flow.traefik_service) = label->second;
                }
                if (auto kuma = kuma_services.find(target); kuma != kuma_services.end()) {
                    flow.kuma_service = kuma->second;
                }
                if (auto apisix = apisix_routes.find(target); apisix != apisix_routes.end()) {
                    flow.apisix_route = apisix->second;
                }
                flow.appmesh = appmesh;
                if (skipper) {
                    flow.skipper_route = skipper->route_ids.at(target);
                }
                if (nginx) {
                    flow.ingress = nginx->ingress;
                    flow.canary_upstream = target == name + "-canary" ? nginx->upstream : "";
                }
                flows.push_back(std::move(flow));
            }
        }
    }
    return flows;
}

std::vector<Outcome> Stream::step(const std::vector<Flow>& flows, double rate, double seconds) {
    std::map<std::tuple<std::string, std::string, std::string, std::string, std::string, std::string>,
             Outcome>
        outcomes;
    for (const Flow& flow : flows) {
        auto& [requests, errors] =
            carry_[{flow.ns, flow.apex,
                    flow.version.workload + "|" + flow.canary_upstream + "|" + flow.envoy_cluster +
                        "|" + flow.traefik_service + "|" + flow.kuma_service + "|" +
                        flow.apisix_route + "|" + flow.skipper_route + (flow.appmesh ? "|appmesh" : "")}];
        requests += rate * seconds * flow.share;
        const double whole = std::floor(requests);
        requests -= whole;
        errors += whole * flow.version.error_rate;
        const double failed = std::floor(errors + 1e-9);
        errors -= failed;
        Outcome& out = outcomes[{flow.version.ns, flow.version.workload, flow.ingress,
                                 flow.canary_upstream, flow.envoy_cluster,
                                 flow.traefik_service + "|" + flow.kuma_service + "|" +
                                     flow.apisix_route + "|" + flow.skipper_route +
                                     (flow.appmesh ? "|appmesh" : "")}];
        out.version = flow.version;
        out.ingress = flow.ingress;
        out.canary_upstream = flow.canary_upstream;
        out.envoy_cluster = flow.envoy_cluster;
        out.traefik_service = flow.traefik_service;
        out.kuma_service = flow.kuma_service;
        out.apisix_route = flow.apisix_route;
        out.appmesh = flow.appmesh;
        out.skipper_route = flow.skipper_route;
        out.requests += static_cast<long>(whole);
        out.errors += static_cast<long>(failed);
    }
    std::vector<Outcome> result;
    result.reserve(outcomes.size());
    for (auto& [key, outcome] : outcomes) {
        result.push_back(std::move(outcome));
    }
    return result;
}

double latency_sample(const Version& version, long index) {
    const double position = static_cast<double>(index % 21) / 20.0;  // 0, 0.05, ..., 1
    return version.latency_ms * (0.9 + 0.2 * position);
}

std::optional<RequestRouter::Routed> RequestRouter::route(const std::vector<Flow>& flows,
                                                          const std::string& ns,
                                                          const std::string& apex) {
    // Mirrored copies are extra flows of a workload that already has one: the first flow of each
    // workload is the one that answers.
    std::vector<const Flow*> mine;
    std::set<std::string> seen;
    double total_share = 0;
    for (const Flow& f : flows) {
        if (f.ns == ns && f.apex == apex && f.share > 0 && seen.insert(f.version.workload).second) {
            mine.push_back(&f);
            total_share += f.share;
        }
    }
    if (mine.empty()) {
        return std::nullopt;
    }
    long& total = total_[{ns, apex}];
    const Flow* best = nullptr;
    double best_deficit = 0;
    for (const Flow* f : mine) {
        const double due = f->share / total_share * static_cast<double>(total + 1);
        const double deficit = due - static_cast<double>(sent_[{ns, apex, f->version.workload}]);
        if (best == nullptr || deficit > best_deficit) {
            best = f;
            best_deficit = deficit;
        }
    }
    ++total;
    ++sent_[{ns, apex, best->version.workload}];
    long& answered = answered_[{ns, best->version.workload}];
    long& errors = errors_[{ns, best->version.workload}];
    ++answered;
    Routed out{best->version, false};
    if (static_cast<double>(errors + 1) <= best->version.error_rate * static_cast<double>(answered)) {
        ++errors;
        out.error = true;
    }
    return out;
}

}  // namespace serin::meshsim
