#pragma once

#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include "loadtester/loadtester.hpp"
#include "platform/core/log.hpp"

namespace serin::loadtester {

/// serin-loadtester's flags: flagger-loadtester's (flagger-spec-providers.md §14.1) and a few of
/// its own. One dash or two, `-name=value` or `-name value`.
struct Flags {
    std::string address = "0.0.0.0";  ///< -address (flagger-loadtester listens on every address)
    std::uint16_t port = 9090;        ///< -port; 0: one the kernel picks (logged, -port-file)
    std::string port_file;            ///< -port-file: the port is written here once listening
    std::string log_level = "debug";  ///< -log-level: debug, info, warning, error
    LogFormat log_format = LogFormat::kJson;  ///< -zap-encoding: json or console
    std::chrono::milliseconds shutdown_grace = std::chrono::minutes{1};
    LoadTesterOptions options;  ///< -timeout, -namespace-regexp, -max-running
};

struct ParsedFlags {
    std::optional<Flags> flags;  ///< empty: exit with exit_code (help, or an error)
    int exit_code = 0;
};

/// Parses the arguments after argv[0]; help goes to `out`, errors to `err`.
ParsedFlags parse_flags(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace serin::loadtester
