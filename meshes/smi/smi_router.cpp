#include "meshes/smi/smi_router.hpp"

#include "platform/core/json.hpp"
#include <charconv>

#include "crds/api/json_access.hpp"
#include "meshes/common/route_object.hpp"
#include "meshes/common/route_types.hpp"

namespace serin::meshes {

namespace asio = boost::asio;
using Json = nlohmann::json;

Result<SmiFlavour> smi_flavour(std::string_view provider) {
    if (provider == "linkerd") {
        return SmiFlavour{"v1alpha1", "linkerd"};
    }
    if (provider == "osm") {
        return SmiFlavour{"v1alpha2", "osm"};
    }
    for (std::string_view version : {"v1alpha1", "v1alpha2", "v1alpha3"}) {
        const std::string prefix = "smi:" + std::string(version);
        if (provider == prefix) {
            return SmiFlavour{std::string(version), ""};
        }
        if (provider.starts_with(prefix + ":")) {
            return SmiFlavour{std::string(version), std::string(provider.substr(prefix.size() + 1))};
        }
    }
    return fail(ErrorKind::kInvalid,
                "spec.provider: \"" + std::string(provider) +
                    "\" is not an SMI provider (smi:v1alpha1, smi:v1alpha2, smi:v1alpha3, "
                    "optionally followed by :<mesh>; linkerd; osm)");
}

namespace {

Json weight_value(int weight, const SmiFlavour& flavour) {
    if (flavour.version == "v1alpha1") {
        return std::to_string(weight);  // a resource.Quantity
    }
    return weight;
}

/// A backend weight: an integer, or a Quantity string ("90", "500m" = 0.5 rounds to 0).
std::optional<int> parse_weight(const Json& weight) {
    if (weight.is_number()) {
        return read_weight(weight);
    }
    if (!weight.is_string()) {
        return std::nullopt;
    }
    const std::string& text = weight.get_ref<const std::string&>();
    long long value = 0;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (error != std::errc{}) {
        return std::nullopt;
    }
    const std::string_view suffix(end, static_cast<std::size_t>(text.data() + text.size() - end));
    if (suffix.empty()) {
        return clamp_weight(static_cast<long double>(value));
    }
    if (suffix == "m") {
        return clamp_weight(static_cast<long double>(value) / 1000);  // truncated there
    }
    return std::nullopt;
}

}  // namespace

Json build_traffic_split(const RouteContext& context, const analysis::Routes& routes,
                         const SmiFlavour& flavour) {
    const api::CanaryService& service = context.canary.spec.service;
    Json metadata = route_metadata(context, context.apex, service.apex);
    if (flavour.mesh == "istio" && !service.gateways.empty()) {
        metadata["annotations"]["VirtualService.v1alpha3.networking.istio.io/spec.gateways"] =
            dump_json(Json(service.gateways));
    }
    Json spec{{"service", service.hosts.empty() ? context.apex : service.hosts.front()},
              {"backends", Json::array({Json{{"service", context.canary_service},
                                             {"weight", weight_value(routes.canary, flavour)}},
                                        Json{{"service", context.primary},
                                             {"weight", weight_value(routes.primary, flavour)}}})}};
    return route_object(route_types::smi_traffic_splits(flavour.version), std::move(metadata),
                        std::move(spec));
}

Result<analysis::Routes> traffic_split_routes(const RouteContext& context, const Json& split) {
    const std::string where = "TrafficSplit " + context.apex + "." + context.ns();
    const Json* backends = api::find_path(split, {"spec", "backends"});
    if (backends == nullptr || !backends->is_array()) {
        return fail(ErrorKind::kInvalid, where + " has no spec.backends");
    }
    std::optional<int> primary;
    std::optional<int> canary;
    for (const Json& backend : *backends) {
        const std::string name = api::string_at(backend, {"service"});
        const Json* weight = api::member(backend, "weight");
        std::optional<int> value = weight != nullptr ? parse_weight(*weight) : std::optional<int>(0);
        if (name == context.primary) {
            primary = value;
        } else if (name == context.canary_service) {
            canary = value;
        }
    }
    if (!primary || !canary) {
        return fail(ErrorKind::kInvalid, where + " lacks a readable weight for backend " +
                                             (!primary ? context.primary : context.canary_service));
    }
    if (*primary == 0 && *canary == 0) {
        return fail(ErrorKind::kInvalid, where + ": both backend weights are 0");
    }
    return analysis::Routes{*primary, *canary, false};
}

namespace {

/// What Serin owns of a TrafficSplit's spec; v1alpha3's `matches` belongs to the user.
const OwnedKeys& owned_keys() {
    static const OwnedKeys keys{"service", "backends"};
    return keys;
}

class SmiRouter final : public MeshRouter {
public:
    SmiRouter(RouterDeps deps, std::string version) : deps_(deps), version_(std::move(version)) {}

    asio::awaitable<Result<void>> reconcile(RouteContext context) override {
        auto flavour = flavour_of(context);
        if (!flavour) {
            co_return flavour.error();
        }
        auto live = live_route(deps_, context, type(), context.apex);
        if (!live) {
            co_return live.error();
        }
        const analysis::Routes routes = current_routes_or_default(
            *live, [&](const Json& split) { return traffic_split_routes(context, split); });
        const Json desired = build_traffic_split(context, routes, *flavour);
        auto applied = co_await apply_route(deps_, context, type(), desired, owned_keys());
        if (!applied) {
            co_return applied.error();
        }
        co_return Result<void>{};
    }

    asio::awaitable<Result<analysis::Routes>> get_routes(RouteContext context) override {
        auto live = existing_route(deps_, context, type(), context.apex);
        if (!live) {
            co_return live.error();
        }
        co_return traffic_split_routes(context, **live);
    }

    asio::awaitable<Result<void>> set_routes(RouteContext context,
                                             analysis::Routes routes) override {
        auto flavour = flavour_of(context);
        if (!flavour) {
            co_return flavour.error();
        }
        routes.mirrored = false;
        const Json desired = build_traffic_split(context, routes, *flavour);
        auto applied = co_await apply_route(deps_, context, type(), desired, owned_keys());
        if (!applied) {
            co_return applied.error();
        }
        co_return Result<void>{};
    }

    asio::awaitable<Result<void>> finalize(RouteContext /*context*/) override {
        co_return Result<void>{};  // the TrafficSplit goes with the canary (owner reference)
    }

private:
    kube::ResourceType type() const { return route_types::smi_traffic_splits(version_); }

    Result<SmiFlavour> flavour_of(const RouteContext& context) const {
        auto flavour = smi_flavour(context.provider);
        if (flavour) {
            flavour->version = version_;
        }
        return flavour;
    }

    RouterDeps deps_;
    std::string version_;
};

}  // namespace

std::unique_ptr<MeshRouter> make_smi_router(RouterDeps deps, std::string version) {
    return std::make_unique<SmiRouter>(deps, std::move(version));
}

}  // namespace serin::meshes
