// kubectl-serin, as far as this branch goes: only `kubectl-serin dashboard`. The plugin's other
// verbs come with its own main (docs/runtime-control.md), which calls serin::dashboard::run().
#include <CLI/CLI.hpp>
#include <cstdlib>
#include <filesystem>
#include <iostream>

#include "cli/dashboard/dashboard.hpp"
#include "platform/kube/config.hpp"

namespace {

/// --kubeconfig, else $KUBECONFIG (its first file), else ~/.kube/config; with --context, that
/// context of it.
serin::Result<serin::kube::ClusterConfig> load_config(const std::string& kubeconfig,
                                                      const std::string& context) {
    if (context.empty()) {
        return serin::kube::load_default_config(kubeconfig);
    }
    std::filesystem::path path = kubeconfig;
    if (path.empty()) {
        const char* env = std::getenv("KUBECONFIG");
        if (env != nullptr && *env != '\0') {
            std::string first(env);
            path = first.substr(0, first.find(':'));
        } else {
            const char* home = std::getenv("HOME");
            path = std::filesystem::path(home != nullptr ? home : "") / ".kube" / "config";
        }
    }
    return serin::kube::load_kubeconfig(path, context);
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"kubectl-serin: steer Serin's canary releases"};
    app.require_subcommand(1);
    std::string kubeconfig;
    std::string context;
    std::string ns;
    bool all_namespaces = false;
    app.add_option("--kubeconfig", kubeconfig, "Path to the kubeconfig file");
    app.add_option("--context", context, "The kubeconfig context to use");
    app.add_option("-n,--namespace", ns, "Only the canaries of this namespace");
    app.add_flag("-A,--all-namespaces", all_namespaces, "The canaries of every namespace");

    auto* dashboard = app.add_subcommand("dashboard", "Serve the web view on 127.0.0.1");
    int port = 0;
    std::string requested_by;
    dashboard->add_option("--port", port, "The port to listen on (0: any free one)")
        ->check(CLI::Range(0, 65535));
    dashboard->add_option("--requested-by", requested_by,
                          "The name requests carry in spec.requestedBy (default: $USER)");
    dashboard->fallthrough();
    CLI11_PARSE(app, argc, argv);

    auto config = load_config(kubeconfig, context);
    if (!config) {
        std::cerr << "kubectl-serin: " << config.error().describe() << "\n";
        return 1;
    }
    serin::dashboard::DashboardOptions options;
    // -n beats the context's namespace; without either, every namespace (-A says so explicitly).
    options.ns = all_namespaces ? std::string() : ns;
    options.cluster = std::move(*config);
    options.port = static_cast<std::uint16_t>(port);
    options.requested_by = requested_by;
    return serin::dashboard::run(options);
}
