#pragma once

#include <initializer_list>
#include <nlohmann/json.hpp>
#include <string_view>

namespace serin::meshes {

/// The matches of an A/B route (flagger-spec §4.1, §4.4): when either list is empty, the other;
/// otherwise, for every service match and every analysis match, a copy of the service match whose
/// `replaced` keys (Istio: headers, sourceLabels; Gateway API: headers, queryParams) are the
/// analysis match's where it sets them. Both arguments are arrays or null.
nlohmann::json merge_matches(const nlohmann::json& analysis_match,
                             const nlohmann::json& service_match,
                             std::initializer_list<std::string_view> replaced);

}  // namespace serin::meshes
