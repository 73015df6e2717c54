// serin: the canary controller. The composition root: configuration (config.hpp) and wiring only.
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "controller/app/config.hpp"
#include "controller/canary/controller.hpp"
#include "controller/canary/webhook.hpp"
#include "controller/notify/notifier.hpp"
#include "controller/telemetry/telemetry.hpp"
#include "meshes/common/route_types.hpp"
#include "meshes/router.hpp"
#include "metrics/metric_checker.hpp"
#include "metrics/prometheus/prometheus_checker.hpp"
#include "platform/core/log.hpp"
#include "platform/http/http_client.hpp"
#include "platform/http/proxy_environment.hpp"
#include "platform/http/server.hpp"
#include "platform/kube/config.hpp"
#include "platform/kube/discovery.hpp"
#include "platform/kube/event_recorder.hpp"
#include "platform/kube/leader_election.hpp"
#include "platform/kube/rest_client.hpp"

namespace {

namespace asio = boost::asio;
/// A reconcile running this long hangs: each API call in it is bounded by its timeout and
/// retries, and webhooks and metric checks run outside it. /healthz then fails.
constexpr auto kStuckReconcile = std::chrono::minutes{10};

std::string identity() {
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    std::random_device rd;
    return std::string(host) + "_" + std::to_string(::getpid()) + "_" + std::to_string(rd() % 100000);
}

}  // namespace

int main(int argc, char** argv) {
    auto parsed = serin::app::parse_flags(std::vector<std::string>(argv + 1, argv + argc),
                                          std::cout, std::cerr);
    if (!parsed.config) {
        return parsed.exit_code;
    }
    serin::app::Config& f = *parsed.config;
    serin::app::apply_environment(f, serin::app::process_environment());
    serin::configure_logging(f.log_level, f.log_format);
    auto global_notifier = serin::app::global_notifier(f);
    if (!global_notifier) {
        spdlog::error("{}", global_notifier.error().message);
        return 1;
    }

    auto config = serin::kube::load_default_config(f.kubeconfig);
    if (!config) {
        spdlog::error("kubernetes configuration: {}", config.error().describe());
        return 1;
    }
    // HTTPS_PROXY, HTTP_PROXY and NO_PROXY, read once here, as Go programs (Flagger) honour
    // them: for the API server, Prometheus, webhooks and notifications alike.
    auto environment_proxies = serin::http::ProxyEnvironment::from(
        [](std::string_view name) -> std::optional<std::string> {
            if (const char* value = std::getenv(std::string{name}.c_str()); value != nullptr) {
                return std::string{value};
            }
            return std::nullopt;
        });
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
    serin::kube::RestClientOptions rest_options;
    rest_options.proxies = proxies;
    rest_options.write_qps = f.qps;
    rest_options.write_burst = f.burst;
    auto client = serin::kube::make_rest_client(io.get_executor(), *config, clock, rest_options);
    if (!client) {
        spdlog::error("kubernetes client: {}", client.error().describe());
        return 1;
    }
    serin::http::ClientOptions verified_options;
    serin::http::ClientOptions insecure_options;
    verified_options.proxies = proxies;
    insecure_options.proxies = proxies;
    insecure_options.tls.insecure_skip_verify = true;
    auto verified = serin::http::make_beast_client(io.get_executor(), verified_options);
    auto insecure = serin::http::make_beast_client(io.get_executor(), insecure_options);
    if (!verified || !insecure) {
        spdlog::error("webhook HTTP client: {}",
                      (!verified ? verified.error() : insecure.error()).describe());
        return 1;
    }
    serin::canary::WebhookClient webhooks(**verified, **insecure, clock);
    serin::kube::EventRecorderOptions recorder_options;
    recorder_options.host = identity();
    serin::kube::EventRecorder recorder(**client, clock, recorder_options);
    // Metrics: Prometheus over a client of its own (keep-alive to the metrics server).
    // MetricTemplates with insecureSkipVerify get a second one, with TLS verification off.
    auto prometheus_http = serin::http::make_beast_client(io.get_executor(), verified_options);
    auto prometheus_insecure = serin::http::make_beast_client(io.get_executor(), insecure_options);
    if (!prometheus_http || !prometheus_insecure) {
        spdlog::error("Prometheus HTTP client: {}",
                      (!prometheus_http ? prometheus_http.error() : prometheus_insecure.error())
                          .describe());
        return 1;
    }
    serin::metrics::PrometheusMetricChecker metrics(
        **prometheus_http, serin::metrics::PrometheusCheckerOptions{f.mesh_provider, f.metrics_server},
        prometheus_insecure->get(), &clock);

    // Alerts: a client of their own, so a slow chat service never queues behind a webhook.
    auto notify_http = serin::http::make_beast_client(io.get_executor(), verified_options);
    if (!notify_http) {
        spdlog::error("notification HTTP client: {}", notify_http.error().describe());
        return 1;
    }
    serin::notify::Notifier notifier(io.get_executor(), **notify_http, clock);

    // The controller's own endpoints. /readyz is ready once the controller's informers have
    // synced (a standby under leader election is not ready).
    serin::telemetry::Telemetry telemetry(serin::app::version(), f.mesh_provider);
    metrics.set_query_observer([&telemetry](std::chrono::steady_clock::duration elapsed, bool ok) {
        telemetry.observe_metric_query(std::chrono::duration<double>(elapsed).count(), ok);
    });
    const serin::canary::Controller* live = nullptr;
    auto endpoints = serin::http::HttpServer::listen(
        io.get_executor(), "0.0.0.0", static_cast<std::uint16_t>(f.port),
        [&](std::string_view method, std::string_view target) -> serin::http::ServerResponse {
            const std::string_view path = target.substr(0, target.find('?'));
            if (method != "GET" && method != "HEAD") {
                return {405, "text/plain; charset=utf-8", "method not allowed\n"};
            }
            if (path == "/metrics") {
                serin::telemetry::Telemetry::Totals totals;
                const auto& api = (*client)->stats();
                totals.api_requests = api.by_verb_and_code;
                totals.api_throttled = api.throttled;
                if (live != nullptr) {
                    telemetry.set_queue_depth(live->queue_depth());
                    telemetry.set_canary_totals(live->canaries_per_namespace());
                    const auto informers = live->informer_stats();
                    totals.watch_failures = informers.watch_failures;
                    totals.relists = informers.relists_after_gone;
                }
                telemetry.set_totals(totals);
                return {200, "text/plain; version=0.0.4; charset=utf-8", telemetry.scrape()};
            }
            if (path == "/healthz") {
                // The loop that answers this is the one that reconciles, so an answer at all
                // says it runs; a reconcile far past every timeout says a worker hangs.
                if (live != nullptr) {
                    if (auto problem = live->unhealthy(kStuckReconcile)) {
                        return {500, "text/plain; charset=utf-8", *problem + "\n"};
                    }
                }
                return {200, "text/plain; charset=utf-8", "OK"};
            }
            if (path == "/readyz") {
                const bool ready = live != nullptr && live->synced();
                return {ready ? 200 : 503, "text/plain; charset=utf-8",
                        ready ? "OK" : "informers not synced"};
            }
            return {404, "text/plain; charset=utf-8", "not found\n"};
        });
    if (!endpoints) {
        spdlog::error("--port={}: {}", f.port, endpoints.error().describe());
        return 1;
    }
    spdlog::info("serving /metrics, /healthz and /readyz on port {}", (*endpoints)->port());

    serin::canary::ControllerOptions options;
    options.ns = f.ns;
    options.alerts.cluster_name = f.cluster_name;
    options.alerts.global = std::move(*global_notifier);
    options.workers = f.threadiness;
    options.register_routers = serin::meshes::register_builtin_routers;
    options.reconciler.mesh_provider = f.mesh_provider;
    options.reconciler.selector_labels = f.selector_labels;
    options.reconciler.include_label_prefixes = f.include_label_prefixes;
    options.reconciler.config_tracking = f.config_tracking;
    options.reconciler.event_webhook = f.event_webhook;
    options.reconciler.no_cross_namespace_refs = f.no_cross_namespace_refs;

    int exit_code = 0;
    asio::cancellation_signal stop;
    // The controller while its run() is in progress, for a drain on SIGTERM.
    serin::canary::Controller* running = nullptr;
    // Stops the main task (and so the elector, which hands the Lease over) once: a second
    // emission would cancel that hand-over.
    bool stopped = false;
    const auto stop_all = [&] {
        if (!stopped) {
            stopped = true;
            stop.emit(asio::cancellation_type::all);
        }
    };
    // A capturing coroutine lambda is safe here only because it lives until io.run() returns.
    auto main_task = [&]() -> asio::awaitable<void> {
        // Fail fast when the CRDs are not installed or the server cannot be reached.
        serin::kube::ListOptions probe;
        probe.limit = 1;
        auto listed = co_await (*client)->list(serin::kube::types::canaries(), f.ns, probe);
        if (!listed) {
            spdlog::error("cannot list canaries.flagger.app: {}", listed.error().describe());
            exit_code = 1;
            co_return;
        }
        // autoscaling/v2 where the server has it (1.23+), else v2beta2.
        if (auto v2 = co_await (*client)->get_raw("/apis/autoscaling/v2"); v2) {
            auto type = serin::kube::types::horizontal_pod_autoscalers();
            type.version = "v2";
            options.reconciler.hpa_type = type;
        }
        // Informers for the routing objects whose CRDs are installed.
        options.route_types =
            co_await serin::kube::served_types(**client, serin::meshes::route_types::all());
        std::string served;
        for (const auto& type : options.route_types) {
            served += (served.empty() ? "" : ", ") + type.kind + " " + type.api_version();
        }
        spdlog::info("routing APIs served: {}", served.empty() ? "none" : served);
        serin::canary::Controller controller(
            serin::canary::ControllerDeps{io.get_executor(), **client, clock, recorder, webhooks,
                                          metrics, &notifier, &telemetry},
            options);
        live = &controller;
        // /metrics and /readyz stop reading the controller before it goes.
        struct Forget {
            const serin::canary::Controller*& controller;
            ~Forget() { controller = nullptr; }
        } forget{live};
        metrics.use_store(controller.store());
        if (!f.leader_election) {
            running = &controller;
            co_await controller.run();
            running = nullptr;
            co_return;
        }
        serin::kube::LeaderElectionOptions le;
        le.lease_namespace = f.ns.empty() ? f.leader_election_namespace : f.ns;
        le.lease_name = f.leader_election_id;
        le.identity = recorder_options.host;
        le.lease_duration = f.lease_duration;
        le.renew_deadline = f.renew_deadline;
        le.retry_period = f.retry_period;
        asio::cancellation_signal lost;
        bool leading = false;
        serin::kube::LeaderCallbacks callbacks;
        callbacks.on_started_leading = [&] {
            spdlog::info("leading as {}", le.identity);
            leading = true;
            running = &controller;
            asio::co_spawn(io, controller.run(),
                           asio::bind_cancellation_slot(lost.slot(), [&](std::exception_ptr) {
                               running = nullptr;
                               if (controller.draining()) {
                                   // Drained: now stop the elector, which hands the Lease over.
                                   asio::post(io, stop_all);
                               }
                           }));
        };
        callbacks.on_stopped_leading = [&] {
            // Losing the lease stops all work at once.
            lost.emit(asio::cancellation_type::all);
        };
        serin::kube::LeaderElector elector(**client, clock, le, callbacks);
        co_await elector.run();
        auto state = co_await asio::this_coro::cancellation_state;
        if (state.cancelled() != asio::cancellation_type::none) {
            // Stopping (SIGTERM): hand the Lease over, so a standby need not wait out its
            // duration. The release must not inherit the cancellation that stopped the work.
            co_await asio::this_coro::reset_cancellation_state();
            auto released = co_await elector.release();
            if (!released) {
                spdlog::warn("lease not released: {}", released.error().describe());
            }
        } else if (leading) {
            spdlog::error("lost the leader election lease; exiting");
            exit_code = 1;
        }
    };

    // The first SIGINT or SIGTERM drains the controller: no new reconcile starts, and those in
    // flight have -shutdown-grace to finish before they are cancelled. Then the Lease is handed
    // over and serin exits 0. Should that take kShutdownDeadline beyond the grace, or a second
    // signal come, serin gives up waiting and exits 1.
    constexpr auto kShutdownDeadline = std::chrono::seconds{5};
    asio::signal_set signals(io, SIGINT, SIGTERM);
    asio::steady_timer shutdown_deadline(io);
    asio::steady_timer grace_over(io);
    const auto give_up = [&](std::string_view why) {
        spdlog::error("{}; exiting without a clean shutdown", why);
        exit_code = 1;
        io.stop();
    };
    signals.async_wait([&](const boost::system::error_code& ec, int signal) {
        if (ec) {
            return;
        }
        shutdown_deadline.expires_after(f.shutdown_grace + kShutdownDeadline);
        shutdown_deadline.async_wait([&](const boost::system::error_code& timer_ec) {
            if (!timer_ec) {
                give_up(fmt::format("shutdown took longer than {} ms",
                                    (f.shutdown_grace + kShutdownDeadline).count()));
            }
        });
        signals.async_wait([&](const boost::system::error_code& again_ec, int again) {
            if (!again_ec) {
                give_up(fmt::format("signal {} during shutdown", again));
            }
        });
        if (running == nullptr) {
            spdlog::info("signal {}: stopping", signal);
            stop_all();
            return;
        }
        spdlog::info("signal {}: draining, {} reconciles in flight, {} ms to finish", signal,
                     running->in_flight(), f.shutdown_grace.count());
        running->drain();
        grace_over.expires_after(f.shutdown_grace);
        grace_over.async_wait([&](const boost::system::error_code& timer_ec) {
            if (!timer_ec && running != nullptr) {
                spdlog::warn("shutdown grace over: cancelling {} reconciles",
                             running->in_flight());
                stop_all();
            }
        });
    });
    asio::co_spawn(io, main_task(),
                   asio::bind_cancellation_slot(stop.slot(), [&](std::exception_ptr e) {
                       if (e) {
                           try {
                               std::rethrow_exception(e);
                           } catch (const std::exception& ex) {
                               spdlog::error("stopped by an exception: {}", ex.what());
                           }
                           exit_code = 1;
                       }
                       signals.cancel();
                       shutdown_deadline.cancel();
                       grace_over.cancel();
                       io.stop();
                   }));
    io.run();
    spdlog::info("serin stopped");
    return exit_code;
}
