// serin-meshsim: the data-plane stand-in of the devcluster (see devcluster/meshsim/meshsim.hpp).
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <fstream>
#include <prometheus/exposer.h>
#include <prometheus/registry.h>

#include "devcluster/meshsim/meshsim.hpp"
#include "meshes/common/route_types.hpp"
#include "platform/core/log.hpp"
#include "platform/kube/config.hpp"
#include "platform/kube/discovery.hpp"
#include "platform/kube/rest_client.hpp"

int main(int argc, char** argv) {
    namespace asio = boost::asio;
    CLI::App app{"serin-meshsim: sends synthetic traffic through the routing objects Serin "
                 "writes and exports the meshes' metrics"};
    std::string kubeconfig;
    std::string listen = "127.0.0.1:0";
    std::string port_file;
    std::string log_level = "info";
    std::string http_listen;
    std::string http_port_file;
    serin::meshsim::MeshsimOptions options;
    app.add_option("--kubeconfig", kubeconfig, "kubeconfig file (default: $KUBECONFIG, ...)");
    app.add_option("--namespace", options.ns, "only this namespace (default: all)");
    app.add_option("--listen", listen, "address:port of /metrics (port 0: any free port)");
    app.add_option("--port-file", port_file, "write the /metrics port here once listening");
    app.add_option("--http-listen", http_listen,
                   "address:port of the HTTP front for apex Services, /<namespace>/<service> "
                   "(port 0: any free port); empty: none");
    app.add_option("--http-port-file", http_port_file, "write the HTTP front's port here");
    app.add_option("--rate", options.rate, "requests per second per apex Service")
        ->check(CLI::PositiveNumber);
    app.add_option("--log-level", log_level, "debug, info, warn or error");
    CLI11_PARSE(app, argc, argv);
    serin::configure_logging(log_level);

    auto config = serin::kube::load_default_config(kubeconfig);
    if (!config) {
        spdlog::error("meshsim: {}", config.error().describe());
        return 1;
    }
    asio::io_context io;
    serin::SystemClock clock;
    auto client = serin::kube::make_rest_client(io.get_executor(), std::move(*config), clock);
    if (!client) {
        spdlog::error("meshsim: {}", client.error().describe());
        return 1;
    }
    // The routing objects are read in one version each; Serin's other versions are the same
    // objects (the CRDs convert by apiVersion only).
    std::vector<serin::kube::ResourceType> wanted{
        serin::meshes::route_types::istio_virtual_services(),
        serin::meshes::route_types::smi_traffic_splits("v1alpha2"),
        serin::meshes::route_types::gateway_http_routes("v1"),
        serin::meshes::route_types::ingresses(),
        serin::meshes::route_types::contour_http_proxies(),
        serin::meshes::route_types::gateway_grpc_routes(),
        serin::meshes::route_types::gloo_upstreams(),
        serin::meshes::route_types::gloo_route_tables(),
        serin::meshes::route_types::traefik_services(),
        serin::meshes::route_types::knative_services(),
        serin::meshes::route_types::kuma_traffic_routes(),
        serin::meshes::route_types::apisix_routes(),
        serin::meshes::route_types::appmesh_virtual_routers(),
        serin::meshes::route_types::appmesh_virtual_nodes()};
    std::unique_ptr<serin::meshsim::Meshsim> sim;
    std::unique_ptr<prometheus::Exposer> exposer;
    std::unique_ptr<serin::http::HttpServer> front;
    int exit_code = 0;
    auto start = [&]() -> asio::awaitable<void> {
        options.route_types = co_await serin::kube::served_types(**client, wanted);
        sim = std::make_unique<serin::meshsim::Meshsim>(**client, clock, options);
        exposer = std::make_unique<prometheus::Exposer>(listen);
        exposer->RegisterCollectable(sim->registry());
        const int port = exposer->GetListeningPorts().at(0);
        spdlog::info("meshsim: /metrics on port {}, {} routing APIs, {} requests/s per apex", port,
                     options.route_types.size(), options.rate);
        if (!port_file.empty()) {
            std::ofstream(port_file) << port << "\n";
        }
        if (!http_listen.empty()) {
            const auto colon = http_listen.rfind(':');
            auto server = serin::http::HttpServer::listen(
                io.get_executor(), http_listen.substr(0, colon),
                static_cast<std::uint16_t>(std::stoi(http_listen.substr(colon + 1))),
                [&sim](std::string_view method, std::string_view target) {
                    return sim->serve_http(method, target);
                });
            if (!server) {
                throw std::runtime_error("--http-listen: " + server.error().describe());
            }
            front = std::move(*server);
            spdlog::info("meshsim: HTTP front for apex Services on port {}", front->port());
            if (!http_port_file.empty()) {
                std::ofstream(http_port_file) << front->port() << "\n";
            }
        }
        co_await sim->run();
    };
    asio::signal_set signals(io, SIGTERM, SIGINT);
    signals.async_wait([&](const boost::system::error_code& ec, int signal) {
        if (!ec) {
            spdlog::info("meshsim: signal {}, stopping", signal);
            io.stop();
        }
    });
    asio::co_spawn(io, start(), [&](std::exception_ptr e) {
        if (e) {
            try {
                std::rethrow_exception(e);
            } catch (const std::exception& ex) {
                spdlog::error("meshsim: {}", ex.what());
            }
            exit_code = 1;
        }
        io.stop();
    });
    io.run();
    return exit_code;
}
