#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "platform/core/result.hpp"

/// The install manifests as a cluster admin gets them: `kubectl kustomize` of crds/ or one of
/// crds/overlays/<provider>, with the kubectl on $PATH (tests/integration/manifests_test,
/// tests/e2e/install_e2e_test).
namespace serin::testing {

/// What `kubectl kustomize` printed: the YAML file and its objects in order.
struct Rendered {
    std::filesystem::path file;
    std::vector<nlohmann::json> objects;

    /// The first object of `kind` named `name`, or nullptr.
    const nlohmann::json* find(const std::string& kind, const std::string& name) const;
};

/// Renders `dir` into `out_file` (stdout only: newer kubectl warns about deprecated fields on
/// stderr). Fails (kInternal) with kubectl's output when it exits non-zero, or (kInvalid) when
/// the output is not YAML.
Result<Rendered> kustomize(const std::filesystem::path& dir, const std::filesystem::path& out_file);

/// Runs kubectl with `args` against the cluster of `kubeconfig` and returns its output (stdout
/// and stderr), or fails (kInternal) with that output when it exits non-zero.
Result<std::string> kubectl(const std::filesystem::path& kubeconfig, std::vector<std::string> args);

}  // namespace serin::testing
