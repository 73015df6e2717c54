#include "loadtester/flags.hpp"

#include <ostream>
#include <regex>

#include "crds/api/canary.hpp"
#include "platform/core/go_flags.hpp"

namespace serin::loadtester {

namespace {

using namespace goflags;  // FlagDef, FlagType and the setters

FlagSetter duration_to(std::chrono::milliseconds& target) {
    return parsed_to(target, api::parse_duration, "not a duration like 1h or 30s");
}

/// -port is a string in flagger-loadtester; here it must be a port number.
FlagSetter port_to(std::uint16_t& target) {
    return [&target](const std::string& value) {
        const bool digits = !value.empty() && value.size() <= 5 &&
                            value.find_first_not_of("0123456789") == std::string::npos;
        if (!digits || std::stoul(value) > 65535) {
            return std::string("not a port number");
        }
        target = static_cast<std::uint16_t>(std::stoul(value));
        return std::string();
    };
}

FlagSetter regexp_to(std::optional<std::regex>& target) {
    return [&target](const std::string& value) {
        if (value.empty()) {
            target.reset();
            return std::string();
        }
        try {
            target.emplace(value);
        } catch (const std::regex_error& e) {
            return std::string(e.what());
        }
        return std::string();
    };
}

}  // namespace

ParsedFlags parse_flags(const std::vector<std::string>& args, std::ostream& out,
                        std::ostream& err) {
    Flags flags;
    std::string encoding = "json";
    bool replace_globals = false;
    std::vector<FlagDef> defs = {
        {"address", FlagType::kString, "0.0.0.0", "Address to listen on", false,
         text_to(flags.address)},
        {"log-level", FlagType::kString, "debug", "debug, info, warning or error", false,
         text_to(flags.log_level)},
        {"max-running", FlagType::kInt, "32", "Tasks running at once; more are answered 429",
         false, int_to(flags.options.max_running, 1, 1'000'000)},
        {"namespace-regexp", FlagType::kString, "",
         "Serve only payloads whose namespace matches (unanchored); others get 403", false,
         regexp_to(flags.options.namespace_regexp)},
        {"port", FlagType::kString, "9090", "Port to listen on (0: any free port)", false,
         port_to(flags.port)},
        {"port-file", FlagType::kString, "", "Write the port here once listening", false,
         text_to(flags.port_file)},
        {"shutdown-grace", FlagType::kDuration, "1m0s",
         "On SIGTERM, how long running tasks may take before they are killed", false,
         duration_to(flags.shutdown_grace)},
        {"timeout", FlagType::kDuration, "1h0m0s",
         "Limit of every command (its process group is killed)", false,
         duration_to(flags.options.timeout)},
        {"zap-encoding", FlagType::kString, "json", "Log encoding: json or console", false,
         one_of(encoding, {"json", "console"})},
        {"zap-replace-globals", FlagType::kBool, "", "Accepted for compatibility", true,
         bool_to(replace_globals)},
    };
    const Scan scanned = scan(args, defs);
    constexpr std::string_view kPreamble =
        "serin-loadtester: runs the commands of Flagger webhooks (load tests, helm tests) and "
        "keeps manual gates; the HTTP API of flagger-loadtester.\n"
        "Flags take one dash or two: -name=value, -name value, or -name for a bool flag.\n";
    if (scanned.help) {
        write_usage(kPreamble, "serin-loadtester", defs, out);
        return ParsedFlags{std::nullopt, 0};
    }
    if (!scanned.error.empty()) {
        err << scanned.error << "\n";
        write_usage(kPreamble, "serin-loadtester", defs, err);
        return ParsedFlags{std::nullopt, 2};  // Go's flag.ExitOnError
    }
    flags.log_format = encoding == "json" ? LogFormat::kJson : LogFormat::kText;
    if (flags.log_level == "warning") {
        flags.log_level = "warn";
    }
    return ParsedFlags{std::move(flags), 0};
}

}  // namespace serin::loadtester
