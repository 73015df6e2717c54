#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "meshes/router.hpp"

/// Golden files for the routers' pure builders (tests/data/golden/...).
///
/// A golden file holds the JSON a builder is expected to produce, pretty-printed. Run a test with
/// SERIN_UPDATE_GOLDEN=1 to (re)write its files from what the code produces now; review the diff
/// before committing it.
namespace serin::testing {

/// The repository root (compiled in).
std::filesystem::path source_dir();

/// The single YAML or JSON document in `relative` (to the repository root).
nlohmann::json load_document(const std::string& relative);

/// A RouteContext for the Canary manifest `canary` as the reconciler makes it: names from
/// spec.service.name (else targetRef.name), the owner reference, selector label app=<target>.
/// Throws std::runtime_error when the Canary does not decode.
meshes::RouteContext route_context(const nlohmann::json& canary, std::string provider);

/// Compares `actual` with the golden file `relative` (under tests/data/golden/). Returns an empty
/// string when they are equal (or the file was just rewritten), otherwise a message with both
/// texts for the test to report: `CHECK(golden(...) == "")`.
std::string golden(const std::string& relative, const nlohmann::json& actual);

}  // namespace serin::testing
