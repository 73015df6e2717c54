#include "platform/kube/cached_client.hpp"

namespace serin::kube {

namespace asio = boost::asio;

Result<ObjectPtr> CachedClient::remember(const ResourceType& type, Result<Json> written) {
    if (!written) {
        return written.error();
    }
    if (auto meta = written->find("metadata"); meta != written->end() && meta->is_object()) {
        meta->erase("managedFields");  // as the informers drop them: never read, and large
    }
    auto object = std::make_shared<const Json>(std::move(*written));
    store_.wrote(type, object);  // shared: the overlay holds no copy
    return object;
}

asio::awaitable<Result<ObjectPtr>> CachedClient::create(ResourceType type, std::string ns,
                                                        Json object, WriteOptions options) {
    auto written = co_await api_.create(type, std::move(ns), std::move(object), std::move(options));
    co_return remember(type, std::move(written));
}

asio::awaitable<Result<ObjectPtr>> CachedClient::update(ResourceType type, std::string ns,
                                                        Json object, WriteOptions options) {
    auto written = co_await api_.update(type, std::move(ns), std::move(object), std::move(options));
    co_return remember(type, std::move(written));
}

asio::awaitable<Result<ObjectPtr>> CachedClient::patch(ResourceType type, std::string ns,
                                                       std::string name, PatchType patch_type,
                                                       std::string body, WriteOptions options) {
    auto written = co_await api_.patch(type, std::move(ns), std::move(name), patch_type,
                                       std::move(body), std::move(options));
    co_return remember(type, std::move(written));
}

asio::awaitable<Result<void>> CachedClient::remove(ResourceType type, std::string ns,
                                                   std::string name, DeleteOptions options) {
    auto removed = co_await api_.remove(type, ns, name, std::move(options));
    if (!removed && removed.error().kind != ErrorKind::kNotFound) {
        co_return removed.error();
    }
    store_.deleted(type, ns, name);
    co_return Result<void>{};
}

asio::awaitable<Result<ObjectPtr>> CachedClient::ensure(ResourceType type, std::string ns,
                                                        Json desired, UpdateFor update_for) {
    const ObjectPtr live = store_.get(type, ns, object_name(desired));
    if (live == nullptr) {
        auto created = co_await create(type, std::move(ns), std::move(desired));
        if (!created && created.error().kind == ErrorKind::kAlreadyExists) {
            co_return ObjectPtr{};
        }
        co_return created;
    }
    std::optional<Json> changed = update_for(*live);
    if (!changed) {
        co_return live;
    }
    co_return co_await update(std::move(type), std::move(ns), std::move(*changed));
}

}  // namespace serin::kube
