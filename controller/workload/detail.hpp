#pragma once

// What the workload builders share: JSON access without operator[] on const values, cleaning and
// comparing objects, and the ConfigMap/Secret references of a pod spec. Internal to serin_workload.

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "controller/workload/workload.hpp"
#include "crds/api/json_access.hpp"

namespace serin::canary::detail {

inline constexpr std::string_view kToolkitMarker = "toolkit.fluxcd.io";
inline constexpr std::string_view kPrimarySuffix = "-primary";
inline constexpr std::string_view kWaiting = "waiting for rollout to finish: ";
inline constexpr std::string_view kLastAppliedAnnotation =
    "kubectl.kubernetes.io/last-applied-configuration";
inline constexpr std::string_view kDeploymentRevisionAnnotation = "deployment.kubernetes.io/revision";
/// Set by the API server on every DaemonSet; never worth copying.
inline constexpr std::string_view kDaemonSetGenerationAnnotation =
    "deprecated.daemonset.template.generation";
inline constexpr std::string_view kDeploymentAnnotationPrefix = "deployment.kubernetes.io/";
inline constexpr std::string_view kKubectlAnnotationPrefix = "kubectl.kubernetes.io/";

// ---- JSON access without operator[] on const values ------------------------------------------

using api::find_path;
using api::member;
using api::string_at;

Json* mutable_at(Json& root, std::initializer_list<std::string_view> keys);

std::optional<std::int64_t> int_at(const Json& root, std::initializer_list<std::string_view> keys);

std::int64_t int_or_zero(const Json& root, std::initializer_list<std::string_view> keys);

bool bool_at(const Json& root, std::initializer_list<std::string_view> keys);

/// The array at `keys`, or an empty one.
const Json& array_at(const Json& root, std::initializer_list<std::string_view> keys);

/// The object at `keys`, or an empty one.
const Json& object_at(const Json& root, std::initializer_list<std::string_view> keys);

bool starts_with(std::string_view text, std::string_view prefix);

bool is_toolkit_key(std::string_view key);

/// The string members of `map` whose key does not contain toolkit.fluxcd.io.
Json without_toolkit_keys(const Json& map);

/// Flagger's includeLabelsByPrefix: keys starting with one of `prefixes` ("*" = all, empty
/// prefixes ignored), never toolkit.fluxcd.io keys.
Json filter_by_prefix(const Json& map, const std::vector<std::string>& prefixes);

bool is_empty_value(const Json& value);

/// Drops null, {} and [] members recursively. Array elements are cleaned but kept, so positions
/// stay meaningful.
Json cleaned(const Json& value);

std::string dump(const Json& value);

/// Whether every field of `desired` has the same value in `live`: objects may carry extra
/// (server-defaulted) members in `live`, arrays must have the same length and match element-wise.
/// `desired` is expected to be cleaned.
bool is_subset(const Json& desired, const Json& live);

/// `desired` matches `live` when both are empty, or desired ⊆ live (see is_subset).
bool matches(const Json* desired, const Json* live);

std::string lower(std::string text);

/// Go's encoding/json escapes <, >, & and U+2028/U+2029 inside strings; nlohmann does not. Those
/// characters only occur inside strings of a dump, so a textual replacement is exact.
std::string go_json_escape(const std::string& text);

/// Copies member `key` of `from` to `to` when present.
void copy_field(const Json& from, Json& to, std::string_view key);

// ---- config references -------------------------------------------------------------------------

/// Calls `visit(kind, reference_object, name_key)` for every ConfigMap/Secret reference of a pod
/// spec. `J` is `const Json` to read and `Json` to rewrite.
template <class J, class F>
void visit_config_refs(J& pod_spec, F&& visit) {
    auto field = [](J& object, std::string_view key) -> J* {
        if (!object.is_object()) {
            return nullptr;
        }
        auto it = object.find(key);
        return it == object.end() || !(it->is_object() || it->is_array()) ? nullptr : &*it;
    };
    auto each = [&field](J& object, std::string_view key, auto&& body) {
        J* list = field(object, key);
        if (list != nullptr && list->is_array()) {
            for (J& item : *list) {
                body(item);
            }
        }
    };
    constexpr auto kConfigMap = ConfigRef::Kind::kConfigMap;
    constexpr auto kSecret = ConfigRef::Kind::kSecret;
    auto ref = [&field, &visit](J& holder, std::string_view key, ConfigRef::Kind kind,
                                std::string_view name_key) {
        if (J* r = field(holder, key)) {
            visit(kind, *r, name_key);
        }
    };
    each(pod_spec, "volumes", [&](J& volume) {
        ref(volume, "configMap", kConfigMap, "name");
        ref(volume, "secret", kSecret, "secretName");
        if (J* projected = field(volume, "projected")) {
            each(*projected, "sources", [&](J& source) {
                ref(source, "configMap", kConfigMap, "name");
                ref(source, "secret", kSecret, "name");
            });
        }
    });
    for (std::string_view containers : {"initContainers", "containers"}) {
        each(pod_spec, containers, [&](J& container) {
            each(container, "env", [&](J& env) {
                if (J* from = field(env, "valueFrom")) {
                    ref(*from, "configMapKeyRef", kConfigMap, "name");
                    ref(*from, "secretKeyRef", kSecret, "name");
                }
            });
            each(container, "envFrom", [&](J& env_from) {
                ref(env_from, "configMapRef", kConfigMap, "name");
                ref(env_from, "secretRef", kSecret, "name");
            });
        });
    }
}

inline std::string config_key(ConfigRef::Kind kind, const std::string& name) {
    return (kind == ConfigRef::Kind::kConfigMap ? "configmap/" : "secret/") + name;
}

}  // namespace serin::canary::detail
