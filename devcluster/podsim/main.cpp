// serin-podsim: the kubelet stand-in of the devcluster (see devcluster/podsim/podsim.hpp).
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <exception>

#include "devcluster/podsim/podsim.hpp"
#include "platform/core/log.hpp"
#include "platform/kube/config.hpp"
#include "platform/kube/rest_client.hpp"

int main(int argc, char** argv) {
    namespace asio = boost::asio;
    CLI::App app{"serin-podsim: marks pods Running/Ready like a kubelet would, for the devcluster"};
    std::string kubeconfig;
    std::string ns;
    std::string log_level = "info";
    int crash_interval_seconds = 2;
    app.add_option("--kubeconfig", kubeconfig, "kubeconfig file (default: $KUBECONFIG, ...)");
    app.add_option("--namespace", ns, "only pods of this namespace (default: all)");
    app.add_option("--log-level", log_level, "debug, info, warn or error");
    app.add_option("--crash-restart-interval", crash_interval_seconds,
                   "seconds between restarts of a crash-looping container")
        ->check(CLI::PositiveNumber);
    CLI11_PARSE(app, argc, argv);
    serin::configure_logging(log_level);

    auto config = serin::kube::load_default_config(kubeconfig);
    if (!config) {
        spdlog::error("podsim: {}", config.error().describe());
        return 1;
    }
    asio::io_context io;
    serin::SystemClock clock;
    auto client = serin::kube::make_rest_client(io.get_executor(), std::move(*config), clock);
    if (!client) {
        spdlog::error("podsim: {}", client.error().describe());
        return 1;
    }
    serin::podsim::PodSimOptions options;
    options.ns = ns;
    options.sim.crash_restart_interval = std::chrono::seconds{crash_interval_seconds};
    serin::podsim::PodSim sim(**client, clock, options);

    int exit_code = 0;
    asio::signal_set signals(io, SIGTERM, SIGINT);
    signals.async_wait([&](const boost::system::error_code& ec, int signal) {
        if (!ec) {
            spdlog::info("podsim: signal {}, stopping", signal);
            io.stop();
        }
    });
    asio::co_spawn(io, sim.run(), [&](std::exception_ptr e) {
        if (e) {
            try {
                std::rethrow_exception(e);
            } catch (const std::exception& ex) {
                spdlog::error("podsim: stopped by an exception: {}", ex.what());
            }
            exit_code = 1;
        }
        io.stop();
    });
    io.run();
    return exit_code;
}
