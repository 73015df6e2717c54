#pragma once

#include <optional>
#include <string>

#include "controller/workload/workload.hpp"
#include "crds/api/canary.hpp"
#include "meshes/router.hpp"
#include "platform/kube/informer.hpp"

namespace serin::canary {

class TargetKind;

/// One reconcile's canary, its target and the names derived from them. Built by the Reconciler,
/// read by the parts it hands the canary to (owned objects, answers, reporter).
struct CanaryContext {
    std::string key;      ///< "<namespace>/<name>"
    kube::ObjectPtr raw;  ///< the Canary object as last read or written
    api::Canary canary;
    std::string provider;  ///< spec.provider, else -mesh-provider
    meshes::MeshRouter* router = nullptr;
    const TargetKind* kind = nullptr;  ///< of spec.targetRef.kind
    kube::ObjectPtr target;
    kube::ObjectPtr primary;
    SelectorLabel label;
    std::optional<api::StringMap> configs;  ///< tracked config checksums
    kube::Json owner;                       ///< the owner reference to the canary

    const std::string& ns() const { return canary.metadata.ns; }
    const std::string& target_name() const { return canary.spec.target_ref.name; }
    std::string primary_name() const { return target_name() + "-primary"; }
    /// "<name>.<namespace>", as Flagger names a canary in Events.
    std::string id() const { return canary.metadata.name + "." + ns(); }

    meshes::RouteContext route_context() const {
        const std::string& apex = canary.spec.service.name;
        return meshes::RouteContext{canary,           provider,         owner,     apex,
                                    apex + "-primary", apex + "-canary", label.key, label.value};
    }
};

}  // namespace serin::canary
