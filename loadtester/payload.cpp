#include "loadtester/payload.hpp"

#include "platform/core/json.hpp"
#include "platform/core/text.hpp"

namespace serin::loadtester {

namespace {

Result<std::string> string_field(const nlohmann::json& object, const char* key) {
    const auto it = object.find(key);
    if (it == object.end() || it->is_null()) {
        return std::string();
    }
    if (!it->is_string()) {
        return fail(ErrorKind::kBadRequest, std::string("payload field \"") + key +
                                                "\" is not a string");
    }
    return it->get<std::string>();
}

}  // namespace

Result<Payload> read_payload(std::string_view body) {
    if (body.size() > kMaxBodyBytes) {
        return fail(ErrorKind::kBadRequest, "payload larger than " +
                                                std::to_string(kMaxBodyBytes) + " bytes");
    }
    if (!text::is_valid_utf8(body)) {
        return fail(ErrorKind::kBadRequest, "payload is not valid UTF-8");
    }
    auto parsed = parse_json(body, kMaxPayloadDepth, "payload");
    if (!parsed) {
        return parsed.error();
    }
    const nlohmann::json& json = *parsed;
    if (!json.is_object()) {
        return fail(ErrorKind::kBadRequest, "payload is not a JSON object");
    }
    Payload payload;
    std::string* fields[] = {&payload.name, &payload.ns, &payload.phase, &payload.checksum};
    const char* keys[] = {"name", "namespace", "phase", "checksum"};
    for (std::size_t i = 0; i < 4; ++i) {
        auto value = string_field(json, keys[i]);
        if (!value) {
            return value.error();
        }
        *fields[i] = std::move(*value);
    }
    if (payload.name.size() > kMaxNameBytes || payload.ns.size() > kMaxNameBytes) {
        return fail(ErrorKind::kBadRequest, "payload name or namespace longer than " +
                                                std::to_string(kMaxNameBytes) + " bytes");
    }
    const auto metadata = json.find("metadata");
    if (metadata != json.end() && !metadata->is_null()) {
        if (!metadata->is_object()) {
            return fail(ErrorKind::kBadRequest, "payload field \"metadata\" is not an object");
        }
        for (const auto& [key, value] : metadata->items()) {
            if (!value.is_string()) {
                return fail(ErrorKind::kBadRequest,
                            "metadata \"" + text::clip(key, 64) + "\" is not a string");
            }
            payload.metadata.emplace(key, value.get<std::string>());
        }
    }
    return payload;
}

}  // namespace serin::loadtester
