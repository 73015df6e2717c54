#include "platform/kube/kube_client.hpp"

#include "platform/core/base64.hpp"

namespace serin::kube {

namespace {
std::string metadata_string(const Json& object, const char* field) {
    auto meta = object.find("metadata");
    if (meta == object.end() || !meta->is_object()) {
        return {};
    }
    auto it = meta->find(field);
    if (it == meta->end() || !it->is_string()) {
        return {};
    }
    return it->get<std::string>();
}
}  // namespace

std::string object_namespace(const Json& object) { return metadata_string(object, "namespace"); }
std::string object_name(const Json& object) { return metadata_string(object, "name"); }
std::string object_resource_version(const Json& object) {
    return metadata_string(object, "resourceVersion");
}
std::string object_uid(const Json& object) { return metadata_string(object, "uid"); }
std::string secret_data(const Json& secret, const std::string& key) {
    const auto data = secret.find("data");
    if (data == secret.end() || !data->is_object()) {
        return {};
    }
    const auto value = data->find(key);
    if (value == data->end() || !value->is_string()) {
        return {};
    }
    return decode_base64(value->get<std::string>()).value_or(std::string());
}

}  // namespace serin::kube
