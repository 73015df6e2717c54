#include "platform/kube/discovery.hpp"

#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

namespace serin::kube {

boost::asio::awaitable<std::vector<ResourceType>> served_types(KubeClient& client,
                                                               std::vector<ResourceType> wanted) {
    std::map<std::string, std::set<std::string>> resources;  // group-version path -> names
    std::vector<ResourceType> served;
    for (const ResourceType& type : wanted) {
        const std::string path = type.group_version_path();
        auto known = resources.find(path);
        if (known == resources.end()) {
            std::set<std::string> names;
            auto listed = co_await client.get_raw(path);
            if (listed) {
                const auto list = nlohmann::json::parse(*listed, nullptr, false);
                const auto items = list.is_object() ? list.find("resources") : list.end();
                if (list.is_object() && items != list.end() && items->is_array()) {
                    for (const auto& item : *items) {
                        if (item.is_object() && item.value("name", "").find('/') ==
                                                    std::string::npos) {
                            names.insert(item.value("name", ""));
                        }
                    }
                }
            }
            known = resources.emplace(path, std::move(names)).first;
        }
        if (known->second.count(type.resource) > 0) {
            served.push_back(type);
        }
    }
    co_return served;
}

}  // namespace serin::kube
