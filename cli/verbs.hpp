#pragma once

#include <boost/asio/awaitable.hpp>
#include <iosfwd>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "cli/format.hpp"
#include "platform/core/clock.hpp"
#include "platform/kube/config.hpp"
#include "platform/kube/kube_client.hpp"

namespace CLI {
class App;
}

/// The verbs of `kubectl serin` (docs/runtime-control.md). Each is one entry of verbs(): its
/// name, its help, the flags it adds and the coroutine that runs it, so adding a verb is adding
/// an entry.
namespace serin::cli {

/// Exit codes: scripts and pipelines branch on them.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;    ///< the release failed or was aborted; a request refused
inline constexpr int kExitTimedOut = 2;  ///< --timeout passed first
inline constexpr int kExitError = 3;     ///< anything else: bad flags, API errors, no such object

/// The flags every verb takes.
struct GlobalOptions {
    std::string kubeconfig;
    std::string context;
    std::string ns;  ///< -n; empty: the context's namespace
    bool all_namespaces = false;
    std::string output;  ///< "", "json" or "yaml"
};

/// The arguments and flags of the verbs; each verb reads the ones it declared.
struct VerbOptions {
    std::string name;     ///< the canary
    bool watch = false;   ///< status
    std::string timeout;  ///< status --watch, requests --wait: a Go duration
    bool steps = false;   ///< history
    bool full = false;    ///< promote
    std::string reason;   ///< requests
    bool wait = false;    ///< requests
    std::string action;   ///< requests: set by the table entry
    int port = 0;         ///< dashboard: 0 picks a free one
};

/// What a running verb works with.
struct Context {
    kube::KubeClient& client;
    Clock& clock;
    const kube::ClusterConfig& config;
    GlobalOptions global;
    std::string ns;  ///< the namespace in effect
    Style style;
    std::ostream& out;
    std::ostream& err;
};

struct Verb {
    std::string_view name;
    std::string_view help;
    /// Adds the verb's own arguments and flags.
    void (*flags)(CLI::App& command, VerbOptions& options);
    /// Runs it; returns the exit code.
    boost::asio::awaitable<int> (*run)(Context& context, VerbOptions options);
    /// Copied into VerbOptions::action: for verbs that share a run function (the requests).
    std::string_view action = {};
};

/// Every verb of this build, in help order.
std::span<const Verb> verbs();

/// The whole command line: parses, loads the kubeconfig, runs the verb; returns the exit code.
int run_command_line(int argc, char** argv, std::ostream& out, std::ostream& err);

}  // namespace serin::cli
