#include "controller/workload/workload.hpp"

#include "controller/workload/detail.hpp"
#include "crds/api/json_access.hpp"
#include "platform/core/json.hpp"
#include "platform/core/time_format.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <tuple>
#include <utility>
#include <variant>


namespace serin::canary {

using namespace detail;  // the builders' shared helpers

namespace {

// ---- the primary workload
// ------------------------------------------------------------------------

/// In a label selector, the values `from` of key `key` become `to` (matchLabels and
/// matchExpressions values).
void replace_selector_value(Json& selector, std::string_view key, std::string_view from,
                            std::string_view to) {
    if (!selector.is_object()) {
        return;
    }
    const auto replace = [from, to](Json& value) {
        if (value.is_string() && value.get_ref<const std::string&>() == from) {
            value = std::string(to);
        }
    };
    if (Json* match_labels = mutable_at(selector, {"matchLabels"}); match_labels != nullptr) {
        if (Json* value = mutable_at(*match_labels, {key}); value != nullptr) {
            replace(*value);
        }
    }
    if (Json* expressions = mutable_at(selector, {"matchExpressions"});
        expressions != nullptr && expressions->is_array()) {
        for (Json& expression : *expressions) {
            if (string_at(expression, {"key"}) != key) {
                continue;
            }
            if (Json* values = mutable_at(expression, {"values"});
                values != nullptr && values->is_array()) {
                std::for_each(values->begin(), values->end(), replace);
            }
        }
    }
}

/// Calls `f` on each label selector of a pod spec that names its own pods: those of
/// topologySpreadConstraints and of podAntiAffinity terms (required and preferred).
template <typename F>
void visit_own_pod_selectors(Json& spec, F&& f) {
    if (Json* constraints = mutable_at(spec, {"topologySpreadConstraints"});
        constraints != nullptr && constraints->is_array()) {
        for (Json& constraint : *constraints) {
            if (Json* selector = mutable_at(constraint, {"labelSelector"})) {
                f(*selector);
            }
        }
    }
    Json* anti = mutable_at(spec, {"affinity", "podAntiAffinity"});
    if (anti == nullptr) {
        return;
    }
    if (Json* required = mutable_at(*anti, {"requiredDuringSchedulingIgnoredDuringExecution"});
        required != nullptr && required->is_array()) {
        for (Json& term : *required) {
            if (Json* selector = mutable_at(term, {"labelSelector"})) {
                f(*selector);
            }
        }
    }
    if (Json* preferred = mutable_at(*anti, {"preferredDuringSchedulingIgnoredDuringExecution"});
        preferred != nullptr && preferred->is_array()) {
        for (Json& term : *preferred) {
            if (Json* selector = mutable_at(term, {"podAffinityTerm", "labelSelector"})) {
                f(*selector);
            }
        }
    }
}

/// Removes the scale-to-zero key from a DaemonSet pod spec's nodeSelector (and the nodeSelector
/// when that leaves it empty).
void drop_scale_to_zero(Json& pod_spec) {
    if (Json* node_selector = mutable_at(pod_spec, {"nodeSelector"});
        node_selector != nullptr && node_selector->is_object()) {
        node_selector->erase(std::string(kScaleToZeroNodeSelector));
        if (node_selector->empty()) {
            pod_spec.erase("nodeSelector");
        }
    }
}

/// Hex of the first 8 bytes of SHA-256 over `text`: 16 digits ("" if OpenSSL fails).
std::string sha256_prefix_hex(std::string_view text) {
    std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
    unsigned int length = 0;
    if (EVP_Digest(text.data(), text.size(), digest.data(), &length, EVP_sha256(), nullptr) != 1 ||
        length < 8) {
        return {};
    }
    constexpr std::string_view kHex = "0123456789abcdef";
    std::string out;
    for (std::size_t i = 0; i < 8; ++i) {
        out += kHex[digest.at(i) >> 4U];
        out += kHex[digest.at(i) & 0xFU];
    }
    return out;
}

/// Serin's revision of a pod template: what a primary built from it would run. The
/// toolkit.fluxcd.io keys never reach a primary, so they are not part of it; for a DaemonSet
/// neither is the scale-to-zero node selector.
std::string template_revision(Json pod_template, bool daemonset) {
    if (Json* metadata = mutable_at(pod_template, {"metadata"});
        metadata != nullptr && metadata->is_object()) {
        for (const char* key : {"labels", "annotations"}) {
            if (metadata->contains(key)) {
                (*metadata)[key] = without_toolkit_keys((*metadata)[key]);
            }
        }
        // A primary's flagger-id is its own; a target's never reaches the primary.
        if (Json* annotations = mutable_at(*metadata, {"annotations"}); annotations != nullptr) {
            annotations->erase(std::string(kFlaggerIdAnnotation));
        }
    }
    if (daemonset) {
        if (Json* spec = mutable_at(pod_template, {"spec"}); spec != nullptr) {
            drop_scale_to_zero(*spec);
        }
    }
    return std::string(analysis::kRevisionPrefix) + sha256_prefix_hex(canonical_dump(pod_template));
}

Json primary_pod_spec(const Json& target, const PrimaryOptions& options) {
    const Json* source = find_path(target, {"spec", "template", "spec"});
    Json spec = source != nullptr && source->is_object() ? *source : Json::object();

    visit_config_refs(spec, [&options](ConfigRef::Kind kind, Json& ref, std::string_view key) {
        Json* name = mutable_at(ref, {key});
        if (name == nullptr || !name->is_string()) {
            return;
        }
        const std::string current = name->get<std::string>();
        if (options.tracked_configs.count(config_key(kind, current)) > 0) {
            *name = current + std::string(kPrimarySuffix);
        }
    });

    const std::string primary_value = options.label.value + std::string(kPrimarySuffix);
    visit_own_pod_selectors(spec, [&options, &primary_value](Json& selector) {
        replace_selector_value(selector, options.label.key, options.label.value, primary_value);
    });
    if (string_at(target, {"kind"}) == "DaemonSet") {
        drop_scale_to_zero(spec);
    }
    return spec;
}

Json primary_metadata_annotations(const Json& target) {
    Json annotations = without_toolkit_keys(object_at(target, {"metadata", "annotations"}));
    annotations.erase(std::string(kLastAppliedAnnotation));
    annotations.erase(std::string(kDeploymentRevisionAnnotation));
    annotations.erase(std::string(kDaemonSetGenerationAnnotation));
    return annotations;
}


}  // namespace

// ---- selector label
// ------------------------------------------------------------------------------

Result<SelectorLabel> selector_label(const Json& workload,
                                     const std::vector<std::string>& candidates) {
    const Json& match_labels = object_at(workload, {"spec", "selector", "matchLabels"});
    for (const std::string& candidate : candidates) {
        if (const Json* value = member(match_labels, candidate);
            value != nullptr && value->is_string()) {
            return SelectorLabel{candidate, value->get<std::string>()};
        }
    }
    std::string joined;
    for (const std::string& candidate : candidates) {
        joined += (joined.empty() ? "" : " ") + candidate;
    }
    return fail(ErrorKind::kInvalid, lower(string_at(workload, {"kind"})) + " " +
                                         string_at(workload, {"metadata", "name"}) + "." +
                                         string_at(workload, {"metadata", "namespace"}) +
                                         " spec.selector.matchLabels must contain one of [" +
                                         joined + "]");
}

// ---- revision identity ------------------------------------------------------------------------

std::string canonical_dump(const Json& value) { return dump(cleaned(value)); }

std::string flagger_hash(std::string_view text) {
    std::uint32_t hash = 2166136261U;
    for (char c : text) {
        hash ^= static_cast<unsigned char>(c);
        hash *= 16777619U;
    }
    constexpr std::string_view kAlphabet = "bcdfghjklmnpqrstvwxz2456789";
    std::string digits = std::to_string(hash);
    for (char& c : digits) {
        c = kAlphabet[static_cast<unsigned char>(c) % kAlphabet.size()];
    }
    return digits;
}

std::string revision_hash(const Json& workload) {
    const Json* source = find_path(workload, {"spec", "template"});
    return template_revision(source != nullptr ? *source : Json::object(),
                             string_at(workload, {"kind"}) == "DaemonSet");
}

std::string primary_revision(const Json& primary, const SelectorLabel& label,
                             std::string_view target_name,
                             const std::set<std::string>& config_keys) {
    const Json* source = find_path(primary, {"spec", "template"});
    Json pod_template = source != nullptr ? *source : Json::object();
    const std::string primary_value = label.value + std::string(kPrimarySuffix);
    if (Json* value = mutable_at(pod_template, {"metadata", "labels", label.key});
        value != nullptr && value->is_string() &&
        value->get_ref<const std::string&>() == primary_value) {
        *value = label.value;
    }
    if (Json* spec = mutable_at(pod_template, {"spec"}); spec != nullptr && spec->is_object()) {
        visit_config_refs(*spec, [&config_keys](ConfigRef::Kind kind, Json& ref,
                                                std::string_view key) {
            Json* name = mutable_at(ref, {key});
            if (name == nullptr || !name->is_string()) {
                return;
            }
            const std::string& current = name->get_ref<const std::string&>();
            if (current.size() > kPrimarySuffix.size() &&
                current.ends_with(kPrimarySuffix)) {
                std::string base = current.substr(0, current.size() - kPrimarySuffix.size());
                if (config_keys.count(config_key(kind, base)) > 0) {
                    *name = std::move(base);
                }
            }
        });
        // Flagger rewrites the values equal to the target's name; Serin those equal to the
        // label's value. Both are undone (they are the same for most workloads).
        const std::string by_name = std::string(target_name) + std::string(kPrimarySuffix);
        visit_own_pod_selectors(*spec, [&](Json& selector) {
            replace_selector_value(selector, label.key, primary_value, label.value);
            replace_selector_value(selector, label.key, by_name, target_name);
        });
    }
    return template_revision(std::move(pod_template),
                             string_at(primary, {"kind"}) == "DaemonSet");
}

namespace {

/// go-spew's `%#v` of a `map[string]string` as it sits behind a pointer field: keys sorted
/// bytewise, raw strings (flagger-spec-providers §16.2).
std::string spew_string_map(const api::StringMap& map) {
    std::string out = "map[";
    bool first = true;
    for (const auto& [key, value] : map) {  // std::map: sorted bytewise
        out += first ? "" : " ";
        out += key + ":" + value;
        first = false;
    }
    return out + "]";
}

}  // namespace

std::string canary_checksum(const api::CanaryStatus& status) {
    // Flagger hashes the Go value struct{TrackedConfigs *map[string]string; LastAppliedSpec
    // string} with go-spew; this is that dump, byte for byte (§16.4).
    std::string dump =
        "(struct { TrackedConfigs *map[string]string; LastAppliedSpec string })"
        "{TrackedConfigs:(*map[string]string)";
    dump += status.tracked_configs ? spew_string_map(*status.tracked_configs) : "<nil>";
    dump += " LastAppliedSpec:(string)" + status.last_applied_spec + "}";
    return flagger_hash(dump);
}

// ---- config tracking
// ------------------------------------------------------------------------------

std::string ConfigRef::key() const { return config_key(kind, name); }

std::vector<ConfigRef> config_refs(const Json& pod_spec) {
    std::map<std::string, ConfigRef> found;
    visit_config_refs(pod_spec,
                      [&found](ConfigRef::Kind kind, const Json& ref, std::string_view name_key) {
                          const std::string name = string_at(ref, {name_key});
                          if (name.empty()) {
                              return;
                          }
                          const bool optional = bool_at(ref, {"optional"});
                          ConfigRef config{kind, name, optional};
                          auto [it, inserted] = found.try_emplace(config.key(), config);
                          if (!inserted) {
                              it->second.optional = it->second.optional && optional;
                          }
                      });
    std::vector<ConfigRef> refs;
    refs.reserve(found.size());
    for (auto& [key, ref] : found) {
        refs.push_back(std::move(ref));
    }
    return refs;
}

bool tracking_disabled(const Json& config) {
    if (starts_with(string_at(config, {"metadata", "annotations", kConfigTrackingAnnotation}),
                    "disable")) {
        return true;
    }
    if (string_at(config, {"kind"}) == "Secret") {
        std::string type = string_at(config, {"type"});
        if (type.empty()) {
            type = "Opaque";  // the API server's default
        }
        return type != "Opaque" && type != "kubernetes.io/basic-auth" &&
               type != "kubernetes.io/ssh-auth" && type != "kubernetes.io/tls";
    }
    return false;
}

std::string config_checksum(const Json& config) {
    const Json* data = member(config, "data");
    // Go's json.Marshal of the data map: sorted keys, no spaces, HTML-safe escapes.
    return sha256_prefix_hex(go_json_escape(dump(data != nullptr ? *data : Json())));
}

Json make_primary_config(const Json& config, const Json& owner_reference,
                         const std::vector<std::string>& include_label_prefixes) {
    const std::string kind = string_at(config, {"kind"});
    std::string api_version = string_at(config, {"apiVersion"});
    Json out = Json::object();
    out["apiVersion"] = api_version.empty() ? std::string("v1") : api_version;
    out["kind"] = kind;
    Json& metadata = out["metadata"];
    metadata["name"] = string_at(config, {"metadata", "name"}) + std::string(kPrimarySuffix);
    metadata["namespace"] = string_at(config, {"metadata", "namespace"});
    metadata["labels"] =
        filter_by_prefix(object_at(config, {"metadata", "labels"}), include_label_prefixes);
    Json owners = Json::array();
    if (owner_reference.is_object()) {
        owners.push_back(owner_reference);
    }
    const std::string owner_uid = string_at(owner_reference, {"uid"});
    for (const Json& ref : array_at(config, {"metadata", "ownerReferences"})) {
        if (!ref.is_object() || (!owner_uid.empty() && string_at(ref, {"uid"}) == owner_uid)) {
            continue;
        }
        Json other = ref;
        other["controller"] = false;
        owners.push_back(std::move(other));
    }
    metadata["ownerReferences"] = std::move(owners);
    if (kind == "Secret") {
        copy_field(config, out, "type");
        copy_field(config, out, "data");
    } else {
        copy_field(config, out, "data");
        copy_field(config, out, "binaryData");
    }
    return out;
}

// ---- the primary workload
// --------------------------------------------------------------------------

Json owner_reference(const api::Canary& canary) {
    Json ref = Json::object();
    ref["apiVersion"] = "flagger.app/v1beta1";
    ref["kind"] = "Canary";
    ref["name"] = canary.metadata.name;
    ref["uid"] = canary.metadata.uid;
    ref["controller"] = true;
    ref["blockOwnerDeletion"] = true;
    return ref;
}

bool owned_by(const Json& object, std::string_view canary_uid) {
    if (canary_uid.empty()) {
        return false;
    }
    const Json& refs = array_at(object, {"metadata", "ownerReferences"});
    return std::any_of(refs.begin(), refs.end(), [canary_uid](const Json& ref) {
        return bool_at(ref, {"controller"}) && string_at(ref, {"kind"}) == "Canary" &&
               string_at(ref, {"uid"}) == canary_uid;
    });
}

Json make_primary(const Json& target, const PrimaryOptions& options) {
    const bool daemonset = string_at(target, {"kind"}) == "DaemonSet";
    const std::string primary_value = options.label.value + std::string(kPrimarySuffix);
    const std::string api_version = string_at(target, {"apiVersion"});
    const Json& target_spec = object_at(target, {"spec"});

    Json out = Json::object();
    out["apiVersion"] = api_version.empty() ? std::string("apps/v1") : api_version;
    out["kind"] = daemonset ? "DaemonSet" : "Deployment";

    Json& metadata = out["metadata"];
    metadata["name"] = string_at(target, {"metadata", "name"}) + std::string(kPrimarySuffix);
    metadata["namespace"] = string_at(target, {"metadata", "namespace"});
    Json labels =
        filter_by_prefix(object_at(target, {"metadata", "labels"}), options.include_label_prefixes);
    labels[options.label.key] = primary_value;
    metadata["labels"] = std::move(labels);
    metadata["annotations"] = primary_metadata_annotations(target);
    if (options.owner_reference.is_object()) {
        metadata["ownerReferences"] = Json::array({options.owner_reference});
    }

    Json& spec = out["spec"];
    if (daemonset) {
        copy_field(target_spec, spec, "minReadySeconds");
        copy_field(target_spec, spec, "revisionHistoryLimit");
        copy_field(target_spec, spec, "updateStrategy");
    } else {
        const std::int64_t replicas = int_or_zero(target_spec, {"replicas"});
        spec["replicas"] = replicas > 0 ? replicas : 1;
        copy_field(target_spec, spec, "progressDeadlineSeconds");
        copy_field(target_spec, spec, "minReadySeconds");
        copy_field(target_spec, spec, "revisionHistoryLimit");
        copy_field(target_spec, spec, "strategy");
    }
    spec["selector"]["matchLabels"][options.label.key] = primary_value;

    Json& pod_template = spec["template"];
    Json template_labels =
        without_toolkit_keys(object_at(target_spec, {"template", "metadata", "labels"}));
    template_labels[options.label.key] = primary_value;
    Json template_annotations =
        without_toolkit_keys(object_at(target_spec, {"template", "metadata", "annotations"}));
    template_annotations[std::string(kFlaggerIdAnnotation)] = options.flagger_id;
    pod_template["metadata"]["labels"] = std::move(template_labels);
    pod_template["metadata"]["annotations"] = std::move(template_annotations);
    pod_template["spec"] = primary_pod_spec(target, options);
    return out;
}

Json promoted_primary(const Json& live_primary, const Json& target, const PrimaryOptions& options,
                      bool keep_replicas) {
    Json desired = make_primary(target, options);
    Json out = live_primary.is_object() ? live_primary : Json::object();
    out.erase("status");

    Json spec = std::move(desired["spec"]);
    if (keep_replicas) {
        if (const Json* replicas = find_path(live_primary, {"spec", "replicas"})) {
            spec["replicas"] = *replicas;
        } else {
            spec.erase("replicas");
        }
    }
    out["spec"] = std::move(spec);

    Json annotations = std::move(desired["metadata"]["annotations"]);
    const Json& live_annotations = object_at(live_primary, {"metadata", "annotations"});
    for (auto it = live_annotations.begin(); it != live_annotations.end(); ++it) {
        // Server-managed annotations (the Deployment revision, the DaemonSet template
        // generation) stay as they are.
        const bool server_managed = starts_with(it.key(), kDeploymentAnnotationPrefix) ||
                                    it.key() == kDaemonSetGenerationAnnotation;
        if (server_managed && !annotations.contains(it.key())) {
            annotations[it.key()] = *it;
        }
    }
    Json& metadata = out["metadata"];
    metadata["labels"] = std::move(desired["metadata"]["labels"]);
    metadata["annotations"] = std::move(annotations);
    return out;
}

bool primary_matches(const Json& live_primary, const Json& target, const PrimaryOptions& options,
                     bool keep_replicas) {
    const Json desired = promoted_primary(live_primary, target, options, keep_replicas);
    const Json* live_spec = find_path(live_primary, {"spec"});
    const Json* desired_spec = find_path(desired, {"spec"});
    return live_spec != nullptr && desired_spec != nullptr &&
           is_subset(cleaned(*desired_spec), *live_spec);
}

// ---- scaling ---------------------------------------------------------------------------------

std::optional<std::string> scale_to_zero_patch(const Json& target) {
    const std::string kind = string_at(target, {"kind"});
    if (kind == "DaemonSet") {
        if (find_path(target, {"spec", "template", "spec", "nodeSelector",
                             kScaleToZeroNodeSelector}) != nullptr) {
            return std::nullopt;
        }
        Json patch = Json::object();
        patch["spec"]["template"]["spec"]["nodeSelector"][std::string(kScaleToZeroNodeSelector)] =
            "true";
        return dump_json(patch);
    }
    if (kind == "Service") {
        return std::nullopt;
    }
    if (const auto replicas = int_at(target, {"spec", "replicas"}); replicas && *replicas == 0) {
        return std::nullopt;
    }
    return std::string(R"({"spec":{"replicas":0}})");
}

std::optional<std::string> scale_up_patch(const Json& target, const Json* primary,
                                          const Json* hpa) {
    const std::string kind = string_at(target, {"kind"});
    if (kind == "DaemonSet") {
        if (find_path(target, {"spec", "template", "spec", "nodeSelector",
                             kScaleToZeroNodeSelector}) == nullptr) {
            return std::nullopt;
        }
        Json patch = Json::object();
        patch["spec"]["template"]["spec"]["nodeSelector"][std::string(kScaleToZeroNodeSelector)] =
            nullptr;
        return dump_json(patch);
    }
    if (kind == "Service") {
        return std::nullopt;
    }
    const auto current = int_at(target, {"spec", "replicas"});
    if (current && *current > 0) {
        return std::nullopt;
    }
    std::int64_t replicas = 1;
    if (hpa == nullptr) {
        if (primary != nullptr) {
            if (const auto p = int_at(*primary, {"spec", "replicas"}); p && *p > 0) {
                replicas = *p;
            }
        }
    } else {
        // A KEDA ScaledObject keeps its minimum in minReplicaCount.
        const auto min = string_at(*hpa, {"kind"}) == "ScaledObject"
                             ? int_at(*hpa, {"spec", "minReplicaCount"})
                             : int_at(*hpa, {"spec", "minReplicas"});
        if (min && *min > 1) {
            replicas = *min;
        }
    }
    Json patch = Json::object();
    patch["spec"]["replicas"] = replicas;
    return dump_json(patch);
}

}  // namespace serin::canary
