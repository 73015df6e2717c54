#include "meshes/skipper/skipper_router.hpp"

#include <cctype>
#include <vector>

#include "crds/api/json_access.hpp"
#include "meshes/common/route_object.hpp"
#include "meshes/common/route_types.hpp"
#include "platform/core/json.hpp"

namespace serin::meshes {

namespace asio = boost::asio;
using Json = nlohmann::json;

namespace {

/// The Skipper annotations an adopted canary Ingress had before Serin took it over (a JSON
/// object), for finalize; its spec goes to kOriginalConfigKey as for the other routers.
constexpr std::string_view kOriginalSkipperAnnotationsKey = "serin.dev/original-skipper-annotations";

/// The largest backend-weights annotation read back (it holds two names and two numbers).
constexpr std::size_t kMaxWeightsText = 4096;

Error invalid(const std::string& path, const std::string& message) {
    return fail(ErrorKind::kInvalid, path + ": " + message);
}

std::string user_ingress_name(const RouteContext& context) {
    const auto& ref = context.canary.spec.ingress_ref;
    return ref ? ref->name : std::string();
}

std::string canary_ingress_name(const RouteContext& context) { return user_ingress_name(context) + "-canary"; }

bool skipper_key(std::string_view key) { return key == kSkipperWeightsKey || key == kSkipperPredicateKey; }

std::string trimmed(std::string_view text) {
    while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front())) != 0) {
        text.remove_prefix(1);
    }
    while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back())) != 0) {
        text.remove_suffix(1);
    }
    return std::string(text);
}

/// The user's spec with every path to S sent to S-primary, and a copy of it to S-canary
/// appended to the same rule.
Result<Json> canary_spec(const RouteContext& context, const Json& user_ingress) {
    const std::string name = api::string_at(user_ingress, {"metadata", "name"});
    const std::string where = "spec.ingressRef: Ingress " + name + "." + context.ns();
    const Json* spec = api::member(user_ingress, "spec");
    if (spec == nullptr || !spec->is_object()) {
        return fail(ErrorKind::kInvalid, where + " has no spec");
    }
    Json out = *spec;
    bool rewritten = false;
    if (out.contains("rules") && out["rules"].is_array()) {
        Json& rules = out["rules"];
        for (std::size_t i = 0; i < rules.size(); ++i) {
            Json& rule = rules[i];
            Json* paths = rule.is_object() && rule.contains("http") && rule["http"].is_object() &&
                                  rule["http"].contains("paths")
                              ? &rule["http"]["paths"]
                              : nullptr;
            if (paths == nullptr || !paths->is_array()) {
                return fail(ErrorKind::kInvalid,
                            where + ": spec.rules[" + std::to_string(i) + "] has no http paths to route");
            }
            std::vector<Json> copies;
            for (Json& p : *paths) {
                if (api::string_at(p, {"backend", "service", "name"}) == context.apex) {
                    p["backend"]["service"]["name"] = context.primary;
                    Json copy = p;
                    copy["backend"]["service"]["name"] = context.canary_service;
                    copies.push_back(std::move(copy));
                    rewritten = true;
                }
            }
            for (Json& copy : copies) {
                paths->push_back(std::move(copy));
            }
        }
    }
    if (!rewritten) {
        return fail(ErrorKind::kInvalid, where + ": backend " + context.apex + " not found in ingress " + name);
    }
    return Result<Json>(boost::system::in_place_value, std::move(out));
}

}  // namespace

std::string skipper_predicate(std::string_view user_predicate, int canary_weight) {
    std::string out = canary_weight == 0 ? "False()" : "Weight(100)";
    std::size_t start = 0;
    while (start <= user_predicate.size()) {
        const std::size_t end = std::min(user_predicate.find("&&", start), user_predicate.size());
        const std::string part = trimmed(user_predicate.substr(start, end - start));
        start = end + 2;
        if (part.empty() || part == "Weight(100)" || part == "False()") {
            continue;
        }
        out += " && " + part;
    }
    return out;
}

Result<Json> build_skipper_ingress(const RouteContext& context, const Json& user_ingress,
                                   const analysis::Routes& routes) {
    if (context.canary.spec.analysis && !context.canary.spec.analysis->match.is_null()) {
        return invalid("spec.analysis.match",
                       "A/B testing is not supported by provider skipper (it routes by weight "
                       "only); use a canary or blue/green analysis");
    }
    auto spec = canary_spec(context, user_ingress);
    if (!spec) {
        return spec.error();
    }
    Json annotations = Json::object();
    std::string user_predicate;
    if (const Json* user = api::find_path(user_ingress, {"metadata", "annotations"});
        user != nullptr && user->is_object()) {
        for (auto it = user->begin(); it != user->end(); ++it) {
            if (it->is_string() && it.key() != kLastAppliedKey) {
                annotations[it.key()] = *it;
            }
        }
        user_predicate = api::string_at(*user, {kSkipperPredicateKey});
    }
    annotations[std::string(kFluxReconcileKey)] = "disabled";
    annotations[std::string(kHelmDriftKey)] = "disabled";
    // Keys sorted, as Flagger's JSON: S-canary < S-primary.
    Json weights = Json::object();
    weights[context.canary_service] = routes.canary;
    weights[context.primary] = routes.primary;
    annotations[std::string(kSkipperWeightsKey)] = weights.dump();
    annotations[std::string(kSkipperPredicateKey)] = skipper_predicate(user_predicate, routes.canary);
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

Result<analysis::Routes> skipper_ingress_routes(const RouteContext& context, const Json& canary_ingress) {
    const std::string where = "Ingress " + canary_ingress_name(context) + "." + context.ns() + ": " +
                              std::string(kSkipperWeightsKey);
    const Json* annotations = api::find_path(canary_ingress, {"metadata", "annotations"});
    const Json* text = annotations != nullptr && annotations->is_object()
                           ? api::member(*annotations, kSkipperWeightsKey)
                           : nullptr;
    if (text == nullptr || !text->is_string()) {
        return fail(ErrorKind::kInvalid, where + " not found");
    }
    const std::string& body = text->get_ref<const std::string&>();
    if (body.size() > kMaxWeightsText) {
        return fail(ErrorKind::kInvalid, where + " is longer than " + std::to_string(kMaxWeightsText) + " bytes");
    }
    auto parsed = parse_json(body, 4, kSkipperWeightsKey);
    if (!parsed || !parsed->is_object()) {
        return fail(ErrorKind::kInvalid, where + " is not a JSON object: " + show_json(*text));
    }
    std::optional<int> primary;
    std::optional<int> canary;
    if (const Json* value = api::member(*parsed, context.primary)) {
        primary = read_weight(*value);
    }
    if (const Json* value = api::member(*parsed, context.canary_service)) {
        canary = read_weight(*value);
    }
    if (!primary || !canary) {
        return fail(ErrorKind::kInvalid,
                    where + " lacks a weight for " + (!primary ? context.primary : context.canary_service));
    }
    return analysis::Routes{*primary, *canary, false};
}

namespace {

/// The update that brings a live canary Ingress to `desired`, or nullopt when it already is:
/// spec replaced when it differs, the labels and annotations of `desired` set, others kept.
std::optional<Json> skipper_update(const Json& live, const Json& desired) {
    Json updated = live;
    bool changed = false;
    const Json* want_spec = api::member(desired, "spec");
    if (want_spec != nullptr && (!updated.contains("spec") || updated["spec"] != *want_spec)) {
        updated["spec"] = *want_spec;
        changed = true;
    }
    for (const char* key : {"labels", "annotations"}) {
        const Json* want = api::find_path(desired, {"metadata", key});
        if (want == nullptr || !want->is_object() || want->empty()) {
            continue;
        }
        Json& have = updated["metadata"][key];
        if (!have.is_object()) {
            have = Json::object();
        }
        for (auto it = want->begin(); it != want->end(); ++it) {
            auto found = have.find(it.key());
            if (found == have.end() || *found != *it) {
                have[it.key()] = *it;
                changed = true;
            }
        }
    }
    if (!changed) {
        return std::nullopt;
    }
    return updated;
}

class SkipperRouter final : public MeshRouter {
public:
    explicit SkipperRouter(RouterDeps deps) : deps_(deps) {}

    asio::awaitable<Result<void>> reconcile(RouteContext context) override {
        auto live = canary_ingress(context);
        if (!live) {
            co_return live.error();
        }
        const analysis::Routes routes = current_routes_or_default(
            *live, [&](const Json& ingress) { return skipper_ingress_routes(context, ingress); });
        co_return co_await write(context, routes);
    }

    asio::awaitable<Result<analysis::Routes>> get_routes(RouteContext context) override {
        auto live = canary_ingress(context);
        if (!live) {
            co_return live.error();
        }
        if (*live == nullptr) {
            co_return fail(ErrorKind::kNotFound,
                           "Ingress " + canary_ingress_name(context) + "." + context.ns() + " not found");
        }
        co_return skipper_ingress_routes(context, **live);
    }

    asio::awaitable<Result<void>> set_routes(RouteContext context, analysis::Routes routes) override {
        routes.mirrored = false;
        co_return co_await write(context, routes);
    }

    asio::awaitable<Result<void>> finalize(RouteContext context) override {
        auto live = canary_ingress(context);
        if (!live) {
            co_return live.error();
        }
        if (*live == nullptr) {
            co_return Result<void>{};  // deleted already (by hand): nothing to give back
        }
        Json restored = **live;
        Json& annotations = restored["metadata"]["annotations"];
        if (!annotations.is_object()) {
            annotations = Json::object();
        }
        if (owned_by_canary(**live, context)) {
            // Everything back to the user's Ingress (False()) until the garbage collector removes
            // this one with the canary.
            const std::string user_predicate =
                annotations.contains(std::string(kSkipperPredicateKey)) &&
                        annotations[std::string(kSkipperPredicateKey)].is_string()
                    ? annotations[std::string(kSkipperPredicateKey)].get<std::string>()
                    : std::string();
            Json weights = Json::object();
            weights[context.canary_service] = 0;
            weights[context.primary] = 100;
            const Json wanted{{"metadata",
                               {{"annotations",
                                 {{std::string(kSkipperWeightsKey), weights.dump()},
                                  {std::string(kSkipperPredicateKey), skipper_predicate(user_predicate, 0)}}}}}};
            std::optional<Json> update = skipper_update(**live, wanted);
            if (!update) {
                co_return Result<void>{};
            }
            restored = std::move(*update);
        } else {
            if (!annotations.contains(std::string(kOriginalSkipperAnnotationsKey))) {
                co_return Result<void>{};  // never taken over, or given back already
            }
            if (std::optional<Json> spec = original_spec(**live)) {
                restored["spec"] = std::move(*spec);
            }
            Json before = Json::object();
            if (auto found = annotations.find(std::string(kOriginalSkipperAnnotationsKey));
                found != annotations.end() && found->is_string()) {
                if (auto parsed = parse_json(found->get<std::string>(), kMaxRemoteJsonDepth,
                                             kOriginalSkipperAnnotationsKey)) {
                    before = std::move(*parsed);
                }
            }
            for (auto it = annotations.begin(); it != annotations.end();) {
                it = skipper_key(it.key()) ? annotations.erase(it) : std::next(it);
            }
            if (before.is_object()) {
                for (auto it = before.begin(); it != before.end(); ++it) {
                    if (skipper_key(it.key()) && it->is_string()) {
                        annotations[it.key()] = *it;
                    }
                }
            }
            annotations.erase(std::string(kOriginalSkipperAnnotationsKey));
            annotations.erase(std::string(kOriginalConfigKey));
        }
        auto written = co_await deps_.kube.update(route_types::ingresses(), context.ns(), restored);
        if (!written) {
            co_return written.error();
        }
        co_return Result<void>{};
    }

private:
    Result<kube::ObjectPtr> canary_ingress(const RouteContext& context) const {
        if (user_ingress_name(context).empty()) {
            return fail(ErrorKind::kInvalid,
                        "spec.ingressRef: the skipper provider needs the name of the Ingress to "
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
            co_return fail(ErrorKind::kNotFound,
                           "spec.ingressRef: Ingress " + user + "." + context.ns() + " not found");
        }
        auto desired = build_skipper_ingress(context, **user_ingress, routes);
        if (!desired) {
            co_return desired.error();
        }
        auto update_for = [&context, desired = *desired](const Json& found) {
            std::optional<Json> update = skipper_update(found, desired);
            if (update && !owned_by_canary(found, context)) {
                remember(found, *update);
            }
            return update;
        };
        auto ensured = co_await deps_.kube.ensure(route_types::ingresses(), context.ns(), *desired, update_for);
        if (!ensured) {
            co_return ensured.error();
        }
        if (*ensured == nullptr) {
            co_return fail(ErrorKind::kAlreadyExists,
                           "Ingress " + canary_ingress_name(context) + "." + context.ns() + " already exists");
        }
        co_return Result<void>{};
    }

    /// On the first change to a canary Ingress Serin did not create, records its spec and
    /// Skipper annotations in `update`, for finalize.
    static void remember(const Json& found, Json& update) {
        const Json* before = api::find_path(found, {"metadata", "annotations"});
        if (before != nullptr && before->is_object() &&
            before->contains(std::string(kOriginalSkipperAnnotationsKey))) {
            return;
        }
        Json kept = Json::object();
        if (before != nullptr && before->is_object()) {
            for (auto it = before->begin(); it != before->end(); ++it) {
                if (skipper_key(it.key())) {
                    kept[it.key()] = *it;
                }
            }
        }
        Json& annotations = update["metadata"]["annotations"];
        annotations[std::string(kOriginalSkipperAnnotationsKey)] = dump_json(kept);
        const Json* spec = api::member(found, "spec");
        annotations[std::string(kOriginalConfigKey)] = dump_json(spec != nullptr ? *spec : Json::object());
    }

    RouterDeps deps_;
};

}  // namespace

std::unique_ptr<MeshRouter> make_skipper_router(RouterDeps deps) {
    return std::make_unique<SkipperRouter>(deps);
}

}  // namespace serin::meshes
