#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <memory>
#include <string>
#include <vector>

#include "devcluster/meshsim/knative.hpp"
#include "devcluster/meshsim/traffic.hpp"
#include "platform/core/clock.hpp"
#include "platform/http/server.hpp"
#include "platform/kube/informer.hpp"
#include "platform/kube/kube_client.hpp"

namespace prometheus {
class Registry;
}

/// meshsim: the data-plane stand-in of the devcluster. It watches Services, Deployments and the
/// routing objects Serin writes, sends a synthetic request stream through them (traffic.hpp),
/// and exports what each mesh would report about it:
///  - Istio: istio_requests_total{reporter, destination_workload_namespace,
///    destination_workload, response_code} and istio_request_duration_milliseconds (histogram);
///  - Linkerd: response_total{namespace, deployment, direction, classification} and
///    response_latency_ms (histogram);
///  - NGINX, for traffic through Ingresses: nginx_ingress_controller_requests{namespace,
///    ingress, canary (the canary upstream; absent for the primary's), status} and
///    nginx_ingress_controller_response_duration_seconds (histogram);
///  - Contour (HTTPProxy): Envoy's envoy_cluster_upstream_rq{envoy_cluster_name,
///    envoy_response_code} and envoy_cluster_upstream_rq_time (histogram, ms), per upstream
///    cluster <ns>_<service>_<port>;
///  - Gloo (RouteTable through Upstreams): the same Envoy families, per cluster
///    <upstream>_<namespace>;
///  - Traefik (TraefikService): traefik_service_requests_total{service, code, method, protocol}
///    and traefik_service_request_duration_seconds (histogram), per service
///    <ns>-<name>-<port>@kubernetescrd;
///  - Knative (knative.hpp): Revisions and Service status written for Knative Services, whose
///    status.traffic routes to the Revisions through Envoy clusters <ns>/<revision>;
///  - Kuma (TrafficRoute): Envoy's envoy_cluster_upstream_rq{service, envoy_response_code} and
///    envoy_cluster_upstream_rq_time (histogram, ms), per Kuma service <service>_<ns>_svc_<port>;
///  - APISIX (ApisixRoute): apisix_http_status{route, code} and apisix_http_latency{type="request",
///    route} (histogram, ms), per route <ns>_<ApisixRoute>_<http entry>;
///  - the app's own HTTP metrics (the kubernetes and Gateway API providers' builtin queries):
///    http_request_duration_seconds{kubernetes_namespace, kubernetes_pod_name, status}.
/// Every version appears in every family, whatever mesh routes it.
/// Its HTTP front (serve_http) answers real requests to `/<namespace>/<apex>` by the same
/// routing, and counts them in meshsim_http_requests_total{namespace, service,
/// destination_workload, code}, so that a load generator (hey) has an apex to hit.
namespace serin::meshsim {

struct MeshsimOptions {
    std::string ns;            ///< watch only this namespace; "" = all
    double rate = 50;          ///< requests per second per apex Service
    Duration step = std::chrono::milliseconds{200};
    /// Routing types to watch (those the server serves); the kind picks the parser.
    std::vector<kube::ResourceType> route_types;
};

class Meshsim {
public:
    Meshsim(kube::KubeClient& client, Clock& clock, MeshsimOptions options);
    ~Meshsim();
    Meshsim(const Meshsim&) = delete;
    Meshsim& operator=(const Meshsim&) = delete;

    /// The metrics to serve (e.g. with a prometheus::Exposer).
    std::shared_ptr<prometheus::Registry> registry() const;

    /// Watches and streams until cancelled.
    boost::asio::awaitable<void> run();

    /// Answers a request to `/<namespace>/<apex>[/...]` as the data plane would: sent to a version
    /// by the routing of the last step, 200 (or 500 at the version's error rate) with the
    /// version's workload name as the body; 404 for an apex with no ready version.
    http::ServerResponse serve_http(std::string_view method, std::string_view target);

    /// The flows of the last step (for tests and logs).
    const std::vector<Flow>& flows() const { return flows_; }

private:
    struct Families;
    void record(const std::vector<Outcome>& outcomes);

    Clock& clock_;
    MeshsimOptions options_;
    std::vector<std::unique_ptr<kube::Informer>> informers_;
    kube::Informer* services_ = nullptr;
    kube::Informer* deployments_ = nullptr;
    std::vector<kube::Informer*> routes_;
    std::unique_ptr<KnativeSim> knative_;  ///< when the server serves Knative Services
    std::unique_ptr<Families> families_;
    Stream stream_;
    RequestRouter router_;
    std::vector<Flow> flows_;
    std::map<std::string, long> samples_;  ///< latency samples taken, per version
};

}  // namespace serin::meshsim
