#include "controller/canary/owned_objects.hpp"

#include "controller/canary/target_kind.hpp"
#include "crds/api/json_access.hpp"
#include "platform/core/json.hpp"

#include <map>

namespace serin::canary {

namespace asio = boost::asio;
using api::find_path;
using api::string_at;
using kube::Json;
using kube::ObjectPtr;
namespace types = kube::types;

asio::awaitable<Result<void>> OwnedObjects::fetch_secrets(const CanaryContext& ctx) {
    std::map<std::string, std::vector<std::string>> wanted;  // namespace -> names
    if (options_.config_tracking && ctx.kind->has_primary_workload()) {
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
        if (ObjectPtr object = kube_.get(type, ns, name)) {
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
                            metric.template_ref->name, {"spec", "provider", "secretRef", "name"});
            }
        }
        for (const api::CanaryAlert& alert : analysis->alerts) {
            credentials(types::alert_providers(),
                        alert.provider_ref.ns.empty() ? ctx.ns() : alert.provider_ref.ns,
                        alert.provider_ref.name, {"spec", "secretRef", "name"});
        }
    }
    for (auto& [ns, names] : wanted) {
        if (auto done = co_await secrets_.fetch(ns, std::move(names)); !done) {
            co_return done.error();
        }
    }
    co_return Result<void>{};
}

Result<std::optional<api::StringMap>> OwnedObjects::tracked_configs(const CanaryContext& ctx) const {
    if (!options_.config_tracking || !ctx.kind->has_primary_workload()) {
        return std::optional<api::StringMap>{};  // Knative: no config tracking (§10)
    }
    const Json* pod_spec = find_path(*ctx.target, {"spec", "template", "spec"});
    if (pod_spec == nullptr) {
        return std::optional<api::StringMap>{};
    }
    api::StringMap out;
    for (const ConfigRef& ref : config_refs(*pod_spec)) {
        const bool map = ref.kind == ConfigRef::Kind::kConfigMap;
        ObjectPtr config =
            kube_.get(map ? types::config_maps() : types::secrets(), ctx.ns(), ref.name);
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

PrimaryOptions OwnedObjects::primary_options(const CanaryContext& ctx) const {
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

asio::awaitable<Result<void>> OwnedObjects::copy_configs(const CanaryContext& ctx) {
    if (!ctx.configs) {
        co_return Result<void>{};
    }
    for (const auto& [key, checksum] : *ctx.configs) {
        const auto slash = key.find('/');
        const bool map = key.substr(0, slash) == "configmap";
        const kube::ResourceType& type = map ? types::config_maps() : types::secrets();
        const std::string name = key.substr(slash + 1);
        ObjectPtr source = kube_.get(type, ctx.ns(), name);
        if (source == nullptr) {
            continue;
        }
        Json desired = make_primary_config(*source, ctx.owner, options_.include_label_prefixes);
        auto update_for = [&desired](const Json& live) -> std::optional<Json> {
            const auto field = [](const Json& o, const char* k) {
                auto it = o.find(k);
                return it == o.end() ? Json() : *it;
            };
            if (field(live, "data") == field(desired, "data") &&
                field(live, "binaryData") == field(desired, "binaryData")) {
                return std::nullopt;
            }
            Json update = live;
            for (const char* k : {"data", "binaryData"}) {
                if (desired.contains(k)) {
                    update[k] = desired[k];
                } else {
                    update.erase(k);
                }
            }
            return update;
        };
        if (auto written = co_await kube_.ensure(type, ctx.ns(), desired, update_for); !written) {
            co_return written.error();
        }
    }
    co_return Result<void>{};
}

asio::awaitable<Result<void>> OwnedObjects::ensure_services(const CanaryContext& ctx) {
    ServiceSet set = make_services(ctx.canary, *ctx.target, ctx.label, ctx.owner);
    const std::string& phase = ctx.canary.status.phase;
    // Once the canary is initialized, a router that switches the apex selector owns it.
    const bool keep_apex = ctx.router->owns_apex_selector() && !phase.empty() &&
                           phase != "Initializing" && phase != "Initialized";
    for (auto [desired, keep] : {std::pair<Json*, bool>{&set.apex, keep_apex},
                                 std::pair<Json*, bool>{&set.primary, false},
                                 std::pair<Json*, bool>{&set.canary, false}}) {
        auto update_for = [&, desired = desired, keep = keep](const Json& live) {
            return service_update(live, *desired, ctx.canary, keep);
        };
        if (auto written = co_await kube_.ensure(types::services(), ctx.ns(), *desired, update_for);
            !written) {
            co_return written.error();
        }
    }
    co_return Result<void>{};
}

asio::awaitable<Result<ObjectPtr>> OwnedObjects::ensure_primary(const CanaryContext& ctx) {
    const kube::ResourceType& type = ctx.kind->type();
    if (ObjectPtr live = kube_.get(type, ctx.ns(), ctx.primary_name())) {
        co_return live;
    }
    if (auto copied = co_await copy_configs(ctx); !copied) {
        co_return copied.error();
    }
    // AlreadyExists is an error here too: the cache has not seen the primary yet, so retry.
    co_return co_await kube_.create(type, ctx.ns(), ctx.kind->make_primary(*ctx.target,
                                                                          primary_options(ctx)));
}

asio::awaitable<Result<void>> OwnedObjects::ensure_primary_hpa(const CanaryContext& ctx,
                                                               bool update) {
    const auto& ref = ctx.canary.spec.autoscaler_ref;
    if (!ref) {
        co_return Result<void>{};
    }
    const kube::ResourceType& type = options_.hpa_type;
    ObjectPtr hpa = kube_.get(type, ctx.ns(), ref->name);
    if (hpa == nullptr) {
        co_return fail(ErrorKind::kNotFound, "spec.autoscalerRef: HorizontalPodAutoscaler " +
                                                 ref->name + "." + ctx.ns() + " not found");
    }
    Json desired = make_primary_hpa(*hpa, ctx.canary, ctx.owner);
    auto update_for = [&desired, update](const Json& live) {
        return update ? hpa_update(live, desired) : std::nullopt;
    };
    if (auto written = co_await kube_.ensure(type, ctx.ns(), desired, update_for); !written) {
        co_return written.error();
    }
    co_return Result<void>{};
}

asio::awaitable<Result<void>> OwnedObjects::patch_target(const CanaryContext& ctx,
                                                         std::optional<std::string> patch) {
    if (!patch) {
        co_return Result<void>{};
    }
    auto written = co_await kube_.patch(ctx.kind->type(), ctx.ns(), ctx.target_name(),
                                        kube::PatchType::kMerge, *patch);
    if (!written) {
        co_return written.error();
    }
    co_return Result<void>{};
}

asio::awaitable<Result<void>> OwnedObjects::initialize_in_place(const CanaryContext& ctx) {
    const std::string& phase = ctx.canary.status.phase;
    if (!phase.empty() && phase != "Initializing") {
        co_return Result<void>{};
    }
    co_return co_await patch_target(ctx, ctx.kind->initialize_patch(*ctx.target));
}

asio::awaitable<Result<void>> OwnedObjects::promote(const CanaryContext& ctx) {
    if (!ctx.kind->has_primary_workload()) {
        ObjectPtr target = kube_.get(ctx.kind->type(), ctx.ns(), ctx.target_name());
        co_return co_await patch_target(ctx,
                                        ctx.kind->promote_patch(target ? *target : *ctx.target));
    }
    if (auto copied = co_await copy_configs(ctx); !copied) {
        co_return copied.error();
    }
    const kube::ResourceType& type = ctx.kind->type();
    ObjectPtr live = kube_.get(type, ctx.ns(), ctx.primary_name());
    if (live == nullptr) {
        co_return fail(ErrorKind::kNotFound, ctx.primary_name() + "." + ctx.ns() + " not found");
    }
    const PrimaryOptions options = primary_options(ctx);
    const bool keep_replicas = ctx.canary.spec.autoscaler_ref.has_value();
    if (!ctx.kind->primary_matches(*live, *ctx.target, options, keep_replicas)) {
        auto written = co_await kube_.update(
            type, ctx.ns(), ctx.kind->promoted_primary(*live, *ctx.target, options, keep_replicas));
        if (!written) {
            co_return written.error();
        }
    }
    co_return co_await ensure_primary_hpa(ctx, true);
}

asio::awaitable<Result<void>> OwnedObjects::scale(const CanaryContext& ctx, bool up) {
    const kube::ResourceType& type = ctx.kind->type();
    ObjectPtr target = kube_.get(type, ctx.ns(), ctx.target_name());
    if (target == nullptr) {
        target = ctx.target;
    }
    ObjectPtr hpa;
    if (ctx.canary.spec.autoscaler_ref) {
        hpa = kube_.get(options_.hpa_type, ctx.ns(), ctx.canary.spec.autoscaler_ref->name);
    }
    auto patch = up ? ctx.kind->scale_up_patch(*target, ctx.primary.get(), hpa.get())
                    : ctx.kind->scale_to_zero_patch(*target);
    if (!patch) {
        co_return Result<void>{};
    }
    auto written =
        co_await kube_.patch(type, ctx.ns(), ctx.target_name(), kube::PatchType::kMerge, *patch);
    if (!written) {
        co_return written.error();
    }
    co_return Result<void>{};
}

asio::awaitable<Result<void>> OwnedObjects::revert_target(CanaryContext& ctx) {
    ctx.primary = kube_.get(ctx.kind->type(), ctx.ns(), ctx.primary_name());
    std::optional<std::string> patch = ctx.kind->revert_patch(*ctx.target, ctx.primary.get());
    if (!patch) {
        co_return Result<void>{};
    }
    auto written = co_await kube_.patch(ctx.kind->type(), ctx.ns(), ctx.target_name(),
                                        kube::PatchType::kMerge, *patch);
    if (!written) {
        co_return written.error();
    }
    ctx.target = std::move(*written);
    co_return Result<void>{};
}

asio::awaitable<Result<void>> OwnedObjects::revert_apex(const CanaryContext& ctx,
                                                        const SelectorLabel& label) {
    ObjectPtr apex = kube_.get(types::services(), ctx.ns(), ctx.canary.spec.service.name);
    if (apex == nullptr || owned_by(*apex, ctx.canary.metadata.uid)) {
        co_return Result<void>{};
    }
    // The selector the user applied, else the target's label.
    Json selector = Json{{label.key, label.value}};
    const std::string applied = string_at(
        *apex, {"metadata", "annotations", "kubectl.kubernetes.io/last-applied-configuration"});
    if (!applied.empty()) {
        // Anyone who may edit the Service wrote this: parsed with the nesting limit.
        if (auto original = parse_json(applied, kMaxRemoteJsonDepth)) {
            if (const Json* s = find_path(*original, {"spec", "selector"});
                s != nullptr && s->is_object()) {
                selector = *s;
            }
        }
    }
    if (const Json* live = find_path(*apex, {"spec", "selector"});
        live != nullptr && *live == selector) {
        co_return Result<void>{};
    }
    Json update = *apex;
    update["spec"]["selector"] = selector;
    if (auto written = co_await kube_.update(types::services(), ctx.ns(), update); !written) {
        co_return written.error();
    }
    co_return Result<void>{};
}

}  // namespace serin::canary
