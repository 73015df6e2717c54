#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "meshes/router.hpp"

/// The Skipper router (flagger-spec-providers §9): the Ingress `<ingressRef>-canary`
/// (networking.k8s.io/v1), a copy of the user's Ingress in which every path to S goes to
/// S-primary and a copy of it to S-canary, steered by zalando.org/backend-weights and made to win
/// over the user's Ingress by a Weight(100) predicate. The user's Ingress is read, never written.
namespace serin::meshes {

inline constexpr std::string_view kSkipperWeightsKey = "zalando.org/backend-weights";
inline constexpr std::string_view kSkipperPredicateKey = "zalando.org/skipper-predicate";

/// The canary Ingress's predicate: `Weight(100)` (or, when the canary weight is 0, `False()`, so
/// that Skipper routes by the user's Ingress alone) followed by the user's predicates (split on
/// "&&", trimmed, without Weight(100) and False()), joined with " && ".
std::string skipper_predicate(std::string_view user_predicate, int canary_weight);

/// The canary Ingress `<I>-canary` for `routes` (pure): the user's labels; the user's annotations
/// (without kubectl's last-applied-configuration), the Flux and Helm anti-drift annotations,
/// backend-weights `{"S-canary":w,"S-primary":p}` and the predicate; the owner reference; the
/// user's spec with every path to S sent to S-primary and a copy of it to S-canary appended to
/// the same rule. Errors: kInvalid naming the field for an analysis match (Skipper has no A/B
/// routing), a rule without http paths, or no path to S.
Result<nlohmann::json> build_skipper_ingress(const RouteContext& context,
                                             const nlohmann::json& user_ingress,
                                             const analysis::Routes& routes);

/// The routes a live canary Ingress holds, from backend-weights (parsed with limits). Never
/// mirrored. Errors: kInvalid when the annotation is missing, not a JSON object, or lacks a
/// number for S-primary or S-canary.
Result<analysis::Routes> skipper_ingress_routes(const RouteContext& context,
                                                const nlohmann::json& canary_ingress);

/// The router of provider "skipper". reconcile creates the canary Ingress from the user's or
/// brings its spec back to the user's, keeping the weights it holds (Flagger resets them to
/// 100/0); set_routes writes the two annotations; finalize (revertOnDeletion) deletes the canary
/// Ingress Serin created (one already gone is done, where Flagger retries forever) and gives an
/// adopted one back its spec and Skipper annotations.
std::unique_ptr<MeshRouter> make_skipper_router(RouterDeps deps);

}  // namespace serin::meshes
