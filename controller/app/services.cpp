#include "controller/app/services.hpp"

#include <unistd.h>

#include <chrono>
#include <random>
#include <utility>

namespace serin::app {

namespace {

std::string process_identity() {
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    std::random_device rd;
    return std::string(host) + "_" + std::to_string(::getpid()) + "_" +
           std::to_string(rd() % 100000);
}

/// `error` with what failed in front of its description: the line serin logs.
Error failed(const std::string& what, const Error& error) {
    return fail(error.kind, what + ": " + error.describe());
}

kube::EventRecorderOptions recorder_options(std::string host, QuietGate& quiet) {
    kube::EventRecorderOptions options;
    options.host = std::move(host);
    options.hold_back = &quiet;
    return options;
}

}  // namespace

Result<Clients> connect_clients(boost::asio::any_io_executor executor, Clock& clock,
                                const Config& config, kube::ClusterConfig cluster,
                                std::shared_ptr<const http::ProxyEnvironment> proxies) {
    Clients out;
    kube::RestClientOptions rest_options;
    rest_options.proxies = proxies;
    rest_options.write_qps = config.qps;
    rest_options.write_burst = config.burst;
    auto api = kube::make_rest_client(executor, std::move(cluster), clock, rest_options);
    if (!api) {
        return failed("kubernetes client", api.error());
    }
    out.kube = std::move(*api);
    // Webhooks, metrics servers and alert addresses are named by canary authors: they get the
    // address policy (the Kubernetes client above does not).
    auto policy = std::make_shared<http::AddressPolicy>(http::AddressPolicy::metadata_denied());
    for (const std::string& entry : config.address_policy_deny) {
        if (auto added = policy->deny(entry); !added) {
            return failed("-address-policy-deny", added.error());
        }
    }
    for (const std::string& entry : config.address_policy_allow) {
        if (auto added = policy->allow(entry); !added) {
            return failed("-address-policy-allow", added.error());
        }
    }
    out.address_policy = policy;
    http::ClientOptions verified;
    http::ClientOptions insecure;
    verified.proxies = proxies;
    insecure.proxies = proxies;
    verified.address_policy = policy;
    insecure.address_policy = policy;
    insecure.tls.insecure_skip_verify = true;
    auto webhooks = http::make_beast_client(executor, verified);
    auto webhooks_insecure = http::make_beast_client(executor, insecure);
    if (!webhooks || !webhooks_insecure) {
        return failed("webhook HTTP client",
                      !webhooks ? webhooks.error() : webhooks_insecure.error());
    }
    out.webhooks = std::move(*webhooks);
    out.webhooks_insecure = std::move(*webhooks_insecure);
    auto prometheus = http::make_beast_client(executor, verified);
    auto prometheus_insecure = http::make_beast_client(executor, insecure);
    if (!prometheus || !prometheus_insecure) {
        return failed("Prometheus HTTP client",
                      !prometheus ? prometheus.error() : prometheus_insecure.error());
    }
    out.prometheus = std::move(*prometheus);
    out.prometheus_insecure = std::move(*prometheus_insecure);
    auto alerts = http::make_beast_client(executor, verified);
    if (!alerts) {
        return failed("notification HTTP client", alerts.error());
    }
    out.alerts = std::move(*alerts);
    return out;
}

Services::Services(boost::asio::any_io_executor executor, Clock& shared_clock, const Config& config,
                   Clients connected)
    : clock(shared_clock),
      clients(std::move(connected)),
      identity(process_identity()),
      webhooks(*clients.webhooks, *clients.webhooks_insecure, shared_clock),
      quiet(shared_clock),
      recorder(*clients.kube, shared_clock, recorder_options(identity, quiet)),
      metric_providers(
          metrics::ProviderDeps{*clients.prometheus, clients.prometheus_insecure.get(), {}}),
      metrics(metric_providers,
              metrics::MetricCheckerOptions{config.mesh_provider, config.metrics_server},
              &shared_clock),
      notifier(std::move(executor), *clients.alerts, shared_clock),
      telemetry(version(), config.mesh_provider) {
    metrics::register_builtin_providers(metric_providers);
    metrics.set_query_observer([this](std::chrono::steady_clock::duration elapsed, bool ok) {
        telemetry.observe_metric_query(std::chrono::duration<double>(elapsed).count(), ok);
    });
}

}  // namespace serin::app
