#include "loadtester/flags.hpp"

#include <CLI/CLI.hpp>

#include "crds/api/canary.hpp"

namespace serin::loadtester {

namespace {

/// Go's flag package takes "-name" and "--name" alike; CLI11 wants "--name" for long options
/// (and the arguments reversed).
std::vector<std::string> go_style_args(const std::vector<std::string>& given) {
    std::vector<std::string> args;
    args.reserve(given.size());
    for (auto it = given.rbegin(); it != given.rend(); ++it) {
        std::string arg = *it;
        if (arg.size() > 2 && arg[0] == '-' && arg[1] != '-') {
            arg.insert(0, "-");
        }
        args.push_back(std::move(arg));
    }
    return args;
}

std::chrono::milliseconds duration_flag(const std::string& name, const std::string& text) {
    auto parsed = api::parse_duration(text);
    if (!parsed) {
        throw CLI::ValidationError("--" + name, "\"" + text + "\" is not a duration like 1h or 30s");
    }
    return *parsed;
}

}  // namespace

ParsedFlags parse_flags(const std::vector<std::string>& args, std::ostream& out,
                        std::ostream& err) {
    Flags flags;
    std::string port = "9090";
    std::string timeout = "1h";
    std::string shutdown_grace = "1m";
    std::string namespace_regexp;
    std::string encoding = "json";
    bool replace_globals = false;
    CLI::App app{
        "serin-loadtester: runs the commands of Flagger webhooks (load tests, helm tests) and keeps "
        "manual gates; the HTTP API of flagger-loadtester.\n"
        "Flags may be given with one dash (Flagger's style) or two."};
    app.add_option("--port", port, "Port to listen on (0: any free port)");
    app.add_option("--address", flags.address, "Address to listen on");
    app.add_option("--port-file", flags.port_file, "Write the port here once listening");
    app.add_option("--timeout", timeout, "Limit of every command (its process group is killed)");
    app.add_option("--namespace-regexp", namespace_regexp,
                   "Serve only payloads whose namespace matches (unanchored); others get 403");
    app.add_option("--max-running", flags.options.max_running,
                   "Tasks running at once; more are answered 429")
        ->check(CLI::PositiveNumber);
    app.add_option("--shutdown-grace", shutdown_grace,
                   "On SIGTERM, how long running tasks may take before they are killed");
    app.add_option("--log-level", flags.log_level, "debug, info, warning or error");
    app.add_option("--zap-encoding", encoding, "Log encoding: json or console");
    app.add_flag("--zap-replace-globals", replace_globals, "Accepted for compatibility");
    try {
        std::vector<std::string> reversed = go_style_args(args);
        app.parse(reversed);
        if (port.empty() || port.find_first_not_of("0123456789") != std::string::npos ||
            port.size() > 5 || std::stoul(port) > 65535) {
            throw CLI::ValidationError("--port", "\"" + port + "\" is not a port number");
        }
        flags.port = static_cast<std::uint16_t>(std::stoul(port));
        flags.options.timeout = duration_flag("timeout", timeout);
        flags.shutdown_grace = duration_flag("shutdown-grace", shutdown_grace);
        if (encoding != "json" && encoding != "console") {
            throw CLI::ValidationError("--zap-encoding", "must be json or console");
        }
        if (!namespace_regexp.empty()) {
            try {
                flags.options.namespace_regexp.emplace(namespace_regexp);
            } catch (const std::regex_error& e) {
                throw CLI::ValidationError("--namespace-regexp",
                                           "\"" + namespace_regexp + "\": " + e.what());
            }
        }
    } catch (const CLI::ParseError& e) {
        return ParsedFlags{std::nullopt, app.exit(e, out, err)};
    }
    flags.log_format = encoding == "json" ? LogFormat::kJson : LogFormat::kText;
    if (flags.log_level == "warning") {
        flags.log_level = "warn";
    }
    return ParsedFlags{std::move(flags), 0};
}

}  // namespace serin::loadtester
