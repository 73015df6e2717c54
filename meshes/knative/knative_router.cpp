#include "meshes/knative/knative_router.hpp"

#include "crds/api/json_access.hpp"
#include "meshes/common/route_object.hpp"
#include "meshes/common/route_types.hpp"
#include "platform/core/json.hpp"

namespace serin::meshes {

namespace asio = boost::asio;
using Json = nlohmann::json;
using api::find_path;
using api::string_at;

namespace {

std::string service_id(const Json& service) {
    return "Service " + string_at(service, {"metadata", "name"}) + "." +
           string_at(service, {"metadata", "namespace"});
}

std::int64_t integer_at(const Json& object, std::initializer_list<std::string_view> path) {
    const Json* value = find_path(object, path);
    return value != nullptr && value->is_number_integer() ? value->get<std::int64_t>() : 0;
}

/// The routes a traffic list (`where`: spec or status) holds: `canary` from the first entry with
/// latestRevision true, `primary` from the first other entry naming `primary`.
Result<analysis::Routes> traffic_routes(const Json& service, const char* where,
                                        const std::string& primary) {
    const Json* traffic = find_path(service, {where, "traffic"});
    std::optional<int> canary_weight;
    std::optional<int> primary_weight;
    bool canary_seen = false;
    bool primary_seen = false;
    if (traffic != nullptr && traffic->is_array() && !primary.empty()) {
        for (const Json& entry : *traffic) {
            const Json* latest = find_path(entry, {"latestRevision"});
            const bool is_latest = latest != nullptr && latest->is_boolean() && latest->get<bool>();
            const Json* percent = find_path(entry, {"percent"});
            if (is_latest && !canary_seen) {
                canary_seen = true;
                canary_weight = percent != nullptr ? read_weight(*percent) : std::nullopt;
            } else if (!is_latest && !primary_seen &&
                       string_at(entry, {"revisionName"}) == primary) {
                primary_seen = true;
                primary_weight = percent != nullptr ? read_weight(*percent) : std::nullopt;
            }
        }
    }
    if (!canary_seen || !primary_seen) {
        return fail(ErrorKind::kInvalid, service_id(service) + " traffic spec invalid");
    }
    if (!canary_weight || !primary_weight) {
        return fail(ErrorKind::kInvalid, service_id(service) + " traffic percent missing");
    }
    return analysis::Routes{*primary_weight, *canary_weight, false};
}

}  // namespace

std::string knative_primary_revision(const Json& service) {
    return string_at(service, {"metadata", "annotations", kPrimaryRevisionAnnotation});
}

std::string knative_latest_revision(const Json& service) {
    return string_at(service, {"status", "latestCreatedRevisionName"});
}

Json knative_traffic(std::string_view primary_revision, const analysis::Routes& routes) {
    return Json::array({Json{{"latestRevision", true}, {"percent", routes.canary}},
                        Json{{"revisionName", primary_revision},
                             {"latestRevision", false},
                             {"percent", routes.primary}}});
}

Result<std::optional<std::string>> knative_traffic_patch(const Json& service,
                                                         const analysis::Routes& routes) {
    const std::string primary = knative_primary_revision(service);
    if (primary.empty()) {
        return fail(ErrorKind::kInvalid, service_id(service) + " update failed: annotation " +
                                             std::string(kPrimaryRevisionAnnotation) +
                                             " not found");
    }
    Json traffic = knative_traffic(primary, routes);
    if (const Json* live = find_path(service, {"spec", "traffic"});
        live != nullptr && *live == traffic) {
        return std::optional<std::string>{};
    }
    return std::optional<std::string>{dump_json(Json{{"spec", {{"traffic", std::move(traffic)}}}})};
}

std::optional<std::string> knative_primary_patch(const Json& service, bool initialize) {
    const std::string latest = knative_latest_revision(service);
    if (latest.empty()) {
        return std::nullopt;
    }
    Json patch = Json::object();
    if (knative_primary_revision(service) != latest) {
        patch["metadata"]["annotations"][std::string(kPrimaryRevisionAnnotation)] = latest;
    }
    // Initialization routes everything to the primary; a promotion keeps the weights, the
    // primary's entry now naming the promoted revision.
    analysis::Routes routes{100, 0, false};
    if (!initialize) {
        if (auto kept = traffic_routes(service, "spec", knative_primary_revision(service))) {
            routes = *kept;
        }
    }
    Json traffic = knative_traffic(latest, routes);
    const Json* live = find_path(service, {"spec", "traffic"});
    if (live == nullptr || *live != traffic) {
        patch["spec"]["traffic"] = std::move(traffic);
    }
    if (patch.empty()) {
        return std::nullopt;
    }
    return dump_json(patch);
}

Result<analysis::Routes> knative_routes(const Json& service) {
    const std::int64_t generation = integer_at(service, {"metadata", "generation"});
    const std::int64_t observed = integer_at(service, {"status", "observedGeneration"});
    if (observed < generation) {
        return fail(ErrorKind::kTransient,
                    service_id(service) + " traffic not applied yet: observedGeneration " +
                        std::to_string(observed) + " < generation " + std::to_string(generation));
    }
    return traffic_routes(service, "status", knative_primary_revision(service));
}

std::optional<std::string> knative_finalize_patch(const Json& service) {
    if (find_path(service, {"metadata", "annotations", kPrimaryRevisionAnnotation}) == nullptr) {
        return std::nullopt;
    }
    Json patch;
    patch["metadata"]["annotations"][std::string(kPrimaryRevisionAnnotation)] = nullptr;
    return dump_json(patch);
}

namespace {

class KnativeRouter final : public MeshRouter {
public:
    explicit KnativeRouter(RouterDeps deps) : deps_(deps) {}

    asio::awaitable<Result<void>> reconcile(RouteContext context) override {
        auto live = service(context);
        if (!live) {
            co_return live.error();
        }
        // Only when absent: the workload's initialization and promotion move it.
        if (!knative_primary_revision(**live).empty()) {
            co_return Result<void>{};
        }
        co_return co_await write(context, knative_primary_patch(**live, false));
    }

    asio::awaitable<Result<analysis::Routes>> get_routes(RouteContext context) override {
        auto live = service(context);
        if (!live) {
            co_return live.error();
        }
        co_return knative_routes(**live);
    }

    asio::awaitable<Result<void>> set_routes(RouteContext context,
                                             analysis::Routes routes) override {
        auto live = service(context);
        if (!live) {
            co_return live.error();
        }
        auto patch = knative_traffic_patch(**live, routes);
        if (!patch) {
            co_return patch.error();
        }
        co_return co_await write(context, *patch);
    }

    asio::awaitable<Result<void>> finalize(RouteContext context) override {
        auto live = live_route(deps_, context, route_types::knative_services(),
                               context.canary.spec.target_ref.name);
        if (!live) {
            co_return live.error();
        }
        if (*live == nullptr) {
            co_return Result<void>{};
        }
        co_return co_await write(context, knative_finalize_patch(**live));
    }

private:
    Result<kube::ObjectPtr> service(const RouteContext& context) const {
        return existing_route(deps_, context, route_types::knative_services(),
                              context.canary.spec.target_ref.name);
    }

    asio::awaitable<Result<void>> write(RouteContext context, std::optional<std::string> patch) {
        if (!patch) {
            co_return Result<void>{};
        }
        auto written = co_await deps_.kube.patch(route_types::knative_services(), context.ns(),
                                                 context.canary.spec.target_ref.name,
                                                 kube::PatchType::kMerge, *patch);
        if (!written) {
            co_return written.error();
        }
        co_return Result<void>{};
    }

    RouterDeps deps_;
};

}  // namespace

std::unique_ptr<MeshRouter> make_knative_router(RouterDeps deps) {
    return std::make_unique<KnativeRouter>(deps);
}

}  // namespace serin::meshes
