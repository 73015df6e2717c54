#pragma once

#include <initializer_list>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

/// Reading Kubernetes objects as JSON without nlohmann's throwing or inserting accessors.
namespace serin::api {

/// The member `key` of `object`, or nullptr when `object` is not an object or the member is
/// absent or null (Kubernetes treats those alike).
const nlohmann::json* member(const nlohmann::json& object, std::string_view key);

/// The value reached by following `keys` from `root`, or nullptr.
const nlohmann::json* find_path(const nlohmann::json& root,
                                std::initializer_list<std::string_view> keys);

/// The string at `keys`, or "" when it is absent or not a string.
std::string string_at(const nlohmann::json& root, std::initializer_list<std::string_view> keys);

}  // namespace serin::api
