#include "meshes/common/match.hpp"

#include <string>

namespace serin::meshes {

using Json = nlohmann::json;

Json merge_matches(const Json& analysis_match, const Json& service_match,
                   std::initializer_list<std::string_view> replaced) {
    const bool no_analysis = !analysis_match.is_array() || analysis_match.empty();
    const bool no_service = !service_match.is_array() || service_match.empty();
    if (no_service) {
        return no_analysis ? Json::array() : analysis_match;
    }
    if (no_analysis) {
        return service_match;
    }
    Json merged = Json::array();
    for (const Json& base : service_match) {
        for (const Json& ab : analysis_match) {
            Json match = base;
            for (std::string_view key : replaced) {
                if (ab.is_object() && ab.contains(std::string(key))) {
                    match[std::string(key)] = ab[std::string(key)];
                }
            }
            merged.push_back(std::move(match));
        }
    }
    return merged;
}

}  // namespace serin::meshes
