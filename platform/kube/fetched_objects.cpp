#include "platform/kube/fetched_objects.hpp"

#include "platform/kube/object_store.hpp"

namespace serin::kube {

FetchedObjects::FetchedObjects(KubeClient& client, Informer& metadata)
    : client_(client), metadata_(metadata) {
    // A change or a delete drops the copy: the next fetch() reads the new one, and a Secret that
    // no Canary uses any more is not kept.
    auto drop = [this](const ObjectPtr& object) {
        objects_.erase(Key{object_namespace(*object), object_name(*object)});
    };
    metadata_.add_handlers(EventHandlers{
        nullptr,
        [this](const ObjectPtr& /*before*/, const ObjectPtr& after) {
            auto it = objects_.find(Key{object_namespace(*after), object_name(*after)});
            if (it != objects_.end() &&
                object_resource_version(*it->second) != object_resource_version(*after)) {
                objects_.erase(it);
            }
        },
        drop});
}

boost::asio::awaitable<Result<void>> FetchedObjects::fetch(std::string ns,
                                                           std::vector<std::string> names) {
    for (const std::string& name : names) {
        const ObjectPtr meta = metadata_.get(ns, name);
        if (meta == nullptr) {
            continue;
        }
        const Key key{ns, name};
        if (auto it = objects_.find(key); it != objects_.end() &&
                                          resource_version_at_least(
                                              object_resource_version(*it->second),
                                              object_resource_version(*meta))) {
            continue;
        }
        ++fetches_;
        auto object = co_await client_.get(metadata_.type(), ns, name);
        if (!object) {
            if (object.error().kind == ErrorKind::kNotFound) {
                objects_.erase(key);
                continue;
            }
            co_return object.error();
        }
        objects_[key] = std::make_shared<const Json>(std::move(*object));
    }
    co_return Result<void>{};
}

ObjectPtr FetchedObjects::get(std::string_view ns, std::string_view name) const {
    if (metadata_.get(ns, name) == nullptr) {
        return nullptr;
    }
    auto it = objects_.find(Key{std::string(ns), std::string(name)});
    return it == objects_.end() ? nullptr : it->second;
}

void FetchedObjects::wrote(const Json& object) {
    objects_[Key{object_namespace(object), object_name(object)}] =
        std::make_shared<const Json>(object);
}

}  // namespace serin::kube
