#include "cli/verbs.hpp"

#include <CLI/CLI.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>

#include <exception>
#include <functional>
#include <map>
#include <ostream>
#include <variant>

#include "cli/dashboard/dashboard.hpp"
#include "cli/explain.hpp"
#include "cli/request.hpp"
#include "crds/api/canary.hpp"
#include "platform/core/json.hpp"
#include "platform/core/time_format.hpp"
#include "platform/kube/rest_client.hpp"

namespace serin::cli {

namespace asio = boost::asio;

namespace {

/// Machine output when -o asks for it; false when the verb should print for people.
bool print_machine(Context& ctx, const Json& value) {
    if (ctx.global.output == "json") {
        ctx.out << value.dump(2, ' ', false, Json::error_handler_t::replace) << "\n";
        return true;
    }
    if (ctx.global.output == "yaml") {
        ctx.out << to_yaml(value);
        return true;
    }
    return false;
}

std::string object_id(const Context& ctx, std::string_view name) {
    return ctx.ns + "/" + std::string(name);
}

int report(Context& ctx, const Error& error, std::string_view doing) {
    ctx.err << "kubectl-serin: " << describe_failure(error, doing) << "\n";
    return kExitError;
}

/// The deadline of --timeout, or nullopt without one; an error (printed) for a bad duration.
Result<std::optional<SteadyTime>> deadline_of(Context& ctx, const std::string& timeout) {
    if (timeout.empty()) {
        return std::optional<SteadyTime>{};
    }
    auto d = api::parse_duration(timeout);
    if (!d || d->count() <= 0) {
        return fail(ErrorKind::kInvalid, "--timeout " + timeout +
                                             ": not a positive duration (e.g. 90s, 10m, 1h30m)");
    }
    return std::optional<SteadyTime>{ctx.clock.steady_now() + *d};
}

/// Gets the object, then watches it, calling `done` with its first version and each change,
/// until `done` returns true (the object is returned). A watch that ends or expires is resumed
/// from a fresh GET. Errors: kNotFound when it is (or gets) deleted, the client's errors.
asio::awaitable<Result<Json>> follow(Context& ctx, kube::ResourceType type, std::string name,
                                     std::function<bool(const Json&)> done) {
    for (;;) {
        auto got = co_await ctx.client.get(type, ctx.ns, name);
        if (!got) {
            co_return Result<Json>(boost::system::in_place_error, got.error());
        }
        if (done(*got)) {
            co_return Result<Json>(boost::system::in_place_value, std::move(*got));
        }
        kube::WatchOptions options;
        options.resource_version = kube::object_resource_version(*got);
        options.field_selector = "metadata.name=" + name;
        options.timeout_seconds = 120;
        std::optional<Json> found;
        bool deleted = false;
        auto handler = [&](kube::WatchEvent&& event) {
            if (event.type == kube::WatchEvent::Type::kBookmark) {
                return true;
            }
            if (event.type == kube::WatchEvent::Type::kDeleted) {
                deleted = true;
                return false;
            }
            if (done(event.object)) {
                found = std::move(event.object);
                return false;
            }
            return true;
        };
        auto watched = co_await ctx.client.watch(type, ctx.ns, options, handler);
        if (found) {
            co_return Result<Json>(boost::system::in_place_value, std::move(*found));
        }
        if (deleted) {
            co_return Result<Json>(boost::system::in_place_error,
                                   fail(ErrorKind::kNotFound,
                                        type.resource + " \"" + name + "\" was deleted"));
        }
        if (!watched && watched.error().kind != ErrorKind::kGone) {
            if (!watched.error().retryable()) {
                co_return Result<Json>(boost::system::in_place_error, watched.error());
            }
            // A failing watch is resumed after a pause, not in a tight loop.
            const Duration pause = std::chrono::seconds(1);
            const bool slept = co_await ctx.clock.sleep_for(pause);
            if (!slept) {
                co_return Result<Json>(boost::system::in_place_error,
                                       fail(ErrorKind::kCancelled, "cancelled"));
            }
        }
    }
}

/// follow() within an optional deadline; nullopt when the deadline came first.
asio::awaitable<std::optional<Result<Json>>> follow_until(Context& ctx, kube::ResourceType type,
                                                          std::string name,
                                                          std::function<bool(const Json&)> done,
                                                          std::optional<SteadyTime> deadline) {
    if (!deadline) {
        auto result = co_await follow(ctx, std::move(type), std::move(name), std::move(done));
        co_return std::optional<Result<Json>>(std::move(result));
    }
    using namespace asio::experimental::awaitable_operators;
    auto outcome = co_await (follow(ctx, std::move(type), std::move(name), std::move(done)) ||
                             ctx.clock.sleep_until(*deadline));
    if (outcome.index() == 0) {
        co_return std::optional<Result<Json>>(std::move(std::get<0>(outcome)));
    }
    co_return std::nullopt;
}

// ---- get ------------------------------------------------------------------------------------

void get_flags(CLI::App& command, VerbOptions& options) {
    command.add_option("NAME", options.name, "a canary (all of the namespace when absent)");
}

asio::awaitable<int> run_get(Context& ctx, VerbOptions options) {
    const std::string scope = ctx.global.all_namespaces ? std::string() : ctx.ns;
    std::vector<Json> canaries;
    if (!options.name.empty()) {
        auto got = co_await ctx.client.get(kube::types::canaries(), ctx.ns, options.name);
        if (!got) {
            co_return report(ctx, got.error(), "get canary " + object_id(ctx, options.name));
        }
        canaries.push_back(std::move(*got));
    } else {
        kube::ListOptions list_options;
        list_options.limit = 500;
        do {
            auto page = co_await ctx.client.list(kube::types::canaries(), scope, list_options);
            if (!page) {
                co_return report(ctx, page.error(),
                                 "list canaries" + (scope.empty() ? std::string(
                                                                        " in all namespaces")
                                                                  : " in namespace " + scope));
            }
            for (auto& item : page->items) {
                canaries.push_back(std::move(item));
            }
            list_options.continue_token = page->continue_token;
        } while (!list_options.continue_token.empty());
    }
    // Histories are extra: a user who may not read them (or a cluster without the CRD) still
    // gets the table, without CHECKS.
    std::map<std::string, Json> histories;
    {
        kube::ListOptions list_options;
        if (!options.name.empty()) {
            list_options.field_selector = "metadata.name=" + options.name;
        }
        auto page = co_await ctx.client.list(kube::types::canary_histories(), scope, list_options);
        if (page) {
            for (auto& item : page->items) {
                // The key first: json's by-value operator= would move the item out before the
                // left side is evaluated.
                std::string key = kube::object_namespace(item) + "/" + kube::object_name(item);
                histories[key] = std::move(item);
            }
        }
    }
    const SystemTime now = ctx.clock.system_now();
    std::vector<CanaryRow> rows;
    for (const auto& canary : canaries) {
        auto it = histories.find(kube::object_namespace(canary) + "/" + kube::object_name(canary));
        rows.push_back(make_row(canary, it == histories.end() ? nullptr : &it->second, now));
    }
    Json items = Json::array();
    for (const auto& row : rows) {
        items.push_back(row_json(row));
    }
    if (print_machine(ctx, options.name.empty() ? Json{{"items", items}} : items.at(0))) {
        co_return kExitOk;
    }
    if (rows.empty()) {
        ctx.err << "No canaries found"
                << (scope.empty() ? std::string() : " in namespace " + scope) << ".\n";
        co_return kExitOk;
    }
    ctx.out << render_rows(rows, ctx.global.all_namespaces, ctx.style);
    co_return kExitOk;
}

// ---- status ---------------------------------------------------------------------------------

void status_flags(CLI::App& command, VerbOptions& options) {
    command.add_option("NAME", options.name, "the canary")->required();
    command.add_flag("-w,--watch", options.watch,
                     "follow the release, printing each change, until it ends: exit 0 when "
                     "promoted, 1 when it failed or was aborted");
    command.add_option("--timeout", options.timeout,
                       "with --watch: give up after this long (Go duration: 90s, 10m) with exit 2");
}

int exit_for_phase(const std::string& phase) {
    return phase == "Failed" ? kExitFailed : kExitOk;
}

Json status_json(const Json& canary) {
    Json out = {{"namespace", get_string(canary, "metadata/namespace")},
                {"name", get_string(canary, "metadata/name")},
                {"phase", get_string(canary, "status/phase")},
                {"weight", get_int(canary, "status/canaryWeight")},
                {"iterations", get_int(canary, "status/iterations")},
                {"failedChecks", get_int(canary, "status/failedChecks")},
                {"message", status_line(canary)}};
    auto step = release_step(canary);
    out["step"] = step ? Json{{"index", step->index}, {"total", step->total}} : Json();
    return out;
}

asio::awaitable<int> run_status(Context& ctx, VerbOptions options) {
    const std::string id = object_id(ctx, options.name);
    if (!options.watch) {
        auto got = co_await ctx.client.get(kube::types::canaries(), ctx.ns, options.name);
        if (!got) {
            co_return report(ctx, got.error(), "get canary " + id);
        }
        if (!print_machine(ctx, status_json(*got))) {
            ctx.out << ctx.style.phase(status_line(*got)) << "\n";
        }
        co_return exit_for_phase(get_string(*got, "status/phase"));
    }
    auto deadline = deadline_of(ctx, options.timeout);
    if (!deadline) {
        ctx.err << "kubectl-serin: " << deadline.error().message << "\n";
        co_return kExitError;
    }
    std::string last_line;
    std::string phase;
    auto done = [&](const Json& canary) {
        phase = get_string(canary, "status/phase");
        std::string line = status_line(canary);
        if (line != last_line) {
            last_line = line;
            if (!print_machine(ctx, status_json(canary))) {
                ctx.out << format_time(ctx.clock.system_now()) << " " << line << "\n";
            }
            ctx.out.flush();
        }
        return phase == "Succeeded" || phase == "Failed";
    };
    auto outcome = co_await follow_until(ctx, kube::types::canaries(), options.name, done,
                                         *deadline);
    if (!outcome) {
        ctx.err << "kubectl-serin: timed out after " << options.timeout << " waiting for canary "
                << id << " (phase " << (phase.empty() ? "none" : phase) << ")\n";
        co_return kExitTimedOut;
    }
    if (!*outcome) {
        co_return report(ctx, outcome->error(), "follow canary " + id);
    }
    co_return exit_for_phase(phase);
}

// ---- history --------------------------------------------------------------------------------

void history_flags(CLI::App& command, VerbOptions& options) {
    command.add_option("NAME", options.name, "the canary")->required();
    command.add_flag("--steps", options.steps, "also print each release's analysis steps");
}

asio::awaitable<int> run_history(Context& ctx, VerbOptions options) {
    const std::string id = object_id(ctx, options.name);
    auto history = co_await ctx.client.get(kube::types::canary_histories(), ctx.ns, options.name);
    if (!history && history.error().kind == ErrorKind::kNotFound) {
        // No history yet is normal for a canary that has not released; no canary is an error.
        auto canary = co_await ctx.client.get(kube::types::canaries(), ctx.ns, options.name);
        if (!canary) {
            co_return report(ctx, canary.error(), "get canary " + id);
        }
        if (!print_machine(ctx, Json{{"releases", Json::array()}})) {
            ctx.out << "no releases recorded for canary " << id << " yet\n";
        }
        co_return kExitOk;
    }
    if (!history) {
        co_return report(ctx, history.error(), "get the history of canary " + id);
    }
    Json releases = Json::array();
    if (const Json* list = find(*history, "spec/releases"); list != nullptr && list->is_array()) {
        for (auto it = list->rbegin(); it != list->rend(); ++it) {
            releases.push_back(*it);
        }
    }
    if (!print_machine(ctx, Json{{"releases", releases}})) {
        ctx.out << render_history(*history, options.steps, ctx.style);
    }
    co_return kExitOk;
}

// ---- explain --------------------------------------------------------------------------------

void explain_flags(CLI::App& command, VerbOptions& options) {
    command.add_option("NAME", options.name, "the canary")->required();
}

asio::awaitable<int> run_explain(Context& ctx, VerbOptions options) {
    const std::string id = object_id(ctx, options.name);
    ExplainInput input;
    auto canary = co_await ctx.client.get(kube::types::canaries(), ctx.ns, options.name);
    if (!canary) {
        co_return report(ctx, canary.error(), "get canary " + id);
    }
    input.canary = std::move(*canary);
    // The history and the Events deepen the answer; without them (not yet written, not
    // readable) explain still speaks from the status.
    auto history = co_await ctx.client.get(kube::types::canary_histories(), ctx.ns, options.name);
    if (history) {
        input.history = std::move(*history);
    }
    kube::ListOptions events;
    events.field_selector = "involvedObject.kind=Canary,involvedObject.name=" + options.name;
    auto listed = co_await ctx.client.list(kube::types::events(), ctx.ns, events);
    if (listed) {
        input.events = std::move(listed->items);
    }
    input.now = ctx.clock.system_now();
    auto reasons = explain(input);
    if (print_machine(ctx, Json{{"namespace", ctx.ns},
                                {"name", options.name},
                                {"phase", get_string(input.canary, "status/phase")},
                                {"reasons", reasons}})) {
        co_return kExitOk;
    }
    ctx.out << ctx.style.bold(status_line(input.canary)) << "\n";
    for (const auto& reason : reasons) {
        ctx.out << "  - " << reason << "\n";
    }
    co_return kExitOk;
}

// ---- promote, abort, pause, resume, retry ---------------------------------------------------

void request_flags(CLI::App& command, VerbOptions& options) {
    command.add_option("NAME", options.name, "the canary")->required();
    command.add_option("--reason", options.reason, "words for the Event and the history");
    command.add_flag("--wait", options.wait,
                     "wait until serin has handled the request: exit 0 done, 1 refused");
    command.add_option("--timeout", options.timeout,
                       "with --wait: give up after this long (Go duration; default 5m), exit 2");
}

void promote_flags(CLI::App& command, VerbOptions& options) {
    request_flags(command, options);
    command.add_flag("--full", options.full, "also skip the confirm-promotion gates");
}

asio::awaitable<int> run_request(Context& ctx, VerbOptions options) {
    const std::string id = object_id(ctx, options.name);
    const std::string doing = "create a " + options.action + " request for canary " + id;
    auto canary = co_await ctx.client.get(kube::types::canaries(), ctx.ns, options.name);
    if (!canary) {
        co_return report(ctx, canary.error(), doing);
    }
    Json request = make_request(*canary, options.action, options.full, requested_by(ctx.config),
                                options.reason);
    auto created = co_await ctx.client.create(kube::types::canary_requests(), ctx.ns, std::move(request));
    if (!created) {
        report(ctx, created.error(), doing);
        co_return created.error().kind == ErrorKind::kForbidden ? kExitFailed : kExitError;
    }
    const std::string request_name = kube::object_name(*created);
    if (!options.wait) {
        if (!print_machine(ctx, *created)) {
            ctx.out << "canaryrequest.serin.dev/" << request_name << " created (" << options.action
                    << " " << id << ")\n";
        }
        co_return kExitOk;
    }
    if (ctx.global.output.empty()) {
        ctx.out << "canaryrequest.serin.dev/" << request_name << " created (" << options.action
                << " " << id << "), waiting for serin" << std::endl;
    }
    auto deadline = deadline_of(ctx, options.timeout.empty() ? std::string("5m") : options.timeout);
    if (!deadline) {
        ctx.err << "kubectl-serin: " << deadline.error().message << "\n";
        co_return kExitError;
    }
    auto handled = [](const Json& r) {
        std::string phase = get_string(r, "status/phase");
        return phase == "Done" || phase == "Refused";
    };
    auto outcome = co_await follow_until(ctx, kube::types::canary_requests(), request_name, handled, *deadline);
    if (!outcome) {
        ctx.err << "kubectl-serin: timed out waiting for serin to handle canaryrequest "
                << object_id(ctx, request_name) << " (is serin running?)\n";
        co_return kExitTimedOut;
    }
    if (!*outcome) {
        co_return report(ctx, outcome->error(), "follow canaryrequest " + request_name);
    }
    const Json& done = **outcome;
    const bool refused = get_string(done, "status/phase") == "Refused";
    if (!print_machine(ctx, done)) {
        (refused ? ctx.err : ctx.out)
            << "canaryrequest.serin.dev/" << request_name << " "
            << (refused ? ctx.style.paint("refused", "31") : ctx.style.paint("done", "32")) << ": "
            << get_string(done, "status/message") << "\n";
    }
    co_return refused ? kExitFailed : kExitOk;
}

void dashboard_flags(CLI::App& command, VerbOptions& options) {
    command.add_option("--port", options.port, "the port on 127.0.0.1 (default: a free one)")
        ->check(CLI::Range(0, 65535));
}

/// Serves the web view on 127.0.0.1 with the user's own credentials until SIGINT or SIGTERM.
/// It runs its own event loop: nothing else runs in this process meanwhile.
asio::awaitable<int> run_dashboard(Context& ctx, VerbOptions options) {
    dashboard::DashboardOptions served;
    served.cluster = ctx.config;
    // -n: that namespace; otherwise every namespace the user may list.
    served.ns = ctx.global.all_namespaces ? std::string() : ctx.global.ns;
    served.port = static_cast<std::uint16_t>(options.port);
    served.requested_by = requested_by(ctx.config);
    served.out = &ctx.out;
    served.err = &ctx.err;
    co_return dashboard::run(served);
}

constexpr Verb kVerbs[] = {
    {"get", "list canaries: phase, weight, step, failed checks, last check values, age",
     get_flags, run_get},
    {"status", "the release in words; --watch follows it to its end", status_flags, run_status},
    {"history", "the releases recorded in the canary's CanaryHistory, newest first",
     history_flags, run_history},
    {"explain", "why the release is where it is", explain_flags, run_explain},
    {"promote", "skip the remaining analysis and promote (a CanaryRequest)", promote_flags,
     run_request, "promote"},
    {"abort", "roll the release back now (a CanaryRequest)", request_flags, run_request, "abort"},
    {"pause", "freeze the analysis clock (a CanaryRequest)", request_flags, run_request, "pause"},
    {"resume", "unfreeze a paused analysis (a CanaryRequest)", request_flags, run_request,
     "resume"},
    {"retry", "start a failed release again (a CanaryRequest)", request_flags, run_request,
     "retry"},
    {"dashboard", "serve the web view on 127.0.0.1 with your credentials", dashboard_flags,
     run_dashboard},
};

}  // namespace

std::span<const Verb> verbs() {
    return kVerbs;
}

int run_command_line(int argc, char** argv, std::ostream& out, std::ostream& err) {
    CLI::App app{"kubectl serin: runtime control of Serin's canary releases", "kubectl-serin"};
    app.require_subcommand(1);
    app.fallthrough();  // global flags may follow the verb
    GlobalOptions global;
    app.add_option("--kubeconfig", global.kubeconfig,
                   "the kubeconfig (default: $KUBECONFIG, then ~/.kube/config)");
    app.add_option("--context", global.context, "the kubeconfig context (default: current)");
    app.add_option("-n,--namespace", global.ns,
                   "the namespace (default: the context's, else \"default\")");
    app.add_flag("-A,--all-namespaces", global.all_namespaces, "get: every namespace");
    app.add_option("-o,--output", global.output, "machine output: json or yaml")
        ->check(CLI::IsMember({"json", "yaml"}));

    VerbOptions options;
    const Verb* chosen = nullptr;
    std::vector<std::pair<CLI::App*, const Verb*>> commands;
    for (const Verb& verb : verbs()) {
        CLI::App* command = app.add_subcommand(std::string(verb.name), std::string(verb.help));
        verb.flags(*command, options);
        command->footer(
            "Global flags (before or after the verb): --kubeconfig, --context, -n/--namespace, "
            "-A/--all-namespaces, -o json|yaml.\nExit codes: 0 done, 1 failed/aborted/refused, "
            "2 timed out, 3 other errors.");
        commands.emplace_back(command, &verb);
    }
    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e, out, err);
    } catch (const CLI::CallForAllHelp& e) {
        return app.exit(e, out, err);
    } catch (const CLI::ParseError& e) {
        app.exit(e, out, err);
        return kExitError;
    }
    for (const auto& [command, verb] : commands) {
        if (command->parsed()) {
            chosen = verb;
        }
    }
    if (chosen == nullptr) {
        err << app.help();
        return kExitError;
    }
    options.action = std::string(chosen->action);

    auto config = kube::load_default_config(global.kubeconfig, global.context);
    if (!config) {
        err << "kubectl-serin: " << config.error().message << "\n";
        return kExitError;
    }
    SystemClock clock;
    asio::io_context io;
    kube::RestClientOptions client_options;
    client_options.user_agent = "kubectl-serin/0.1";
    client_options.max_response_bytes = 64 * 1024 * 1024;
    auto client = kube::make_rest_client(io.get_executor(), *config, clock, client_options);
    if (!client) {
        err << "kubectl-serin: " << client.error().describe() << "\n";
        return kExitError;
    }
    Context ctx{**client, clock, *config, global,
                global.ns.empty() ? config->default_namespace : global.ns,
                Style{global.output.empty() && colour_wanted()}, out, err};
    int code = kExitError;
    std::exception_ptr thrown;
    asio::co_spawn(io, chosen->run(ctx, options), [&](std::exception_ptr e, int result) {
        thrown = e;
        code = result;
    });
    io.run();
    if (thrown) {
        try {
            std::rethrow_exception(thrown);
        } catch (const std::exception& e) {
            err << "kubectl-serin: internal error: " << e.what() << "\n";
        }
        return kExitError;
    }
    return code;
}

}  // namespace serin::cli
