#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <memory>
#include <string>

#include "controller/app/config.hpp"
#include "controller/canary/webhook.hpp"
#include "controller/notify/notifier.hpp"
#include "controller/telemetry/telemetry.hpp"
#include "metrics/checker.hpp"
#include "metrics/provider.hpp"
#include "platform/core/clock.hpp"
#include "platform/core/quiet_gate.hpp"
#include "platform/core/result.hpp"
#include "platform/http/address_policy.hpp"
#include "platform/http/http_client.hpp"
#include "platform/http/proxy_environment.hpp"
#include "platform/kube/config.hpp"
#include "platform/kube/event_recorder.hpp"
#include "platform/kube/rest_client.hpp"

namespace serin::app {

/// The clients the controller talks through, each with connections of its own, so that a slow
/// chat service never queues behind a webhook, nor a webhook behind Prometheus.
struct Clients {
    std::unique_ptr<kube::RestKubeClient> kube;
    http::HttpClientPtr webhooks;
    http::HttpClientPtr webhooks_insecure;    ///< TLS verification off, for skip-verify webhooks
    http::HttpClientPtr prometheus;           ///< keep-alive to the metrics server
    http::HttpClientPtr prometheus_insecure;  ///< MetricTemplates with insecureSkipVerify
    http::HttpClientPtr alerts;
    /// The address policy of webhooks, metrics servers and alerts, for the start-up log.
    std::shared_ptr<const http::AddressPolicy> address_policy;
};

/// Builds every client from the cluster's configuration and -kubeconfig-qps/-burst; each
/// honours `proxies`. Errors: the client that could not be built, in the words serin logs
/// ("kubernetes client: ..."), in the message.
Result<Clients> connect_clients(boost::asio::any_io_executor executor, Clock& clock,
                                const Config& config, kube::ClusterConfig cluster,
                                std::shared_ptr<const http::ProxyEnvironment> proxies);

/// What the controller is built on: the clients, and the services made of them. Only the
/// composition root knows these concrete types; the controller gets them as interfaces.
///
/// Thread safety: one io_context thread. Not movable: the services hold references to the
/// clients.
struct Services {
    Services(boost::asio::any_io_executor executor, Clock& shared_clock, const Config& config,
             Clients connected);
    Services(const Services&) = delete;
    Services& operator=(const Services&) = delete;

    Clock& clock;
    Clients clients;
    /// This process in Events (source.host, reportingInstance) and in the Lease: host, pid and
    /// a random number.
    std::string identity;
    canary::WebhookClient webhooks;
    /// The controller's reconciles begin() and end() here; Events and history records wait
    /// for them to pause (before the recorder, which holds it).
    QuietGate quiet;
    kube::EventRecorder recorder;
    /// The metric providers of this build (register_builtin_providers), on the Prometheus
    /// clients; before the checker, which uses them.
    metrics::ProviderRegistry metric_providers;
    metrics::ProviderMetricChecker metrics;
    notify::Notifier notifier;
    telemetry::Telemetry telemetry;
};

}  // namespace serin::app
