#include "meshes/kubernetes/kubernetes_router.hpp"

#include "crds/api/json_access.hpp"

namespace serin::meshes {

namespace asio = boost::asio;
using Json = nlohmann::json;

Json kubernetes_apex_selector(const RouteContext& context, const analysis::Routes& routes) {
    const bool canary = routes.canary >= 100;
    return Json{{context.label_key, canary ? context.label_value : context.label_value + "-primary"}};
}

namespace {

class KubernetesRouter final : public MeshRouter {
public:
    explicit KubernetesRouter(RouterDeps deps) : kube_(deps.kube) {}

    // MeshRouter
    asio::awaitable<Result<void>> reconcile(RouteContext /*context*/) override {
        // The Services are the reconciler's; there is no routing object of our own.
        co_return Result<void>{};
    }

    asio::awaitable<Result<analysis::Routes>> get_routes(RouteContext context) override {
        kube::ObjectPtr apex = kube_.get(kube::types::services(), context.ns(), context.apex);
        if (apex == nullptr) {
            co_return fail(ErrorKind::kNotFound,
                           "service " + context.apex + "." + context.ns() + " not found");
        }
        const Json* selector = selector_of(*apex);
        const bool canary = selector != nullptr && selector->is_object() &&
                            selector->value(context.label_key, "") == context.label_value;
        co_return canary ? analysis::Routes{0, 100, false} : analysis::Routes{100, 0, false};
    }

    asio::awaitable<Result<void>> set_routes(RouteContext context,
                                             analysis::Routes routes) override {
        kube::ObjectPtr apex = kube_.get(kube::types::services(), context.ns(), context.apex);
        if (apex == nullptr) {
            co_return fail(ErrorKind::kNotFound,
                           "service " + context.apex + "." + context.ns() + " not found");
        }
        const Json want = kubernetes_apex_selector(context, routes);
        const Json* have = selector_of(*apex);
        if (have != nullptr && *have == want) {
            co_return Result<void>{};
        }
        Json updated = *apex;
        updated["spec"]["selector"] = want;
        auto written = co_await kube_.update(kube::types::services(), context.ns(), updated);
        if (!written) {
            co_return written.error();
        }
        co_return Result<void>{};
    }

    asio::awaitable<Result<void>> finalize(RouteContext /*context*/) override {
        co_return Result<void>{};  // the reconciler reverts the apex Service
    }

    bool owns_apex_selector() const override { return true; }

private:
    static const Json* selector_of(const Json& service) {
        return api::find_path(service, {"spec", "selector"});
    }

    kube::CachedClient& kube_;
};

}  // namespace

std::unique_ptr<MeshRouter> make_kubernetes_router(RouterDeps deps) {
    return std::make_unique<KubernetesRouter>(deps);
}

}  // namespace serin::meshes
