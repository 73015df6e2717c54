#include "meshes/nginx/nginx_router.hpp"

#include <charconv>

#include "crds/api/json_access.hpp"
#include "meshes/common/route_object.hpp"
#include "meshes/common/route_types.hpp"
#include "platform/core/json.hpp"

namespace serin::meshes {

namespace asio = boost::asio;
using Json = nlohmann::json;

namespace {

/// The canary annotations an adopted Ingress had before Serin took it over (JSON object), for
/// finalize; its spec goes to kOriginalConfigKey as for the other routers.
constexpr std::string_view kOriginalCanaryAnnotationsKey = "serin.dev/original-canary-annotations";

Error invalid(const std::string& path, const std::string& message) {
    return fail(ErrorKind::kInvalid, path + ": " + message);
}

std::string user_ingress_name(const RouteContext& context) {
    const auto& ref = context.canary.spec.ingress_ref;
    return ref ? ref->name : std::string();
}

std::string canary_ingress_name(const RouteContext& context) {
    return user_ingress_name(context) + "-canary";
}

/// Whether annotation `key` is one of the canary keys under `prefix` (P/canary*).
bool canary_key(std::string_view key, std::string_view prefix) {
    return key.starts_with(nginx_annotation(prefix, "canary"));
}

/// One header of a match entry as a rule of `out`.
Result<void> header_rule(const std::string& name, const Json& string_match, const std::string& path,
                         NginxMatch& out, std::string& header_path, std::string& cookie_path) {
    if (!string_match.is_object() || string_match.size() != 1 || !string_match.begin()->is_string()) {
        return invalid(path, "expected exactly one of exact or regex with a string, got " +
                                 show_json(string_match));
    }
    const std::string kind = string_match.begin().key();
    const std::string value = string_match.begin()->get<std::string>();
    if (name == "cookie") {
        if (kind != "exact") {
            return invalid(path + "." + kind,
                           "NGINX routes by a cookie's name (canary-by-cookie): give it as exact");
        }
        if (!cookie_path.empty()) {
            return invalid(path, "NGINX routes by one cookie; " + cookie_path + " names one already");
        }
        cookie_path = path;
        out.cookie = value;
        return {};
    }
    if (kind != "exact" && kind != "regex") {
        return invalid(path + "." + kind, "NGINX matches a header by exact value or regex only");
    }
    if (!header_path.empty()) {
        return invalid(path, "NGINX routes by one header; " + header_path + " names one already");
    }
    header_path = path;
    out.header = name;
    (kind == "exact" ? out.header_value : out.header_pattern) = value;
    return {};
}

}  // namespace

std::string nginx_annotation(std::string_view prefix, std::string_view name) {
    return std::string(prefix) + "/" + std::string(name);
}

Result<NginxMatch> nginx_match(const Json& match) {
    NginxMatch out;
    const std::string path = "spec.analysis.match";
    if (match.is_null()) {
        return out;
    }
    if (!match.is_array()) {
        return invalid(path, "expected a list, got " + show_json(match));
    }
    std::string header_path;
    std::string cookie_path;
    for (std::size_t i = 0; i < match.size(); ++i) {
        const std::string entry_path = path + "[" + std::to_string(i) + "]";
        const Json& entry = match[i];
        if (!entry.is_object()) {
            return invalid(entry_path, "expected an object, got " + show_json(entry));
        }
        const Json* headers = nullptr;
        for (auto it = entry.begin(); it != entry.end(); ++it) {
            if (it.key() == "headers") {
                headers = &*it;
            } else if (!it->is_null() && it.key() != "name" &&
                       !(it.key() == "ignoreUriCase" && *it == false)) {
                return invalid(entry_path + "." + it.key(),
                               "not supported by NGINX (it routes the canary by one header or "
                               "one cookie)");
            }
        }
        if (headers == nullptr || !headers->is_object() || headers->size() != 1) {
            return invalid(entry_path + ".headers",
                           "NGINX needs exactly one header per match entry (entries are "
                           "alternatives; NGINX cannot require two headers at once), got " +
                               show_json(headers != nullptr ? *headers : Json()));
        }
        const auto header = headers->begin();
        auto rule = header_rule(header.key(), *header, entry_path + ".headers." + header.key(), out,
                                header_path, cookie_path);
        if (!rule) {
            return rule.error();
        }
    }
    return out;
}

Result<Json> canary_ingress_spec(const RouteContext& context, const Json& user_ingress) {
    const std::string name = api::string_at(user_ingress, {"metadata", "name"});
    const std::string where = "spec.ingressRef: Ingress " + name + "." + context.ns();
    const Json* spec = api::member(user_ingress, "spec");
    if (spec == nullptr || !spec->is_object()) {
        return fail(ErrorKind::kInvalid, where + " has no spec");
    }
    Json out = *spec;
    bool rewritten = false;
    Json* rules = out.contains("rules") ? &out["rules"] : nullptr;
    if (rules != nullptr && rules->is_array()) {
        for (std::size_t i = 0; i < rules->size(); ++i) {
            Json& rule = (*rules)[i];
            Json* paths = rule.is_object() && rule.contains("http") && rule["http"].is_object() &&
                                  rule["http"].contains("paths")
                              ? &rule["http"]["paths"]
                              : nullptr;
            if (paths == nullptr || !paths->is_array()) {
                return fail(ErrorKind::kInvalid, where + ": spec.rules[" + std::to_string(i) +
                                                     "] has no http paths to route");
            }
            for (Json& p : *paths) {
                if (api::string_at(p, {"backend", "service", "name"}) == context.apex) {
                    p["backend"]["service"]["name"] = context.canary_service;
                    rewritten = true;
                }
            }
        }
    }
    if (!rewritten) {
        return fail(ErrorKind::kInvalid,
                    where + ": backend " + context.apex + " not found in ingress " + name);
    }
    return Result<Json>(boost::system::in_place_value, std::move(out));
}

Json canary_annotations(std::string_view prefix, const NginxMatch& match,
                        const analysis::Routes& routes) {
    Json out = Json::object();
    out[nginx_annotation(prefix, "canary")] = "true";
    const bool rules = !match.empty() && routes.canary > 0;
    out[nginx_annotation(prefix, "canary-weight")] = rules ? "0" : std::to_string(routes.canary);
    if (!rules) {
        return out;
    }
    const std::pair<const char*, const std::string*> keys[] = {
        {"canary-by-cookie", &match.cookie},
        {"canary-by-header", &match.header},
        {"canary-by-header-value", &match.header_value},
        {"canary-by-header-pattern", &match.header_pattern}};
    for (const auto& [name, value] : keys) {
        if (!value->empty()) {
            out[nginx_annotation(prefix, name)] = *value;
        }
    }
    return out;
}

Result<Json> build_canary_ingress(const RouteContext& context, const Json& user_ingress,
                                  const analysis::Routes& routes, std::string_view prefix) {
    auto match = nginx_match(context.canary.spec.analysis ? context.canary.spec.analysis->match
                                                          : Json());
    if (!match) {
        return match.error();
    }
    auto spec = canary_ingress_spec(context, user_ingress);
    if (!spec) {
        return spec.error();
    }
    Json annotations = Json::object();
    if (const Json* user = api::find_path(user_ingress, {"metadata", "annotations"});
        user != nullptr && user->is_object()) {
        for (auto it = user->begin(); it != user->end(); ++it) {
            if (it->is_string() && !canary_key(it.key(), prefix) && it.key() != kLastAppliedKey) {
                annotations[it.key()] = *it;
            }
        }
    }
    annotations[std::string(kFluxReconcileKey)] = "disabled";
    annotations[std::string(kHelmDriftKey)] = "disabled";
    annotations.update(canary_annotations(prefix, *match, routes));
    Json metadata{{"name", canary_ingress_name(context)},
                  {"namespace", context.ns()},
                  {"annotations", std::move(annotations)},
                  {"ownerReferences", Json::array({context.owner_reference})}};
    if (const Json* labels = api::find_path(user_ingress, {"metadata", "labels"});
        labels != nullptr && labels->is_object() && !labels->empty()) {
        metadata["labels"] = *labels;
    }
    return Result<Json>(boost::system::in_place_value,
                        route_object(route_types::ingresses(), std::move(metadata), std::move(*spec)));
}

std::optional<Json> canary_ingress_update(const Json& live, const Json& desired,
                                          std::string_view prefix) {
    Json updated = live;
    bool changed = false;
    const Json* want_spec = api::member(desired, "spec");
    if (want_spec != nullptr && (!updated.contains("spec") || updated["spec"] != *want_spec)) {
        updated["spec"] = *want_spec;
        changed = true;
    }
    Json& metadata = updated["metadata"];
    for (const char* key : {"labels", "annotations"}) {
        const Json* want = api::find_path(desired, {"metadata", key});
        Json& have = metadata[key];
        if (!have.is_object()) {
            have = Json::object();
        }
        if (std::string_view(key) == "annotations") {
            for (auto it = have.begin(); it != have.end();) {
                if (canary_key(it.key(), prefix) &&
                    (want == nullptr || !want->is_object() || !want->contains(it.key()))) {
                    it = have.erase(it);
                    changed = true;
                } else {
                    ++it;
                }
            }
        }
        if (want != nullptr && want->is_object()) {
            for (auto it = want->begin(); it != want->end(); ++it) {
                auto found = have.find(it.key());
                if (found == have.end() || *found != *it) {
                    have[it.key()] = *it;
                    changed = true;
                }
            }
        }
        if (have.empty()) {
            metadata.erase(key);
        }
    }
    if (!changed) {
        return std::nullopt;
    }
    return updated;
}

Result<analysis::Routes> canary_ingress_routes(const RouteContext& context,
                                               const Json& canary_ingress,
                                               std::string_view prefix) {
    const Json* annotations = api::find_path(canary_ingress, {"metadata", "annotations"});
    auto annotation = [&](std::string_view name) -> const Json* {
        if (annotations == nullptr || !annotations->is_object()) {
            return nullptr;
        }
        auto found = annotations->find(nginx_annotation(prefix, name));
        return found != annotations->end() ? &*found : nullptr;
    };
    const bool ab = context.canary.spec.analysis && !context.canary.spec.analysis->match.is_null();
    if (ab && (annotation("canary-by-cookie") != nullptr || annotation("canary-by-header") != nullptr)) {
        return analysis::Routes{0, 100, false};
    }
    const Json* weight = annotation("canary-weight");
    if (weight == nullptr) {
        return analysis::Routes{100, 0, false};
    }
    const std::string text = weight->is_string() ? weight->get<std::string>() : weight->dump();
    int value = -1;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (error != std::errc{} || end != text.data() + text.size() || value < 0 || value > 100) {
        return fail(ErrorKind::kInvalid,
                    "Ingress " + canary_ingress_name(context) + "." + context.ns() + ": " +
                        nginx_annotation(prefix, "canary-weight") + " " + show_json(*weight) +
                        " is not a whole number from 0 to 100");
    }
    return analysis::Routes{100 - value, value, false};
}

namespace {


class NginxRouter final : public MeshRouter {
public:
    NginxRouter(RouterDeps deps, std::string prefix) : deps_(deps), prefix_(std::move(prefix)) {}

    asio::awaitable<Result<void>> reconcile(RouteContext context) override {
        auto live = canary_ingress(context);
        if (!live) {
            co_return live.error();
        }
        const analysis::Routes routes = current_routes_or_default(*live, [&](const Json& ingress) {
            return canary_ingress_routes(context, ingress, prefix_);
        });
        co_return co_await write(context, routes);
    }

    asio::awaitable<Result<analysis::Routes>> get_routes(RouteContext context) override {
        auto live = canary_ingress(context);
        if (!live) {
            co_return live.error();
        }
        if (*live == nullptr) {
            co_return fail(ErrorKind::kNotFound, "Ingress " + canary_ingress_name(context) + "." +
                                                     context.ns() + " not found");
        }
        co_return canary_ingress_routes(context, **live, prefix_);
    }

    asio::awaitable<Result<void>> set_routes(RouteContext context,
                                             analysis::Routes routes) override {
        routes.mirrored = false;
        co_return co_await write(context, routes);
    }

    asio::awaitable<Result<void>> finalize(RouteContext context) override {
        auto live = canary_ingress(context);
        if (!live) {
            co_return live.error();
        }
        if (*live == nullptr) {
            co_return Result<void>{};
        }
        Json restored = **live;
        Json& annotations = restored["metadata"]["annotations"];
        if (!annotations.is_object()) {
            annotations = Json::object();
        }
        if (owned_by_canary(**live, context)) {
            // Everything back to the user's Ingress until the garbage collector removes this one.
            auto update = canary_ingress_update(
                **live, Json{{"metadata", {{"annotations", canary_annotations(prefix_, {}, {})}}}},
                prefix_);
            if (!update) {
                co_return Result<void>{};
            }
            restored = std::move(*update);
        } else {
            if (!annotations.contains(std::string(kOriginalCanaryAnnotationsKey))) {
                co_return Result<void>{};  // never taken over, or given back already
            }
            if (std::optional<Json> spec = original_spec(**live)) {
                restored["spec"] = std::move(*spec);
            }
            Json before = Json::object();
            if (auto found = annotations.find(std::string(kOriginalCanaryAnnotationsKey));
                found != annotations.end() && found->is_string()) {
                auto parsed = parse_json(found->get<std::string>(), kMaxRemoteJsonDepth,
                                         kOriginalCanaryAnnotationsKey);
                if (parsed) {
                    before = std::move(*parsed);
                }
            }
            for (auto it = annotations.begin(); it != annotations.end();) {
                it = canary_key(it.key(), prefix_) ? annotations.erase(it) : std::next(it);
            }
            if (before.is_object()) {
                for (auto it = before.begin(); it != before.end(); ++it) {
                    if (canary_key(it.key(), prefix_) && it->is_string()) {
                        annotations[it.key()] = *it;
                    }
                }
            }
            annotations.erase(std::string(kOriginalCanaryAnnotationsKey));
            annotations.erase(std::string(kOriginalConfigKey));
        }
        auto written = co_await deps_.kube.update(route_types::ingresses(), context.ns(), restored);
        if (!written) {
            co_return written.error();
        }
        co_return Result<void>{};
    }

private:
    /// The live canary Ingress (nullptr when absent). Errors: kInvalid without spec.ingressRef
    /// or when Ingresses are not watched.
    Result<kube::ObjectPtr> canary_ingress(const RouteContext& context) const {
        if (user_ingress_name(context).empty()) {
            return fail(ErrorKind::kInvalid,
                        "spec.ingressRef: the nginx provider needs the name of the Ingress to "
                        "clone (ingress selector is empty)");
        }
        return live_route(deps_, context, route_types::ingresses(), canary_ingress_name(context));
    }

    asio::awaitable<Result<void>> write(RouteContext context, analysis::Routes routes) {
        const std::string user = user_ingress_name(context);
        auto user_ingress = live_route(deps_, context, route_types::ingresses(), user);
        if (!user_ingress) {
            co_return user_ingress.error();
        }
        if (*user_ingress == nullptr) {
            co_return fail(ErrorKind::kNotFound, "spec.ingressRef: Ingress " + user + "." +
                                                     context.ns() + " not found");
        }
        auto desired = build_canary_ingress(context, **user_ingress, routes, prefix_);
        if (!desired) {
            co_return desired.error();
        }
        const std::string prefix = prefix_;
        auto update_for = [&context, desired = *desired, prefix](const Json& found) {
            std::optional<Json> update = canary_ingress_update(found, desired, prefix);
            if (update && !owned_by_canary(found, context)) {
                remember(found, *update, prefix);
            }
            return update;
        };
        auto ensured = co_await deps_.kube.ensure(route_types::ingresses(), context.ns(),
                                                  *desired, update_for);
        if (!ensured) {
            co_return ensured.error();
        }
        if (*ensured == nullptr) {
            co_return fail(ErrorKind::kAlreadyExists, "Ingress " + canary_ingress_name(context) +
                                                          "." + context.ns() + " already exists");
        }
        co_return Result<void>{};
    }

    /// On the first change to a canary Ingress Serin did not create, records its spec and canary
    /// annotations in `update`, for finalize.
    static void remember(const Json& found, Json& update, std::string_view prefix) {
        Json& annotations = update["metadata"]["annotations"];
        const Json* before = api::find_path(found, {"metadata", "annotations"});
        if (before != nullptr && before->is_object() &&
            before->contains(std::string(kOriginalCanaryAnnotationsKey))) {
            return;
        }
        Json canary = Json::object();
        if (before != nullptr && before->is_object()) {
            for (auto it = before->begin(); it != before->end(); ++it) {
                if (canary_key(it.key(), prefix)) {
                    canary[it.key()] = *it;
                }
            }
        }
        annotations[std::string(kOriginalCanaryAnnotationsKey)] = dump_json(canary);
        const Json* spec = api::member(found, "spec");
        annotations[std::string(kOriginalConfigKey)] = dump_json(spec != nullptr ? *spec : Json::object());
    }

    RouterDeps deps_;
    std::string prefix_;
};

}  // namespace

std::unique_ptr<MeshRouter> make_nginx_router(RouterDeps deps, std::string prefix) {
    return std::make_unique<NginxRouter>(deps, std::move(prefix));
}

}  // namespace serin::meshes
