#include "crds/api/canary.hpp"

#include "crds/api/json_access.hpp"
#include "platform/core/json.hpp"
#include "platform/core/text.hpp"

#include <cctype>
#include <cmath>
#include <limits>

namespace serin::api {

namespace detail {

void Reader::invalid(const std::string& path, const std::string& message) {
    if (!error_) {
        error_ = fail(ErrorKind::kInvalid, path.empty() ? message : path + ": " + message);
    }
}

std::string Reader::join(const std::string& path, std::string_view key) {
    return path.empty() ? std::string(key) : path + "." + std::string(key);
}

std::string Reader::index(const std::string& path, std::size_t i) {
    return path + "[" + std::to_string(i) + "]";
}

std::string Reader::show(const Json& value) { return show_json(value, 83); }

const Json* Reader::field(const Json& object, std::string_view key) {
    return member(object, key);
}

const Json* Reader::object(const Json& parent, std::string_view key, const std::string& path) {
    const Json* value = field(parent, key);
    if (value != nullptr && !value->is_object()) {
        invalid(join(path, key), "expected an object, got " + show(*value));
        return nullptr;
    }
    return value;
}

const Json* Reader::array(const Json& parent, std::string_view key, const std::string& path) {
    const Json* value = field(parent, key);
    if (value != nullptr && !value->is_array()) {
        invalid(join(path, key), "expected an array, got " + show(*value));
        return nullptr;
    }
    return value;
}

std::optional<std::string> Reader::string(const Json& parent, std::string_view key,
                                          const std::string& path) {
    const Json* value = field(parent, key);
    if (value == nullptr) {
        return std::nullopt;
    }
    if (!value->is_string()) {
        invalid(join(path, key), "expected a string, got " + show(*value));
        return std::nullopt;
    }
    return value->get_ref<const std::string&>();
}

std::optional<bool> Reader::boolean(const Json& parent, std::string_view key,
                                    const std::string& path) {
    const Json* value = field(parent, key);
    if (value == nullptr) {
        return std::nullopt;
    }
    if (!value->is_boolean()) {
        invalid(join(path, key), "expected a boolean, got " + show(*value));
        return std::nullopt;
    }
    return value->get<bool>();
}

std::optional<std::int64_t> Reader::integer(const Json& parent, std::string_view key,
                                            const std::string& path) {
    const Json* value = field(parent, key);
    if (value == nullptr) {
        return std::nullopt;
    }
    return integer_value(*value, join(path, key));
}

std::optional<std::int64_t> Reader::integer_value(const Json& value, const std::string& path) {
    if (value.is_number_unsigned()) {
        auto u = value.get<std::uint64_t>();
        if (u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
            invalid(path, show(value) + " is out of range for an integer");
            return std::nullopt;
        }
        return static_cast<std::int64_t>(u);
    }
    if (!value.is_number_integer()) {
        invalid(path, "expected an integer, got " + show(value));
        return std::nullopt;
    }
    return value.get<std::int64_t>();
}

std::optional<std::int32_t> Reader::int32(const Json& parent, std::string_view key,
                                          const std::string& path) {
    const Json* value = field(parent, key);
    if (value == nullptr) {
        return std::nullopt;
    }
    return int32_value(*value, join(path, key));
}

std::optional<std::int32_t> Reader::int32_value(const Json& value, const std::string& path) {
    auto wide = integer_value(value, path);
    if (!wide) {
        return std::nullopt;
    }
    if (*wide < std::numeric_limits<std::int32_t>::min() ||
        *wide > std::numeric_limits<std::int32_t>::max()) {
        invalid(path, std::to_string(*wide) + " is out of range for a 32-bit integer");
        return std::nullopt;
    }
    return static_cast<std::int32_t>(*wide);
}

std::optional<double> Reader::number(const Json& parent, std::string_view key,
                                     const std::string& path) {
    const Json* value = field(parent, key);
    if (value == nullptr) {
        return std::nullopt;
    }
    if (!value->is_number()) {
        invalid(join(path, key), "expected a number, got " + show(*value));
        return std::nullopt;
    }
    return value->get<double>();
}

std::optional<StringMap> Reader::string_map(const Json& parent, std::string_view key,
                                            const std::string& path) {
    const Json* value = object(parent, key, path);
    if (value == nullptr) {
        return std::nullopt;
    }
    StringMap out;
    for (auto it = value->begin(); it != value->end(); ++it) {
        if (!it->is_string()) {
            invalid(join(join(path, key), it.key()), "expected a string, got " + show(*it));
            return std::nullopt;
        }
        out.emplace(it.key(), it->get<std::string>());
    }
    return out;
}

std::optional<std::vector<std::string>> Reader::string_list(const Json& parent,
                                                            std::string_view key,
                                                            const std::string& path) {
    const Json* value = array(parent, key, path);
    if (value == nullptr) {
        return std::nullopt;
    }
    std::vector<std::string> out;
    for (std::size_t i = 0; i < value->size(); ++i) {
        const Json& item = (*value)[i];
        if (!item.is_string()) {
            invalid(index(join(path, key), i), "expected a string, got " + show(item));
            return std::nullopt;
        }
        out.push_back(item.get<std::string>());
    }
    return out;
}

std::optional<std::string> Reader::one_of(const Json& parent, std::string_view key,
                                          const std::string& path,
                                          std::initializer_list<std::string_view> allowed) {
    auto value = string(parent, key, path);
    if (!value) {
        return std::nullopt;
    }
    for (std::string_view candidate : allowed) {
        if (*value == candidate) {
            return value;
        }
    }
    std::string list;
    for (std::string_view candidate : allowed) {
        if (candidate.empty()) {
            continue;
        }
        list += list.empty() ? "" : ", ";
        list += candidate;
    }
    invalid(join(path, key), show(Json(*value)) + " is not one of " + list);
    return std::nullopt;
}

std::string Reader::required_string(const Json& parent, std::string_view key,
                                    const std::string& path) {
    auto value = string(parent, key, path);
    if (ok() && (!value || value->empty())) {
        invalid(join(path, key), "is required");
    }
    return value.value_or("");
}

ObjectMeta Reader::metadata(const Json& object) {
    ObjectMeta meta;
    const Json* m = this->object(object, "metadata", "");
    if (m == nullptr) {
        if (ok()) {
            invalid("metadata", "is required");
        }
        return meta;
    }
    const std::string path = "metadata";
    meta.name = required_string(*m, "name", path);
    meta.ns = string(*m, "namespace", path).value_or("");
    meta.uid = string(*m, "uid", path).value_or("");
    meta.generation = integer(*m, "generation", path).value_or(0);
    meta.resource_version = string(*m, "resourceVersion", path).value_or("");
    meta.labels = string_map(*m, "labels", path).value_or(StringMap{});
    meta.annotations = string_map(*m, "annotations", path).value_or(StringMap{});
    meta.finalizers = string_list(*m, "finalizers", path).value_or(std::vector<std::string>{});
    meta.deletion_timestamp = string(*m, "deletionTimestamp", path);
    return meta;
}

std::vector<Condition> Reader::conditions(const Json& parent, const std::string& path) {
    std::vector<Condition> out;
    const Json* items = array(parent, "conditions", path);
    if (items == nullptr) {
        return out;
    }
    for (std::size_t i = 0; i < items->size() && ok(); ++i) {
        const std::string item_path = index(join(path, "conditions"), i);
        const Json& item = (*items)[i];
        if (!item.is_object()) {
            invalid(item_path, "expected an object, got " + show(item));
            break;
        }
        Condition c;
        c.type = required_string(item, "type", item_path);
        c.status = string(item, "status", item_path).value_or("");
        c.last_update_time = string(item, "lastUpdateTime", item_path).value_or("");
        c.last_transition_time = string(item, "lastTransitionTime", item_path).value_or("");
        c.reason = string(item, "reason", item_path).value_or("");
        c.message = string(item, "message", item_path).value_or("");
        out.push_back(std::move(c));
    }
    return out;
}

}  // namespace detail

Result<std::chrono::milliseconds> parse_duration(std::string_view text) {
    auto bad = [&] {
        return fail(ErrorKind::kInvalid, "invalid duration \"" + text::clip(text, 64) + "\"");
    };
    if (text == "0") {
        return std::chrono::milliseconds{0};
    }
    if (text.empty()) {
        return bad();
    }
    double total_ns = 0;
    std::size_t i = 0;
    while (i < text.size()) {
        const std::size_t start = i;
        double value = 0;
        while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i])) != 0) {
            value = value * 10 + (text[i] - '0');
            ++i;
        }
        bool digits = i > start;
        if (i < text.size() && text[i] == '.') {
            ++i;
            double scale = 0.1;
            while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i])) != 0) {
                value += (text[i] - '0') * scale;
                scale /= 10;
                digits = true;
                ++i;
            }
        }
        if (!digits) {
            return bad();
        }
        const std::size_t unit_start = i;
        while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i])) == 0 &&
               text[i] != '.') {
            ++i;
        }
        const std::string_view unit = text.substr(unit_start, i - unit_start);
        double ns_per_unit = 0;
        if (unit == "ns") {
            ns_per_unit = 1;
        } else if (unit == "us" || unit == "\xc2\xb5s" || unit == "\xce\xbcs") {
            ns_per_unit = 1e3;
        } else if (unit == "ms") {
            ns_per_unit = 1e6;
        } else if (unit == "s") {
            ns_per_unit = 1e9;
        } else if (unit == "m") {
            ns_per_unit = 60e9;
        } else if (unit == "h") {
            ns_per_unit = 3600e9;
        } else {
            return bad();
        }
        total_ns += value * ns_per_unit;
    }
    // Go's time.Duration is an int64 of nanoseconds.
    if (total_ns > 9.2e18) {
        return bad();
    }
    return std::chrono::milliseconds{static_cast<std::int64_t>(total_ns / 1e6)};
}

namespace {

using detail::Reader;

/// A duration field constrained by the CRD pattern ^[0-9]+(m|s) and parseable as a Go duration.
std::optional<std::chrono::milliseconds> read_interval(Reader& r, const Json& parent,
                                                       std::string_view key,
                                                       const std::string& path, std::string& raw) {
    auto text = r.string(parent, key, path);
    if (!text) {
        return std::nullopt;
    }
    std::size_t digits = 0;
    while (digits < text->size() &&
           std::isdigit(static_cast<unsigned char>((*text)[digits])) != 0) {
        ++digits;
    }
    auto parsed = parse_duration(*text);
    if (digits == 0 || digits == text->size() ||
        ((*text)[digits] != 'm' && (*text)[digits] != 's') || !parsed) {
        r.invalid(Reader::join(path, key),
                  Reader::show(Json(*text)) + " is not a duration like 30s or 1m");
        return std::nullopt;
    }
    raw = *text;
    return *parsed;
}

/// An int32 weight that must not be negative (and not above `max`).
std::optional<std::int32_t> read_weight(Reader& r, const Json& parent, std::string_view key,
                                        const std::string& path, std::int32_t max = -1) {
    auto value = r.int32(parent, key, path);
    if (value && (*value < 0 || (max >= 0 && *value > max))) {
        r.invalid(
            Reader::join(path, key),
            std::to_string(*value) + (max >= 0 ? " is not between 0 and " + std::to_string(max)
                                               : std::string(" must not be negative")));
        return std::nullopt;
    }
    return value;
}

/// A passthrough value copied verbatim; null when absent.
Json read_raw(Reader& r, const Json& parent, std::string_view key, const std::string& path,
              bool want_array) {
    const Json* value = want_array ? r.array(parent, key, path) : r.object(parent, key, path);
    return value == nullptr ? Json() : *value;
}

/// Iterates the objects of an array field, calling `fn(item, item_path)`.
template <class Fn>
void for_each_object(Reader& r, const Json& parent, std::string_view key, const std::string& path,
                     Fn&& fn) {
    const Json* items = r.array(parent, key, path);
    if (items == nullptr) {
        return;
    }
    for (std::size_t i = 0; i < items->size() && r.ok(); ++i) {
        const std::string item_path = Reader::index(Reader::join(path, key), i);
        const Json& item = (*items)[i];
        if (!item.is_object()) {
            r.invalid(item_path, "expected an object, got " + Reader::show(item));
            return;
        }
        fn(item, item_path);
    }
}

TargetRef read_target_ref(Reader& r, const Json& spec) {
    TargetRef ref;
    const Json* t = r.object(spec, "targetRef", "spec");
    if (t == nullptr) {
        if (r.ok()) {
            r.invalid("spec.targetRef", "is required");
        }
        return ref;
    }
    const std::string path = "spec.targetRef";
    ref.api_version = r.required_string(*t, "apiVersion", path);
    ref.kind = r.one_of(*t, "kind", path, {"Deployment", "DaemonSet", "Service"}).value_or("");
    if (r.ok() && ref.kind.empty()) {
        r.invalid(path + ".kind", "is required");
    }
    ref.name = r.required_string(*t, "name", path);
    return ref;
}

std::optional<AutoscalerRef> read_autoscaler_ref(Reader& r, const Json& spec) {
    const Json* a = r.object(spec, "autoscalerRef", "spec");
    if (a == nullptr) {
        return std::nullopt;
    }
    const std::string path = "spec.autoscalerRef";
    AutoscalerRef ref;
    ref.api_version = r.string(*a, "apiVersion", path).value_or("");
    ref.kind = r.one_of(*a, "kind", path, {"HorizontalPodAutoscaler", "ScaledObject"}).value_or("");
    ref.name = r.required_string(*a, "name", path);
    ref.primary_scaler_queries =
        r.string_map(*a, "primaryScalerQueries", path).value_or(StringMap{});
    if (const Json* rep = r.object(*a, "primaryScalerReplicas", path)) {
        const std::string rep_path = path + ".primaryScalerReplicas";
        ref.primary_scaler_replicas = ScalerReplicas{r.int32(*rep, "minReplicas", rep_path),
                                                     r.int32(*rep, "maxReplicas", rep_path)};
    }
    return ref;
}

std::optional<LocalObjectRef> read_local_ref(Reader& r, const Json& spec, std::string_view key,
                                             std::string_view kind) {
    const Json* o = r.object(spec, key, "spec");
    if (o == nullptr) {
        return std::nullopt;
    }
    const std::string path = Reader::join("spec", key);
    LocalObjectRef ref;
    ref.api_version = r.string(*o, "apiVersion", path).value_or("");
    ref.kind = r.one_of(*o, "kind", path, {kind}).value_or("");
    ref.name = r.required_string(*o, "name", path);
    return ref;
}

std::optional<UpstreamRef> read_upstream_ref(Reader& r, const Json& spec) {
    const Json* o = r.object(spec, "upstreamRef", "spec");
    if (o == nullptr) {
        return std::nullopt;
    }
    const std::string path = "spec.upstreamRef";
    UpstreamRef ref;
    ref.api_version = r.string(*o, "apiVersion", path).value_or("");
    ref.kind = r.one_of(*o, "kind", path, {"Upstream"}).value_or("");
    ref.name = r.required_string(*o, "name", path);
    ref.ns = r.string(*o, "namespace", path).value_or("");
    return ref;
}

std::optional<CustomMetadata> read_custom_metadata(Reader& r, const Json& parent,
                                                   std::string_view key, const std::string& path) {
    const Json* o = r.object(parent, key, path);
    if (o == nullptr) {
        return std::nullopt;
    }
    const std::string sub = Reader::join(path, key);
    return CustomMetadata{r.string_map(*o, "labels", sub).value_or(StringMap{}),
                          r.string_map(*o, "annotations", sub).value_or(StringMap{})};
}

CanaryService read_service(Reader& r, const Json& spec, const std::string& target_name) {
    CanaryService s;
    const Json* o = r.object(spec, "service", "spec");
    const std::string path = "spec.service";
    if (o == nullptr) {
        if (r.ok()) {
            r.invalid(path, "is required");
        }
        return s;
    }
    s.name = r.string(*o, "name", path).value_or("");
    if (s.name.empty()) {
        s.name = target_name;
    }
    auto port = r.int32(*o, "port", path);
    if (r.ok() && !port) {
        r.invalid(path + ".port", "is required");
    }
    s.port = port.value_or(0);
    s.port_name = r.string(*o, "portName", path).value_or("");
    if (s.port_name.empty()) {
        s.port_name = "http";
    }
    s.target_port = s.port;
    if (const Json* tp = Reader::field(*o, "targetPort")) {
        if (tp->is_string()) {
            s.target_port = tp->get<std::string>();
        } else if (tp->is_number_integer()) {
            if (auto v = r.int32(*o, "targetPort", path)) {
                s.target_port = *v;
            }
        } else {
            r.invalid(path + ".targetPort",
                      "expected an integer or a string, got " + Reader::show(*tp));
        }
    }
    s.app_protocol = r.string(*o, "appProtocol", path).value_or("");
    s.traffic_distribution = r.one_of(*o, "trafficDistribution", path,
                                      {"", "PreferClose", "PreferSameZone", "PreferSameNode"})
                                 .value_or("");
    s.port_discovery = r.boolean(*o, "portDiscovery", path).value_or(false);
    s.headless = r.boolean(*o, "headless", path).value_or(false);
    s.timeout = r.string(*o, "timeout", path).value_or("");
    s.backend_timeout = r.string(*o, "backendTimeout", path).value_or("");
    s.gateways = r.string_list(*o, "gateways", path).value_or(std::vector<std::string>{});
    for_each_object(r, *o, "gatewayRefs", path, [&](const Json& item, const std::string& p) {
        GatewayRef g;
        if (auto v = r.string(item, "group", p); v && !v->empty()) {
            g.group = *v;
        }
        if (auto v = r.string(item, "kind", p); v && !v->empty()) {
            g.kind = *v;
        }
        g.ns = r.string(item, "namespace", p).value_or("");
        g.name = r.required_string(item, "name", p);
        g.section_name = r.string(item, "sectionName", p);
        g.port = r.int32(item, "port", p);
        s.gateway_refs.push_back(std::move(g));
    });
    s.hosts = r.string_list(*o, "hosts", path).value_or(std::vector<std::string>{});
    s.delegation = r.boolean(*o, "delegation", path).value_or(false);
    s.mesh_name = r.string(*o, "meshName", path).value_or("");
    s.backends = r.string_list(*o, "backends", path).value_or(std::vector<std::string>{});
    s.apex = read_custom_metadata(r, *o, "apex", path);
    s.primary = read_custom_metadata(r, *o, "primary", path);
    s.canary = read_custom_metadata(r, *o, "canary", path);
    if (const Json* um = r.object(*o, "unmanagedMetadata", path)) {
        const std::string um_path = path + ".unmanagedMetadata";
        s.unmanaged_metadata = UnmanagedMetadata{
            r.string_list(*um, "annotations", um_path).value_or(std::vector<std::string>{}),
            r.string_list(*um, "labels", um_path).value_or(std::vector<std::string>{})};
    }
    s.traffic_policy = read_raw(r, *o, "trafficPolicy", path, false);
    s.match = read_raw(r, *o, "match", path, true);
    s.rewrite = read_raw(r, *o, "rewrite", path, false);
    s.retries = read_raw(r, *o, "retries", path, false);
    s.headers = read_raw(r, *o, "headers", path, false);
    s.cors_policy = read_raw(r, *o, "corsPolicy", path, false);
    s.mirror = read_raw(r, *o, "mirror", path, true);
    return s;
}

/// A number of `o` that must lie in [low, high] (open at `low` when `open_low`).
std::optional<double> bounded_number(Reader& r, const Json& o, std::string_view key,
                                     const std::string& path, double low, double high,
                                     bool open_low) {
    auto value = r.number(o, key, path);
    if (value && (*value < low || *value > high || (open_low && *value == low))) {
        r.invalid(Reader::join(path, key),
                  Reader::show(Json(*value)) + " is not in " + (open_low ? "(" : "[") +
                      Reader::show(Json(low)) + ", " + Reader::show(Json(high)) + "]");
        return std::nullopt;
    }
    return value;
}

MetricJudge read_metric_judge(Reader& r, const Json& o, const std::string& path) {
    MetricJudge j;
    j.direction = r.one_of(o, "direction", path, {"either", "increase", "decrease"}).value_or("either");
    j.tolerance = bounded_number(r, o, "tolerance", path, 0, 1e9, false).value_or(0.25);
    if (auto confidence = r.number(o, "confidence", path)) {
        if (*confidence <= 0 || *confidence >= 1) {
            r.invalid(Reader::join(path, "confidence"),
                      Reader::show(Json(*confidence)) + " is not in (0, 1)");
        }
        j.confidence = *confidence;
    }
    if (const Json* effect = r.object(o, "effectSize", path)) {
        const std::string e_path = Reader::join(path, "effectSize");
        j.effect_size.measure = r.one_of(*effect, "measure", e_path, {"meanRatio", "cles"})
                                    .value_or("meanRatio");
        j.effect_size.allowed_increase = r.number(*effect, "allowedIncrease", e_path);
        j.effect_size.allowed_decrease = r.number(*effect, "allowedDecrease", e_path);
        j.effect_size.critical_increase = r.number(*effect, "criticalIncrease", e_path);
        j.effect_size.critical_decrease = r.number(*effect, "criticalDecrease", e_path);
    }
    j.critical = r.boolean(o, "critical", path).value_or(false);
    j.must_have_data = r.boolean(o, "mustHaveData", path).value_or(false);
    j.remove_outliers = r.one_of(o, "outliers", path, {"keep", "remove"}).value_or("keep") == "remove";
    j.outlier_factor = bounded_number(r, o, "outlierFactor", path, 0, 1e9, true).value_or(3.0);
    std::string raw;
    if (auto step = read_interval(r, o, "step", path, raw)) {
        if (step->count() < 1000) {
            r.invalid(Reader::join(path, "step"), Reader::show(Json(raw)) + " is below 1s");
        }
        j.step = *step;
    }
    return j;
}

CanaryMetric read_metric(Reader& r, const Json& item, const std::string& path) {
    CanaryMetric m;
    m.name = r.required_string(item, "name", path);
    if (auto d = read_interval(r, item, "interval", path, m.interval)) {
        m.interval_duration = *d;
    }
    if (const Json* tr = r.object(item, "thresholdRange", path)) {
        const std::string tr_path = path + ".thresholdRange";
        m.threshold_range =
            ThresholdRange{r.number(*tr, "min", tr_path), r.number(*tr, "max", tr_path)};
    }
    m.threshold = r.number(item, "threshold", path);
    m.query = r.string(item, "query", path).value_or("");
    if (const Json* ref = r.object(item, "templateRef", path)) {
        const std::string ref_path = path + ".templateRef";
        m.template_ref = TemplateRef{r.required_string(*ref, "name", ref_path),
                                     r.string(*ref, "namespace", ref_path).value_or("")};
    }
    m.template_variables = r.string_map(item, "templateVariables", path).value_or(StringMap{});
    const std::string no_data = r.one_of(item, "noData", path, {"fail", "pass", "hold"}).value_or("fail");
    m.no_data = no_data == "pass"   ? NoDataPolicy::kPass
                : no_data == "hold" ? NoDataPolicy::kHold
                                    : NoDataPolicy::kFail;
    if (auto limit = r.int32(item, "errorLimit", path)) {
        if (*limit < 0) {
            r.invalid(Reader::join(path, "errorLimit"),
                      std::to_string(*limit) + " is negative");
        }
        m.error_limit = std::max(0, *limit);
    }
    if (const Json* judge = r.object(item, "judge", path)) {
        m.judge = read_metric_judge(r, *judge, Reader::join(path, "judge"));
    }
    return m;
}

CanaryWebhook read_webhook(Reader& r, const Json& item, const std::string& path) {
    CanaryWebhook w;
    w.name = r.required_string(item, "name", path);
    w.type = r.one_of(item, "type", path,
                      {"", "confirm-rollout", "pre-rollout", "rollout", "confirm-traffic-increase",
                       "confirm-promotion", "post-rollout", "rollback", "event"})
                 .value_or("");
    w.url = r.required_string(item, "url", path);
    if (auto d = read_interval(r, item, "timeout", path, w.timeout)) {
        w.timeout_duration = *d;
    }
    w.retries = read_weight(r, item, "retries", path).value_or(0);
    w.disable_tls = r.boolean(item, "disableTLS", path).value_or(false);
    w.mute_alert = r.boolean(item, "muteAlert", path).value_or(false);
    w.metadata = r.string_map(item, "metadata", path).value_or(StringMap{});
    return w;
}

CanaryAnalysis read_analysis(Reader& r, const Json& o, const std::string& path) {
    CanaryAnalysis a;
    if (auto d = read_interval(r, o, "interval", path, a.interval)) {
        // Flagger clamps at 10s; Serin accepts intervals down to 1s.
        a.interval_duration = std::max(*d, std::chrono::milliseconds{1000});
    }
    a.threshold = r.int32(o, "threshold", path).value_or(0);
    if (a.threshold <= 0) {
        a.threshold = 1;
    }
    a.iterations = read_weight(r, o, "iterations", path).value_or(0);
    a.max_weight = read_weight(r, o, "maxWeight", path).value_or(0);
    if (a.max_weight == 0) {
        a.max_weight = 100;
    }
    a.step_weight = read_weight(r, o, "stepWeight", path).value_or(0);
    if (const Json* steps = r.array(o, "stepWeights", path)) {
        const std::string steps_path = path + ".stepWeights";
        for (std::size_t i = 0; i < steps->size() && r.ok(); ++i) {
            const std::string item_path = Reader::index(steps_path, i);
            auto w = r.int32_value((*steps)[i], item_path);
            if (!w) {
                break;
            }
            if (*w < 0) {
                r.invalid(item_path, std::to_string(*w) + " must not be negative");
                break;
            }
            a.step_weights.push_back(*w);
        }
    }
    a.step_weight_promotion = read_weight(r, o, "stepWeightPromotion", path).value_or(0);
    a.primary_ready_threshold = read_weight(r, o, "primaryReadyThreshold", path, 100).value_or(100);
    a.canary_ready_threshold = read_weight(r, o, "canaryReadyThreshold", path, 100).value_or(100);
    a.mirror = r.boolean(o, "mirror", path).value_or(false);
    a.mirror_weight = read_weight(r, o, "mirrorWeight", path, 100).value_or(0);
    a.match = read_raw(r, o, "match", path, true);
    if (const Json* sa = r.object(o, "sessionAffinity", path)) {
        const std::string sa_path = path + ".sessionAffinity";
        SessionAffinity s;
        s.cookie_name = r.required_string(*sa, "cookieName", sa_path);
        s.primary_cookie_name = r.string(*sa, "primaryCookieName", sa_path).value_or("");
        s.domain = r.string(*sa, "domain", sa_path).value_or("");
        s.http_only = r.boolean(*sa, "httpOnly", sa_path);
        s.max_age = r.int32(*sa, "maxAge", sa_path).value_or(0);
        if (s.max_age <= 0) {
            s.max_age = 86400;
        }
        s.partitioned = r.boolean(*sa, "partitioned", sa_path);
        s.path = r.string(*sa, "path", sa_path).value_or("");
        s.same_site =
            r.one_of(*sa, "sameSite", sa_path, {"", "Strict", "Lax", "None"}).value_or("");
        s.secure = r.boolean(*sa, "secure", sa_path);
        a.session_affinity = std::move(s);
    }
    for_each_object(r, o, "metrics", path, [&](const Json& item, const std::string& p) {
        a.metrics.push_back(read_metric(r, item, p));
    });
    if (const Json* judge = r.object(o, "judge", path)) {
        const std::string j_path = Reader::join(path, "judge");
        a.judge.pass = bounded_number(r, *judge, "pass", j_path, 0, 100, false).value_or(95);
        a.judge.marginal = bounded_number(r, *judge, "marginal", j_path, 0, 100, false);
        if (a.judge.marginal && *a.judge.marginal >= a.judge.pass) {
            r.invalid(Reader::join(j_path, "marginal"),
                      Reader::show(Json(*a.judge.marginal)) + " is not below pass (" +
                          Reader::show(Json(a.judge.pass)) + ")");
        }
    }
    for_each_object(r, o, "webhooks", path, [&](const Json& item, const std::string& p) {
        a.webhooks.push_back(read_webhook(r, item, p));
    });
    for_each_object(r, o, "alerts", path, [&](const Json& item, const std::string& p) {
        CanaryAlert alert;
        alert.name = r.required_string(item, "name", p);
        alert.severity = r.one_of(item, "severity", p, {"", "info", "warn", "error"}).value_or("");
        const Json* ref = r.object(item, "providerRef", p);
        if (ref == nullptr) {
            if (r.ok()) {
                r.invalid(p + ".providerRef", "is required");
            }
        } else {
            alert.provider_ref.name = r.required_string(*ref, "name", p + ".providerRef");
            alert.provider_ref.ns = r.string(*ref, "namespace", p + ".providerRef").value_or("");
        }
        a.alerts.push_back(std::move(alert));
    });
    return a;
}

/// A string Serin wrote into the status, read back bounded: a user with write access to the
/// status could put anything there.
std::string bounded(Reader& r, const Json& o, std::string_view key, const std::string& path) {
    return text::clip(r.string(o, key, path).value_or(""), text::kMaxMessageBytes);
}

/// Serin's additive runtime-control fields: paused, promotion, requests (the newest
/// kMaxHandledRequests kept).
void read_request_fields(Reader& r, const Json& o, const std::string& path, CanaryStatus& s) {
    if (const Json* paused = r.object(o, "paused", path)) {
        const std::string p = Reader::join(path, "paused");
        s.paused = PausedStatus{bounded(r, *paused, "since", p), bounded(r, *paused, "request", p)};
    }
    if (const Json* promotion = r.object(o, "promotion", path)) {
        const std::string p = Reader::join(path, "promotion");
        s.promotion = RequestedPromotion{bounded(r, *promotion, "request", p),
                                         r.boolean(*promotion, "full", p).value_or(false)};
    }
    const Json* items = r.array(o, "requests", path);
    if (items == nullptr) {
        return;
    }
    const std::size_t first =
        items->size() > kMaxHandledRequests ? items->size() - kMaxHandledRequests : 0;
    const std::string list_path = Reader::join(path, "requests");
    for (std::size_t i = first; i < items->size() && r.ok(); ++i) {
        const Json& item = (*items)[i];
        const std::string p = Reader::index(list_path, i);
        if (!item.is_object()) {
            r.invalid(p, "expected an object, got " + Reader::show(item));
            return;
        }
        HandledRequest h;
        h.name = bounded(r, item, "name", p);
        h.uid = bounded(r, item, "uid", p);
        h.action = bounded(r, item, "action", p);
        h.full = r.boolean(item, "full", p).value_or(false);
        h.requested_by = bounded(r, item, "requestedBy", p);
        h.result = bounded(r, item, "result", p);
        h.message = bounded(r, item, "message", p);
        h.time = bounded(r, item, "time", p);
        s.requests.push_back(std::move(h));
    }
}

CanaryStatus read_status(Reader& r, const Json& o, const std::string& path) {
    CanaryStatus s;
    s.phase =
        r.one_of(o, "phase", path,
                 {"", "Initializing", "Initialized", "Waiting", "Progressing", "WaitingPromotion",
                  "Promoting", "Finalising", "Succeeded", "Failed", "Terminating", "Terminated"})
            .value_or("");
    s.failed_checks = r.int32(o, "failedChecks", path).value_or(0);
    s.errored_checks = r.int32(o, "erroredChecks", path).value_or(0);
    if (const Json* judge = r.object(o, "judge", path)) {
        const std::string j_path = Reader::join(path, "judge");
        JudgeStatus j;
        j.score = r.number(*judge, "score", j_path).value_or(0);
        j.result = r.string(*judge, "result", j_path).value_or("");
        j.reason = r.string(*judge, "reason", j_path).value_or("");
        j.last_update_time = r.string(*judge, "lastUpdateTime", j_path).value_or("");
        for_each_object(r, *judge, "metrics", j_path, [&](const Json& item, const std::string& p) {
            JudgedMetricStatus m;
            m.name = r.string(item, "name", p).value_or("");
            m.classification = r.string(item, "classification", p).value_or("");
            m.ratio = r.number(item, "ratio", p);
            m.canary_samples = r.int32(item, "canarySamples", p).value_or(0);
            m.primary_samples = r.int32(item, "primarySamples", p).value_or(0);
            j.metrics.push_back(std::move(m));
        });
        s.judge = std::move(j);
    }
    s.canary_weight = r.int32(o, "canaryWeight", path).value_or(0);
    s.iterations = r.int32(o, "iterations", path).value_or(0);
    s.tracked_configs = r.string_map(o, "trackedConfigs", path);
    s.last_applied_spec = r.string(o, "lastAppliedSpec", path).value_or("");
    s.last_promoted_spec = r.string(o, "lastPromotedSpec", path).value_or("");
    s.last_transition_time = r.string(o, "lastTransitionTime", path).value_or("");
    s.last_step_time = bounded(r, o, "lastStepTime", path);
    s.conditions = r.conditions(o, path);
    s.session_affinity_cookie = r.string(o, "sessionAffinityCookie", path).value_or("");
    s.primary_session_affinity_cookie =
        r.string(o, "primarySessionAffinityCookie", path).value_or("");
    s.previous_session_affinity_cookie =
        r.string(o, "previousSessionAffinityCookie", path).value_or("");
    read_request_fields(r, o, path, s);
    return s;
}

}  // namespace

Result<Canary> decode_canary(const Json& object) {
    Reader r;
    if (!object.is_object()) {
        return fail(ErrorKind::kInvalid, "expected a Canary object, got " + Reader::show(object));
    }
    Canary c;
    c.metadata = r.metadata(object);
    const Json* spec = r.object(object, "spec", "");
    if (spec == nullptr && r.ok()) {
        r.invalid("spec", "is required");
    }
    if (spec != nullptr && r.ok()) {
        CanarySpec& s = c.spec;
        s.provider = r.string(*spec, "provider", "spec").value_or("");
        s.metrics_server = r.string(*spec, "metricsServer", "spec").value_or("");
        s.target_ref = read_target_ref(r, *spec);
        s.autoscaler_ref = read_autoscaler_ref(r, *spec);
        s.ingress_ref = read_local_ref(r, *spec, "ingressRef", "Ingress");
        s.route_ref = read_local_ref(r, *spec, "routeRef", "ApisixRoute");
        s.upstream_ref = read_upstream_ref(r, *spec);
        s.service = read_service(r, *spec, s.target_ref.name);
        if (const Json* a = r.object(*spec, "analysis", "spec")) {
            s.analysis = read_analysis(r, *a, "spec.analysis");
        } else if (const Json* legacy = r.object(*spec, "canaryAnalysis", "spec")) {
            s.analysis = read_analysis(r, *legacy, "spec.canaryAnalysis");
        }
        s.progress_deadline_seconds =
            read_weight(r, *spec, "progressDeadlineSeconds", "spec").value_or(600);
        s.skip_analysis = r.boolean(*spec, "skipAnalysis", "spec").value_or(false);
        s.revert_on_deletion = r.boolean(*spec, "revertOnDeletion", "spec").value_or(false);
        s.suspend = r.boolean(*spec, "suspend", "spec").value_or(false);
    }
    if (r.ok()) {
        if (const Json* status = r.object(object, "status", "")) {
            c.status = read_status(r, *status, "status");
        }
    }
    if (!r.ok()) {
        return r.error();
    }
    return c;
}

Json encode_status(const CanaryStatus& status) {
    Json out = Json::object();
    out["phase"] = status.phase;
    out["failedChecks"] = status.failed_checks;
    if (status.errored_checks != 0) {
        out["erroredChecks"] = status.errored_checks;
    }
    if (status.judge) {
        const JudgeStatus& j = *status.judge;
        Json metrics = Json::array();
        for (const JudgedMetricStatus& m : j.metrics) {
            Json item = {{"name", m.name},
                         {"classification", m.classification},
                         {"canarySamples", m.canary_samples},
                         {"primarySamples", m.primary_samples}};
            if (m.ratio && std::isfinite(*m.ratio)) {
                item["ratio"] = *m.ratio;
            }
            metrics.push_back(std::move(item));
        }
        out["judge"] = {{"score", j.score},       {"result", j.result},
                        {"reason", j.reason},     {"metrics", std::move(metrics)},
                        {"lastUpdateTime", j.last_update_time}};
    }
    out["canaryWeight"] = status.canary_weight;
    out["iterations"] = status.iterations;
    auto put = [&out](const char* key, const std::string& value) {
        if (!value.empty()) {
            out[key] = value;
        }
    };
    put("sessionAffinityCookie", status.session_affinity_cookie);
    put("primarySessionAffinityCookie", status.primary_session_affinity_cookie);
    put("previousSessionAffinityCookie", status.previous_session_affinity_cookie);
    if (status.tracked_configs) {
        out["trackedConfigs"] = *status.tracked_configs;
    }
    put("lastAppliedSpec", status.last_applied_spec);
    put("lastPromotedSpec", status.last_promoted_spec);
    put("lastTransitionTime", status.last_transition_time);
    put("lastStepTime", status.last_step_time);
    if (status.paused) {
        out["paused"] = {{"since", status.paused->since}, {"request", status.paused->request}};
    }
    if (status.promotion) {
        out["promotion"] = {{"request", status.promotion->request},
                            {"full", status.promotion->full}};
    }
    if (!status.requests.empty()) {
        Json requests = Json::array();
        for (const HandledRequest& h : status.requests) {
            requests.push_back({{"name", h.name},
                                {"uid", h.uid},
                                {"action", h.action},
                                {"full", h.full},
                                {"requestedBy", h.requested_by},
                                {"result", h.result},
                                {"message", h.message},
                                {"time", h.time}});
        }
        out["requests"] = std::move(requests);
    }
    // Argo CD's health check for Canaries concatenates every conditions[].message: both the
    // list and each message are always written, so it never meets a nil.
    {
        Json conditions = Json::array();
        for (const Condition& c : status.conditions) {
            Json item = {{"type", c.type}, {"status", c.status}, {"reason", c.reason}};
            if (!c.last_update_time.empty()) {
                item["lastUpdateTime"] = c.last_update_time;
            }
            if (!c.last_transition_time.empty()) {
                item["lastTransitionTime"] = c.last_transition_time;
            }
            item["message"] = c.message;
            conditions.push_back(std::move(item));
        }
        out["conditions"] = std::move(conditions);
    }
    return out;
}

Result<CanaryStatus> decode_status(const Json& status) {
    if (status.is_null()) {
        return CanaryStatus{};
    }
    if (!status.is_object()) {
        return fail(ErrorKind::kInvalid, "status: expected an object, got " + Reader::show(status));
    }
    Reader r;
    CanaryStatus s = read_status(r, status, "status");
    if (!r.ok()) {
        return r.error();
    }
    return s;
}

}  // namespace serin::api
