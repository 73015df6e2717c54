#include "controller/canary/reconciler.hpp"

#include "crds/api/json_access.hpp"
#include "meshes/common/session_affinity.hpp"
#include "metrics/metric_judge.hpp"
#include "platform/core/json.hpp"
#include "platform/core/log.hpp"
#include "platform/core/text.hpp"
#include "platform/core/time_format.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <variant>

namespace serin::canary {

namespace asio = boost::asio;
using analysis::Decision;
using analysis::Observations;
using kube::ObjectPtr;
namespace types = kube::types;

namespace {

constexpr std::string_view kTerminating = "Terminating";

/// The interval between analysis steps.
Duration interval_of(const api::Canary& canary) {
    return canary.spec.analysis ? Duration(canary.spec.analysis->interval_duration)
                                : Duration(std::chrono::seconds{60});
}

using api::find_path;
using api::string_at;

bool has_finalizer(const api::Canary& canary) {
    const auto& f = canary.metadata.finalizers;
    return std::find(f.begin(), f.end(), kFinalizer) != f.end();
}

/// Sets the Accepted condition; returns true when it changed.
bool set_accepted(std::vector<api::Condition>& conditions, bool accepted, const std::string& reason,
                  const std::string& message, const std::string& now) {
    const std::string status = accepted ? "True" : "False";
    auto it = std::find_if(conditions.begin(), conditions.end(),
                           [](const api::Condition& c) { return c.type == kAcceptedCondition; });
    if (it != conditions.end() && it->status == status && it->message == message) {
        return false;
    }
    api::Condition c{std::string(kAcceptedCondition), status, now, now, reason, message};
    if (it != conditions.end()) {
        if (it->status == status) {
            c.last_transition_time = it->last_transition_time;
        }
        *it = std::move(c);
    } else {
        conditions.push_back(std::move(c));
    }
    return true;
}

/// advance()'s question answered by a coroutine: as BackgroundCalls holds answers.
asio::awaitable<Answer> as_answer(asio::awaitable<analysis::HookRun> run) {
    co_return Answer{co_await std::move(run)};
}
asio::awaitable<Answer> as_answer(asio::awaitable<std::vector<analysis::MetricResult>> results) {
    co_return Answer{co_await std::move(results)};
}

std::string budget_text(Duration budget) {
    return std::to_string(std::chrono::duration_cast<std::chrono::seconds>(budget).count()) + "s";
}

/// The answer of hooks that ran past the budget: the first hook of the type did not answer.
analysis::HookRun unanswered_hooks(const api::Canary& canary, analysis::HookType type,
                                   Duration budget) {
    analysis::HookRun run;
    if (canary.spec.analysis) {
        for (const api::CanaryWebhook& hook : canary.spec.analysis->webhooks) {
            if (analysis::hook_type(hook.type) == type) {
                run.push_back(analysis::HookCall{
                    hook.name, false, "no answer within the " + budget_text(budget) + " budget"});
                break;
            }
        }
    }
    return run;
}

/// The answer of metric checks that ran past the budget: an error for each metric.
std::vector<analysis::MetricResult> unanswered_metrics(const api::Canary& canary,
                                                       Duration budget) {
    std::vector<analysis::MetricResult> results;
    if (canary.spec.analysis) {
        for (const api::CanaryMetric& metric : canary.spec.analysis->metrics) {
            results.push_back(analysis::MetricResult{
                metric.name, analysis::Verdict::kError, std::nullopt,
                "Metric query failed for " + metric.name + ": no answer within the " +
                    budget_text(budget) + " budget",
                std::nullopt});
        }
    }
    return results;
}

/// Posts one event webhook; a failure is only logged.
asio::awaitable<void> post_event(WebhookClient& webhooks, WebhookTarget target,
                                 WebhookPayload payload, std::string key) {
    auto result = co_await webhooks.call(std::move(target), std::move(payload));
    if (!result) {
        CanaryLog(key).warn("event webhook failed: {}", result.error().message);
    }
}

const char* severity_name(analysis::Severity s) {
    switch (s) {
        case analysis::Severity::kInfo:
            return "info";
        case analysis::Severity::kWarn:
            return "warn";
        case analysis::Severity::kError:
            return "error";
    }
    return "info";
}

}  // namespace

/// One reconcile's canary, target and derived names.
struct Reconciler::Context {
    std::string key;
    ObjectPtr raw;  ///< the Canary object as last read or written
    api::Canary canary;
    std::string provider;
    meshes::MeshRouter* router = nullptr;
    ObjectPtr target;
    ObjectPtr primary;
    ObjectPtr hpa;
    SelectorLabel label;
    std::optional<api::StringMap> configs;
    Json owner;

    const std::string& ns() const { return canary.metadata.ns; }
    const std::string& target_name() const { return canary.spec.target_ref.name; }
    std::string primary_name() const { return target_name() + "-primary"; }

    meshes::RouteContext route_context() const {
        const std::string& apex = canary.spec.service.name;
        return meshes::RouteContext{canary,           provider,  owner,      apex,
                                    apex + "-primary", apex + "-canary", label.key, label.value};
    }
};

Reconciler::Reconciler(ReconcilerDeps deps, ReconcilerOptions options)
    : deps_(deps), options_(std::move(options)) {}

void Reconciler::forget(const std::string& key) {
    memory_.erase(key);
    if (deps_.telemetry != nullptr) {
        const auto slash = key.find('/');
        if (slash != std::string::npos) {
            deps_.telemetry->forget_canary(key.substr(0, slash), key.substr(slash + 1));
        }
    }
    deps_.calls.forget(key);
}

ReconcileResult Reconciler::waiting() const {
    // Woken when the answer is ready; the re-queue is only a safety net (sooner when the
    // question could not even be started because too many are being worked out).
    return ReconcileResult{deps_.calls.saturated() ? Duration(std::chrono::seconds{1})
                                                   : Duration(std::chrono::seconds{30})};
}

asio::awaitable<std::optional<analysis::HookRun>> Reconciler::hooks_answer(
    const Context& ctx, const analysis::HookRequest& request, const std::string& question) {
    const std::string checksum = canary_checksum(ctx.canary.status);
    auto answer = deps_.calls.ask(
        ctx.key, question,
        [&webhooks = deps_.webhooks, canary = ctx.canary, request, checksum] {
            return as_answer(run_hooks(webhooks, canary, request.type, request.phase, checksum));
        },
        [canary = ctx.canary, type = request.type, budget = deps_.calls.budget()] {
            return Answer{unanswered_hooks(canary, type, budget)};
        });
    if (!answer) {
        co_return std::nullopt;
    }
    co_return std::get<analysis::HookRun>(std::move(*answer));
}

asio::awaitable<std::optional<std::vector<analysis::MetricResult>>> Reconciler::metrics_answer(
    const Context& ctx, const std::string& question) {
    auto answer = deps_.calls.ask(
        ctx.key, question,
        [&metrics = deps_.metrics, canary = ctx.canary] {
            return as_answer(metrics.check(canary));
        },
        [canary = ctx.canary, budget = deps_.calls.budget()] {
            return Answer{unanswered_metrics(canary, budget)};
        });
    if (!answer) {
        co_return std::nullopt;
    }
    co_return std::get<std::vector<analysis::MetricResult>>(std::move(*answer));
}

const kube::ResourceType& Reconciler::workload_type(const Context& ctx) const {
    return ctx.canary.spec.target_ref.kind == "DaemonSet" ? types::daemon_sets()
                                                          : types::deployments();
}

asio::awaitable<Result<ReconcileResult>> Reconciler::reconcile(std::string key) {
    const SteadyTime started = deps_.clock.steady_now();
    Result<ReconcileResult> result = co_await reconcile_key(std::move(key));
    if (deps_.telemetry != nullptr) {
        deps_.telemetry->observe_reconcile(
            std::chrono::duration<double>(deps_.clock.steady_now() - started).count(),
            result.has_value());
    }
    co_return result;
}

void Reconciler::record_telemetry(const Context& ctx, const analysis::Observations& obs,
                                  const analysis::Decision& decision,
                                  const api::CanaryStatus& before, SteadyTime started) {
    telemetry::Telemetry* t = deps_.telemetry;
    if (t == nullptr) {
        return;
    }
    t->set_status(ctx.canary, decision.status.phase);
    std::optional<analysis::Routes> routes = obs.routes;
    for (const analysis::Action& action : decision.actions) {
        if (const auto* set = std::get_if<analysis::SetRoutes>(&action)) {
            routes = set->routes;
        }
    }
    if (routes) {
        t->set_weights(ctx.canary, routes->primary, routes->canary);
    }
    // Flagger's tick duration: a paced analysis step (with or without metrics).
    if (obs.metrics || (decision.consumed_tick && before.phase == "Progressing")) {
        t->observe_analysis(ctx.canary,
                            std::chrono::duration<double>(deps_.clock.steady_now() - started).count());
    }
    if (obs.metrics) {
        for (const analysis::MetricResult& m : *obs.metrics) {
            if (m.value) {
                t->set_metric_value(ctx.canary, m.name,
                                    m.name == "request-duration" ? *m.value / 1000 : *m.value);
            }
        }
    }
    const std::string& phase = decision.status.phase;
    if (phase != before.phase && (phase == "Succeeded" || phase == "Failed")) {
        const bool skipped = ctx.canary.spec.skip_analysis || !ctx.canary.spec.analysis;
        t->count_release(ctx.canary, phase == "Succeeded", phase == "Succeeded" && skipped);
    }
}

asio::awaitable<Result<ReconcileResult>> Reconciler::reconcile_key(std::string key) {
    const auto slash = key.find('/');
    if (slash == std::string::npos) {
        co_return ReconcileResult{};
    }
    ObjectPtr raw = deps_.store.get(types::canaries(), key.substr(0, slash), key.substr(slash + 1));
    if (raw == nullptr) {
        forget(key);
        co_return ReconcileResult{};
    }
    co_return co_await reconcile_canary(std::move(key), std::move(raw));
}

asio::awaitable<Result<ReconcileResult>> Reconciler::reconcile_canary(std::string key,
                                                                      ObjectPtr raw) {
    auto decoded = api::decode_canary(*raw);
    if (!decoded) {
        co_return co_await reject(raw, decoded.error().message);
    }
    Context ctx;
    ctx.key = std::move(key);
    ctx.raw = std::move(raw);
    ctx.canary = std::move(*decoded);
    ctx.owner = owner_reference(ctx.canary);
    const api::CanarySpec& spec = ctx.canary.spec;

    if (ctx.canary.metadata.deletion_timestamp) {
        if (has_finalizer(ctx.canary)) {
            co_return co_await finalize(ctx);
        }
        co_return ReconcileResult{};
    }
    if (auto synced = co_await sync_finalizer(ctx); !synced) {
        co_return synced.error();
    }

    // ---- is there anything to act on? ----
    ctx.provider = spec.provider.empty() ? options_.mesh_provider : spec.provider;
    if (auto valid = analysis::validate(spec, ctx.provider); !valid) {
        co_return co_await reject(ctx.raw, valid.error().message);
    }
    if (options_.no_cross_namespace_refs) {
        if (auto own = analysis::validate_namespaces(ctx.canary); !own) {
            co_return co_await reject(ctx.raw, own.error().message);
        }
    }
    auto router = deps_.routers.find(ctx.provider);
    if (!router) {
        co_return co_await reject(ctx.raw, router.error().message);
    }
    ctx.router = *router;
    ctx.target = deps_.store.get(workload_type(ctx), ctx.ns(), ctx.target_name());
    if (ctx.target == nullptr) {
        co_return co_await reject(ctx.raw, "spec.targetRef.name: " + spec.target_ref.kind + " \"" +
                                   ctx.target_name() + "\" not found in namespace " + ctx.ns());
    }
    if (auto other = competing_canary(ctx)) {
        co_return co_await reject(ctx.raw, "spec.targetRef: " + spec.target_ref.kind + " \"" +
                                   ctx.target_name() + "\" is already released by canary \"" +
                                   *other + "\"");
    }
    auto label = selector_label(*ctx.target, options_.selector_labels);
    if (!label) {
        co_return co_await reject(ctx.raw, label.error().message);
    }
    ctx.label = std::move(*label);
    if (spec.autoscaler_ref && spec.autoscaler_ref->kind != "HorizontalPodAutoscaler") {
        co_return co_await reject(ctx.raw, "spec.autoscalerRef.kind: \"" + spec.autoscaler_ref->kind +
                                   "\" is not supported yet (HorizontalPodAutoscaler is)");
    }
    if (auto fetched = co_await fetch_secrets(ctx); !fetched) {
        co_return fetched.error();
    }
    auto configs = tracked_configs(ctx);
    if (!configs) {
        // Not a spec error but the same for the user: the template references something that
        // does not exist. The config's creation is not watched for this canary, so look again.
        const std::optional<Duration> look_again = std::chrono::seconds{10};
        co_return co_await reject(ctx.raw, configs.error().message, look_again);
    }
    ctx.configs = std::move(*configs);

    // ---- the objects the canary owns ----
    if (auto ok = co_await ensure_services(ctx); !ok) {
        co_return ok.error();
    }
    auto primary = co_await ensure_primary(ctx);
    if (!primary) {
        co_return primary.error();
    }
    ctx.primary = std::move(*primary);
    if (auto ok = co_await ensure_primary_hpa(ctx, false); !ok) {
        co_return ok.error();
    }
    const meshes::RouteContext route = ctx.route_context();
    if (auto ok = co_await ctx.router->reconcile(route); !ok) {
        // A spec the router cannot serve, or a routing object the API server refuses (422),
        // is the user's to fix: a condition and an Event, not a retry loop.
        if (ok.error().kind == ErrorKind::kInvalid) {
            co_return co_await reject(ctx.raw, ok.error().message);
        }
        co_return ok.error();
    }

    // ---- decide ----
    Observations obs = observe(ctx);
    if (auto routes = co_await ctx.router->get_routes(route)) {
        obs.routes = *routes;
    } else {
        obs.routes_error = routes.error().message;
    }
    Memory& memory = memory_[ctx.key];
    const SteadyTime steady_now = deps_.clock.steady_now();
    const Duration interval = interval_of(ctx.canary);
    obs.tick_due = !memory.last_step || steady_now - *memory.last_step >= interval;
    analysis::Settings settings{ctx.provider};
    settings.mirror_blue_green = ctx.router->can_mirror(true);
    settings.mirror_weighted = ctx.router->can_mirror(false);
    const std::string checksum = canary_checksum(ctx.canary.status);

    // What the answers to advance()'s questions depend on: a status that moved on, or a new
    // spec, asks anew.
    const std::string about = fmt::format(
        "{}|{}|{}|{}|{}|{}|{}", ctx.canary.metadata.generation, ctx.canary.status.phase,
        ctx.canary.status.canary_weight, ctx.canary.status.iterations,
        ctx.canary.status.failed_checks, ctx.canary.status.last_transition_time, checksum);
    Decision decision;
    for (int round = 0;; ++round) {
        decision = analysis::advance(ctx.canary, obs, settings, deps_.clock.system_now());
        if (round > 16) {
            break;  // cannot happen: each round answers one more question
        }
        if (decision.need_hooks) {
            const analysis::HookRequest request = *decision.need_hooks;
            auto run = co_await hooks_answer(
                ctx, request,
                fmt::format("hooks {} {} {}", static_cast<int>(request.type), request.phase, about));
            if (!run) {
                co_return waiting();
            }
            obs.hooks[request.type] = std::move(*run);
        } else if (decision.need_metrics) {
            auto results = co_await metrics_answer(ctx, "metrics " + about);
            if (!results) {
                co_return waiting();
            }
            obs.metrics = std::move(*results);
            Memory& seen = memory_[ctx.key];
            seen.metric_steps += 1;
            seen.last_metrics = metrics::describe_metrics(*obs.metrics);
            CanaryLog(ctx.key).info("metrics at weight {}: {}",
                         ctx.canary.status.canary_weight, seen.last_metrics);
        } else {
            break;
        }
    }
    if (decision.needs_input()) {
        co_return fail(ErrorKind::kInternal, "advance kept asking for input");
    }
    // The status before this decision, for the summary of an alert that ends the release.
    const api::CanaryStatus before = ctx.canary.status;
    if (decision.status.phase == "Progressing" && before.phase != "Progressing") {
        const std::string& p = before.phase;
        if (p.empty() || p == "Initialized" || p == "Succeeded" || p == "Failed") {
            memory_[ctx.key].metric_steps = 0;  // a new release
            memory_[ctx.key].last_metrics.clear();
        }
    }
    const std::string now_text = format_time(deps_.clock.system_now());
    set_accepted(decision.status.conditions, true, "Valid",
                 "The spec is valid and its target exists.", now_text);

    // ---- act: routing and workloads first, then the status, then what only reports (a
    // rollback writes its status first: see Decision::status_first) ----
    if (decision.status_first) {
        if (auto written = co_await write_decided_status(ctx, decision.status, now_text);
            !written) {
            co_return written.error();
        }
    }
    for (const analysis::Action& action : decision.actions) {
        Result<void> done;
        if (const auto* routes = std::get_if<analysis::SetRoutes>(&action)) {
            meshes::RouteContext next = route;
            const auto& analysis = ctx.canary.spec.analysis;
            if (ctx.router->supports_session_affinity() && analysis && analysis->session_affinity) {
                // The router routes by the status' cookies; the status write below keeps them.
                meshes::update_session_cookies(decision.status, *analysis->session_affinity,
                                               routes->routes,
                                               [this] { return meshes::random_cookie_value(random_); });
                next.canary.status = decision.status;
            }
            done = co_await ctx.router->set_routes(next, routes->routes);
            if (!done && done.error().kind == ErrorKind::kInvalid) {
                co_return co_await reject(ctx.raw, done.error().message);
            }
        } else if (std::holds_alternative<analysis::ScaleUp>(action)) {
            done = co_await scale(ctx, true);
        } else if (std::holds_alternative<analysis::ScaleToZero>(action)) {
            done = co_await scale(ctx, false);
        } else if (std::holds_alternative<analysis::Promote>(action)) {
            done = co_await promote(ctx);
        }
        if (!done) {
            co_return done.error();
        }
    }
    if (!decision.status_first) {
        if (auto written = co_await write_decided_status(ctx, decision.status, now_text);
            !written) {
            co_return written.error();
        }
    }
    // The step is on record: from here on nothing may make it run again early, whatever fails
    // below (an Event, an alert), and the answers it used are spent.
    if (decision.consumed_tick) {
        memory.last_step = steady_now;
    }
    deps_.calls.forget(ctx.key);
    record_telemetry(ctx, obs, decision, before, steady_now);
    for (const analysis::Action& action : decision.actions) {
        if (const auto* event = std::get_if<analysis::RecordEvent>(&action)) {
            co_await emit(ctx, *event);
        } else if (const auto* alert = std::get_if<analysis::Alert>(&action)) {
            co_await send_alert(ctx, *alert, before);
        } else if (const auto* hooks = std::get_if<analysis::RunHooks>(&action)) {
            if (!deps_.calls.post(ctx.key, run_post_rollout(ctx, hooks->phase))) {
                CanaryLog(ctx.key).warn("post-rollout hooks not run: {} background calls are "
                                        "already running",
                                        deps_.calls.posts_in_flight());
            }
        }
    }
    memory.reported_invalid.clear();
    ReconcileResult result;
    if (decision.active) {
        const SteadyTime next = memory.last_step ? *memory.last_step + interval : steady_now;
        result.requeue_after = std::max<Duration>(next - steady_now, std::chrono::milliseconds{50});
    }
    co_return result;
}

// ---- observations ------------------------------------------------------------------------------

analysis::Readiness Reconciler::readiness(const Context& ctx, const Json& workload,
                                          int threshold_percent, const std::string& prefix) const {
    const SystemTime now = deps_.clock.system_now();
    const int deadline = ctx.canary.spec.progress_deadline_seconds;
    if (ctx.canary.spec.target_ref.kind == "DaemonSet") {
        // A DaemonSet's deadline runs from the canary's last status change (flagger-spec §3.6).
        const SystemTime since =
            parse_time(ctx.canary.status.last_transition_time).value_or(now);
        return daemonset_readiness(workload, threshold_percent, deadline, now, since, prefix);
    }
    return deployment_readiness(workload, threshold_percent, deadline, now, prefix);
}

Observations Reconciler::observe(const Context& ctx) const {
    Observations obs;
    obs.revision = revision_hash(*ctx.target);
    obs.configs = ctx.configs;
    const auto& analysis = ctx.canary.spec.analysis;
    const std::string primary_prefix = ctx.primary_name() + "." + ctx.ns() + " not ready: ";
    obs.primary = ctx.primary == nullptr
                      ? analysis::Readiness{false, true, primary_prefix + "not found"}
                      : readiness(ctx, *ctx.primary, analysis ? analysis->primary_ready_threshold : 100,
                                  primary_prefix);
    const bool daemonset = ctx.canary.spec.target_ref.kind == "DaemonSet";
    obs.canary = readiness(ctx, *ctx.target, analysis ? analysis->canary_ready_threshold : 100,
                           std::string(daemonset ? "canary daemonset " : "canary deployment ") +
                               ctx.target_name() + "." + ctx.ns() + " not ready: ");
    return obs;
}

std::optional<std::string> Reconciler::competing_canary(const Context& ctx) const {
    const std::string created = string_at(*ctx.raw, {"metadata", "creationTimestamp"});
    std::optional<std::pair<std::string, std::string>> first;
    for (const ObjectPtr& other : deps_.store.list(types::canaries(), ctx.ns())) {
        const std::string name = kube::object_name(*other);
        if (name == ctx.canary.metadata.name ||
            string_at(*other, {"spec", "targetRef", "name"}) != ctx.target_name() ||
            string_at(*other, {"spec", "targetRef", "kind"}) != ctx.canary.spec.target_ref.kind ||
            find_path(*other, {"metadata", "deletionTimestamp"}) != nullptr) {
            continue;
        }
        std::pair<std::string, std::string> order{
            string_at(*other, {"metadata", "creationTimestamp"}), name};
        if (order < std::pair{created, ctx.canary.metadata.name} && (!first || order < *first)) {
            first = order;
        }
    }
    if (first) {
        return first->second;
    }
    return std::nullopt;
}

asio::awaitable<Result<void>> Reconciler::fetch_secrets(const Context& ctx) {
    std::map<std::string, std::vector<std::string>> wanted;  // namespace -> names
    if (options_.config_tracking) {
        if (const Json* pod_spec = find_path(*ctx.target, {"spec", "template", "spec"})) {
            for (const ConfigRef& ref : config_refs(*pod_spec)) {
                if (ref.kind == ConfigRef::Kind::kSecret) {
                    wanted[ctx.ns()].push_back(ref.name);
                    wanted[ctx.ns()].push_back(ref.name + "-primary");
                }
            }
        }
    }
    // The credentials of the MetricTemplates (spec.provider.secretRef) and AlertProviders
    // (spec.secretRef) the canary names, each in the namespace of the object that names it.
    auto credentials = [&](const kube::ResourceType& type, const std::string& ns,
                           const std::string& name,
                           std::initializer_list<std::string_view> secret_path) {
        if (ObjectPtr object = deps_.store.get(type, ns, name)) {
            if (std::string secret = string_at(*object, secret_path); !secret.empty()) {
                wanted[ns].push_back(std::move(secret));
            }
        }
    };
    if (const auto& analysis = ctx.canary.spec.analysis) {
        for (const api::CanaryMetric& metric : analysis->metrics) {
            if (metric.template_ref) {
                credentials(types::metric_templates(),
                            metric.template_ref->ns.empty() ? ctx.ns() : metric.template_ref->ns,
                            metric.template_ref->name,
                            {"spec", "provider", "secretRef", "name"});
            }
        }
        for (const api::CanaryAlert& alert : analysis->alerts) {
            credentials(types::alert_providers(),
                        alert.provider_ref.ns.empty() ? ctx.ns() : alert.provider_ref.ns,
                        alert.provider_ref.name, {"spec", "secretRef", "name"});
        }
    }
    for (auto& [ns, names] : wanted) {
        if (auto done = co_await deps_.secrets.fetch(ns, std::move(names)); !done) {
            co_return done.error();
        }
    }
    co_return Result<void>{};
}

Result<std::optional<api::StringMap>> Reconciler::tracked_configs(const Context& ctx) const {
    if (!options_.config_tracking) {
        return std::optional<api::StringMap>{};
    }
    const Json* pod_spec = find_path(*ctx.target, {"spec", "template", "spec"});
    if (pod_spec == nullptr) {
        return std::optional<api::StringMap>{};
    }
    api::StringMap out;
    for (const ConfigRef& ref : config_refs(*pod_spec)) {
        const bool map = ref.kind == ConfigRef::Kind::kConfigMap;
        ObjectPtr config =
            deps_.store.get(map ? types::config_maps() : types::secrets(), ctx.ns(), ref.name);
        if (config == nullptr) {
            if (ref.optional) {
                continue;
            }
            return fail(ErrorKind::kNotFound,
                        std::string(map ? "configmap " : "secret ") + ref.name + "." + ctx.ns() +
                            " used by the pod template of " + ctx.canary.spec.target_ref.kind +
                            " " + ctx.target_name() + " not found");
        }
        if (tracking_disabled(*config)) {
            continue;
        }
        out[ref.key()] = config_checksum(*config);
    }
    if (out.empty()) {
        return std::optional<api::StringMap>{};
    }
    return std::optional<api::StringMap>{std::move(out)};
}

PrimaryOptions Reconciler::primary_options(const Context& ctx) const {
    PrimaryOptions options;
    options.label = ctx.label;
    if (ctx.configs) {
        for (const auto& [key, checksum] : *ctx.configs) {
            options.tracked_configs.insert(key);
        }
    }
    options.include_label_prefixes = options_.include_label_prefixes;
    // Derived from what is being promoted rather than random, so a promote that is retried
    // after a crash writes the same template and does not roll the primary twice.
    Json configs = ctx.configs ? Json(*ctx.configs) : Json();
    options.flagger_id = flagger_hash(revision_hash(*ctx.target) + "/" + canonical_dump(configs));
    options.owner_reference = ctx.owner;
    return options;
}

// ---- the owned objects -------------------------------------------------------------------------

asio::awaitable<Result<void>> Reconciler::copy_configs(const Context& ctx) {
    if (!ctx.configs) {
        co_return Result<void>{};
    }
    for (const auto& [key, checksum] : *ctx.configs) {
        const auto slash = key.find('/');
        const bool map = key.substr(0, slash) == "configmap";
        const kube::ResourceType& type = map ? types::config_maps() : types::secrets();
        const std::string name = key.substr(slash + 1);
        ObjectPtr source = deps_.store.get(type, ctx.ns(), name);
        if (source == nullptr) {
            continue;
        }
        Json desired = make_primary_config(*source, ctx.owner, options_.include_label_prefixes);
        ObjectPtr live = deps_.store.get(type, ctx.ns(), name + "-primary");
        Result<Json> written = fail(ErrorKind::kInternal, "not written");
        if (live == nullptr) {
            written = co_await deps_.client.create(type, ctx.ns(), desired);
            if (!written && written.error().kind == ErrorKind::kAlreadyExists) {
                continue;  // the cache will show it; the next reconcile compares it
            }
        } else {
            const auto field = [](const Json& o, const char* k) {
                auto it = o.find(k);
                return it == o.end() ? Json() : *it;
            };
            if (field(*live, "data") == field(desired, "data") &&
                field(*live, "binaryData") == field(desired, "binaryData")) {
                continue;
            }
            Json update = *live;
            for (const char* k : {"data", "binaryData"}) {
                if (desired.contains(k)) {
                    update[k] = desired[k];
                } else {
                    update.erase(k);
                }
            }
            written = co_await deps_.client.update(type, ctx.ns(), update);
        }
        if (!written) {
            co_return written.error();
        }
        deps_.store.wrote(type, std::move(*written));
    }
    co_return Result<void>{};
}

asio::awaitable<Result<void>> Reconciler::ensure_services(const Context& ctx) {
    ServiceSet set = make_services(ctx.canary, *ctx.target, ctx.label, ctx.owner);
    const std::string& phase = ctx.canary.status.phase;
    // Once the canary is initialized, a router that switches the apex selector owns it.
    const bool keep_apex = ctx.router->owns_apex_selector() && !phase.empty() &&
                           phase != "Initializing" && phase != "Initialized";
    for (auto [desired, keep] : {std::pair<Json*, bool>{&set.apex, keep_apex},
                                 std::pair<Json*, bool>{&set.primary, false},
                                 std::pair<Json*, bool>{&set.canary, false}}) {
        const std::string name = kube::object_name(*desired);
        ObjectPtr live = deps_.store.get(types::services(), ctx.ns(), name);
        Result<Json> written = fail(ErrorKind::kInternal, "not written");
        if (live == nullptr) {
            written = co_await deps_.client.create(types::services(), ctx.ns(), *desired);
            if (!written && written.error().kind == ErrorKind::kAlreadyExists) {
                continue;
            }
        } else {
            auto update = service_update(*live, *desired, ctx.canary, keep);
            if (!update) {
                continue;
            }
            written = co_await deps_.client.update(types::services(), ctx.ns(), std::move(*update));
        }
        if (!written) {
            co_return written.error();
        }
        deps_.store.wrote(types::services(), std::move(*written));
    }
    co_return Result<void>{};
}

asio::awaitable<Result<ObjectPtr>> Reconciler::ensure_primary(const Context& ctx) {
    const kube::ResourceType& type = workload_type(ctx);
    if (ObjectPtr live = deps_.store.get(type, ctx.ns(), ctx.primary_name())) {
        co_return live;
    }
    if (auto copied = co_await copy_configs(ctx); !copied) {
        co_return copied.error();
    }
    Json primary = make_primary(*ctx.target, primary_options(ctx));
    auto created = co_await deps_.client.create(type, ctx.ns(), std::move(primary));
    if (!created) {
        co_return created.error();  // AlreadyExists too: the cache has not seen it yet, retry
    }
    deps_.store.wrote(type, *created);
    co_return std::make_shared<const Json>(std::move(*created));
}

asio::awaitable<Result<void>> Reconciler::ensure_primary_hpa(const Context& ctx, bool update) {
    const auto& ref = ctx.canary.spec.autoscaler_ref;
    if (!ref) {
        co_return Result<void>{};
    }
    const kube::ResourceType& type = options_.hpa_type;
    ObjectPtr hpa = deps_.store.get(type, ctx.ns(), ref->name);
    if (hpa == nullptr) {
        co_return fail(ErrorKind::kNotFound, "spec.autoscalerRef: HorizontalPodAutoscaler " +
                                                 ref->name + "." + ctx.ns() + " not found");
    }
    Json desired = make_primary_hpa(*hpa, ctx.canary, ctx.owner);
    ObjectPtr live = deps_.store.get(type, ctx.ns(), kube::object_name(desired));
    Result<Json> written = fail(ErrorKind::kInternal, "not written");
    if (live == nullptr) {
        written = co_await deps_.client.create(type, ctx.ns(), std::move(desired));
        if (!written && written.error().kind == ErrorKind::kAlreadyExists) {
            co_return Result<void>{};
        }
    } else {
        auto changed = update ? hpa_update(*live, desired) : std::nullopt;
        if (!changed) {
            co_return Result<void>{};
        }
        written = co_await deps_.client.update(type, ctx.ns(), std::move(*changed));
    }
    if (!written) {
        co_return written.error();
    }
    deps_.store.wrote(type, std::move(*written));
    co_return Result<void>{};
}

asio::awaitable<Result<void>> Reconciler::promote(const Context& ctx) {
    if (auto copied = co_await copy_configs(ctx); !copied) {
        co_return copied.error();
    }
    const kube::ResourceType& type = workload_type(ctx);
    ObjectPtr live = deps_.store.get(type, ctx.ns(), ctx.primary_name());
    if (live == nullptr) {
        co_return fail(ErrorKind::kNotFound, ctx.primary_name() + "." + ctx.ns() + " not found");
    }
    const PrimaryOptions options = primary_options(ctx);
    const bool keep_replicas = ctx.canary.spec.autoscaler_ref.has_value();
    if (!primary_matches(*live, *ctx.target, options, keep_replicas)) {
        auto written = co_await deps_.client.update(
            type, ctx.ns(), promoted_primary(*live, *ctx.target, options, keep_replicas));
        if (!written) {
            co_return written.error();
        }
        deps_.store.wrote(type, std::move(*written));
    }
    co_return co_await ensure_primary_hpa(ctx, true);
}

asio::awaitable<Result<void>> Reconciler::scale(const Context& ctx, bool up) {
    ObjectPtr target = deps_.store.get(workload_type(ctx), ctx.ns(), ctx.target_name());
    if (target == nullptr) {
        target = ctx.target;
    }
    ObjectPtr hpa;
    if (ctx.canary.spec.autoscaler_ref) {
        hpa = deps_.store.get(options_.hpa_type, ctx.ns(), ctx.canary.spec.autoscaler_ref->name);
    }
    auto patch = up ? scale_up_patch(*target, ctx.primary.get(), hpa.get())
                    : scale_to_zero_patch(*target);
    if (!patch) {
        co_return Result<void>{};
    }
    auto written = co_await deps_.client.patch(workload_type(ctx), ctx.ns(), ctx.target_name(),
                                               kube::PatchType::kMerge, *patch);
    if (!written) {
        co_return written.error();
    }
    deps_.store.wrote(workload_type(ctx), std::move(*written));
    co_return Result<void>{};
}

// ---- status, finalizer, events -----------------------------------------------------------------

asio::awaitable<Result<void>> Reconciler::write_status(Context& ctx,
                                                       const api::CanaryStatus& status) {
    Json body = *ctx.raw;
    body["status"] = api::encode_status(status);
    kube::WriteOptions options;
    options.subresource = "status";
    auto written = co_await deps_.client.update(types::canaries(), ctx.ns(), std::move(body),
                                                options);
    if (!written) {
        co_return written.error();
    }
    deps_.store.wrote(types::canaries(), *written);
    ctx.raw = std::make_shared<const Json>(std::move(*written));
    co_return Result<void>{};
}

asio::awaitable<Result<void>> Reconciler::write_decided_status(Context& ctx,
                                                               api::CanaryStatus& status,
                                                               const std::string& now) {
    if (api::encode_status(status) == api::encode_status(ctx.canary.status)) {
        co_return Result<void>{};
    }
    if (status.last_transition_time == ctx.canary.status.last_transition_time) {
        status.last_transition_time = now;
    }
    co_return co_await write_status(ctx, status);
}

asio::awaitable<Result<void>> Reconciler::sync_finalizer(Context& ctx) {
    const bool want = ctx.canary.spec.revert_on_deletion;
    if (want == has_finalizer(ctx.canary)) {
        co_return Result<void>{};
    }
    std::vector<std::string> finalizers = ctx.canary.metadata.finalizers;
    if (want) {
        finalizers.emplace_back(kFinalizer);
    } else {
        finalizers.erase(std::remove(finalizers.begin(), finalizers.end(), kFinalizer),
                         finalizers.end());
    }
    Json body = *ctx.raw;
    body["metadata"]["finalizers"] = finalizers;
    auto written = co_await deps_.client.update(types::canaries(), ctx.ns(), std::move(body));
    if (!written) {
        co_return written.error();
    }
    deps_.store.wrote(types::canaries(), *written);
    ctx.raw = std::make_shared<const Json>(std::move(*written));
    ctx.canary.metadata.finalizers = std::move(finalizers);
    co_return Result<void>{};
}

asio::awaitable<Result<ReconcileResult>> Reconciler::reject(ObjectPtr raw, std::string message,
                                                          std::optional<Duration> requeue_after) {
    auto reported = co_await report_invalid(std::move(raw), std::move(message));
    if (!reported) {
        co_return reported.error();
    }
    co_return ReconcileResult{requeue_after};
}

asio::awaitable<Result<void>> Reconciler::report_invalid(ObjectPtr raw, std::string message) {
    // The message quotes what the user wrote: valid UTF-8 and bounded, or it could not be
    // written to the status at all.
    message = text::clip(message, text::kMaxMessageBytes);
    const std::string key = kube::object_namespace(*raw) + "/" + kube::object_name(*raw);
    Memory& memory = memory_[key];
    auto status = api::decode_status(raw->contains("status") ? raw->at("status") : Json());
    Json body = *raw;
    Json status_json = body.contains("status") && body["status"].is_object() ? body["status"]
                                                                               : Json::object();
    std::vector<api::Condition> conditions = status ? status->conditions
                                                    : std::vector<api::Condition>{};
    const std::string now = format_time(deps_.clock.system_now());
    const bool changed = set_accepted(conditions, false, "InvalidSpec", message, now);
    if (changed) {
        api::CanaryStatus only_conditions;
        only_conditions.conditions = conditions;
        status_json["conditions"] = api::encode_status(only_conditions)["conditions"];
        body["status"] = std::move(status_json);
        kube::WriteOptions options;
        options.subresource = "status";
        auto written =
            co_await deps_.client.update(types::canaries(), kube::object_namespace(*raw),
                                         std::move(body), options);
        if (!written) {
            co_return written.error();
        }
        deps_.store.wrote(types::canaries(), std::move(*written));
    }
    if (changed || memory.reported_invalid != message) {
        CanaryLog(key).warn("{}", message);
        auto recorded = co_await deps_.recorder.record(*raw, kube::EventType::kWarning, "Synced",
                                                       message);
        if (!recorded) {
            CanaryLog(key).warn("event not recorded: {}", recorded.error().describe());
        }
        memory.reported_invalid = message;
    }
    co_return Result<void>{};
}

asio::awaitable<void> Reconciler::emit(const Context& ctx, const analysis::RecordEvent& event) {
    if (event.warning) {
        CanaryLog(ctx.key).warn("{}", event.message);
    } else {
        CanaryLog(ctx.key).info("{}", event.message);
    }
    auto recorded = co_await deps_.recorder.record(
        *ctx.raw, event.warning ? kube::EventType::kWarning : kube::EventType::kNormal, "Synced",
        event.message);
    if (!recorded) {
        CanaryLog(ctx.key).warn("event not recorded: {}", recorded.error().describe());
    }
    post_event_webhooks(ctx, event);
}

asio::awaitable<void> Reconciler::send_alert(const Context& ctx, const analysis::Alert& alert,
                                             const api::CanaryStatus& before) {
    CanaryLog(ctx.key).info("{} alert: {}", severity_name(alert.severity), alert.message);
    if (deps_.alerts == nullptr) {
        co_return;
    }
    std::vector<notify::Field> extra;
    if (alert.summary) {
        const Memory& seen = memory_[ctx.key];
        std::string analysis = std::to_string(seen.metric_steps) + " metric checks, " +
                               std::to_string(before.failed_checks) + " failed";
        if (before.canary_weight > 0) {
            analysis += ", canary weight reached " + std::to_string(before.canary_weight) + "%";
        } else if (before.iterations > 0) {
            analysis += ", " + std::to_string(before.iterations) + " iterations";
        }
        extra.push_back({"Analysis", analysis});
        if (!seen.last_metrics.empty()) {
            extra.push_back({"Last metrics", seen.last_metrics});
        }
        if (before.judge) {
            extra.push_back({"Judge", fmt::format("score {:.2f} ({})", before.judge->score,
                                                  before.judge->result)});
        }
    }
    // A post that fails later is reported on the canary too; the recorder outlives the post.
    const Json involved = *ctx.raw;
    auto on_failure = [this, involved, key = ctx.key](const std::string& why) {
        if (deps_.telemetry != nullptr) {
            deps_.telemetry->count_notification_failure();
        }
        asio::co_spawn(deps_.executor,
                       deps_.recorder.record(involved, kube::EventType::kWarning, "Synced", why),
                       [key](std::exception_ptr, Result<void> recorded) {
                           if (!recorded) {
                               CanaryLog(key).warn("event not recorded: {}",
                                            recorded.error().describe());
                           }
                       });
    };
    for (const std::string& problem : deps_.alerts->send(ctx.canary, alert, extra, on_failure)) {
        CanaryLog(ctx.key).warn("{}", problem);
        auto recorded =
            co_await deps_.recorder.record(*ctx.raw, kube::EventType::kWarning, "Synced", problem);
        if (!recorded) {
            CanaryLog(ctx.key).warn("event not recorded: {}", recorded.error().describe());
        }
    }
}

void Reconciler::post_event_webhooks(const Context& ctx, const analysis::RecordEvent& event) {
    std::vector<WebhookTarget> targets;
    if (ctx.canary.spec.analysis) {
        for (const auto& hook : ctx.canary.spec.analysis->webhooks) {
            if (analysis::hook_type(hook.type) == analysis::HookType::kEvent) {
                targets.push_back(webhook_target(hook));
            }
        }
    }
    if (targets.empty() && !options_.event_webhook.empty()) {
        WebhookTarget global;
        global.name = "events";
        global.url = options_.event_webhook;
        targets.push_back(std::move(global));
    }
    const std::string checksum = canary_checksum(ctx.canary.status);
    for (WebhookTarget& target : targets) {
        WebhookPayload base{ctx.canary.metadata.name, ctx.ns(), event.phase, checksum, {}};
        WebhookPayload payload = event_payload(std::move(base), target.metadata, event.message,
                                               event.warning, deps_.clock.system_now());
        // In the background: an event sink must never hold up a release. The timeout and
        // retries of the hook bound how long each post lives, and BackgroundCalls how many run.
        const std::string name = target.name;
        if (!deps_.calls.post(ctx.key, post_event(deps_.webhooks, std::move(target),
                                                  std::move(payload), ctx.key))) {
            CanaryLog(ctx.key).warn("event webhook {} dropped: {} background calls are already "
                                    "running",
                                    name, deps_.calls.posts_in_flight());
        }
    }
}

asio::awaitable<void> Reconciler::run_post_rollout(Context ctx, std::string phase) {
    const analysis::HookRun run = co_await run_hooks(deps_.webhooks, ctx.canary,
                                                     analysis::HookType::kPostRollout, phase,
                                                     canary_checksum(ctx.canary.status));
    for (const analysis::HookCall& call : run) {
        analysis::RecordEvent event;
        event.phase = phase;
        event.warning = !call.ok;
        event.message = call.ok ? "Post-rollout check " + call.name + " passed"
                                : "Post-rollout hook " + call.name + " failed " + call.error;
        co_await emit(ctx, event);
    }
}

// ---- deletion ------------------------------------------------------------------------------------

asio::awaitable<Result<ReconcileResult>> Reconciler::finalize(Context& ctx) {
    const std::string canary_id = ctx.canary.metadata.name + "." + ctx.ns();
    if (ctx.canary.status.phase != kTerminating) {
        api::CanaryStatus status = ctx.canary.status;
        status.phase = std::string(kTerminating);
        const std::string now = format_time(deps_.clock.system_now());
        analysis::set_promoted_condition(status.conditions, status.phase,
                                         ctx.canary.spec.target_ref.kind, now);
        status.last_transition_time = now;
        if (auto written = co_await write_status(ctx, status); !written) {
            co_return written.error();
        }
        // Named, not a braced temporary in the co_await: g++ 12 destroys those twice.
        const analysis::RecordEvent terminating{false, "Terminating canary " + canary_id,
                                                std::string(kTerminating)};
        co_await emit(ctx, terminating);
        ctx.canary.status = std::move(status);
    }
    const kube::ResourceType& type = workload_type(ctx);
    ctx.target = deps_.store.get(type, ctx.ns(), ctx.target_name());
    if (ctx.target != nullptr) {
        // Give the target back its replicas so it serves again once the primary is gone.
        ctx.primary = deps_.store.get(type, ctx.ns(), ctx.primary_name());
        std::optional<std::string> patch;
        if (ctx.canary.spec.target_ref.kind == "DaemonSet") {
            patch = scale_up_patch(*ctx.target, nullptr, nullptr);
        } else {
            const Json* replicas = find_path(*ctx.target, {"spec", "replicas"});
            const Json* primary_replicas =
                ctx.primary ? find_path(*ctx.primary, {"spec", "replicas"}) : nullptr;
            const std::int64_t want = primary_replicas != nullptr && primary_replicas->is_number()
                                          ? std::max<std::int64_t>(1, primary_replicas->get<std::int64_t>())
                                          : 1;
            if (replicas == nullptr || !replicas->is_number() ||
                replicas->get<std::int64_t>() != want) {
                patch = dump_json(Json{{"spec", {{"replicas", want}}}});
            }
        }
        if (patch) {
            auto written = co_await deps_.client.patch(type, ctx.ns(), ctx.target_name(),
                                                       kube::PatchType::kMerge, *patch);
            if (!written) {
                co_return written.error();
            }
            deps_.store.wrote(type, *written);
            ctx.target = std::make_shared<const Json>(std::move(*written));
        }
        const analysis::Readiness ready = readiness(ctx, *ctx.target, 100, "");
        if (!ready.ready && ready.retriable) {
            CanaryLog(ctx.key).info("waiting for {} before removing the finalizer: {}",
                         ctx.target_name(), ready.message);
            co_return ReconcileResult{std::chrono::seconds{2}};
        }
        if (auto label = selector_label(*ctx.target, options_.selector_labels)) {
            ctx.label = *label;
            // The apex Service goes back to selecting the target's pods, unless it is ours (then
            // it is garbage-collected with the canary).
            ObjectPtr apex =
                deps_.store.get(types::services(), ctx.ns(), ctx.canary.spec.service.name);
            if (apex != nullptr && !owned_by(*apex, ctx.canary.metadata.uid)) {
                Json selector = Json{{label->key, label->value}};
                const std::string applied = string_at(
                    *apex, {"metadata", "annotations", "kubectl.kubernetes.io/last-applied-configuration"});
                if (!applied.empty()) {
                    Json original = Json::parse(applied, nullptr, false);
                    if (const Json* s = find_path(original, {"spec", "selector"});
                        s != nullptr && s->is_object()) {
                        selector = *s;
                    }
                }
                if (const Json* live = find_path(*apex, {"spec", "selector"});
                    live == nullptr || *live != selector) {
                    Json update = *apex;
                    update["spec"]["selector"] = selector;
                    auto written = co_await deps_.client.update(types::services(), ctx.ns(), update);
                    if (!written) {
                        co_return written.error();
                    }
                }
            }
            auto router = deps_.routers.find(ctx.canary.spec.provider.empty()
                                                 ? options_.mesh_provider
                                                 : ctx.canary.spec.provider);
            if (router) {
                const meshes::RouteContext route = ctx.route_context();
                if (auto done = co_await (*router)->finalize(route); !done) {
                    co_return done.error();
                }
            }
        }
    }
    const analysis::RecordEvent terminated{false, "Terminated canary " + canary_id,
                                           std::string(kTerminating)};
    co_await emit(ctx, terminated);
    Json body = *ctx.raw;
    auto& finalizers = body["metadata"]["finalizers"];
    Json kept = Json::array();
    for (const Json& f : finalizers) {
        if (f != kFinalizer) {
            kept.push_back(f);
        }
    }
    finalizers = std::move(kept);
    auto written = co_await deps_.client.update(types::canaries(), ctx.ns(), std::move(body));
    if (!written && written.error().kind != ErrorKind::kNotFound) {
        co_return written.error();
    }
    forget(ctx.key);
    co_return ReconcileResult{};
}

}  // namespace serin::canary
