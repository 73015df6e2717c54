#include "controller/workload/workload.hpp"

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

namespace {

constexpr std::string_view kToolkitMarker = "toolkit.fluxcd.io";
constexpr std::string_view kPrimarySuffix = "-primary";
constexpr std::string_view kWaiting = "waiting for rollout to finish: ";
constexpr std::string_view kLastAppliedAnnotation =
    "kubectl.kubernetes.io/last-applied-configuration";
constexpr std::string_view kDeploymentRevisionAnnotation = "deployment.kubernetes.io/revision";
/// Set by the API server on every DaemonSet; never worth copying.
constexpr std::string_view kDaemonSetGenerationAnnotation =
    "deprecated.daemonset.template.generation";
constexpr std::string_view kDeploymentAnnotationPrefix = "deployment.kubernetes.io/";
constexpr std::string_view kKubectlAnnotationPrefix = "kubectl.kubernetes.io/";

// ---- JSON access without operator[] on const values ------------------------------------------

using api::find_path;
using api::member;
using api::string_at;

Json* mutable_at(Json& root, std::initializer_list<std::string_view> keys) {
    Json* current = &root;
    for (std::string_view key : keys) {
        if (!current->is_object()) {
            return nullptr;
        }
        auto it = current->find(key);
        if (it == current->end() || it->is_null()) {
            return nullptr;
        }
        current = &*it;
    }
    return current;
}


std::optional<std::int64_t> int_at(const Json& root, std::initializer_list<std::string_view> keys) {
    const Json* value = find_path(root, keys);
    if (value == nullptr || !value->is_number_integer()) {
        return std::nullopt;
    }
    return value->get<std::int64_t>();
}

std::int64_t int_or_zero(const Json& root, std::initializer_list<std::string_view> keys) {
    return int_at(root, keys).value_or(0);
}

bool bool_at(const Json& root, std::initializer_list<std::string_view> keys) {
    const Json* value = find_path(root, keys);
    return value != nullptr && value->is_boolean() && value->get<bool>();
}

/// The array at `keys`, or an empty one.
const Json& array_at(const Json& root, std::initializer_list<std::string_view> keys) {
    static const Json kEmpty = Json::array();
    const Json* value = find_path(root, keys);
    return value != nullptr && value->is_array() ? *value : kEmpty;
}

/// The object at `keys`, or an empty one.
const Json& object_at(const Json& root, std::initializer_list<std::string_view> keys) {
    static const Json kEmpty = Json::object();
    const Json* value = find_path(root, keys);
    return value != nullptr && value->is_object() ? *value : kEmpty;
}

bool starts_with(std::string_view text, std::string_view prefix) {
    return text.substr(0, prefix.size()) == prefix;
}

bool is_toolkit_key(std::string_view key) {
    return key.find(kToolkitMarker) != std::string_view::npos;
}

/// The string members of `map` whose key does not contain toolkit.fluxcd.io.
Json without_toolkit_keys(const Json& map) {
    Json out = Json::object();
    if (!map.is_object()) {
        return out;
    }
    for (auto it = map.begin(); it != map.end(); ++it) {
        if (it->is_string() && !is_toolkit_key(it.key())) {
            out[it.key()] = *it;
        }
    }
    return out;
}

/// Flagger's includeLabelsByPrefix: keys starting with one of `prefixes` ("*" = all, empty
/// prefixes ignored), never toolkit.fluxcd.io keys.
Json filter_by_prefix(const Json& map, const std::vector<std::string>& prefixes) {
    Json out = Json::object();
    if (!map.is_object()) {
        return out;
    }
    for (auto it = map.begin(); it != map.end(); ++it) {
        if (!it->is_string() || is_toolkit_key(it.key())) {
            continue;
        }
        const bool included = std::any_of(prefixes.begin(), prefixes.end(), [&](const auto& p) {
            return p == "*" || (!p.empty() && starts_with(it.key(), p));
        });
        if (included) {
            out[it.key()] = *it;
        }
    }
    return out;
}

bool is_empty_value(const Json& value) {
    return value.is_null() || ((value.is_object() || value.is_array()) && value.empty());
}

/// Drops null, {} and [] members recursively. Array elements are cleaned but kept, so positions
/// stay meaningful.
Json cleaned(const Json& value) {
    if (value.is_object()) {
        Json out = Json::object();
        for (auto it = value.begin(); it != value.end(); ++it) {
            Json member = cleaned(*it);
            if (!is_empty_value(member)) {
                out[it.key()] = std::move(member);
            }
        }
        return out;
    }
    if (value.is_array()) {
        Json out = Json::array();
        for (const Json& element : value) {
            out.push_back(cleaned(element));
        }
        return out;
    }
    return value;
}

std::string dump(const Json& value) {
    return value.dump(-1, ' ', false, Json::error_handler_t::replace);
}

/// Whether every field of `desired` has the same value in `live`: objects may carry extra
/// (server-defaulted) members in `live`, arrays must have the same length and match element-wise.
/// `desired` is expected to be cleaned.
bool is_subset(const Json& desired, const Json& live) {
    if (desired.is_object()) {
        if (!live.is_object()) {
            return false;
        }
        for (auto it = desired.begin(); it != desired.end(); ++it) {
            auto found = live.find(it.key());
            if (found == live.end() || !is_subset(*it, *found)) {
                return false;
            }
        }
        return true;
    }
    if (desired.is_array()) {
        if (!live.is_array() || live.size() != desired.size()) {
            return false;
        }
        for (std::size_t i = 0; i < desired.size(); ++i) {
            if (!is_subset(desired.at(i), live.at(i))) {
                return false;
            }
        }
        return true;
    }
    return desired == live;
}

/// `desired` matches `live` when both are empty, or desired ⊆ live (see is_subset).
bool matches(const Json* desired, const Json* live) {
    const Json want = desired != nullptr ? cleaned(*desired) : Json();
    const Json have = live != nullptr ? cleaned(*live) : Json();
    if (is_empty_value(want)) {
        return is_empty_value(have);
    }
    return is_subset(want, have);
}

std::string lower(std::string text) {
    std::transform(text.begin(), text.end(), text.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return text;
}

/// Go's encoding/json escapes <, >, & and U+2028/U+2029 inside strings; nlohmann does not. Those
/// characters only occur inside strings of a dump, so a textual replacement is exact.
std::string go_json_escape(const std::string& text) {
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (c == '<') {
            out += "\\u003c";
        } else if (c == '>') {
            out += "\\u003e";
        } else if (c == '&') {
            out += "\\u0026";
        } else if (c == '\xE2' && i + 2 < text.size() && text[i + 1] == '\x80' &&
                   (text[i + 2] == '\xA8' || text[i + 2] == '\xA9')) {
            out += text[i + 2] == '\xA8' ? "\\u2028" : "\\u2029";
            i += 2;
        } else {
            out += c;
        }
    }
    return out;
}

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

std::string config_key(ConfigRef::Kind kind, const std::string& name) {
    return (kind == ConfigRef::Kind::kConfigMap ? "configmap/" : "secret/") + name;
}

// ---- the primary workload
// ------------------------------------------------------------------------

/// In a label selector, `L: V` becomes `L: V-primary` (matchLabels and matchExpressions values).
void rewrite_selector(Json& selector, const SelectorLabel& label) {
    if (!selector.is_object()) {
        return;
    }
    const std::string primary_value = label.value + std::string(kPrimarySuffix);
    if (Json* match_labels = mutable_at(selector, {"matchLabels"}); match_labels != nullptr) {
        if (Json* value = mutable_at(*match_labels, {label.key});
            value != nullptr && value->is_string() &&
            value->get_ref<const std::string&>() == label.value) {
            *value = primary_value;
        }
    }
    if (Json* expressions = mutable_at(selector, {"matchExpressions"});
        expressions != nullptr && expressions->is_array()) {
        for (Json& expression : *expressions) {
            if (string_at(expression, {"key"}) != label.key) {
                continue;
            }
            Json* values = mutable_at(expression, {"values"});
            if (values == nullptr || !values->is_array()) {
                continue;
            }
            for (Json& value : *values) {
                if (value.is_string() && value.get_ref<const std::string&>() == label.value) {
                    value = primary_value;
                }
            }
        }
    }
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

    if (Json* constraints = mutable_at(spec, {"topologySpreadConstraints"});
        constraints != nullptr && constraints->is_array()) {
        for (Json& constraint : *constraints) {
            if (Json* selector = mutable_at(constraint, {"labelSelector"})) {
                rewrite_selector(*selector, options.label);
            }
        }
    }
    if (Json* anti = mutable_at(spec, {"affinity", "podAntiAffinity"})) {
        if (Json* required = mutable_at(*anti, {"requiredDuringSchedulingIgnoredDuringExecution"});
            required != nullptr && required->is_array()) {
            for (Json& term : *required) {
                if (Json* selector = mutable_at(term, {"labelSelector"})) {
                    rewrite_selector(*selector, options.label);
                }
            }
        }
        if (Json* preferred =
                mutable_at(*anti, {"preferredDuringSchedulingIgnoredDuringExecution"});
            preferred != nullptr && preferred->is_array()) {
            for (Json& term : *preferred) {
                if (Json* selector = mutable_at(term, {"podAffinityTerm", "labelSelector"})) {
                    rewrite_selector(*selector, options.label);
                }
            }
        }
    }

    if (string_at(target, {"kind"}) == "DaemonSet") {
        if (Json* node_selector = mutable_at(spec, {"nodeSelector"});
            node_selector != nullptr && node_selector->is_object()) {
            node_selector->erase(std::string(kScaleToZeroNodeSelector));
            if (node_selector->empty()) {
                spec.erase("nodeSelector");
            }
        }
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

void copy_field(const Json& from, Json& to, std::string_view key) {
    if (const Json* value = member(from, key)) {
        to[std::string(key)] = *value;
    }
}

// ---- services --------------------------------------------------------------------------------

Json main_service_port(const api::CanaryService& service) {
    Json port = Json::object();
    port["name"] = service.port_name.empty() ? std::string("http") : service.port_name;
    port["protocol"] = "TCP";
    port["port"] = service.port;
    if (const auto* number = std::get_if<std::int32_t>(&service.target_port)) {
        port["targetPort"] = *number == 0 ? service.port : *number;
    } else {
        const auto& name = std::get<std::string>(service.target_port);
        if (name.empty()) {
            port["targetPort"] = service.port;
        } else {
            port["targetPort"] = name;
        }
    }
    if (!service.app_protocol.empty()) {
        port["appProtocol"] = service.app_protocol;
    }
    return port;
}

/// flagger-spec §3.2 portDiscovery: every container port but the main target port and those of
/// mesh sidecars.
std::vector<Json> discovered_ports(const api::CanaryService& service, const Json& target) {
    std::vector<Json> ports;
    for (const Json& container : array_at(target, {"spec", "template", "spec", "containers"})) {
        const std::string container_name = string_at(container, {"name"});
        if (container_name == "istio-proxy" || container_name == "envoy") {
            continue;
        }
        const Json& container_ports = array_at(container, {"ports"});
        for (std::size_t i = 0; i < container_ports.size(); ++i) {
            const Json& p = container_ports.at(i);
            const auto container_port = int_at(p, {"containerPort"});
            if (!container_port) {
                continue;
            }
            const std::string port_name = string_at(p, {"name"});
            if (const auto* number = std::get_if<std::int32_t>(&service.target_port)) {
                const std::int64_t main = *number == 0 ? service.port : *number;
                if (*container_port == main) {
                    continue;
                }
            } else if (port_name == std::get<std::string>(service.target_port)) {
                continue;
            }
            Json port = Json::object();
            port["name"] =
                port_name.empty() ? "tcp-" + container_name + "-" + std::to_string(i) : port_name;
            port["protocol"] = "TCP";
            port["port"] = *container_port;
            port["targetPort"] = *container_port;
            ports.push_back(std::move(port));
        }
    }
    return ports;
}

Json make_service(const std::string& name, const std::string& ns, const Json& selector,
                  const Json& ports, const std::optional<api::CustomMetadata>& custom,
                  const api::CanaryService& service, const SelectorLabel& label,
                  const Json& owner_reference) {
    Json labels = Json::object();
    Json annotations = Json::object();
    if (custom) {
        labels = custom->labels;
        annotations = custom->annotations;
    }
    labels[label.key] = name;
    annotations[std::string(kFluxReconcileAnnotation)] = "disabled";
    annotations[std::string(kHelmDriftAnnotation)] = "disabled";

    Json svc = Json::object();
    svc["apiVersion"] = "v1";
    svc["kind"] = "Service";
    Json& metadata = svc["metadata"];
    metadata["name"] = name;
    metadata["namespace"] = ns;
    metadata["labels"] = std::move(labels);
    metadata["annotations"] = std::move(annotations);
    if (owner_reference.is_object()) {
        metadata["ownerReferences"] = Json::array({owner_reference});
    }
    Json& spec = svc["spec"];
    spec["type"] = "ClusterIP";
    if (service.headless) {
        spec["clusterIP"] = "None";
    }
    if (!service.traffic_distribution.empty()) {
        spec["trafficDistribution"] = service.traffic_distribution;
    }
    spec["selector"] = selector;
    spec["ports"] = ports;
    return svc;
}

using PortKey = std::tuple<std::string, std::string, std::int64_t, std::string, std::string>;

std::vector<PortKey> port_keys(const Json& ports) {
    std::vector<PortKey> keys;
    if (!ports.is_array()) {
        return keys;
    }
    for (const Json& p : ports) {
        const std::int64_t number = int_or_zero(p, {"port"});
        std::string protocol = string_at(p, {"protocol"});
        if (protocol.empty()) {
            protocol = "TCP";
        }
        const Json* target = member(p, "targetPort");
        // The API server defaults an absent targetPort to the port.
        const std::string target_text = target != nullptr ? dump(*target) : std::to_string(number);
        keys.emplace_back(string_at(p, {"name"}), protocol, number, target_text,
                          string_at(p, {"appProtocol"}));
    }
    std::sort(keys.begin(), keys.end());
    return keys;
}

/// `desired` with the live values of `keys` (absent live = absent).
void keep_live_keys(Json& desired, const Json& live, const std::vector<std::string>& keys) {
    for (const std::string& key : keys) {
        if (const Json* value = member(live, key)) {
            desired[key] = *value;
        } else {
            desired.erase(key);
        }
    }
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
    Json pod_template = source != nullptr ? *source : Json::object();
    if (string_at(workload, {"kind"}) == "DaemonSet") {
        if (Json* node_selector = mutable_at(pod_template, {"spec", "nodeSelector"});
            node_selector != nullptr && node_selector->is_object()) {
            // An emptied nodeSelector is dropped by canonical_dump, so nil and empty agree.
            node_selector->erase(std::string(kScaleToZeroNodeSelector));
        }
    }
    return flagger_hash(canonical_dump(pod_template));
}

std::string canary_checksum(const api::CanaryStatus& status) {
    Json payload = Json::object();
    payload["trackedConfigs"] = status.tracked_configs ? Json(*status.tracked_configs) : Json();
    payload["lastAppliedSpec"] = status.last_applied_spec;
    return flagger_hash(canonical_dump(payload));
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
    const std::string text = go_json_escape(dump(data != nullptr ? *data : Json()));
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

// ---- readiness --------------------------------------------------------------------------------

analysis::Readiness deployment_readiness(const Json& deployment, int threshold_percent,
                                         int deadline_seconds, SystemTime now,
                                         std::string_view prefix) {
    auto not_ready = [prefix](bool retriable, const std::string& message) {
        return analysis::Readiness{false, retriable, std::string(prefix) + message};
    };
    const Json& status = object_at(deployment, {"status"});
    if (int_or_zero(deployment, {"metadata", "generation"}) >
        int_or_zero(status, {"observedGeneration"})) {
        return not_ready(true, std::string(kWaiting) +
                                   "observed deployment generation less than desired generation");
    }
    const Json* progressing = nullptr;
    const Json* available = nullptr;
    for (const Json& condition : array_at(status, {"conditions"})) {
        const std::string type = string_at(condition, {"type"});
        if (type == "Progressing" && progressing == nullptr) {
            progressing = &condition;
        } else if (type == "Available" && available == nullptr) {
            available = &condition;
        }
    }
    if (progressing != nullptr &&
        string_at(*progressing, {"reason"}) == "ProgressDeadlineExceeded") {
        return not_ready(false, "deployment \"" + string_at(deployment, {"metadata", "name"}) +
                                    "\" exceeded its progress deadline");
    }
    bool retriable = true;
    if (available != nullptr && string_at(*available, {"status"}) == "False" &&
        string_at(*available, {"reason"}) == "MinimumReplicasUnavailable") {
        if (const auto since = parse_time(string_at(*available, {"lastUpdateTime"}))) {
            retriable = !(*since + std::chrono::seconds{deadline_seconds} < now);
        }
    }
    const auto desired = int_at(deployment, {"spec", "replicas"});
    if (desired && *desired == 0) {
        return not_ready(true, std::string(kWaiting) + "scaled to zero");
    }
    const std::int64_t updated = int_or_zero(status, {"updatedReplicas"});
    if (desired && updated < *desired) {
        return not_ready(retriable, std::string(kWaiting) + std::to_string(updated) + " out of " +
                                        std::to_string(*desired) +
                                        " new replicas have been updated");
    }
    const std::int64_t replicas = int_or_zero(status, {"replicas"});
    if (replicas > updated) {
        return not_ready(retriable, std::string(kWaiting) + std::to_string(replicas - updated) +
                                        " old replicas are pending termination");
    }
    const std::int64_t threshold = updated * threshold_percent / 100;
    const std::int64_t ready = int_or_zero(status, {"availableReplicas"});
    if (ready < threshold) {
        return not_ready(retriable, std::string(kWaiting) + std::to_string(ready) + " of " +
                                        std::to_string(threshold) + " (readyThreshold " +
                                        std::to_string(threshold_percent) +
                                        "%) updated replicas are available");
    }
    return analysis::Readiness{true, true, {}};
}

analysis::Readiness daemonset_readiness(const Json& daemonset, int threshold_percent,
                                        int deadline_seconds, SystemTime now, SystemTime since,
                                        std::string_view prefix) {
    const Json& status = object_at(daemonset, {"status"});
    if (int_or_zero(daemonset, {"metadata", "generation"}) >
        int_or_zero(status, {"observedGeneration"})) {
        return analysis::Readiness{
            false, true,
            std::string(prefix) + std::string(kWaiting) +
                "observed daemon set generation less than desired generation"};
    }
    const std::int64_t desired = int_or_zero(status, {"desiredNumberScheduled"});
    const std::int64_t updated = int_or_zero(status, {"updatedNumberScheduled"});
    const std::int64_t available = int_or_zero(status, {"numberAvailable"});
    const std::int64_t threshold = desired * threshold_percent / 100;
    std::string message;
    if (updated < desired) {
        message = std::to_string(updated) + " out of " + std::to_string(desired) +
                  " new pods have been updated";
    } else if (available < threshold) {
        message = std::to_string(available) + " of " + std::to_string(threshold) +
                  " (readyThreshold " + std::to_string(threshold_percent) +
                  "%) updated pods are available";
    } else {
        return analysis::Readiness{true, true, {}};
    }
    const bool retriable = !(since + std::chrono::seconds{deadline_seconds} < now);
    return analysis::Readiness{false, retriable,
                               std::string(prefix) + std::string(kWaiting) + message};
}

// ---- services ---------------------------------------------------------------------------------

ServiceSet make_services(const api::Canary& canary, const Json& target, const SelectorLabel& label,
                         const Json& owner_reference) {
    const api::CanaryService& service = canary.spec.service;
    std::string apex_name = service.name;
    if (apex_name.empty()) {
        apex_name = string_at(target, {"metadata", "name"});
    }
    std::string ns = canary.metadata.ns;
    if (ns.empty()) {
        ns = string_at(target, {"metadata", "namespace"});
    }

    Json ports = Json::array({main_service_port(service)});
    if (service.port_discovery) {
        for (Json& port : discovered_ports(service, target)) {
            // Two ports of one name would make the Service invalid; the first one wins.
            const bool taken = std::any_of(ports.begin(), ports.end(), [&port](const Json& p) {
                return string_at(p, {"name"}) == string_at(port, {"name"});
            });
            if (!taken) {
                ports.push_back(std::move(port));
            }
        }
    }

    Json primary_selector = Json::object();
    primary_selector[label.key] = label.value + std::string(kPrimarySuffix);
    Json canary_selector = Json::object();
    canary_selector[label.key] = label.value;

    const std::string primary_name = apex_name + std::string(kPrimarySuffix);
    const std::string canary_name = apex_name + "-canary";
    return ServiceSet{
        make_service(apex_name, ns, primary_selector, ports, service.apex, service, label,
                     owner_reference),
        make_service(primary_name, ns, primary_selector, ports, service.primary, service, label,
                     owner_reference),
        make_service(canary_name, ns, canary_selector, ports, service.canary, service, label,
                     owner_reference),
    };
}

std::optional<Json> service_update(const Json& live, const Json& desired, const api::Canary& canary,
                                   bool keep_selector) {
    Json out = live.is_object() ? live : Json::object();
    out.erase("status");
    bool changed = false;

    const Json& desired_ports = array_at(desired, {"spec", "ports"});
    const Json& live_ports = array_at(live, {"spec", "ports"});
    if (port_keys(desired_ports) != port_keys(live_ports)) {
        Json ports = Json::array();
        for (const Json& port : desired_ports) {
            Json p = port;
            const std::string name = string_at(port, {"name"});
            for (const Json& existing : live_ports) {
                if (string_at(existing, {"name"}) == name) {
                    if (const Json* node_port = member(existing, "nodePort")) {
                        p["nodePort"] = *node_port;
                    }
                    break;
                }
            }
            ports.push_back(std::move(p));
        }
        out["spec"]["ports"] = std::move(ports);
        changed = true;
    }

    if (!keep_selector) {
        const Json& selector = object_at(desired, {"spec", "selector"});
        if (selector != object_at(live, {"spec", "selector"})) {
            out["spec"]["selector"] = selector;
            changed = true;
        }
    }

    if (owned_by(live, canary.metadata.uid)) {
        const auto& unmanaged = canary.spec.service.unmanaged_metadata;
        const Json& live_labels = object_at(live, {"metadata", "labels"});
        const Json& live_annotations = object_at(live, {"metadata", "annotations"});

        Json labels = object_at(desired, {"metadata", "labels"});
        Json annotations = object_at(desired, {"metadata", "annotations"});
        if (unmanaged) {
            keep_live_keys(labels, live_labels, unmanaged->labels);
            keep_live_keys(annotations, live_annotations, unmanaged->annotations);
        }
        for (auto it = live_annotations.begin(); it != live_annotations.end(); ++it) {
            if (starts_with(it.key(), kKubectlAnnotationPrefix)) {
                annotations[it.key()] = *it;
            }
        }
        if (labels != live_labels) {
            out["metadata"]["labels"] = std::move(labels);
            changed = true;
        }
        if (annotations != live_annotations) {
            out["metadata"]["annotations"] = std::move(annotations);
            changed = true;
        }
    }

    if (!changed) {
        return std::nullopt;
    }
    return out;
}

// ---- autoscaler
// ----------------------------------------------------------------------------------

Json make_primary_hpa(const Json& hpa, const api::Canary& canary, const Json& owner_reference) {
    const std::string api_version = string_at(hpa, {"apiVersion"});
    std::string ns = string_at(hpa, {"metadata", "namespace"});
    if (ns.empty()) {
        ns = canary.metadata.ns;
    }
    Json out = Json::object();
    out["apiVersion"] = api_version.empty() ? std::string("autoscaling/v2") : api_version;
    out["kind"] = "HorizontalPodAutoscaler";
    Json& metadata = out["metadata"];
    metadata["name"] = string_at(hpa, {"metadata", "name"}) + std::string(kPrimarySuffix);
    metadata["namespace"] = ns;
    metadata["labels"] = without_toolkit_keys(object_at(hpa, {"metadata", "labels"}));
    if (owner_reference.is_object()) {
        metadata["ownerReferences"] = Json::array({owner_reference});
    }

    const Json& source = object_at(hpa, {"spec"});
    Json& spec = out["spec"];
    Json& scale_target = spec["scaleTargetRef"];
    const std::string target_api_version = string_at(source, {"scaleTargetRef", "apiVersion"});
    if (!target_api_version.empty()) {
        scale_target["apiVersion"] = target_api_version;
    }
    scale_target["kind"] = string_at(source, {"scaleTargetRef", "kind"});
    scale_target["name"] = canary.spec.target_ref.name + std::string(kPrimarySuffix);
    copy_field(source, spec, "minReplicas");
    copy_field(source, spec, "maxReplicas");
    copy_field(source, spec, "metrics");
    copy_field(source, spec, "behavior");
    if (canary.spec.autoscaler_ref && canary.spec.autoscaler_ref->primary_scaler_replicas) {
        const api::ScalerReplicas& replicas = *canary.spec.autoscaler_ref->primary_scaler_replicas;
        if (replicas.min_replicas) {
            spec["minReplicas"] = *replicas.min_replicas;
        }
        if (replicas.max_replicas) {
            spec["maxReplicas"] = *replicas.max_replicas;
        }
    }
    return out;
}

std::optional<Json> hpa_update(const Json& live, const Json& desired) {
    const Json& want = object_at(desired, {"spec"});
    const Json& have = object_at(live, {"spec"});
    // An absent minReplicas means 1 (the API default).
    const bool same =
        int_at(want, {"minReplicas"}).value_or(1) == int_at(have, {"minReplicas"}).value_or(1) &&
        int_at(want, {"maxReplicas"}) == int_at(have, {"maxReplicas"}) &&
        matches(member(want, "metrics"), member(have, "metrics")) &&
        matches(member(want, "behavior"), member(have, "behavior"));
    if (same) {
        return std::nullopt;
    }
    Json out = live.is_object() ? live : Json::object();
    out.erase("status");
    Json& spec = out["spec"];
    for (std::string_view key : {"minReplicas", "maxReplicas", "metrics", "behavior"}) {
        if (const Json* value = member(want, key)) {
            spec[std::string(key)] = *value;
        } else {
            spec.erase(std::string(key));
        }
    }
    return out;
}

}  // namespace serin::canary
