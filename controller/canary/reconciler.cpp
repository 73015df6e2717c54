#include "controller/canary/reconciler.hpp"

#include "analysis/decide.hpp"
#include "analysis/pacing.hpp"
#include "analysis/validate.hpp"
#include "controller/canary/answers.hpp"
#include "controller/canary/caches.hpp"
#include "controller/canary/requests.hpp"
#include "crds/api/json_access.hpp"
#include "meshes/common/session_affinity.hpp"
#include "platform/core/log.hpp"
#include "platform/core/text.hpp"
#include "platform/core/time_format.hpp"

#include <algorithm>
#include <set>
#include <string>
#include <variant>

namespace serin::canary {

namespace asio = boost::asio;
using analysis::Decision;
using analysis::Observations;
using kube::Json;
using kube::ObjectPtr;
namespace types = kube::types;

namespace {

constexpr std::string_view kTerminating = "Terminating";

using analysis::interval_of;

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

/// Whether a decision that moves to `next` from `before` starts a new release.
bool starts_release(const std::string& before, const std::string& next) {
    return next == "Progressing" &&
           (before.empty() || before == "Initialized" || before == "Succeeded" ||
            before == "Failed");
}

OwnedObjectsOptions owned_options(const ReconcilerOptions& options) {
    OwnedObjectsOptions owned;
    owned.selector_labels = options.selector_labels;
    owned.include_label_prefixes = options.include_label_prefixes;
    owned.config_tracking = options.config_tracking;
    owned.hpa_type = options.hpa_type;
    return owned;
}

}  // namespace

Reconciler::Reconciler(ReconcilerDeps deps, ReconcilerOptions options)
    : deps_(deps),
      options_(std::move(options)),
      owned_(deps.kube, deps.secrets, owned_options(options_)),
      reporter_(ReporterDeps{deps.executor, deps.clock, deps.recorder, deps.webhooks, deps.calls,
                             deps.alerts, deps.telemetry},
                options_.event_webhook) {}

void Reconciler::forget(const std::string& key) {
    memory_.erase(key);
    reporter_.forget(key);
    deps_.calls.forget(key);
    if (deps_.history != nullptr) {
        deps_.history->forget(key);
    }
}

ReconcileResult Reconciler::waiting() const {
    // Woken when the answer is ready; the re-queue is only a safety net (sooner when the
    // question could not even be started because too many are being worked out).
    return ReconcileResult{deps_.calls.saturated() ? Duration(std::chrono::seconds{1})
                                                   : Duration(std::chrono::seconds{30})};
}

asio::awaitable<Result<ReconcileResult>> Reconciler::reconcile(std::string key) {
    const SteadyTime started = deps_.clock.steady_now();
    Result<ReconcileResult> result = co_await reconcile_key(std::move(key));
    reporter_.reconciled(deps_.clock.steady_now() - started, result.has_value());
    co_return result;
}

asio::awaitable<Result<ReconcileResult>> Reconciler::reconcile_key(std::string key) {
    const auto slash = key.find('/');
    if (slash == std::string::npos) {
        co_return ReconcileResult{};
    }
    ObjectPtr raw = deps_.kube.get(types::canaries(), key.substr(0, slash), key.substr(slash + 1));
    if (raw == nullptr) {
        forget(key);
        co_return co_await refuse_orphan_requests(key.substr(0, slash), key.substr(slash + 1));
    }
    co_return co_await reconcile_canary(std::move(key), std::move(raw));
}

asio::awaitable<Result<ReconcileResult>> Reconciler::reconcile_canary(std::string key,
                                                                      ObjectPtr raw) {
    auto decoded = api::decode_canary(*raw);
    if (!decoded) {
        co_return co_await reject(raw, decoded.error().message);
    }
    CanaryContext ctx;
    ctx.key = std::move(key);
    ctx.raw = std::move(raw);
    ctx.canary = std::move(*decoded);
    ctx.owner = owner_reference(ctx.canary);

    if (ctx.canary.metadata.deletion_timestamp) {
        if (has_finalizer(ctx.canary)) {
            co_return co_await finalize(ctx);
        }
        co_return ReconcileResult{};
    }
    if (auto synced = co_await sync_finalizer(ctx); !synced) {
        co_return synced.error();
    }
    if (std::optional<std::string> refused = admit(ctx)) {
        co_return co_await reject(ctx.raw, std::move(*refused));
    }
    if (auto fetched = co_await owned_.fetch_secrets(ctx); !fetched) {
        co_return fetched.error();
    }
    auto configs = owned_.tracked_configs(ctx);
    if (!configs) {
        // Not a spec error but the same for the user: the template references something that
        // does not exist. The config's creation is not watched for this canary, so look again.
        const std::optional<Duration> look_again = std::chrono::seconds{10};
        co_return co_await reject(ctx.raw, configs.error().message, look_again);
    }
    ctx.configs = std::move(*configs);
    if (auto owned = co_await ensure_owned(ctx); !owned) {
        // A spec the router cannot serve, or a routing object the API server refuses (422),
        // is the user's to fix: a condition and an Event, not a retry loop.
        if (owned.error().kind == ErrorKind::kInvalid) {
            co_return co_await reject(ctx.raw, owned.error().message);
        }
        co_return owned.error();
    }

    // ---- decide ----
    Observations obs = co_await observe(ctx);
    const SteadyTime steady_now = deps_.clock.steady_now();
    const SystemTime now = deps_.clock.system_now();
    obs.last_step = memory_[ctx.key].last_step;
    obs.requests = co_await pending_requests(ctx);
    analysis::Settings settings{ctx.provider};
    settings.mirror_blue_green = ctx.router->can_mirror(true);
    settings.mirror_weighted = ctx.router->can_mirror(false);
    BackgroundAnswers answers(deps_.calls, deps_.webhooks, deps_.metrics, ctx,
                              question_about(ctx.canary));
    std::optional<Decision> decision =
        analysis::decide(ctx.canary, obs, settings, now, answers);
    if (!decision) {
        co_return waiting();
    }
    if (decision->needs_input()) {
        co_return fail(ErrorKind::kInternal, "advance kept asking for input");
    }
    if (obs.metrics) {
        reporter_.metrics_checked(ctx.key, ctx.canary.status.canary_weight, *obs.metrics);
    }
    co_return co_await act(ctx, obs, *decision, Instant{steady_now, now});
}

std::optional<std::string> Reconciler::admit(CanaryContext& ctx) const {
    const api::CanarySpec& spec = ctx.canary.spec;
    ctx.provider = spec.provider.empty() ? options_.mesh_provider : spec.provider;
    if (auto valid = analysis::validate(spec, ctx.provider); !valid) {
        return valid.error().message;
    }
    // What this build lacks is refused before anything is written, so a release never starts
    // (or, already running, pauses where it stands) instead of failing its checks for it.
    if (auto scaler = analysis::validate_autoscaler(spec); !scaler) {
        return scaler.error().message;
    }
    if (auto providers = metric_providers_supported(ctx); !providers) {
        return providers.error().message;
    }
    if (options_.no_cross_namespace_refs) {
        if (auto own = analysis::validate_namespaces(ctx.canary); !own) {
            return own.error().message;
        }
    }
    auto router = deps_.routers.find(ctx.provider);
    if (!router) {
        return router.error().message;
    }
    ctx.router = *router;
    auto kind = kinds_.find(spec.target_ref.kind, spec.target_ref.api_version);
    if (!kind) {
        return kind.error().message;
    }
    ctx.kind = *kind;
    ctx.target = deps_.kube.get(ctx.kind->type(), ctx.ns(), ctx.target_name());
    if (ctx.target == nullptr) {
        return "spec.targetRef.name: " + spec.target_ref.kind + " \"" + ctx.target_name() +
               "\" not found in namespace " + ctx.ns();
    }
    if (auto other = competing_canary(ctx)) {
        return "spec.targetRef: " + spec.target_ref.kind + " \"" + ctx.target_name() +
               "\" is already released by canary \"" + *other + "\"";
    }
    if (!ctx.kind->has_primary_workload()) {
        return std::nullopt;  // no pods of its own to select: no selector label
    }
    auto label = selector_label(*ctx.target, options_.selector_labels);
    if (!label) {
        return label.error().message;
    }
    ctx.label = std::move(*label);
    return std::nullopt;
}

Result<void> Reconciler::metric_providers_supported(const CanaryContext& ctx) const {
    const std::optional<std::vector<std::string>> supported = deps_.metrics.provider_types();
    if (!supported) {
        return Result<void>{};
    }
    const auto provider_type = [&](const api::TemplateRef& ref) -> std::optional<std::string> {
        ObjectPtr object = deps_.kube.get(types::metric_templates(),
                                          ref.ns.empty() ? ctx.ns() : ref.ns, ref.name);
        if (object == nullptr) {
            return std::nullopt;
        }
        const Json* type = find_path(*object, {"spec", "provider", "type"});
        return type != nullptr && type->is_string() ? type->get<std::string>() : std::string();
    };
    return analysis::validate_metric_providers(ctx.canary.spec, provider_type, *supported);
}

asio::awaitable<Result<void>> Reconciler::ensure_owned(CanaryContext& ctx) {
    if (!ctx.kind->has_primary_workload()) {
        // The target is its own primary (Knative): initialized in place, then the router.
        if (auto ok = co_await owned_.initialize_in_place(ctx); !ok) {
            co_return ok.error();
        }
        co_return co_await ctx.router->reconcile(ctx.route_context());
    }
    if (auto ok = co_await owned_.ensure_services(ctx); !ok) {
        co_return ok.error();
    }
    const bool routes_first = ctx.router->routes_before_workload();
    if (routes_first) {
        if (auto routed = co_await ctx.router->reconcile(ctx.route_context()); !routed) {
            co_return routed.error();
        }
    }
    auto primary = co_await owned_.ensure_primary(ctx);
    if (!primary) {
        co_return primary.error();
    }
    ctx.primary = std::move(*primary);
    if (auto ok = co_await owned_.ensure_primary_hpa(ctx, false); !ok) {
        co_return ok.error();
    }
    if (routes_first) {
        co_return Result<void>{};
    }
    co_return co_await ctx.router->reconcile(ctx.route_context());
}

asio::awaitable<Observations> Reconciler::observe(const CanaryContext& ctx) {
    Observations obs;
    obs.revision = ctx.kind->revision(*ctx.target);
    obs.configs = ctx.configs;
    if (analysis::foreign_revision(ctx.canary.status.last_applied_spec) && ctx.primary != nullptr) {
        // Taken over from another controller: what the primary runs decides (§16.7). Its config
        // references may name the configs tracked then or now.
        std::set<std::string> config_keys;
        for (const auto* configs : {&ctx.configs, &ctx.canary.status.tracked_configs}) {
            if (*configs) {
                for (const auto& entry : **configs) {
                    config_keys.insert(entry.first);
                }
            }
        }
        obs.primary_revision =
            primary_revision(*ctx.primary, ctx.label, ctx.target_name(), config_keys);
    }
    const auto& analysis = ctx.canary.spec.analysis;
    const SystemTime now = deps_.clock.system_now();
    if (!ctx.kind->has_primary_workload()) {
        obs.primary =
            revision_readiness(ctx, ctx.kind->primary_revision_name(*ctx.target), "primary");
        obs.canary = revision_readiness(ctx, ctx.kind->canary_revision_name(*ctx.target), "canary");
    } else {
        const std::string primary_prefix = ctx.primary_name() + "." + ctx.ns() + " not ready: ";
        obs.primary = ctx.primary == nullptr
                          ? analysis::Readiness{false, true, primary_prefix + "not found"}
                          : ctx.kind->readiness(ctx.canary, *ctx.primary,
                                                analysis ? analysis->primary_ready_threshold : 100,
                                                now, primary_prefix);
        obs.canary = ctx.kind->readiness(ctx.canary, *ctx.target,
                                         analysis ? analysis->canary_ready_threshold : 100, now,
                                         "canary " + std::string(ctx.kind->noun()) + " " +
                                             ctx.target_name() + "." + ctx.ns() + " not ready: ");
    }
    // Whether it has a scale-up to write does not depend on the primary or an autoscaler.
    obs.canary_scaled_down = ctx.kind->scale_up_patch(*ctx.target, nullptr, nullptr).has_value();
    if (auto routes = co_await ctx.router->get_routes(ctx.route_context())) {
        obs.routes = *routes;
    } else {
        obs.routes_error = routes.error().message;
    }
    co_return obs;
}

analysis::Readiness Reconciler::revision_readiness(const CanaryContext& ctx,
                                                   const std::string& revision,
                                                   std::string_view role) const {
    const std::string prefix =
        std::string(role) + " revision " +
        (revision.empty() ? std::string("of ") + ctx.target_name() : revision) + "." + ctx.ns() +
        " not ready: ";
    if (revision.empty()) {
        return analysis::Readiness{false, true, prefix + "none yet"};
    }
    ObjectPtr object = deps_.kube.get(*ctx.kind->revision_type(), ctx.ns(), revision);
    if (object == nullptr) {
        return analysis::Readiness{false, true, prefix + "not found"};
    }
    return ctx.kind->readiness(ctx.canary, *object, 100, deps_.clock.system_now(), prefix);
}

asio::awaitable<Result<ReconcileResult>> Reconciler::act(CanaryContext& ctx,
                                                         const Observations& obs,
                                                         Decision& decision, Instant decided) {
    const SteadyTime started = decided.steady;
    // The status before this decision, for the summary of an alert that ends the release.
    const api::CanaryStatus before = ctx.canary.status;
    if (starts_release(before.phase, decision.status.phase)) {
        reporter_.release_started(ctx.key);
    }
    const std::string now_text = format_time(deps_.clock.system_now());
    set_accepted(decision.status.conditions, true, "Valid",
                 "The spec is valid and its target exists.", now_text);

    // Routing and workloads first, then the status, then what only reports (a rollback writes
    // its status first: see Decision::status_first).
    if (decision.status_first) {
        if (auto written = co_await write_decided_status(ctx, decision.status, now_text);
            !written) {
            co_return written.error();
        }
    }
    for (const analysis::Action& action : decision.actions) {
        if (auto done = co_await perform(ctx, decision.status, action); !done) {
            if (done.error().kind == ErrorKind::kInvalid &&
                std::holds_alternative<analysis::SetRoutes>(action)) {
                co_return co_await reject(ctx.raw, done.error().message);
            }
            co_return done.error();
        }
    }
    if (!decision.status_first) {
        if (auto written = co_await write_decided_status(ctx, decision.status, now_text);
            !written) {
            co_return written.error();
        }
    }
    // A request handled by this decision is on record in the canary's status: now its own.
    if (decision.request) {
        co_await finish_request(ctx, *decision.request, decision.status);
    }
    // The step is on record: from here on nothing may make it run again early, whatever fails
    // below (an Event, an alert), and the answers it used are spent.
    Memory& memory = memory_[ctx.key];
    if (decision.consumed_tick) {
        memory.last_step = decided.system;  // also in the status when it was written
    }
    deps_.calls.forget(ctx.key);
    // Alerts are handed to the notifier (which posts them in the background) before anything
    // else is awaited: a controller that loses its lease meanwhile would take the alert with it
    // (chaos campaign, seed 1: "Failed checks threshold reached" lost behind the rollback's
    // Event, when the history write was still awaited here).
    for (const analysis::Action& action : decision.actions) {
        if (const auto* alert = std::get_if<analysis::Alert>(&action)) {
            co_await reporter_.alert(ctx, *alert, before);
        }
    }
    if (deps_.history != nullptr) {  // best effort, in the background, after the status
        deps_.history->record(ctx.canary, ctx.target, obs, decision);
    }
    reporter_.telemetry(ctx, obs, decision, before, started);
    for (const analysis::Action& action : decision.actions) {
        if (const auto* event = std::get_if<analysis::RecordEvent>(&action)) {
            reporter_.event(ctx, *event);
        } else if (const auto* hooks = std::get_if<analysis::RunHooks>(&action)) {
            reporter_.post_rollout(ctx, hooks->phase);
        }
    }
    memory.reported_invalid.clear();
    ReconcileResult result;
    if (decision.status.paused) {
        // Paused: no tick is due until a resume (whose request wakes the canary); the re-queue
        // only looks again.
        result.requeue_after = interval_of(ctx.canary);
    } else if (decision.active) {
        const Duration wait = analysis::until_next_step(
            analysis::last_paced_step(decision.status, memory.last_step), decided.system,
            interval_of(ctx.canary));
        result.requeue_after = std::max<Duration>(wait, std::chrono::milliseconds{50});
    }
    co_return result;
}

asio::awaitable<Result<void>> Reconciler::perform(CanaryContext& ctx, api::CanaryStatus& status,
                                                  const analysis::Action& action) {
    if (const auto* routes = std::get_if<analysis::SetRoutes>(&action)) {
        meshes::RouteContext next = ctx.route_context();
        const auto& analysis = ctx.canary.spec.analysis;
        if (ctx.router->supports_session_affinity() && analysis && analysis->session_affinity) {
            // The router routes by the status' cookies; the status write after the actions
            // keeps them.
            meshes::update_session_cookies(status, *analysis->session_affinity, routes->routes,
                                           [this] { return meshes::random_cookie_value(random_); });
            next.canary.status = status;
        }
        co_return co_await ctx.router->set_routes(next, routes->routes);
    }
    if (std::holds_alternative<analysis::ScaleUp>(action)) {
        co_return co_await owned_.scale(ctx, true);
    }
    if (std::holds_alternative<analysis::ScaleToZero>(action)) {
        co_return co_await owned_.scale(ctx, false);
    }
    if (std::holds_alternative<analysis::Promote>(action)) {
        co_return co_await owned_.promote(ctx);
    }
    co_return Result<void>{};  // reports: after the status
}

std::optional<std::string> Reconciler::competing_canary(const CanaryContext& ctx) const {
    const std::string created = string_at(*ctx.raw, {"metadata", "creationTimestamp"});
    std::optional<std::pair<std::string, std::string>> first;
    // The canaries of this namespace with the same target, from the index (not a scan of the
    // namespace's canaries, which would decode them all on every reconcile).
    const std::string target =
        Caches::target_key(ctx.ns(), ctx.canary.spec.target_ref.kind, ctx.target_name());
    for (const ObjectPtr& other :
         deps_.kube.by_index(types::canaries(), Caches::kCanariesByTarget, target)) {
        const std::string name = kube::object_name(*other);
        if (name == ctx.canary.metadata.name ||
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

// ---- status, finalizer, bad input ---------------------------------------------------------------

asio::awaitable<Result<void>> Reconciler::write_status(CanaryContext& ctx,
                                                       const api::CanaryStatus& status) {
    Json body = *ctx.raw;
    body["status"] = api::encode_status(status);
    kube::WriteOptions options;
    options.subresource = "status";
    auto written =
        co_await deps_.kube.update(types::canaries(), ctx.ns(), std::move(body), options);
    if (!written) {
        co_return written.error();
    }
    ctx.raw = std::move(*written);
    co_return Result<void>{};
}

asio::awaitable<Result<void>> Reconciler::write_decided_status(CanaryContext& ctx,
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

asio::awaitable<Result<void>> Reconciler::sync_finalizer(CanaryContext& ctx) {
    // A router whose objects garbage collection cannot remove (Kuma's cluster-scoped
    // TrafficRoute) needs the finalizer whatever revertOnDeletion says.
    auto router = deps_.routers.find(ctx.canary.spec.provider.empty() ? options_.mesh_provider
                                                                      : ctx.canary.spec.provider);
    const bool want =
        ctx.canary.spec.revert_on_deletion || (router && (*router)->needs_finalizer());
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
    auto written = co_await deps_.kube.update(types::canaries(), ctx.ns(), std::move(body));
    if (!written) {
        co_return written.error();
    }
    ctx.raw = std::move(*written);
    ctx.canary.metadata.finalizers = std::move(finalizers);
    co_return Result<void>{};
}

asio::awaitable<Result<ReconcileResult>> Reconciler::reject(ObjectPtr raw, std::string message,
                                                          std::optional<Duration> requeue_after) {
    const std::string ns = kube::object_namespace(*raw);
    const std::string name = kube::object_name(*raw);
    auto reported = co_await report_invalid(std::move(raw), message);
    if (!reported) {
        co_return reported.error();
    }
    co_await refuse_requests_of_rejected(ns, name, message);
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
        auto written = co_await deps_.kube.update(types::canaries(), kube::object_namespace(*raw),
                                                  std::move(body), options);
        if (!written) {
            co_return written.error();
        }
    }
    if (changed || memory.reported_invalid != message) {
        reporter_.warning(raw, key, message);
        memory.reported_invalid = message;
    }
    co_return Result<void>{};
}

// ---- deletion ------------------------------------------------------------------------------------

asio::awaitable<Result<ReconcileResult>> Reconciler::finalize(CanaryContext& ctx) {
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
        const analysis::RecordEvent terminating{false, "Terminating canary " + ctx.id(),
                                                std::string(kTerminating)};
        reporter_.event(ctx, terminating);
        ctx.canary.status = std::move(status);
    }
    auto kind =
        kinds_.find(ctx.canary.spec.target_ref.kind, ctx.canary.spec.target_ref.api_version);
    ctx.kind = kind ? *kind : nullptr;
    ctx.target = ctx.kind != nullptr ? deps_.kube.get(ctx.kind->type(), ctx.ns(), ctx.target_name())
                                     : nullptr;
    auto router = deps_.routers.find(ctx.canary.spec.provider.empty() ? options_.mesh_provider
                                                                      : ctx.canary.spec.provider);
    bool router_finalized = false;
    if (ctx.target != nullptr && ctx.canary.spec.revert_on_deletion) {
        // Give the target back its replicas so it serves again once the primary is gone.
        if (auto reverted = co_await owned_.revert_target(ctx); !reverted) {
            co_return reverted.error();
        }
        const analysis::Readiness ready =
            ctx.kind->readiness(ctx.canary, *ctx.target, 100, deps_.clock.system_now(), "");
        if (!ready.ready && ready.retriable) {
            CanaryLog(ctx.key).info("waiting for {} before removing the finalizer: {}",
                                    ctx.target_name(), ready.message);
            co_return ReconcileResult{std::chrono::seconds{2}};
        }
        auto label = ctx.kind->has_primary_workload()
                         ? selector_label(*ctx.target, options_.selector_labels)
                         : Result<SelectorLabel>(SelectorLabel{});
        if (label) {
            ctx.label = *label;
            if (ctx.kind->has_primary_workload()) {
                if (auto reverted = co_await owned_.revert_apex(ctx, *label); !reverted) {
                    co_return reverted.error();
                }
            }
            if (router) {
                if (auto done = co_await (*router)->finalize(ctx.route_context()); !done) {
                    co_return done.error();
                }
                router_finalized = true;
            }
        }
    }
    if (router && !router_finalized && (*router)->needs_finalizer()) {
        // Without revertOnDeletion (or its target gone): only what garbage collection cannot
        // remove (a cluster-scoped TrafficRoute).
        if (auto done = co_await (*router)->release(ctx.route_context()); !done) {
            co_return done.error();
        }
    }
    const analysis::RecordEvent terminated{false, "Terminated canary " + ctx.id(),
                                           std::string(kTerminating)};
    reporter_.event(ctx, terminated);
    Json body = *ctx.raw;
    auto& finalizers = body["metadata"]["finalizers"];
    Json kept = Json::array();
    for (const Json& f : finalizers) {
        if (f != kFinalizer) {
            kept.push_back(f);
        }
    }
    finalizers = std::move(kept);
    auto written = co_await deps_.kube.update(types::canaries(), ctx.ns(), std::move(body));
    if (!written && written.error().kind != ErrorKind::kNotFound) {
        co_return written.error();
    }
    forget(ctx.key);
    co_return ReconcileResult{};
}

}  // namespace serin::canary
