#include "tests/support/golden.hpp"

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "controller/workload/workload.hpp"
#include "crds/api/canary.hpp"
#include "platform/kube/manifest.hpp"

namespace serin::testing {

using Json = nlohmann::json;

std::filesystem::path source_dir() { return SERIN_SOURCE_DIR; }

namespace {

std::string read_file(const std::filesystem::path& path) {
    std::ifstream in(path);
    if (!in) {
        throw std::runtime_error("cannot read " + path.string());
    }
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

}  // namespace

Json load_document(const std::string& relative) {
    const std::filesystem::path path = source_dir() / relative;
    auto docs = kube::parse_manifests(read_file(path));
    if (!docs || docs->size() != 1) {
        throw std::runtime_error(path.string() + ": expected exactly one document");
    }
    return docs->front();
}

meshes::RouteContext route_context(const Json& canary, std::string provider) {
    auto decoded = api::decode_canary(canary);
    if (!decoded) {
        throw std::runtime_error("canary does not decode: " + decoded.error().message);
    }
    meshes::RouteContext context;
    context.canary = std::move(*decoded);
    context.provider = std::move(provider);
    context.owner_reference = canary::owner_reference(context.canary);
    const std::string& apex = context.canary.spec.service.name;
    context.apex = apex;
    context.primary = apex + "-primary";
    context.canary_service = apex + "-canary";
    context.label_key = "app";
    context.label_value = context.canary.spec.target_ref.name;
    return context;
}

std::string golden(const std::string& relative, const Json& actual) {
    const std::filesystem::path path = source_dir() / "tests" / "data" / "golden" / relative;
    const std::string text = actual.dump(2) + "\n";
    const char* update = std::getenv("SERIN_UPDATE_GOLDEN");
    if (update != nullptr && std::string(update) == "1") {
        std::filesystem::create_directories(path.parent_path());
        std::ofstream(path) << text;
        return {};
    }
    std::ifstream in(path);
    if (!in) {
        return "golden file " + path.string() +
               " is missing; run with SERIN_UPDATE_GOLDEN=1 to write it. Actual:\n" + text;
    }
    std::ostringstream expected;
    expected << in.rdbuf();
    Json parsed = Json::parse(expected.str(), nullptr, false);
    if (!parsed.is_discarded() && parsed == actual) {
        return {};
    }
    return "differs from " + path.string() + "\n--- expected\n" + expected.str() +
           "--- actual\n" + text + "--- JSON patch from expected to actual\n" +
           (parsed.is_discarded() ? std::string("(expected is not JSON)")
                                  : Json::diff(parsed, actual).dump(2));
}

}  // namespace serin::testing
