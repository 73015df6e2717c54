#include "meshes/gatewayapi/gatewayapi_router.hpp"

#include "platform/core/json.hpp"
#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <optional>
#include <tuple>
#include <utility>
#include <vector>

#include "crds/api/json_access.hpp"
#include "meshes/common/match.hpp"
#include "meshes/common/route_object.hpp"
#include "meshes/common/route_types.hpp"
#include "meshes/common/session_affinity.hpp"

namespace serin::meshes {

namespace asio = boost::asio;
using Json = nlohmann::json;

namespace {

Error invalid(const std::string& path, const std::string& message) {
    return fail(ErrorKind::kInvalid, path + ": " + message);
}

/// "<Kind> S.ns" of a live route (HTTPRoute when it names no kind).
std::string where(const RouteContext& context, const Json& route) {
    std::string kind = api::string_at(route, {"kind"});
    return (kind.empty() ? std::string("HTTPRoute") : kind) + " " + context.apex + "." +
           context.ns();
}

// ---- matches --------------------------------------------------------------------------------

/// One Istio StringMatch ({exact|prefix|regex: value}) as a Gateway API match type and value.
/// `types` maps the Istio keys this field supports to Gateway API types.
Result<std::pair<std::string, std::string>> string_match(
    const Json& match, const std::string& path,
    std::initializer_list<std::pair<std::string_view, std::string_view>> types) {
    if (!match.is_object() || match.size() != 1) {
        return invalid(path, "expected exactly one of exact, prefix or regex, got " + show_json(match));
    }
    const auto entry = match.begin();
    if (!entry->is_string()) {
        return invalid(path + "." + entry.key(), "expected a string, got " + entry->dump());
    }
    for (const auto& [istio, gateway] : types) {
        if (entry.key() == istio) {
            return std::pair{std::string(gateway), entry->get<std::string>()};
        }
    }
    return invalid(path, entry.key() + " matches are not supported by Gateway API");
}

/// Sorts [{name, ...}] by name, then by value: Serin's lists come from JSON objects, but the
/// order must not depend on where they came from.
void sort_by_name(Json& list) {
    std::stable_sort(list.begin(), list.end(), [](const Json& a, const Json& b) {
        const std::string an = api::string_at(a, {"name"});
        const std::string bn = api::string_at(b, {"name"});
        if (an != bn) {
            return an < bn;
        }
        return api::string_at(a, {"value"}) < api::string_at(b, {"value"});
    });
}

/// Istio `headers` / `queryParams` ({name: StringMatch}) as Gateway API [{name, type, value}].
Result<Json> named_matches(const Json& matches, const std::string& path) {
    if (!matches.is_object()) {
        return invalid(path, "expected an object, got " + show_json(matches));
    }
    Json out = Json::array();
    for (auto it = matches.begin(); it != matches.end(); ++it) {
        auto typed = string_match(*it, path + "." + it.key(),
                                  {{"exact", "Exact"}, {"regex", "RegularExpression"}});
        if (!typed) {
            return typed.error();
        }
        out.push_back(Json{{"name", it.key()}, {"type", typed->first}, {"value", typed->second}});
    }
    sort_by_name(out);
    return Result<Json>(boost::system::in_place_value, std::move(out));
}

constexpr std::string_view kMethods[] = {"GET",     "HEAD",    "POST",  "PUT",  "DELETE",
                                         "CONNECT", "OPTIONS", "TRACE", "PATCH"};

Json default_path() { return Json{{"type", "PathPrefix"}, {"value", "/"}}; }

/// One Istio HTTPMatchRequest as a Gateway API HTTPRouteMatch; nullopt when it sets nothing.
/// Every match carries `path`, the server's default when the Istio match has no uri.
Result<std::optional<Json>> gateway_match(const Json& match, const std::string& path) {
    if (!match.is_object()) {
        return invalid(path, "expected an object, got " + show_json(match));
    }
    Json out = Json::object();
    for (auto it = match.begin(); it != match.end(); ++it) {
        const std::string& key = it.key();
        const std::string field = path + "." + key;
        if (it->is_null() || key == "name") {
            continue;  // a label for Istio's logs, no condition
        }
        if (key == "uri") {
            auto typed = string_match(
                *it, field,
                {{"exact", "Exact"}, {"prefix", "PathPrefix"}, {"regex", "RegularExpression"}});
            if (!typed) {
                return typed.error();
            }
            out["path"] = Json{{"type", typed->first}, {"value", typed->second}};
        } else if (key == "method") {
            auto typed = string_match(*it, field, {{"exact", "Exact"}});
            if (!typed) {
                return typed.error();
            }
            const std::string& method = typed->second;
            if (std::find(std::begin(kMethods), std::end(kMethods), method) == std::end(kMethods)) {
                return invalid(field, "\"" + method +
                                          "\" is not an HTTP method Gateway API matches (GET, "
                                          "HEAD, POST, PUT, DELETE, CONNECT, OPTIONS, TRACE, "
                                          "PATCH)");
            }
            out["method"] = method;
        } else if (key == "headers" || key == "queryParams") {
            auto named = named_matches(*it, field);
            if (!named) {
                return named.error();
            }
            if (!named->empty()) {
                out[key] = std::move(*named);
            }
        } else if (key == "ignoreUriCase" && it->is_boolean() && !it->get<bool>()) {
            continue;
        } else {
            return invalid(field,
                           "not supported by Gateway API (it matches uri, method, "
                           "headers and queryParams)");
        }
    }
    if (out.empty()) {
        return std::optional<Json>{};
    }
    if (!out.contains("path")) {
        out["path"] = default_path();
    }
    return std::optional<Json>(std::move(out));
}

/// The Gateway API matches of an Istio match list (null: none); matches that set nothing are
/// dropped.
Result<Json> gateway_matches(const Json& matches, const std::string& path) {
    Json out = Json::array();
    if (matches.is_null()) {
        return Result<Json>(boost::system::in_place_value, std::move(out));
    }
    if (!matches.is_array()) {
        return invalid(path, "expected a list, got " + show_json(matches));
    }
    for (std::size_t i = 0; i < matches.size(); ++i) {
        auto match = gateway_match(matches[i], path + "[" + std::to_string(i) + "]");
        if (!match) {
            return match.error();
        }
        if (*match) {
            out.push_back(std::move(**match));
        }
    }
    return Result<Json>(boost::system::in_place_value, std::move(out));
}

// ---- GRPCRoute matches ----------------------------------------------------------------------

/// Whether `name` is a protobuf full name (package.Service) as GRPCMethodMatch accepts it.
bool grpc_service_name(std::string_view name) {
    if (name.starts_with('.')) {
        name.remove_prefix(1);
    }
    bool label_start = true;
    for (const char c : name) {
        const bool letter = std::isalpha(static_cast<unsigned char>(c)) != 0 || c == '_';
        if (c == '.') {
            if (label_start) {
                return false;
            }
            label_start = true;
        } else if (letter || (!label_start && std::isdigit(static_cast<unsigned char>(c)) != 0)) {
            label_start = false;
        } else {
            return false;
        }
    }
    return !label_start;
}

/// Whether `name` is a gRPC method name as GRPCMethodMatch accepts it.
bool grpc_method_name(std::string_view name) {
    return !name.empty() && name.find('.') == std::string_view::npos && grpc_service_name(name);
}

/// An Istio uri match of a gRPC call's path (/package.Service/Method) as a GRPCMethodMatch:
/// exact /S/M is that method, prefix /S/ (or /S) every method of S, prefix / every call (null).
Result<Json> grpc_method_match(const Json& uri, const std::string& path) {
    auto typed = string_match(uri, path, {{"exact", "Exact"}, {"prefix", "Prefix"}});
    if (!typed) {
        if (uri.is_object() && uri.contains("regex")) {
            return invalid(path + ".regex",
                           "GRPCRoute matches a method as /service/method (exact) or a service "
                           "as /service/ (prefix), not a path regex");
        }
        return typed.error();
    }
    const bool exact = typed->first == "Exact";
    std::string_view value = typed->second;
    const std::string field = path + "." + (exact ? "exact" : "prefix");
    const std::string expected =
        exact ? "expected /package.Service/Method" : "expected /package.Service/ or /";
    if (!value.starts_with('/')) {
        return invalid(field, expected + ", got \"" + typed->second + "\"");
    }
    value.remove_prefix(1);
    if (!exact && value.empty()) {
        return Result<Json>(boost::system::in_place_value, Json());
    }
    const std::size_t slash = value.find('/');
    const std::string_view service = value.substr(0, slash);
    const std::string_view method =
        slash == std::string_view::npos ? std::string_view() : value.substr(slash + 1);
    const bool shaped = exact ? grpc_service_name(service) && grpc_method_name(method)
                              : grpc_service_name(service) && method.empty();
    if (!shaped) {
        return invalid(field, expected + ", got \"" + typed->second + "\"");
    }
    Json out{{"type", "Exact"}, {"service", std::string(service)}};
    if (exact) {
        out["method"] = std::string(method);
    }
    return Result<Json>(boost::system::in_place_value, std::move(out));
}

/// One Istio HTTPMatchRequest as a GRPCRouteMatch; nullopt when it sets nothing.
Result<std::optional<Json>> grpc_match(const Json& match, const std::string& path) {
    if (!match.is_object()) {
        return invalid(path, "expected an object, got " + show_json(match));
    }
    Json out = Json::object();
    for (auto it = match.begin(); it != match.end(); ++it) {
        const std::string& key = it.key();
        const std::string field = path + "." + key;
        if (it->is_null() || key == "name") {
            continue;
        }
        if (key == "uri") {
            auto method = grpc_method_match(*it, field);
            if (!method) {
                return method.error();
            }
            if (!method->is_null()) {
                out["method"] = std::move(*method);
            }
        } else if (key == "headers") {
            auto named = named_matches(*it, field);
            if (!named) {
                return named.error();
            }
            if (!named->empty()) {
                out[key] = std::move(*named);
            }
        } else if (key == "ignoreUriCase" && it->is_boolean() && !it->get<bool>()) {
            continue;
        } else {
            return invalid(field,
                           "not supported by GRPCRoute (it matches uri as /service/method and "
                           "headers)");
        }
    }
    if (out.empty()) {
        return std::optional<Json>{};
    }
    return std::optional<Json>(std::move(out));
}

/// The GRPCRoute matches of an Istio match list (null: none); matches that set nothing are
/// dropped.
Result<Json> grpc_matches(const Json& matches, const std::string& path) {
    Json out = Json::array();
    if (matches.is_null()) {
        return Result<Json>(boost::system::in_place_value, std::move(out));
    }
    if (!matches.is_array()) {
        return invalid(path, "expected a list, got " + show_json(matches));
    }
    for (std::size_t i = 0; i < matches.size(); ++i) {
        auto match = grpc_match(matches[i], path + "[" + std::to_string(i) + "]");
        if (!match) {
            return match.error();
        }
        if (*match) {
            out.push_back(std::move(**match));
        }
    }
    return Result<Json>(boost::system::in_place_value, std::move(out));
}

Json or_default_matches(Json matches) {
    if (matches.empty()) {
        return Json::array({Json{{"path", default_path()}}});
    }
    return matches;
}

/// `matches` each narrowed to requests whose Cookie header carries `cookie` (no matches: all
/// requests, so one match on the cookie alone).
Json with_cookie(Json matches, const std::string& cookie) {
    if (matches.empty()) {
        matches = Json::array({Json::object()});
    }
    for (Json& match : matches) {
        Json& headers = match["headers"];
        if (!headers.is_array()) {
            headers = Json::array();
        }
        headers.push_back(Json{{"name", "Cookie"},
                               {"type", "RegularExpression"},
                               {"value", cookie_header_regex(cookie)}});
        sort_by_name(headers);
    }
    return matches;
}

// ---- filters --------------------------------------------------------------------------------

/// Istio {request|response: {set, add, remove}} half as a Gateway API HTTPHeaderFilter, or null
/// when it changes nothing.
Result<Json> header_modifier(const Json& istio, const std::string& path) {
    if (!istio.is_object()) {
        return invalid(path, "expected an object, got " + show_json(istio));
    }
    Json out = Json::object();
    for (const char* key : {"set", "add"}) {
        const Json* values = api::member(istio, key);
        if (values == nullptr) {
            continue;
        }
        const std::string field = path + "." + key;
        if (!values->is_object()) {
            return invalid(field, "expected an object of header values, got " + values->dump());
        }
        Json list = Json::array();
        for (auto it = values->begin(); it != values->end(); ++it) {
            if (!it->is_string()) {
                return invalid(field + "." + it.key(), "expected a string, got " + it->dump());
            }
            list.push_back(Json{{"name", it.key()}, {"value", *it}});
        }
        sort_by_name(list);
        if (!list.empty()) {
            out[key] = std::move(list);
        }
    }
    if (const Json* remove = api::member(istio, "remove")) {
        if (!remove->is_array()) {
            return invalid(path + ".remove",
                           "expected a list of header names, got " + remove->dump());
        }
        for (const Json& name : *remove) {
            if (!name.is_string()) {
                return invalid(path + ".remove", "expected header names, got " + show_json(name));
            }
        }
        if (!remove->empty()) {
            out["remove"] = *remove;
        }
    }
    if (out.empty()) {
        return Result<Json>(boost::system::in_place_value, Json());
    }
    return Result<Json>(boost::system::in_place_value, std::move(out));
}

/// Istio rewrite {uri, authority, type} as a URLRewrite filter, or null when it rewrites nothing.
Result<Json> url_rewrite(const Json& rewrite, const std::string& path) {
    if (!rewrite.is_object()) {
        return invalid(path, "expected an object, got " + show_json(rewrite));
    }
    if (api::member(rewrite, "uriRegexRewrite") != nullptr) {
        return invalid(path + ".uriRegexRewrite", "not supported by Gateway API");
    }
    const std::string type = api::string_at(rewrite, {"type"});
    if (!type.empty() && type != "ReplaceFullPath" && type != "ReplacePrefixMatch") {
        return invalid(path + ".type",
                       "\"" + type + "\" is not ReplaceFullPath or ReplacePrefixMatch");
    }
    const std::string uri = api::string_at(rewrite, {"uri"});
    const std::string authority = api::string_at(rewrite, {"authority"});
    Json out = Json::object();
    if (!uri.empty()) {
        out["path"] = type == "ReplacePrefixMatch"
                          ? Json{{"type", "ReplacePrefixMatch"}, {"replacePrefixMatch", uri}}
                          : Json{{"type", "ReplaceFullPath"}, {"replaceFullPath", uri}};
    }
    if (!authority.empty()) {
        out["hostname"] = authority;
    }
    if (out.empty()) {
        return Result<Json>(boost::system::in_place_value, Json());
    }
    return Result<Json>(boost::system::in_place_value,
                        Json{{"type", "URLRewrite"}, {"urlRewrite", std::move(out)}});
}

/// A mirror (RequestMirror) of the service's traffic to the Service `name`.
Json mirror_filter(const std::string& name, std::int32_t port) {
    return Json{
        {"type", "RequestMirror"},
        {"requestMirror",
         {{"backendRef", {{"group", ""}, {"kind", "Service"}, {"name", name}, {"port", port}}}}}};
}

/// One spec.service.mirror entry (HTTPRequestMirrorFilter) as a RequestMirror filter.
Result<Json> service_mirror(const Json& mirror, const std::string& path) {
    if (!mirror.is_object()) {
        return invalid(path, "expected an object, got " + show_json(mirror));
    }
    for (const char* key : {"percent", "fraction"}) {
        if (api::member(mirror, key) != nullptr) {
            // Dropping it would mirror all traffic instead of a part.
            return invalid(path + "." + key,
                           "not in the Gateway API v1.2.1 standard channel, which mirrors all "
                           "requests");
        }
    }
    const Json* ref = api::member(mirror, "backendRef");
    const std::string name = ref != nullptr ? api::string_at(*ref, {"name"}) : "";
    if (name.empty()) {
        return invalid(path + ".backendRef.name", "must be set");
    }
    Json backend{{"group", ""}, {"kind", "Service"}, {"name", name}};
    for (const char* key : {"group", "kind", "namespace"}) {
        if (const Json* value = api::member(*ref, key); value != nullptr && value->is_string()) {
            if (!value->get_ref<const std::string&>().empty()) {
                backend[key] = *value;
            }
        }
    }
    if (const Json* port = api::member(*ref, "port")) {
        if (!port->is_number_integer()) {
            return invalid(path + ".backendRef.port", "expected an integer, got " + port->dump());
        }
        backend["port"] = *port;
    }
    return Result<Json>(
        boost::system::in_place_value,
        Json{{"type", "RequestMirror"}, {"requestMirror", {{"backendRef", backend}}}});
}

/// A list of strings at corsPolicy.`key`, or nullopt when absent.
Result<std::optional<Json>> string_list(const Json& object, const char* key,
                                        const std::string& path) {
    const Json* list = api::member(object, key);
    if (list == nullptr) {
        return std::optional<Json>{};
    }
    const bool strings =
        list->is_array() &&
        std::all_of(list->begin(), list->end(), [](const Json& v) { return v.is_string(); });
    if (!strings) {
        return invalid(path + "." + key, "expected a list of strings, got " + list->dump());
    }
    return std::optional<Json>(*list);
}

/// Istio corsPolicy as a CORS filter (experimental channel; see the header).
Result<Json> cors_filter(const Json& policy, const std::string& path) {
    if (!policy.is_object()) {
        return invalid(path, "expected an object, got " + show_json(policy));
    }
    Json cors = Json::object();
    // Istio's allowOrigins are StringMatches, which Gateway API's origin list cannot express.
    const std::pair<const char*, const char*> lists[] = {{"allowOrigin", "allowOrigins"},
                                                         {"allowMethods", "allowMethods"},
                                                         {"allowHeaders", "allowHeaders"},
                                                         {"exposeHeaders", "exposeHeaders"}};
    for (const auto& [istio, gateway] : lists) {
        auto list = string_list(policy, istio, path);
        if (!list) {
            return list.error();
        }
        if (*list && !(*list)->empty()) {
            cors[gateway] = std::move(**list);
        }
    }
    if (const Json* credentials = api::member(policy, "allowCredentials")) {
        if (!credentials->is_boolean()) {
            return invalid(path + ".allowCredentials",
                           "expected a boolean, got " + credentials->dump());
        }
        if (credentials->get<bool>()) {
            cors["allowCredentials"] = true;  // the field accepts only true
        }
    }
    std::int64_t max_age = 5;  // Gateway API's default, written so the read-back compares equal
    if (const Json* age = api::member(policy, "maxAge")) {
        auto duration =
            age->is_string()
                ? api::parse_duration(age->get<std::string>())
                : Result<std::chrono::milliseconds>(fail(ErrorKind::kInvalid, "not a string"));
        if (!duration || duration->count() < 0) {
            return invalid(path + ".maxAge", "expected a duration such as 24h, got " + age->dump());
        }
        max_age = std::chrono::duration_cast<std::chrono::seconds>(*duration).count();
    }
    cors["maxAge"] = max_age;
    return Result<Json>(boost::system::in_place_value,
                        Json{{"type", "CORS"}, {"cors", std::move(cors)}});
}

/// The rule filters every rule of the route carries, in Flagger's order.
Result<Json> service_filters(const api::CanaryService& service, bool v1) {
    Json filters = Json::array();
    if (service.headers.is_object()) {
        const std::pair<const char*, const char*> halves[] = {
            {"request", "RequestHeaderModifier"}, {"response", "ResponseHeaderModifier"}};
        for (const auto& [half, type] : halves) {
            const Json* istio = api::member(service.headers, half);
            if (istio == nullptr) {
                continue;
            }
            auto modifier = header_modifier(*istio, std::string("spec.service.headers.") + half);
            if (!modifier) {
                return modifier.error();
            }
            if (!modifier->is_null()) {
                std::string key = type;
                key[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(key[0])));
                filters.push_back(Json{{"type", type}, {key, std::move(*modifier)}});
            }
        }
    } else if (!service.headers.is_null()) {
        return invalid("spec.service.headers", "expected an object, got " + show_json(service.headers));
    }
    if (!service.rewrite.is_null()) {
        auto rewrite = url_rewrite(service.rewrite, "spec.service.rewrite");
        if (!rewrite) {
            return rewrite.error();
        }
        if (!rewrite->is_null()) {
            filters.push_back(std::move(*rewrite));
        }
    }
    if (service.mirror.is_array()) {
        for (std::size_t i = 0; i < service.mirror.size(); ++i) {
            auto mirror =
                service_mirror(service.mirror[i], "spec.service.mirror[" + std::to_string(i) + "]");
            if (!mirror) {
                return mirror.error();
            }
            filters.push_back(std::move(*mirror));
        }
    }
    if (v1 && !service.cors_policy.is_null()) {
        auto cors = cors_filter(service.cors_policy, "spec.service.corsPolicy");
        if (!cors) {
            return cors.error();
        }
        filters.push_back(std::move(*cors));
    }
    return Result<Json>(boost::system::in_place_value, std::move(filters));
}

/// The rule filters of a GRPCRoute: header modifiers and service mirrors as the HTTPRoute's;
/// what GRPCRoute (v1.2.1 standard) cannot express is an error naming the field.
Result<Json> grpc_service_filters(const api::CanaryService& service) {
    const std::pair<bool, const char*> refused[] = {
        {!service.rewrite.is_null(), "rewrite"},
        {!service.cors_policy.is_null(), "corsPolicy"},
        {!service.timeout.empty(), "timeout"},
        {!service.backend_timeout.empty(), "backendTimeout"}};
    for (const auto& [set, field] : refused) {
        if (set) {
            return invalid(std::string("spec.service.") + field,
                           "not supported by GRPCRoute (appProtocol grpc); leave it unset");
        }
    }
    return service_filters(service, false);
}

/// `filters` with a response header added: to the ResponseHeaderModifier already there (a rule
/// may hold one filter of each type but RequestMirror), else in a new one.
Json add_response_header(Json filters, const std::string& name, const std::string& value) {
    for (Json& filter : filters) {
        if (api::string_at(filter, {"type"}) == "ResponseHeaderModifier") {
            Json& add = filter["responseHeaderModifier"]["add"];
            if (!add.is_array()) {
                add = Json::array();
            }
            add.push_back(Json{{"name", name}, {"value", value}});
            sort_by_name(add);
            return filters;
        }
    }
    filters.push_back(Json{{"type", "ResponseHeaderModifier"},
                           {"responseHeaderModifier",
                            {{"add", Json::array({Json{{"name", name}, {"value", value}}})}}}});
    return filters;
}

// ---- timeouts -------------------------------------------------------------------------------

/// Whether `text` is a Gateway API Duration: 1 to 4 groups of 1 to 5 digits and h, m, s or ms.
bool gateway_duration(std::string_view text) {
    int groups = 0;
    std::size_t i = 0;
    while (i < text.size()) {
        const std::size_t digits = i;
        while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i])) != 0) {
            ++i;
        }
        if (i == digits || i - digits > 5 || i == text.size()) {
            return false;
        }
        if (text.substr(i, 2) == "ms") {
            i += 2;
        } else if (text[i] == 'h' || text[i] == 'm' || text[i] == 's') {
            ++i;
        } else {
            return false;
        }
        ++groups;
    }
    return groups >= 1 && groups <= 4;
}

Result<Json> rule_timeouts(const api::CanaryService& service) {
    struct Field {
        const std::string& value;
        const char* key;    ///< in HTTPRouteTimeouts
        const char* field;  ///< in spec.service
    };
    const Field fields[] = {{service.timeout, "request", "timeout"},
                            {service.backend_timeout, "backendRequest", "backendTimeout"}};
    Json timeouts = Json::object();
    for (const Field& f : fields) {
        if (f.value.empty()) {
            continue;
        }
        if (!gateway_duration(f.value)) {
            return invalid(std::string("spec.service.") + f.field,
                           "\"" + f.value +
                               "\" is not a Gateway API duration (whole numbers of h, m, s or ms, "
                               "e.g. 30s or 1m30s)");
        }
        timeouts[f.key] = f.value;
    }
    return Result<Json>(boost::system::in_place_value,
                        timeouts.empty() ? Json() : std::move(timeouts));
}

// ---- rules ----------------------------------------------------------------------------------

Json backend_ref(const std::string& name, std::int32_t port, int weight) {
    return Json{
        {"group", ""}, {"kind", "Service"}, {"name", name}, {"port", port}, {"weight", weight}};
}

/// What every rule of the route shares.
struct RuleParts {
    Json matches;   ///< the service matches, or the default match
    Json filters;   ///< the service filters
    Json timeouts;  ///< null when none
};

Json make_rule(const RuleParts& parts, Json matches, Json filters, Json backends) {
    Json rule{{"backendRefs", std::move(backends)}};
    if (!matches.empty()) {  // a GRPCRoute rule without matches takes every request
        rule["matches"] = std::move(matches);
    }
    if (!filters.empty()) {
        rule["filters"] = std::move(filters);
    }
    if (!parts.timeouts.is_null()) {
        rule["timeouts"] = parts.timeouts;
    }
    return rule;
}

/// The rules of §4.5 around `weighted`, or nullopt when no cookie is in play.
std::optional<Json> session_rules(const RouteContext& context, const analysis::Routes& routes,
                                  const api::SessionAffinity& affinity, const RuleParts& parts,
                                  Json weighted, bool v1) {
    const api::CanaryStatus& status = context.canary.status;
    const std::int32_t port = context.canary.spec.service.port;
    if (routes.canary != 0 && !status.session_affinity_cookie.empty()) {
        const std::string& cookie = status.session_affinity_cookie;
        const std::string& primary_cookie = status.primary_session_affinity_cookie;
        const bool sticky_primary = v1 && !primary_cookie.empty();
        Json rules = Json::array();
        rules.push_back(make_rule(parts, with_cookie(parts.matches, cookie), parts.filters,
                                  Json::array({backend_ref(context.primary, port, 0),
                                               backend_ref(context.canary_service, port, 100)})));
        if (sticky_primary) {
            rules.push_back(make_rule(parts, with_cookie(parts.matches, primary_cookie),
                                      parts.filters,
                                      Json::array({backend_ref(context.primary, port, 100),
                                                   backend_ref(context.canary_service, port, 0)})));
        }
        Json& backends = weighted["backendRefs"];
        backends[1]["filters"] = add_response_header(
            Json::array(), "Set-Cookie", set_cookie_value(affinity, cookie, affinity.max_age));
        if (sticky_primary) {
            const auto interval = std::chrono::duration_cast<std::chrono::seconds>(
                context.canary.spec.analysis->interval_duration);
            backends[0]["filters"] = add_response_header(
                Json::array(), "Set-Cookie",
                set_cookie_value(affinity, primary_cookie, static_cast<int>(interval.count())));
        }
        rules.push_back(std::move(weighted));
        return rules;
    }
    if (routes.canary == 0 && !status.previous_session_affinity_cookie.empty()) {
        const std::string& previous = status.previous_session_affinity_cookie;
        Json expire = make_rule(parts, with_cookie(parts.matches, previous),
                                add_response_header(parts.filters, "Set-Cookie",
                                                    set_cookie_value(affinity, previous, -1)),
                                Json::array({backend_ref(context.primary, port, 100)}));
        return Json::array({std::move(expire), std::move(weighted)});
    }
    return std::nullopt;
}

/// A named backendRef of `rule`, or nullptr.
const Json* find_backend(const Json& rule, const std::string& name) {
    const Json* backends = api::member(rule, "backendRefs");
    if (backends == nullptr || !backends->is_array()) {
        return nullptr;
    }
    for (const Json& backend : *backends) {
        if (api::string_at(backend, {"name"}) == name) {
            return &backend;
        }
    }
    return nullptr;
}

/// RequestMirror filters of `filters` (a rule's) to the Service `name`.
std::ptrdiff_t mirrors_to(const Json* filters, const std::string& name) {
    if (filters == nullptr || !filters->is_array()) {
        return 0;
    }
    return std::count_if(filters->begin(), filters->end(), [&](const Json& filter) {
        return api::string_at(filter, {"type"}) == "RequestMirror" &&
               api::string_at(filter, {"requestMirror", "backendRef", "name"}) == name;
    });
}

/// A backendRef's weight; absent means Gateway API's default of 1.
int weight_of(const Json& backend) {
    const Json* weight = api::member(backend, "weight");
    return weight != nullptr && weight->is_number() ? read_weight(*weight).value_or(0) : 1;
}

bool has_filters(const Json& backend) {
    const Json* filters = api::member(backend, "filters");
    return filters != nullptr && filters->is_array() && !filters->empty();
}

}  // namespace

namespace {

/// The HTTPRoute (grpc false) or GRPCRoute (grpc true, version v1) S.
Result<Json> build_route(const RouteContext& context, const analysis::Routes& routes,
                         std::string_view version, bool grpc) {
    const bool v1 = version == "v1";
    const api::CanaryService& service = context.canary.spec.service;
    const auto& analysis = context.canary.spec.analysis;
    if (service.gateway_refs.empty()) {
        return invalid("spec.service.gatewayRefs",
                       "must be set for provider " + (context.provider.empty()
                                                          ? "gatewayapi:" + std::string(version)
                                                          : context.provider));
    }
    Json parents = Json::array();
    for (const api::GatewayRef& ref : service.gateway_refs) {
        Json parent{{"group", ref.group}, {"kind", ref.kind}, {"name", ref.name}};
        if (!ref.ns.empty()) {
            parent["namespace"] = ref.ns;
        }
        if (ref.section_name && !ref.section_name->empty()) {
            parent["sectionName"] = *ref.section_name;
        }
        if (ref.port) {
            parent["port"] = *ref.port;
        }
        parents.push_back(std::move(parent));
    }

    auto matches = grpc ? grpc_matches(service.match, "spec.service.match")
                        : gateway_matches(service.match, "spec.service.match");
    if (!matches) {
        return matches.error();
    }
    auto filters = grpc ? grpc_service_filters(service) : service_filters(service, v1);
    if (!filters) {
        return filters.error();
    }
    Json timeouts;
    if (v1 && !grpc) {
        auto parsed = rule_timeouts(service);
        if (!parsed) {
            return parsed.error();
        }
        timeouts = std::move(*parsed);
    }
    // A GRPCRoute rule without matches takes every call: no default match is written.
    const RuleParts parts{grpc ? std::move(*matches) : or_default_matches(*matches),
                          std::move(*filters), std::move(timeouts)};

    const std::int32_t port = service.port;
    Json weighted_filters = parts.filters;
    if (routes.mirrored && analysis && analysis->iterations > 0) {
        weighted_filters.push_back(mirror_filter(context.canary_service, port));
    }
    const Json both = Json::array({backend_ref(context.primary, port, routes.primary),
                                   backend_ref(context.canary_service, port, routes.canary)});

    Json rules;
    if (analysis && analysis->match.is_array() && !analysis->match.empty()) {
        auto ab = grpc ? grpc_matches(analysis->match, "spec.analysis.match")
                       : gateway_matches(analysis->match, "spec.analysis.match");
        if (!ab) {
            return ab.error();
        }
        Json merged = grpc ? merge_matches(*ab, parts.matches, {"headers", "method"})
                           : or_default_matches(
                                 merge_matches(*ab, *matches, {"headers", "queryParams"}));
        rules = Json::array({make_rule(parts, std::move(merged), std::move(weighted_filters), both),
                             make_rule(parts, parts.matches, parts.filters,
                                       Json::array({backend_ref(context.primary, port, 100)}))});
    } else {
        Json weighted = make_rule(parts, parts.matches, std::move(weighted_filters), both);
        std::optional<Json> sticky;
        if (analysis && analysis->session_affinity) {
            sticky =
                session_rules(context, routes, *analysis->session_affinity, parts, weighted, v1);
        }
        rules = sticky ? std::move(*sticky) : Json::array({std::move(weighted)});
    }

    Json spec{{"parentRefs", std::move(parents)}, {"rules", std::move(rules)}};
    if (!service.hosts.empty()) {
        spec["hostnames"] = service.hosts;
    }
    return Result<Json>(boost::system::in_place_value,
                        route_object(grpc ? route_types::gateway_grpc_routes()
                                          : route_types::gateway_http_routes(version),
                                     route_metadata(context, context.apex, service.apex),
                                     std::move(spec)));
}

}  // namespace

Result<Json> build_http_route(const RouteContext& context, const analysis::Routes& routes,
                              std::string_view version) {
    return build_route(context, routes, version, false);
}

Result<Json> build_grpc_route(const RouteContext& context, const analysis::Routes& routes) {
    return build_route(context, routes, "v1", true);
}

bool grpc_service(const api::CanaryService& service) {
    std::string protocol = service.app_protocol;
    std::transform(protocol.begin(), protocol.end(), protocol.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return protocol == "grpc";
}

Result<analysis::Routes> http_route_routes(const RouteContext& context, const Json& route) {
    const Json* rules = api::find_path(route, {"spec", "rules"});
    if (rules == nullptr || !rules->is_array()) {
        return fail(ErrorKind::kInvalid, where(context, route) + " has no spec.rules");
    }
    // The weighted rule: with session affinity the sticky rules route to both services too, and
    // the weighted one is told apart by the Set-Cookie filters of its backendRefs.
    const Json* weighted = nullptr;
    for (const Json& rule : *rules) {
        const Json* primary = find_backend(rule, context.primary);
        const Json* canary = find_backend(rule, context.canary_service);
        if (primary == nullptr || canary == nullptr) {
            continue;
        }
        if (has_filters(*primary) || has_filters(*canary)) {
            weighted = &rule;
            break;
        }
        if (weighted == nullptr) {
            weighted = &rule;
        }
    }
    if (weighted == nullptr) {
        return fail(ErrorKind::kInvalid, where(context, route) + " has no rule routing to both " +
                                             context.primary + " and " + context.canary_service);
    }
    const int primary = weight_of(*find_backend(*weighted, context.primary));
    const int canary = weight_of(*find_backend(*weighted, context.canary_service));
    if (primary == 0 && canary == 0) {
        return fail(ErrorKind::kInvalid, where(context, route) + ": both backend weights are 0");
    }
    // The service's own mirrors to S-canary (unusual, but allowed) are not the B/G mirror.
    std::ptrdiff_t own = 0;
    const Json& mirrors = context.canary.spec.service.mirror;
    if (mirrors.is_array()) {
        for (const Json& mirror : mirrors) {
            if (api::string_at(mirror, {"backendRef", "name"}) == context.canary_service) {
                ++own;
            }
        }
    }
    const bool mirrored =
        mirrors_to(api::member(*weighted, "filters"), context.canary_service) > own;
    return analysis::Routes{primary, canary, mirrored};
}

Result<void> http_route_parents_ready(const Json& route) {
    const std::string name = api::string_at(route, {"metadata", "name"});
    const std::string ns = api::string_at(route, {"metadata", "namespace"});
    const Json* generation_field = api::find_path(route, {"metadata", "generation"});
    const std::int64_t generation =
        generation_field != nullptr && generation_field->is_number_integer()
            ? generation_field->get<std::int64_t>()
            : 0;
    const Json* parents = api::find_path(route, {"spec", "parentRefs"});
    const Json* statuses = api::find_path(route, {"status", "parents"});
    if (parents == nullptr || !parents->is_array() || statuses == nullptr ||
        !statuses->is_array()) {
        return {};
    }
    // Absent namespace and kind mean the route's namespace and Gateway, on either side.
    const auto identity = [&](const Json& ref) {
        const std::string ref_ns = api::string_at(ref, {"namespace"});
        const std::string kind = api::string_at(ref, {"kind"});
        return std::tuple{api::string_at(ref, {"name"}), ref_ns.empty() ? ns : ref_ns,
                          kind.empty() ? std::string("Gateway") : kind};
    };
    for (const Json& parent : *parents) {
        const auto wanted = identity(parent);
        for (const Json& status : *statuses) {
            const Json* ref = api::member(status, "parentRef");
            if (ref == nullptr || identity(*ref) != wanted) {
                continue;
            }
            const Json* conditions = api::member(status, "conditions");
            if (conditions == nullptr || !conditions->is_array()) {
                continue;
            }
            for (const Json& condition : *conditions) {
                if (api::string_at(condition, {"type"}) != "Accepted") {
                    continue;
                }
                const std::string kind = api::string_at(route, {"kind"});
                const std::string prefix = (kind.empty() ? std::string("HTTPRoute") : kind) + " " +
                                           name + "." + ns + " parent " +
                                           std::get<0>(wanted) + " is not ready: ";
                if (api::string_at(condition, {"status"}) != "True") {
                    std::string reason = api::string_at(condition, {"reason"});
                    const std::string message = api::string_at(condition, {"message"});
                    if (!message.empty()) {
                        reason += (reason.empty() ? "" : ": ") + message;
                    }
                    return fail(ErrorKind::kInvalid,
                                prefix + "Accepted is " + api::string_at(condition, {"status"}) +
                                    (reason.empty() ? "" : " (" + reason + ")"));
                }
                const Json* observed = api::member(condition, "observedGeneration");
                const std::int64_t seen = observed != nullptr && observed->is_number_integer()
                                              ? observed->get<std::int64_t>()
                                              : 0;
                if (seen < generation) {
                    return fail(ErrorKind::kInvalid,
                                prefix + "it accepted generation " + std::to_string(seen) +
                                    ", the route is at generation " + std::to_string(generation));
                }
            }
        }
    }
    return {};
}

bool serin_rule(const RouteContext& context, const Json& rule) {
    const Json* backends = api::member(rule, "backendRefs");
    if (backends == nullptr || !backends->is_array()) {
        return false;
    }
    return std::any_of(backends->begin(), backends->end(), [&](const Json& backend) {
        const Json* kind = api::member(backend, "kind");
        const Json* ns = api::member(backend, "namespace");
        const std::string name = api::string_at(backend, {"name"});
        return api::string_at(backend, {"group"}).empty() &&
               (kind == nullptr || api::string_at(backend, {"kind"}) == "Service") &&
               (ns == nullptr || api::string_at(backend, {"namespace"}) == context.ns()) &&
               (name == context.apex || name == context.primary || name == context.canary_service);
    });
}

Json merge_route_rules(const RouteContext& context, const Json* live_rules, Json own) {
    Json out = Json::array();
    bool placed = false;
    const auto place = [&] {
        for (Json& rule : own) {
            out.push_back(std::move(rule));
        }
        placed = true;
    };
    if (live_rules != nullptr && live_rules->is_array()) {
        for (const Json& rule : *live_rules) {
            if (!serin_rule(context, rule)) {
                out.push_back(rule);
            } else if (!placed) {
                place();
            }
        }
    }
    if (!placed) {
        place();
    }
    return out;
}

Json restored_route_rules(const RouteContext& context, const Json* live_rules,
                          const Json* original_rules) {
    Json theirs = Json::array();
    if (original_rules != nullptr && original_rules->is_array()) {
        for (const Json& rule : *original_rules) {
            if (serin_rule(context, rule)) {
                theirs.push_back(rule);
            }
        }
    }
    return merge_route_rules(context, live_rules, std::move(theirs));
}

namespace {

/// What Serin owns of a route's spec: parentRefs and hostnames whole, and in `rules` its own
/// rules only (merge_route_rules makes the desired list from the live one).
const OwnedKeys& owned_keys() {
    static const OwnedKeys keys{"parentRefs", "hostnames", "rules"};
    return keys;
}

class GatewayApiRouter final : public MeshRouter {
public:
    GatewayApiRouter(RouterDeps deps, std::string version)
        : deps_(deps), version_(std::move(version)) {}

    asio::awaitable<Result<void>> reconcile(RouteContext context) override {
        auto live = live_route(deps_, context, type(context), context.apex);
        if (!live) {
            co_return live.error();
        }
        // Built with the weights the route holds now, so that a change elsewhere (drift of a
        // match, new filters) is repaired without resetting an analysis in progress.
        const analysis::Routes routes = current_routes_or_default(
            *live, [&](const Json& route) { return http_route_routes(context, route); });
        auto applied = co_await apply(context, routes);
        co_return applied;
    }

    asio::awaitable<Result<analysis::Routes>> get_routes(RouteContext context) override {
        auto live = existing_route(deps_, context, type(context), context.apex);
        if (!live) {
            co_return live.error();
        }
        if (version_ == "v1") {
            auto ready = http_route_parents_ready(**live);
            if (!ready) {
                co_return ready.error();
            }
        }
        co_return http_route_routes(context, **live);
    }

    asio::awaitable<Result<void>> set_routes(RouteContext context,
                                             analysis::Routes routes) override {
        auto applied = co_await apply(context, routes);
        co_return applied;
    }

    /// revertOnDeletion: a route Serin created goes with the canary (owner reference); one it
    /// took over gets back its parentRefs, hostnames and the rules Serin replaced, in the place
    /// of Serin's rules, and keeps the user's other rules as they are now.
    asio::awaitable<Result<void>> finalize(RouteContext context) override {
        const kube::ResourceType route_type = type(context);
        auto live = live_route(deps_, context, route_type, context.apex);
        if (!live) {
            co_return live.error();
        }
        if (*live == nullptr || owned_by_canary(**live, context)) {
            co_return Result<void>{};
        }
        std::optional<Json> original = original_spec(**live);
        if (!original) {
            co_return Result<void>{};
        }
        Json restored = **live;
        Json& spec = restored["spec"];
        if (!spec.is_object()) {
            spec = Json::object();
        }
        spec["rules"] = restored_route_rules(context, api::member(spec, "rules"),
                                             api::member(*original, "rules"));
        for (const char* key : {"parentRefs", "hostnames"}) {
            if (const Json* value = api::member(*original, key)) {
                spec[key] = *value;
            } else {
                spec.erase(key);
            }
        }
        Json& annotations = restored["metadata"]["annotations"];
        if (annotations.is_object()) {
            annotations.erase(std::string(kOriginalConfigKey));
        }
        auto written = co_await deps_.kube.update(route_type, context.ns(), restored);
        if (!written) {
            co_return written.error();
        }
        co_return Result<void>{};
    }

    bool supports_session_affinity() const override { return true; }
    // The mirror filter is written for blue/green only (flagger-spec §4.4).
    bool can_mirror(bool blue_green) const override { return blue_green; }

private:
    /// GRPCRoute for a gRPC service (appProtocol grpc) on v1, else the HTTPRoute of version_.
    bool grpc(const RouteContext& context) const {
        return version_ == "v1" && grpc_service(context.canary.spec.service);
    }
    kube::ResourceType type(const RouteContext& context) const {
        return grpc(context) ? route_types::gateway_grpc_routes()
                             : route_types::gateway_http_routes(version_);
    }

    asio::awaitable<Result<void>> apply(RouteContext context, analysis::Routes routes) {
        auto desired = grpc(context) ? build_grpc_route(context, routes)
                                     : build_http_route(context, routes, version_);
        if (!desired) {
            co_return desired.error();
        }
        const kube::ResourceType route_type = type(context);
        auto live = live_route(deps_, context, route_type, context.apex);
        if (!live) {
            co_return live.error();
        }
        if (*live != nullptr) {
            Json& rules = (*desired)["spec"]["rules"];
            rules = merge_route_rules(context, api::find_path(**live, {"spec", "rules"}),
                                      std::move(rules));
        }
        const ApplyOptions options{.remember_original = true};
        auto applied =
            co_await apply_route(deps_, context, route_type, *desired, owned_keys(), options);
        if (!applied) {
            co_return applied.error();
        }
        co_return Result<void>{};
    }

    RouterDeps deps_;
    std::string version_;
};

}  // namespace

std::unique_ptr<MeshRouter> make_gatewayapi_router(RouterDeps deps, std::string version) {
    return std::make_unique<GatewayApiRouter>(deps, std::move(version));
}

}  // namespace serin::meshes
