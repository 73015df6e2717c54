#include "controller/app/supervised.hpp"

#include <spdlog/spdlog.h>

#include <utility>

#include "controller/canary/requests.hpp"
#include "meshes/common/route_types.hpp"
#include "meshes/router.hpp"
#include "platform/kube/discovery.hpp"

namespace serin::app {

namespace asio = boost::asio;

canary::ControllerOptions controller_options(const Config& config,
                                             std::optional<notify::Destination> global_notifier) {
    canary::ControllerOptions options;
    options.alerts.cluster_name = config.cluster_name;
    options.alerts.global = std::move(global_notifier);
    options.workers = config.reconcile_workers();
    options.release_start_workers = config.release_start_workers;
    meshes::RouterSettings routers;
    routers.ingress_annotations_prefix = config.ingress_annotations_prefix;
    routers.ingress_class = config.ingress_class;
    options.register_routers = meshes::builtin_routers(std::move(routers));
    options.reconciler.mesh_provider = config.mesh_provider;
    options.reconciler.selector_labels = config.selector_labels;
    options.reconciler.include_label_prefixes = config.include_label_prefixes;
    options.reconciler.config_tracking = config.config_tracking;
    options.reconciler.event_webhook = config.event_webhook;
    options.reconciler.no_cross_namespace_refs = config.no_cross_namespace_refs;
    return options;
}

canary::CacheOptions cache_options(const Config& config) {
    canary::CacheOptions options;
    options.ns = config.ns;
    return options;
}

kube::LeaderElectionOptions leader_election_options(const Config& config, std::string identity) {
    kube::LeaderElectionOptions options;
    options.lease_namespace = config.ns.empty() ? config.leader_election_namespace : config.ns;
    options.lease_name = config.leader_election_id;
    options.identity = std::move(identity);
    options.lease_duration = config.lease_duration;
    options.renew_deadline = config.renew_deadline;
    options.retry_period = config.retry_period;
    return options;
}

ControllerRunner::ControllerRunner(asio::any_io_executor executor, Services& services,
                                   canary::ControllerOptions options,
                                   canary::CacheOptions cache_options)
    : executor_(std::move(executor)),
      services_(services),
      options_(std::move(options)),
      cache_options_(std::move(cache_options)) {}

asio::awaitable<bool> ControllerRunner::prepare() {
    kube::KubeClient& client = *services_.clients.kube;
    // Fail fast when the CRDs are not installed or the server cannot be reached.
    kube::ListOptions probe;
    probe.limit = 1;
    auto listed = co_await client.list(kube::types::canaries(), cache_options_.ns, probe);
    if (!listed) {
        spdlog::error("cannot list canaries.flagger.app: {}", listed.error().describe());
        co_return false;
    }
    // autoscaling/v2 where the server has it (1.23+), else v2beta2.
    if (auto v2 = co_await client.get_raw("/apis/autoscaling/v2"); v2) {
        auto type = kube::types::horizontal_pod_autoscalers();
        type.version = "v2";
        options_.reconciler.hpa_type = type;
        cache_options_.hpa_type = type;
    }
    // Informers for the routing objects whose CRDs are installed.
    cache_options_.route_types = co_await kube::served_types(client, meshes::route_types::all());
    std::string served;
    for (const auto& type : cache_options_.route_types) {
        served += (served.empty() ? "" : ", ") + type.kind + " " + type.api_version();
    }
    spdlog::info("routing APIs served: {}", served.empty() ? "none" : served);
    // Runtime requests (serin.dev CanaryRequests) where their CRD is installed.
    // Named, not a braced temporary in the co_await: g++ 12 destroys those twice.
    std::vector<kube::ResourceType> request_types{kube::types::canary_requests()};
    const auto served_requests = co_await kube::served_types(client, std::move(request_types));
    cache_options_.requests = !served_requests.empty();
    if (!cache_options_.requests) {
        spdlog::warn("runtime requests are unavailable: the server does not serve "
                     "canaryrequests.serin.dev (install crds/base/canaryrequest.yaml)");
    }
    // The caches before the controller, which adds its handlers to them.
    caches_ = std::make_unique<canary::Caches>(client, services_.clock, cache_options_);
    controller_ = std::make_unique<canary::Controller>(
        canary::ControllerDeps{executor_, *caches_, services_.clock, services_.recorder,
                               services_.webhooks, services_.metrics, &services_.notifier,
                               &services_.telemetry, &services_.quiet},
        options_);
    services_.metrics.use_store(caches_->store());
    co_return true;
}

LeaseElection::LeaseElection(kube::KubeClient& client, Clock& clock,
                             kube::LeaderElectionOptions options)
    : client_(client), clock_(clock), options_(std::move(options)) {}

asio::awaitable<void> LeaseElection::run(kube::LeaderCallbacks callbacks) {
    elector_.emplace(client_, clock_, options_, std::move(callbacks));
    co_await elector_->run();
}

asio::awaitable<Result<void>> LeaseElection::release() {
    if (!elector_) {
        co_return Result<void>{};  // never campaigned: nothing to hand over
    }
    co_return co_await elector_->release();
}

}  // namespace serin::app
