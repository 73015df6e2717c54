// serin: the canary controller. The composition root: flags, configuration and wiring only.
//
// Flags follow Flagger's (flagger-spec §9) and are accepted with one dash or two
// ("-mesh-provider=kubernetes" or "--mesh-provider kubernetes").
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
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

#include "controller/canary/controller.hpp"
#include "controller/canary/webhook.hpp"
#include "controller/notify/notifier.hpp"
#include "controller/telemetry/telemetry.hpp"
#include "meshes/common/route_types.hpp"
#include "meshes/router.hpp"
#include "metrics/checker.hpp"
#include "metrics/metric_checker.hpp"
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
constexpr const char* kVersion = SERIN_VERSION;  // the CMake project's version
/// A reconcile running this long hangs: each API call in it is bounded by its timeout and
/// retries, and webhooks and metric checks run outside it. /healthz then fails.
constexpr auto kStuckReconcile = std::chrono::minutes{10};

struct Flags {
    std::string kubeconfig;
    std::string master;
    double qps = 100;
    int burst = 250;
    std::string metrics_server = "http://prometheus:9090";
    std::string control_loop_interval = "10s";
    std::string log_level = "info";
    std::string log_format = "console";
    int port = 8080;
    std::string mesh_provider = "istio";
    std::string ns;
    std::string selector_labels = "app,name,app.kubernetes.io/name";
    std::string include_label_prefix;
    int threadiness = 2;
    bool leader_election = false;
    std::string leader_election_namespace = "kube-system";
    std::string leader_election_id = "serin-leader-election";
    std::string lease_duration = "15s";
    std::string renew_deadline = "10s";
    std::string retry_period = "2s";
    std::string shutdown_grace = "10s";
    bool config_tracking = true;
    std::string event_webhook;
    std::string cluster_name;
    bool no_cross_namespace_refs = false;
    std::string slack_url, slack_token, slack_proxy_url, slack_user = "flagger", slack_channel;
    std::string msteams_url, msteams_proxy_url;
    bool version = false;
};

std::vector<std::string> split_list(const std::string& text) {
    std::vector<std::string> out;
    std::size_t start = 0;
    while (start <= text.size()) {
        const std::size_t comma = text.find(',', start);
        std::string item = text.substr(start, comma == std::string::npos ? std::string::npos
                                                                        : comma - start);
        if (!item.empty()) {
            out.push_back(std::move(item));
        }
        if (comma == std::string::npos) {
            break;
        }
        start = comma + 1;
    }
    return out;
}

/// Go's flag package takes "-name" and "--name" alike; CLI11 wants "--name" for long options.
std::vector<std::string> go_style_args(int argc, char** argv) {
    std::vector<std::string> args;
    for (int i = argc - 1; i >= 1; --i) {  // CLI11 takes the arguments in reverse order
        std::string arg = argv[i];
        if (arg.size() > 2 && arg[0] == '-' && arg[1] != '-') {
            arg.insert(0, "-");
        }
        args.push_back(std::move(arg));
    }
    return args;
}

std::chrono::milliseconds duration_flag(const std::string& name, const std::string& text) {
    auto parsed = serin::api::parse_duration(text);
    if (!parsed) {
        throw CLI::ValidationError("--" + name, "\"" + text + "\" is not a duration like 15s");
    }
    return *parsed;
}

std::string identity() {
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    std::random_device rd;
    return std::string(host) + "_" + std::to_string(::getpid()) + "_" + std::to_string(rd() % 100000);
}

}  // namespace

int main(int argc, char** argv) {
    Flags f;
    CLI::App app{
        "serin: progressive delivery for Kubernetes, compatible with Flagger's Canary API.\n"
        "Flags may be given with one dash (Flagger's style) or two."};
    app.add_option("--kubeconfig", f.kubeconfig,
                   "Path to a kubeconfig; default: $KUBECONFIG, in-cluster, ~/.kube/config");
    app.add_option("--master", f.master, "Accepted for compatibility; the kubeconfig's server is used");
    app.add_option("--kubeconfig-qps", f.qps, "API writes per second (token bucket)");
    app.add_option("--kubeconfig-burst", f.burst, "API write burst");
    app.add_option("--metrics-server", f.metrics_server,
                   "Default Prometheus URL for builtin metrics and inline queries");
    app.add_option("--control-loop-interval", f.control_loop_interval,
                   "Accepted for compatibility: Serin is event-driven and ticks each canary at its "
                   "analysis interval");
    app.add_option("--log-level", f.log_level, "debug, info, warning or error")
        ->check(CLI::IsMember({"debug", "info", "warning", "warn", "error"}));
    app.add_option("--zap-encoding,--log-format", f.log_format,
                   "json, logfmt or console (text); lines about a canary carry its key")
        ->check(CLI::IsMember({"json", "logfmt", "console"}));
    app.add_option("--port", f.port, "HTTP port for /metrics, /healthz and /readyz (0: any free port, logged)");
    app.add_option("--mesh-provider", f.mesh_provider,
                   "Default routing provider when a Canary has no spec.provider");
    app.add_option("--namespace", f.ns, "Watch only this namespace (default: all)");
    app.add_option("--selector-labels", f.selector_labels,
                   "Candidate pod selector label keys, comma-separated, first match wins");
    app.add_option("--include-label-prefix", f.include_label_prefix,
                   "Label/annotation key prefixes copied to primary objects (comma list; * = all)");
    app.add_option("--threadiness", f.threadiness, "Canaries reconciled concurrently")
        ->check(CLI::Range(1, 64));
    app.add_flag("--enable-leader-election", f.leader_election,
                 "Run only while holding a coordination.k8s.io/v1 Lease");
    app.add_option("--leader-election-namespace", f.leader_election_namespace,
                   "Namespace of the Lease (default kube-system, or --namespace when set)");
    app.add_option("--leader-election-id", f.leader_election_id, "Name of the Lease");
    app.add_option("--leader-election-lease-duration", f.lease_duration,
                   "How long a lease is valid without renewal");
    app.add_option("--leader-election-renew-deadline", f.renew_deadline,
                   "The leader steps down when it could not renew for this long");
    app.add_option("--leader-election-retry-period", f.retry_period,
                   "Pause between attempts to acquire or renew");
    app.add_option("--enable-config-tracking", f.config_tracking,
                   "Track the ConfigMaps and Secrets of targets and copy them to -primary")
        ->default_str("true");
    app.add_option("--event-webhook", f.event_webhook,
                   "URL that receives every canary event (env EVENT_WEBHOOK_URL overrides)");
    app.add_option("--cluster-name", f.cluster_name, "Cluster name shown in alerts");
    app.add_flag("--no-cross-namespace-refs", f.no_cross_namespace_refs,
                 "Reject references to objects in other namespaces");
    app.add_option("--slack-url", f.slack_url, "Global Slack webhook (env SLACK_URL)");
    app.add_option("--slack-token", f.slack_token, "Slack token");
    app.add_option("--slack-proxy-url", f.slack_proxy_url, "Proxy for Slack");
    app.add_option("--slack-user", f.slack_user, "Slack user name");
    app.add_option("--slack-channel", f.slack_channel, "Slack channel");
    app.add_option("--msteams-url", f.msteams_url, "Global MS Teams webhook");
    app.add_option("--msteams-proxy-url", f.msteams_proxy_url, "Proxy for MS Teams");
    app.add_option("--shutdown-grace", f.shutdown_grace,
                   "On SIGTERM, how long in-flight reconciles may take to finish before they are "
                   "cancelled");
    app.add_flag("--version", f.version, "Print the version and exit");

    std::chrono::milliseconds lease_duration{}, renew_deadline{}, retry_period{}, shutdown_grace{};
    try {
        app.parse(go_style_args(argc, argv));
        lease_duration = duration_flag("leader-election-lease-duration", f.lease_duration);
        renew_deadline = duration_flag("leader-election-renew-deadline", f.renew_deadline);
        retry_period = duration_flag("leader-election-retry-period", f.retry_period);
        shutdown_grace = duration_flag("shutdown-grace", f.shutdown_grace);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    }
    if (f.version) {
        std::cout << "serin " << kVersion << "\n";
        return 0;
    }
    if (const char* env = std::getenv("EVENT_WEBHOOK_URL"); env != nullptr && *env != '\0') {
        f.event_webhook = env;
    }
    serin::configure_logging(f.log_level == "warning" ? "warn" : f.log_level,
                             f.log_format == "json"     ? serin::LogFormat::kJson
                             : f.log_format == "logfmt" ? serin::LogFormat::kLogfmt
                                                        : serin::LogFormat::kText);
    const auto from_env = [](const char* name, std::string& value) {
        if (const char* env = std::getenv(name); env != nullptr && *env != '\0') {
            value = env;
        }
    };
    from_env("SLACK_URL", f.slack_url);
    from_env("SLACK_TOKEN", f.slack_token);
    from_env("SLACK_PROXY_URL", f.slack_proxy_url);
    from_env("MSTEAMS_URL", f.msteams_url);
    from_env("MSTEAMS_PROXY_URL", f.msteams_proxy_url);
    // The global notifier, for canaries without alerts: Teams takes precedence over Slack.
    std::optional<serin::notify::Destination> global_notifier;
    if (!f.msteams_url.empty() || !f.slack_url.empty()) {
        const bool teams = !f.msteams_url.empty();
        serin::notify::Destination d;
        d.kind = teams ? serin::notify::Kind::kMsTeams : serin::notify::Kind::kSlack;
        d.label = teams ? "--msteams-url" : "--slack-url";
        d.address = teams ? f.msteams_url : f.slack_url;
        d.token = teams ? std::string() : f.slack_token;
        d.username = f.slack_user;
        d.proxy = teams ? f.msteams_proxy_url : f.slack_proxy_url;
        if (!f.slack_channel.empty()) {
            d.channel = f.slack_channel;
        }
        if (!d.proxy.empty()) {
            if (auto proxy = serin::http::Proxy::parse(d.proxy); !proxy) {
                spdlog::error("--{}-proxy-url: {}", teams ? "msteams" : "slack",
                              proxy.error().message);
                return 1;
            }
        }
        global_notifier = std::move(d);
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
    serin::metrics::ProviderRegistry metric_providers(
        serin::metrics::ProviderDeps{**prometheus_http, prometheus_insecure->get(), {}});
    serin::metrics::register_builtin_providers(metric_providers);
    serin::metrics::ProviderMetricChecker metrics(
        metric_providers, serin::metrics::MetricCheckerOptions{f.mesh_provider, f.metrics_server},
        &clock);

    // Alerts: a client of their own, so a slow chat service never queues behind a webhook.
    auto notify_http = serin::http::make_beast_client(io.get_executor(), verified_options);
    if (!notify_http) {
        spdlog::error("notification HTTP client: {}", notify_http.error().describe());
        return 1;
    }
    serin::notify::Notifier notifier(io.get_executor(), **notify_http, clock);

    // The controller's own endpoints. /readyz is ready once the controller's informers have
    // synced (a standby under leader election is not ready).
    serin::telemetry::Telemetry telemetry(kVersion, f.mesh_provider);
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
    options.alerts.cluster_name = f.cluster_name;
    options.alerts.global = global_notifier;
    options.workers = f.threadiness;
    options.register_routers = serin::meshes::register_builtin_routers;
    options.reconciler.mesh_provider = f.mesh_provider;
    options.reconciler.selector_labels = split_list(f.selector_labels);
    options.reconciler.include_label_prefixes = split_list(f.include_label_prefix);
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
        serin::canary::CacheOptions cache_options;
        cache_options.ns = f.ns;
        cache_options.hpa_type = options.reconciler.hpa_type;
        cache_options.route_types =
            co_await serin::kube::served_types(**client, serin::meshes::route_types::all());
        std::string served;
        for (const auto& type : cache_options.route_types) {
            served += (served.empty() ? "" : ", ") + type.kind + " " + type.api_version();
        }
        spdlog::info("routing APIs served: {}", served.empty() ? "none" : served);
        // The caches before the controller, which adds its handlers to them.
        serin::canary::Caches caches(**client, clock, cache_options);
        serin::canary::Controller controller(
            serin::canary::ControllerDeps{io.get_executor(), caches, clock, recorder, webhooks,
                                          metrics, &notifier, &telemetry},
            options);
        live = &controller;
        // /metrics and /readyz stop reading the controller before it goes.
        struct Forget {
            const serin::canary::Controller*& controller;
            ~Forget() { controller = nullptr; }
        } forget{live};
        metrics.use_store(caches.store());
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
        le.lease_duration = lease_duration;
        le.renew_deadline = renew_deadline;
        le.retry_period = retry_period;
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
        shutdown_deadline.expires_after(shutdown_grace + kShutdownDeadline);
        shutdown_deadline.async_wait([&](const boost::system::error_code& timer_ec) {
            if (!timer_ec) {
                give_up(fmt::format("shutdown took longer than {} ms",
                                    (shutdown_grace + kShutdownDeadline).count()));
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
                     running->in_flight(), shutdown_grace.count());
        running->drain();
        grace_over.expires_after(shutdown_grace);
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
