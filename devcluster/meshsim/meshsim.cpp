#include "devcluster/meshsim/meshsim.hpp"

#include <prometheus/counter.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace serin::meshsim {

namespace asio = boost::asio;

namespace {

prometheus::Histogram::BucketBoundaries millisecond_buckets() {
    return {1, 5, 10, 25, 50, 75, 100, 150, 200, 250, 300, 400, 500, 600, 750, 1000, 1500, 2500,
            5000, 10000};
}

prometheus::Histogram::BucketBoundaries second_buckets() {
    prometheus::Histogram::BucketBoundaries out;
    for (double ms : millisecond_buckets()) {
        out.push_back(ms / 1000);
    }
    return out;
}

/// Adds `n` to the counter of `labels` in `family` (a counter with nothing counted is not made).
void counted(prometheus::Family<prometheus::Counter>& family,
             const std::map<std::string, std::string>& labels, long n) {
    if (n > 0) {
        family.Add(labels).Increment(static_cast<double>(n));
    }
}

/// `labels` with `key` set to `value`.
std::map<std::string, std::string> with(std::map<std::string, std::string> labels,
                                        const char* key, const char* value) {
    labels[key] = value;
    return labels;
}

}  // namespace

struct Meshsim::Families {
    std::shared_ptr<prometheus::Registry> registry = std::make_shared<prometheus::Registry>();
    prometheus::Family<prometheus::Counter>& istio_requests =
        prometheus::BuildCounter().Name("istio_requests_total").Help("Requests (meshsim)").Register(*registry);
    prometheus::Family<prometheus::Histogram>& istio_duration =
        prometheus::BuildHistogram()
            .Name("istio_request_duration_milliseconds")
            .Help("Request duration in ms (meshsim)")
            .Register(*registry);
    prometheus::Family<prometheus::Counter>& linkerd_responses =
        prometheus::BuildCounter().Name("response_total").Help("Responses (meshsim)").Register(*registry);
    prometheus::Family<prometheus::Histogram>& linkerd_latency =
        prometheus::BuildHistogram()
            .Name("response_latency_ms")
            .Help("Response latency in ms (meshsim)")
            .Register(*registry);
    prometheus::Family<prometheus::Histogram>& http_duration =
        prometheus::BuildHistogram()
            .Name("http_request_duration_seconds")
            .Help("Request duration in s (meshsim)")
            .Register(*registry);
    prometheus::Family<prometheus::Counter>& nginx_requests =
        prometheus::BuildCounter()
            .Name("nginx_ingress_controller_requests")
            .Help("Requests through an NGINX Ingress (meshsim)")
            .Register(*registry);
    prometheus::Family<prometheus::Histogram>& nginx_duration =
        prometheus::BuildHistogram()
            .Name("nginx_ingress_controller_response_duration_seconds")
            .Help("Upstream response time in s through an NGINX Ingress (meshsim)")
            .Register(*registry);
    prometheus::Family<prometheus::Counter>& envoy_requests =
        prometheus::BuildCounter()
            .Name("envoy_cluster_upstream_rq")
            .Help("Requests to an Envoy upstream cluster (meshsim)")
            .Register(*registry);
    prometheus::Family<prometheus::Histogram>& envoy_time =
        prometheus::BuildHistogram()
            .Name("envoy_cluster_upstream_rq_time")
            .Help("Upstream request time in ms of an Envoy cluster (meshsim)")
            .Register(*registry);
    prometheus::Family<prometheus::Counter>& traefik_requests =
        prometheus::BuildCounter()
            .Name("traefik_service_requests_total")
            .Help("Requests to a Traefik service (meshsim)")
            .Register(*registry);
    prometheus::Family<prometheus::Histogram>& traefik_duration =
        prometheus::BuildHistogram()
            .Name("traefik_service_request_duration_seconds")
            .Help("Request duration in s of a Traefik service (meshsim)")
            .Register(*registry);
    prometheus::Family<prometheus::Counter>& apisix_status =
        prometheus::BuildCounter()
            .Name("apisix_http_status")
            .Help("Responses of an APISIX route (meshsim)")
            .Register(*registry);
    prometheus::Family<prometheus::Histogram>& apisix_latency =
        prometheus::BuildHistogram()
            .Name("apisix_http_latency")
            .Help("Request latency in ms of an APISIX route (meshsim)")
            .Register(*registry);
    prometheus::Family<prometheus::Histogram>& skipper_response =
        prometheus::BuildHistogram()
            .Name("skipper_response_duration_seconds")
            .Help("Response time in s of a Skipper route, by status code (meshsim)")
            .Register(*registry);
    prometheus::Family<prometheus::Histogram>& skipper_serve =
        prometheus::BuildHistogram()
            .Name("skipper_serve_route_duration_seconds")
            .Help("Time in s Skipper spent serving a route (meshsim)")
            .Register(*registry);
    prometheus::Family<prometheus::Counter>& http_requests =
        prometheus::BuildCounter()
            .Name("meshsim_http_requests_total")
            .Help("Real HTTP requests answered by meshsim's front, by apex and destination")
            .Register(*registry);
};

Meshsim::Meshsim(kube::KubeClient& client, Clock& clock, MeshsimOptions options)
    : clock_(clock), options_(std::move(options)), families_(std::make_unique<Families>()) {
    kube::InformerOptions informer_options;
    informer_options.ns = options_.ns;
    auto add = [&](const kube::ResourceType& type) {
        informers_.push_back(std::make_unique<kube::Informer>(client, clock_, type, informer_options));
        return informers_.back().get();
    };
    services_ = add(kube::types::services());
    deployments_ = add(kube::types::deployments());
    for (const kube::ResourceType& type : options_.route_types) {
        if (type.group == "serving.knative.dev") {  // knativesim watches them itself
            if (knative_ == nullptr) {
                knative_ = std::make_unique<KnativeSim>(client, clock_, options_.ns);
            }
            continue;
        }
        routes_.push_back(add(type));
    }
}

Meshsim::~Meshsim() = default;

std::shared_ptr<prometheus::Registry> Meshsim::registry() const { return families_->registry; }

void Meshsim::record(const std::vector<Outcome>& outcomes) {
    for (const Outcome& o : outcomes) {
        const Version& v = o.version;
        const long ok = o.requests - o.errors;
        const std::map<std::string, std::string> istio{{"reporter", "destination"},
                                                       {"destination_workload_namespace", v.ns},
                                                       {"destination_workload", v.workload}};
        counted(families_->istio_requests, with(istio, "response_code", "200"), ok);
        counted(families_->istio_requests, with(istio, "response_code", "500"), o.errors);
        const std::map<std::string, std::string> linkerd{
            {"namespace", v.ns}, {"deployment", v.workload}, {"direction", "inbound"}};
        counted(families_->linkerd_responses, with(linkerd, "classification", "success"), ok);
        counted(families_->linkerd_responses, with(linkerd, "classification", "failure"), o.errors);

        auto& istio_hist = families_->istio_duration.Add(istio, millisecond_buckets());
        auto& linkerd_hist = families_->linkerd_latency.Add(linkerd, millisecond_buckets());
        const std::map<std::string, std::string> http{{"kubernetes_namespace", v.ns},
                                                      {"kubernetes_pod_name", v.pod}};
        auto& http_ok = families_->http_duration.Add(with(http, "status", "200"), second_buckets());
        auto& http_error = families_->http_duration.Add(with(http, "status", "500"), second_buckets());
        // Through an NGINX Ingress: the controller's families, labelled with the user's Ingress
        // and, for what the canary Ingress sent, the canary upstream.
        prometheus::Histogram* nginx_hist = nullptr;
        if (!o.ingress.empty()) {
            std::map<std::string, std::string> nginx{{"namespace", v.ns}, {"ingress", o.ingress}};
            if (!o.canary_upstream.empty()) {
                nginx["canary"] = o.canary_upstream;
            }
            counted(families_->nginx_requests, with(nginx, "status", "200"), ok);
            counted(families_->nginx_requests, with(nginx, "status", "500"), o.errors);
            nginx_hist = &families_->nginx_duration.Add(nginx, second_buckets());
        }
        // Through Contour's Envoy: the upstream cluster of the Service the HTTPProxy sent to.
        prometheus::Histogram* envoy_hist = nullptr;
        if (!o.envoy_cluster.empty()) {
            const std::map<std::string, std::string> envoy{{"envoy_cluster_name", o.envoy_cluster}};
            counted(families_->envoy_requests, with(envoy, "envoy_response_code", "200"), ok);
            counted(families_->envoy_requests, with(envoy, "envoy_response_code", "500"), o.errors);
            envoy_hist = &families_->envoy_time.Add(envoy, millisecond_buckets());
        }
        // Through Traefik: the service the TraefikService sent to, by status code.
        prometheus::Histogram* traefik_ok = nullptr;
        prometheus::Histogram* traefik_error = nullptr;
        if (!o.traefik_service.empty()) {
            const std::map<std::string, std::string> traefik{
                {"service", o.traefik_service}, {"method", "GET"}, {"protocol", "http"}};
            counted(families_->traefik_requests, with(traefik, "code", "200"), ok);
            counted(families_->traefik_requests, with(traefik, "code", "500"), o.errors);
            traefik_ok = &families_->traefik_duration.Add(with(traefik, "code", "200"), second_buckets());
            traefik_error = &families_->traefik_duration.Add(with(traefik, "code", "500"), second_buckets());
        }
        // Through Kuma's Envoy: the destination's Kuma service; through APISIX: its route.
        prometheus::Histogram* kuma_hist = nullptr;
        if (!o.kuma_service.empty()) {
            const std::map<std::string, std::string> kuma{{"service", o.kuma_service}};
            counted(families_->envoy_requests, with(kuma, "envoy_response_code", "200"), ok);
            counted(families_->envoy_requests, with(kuma, "envoy_response_code", "500"), o.errors);
            kuma_hist = &families_->envoy_time.Add(kuma, millisecond_buckets());
        }
        prometheus::Histogram* apisix_hist = nullptr;
        if (!o.apisix_route.empty()) {
            const std::map<std::string, std::string> apisix{{"route", o.apisix_route}};
            counted(families_->apisix_status, with(apisix, "code", "200"), ok);
            counted(families_->apisix_status, with(apisix, "code", "500"), o.errors);
            apisix_hist = &families_->apisix_latency.Add(with(apisix, "type", "request"),
                                                         millisecond_buckets());
        }
        // Through App Mesh's Envoy sidecar: Envoy's families by the pod's namespace and name.
        prometheus::Histogram* appmesh_hist = nullptr;
        if (o.appmesh) {
            const std::map<std::string, std::string> pod{{"kubernetes_namespace", v.ns},
                                                         {"kubernetes_pod_name", v.pod}};
            counted(families_->envoy_requests, with(pod, "envoy_response_code", "200"), ok);
            counted(families_->envoy_requests, with(pod, "envoy_response_code", "500"), o.errors);
            appmesh_hist = &families_->envoy_time.Add(pod, millisecond_buckets());
        }
        // Through Skipper: its route families by the route id of the Ingress path.
        prometheus::Histogram* skipper_ok = nullptr;
        prometheus::Histogram* skipper_error = nullptr;
        prometheus::Histogram* skipper_serve = nullptr;
        if (!o.skipper_route.empty()) {
            const std::map<std::string, std::string> route{{"route", o.skipper_route}};
            skipper_ok = &families_->skipper_response.Add(with(route, "code", "200"), second_buckets());
            skipper_error = &families_->skipper_response.Add(with(route, "code", "500"), second_buckets());
            skipper_serve = &families_->skipper_serve.Add(route, second_buckets());
        }
        long& taken = samples_[v.ns + "/" + v.workload];
        for (long i = 0; i < o.requests; ++i) {
            const double ms = latency_sample(v, taken++);
            istio_hist.Observe(ms);
            linkerd_hist.Observe(ms);
            (i < o.errors ? http_error : http_ok).Observe(ms / 1000);
            if (nginx_hist != nullptr) {
                nginx_hist->Observe(ms / 1000);
            }
            if (envoy_hist != nullptr) {
                envoy_hist->Observe(ms);
            }
            if (traefik_ok != nullptr) {
                (i < o.errors ? traefik_error : traefik_ok)->Observe(ms / 1000);
            }
            if (kuma_hist != nullptr) {
                kuma_hist->Observe(ms);
            }
            if (apisix_hist != nullptr) {
                apisix_hist->Observe(ms);
            }
            if (appmesh_hist != nullptr) {
                appmesh_hist->Observe(ms);
            }
            if (skipper_serve != nullptr) {
                (i < o.errors ? skipper_error : skipper_ok)->Observe(ms / 1000);
                skipper_serve->Observe(ms / 1000);
            }
        }
    }
}

http::ServerResponse Meshsim::serve_http(std::string_view /*method*/, std::string_view target) {
    target = target.substr(0, target.find('?'));
    // "/<namespace>/<apex>[/...]"
    const std::size_t ns_end = target.find('/', 1);
    if (target.size() < 4 || target[0] != '/' || ns_end == std::string_view::npos) {
        return {404, "text/plain", "meshsim: request /<namespace>/<apex service>\n"};
    }
    const std::string ns(target.substr(1, ns_end - 1));
    const std::size_t apex_end = target.find('/', ns_end + 1);
    const std::string apex(target.substr(ns_end + 1, apex_end == std::string_view::npos
                                                         ? std::string_view::npos
                                                         : apex_end - ns_end - 1));
    auto routed = router_.route(flows_, ns, apex);
    if (!routed) {
        return {404, "text/plain", "meshsim: no ready version behind " + ns + "/" + apex + "\n"};
    }
    const int code = routed->error ? 500 : 200;
    families_->http_requests
        .Add({{"namespace", ns},
              {"service", apex},
              {"destination_workload", routed->version.workload},
              {"code", std::to_string(code)}})
        .Increment();
    return {code, "text/plain", routed->version.workload + "\n"};
}

asio::awaitable<void> Meshsim::run() {
    co_await asio::this_coro::throw_if_cancelled(false);
    auto executor = co_await asio::this_coro::executor;
    for (auto& informer : informers_) {
        informer->start(executor);
    }
    if (knative_ != nullptr) {
        knative_->start(executor);
    }
    asio::steady_timer timer(executor);
    const double seconds = std::chrono::duration<double>(options_.step).count();
    for (;;) {
        timer.expires_after(options_.step);
        boost::system::error_code ec;
        co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        auto state = co_await asio::this_coro::cancellation_state;
        if (ec || state.cancelled() != asio::cancellation_type::none) {
            break;
        }
        auto values = [](const kube::Informer& informer) {
            std::vector<Json> out;
            for (const kube::ObjectPtr& object : informer.list()) {
                out.push_back(*object);
            }
            return out;
        };
        std::vector<Json> routes;
        for (const kube::Informer* informer : routes_) {
            for (Json& r : values(*informer)) {
                r["kind"] = informer->type().kind;  // list items may lack it
                routes.push_back(std::move(r));
            }
        }
        flows_ = plan(values(*services_), values(*deployments_), routes);
        if (knative_ != nullptr) {
            co_await knative_->step();
            for (Flow& flow : knative_flows(knative_->services(), knative_->revisions())) {
                flows_.push_back(std::move(flow));
            }
        }
        record(stream_.step(flows_, options_.rate, seconds));
    }
    for (auto& informer : informers_) {
        informer->stop();
    }
    if (knative_ != nullptr) {
        knative_->stop();
    }
}

}  // namespace serin::meshsim
