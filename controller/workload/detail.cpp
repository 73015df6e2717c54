#include "controller/workload/detail.hpp"

#include <algorithm>
#include <cctype>

namespace serin::canary::detail {

Json* mutable_at(Json& root, std::initializer_list<std::string_view> keys) {
    Json* current = &root;
    for (std::string_view key : keys) {
        if (!current->is_object()) {
            return nullptr;
        }
        auto it = current->find(key);
        if (it == current->end() || it->is_null()) {
            return nullptr;
        }
        current = &*it;
    }
    return current;
}


std::optional<std::int64_t> int_at(const Json& root, std::initializer_list<std::string_view> keys) {
    const Json* value = find_path(root, keys);
    if (value == nullptr || !value->is_number_integer()) {
        return std::nullopt;
    }
    return value->get<std::int64_t>();
}

std::int64_t int_or_zero(const Json& root, std::initializer_list<std::string_view> keys) {
    return int_at(root, keys).value_or(0);
}

bool bool_at(const Json& root, std::initializer_list<std::string_view> keys) {
    const Json* value = find_path(root, keys);
    return value != nullptr && value->is_boolean() && value->get<bool>();
}

/// The array at `keys`, or an empty one.
const Json& array_at(const Json& root, std::initializer_list<std::string_view> keys) {
    static const Json kEmpty = Json::array();
    const Json* value = find_path(root, keys);
    return value != nullptr && value->is_array() ? *value : kEmpty;
}

/// The object at `keys`, or an empty one.
const Json& object_at(const Json& root, std::initializer_list<std::string_view> keys) {
    static const Json kEmpty = Json::object();
    const Json* value = find_path(root, keys);
    return value != nullptr && value->is_object() ? *value : kEmpty;
}

bool starts_with(std::string_view text, std::string_view prefix) {
    return text.substr(0, prefix.size()) == prefix;
}

bool is_toolkit_key(std::string_view key) {
    return key.find(kToolkitMarker) != std::string_view::npos;
}

/// The string members of `map` whose key does not contain toolkit.fluxcd.io.
Json without_toolkit_keys(const Json& map) {
    Json out = Json::object();
    if (!map.is_object()) {
        return out;
    }
    for (auto it = map.begin(); it != map.end(); ++it) {
        if (it->is_string() && !is_toolkit_key(it.key())) {
            out[it.key()] = *it;
        }
    }
    return out;
}

/// Flagger's includeLabelsByPrefix: keys starting with one of `prefixes` ("*" = all, empty
/// prefixes ignored), never toolkit.fluxcd.io keys.
Json filter_by_prefix(const Json& map, const std::vector<std::string>& prefixes) {
    Json out = Json::object();
    if (!map.is_object()) {
        return out;
    }
    for (auto it = map.begin(); it != map.end(); ++it) {
        if (!it->is_string() || is_toolkit_key(it.key())) {
            continue;
        }
        const bool included = std::any_of(prefixes.begin(), prefixes.end(), [&](const auto& p) {
            return p == "*" || (!p.empty() && starts_with(it.key(), p));
        });
        if (included) {
            out[it.key()] = *it;
        }
    }
    return out;
}

bool is_empty_value(const Json& value) {
    return value.is_null() || ((value.is_object() || value.is_array()) && value.empty());
}

/// Drops null, {} and [] members recursively. Array elements are cleaned but kept, so positions
/// stay meaningful.
Json cleaned(const Json& value) {
    if (value.is_object()) {
        Json out = Json::object();
        for (auto it = value.begin(); it != value.end(); ++it) {
            Json member = cleaned(*it);
            if (!is_empty_value(member)) {
                out[it.key()] = std::move(member);
            }
        }
        return out;
    }
    if (value.is_array()) {
        Json out = Json::array();
        for (const Json& element : value) {
            out.push_back(cleaned(element));
        }
        return out;
    }
    return value;
}

std::string dump(const Json& value) {
    return value.dump(-1, ' ', false, Json::error_handler_t::replace);
}

/// Whether every field of `desired` has the same value in `live`: objects may carry extra
/// (server-defaulted) members in `live`, arrays must have the same length and match element-wise.
/// `desired` is expected to be cleaned.
bool is_subset(const Json& desired, const Json& live) {
    if (desired.is_object()) {
        if (!live.is_object()) {
            return false;
        }
        for (auto it = desired.begin(); it != desired.end(); ++it) {
            auto found = live.find(it.key());
            if (found == live.end() || !is_subset(*it, *found)) {
                return false;
            }
        }
        return true;
    }
    if (desired.is_array()) {
        if (!live.is_array() || live.size() != desired.size()) {
            return false;
        }
        for (std::size_t i = 0; i < desired.size(); ++i) {
            if (!is_subset(desired.at(i), live.at(i))) {
                return false;
            }
        }
        return true;
    }
    return desired == live;
}

/// `desired` matches `live` when both are empty, or desired ⊆ live (see is_subset).
bool matches(const Json* desired, const Json* live) {
    const Json want = desired != nullptr ? cleaned(*desired) : Json();
    const Json have = live != nullptr ? cleaned(*live) : Json();
    if (is_empty_value(want)) {
        return is_empty_value(have);
    }
    return is_subset(want, have);
}

std::string lower(std::string text) {
    std::transform(text.begin(), text.end(), text.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return text;
}

/// Go's encoding/json escapes <, >, & and U+2028/U+2029 inside strings; nlohmann does not. Those
/// characters only occur inside strings of a dump, so a textual replacement is exact.
std::string go_json_escape(const std::string& text) {
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (c == '<') {
            out += "\\u003c";
        } else if (c == '>') {
            out += "\\u003e";
        } else if (c == '&') {
            out += "\\u0026";
        } else if (c == '\xE2' && i + 2 < text.size() && text[i + 1] == '\x80' &&
                   (text[i + 2] == '\xA8' || text[i + 2] == '\xA9')) {
            out += text[i + 2] == '\xA8' ? "\\u2028" : "\\u2029";
            i += 2;
        } else {
            out += c;
        }
    }
    return out;
}

void copy_field(const Json& from, Json& to, std::string_view key) {
    if (const Json* value = member(from, key)) {
        to[std::string(key)] = *value;
    }
}

}  // namespace serin::canary::detail
