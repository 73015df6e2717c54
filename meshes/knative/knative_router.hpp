#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "meshes/router.hpp"

/// The Knative router (flagger-spec-providers §10): the user's serving.knative.dev/v1 Service X
/// is both the target and the routing object. There is no primary workload: annotation
/// flagger.app/primary-revision names the Revision considered primary, and spec.traffic splits X
/// between the latest created Revision (`latestRevision: true`, the canary) and that one. Knative
/// applies spec.traffic and reports it in status.traffic, which is what get_routes reads.
/// Pure builders and readers here (golden-tested), and the router that writes them.
namespace serin::meshes {

inline constexpr std::string_view kPrimaryRevisionAnnotation = "flagger.app/primary-revision";

/// The Revision X's annotation names as primary; "" when absent.
std::string knative_primary_revision(const nlohmann::json& service);
/// status.latestCreatedRevisionName of X; "" when Knative has not created one yet.
std::string knative_latest_revision(const nlohmann::json& service);

/// spec.traffic for `routes`: [{latestRevision: true, percent: canary},
/// {revisionName: primary_revision, latestRevision: false, percent: primary}].
nlohmann::json knative_traffic(std::string_view primary_revision, const analysis::Routes& routes);

/// The merge patch that sets spec.traffic of `service` for `routes`, or nullopt when it holds them.
/// Errors: kInvalid when the primary-revision annotation is absent (Flagger's SetRoutes error).
Result<std::optional<std::string>> knative_traffic_patch(const nlohmann::json& service,
                                                         const analysis::Routes& routes);

/// The merge patch that makes the latest created Revision the primary: the annotation, and
/// spec.traffic's primary entry naming it. `initialize` (a new canary): everything to it (latest
/// 0, primary 100). Otherwise (Promote) the weights of spec.traffic are kept, so that the
/// traffic reads back at once (Flagger moves only the annotation, and its GetRoutes then finds no
/// entry for the new primary until the next SetRoutes). nullopt when there is nothing to write,
/// or when Knative has created no Revision yet.
std::optional<std::string> knative_primary_patch(const nlohmann::json& service, bool initialize);

/// The routes X's status.traffic holds: `canary` from the entry with latestRevision true,
/// `primary` from the other entry naming the primary revision; never mirrored.
/// Errors: kInvalid "traffic spec invalid" when either entry is missing (or the annotation is),
/// "... percent missing" when an entry has no percent; kTransient while
/// Knative has not yet reconciled the Service's spec (status.observedGeneration < generation).
Result<analysis::Routes> knative_routes(const nlohmann::json& service);

/// The merge patch that removes the primary-revision annotation (finalize), or nullopt when
/// absent. spec.traffic is left as it is.
std::optional<std::string> knative_finalize_patch(const nlohmann::json& service);

/// The router of provider "knative": reconcile adds the annotation when absent, set_routes writes
/// spec.traffic, get_routes reads status.traffic, finalize removes the annotation.
std::unique_ptr<MeshRouter> make_knative_router(RouterDeps deps);

}  // namespace serin::meshes
