#include "platform/core/json.hpp"

#include "platform/core/text.hpp"

namespace serin {

std::size_t json_nesting_depth(std::string_view text, std::size_t stop_above) {
    std::size_t depth = 0;
    std::size_t deepest = 0;
    bool in_string = false;
    bool escaped = false;
    for (const char c : text) {
        if (in_string) {
            if (escaped) {
                escaped = false;
            } else if (c == '\\') {
                escaped = true;
            } else if (c == '"') {
                in_string = false;
            }
            continue;
        }
        switch (c) {
            case '"':
                in_string = true;
                break;
            case '[':
            case '{':
                if (++depth > deepest) {
                    deepest = depth;
                    if (deepest > stop_above) {
                        return deepest;
                    }
                }
                break;
            case ']':
            case '}':
                if (depth > 0) {
                    --depth;
                }
                break;
            default:
                break;
        }
    }
    return deepest;
}

Result<void> check_json_depth(std::string_view text, std::size_t max_depth,
                              std::string_view what) {
    if (json_nesting_depth(text, max_depth) > max_depth) {
        return fail(ErrorKind::kBadRequest, std::string(what) + " is nested deeper than " +
                                                std::to_string(max_depth) + " levels");
    }
    return Result<void>{};
}

Result<nlohmann::json> parse_json(std::string_view text, std::size_t max_depth,
                                  std::string_view what) {
    if (auto shallow = check_json_depth(text, max_depth, what); !shallow) {
        return shallow.error();
    }
    nlohmann::json value = nlohmann::json::parse(text, nullptr, false);
    if (value.is_discarded()) {
        return fail(ErrorKind::kBadRequest, std::string(what) + " is not JSON");
    }
    // nlohmann::json converts to anything, so say which alternative of the result this is.
    return Result<nlohmann::json>(boost::system::in_place_value, std::move(value));
}

std::string dump_json(const nlohmann::json& value) {
    return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string show_json(const nlohmann::json& value, std::size_t max_bytes) {
    return text::clip(dump_json(value), max_bytes);
}

std::string json_string(const nlohmann::json& object, std::string_view key,
                        std::string_view fallback) {
    if (!object.is_object()) {
        return std::string(fallback);
    }
    const auto it = object.find(key);
    if (it == object.end() || !it->is_string()) {
        return std::string(fallback);
    }
    return it->get_ref<const std::string&>();
}

}  // namespace serin
