#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <csignal>
#include <cstdlib>
#include <iostream>

#include "cli/dashboard/dashboard.hpp"
#include "platform/kube/rest_client.hpp"

namespace serin::dashboard {

int run(const DashboardOptions& options) {
    std::ostream& out = options.out != nullptr ? *options.out : std::cout;
    std::ostream& err = options.err != nullptr ? *options.err : std::cerr;
    SystemClock clock;  // before the io_context: its timers may still reference it
    boost::asio::io_context io;
    kube::RestClientOptions client_options;
    client_options.user_agent = "kubectl-serin/0.1 (dashboard)";
    client_options.max_response_bytes = 64 * 1024 * 1024;
    auto client = kube::make_rest_client(io.get_executor(), options.cluster, clock, client_options);
    if (!client) {
        err << "kubectl-serin dashboard: " << client.error().describe() << "\n";
        return 1;
    }
    DashboardConfig config;
    config.ns = options.ns;
    config.port = options.port;
    config.requested_by = options.requested_by;
    if (config.requested_by.empty()) {
        const char* user = std::getenv("USER");
        config.requested_by = user != nullptr && *user != '\0' ? user : "unknown";
    }
    auto dashboard = Dashboard::start(io.get_executor(), **client, clock, config);
    if (!dashboard) {
        err << "kubectl-serin dashboard: " << dashboard.error().describe() << "\n";
        return 1;
    }
    out << "Serin dashboard (" << (options.ns.empty() ? "all namespaces" : "namespace " + options.ns)
        << ", as " << options.cluster.server << "): " << (*dashboard)->url() << "\n"
        << "Press Ctrl-C to stop.\n"
        << std::flush;
    boost::asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](const boost::system::error_code& error, int) {
        if (!error) {
            (*dashboard)->stop();
            io.stop();
        }
    });
    io.run();
    return 0;
}

}  // namespace serin::dashboard
