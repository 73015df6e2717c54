#include "tests/support/kustomize.hpp"

#include <fstream>
#include <sstream>

#include "devcluster/process.hpp"
#include "platform/kube/manifest.hpp"

namespace serin::testing {

namespace fs = std::filesystem;

const nlohmann::json* Rendered::find(const std::string& kind, const std::string& name) const {
    for (const auto& object : objects) {
        if (object.value("kind", "") == kind &&
            object.value("metadata", nlohmann::json::object()).value("name", "") == name) {
            return &object;
        }
    }
    return nullptr;
}

Result<Rendered> kustomize(const fs::path& dir, const fs::path& out_file) {
    // The shell only redirects stdout to the file; kubectl gets the folder as an argument.
    auto ran = devcluster::run_command(
        "sh", {"-c", "exec kubectl kustomize \"$1\" > \"$2\"", "sh", dir.string(), out_file.string()},
        std::chrono::seconds{60});
    if (!ran) {
        return ran.error();
    }
    if (ran->exit_code != 0) {
        return fail(ErrorKind::kInternal, "kubectl kustomize " + dir.string() + " exited with " +
                                              std::to_string(ran->exit_code) + ": " + ran->output);
    }
    std::ifstream in(out_file);
    std::stringstream text;
    text << in.rdbuf();
    auto objects = kube::parse_manifests(text.str());
    if (!objects) {
        return objects.error();
    }
    return Rendered{out_file, std::move(*objects)};
}

Result<std::string> kubectl(const fs::path& kubeconfig, std::vector<std::string> args) {
    args.insert(args.begin(), "--kubeconfig=" + kubeconfig.string());
    auto ran = devcluster::run_command("kubectl", args, std::chrono::seconds{120});
    if (!ran) {
        return ran.error();
    }
    if (ran->exit_code != 0) {
        std::string line = "kubectl";
        for (const auto& arg : args) {
            line += " " + arg;
        }
        return fail(ErrorKind::kInternal, line + " exited with " +
                                              std::to_string(ran->exit_code) + ": " + ran->output);
    }
    return std::move(ran->output);
}

}  // namespace serin::testing
