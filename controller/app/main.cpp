// serin: the canary controller. The composition root: it reads the flags (config.hpp), builds
// the clients and services (services.hpp), serves the endpoints (endpoints.hpp) and hands the
// controller to the Supervisor (supervisor.hpp), which decides when it runs and how serin ends.
#include <spdlog/spdlog.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/thread_pool.hpp>
#include <malloc.h>

#include <csignal>
#include <cstdint>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "controller/app/config.hpp"
#include "controller/app/endpoints.hpp"
#include "controller/app/services.hpp"
#include "controller/app/supervised.hpp"
#include "controller/app/supervisor.hpp"
#include "platform/core/clock.hpp"
#include "platform/core/log.hpp"
#include "platform/http/proxy_environment.hpp"
#include "platform/kube/config.hpp"

namespace {

namespace asio = boost::asio;
namespace app = serin::app;

/// Hands every SIGINT and SIGTERM to the supervisor until serin exits.
void forward_signals(asio::signal_set& signals, app::Supervisor& supervisor) {
    signals.async_wait([&signals, &supervisor](const boost::system::error_code& ec, int number) {
        if (ec) {
            return;
        }
        supervisor.signal(number);
        if (!supervisor.exited()) {
            forward_signals(signals, supervisor);
        }
    });
}

}  // namespace

int main(int argc, char** argv) {
#ifdef __GLIBC__
    // One heap for every thread: what the /metrics render thread allocates (~10 MB a scrape at
    // 10,000 canaries) would otherwise stay in an arena of its own, RSS the loop never reuses
    // (at rest, 153 MiB against 143 with the scrape on the loop: run AD).
    ::mallopt(M_ARENA_MAX, 1);
#endif
    auto parsed =
        app::parse_flags(std::vector<std::string>(argv + 1, argv + argc), std::cout, std::cerr);
    if (!parsed.config) {
        return parsed.exit_code;
    }
    app::Config& config = *parsed.config;
    app::apply_environment(config, app::process_environment());
    serin::configure_logging(config.log_level, config.log_format);
    if (auto inert = app::inert_flags_warning(config)) {
        spdlog::warn("{}", *inert);
    }
    auto global_notifier = app::global_notifier(config);
    if (!global_notifier) {
        spdlog::error("{}", global_notifier.error().message);
        return 1;
    }
    auto cluster = serin::kube::load_default_config(config.kubeconfig);
    if (!cluster) {
        spdlog::error("kubernetes configuration: {}", cluster.error().describe());
        return 1;
    }
    // HTTPS_PROXY, HTTP_PROXY and NO_PROXY, read once here, as Go programs (Flagger) honour
    // them: for the API server, Prometheus, webhooks and notifications alike.
    auto environment_proxies = serin::http::ProxyEnvironment::from(app::process_environment());
    if (!environment_proxies) {
        spdlog::error("proxy environment: {}", environment_proxies.error().message);
        return 1;
    }
    const auto proxies =
        std::make_shared<const serin::http::ProxyEnvironment>(std::move(*environment_proxies));
    if (const std::string described = proxies->describe(); !described.empty()) {
        spdlog::info("proxies from the environment: {}", described);
    }

    asio::io_context io;
    serin::SystemClock clock;
    auto clients =
        app::connect_clients(io.get_executor(), clock, config, std::move(*cluster), proxies);
    if (!clients) {
        spdlog::error("{}", clients.error().message);
        return 1;
    }
    spdlog::info("address policy of webhooks, alerts and metrics servers: {}",
                 clients->address_policy->describe());
    app::Services services(io.get_executor(), clock, config, std::move(*clients));
    app::ControllerRunner runner(io.get_executor(), services,
                                 app::controller_options(config, std::move(*global_notifier)),
                                 app::cache_options(config));
    // /readyz is ready once the controller's informers have synced (a standby under leader
    // election is not ready).
    // /metrics is rendered on a thread of its own (joined before the telemetry goes).
    asio::thread_pool render_thread(1);
    auto endpoints = app::serve_endpoints(
        io.get_executor(), static_cast<std::uint16_t>(config.port),
        app::EndpointSources{services.telemetry, services.clients.kube->stats(),
                             [&runner] { return runner.controller(); },
                             render_thread.get_executor(), clock});
    if (!endpoints) {
        spdlog::error("--port={}: {}", config.port, endpoints.error().describe());
        return 1;
    }
    spdlog::info("serving /metrics, /healthz and /readyz on port {}", (*endpoints)->port());

    std::optional<app::LeaseElection> election;
    if (config.leader_election) {
        election.emplace(*services.clients.kube, clock,
                         app::leader_election_options(config, services.identity));
    }
    app::Supervisor supervisor(clock, runner, election ? &*election : nullptr,
                               app::SupervisorOptions{config.shutdown_grace});
    asio::signal_set signals(io, SIGINT, SIGTERM);
    int exit_code = 0;
    supervisor.start(io.get_executor(), [&](int code) {
        exit_code = code;
        signals.cancel();
        io.stop();
    });
    forward_signals(signals, supervisor);
    io.run();
    spdlog::info("serin stopped");
    return exit_code;
}
