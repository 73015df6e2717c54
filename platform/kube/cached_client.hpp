#pragma once

#include <boost/asio/awaitable.hpp>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "platform/core/result.hpp"
#include "platform/kube/kube_client.hpp"
#include "platform/kube/object_store.hpp"

namespace serin::kube {

/// The one way controller code reads and writes objects: reads come from the informer caches
/// (ObjectStore), writes go to the API server, and every successful write is remembered for
/// read-your-writes here, so no caller can forget to.
///
/// Objects of types the store does not serve (Events, Leases) are written with the KubeClient
/// itself (EventRecorder, LeaderElector).
///
/// Thread safety: one io_context thread, like the store and the client.
class CachedClient {
public:
    CachedClient(KubeClient& api, ObjectStore& store) : api_(api), store_(store) {}

    // ---- reads, from the caches --------------------------------------------------------------

    /// The object, or nullptr when it does not exist (or `type` is not served).
    ObjectPtr get(const ResourceType& type, std::string_view ns, std::string_view name) const {
        return store_.get(type, ns, name);
    }
    std::vector<ObjectPtr> list(const ResourceType& type, std::string_view ns) const {
        return store_.list(type, ns);
    }
    /// The objects of `type` whose index `index` has `value` (writes of this process not
    /// overlaid, as list()).
    std::vector<ObjectPtr> by_index(const ResourceType& type, const std::string& index,
                                    const std::string& value) const {
        return store_.by_index(type, index, value);
    }
    /// Whether reads of `type` are served (an informer runs for it).
    bool serves(const ResourceType& type) const { return store_.serves(type); }

    // ---- writes, through the API server ------------------------------------------------------

    /// Each returns the object as the server stored it, which later reads return until the
    /// cache has caught up. Errors: the KubeClient's.
    boost::asio::awaitable<Result<ObjectPtr>> create(ResourceType type, std::string ns, Json object,
                                                     WriteOptions options);
    boost::asio::awaitable<Result<ObjectPtr>> update(ResourceType type, std::string ns, Json object,
                                                     WriteOptions options);
    boost::asio::awaitable<Result<ObjectPtr>> patch(ResourceType type, std::string ns,
                                                    std::string name, PatchType patch_type,
                                                    std::string body, WriteOptions options);
    /// Deletes the object; a later read finds it gone until the cache catches up. An object
    /// already gone is success. Errors: the KubeClient's (kConflict when `options` holds a
    /// resourceVersion precondition the object no longer meets).
    boost::asio::awaitable<Result<void>> remove(ResourceType type, std::string ns, std::string name,
                                                DeleteOptions options);

    /// The update that brings `live` to what Serin owns of the desired object (only the fields
    /// Serin owns, the rest kept as found), or nullopt when `live` already has them.
    using UpdateFor = std::function<std::optional<Json>(const Json& live)>;

    /// Creates `desired` when the cache has no such object, else writes update_for(live) when
    /// it returns one. Returns the object as now stored; nullptr when the create found the name
    /// taken (AlreadyExists: created by someone else since the cache was filled, so the watch
    /// will bring it and the next reconcile compares it).
    boost::asio::awaitable<Result<ObjectPtr>> ensure(ResourceType type, std::string ns,
                                                     Json desired, UpdateFor update_for);

    // The same writes with default options (plain functions, so callers need no braced
    // temporary inside a co_await: g++ 12 destroys such a temporary twice).
    boost::asio::awaitable<Result<ObjectPtr>> create(ResourceType type, std::string ns, Json object) {
        return create(std::move(type), std::move(ns), std::move(object), WriteOptions());
    }
    boost::asio::awaitable<Result<ObjectPtr>> update(ResourceType type, std::string ns, Json object) {
        return update(std::move(type), std::move(ns), std::move(object), WriteOptions());
    }
    boost::asio::awaitable<Result<ObjectPtr>> patch(ResourceType type, std::string ns,
                                                    std::string name, PatchType patch_type,
                                                    std::string body) {
        return patch(std::move(type), std::move(ns), std::move(name), patch_type, std::move(body),
                     WriteOptions());
    }

private:
    /// Remembers a successful write and hands back the stored object.
    Result<ObjectPtr> remember(const ResourceType& type, Result<Json> written);

    KubeClient& api_;
    ObjectStore& store_;
};

}  // namespace serin::kube
