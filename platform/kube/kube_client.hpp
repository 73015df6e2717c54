#pragma once

#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "platform/core/result.hpp"
#include "platform/kube/resource.hpp"

namespace serin::kube {

using Json = nlohmann::json;

struct ListOptions {
    std::string label_selector;
    std::string field_selector;
    std::int64_t limit = 0;        ///< page size; 0 = everything in one answer
    std::string continue_token;    ///< from the previous page
    std::string resource_version;  ///< "" = most recent (a quorum read)
    /// Ask for metadata only (PartialObjectMetadata): no data, no spec, no status.
    bool metadata_only = false;
};

struct ListPage {
    std::vector<Json> items;
    std::string resource_version;  ///< of the list, to start a watch from
    std::string continue_token;    ///< empty on the last page
};

enum class PatchType {
    kMerge,           ///< application/merge-patch+json
    kJson,            ///< application/json-patch+json
    kStrategicMerge,  ///< application/strategic-merge-patch+json (built-in types only)
    kApply,           ///< server-side apply, application/apply-patch+yaml
};

struct WriteOptions {
    std::string field_manager = "serin";
    bool dry_run = false;
    bool force = false;          ///< server-side apply: take over conflicting fields
    std::string subresource;     ///< "status" to write the status subresource
    /// Skip the client's write throttle: for the leader's Lease, whose renewal must not wait
    /// behind a burst of reconcile writes.
    bool unthrottled = false;
};

struct DeleteOptions {
    std::string propagation_policy;  ///< "Background", "Foreground", "Orphan" or "" (default)
    std::optional<std::string> precondition_resource_version;
    std::optional<std::int64_t> grace_period_seconds;
};

struct WatchEvent {
    enum class Type { kAdded, kModified, kDeleted, kBookmark };
    Type type = Type::kAdded;
    Json object;
};

struct WatchOptions {
    std::string resource_version;   ///< start after this version
    std::string label_selector;
    std::string field_selector;
    bool allow_bookmarks = true;
    std::int64_t timeout_seconds = 300;  ///< the server ends the watch after this long
    /// Ask for metadata only (PartialObjectMetadata): no data, no spec, no status.
    bool metadata_only = false;
};

/// Called for each watch event in order; return false to stop watching.
using WatchHandler = std::function<bool(WatchEvent&& event)>;

/// Untyped access to any resource of the API server.
///
/// Errors: kNotFound, kAlreadyExists, kConflict, kGone, kInvalid (with the server's causes),
/// kBadRequest, kUnauthorized, kForbidden, kTooManyRequests (retry_after set), kTransient.
/// Thread safety: one client belongs to one io_context thread; all calls must come from it.
/// Cancellation: the awaiting coroutine's cancellation slot aborts the call with kCancelled.
class KubeClient {
public:
    virtual ~KubeClient() = default;

    virtual boost::asio::awaitable<Result<Json>> get(ResourceType type, std::string ns,
                                                     std::string name) = 0;
    /// One page of a LIST; pass continue_token back to get the next.
    virtual boost::asio::awaitable<Result<ListPage>> list(ResourceType type, std::string ns,
                                                          ListOptions options) = 0;
    virtual boost::asio::awaitable<Result<Json>> create(ResourceType type, std::string ns,
                                                        Json object, WriteOptions options) = 0;
    /// PUT of the whole object; metadata.resourceVersion, when set, is a precondition (kConflict).
    virtual boost::asio::awaitable<Result<Json>> update(ResourceType type, std::string ns,
                                                        Json object, WriteOptions options) = 0;
    virtual boost::asio::awaitable<Result<Json>> patch(ResourceType type, std::string ns,
                                                       std::string name, PatchType patch_type,
                                                       std::string body,
                                                       WriteOptions options) = 0;
    virtual boost::asio::awaitable<Result<void>> remove(ResourceType type, std::string ns,
                                                        std::string name,
                                                        DeleteOptions options) = 0;
    /// Streams events until the server ends the watch (success), `handler` returns false
    /// (success), or an error. A watch whose resourceVersion is too old ends with kGone.
    virtual boost::asio::awaitable<Result<void>> watch(ResourceType type, std::string ns,
                                                       WatchOptions options,
                                                       WatchHandler handler) = 0;
    /// GET of a non-resource path ("/readyz", "/apis/GROUP/VERSION"); the body as text.
    virtual boost::asio::awaitable<Result<std::string>> get_raw(std::string path) = 0;

    // The same calls with default options. They are plain functions, not coroutines, so that
    // callers never need a braced `{}` temporary inside a co_await: g++ 12 destroys such a
    // temporary twice.
    boost::asio::awaitable<Result<ListPage>> list(ResourceType type, std::string ns) {
        return list(std::move(type), std::move(ns), ListOptions());
    }
    boost::asio::awaitable<Result<Json>> create(ResourceType type, std::string ns, Json object) {
        return create(std::move(type), std::move(ns), std::move(object), WriteOptions());
    }
    boost::asio::awaitable<Result<Json>> update(ResourceType type, std::string ns, Json object) {
        return update(std::move(type), std::move(ns), std::move(object), WriteOptions());
    }
    boost::asio::awaitable<Result<Json>> patch(ResourceType type, std::string ns,
                                               std::string name, PatchType patch_type,
                                               std::string body) {
        return patch(std::move(type), std::move(ns), std::move(name), patch_type,
                     std::move(body), WriteOptions());
    }
    boost::asio::awaitable<Result<void>> remove(ResourceType type, std::string ns,
                                                std::string name) {
        return remove(std::move(type), std::move(ns), std::move(name), DeleteOptions());
    }
};

using KubeClientPtr = std::unique_ptr<KubeClient>;

/// The namespace and name of an object, from its metadata.
std::string object_namespace(const Json& object);
std::string object_name(const Json& object);
std::string object_resource_version(const Json& object);
std::string object_uid(const Json& object);
/// A key of a Secret's `data`, base64-decoded; "" when absent or not valid base64.
std::string secret_data(const Json& secret, const std::string& key);

}  // namespace serin::kube
