#include "meshes/common/route_object.hpp"

#include "crds/api/json_access.hpp"
#include "platform/core/json.hpp"

namespace serin::meshes {

int clamp_weight(long double value) {
    if (!(value > 0)) {  // also NaN
        return 0;
    }
    if (value >= kMaxReadWeight) {
        return kMaxReadWeight;
    }
    return static_cast<int>(value);
}

std::optional<int> read_weight(const nlohmann::json& value) {
    if (value.is_number_unsigned()) {
        return clamp_weight(static_cast<long double>(value.get<std::uint64_t>()));
    }
    if (value.is_number_integer()) {
        return clamp_weight(static_cast<long double>(value.get<std::int64_t>()));
    }
    if (value.is_number_float()) {
        return clamp_weight(static_cast<long double>(value.get<double>()));
    }
    return std::nullopt;
}

namespace asio = boost::asio;
using Json = nlohmann::json;

Json route_metadata(const RouteContext& context, std::string_view name,
                    const std::optional<api::CustomMetadata>& extra) {
    Json labels = Json::object();
    Json annotations = Json::object();
    if (extra) {
        for (const auto& [key, value] : extra->labels) {
            labels[key] = value;
        }
        for (const auto& [key, value] : extra->annotations) {
            annotations[key] = value;
        }
    }
    annotations[std::string(kFluxReconcileKey)] = "disabled";
    annotations[std::string(kHelmDriftKey)] = "disabled";
    Json metadata{{"name", std::string(name)},
                  {"namespace", context.ns()},
                  {"annotations", std::move(annotations)},
                  {"ownerReferences", Json::array({context.owner_reference})}};
    if (!labels.empty()) {
        metadata["labels"] = std::move(labels);
    }
    return metadata;
}

Json route_object(const kube::ResourceType& type, Json metadata, Json spec) {
    return Json{{"apiVersion", type.api_version()},
                {"kind", type.kind},
                {"metadata", std::move(metadata)},
                {"spec", std::move(spec)}};
}

namespace {

/// Sets the string members of desired[key] on live[key]; whether anything changed.
bool merge_string_map(Json& live_metadata, const Json& desired_metadata, const char* key) {
    const Json* want = api::member(desired_metadata, key);
    if (want == nullptr || !want->is_object() || want->empty()) {
        return false;
    }
    Json& have = live_metadata[key];
    if (!have.is_object()) {
        have = Json::object();
    }
    bool changed = false;
    for (auto it = want->begin(); it != want->end(); ++it) {
        auto found = have.find(it.key());
        if (found == have.end() || *found != *it) {
            have[it.key()] = *it;
            changed = true;
        }
    }
    return changed;
}


}  // namespace

bool owned_by_canary(const Json& live, const RouteContext& context) {
    const Json* refs = api::find_path(live, {"metadata", "ownerReferences"});
    if (refs == nullptr || !refs->is_array()) {
        return false;
    }
    const std::string uid = context.owner_reference.value("uid", "");
    for (const Json& ref : *refs) {
        if (ref.is_object() && ref.value("uid", "") == uid) {
            return true;
        }
    }
    return false;
}

std::optional<Json> route_update(const Json& live, const Json& desired, const OwnedKeys& owned) {
    Json updated = live;
    bool changed = false;
    if (const Json* metadata = api::member(desired, "metadata")) {
        Json& live_metadata = updated["metadata"];
        changed |= merge_string_map(live_metadata, *metadata, "labels");
        changed |= merge_string_map(live_metadata, *metadata, "annotations");
    }
    const Json* want_spec = api::member(desired, "spec");
    Json& spec = updated["spec"];
    if (!spec.is_object()) {
        spec = Json::object();
        changed = true;
    }
    for (const std::string& key : owned) {
        const Json* want = want_spec != nullptr ? api::member(*want_spec, key) : nullptr;
        auto have = spec.find(key);
        if (want == nullptr) {
            if (have != spec.end()) {
                spec.erase(have);
                changed = true;
            }
        } else if (have == spec.end() || *have != *want) {
            spec[key] = *want;
            changed = true;
        }
    }
    if (!changed) {
        return std::nullopt;
    }
    return updated;
}

Result<kube::ObjectPtr> live_route(const RouterDeps& deps, const RouteContext& context,
                                   const kube::ResourceType& type, std::string_view name) {
    if (!deps.kube.serves(type)) {
        return fail(ErrorKind::kInvalid,
                    "spec.provider: \"" + context.provider + "\" writes " + type.kind + " (" +
                        type.api_version() + "), which the API server does not serve: install " +
                        "its CustomResourceDefinition and restart Serin");
    }
    return deps.kube.get(type, context.ns(), name);
}

Result<kube::ObjectPtr> existing_route(const RouterDeps& deps, const RouteContext& context,
                                       const kube::ResourceType& type, std::string_view name) {
    auto live = live_route(deps, context, type, name);
    if (live && *live == nullptr) {
        return fail(ErrorKind::kNotFound,
                    type.kind + " " + std::string(name) + "." + context.ns() + " not found");
    }
    return live;
}

std::optional<Json> original_spec(const Json& live) {
    const Json* annotations = api::find_path(live, {"metadata", "annotations"});
    if (annotations == nullptr || !annotations->is_object()) {
        return std::nullopt;
    }
    for (std::string_view key : {kLastAppliedKey, kOriginalConfigKey}) {
        auto found = annotations->find(std::string(key));
        if (found == annotations->end() || !found->is_string()) {
            continue;
        }
        // A user can write anything into an annotation: its nesting is bounded before anything
        // recurses into it.
        auto parsed_text = parse_json(found->get<std::string>(), kMaxRemoteJsonDepth, key);
        if (!parsed_text || !parsed_text->is_object()) {
            continue;
        }
        Json parsed = std::move(*parsed_text);
        // last-applied holds a whole object; the original configuration only its spec.
        if (key == kLastAppliedKey) {
            if (const Json* spec = api::member(parsed, "spec")) {
                return *spec;
            }
            continue;
        }
        return parsed;
    }
    return std::nullopt;
}

asio::awaitable<Result<void>> restore_original_spec(RouterDeps deps, RouteContext context,
                                                  kube::ResourceType type, std::string name) {
    auto live = live_route(deps, context, type, name);
    if (!live) {
        co_return live.error();
    }
    if (*live == nullptr) {
        co_return Result<void>{};
    }
    std::optional<Json> original = original_spec(**live);
    if (!original) {
        co_return Result<void>{};  // created by Serin: it goes with the canary
    }
    Json restored = **live;
    restored["spec"] = std::move(*original);
    auto written = co_await deps.kube.update(type, context.ns(), restored);
    if (!written) {
        co_return written.error();
    }
    co_return Result<void>{};
}

asio::awaitable<Result<Json>> apply_route(RouterDeps deps, RouteContext context,
                                          kube::ResourceType type, Json desired, OwnedKeys owned,
                                          ApplyOptions options) {
    const std::string name = api::string_at(desired, {"metadata", "name"});
    auto live = live_route(deps, context, type, name);
    if (!live) {
        co_return live.error();
    }
    auto update_for = [&](const Json& found) -> std::optional<Json> {
        std::optional<Json> update = route_update(found, desired, owned);
        if (update && options.remember_original) {
            Json& annotations = (*update)["metadata"]["annotations"];
            const Json* before = api::find_path(found, {"metadata", "annotations"});
            const bool recorded =
                owned_by_canary(found, context) ||
                (before != nullptr && before->is_object() &&
                 (before->contains(std::string(kLastAppliedKey)) ||
                  before->contains(std::string(kOriginalConfigKey))));
            if (!recorded) {
                const Json* spec = api::member(found, "spec");
                annotations[std::string(kOriginalConfigKey)] =
                    dump_json(spec != nullptr ? *spec : Json::object());
            }
        }
        return update;
    };
    auto ensured = co_await deps.kube.ensure(type, context.ns(), desired, update_for);
    if (!ensured) {
        co_return ensured.error();
    }
    if (*ensured == nullptr) {
        // Created by someone else since the cache was filled: compared once the watch brings it.
        co_return fail(ErrorKind::kAlreadyExists,
                       type.kind + " " + name + "." + context.ns() + " already exists");
    }
    co_return Result<Json>(boost::system::in_place_value, **ensured);
}

}  // namespace serin::meshes
