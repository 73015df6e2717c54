#include "crds/api/json_access.hpp"

namespace serin::api {

using Json = nlohmann::json;

const Json* member(const Json& object, std::string_view key) {
    if (!object.is_object()) {
        return nullptr;
    }
    auto it = object.find(key);
    if (it == object.end() || it->is_null()) {
        return nullptr;
    }
    return &*it;
}

const Json* find_path(const Json& root, std::initializer_list<std::string_view> keys) {
    const Json* current = &root;
    for (std::string_view key : keys) {
        current = member(*current, key);
        if (current == nullptr) {
            return nullptr;
        }
    }
    return current;
}

std::string string_at(const Json& root, std::initializer_list<std::string_view> keys) {
    const Json* value = find_path(root, keys);
    return value != nullptr && value->is_string() ? value->get<std::string>() : std::string();
}

}  // namespace serin::api
