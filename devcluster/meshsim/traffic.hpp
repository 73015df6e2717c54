#pragma once

#include <map>
#include <optional>
#include <nlohmann/json.hpp>
#include <string>
#include <tuple>
#include <vector>

/// meshsim's model of the data plane (pure): who gets how much of each apex Service's traffic,
/// from the routing objects Serin writes, and the per-version outcomes of a stream of requests.
namespace serin::meshsim {

using Json = nlohmann::json;

/// Pod-template annotations that set a version's behaviour.
inline constexpr const char* kErrorRateAnnotation = "sim.serin.dev/error-rate";  ///< 0.2 or 20 (%)
inline constexpr const char* kLatencyAnnotation = "sim.serin.dev/latency-ms";

/// One version of a workload: a Deployment whose pods a Service selects.
struct Version {
    std::string ns;
    std::string workload;  ///< the Deployment's name
    std::string pod;       ///< a pod-like name <workload>-<hash>-<suffix>, for pod-name labels
    double error_rate = 0;     ///< share of requests answered 500
    double latency_ms = 10;    ///< typical latency; samples spread over ±10%
    bool operator<(const Version& other) const {
        return std::tie(ns, workload) < std::tie(other.ns, other.workload);
    }
};

/// A share (0..1) of an apex Service's request stream that reaches `version`. Mirrored copies
/// are extra flows: the shares of one apex may add up to more than 1.
struct Flow {
    std::string ns;
    std::string apex;
    Version version;
    double share = 0;
    /// Through an NGINX ingress: the user's Ingress the requests came in by, and the canary
    /// upstream (`<ns>-<S-canary>-<port>`) when the canary Ingress sent them; "" otherwise.
    std::string ingress;
    std::string canary_upstream;
    /// Through Contour's Envoy: the upstream cluster `<ns>_<service>_<port>`; through Gloo's,
    /// `<upstream>_<its namespace>`; "" otherwise.
    std::string envoy_cluster;
    /// Through Traefik (a TraefikService): the service `<ns>-<name>-<port>@kubernetescrd`.
    std::string traefik_service = {};  // "= {}": aggregates that list six fields stay valid
    /// Through Kuma: the Kuma service `<service>_<ns>_svc_<port>` (Envoy's `service` label).
    std::string kuma_service = {};
    /// Through APISIX: the route `<ns>_<ApisixRoute>_<http entry>`.
    std::string apisix_route = {};
    /// Through App Mesh's Envoy sidecars (a VirtualRouter S split the stream).
    bool appmesh = false;
    /// Through Skipper: the route id of the Ingress path that sent it; "" otherwise.
    std::string skipper_route = {};
};

/// Requests that match a route other than the last (A/B matches, sticky cookies): this share
/// of an apex's stream for each such route; the last route takes the rest.
inline constexpr double kMatchedShare = 0.1;

/// The flows of every apex Service S (a Service with S-primary and S-canary siblings in its
/// namespace) that has a ready Deployment behind it: split by the VirtualService, TrafficSplit,
/// HTTPRoute, HTTPProxy, RouteTable (through the Upstreams among `routes`) or TraefikService
/// named S when there is one; else by Kuma's or APISIX's objects (kuma_apisix.hpp); else by an
/// NGINX canary Ingress (annotation
/// `<prefix>/canary: "true"`, a backend S-canary), which sends `<prefix>/canary-weight` percent
/// to S-canary (and, with a header or cookie rule, kMatchedShare of the stream first) and the
/// rest to S through the user's Ingress; else by S's own selector (the kubernetes provider).
/// A Service reaches the Deployments whose pod-template labels hold its selector and which have
/// available replicas.
std::vector<Flow> plan(const std::vector<Json>& services, const std::vector<Json>& deployments,
                       const std::vector<Json>& routes);

/// Requests and errors for one version over one step.
struct Outcome {
    Version version;
    std::string ingress;          ///< as the Flow's
    std::string canary_upstream;  ///< as the Flow's
    std::string envoy_cluster;    ///< as the Flow's
    std::string traefik_service;  ///< as the Flow's
    std::string kuma_service;     ///< as the Flow's
    std::string apisix_route;     ///< as the Flow's
    bool appmesh = false;         ///< as the Flow's
    std::string skipper_route = {};  ///< as the Flow's
    long requests = 0;
    long errors = 0;
};

/// Turns flows into whole requests at `rate` requests per second per apex, carrying fractions
/// between steps so that the long-run counts are exact (no randomness: tests are stable).
class Stream {
public:
    std::vector<Outcome> step(const std::vector<Flow>& flows, double rate, double seconds);

private:
    // Fractional requests and errors not yet counted, per (ns, apex, workload).
    std::map<std::tuple<std::string, std::string, std::string>, std::pair<double, double>> carry_;
};

/// Where real HTTP requests to an apex go (meshsim's HTTP front): to the flows of that apex by
/// their shares, deterministically (each request to the version furthest behind its share), and
/// answered 500 at the version's error rate (every request that takes the version's error count
/// past rate x requests). Mirrored copies are not sent.
class RequestRouter {
public:
    struct Routed {
        Version version;
        bool error = false;
    };
    /// The destination of the next request to apex `ns`/`apex` under `flows`, or nullopt when the
    /// apex has no flow (no such Service, or nothing ready behind it).
    std::optional<Routed> route(const std::vector<Flow>& flows, const std::string& ns,
                                const std::string& apex);

private:
    std::map<std::tuple<std::string, std::string, std::string>, long> sent_;  ///< ns, apex, workload
    std::map<std::tuple<std::string, std::string>, long> total_;             ///< ns, apex
    std::map<std::tuple<std::string, std::string>, long> errors_;            ///< ns, workload
    std::map<std::tuple<std::string, std::string>, long> answered_;          ///< ns, workload
};

/// The latency of the `index`-th request of a version: spread evenly over ±10% of its latency.
double latency_sample(const Version& version, long index);

}  // namespace serin::meshsim
