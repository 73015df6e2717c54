#pragma once

#include <boost/asio/awaitable.hpp>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "platform/core/clock.hpp"
#include "platform/core/result.hpp"
#include "platform/kube/kube_client.hpp"
#include "platform/kube/resource.hpp"

/// An in-memory Kubernetes API for component tests: FakeApiServer holds the objects and behaves
/// like kube-apiserver v1.20 as far as Serin can observe; FakeKubeClient is a KubeClient talking
/// to it, as RestKubeClient talks to the real one.
///
/// What it does as the real server does:
/// - objects keyed by group/resource, namespace and name, served in every version the server
///   serves for the group/resource (no conversion: the object is the same, only apiVersion
///   changes); `resourceVersion` from one global counter, `uid`, `creationTimestamp`,
///   `generation` (1 on create, bumped when anything but metadata and status changes, for the
///   types that track it; a Deployment's annotations count, as in its registry strategy);
/// - create of an existing name: kAlreadyExists; get/update/patch/delete of a missing one:
///   kNotFound; a stale `resourceVersion` (in an update, a patch or a delete precondition) or
///   `uid`: kConflict; a write that changes nothing stores nothing and bumps nothing;
/// - the status subresource, for the types whose API has one: a write of the main resource
///   keeps the stored status, a write of `/status` changes only the status (a built-in type's
///   status strategy keeps only the spec, so metadata changes go through too), create drops
///   the status of a custom resource and empties a built-in one's; `/status` of a type without
///   one is kNotFound;
/// - patches: JSON merge patch (RFC 7386), JSON patch (RFC 6902, 422 when an operation fails),
///   strategic merge patch for built-in types (415 for custom resources) with the list merge
///   keys of the fields Serin's objects use and the `$patch` and `$deleteFromPrimitiveList`
///   directives;
/// - delete of an object with finalizers sets `deletionTimestamp` (and bumps a tracked
///   generation) and removes the object when a write takes away the last finalizer; a new
///   finalizer cannot be added then (kInvalid);
/// - list: label and field selectors (`metadata.name`, `metadata.namespace`), namespace, pages
///   (`limit`, `continue`, both read from one consistent snapshot), `resourceVersion` ("" and
///   "0" the latest; "N" at least N, or exactly N with `limit`; kGone below the compaction
///   point), metadata-only answers;
/// - watch: ADDED/MODIFIED/DELETED in order after the given resourceVersion (synthetic ADDED of
///   everything for "" and "0"), an object leaving or entering a label selector as a DELETED or
///   an ADDED, BOOKMARKs for watches that allow them, kGone for a version below the compaction
///   point, and the end of the watch after `timeout_seconds` on the server's Clock (with a
///   bookmark just before, as the watch cache sends one);
/// - Secrets: `stringData` is folded into base64 `data`; Services get a cluster IP, which an
///   update may leave out only with `clusterIP` itself kept (v1.20 refuses to unset it); the
///   selector of an apps/v1 workload is immutable;
/// - discovery: get_raw("/api/v1"), get_raw("/apis/GROUP/VERSION") list what is served
///   (kNotFound for other group versions); "/readyz", "/livez", "/healthz" answer "ok".
///
/// What it does not do: admission, validation beyond the above, defaulting (a Deployment is
/// stored as written: no strategy, no pod-template defaults), namespace existence or deletion,
/// garbage collection of owned objects (propagation policies are ignored: a delete is
/// immediate unless finalizers say otherwise), graceful deletion of pods, conversion between
/// versions, subresources other than status (kInternal), server-side apply and `managedFields`
/// (an apply patch fails with kInternal, so a test relying on it fails loudly), a "Too large
/// resource version" wait (answered at once with kTransient), and nothing that
/// kube-controller-manager does: tests set a Deployment's status by hand (put/set_status).
///
/// The client completes every call asynchronously: it posts to the calling coroutine's
/// executor before the server acts, never completing inline, and a watch delivers its events
/// from its own coroutine after the write that caused them has returned. A call whose coroutine
/// is cancelled fails with kCancelled (a watch ends with it). Faults injected here are what the
/// caller sees, as if RestKubeClient had given up its own retries.
///
/// Thread safety: a FakeApiServer, its clients and their calls belong to one io_context
/// thread. The Clock must outlive the io_context (a watch's timeout sleeps on it); the server
/// must outlive its clients and any coroutine still running a call.
namespace serin::testing {

using Json = nlohmann::json;

/// What a call asks of the server: what fault matchers and the write log speak of.
enum class Verb { kGet, kList, kWatch, kCreate, kUpdate, kPatch, kDelete, kGetRaw };

std::string_view to_string(Verb verb);

struct Call {
    Verb verb = Verb::kGet;
    kube::ResourceType type;  ///< empty for get_raw
    std::string ns;           ///< "" for cluster-scoped objects and all-namespace lists
    std::string
        name;  ///< "" for list and watch (and a create with generateName); the path for get_raw
    std::string subresource;  ///< "status" or ""

    bool is_write() const;
};

using CallMatcher = std::function<bool(const Call&)>;

/// Every call.
CallMatcher any_call();
/// Calls of `verb` (of `type`, when given; types match on group and resource, any version).
CallMatcher calls(Verb verb);
CallMatcher calls(Verb verb, const kube::ResourceType& type);
/// Creates, updates, patches and deletes (of `type`, and of the object `name`, when given).
CallMatcher writes();
CallMatcher writes_to(const kube::ResourceType& type, std::string name = {});

/// When an injected fault strikes.
enum class FaultTiming {
    kBeforeServer,  ///< the server refuses the call: nothing changes
    kAfterServer,   ///< the server carries out a write, then the answer is lost (a timeout)
};

/// One write call that reached the server, in the order they did.
struct WriteRecord {
    Call call;
    bool dry_run = false;
    bool applied = false;          ///< the server carried it out (it may have changed nothing)
    std::optional<Error> error;    ///< what the caller got instead of success
    std::string resource_version;  ///< of the object the server answered with ("" for a delete)

    /// "update canaries test/podinfo/status", "delete configmaps test/x -> NotFound",
    /// "patch deployments test/app -> applied, answer lost: Transient".
    std::string describe() const;
};

/// How the server treats a type, as its registry strategy does.
struct TypeTraits {
    bool status_subresource = true;  ///< writes of the main resource keep the stored status
    bool generation = true;          ///< metadata.generation is set and bumped
    /// A type of kube-apiserver itself, not a custom resource: strategic merge patches are
    /// accepted, create empties the status (rather than dropping it), and a /status write keeps
    /// only the stored spec (a Deployment's labels, a Pod's ownerReferences too), so metadata
    /// changes in it are written.
    bool builtin = false;
};

/// The traits of a type served by kube-apiserver v1.20 itself; custom resources get
/// TypeTraits{} (status subresource and generation, no strategic merge).
TypeTraits builtin_traits(const kube::ResourceType& type);

class FakeKubeClient;

class FakeApiServer {
public:
    /// Serves every type of kube::types (Serin's own custom resources as if their CRDs were
    /// installed). Timestamps and watch timeouts come from `clock`.
    explicit FakeApiServer(Clock& clock);
    ~FakeApiServer();
    FakeApiServer(const FakeApiServer&) = delete;
    FakeApiServer& operator=(const FakeApiServer&) = delete;

    /// A new client: one per simulated process, so a crashed process's client stays dead while
    /// a fresh one carries on with the same objects.
    std::unique_ptr<FakeKubeClient> client();

    // ---- types -----------------------------------------------------------------------------

    /// Serves `type` (another version of a served group/resource shares its objects), as
    /// installing a CRD does. Calls on a type not served fail with kNotFound.
    void serve(const kube::ResourceType& type, TypeTraits traits);
    void serve(const kube::ResourceType& type) { serve(type, builtin_traits(type)); }
    bool serves(const kube::ResourceType& type) const;

    // ---- objects, bypassing the clients: no write log, no faults, watch events as usual -----

    /// Creates `object` as a create by someone else would, but keeping any status it has.
    /// Errors: those of create.
    Result<Json> seed(const kube::ResourceType& type, Json object);
    /// Stores `object` (which must exist, unless `upsert`) as given, status included, with a
    /// new resourceVersion; server-set metadata is kept. For what controllers other than Serin
    /// write, e.g. a Deployment's status.
    Result<Json> put(const kube::ResourceType& type, Json object, bool upsert = false);
    /// Replaces the status of an object.
    Result<Json> set_status(const kube::ResourceType& type, std::string_view ns,
                            std::string_view name, Json status);
    /// Deletes as a delete by someone else would (finalizers respected).
    Result<void> remove(const kube::ResourceType& type, std::string_view ns, std::string_view name);
    /// The stored object (apiVersion as `type` names it), or nullopt.
    std::optional<Json> object(const kube::ResourceType& type, std::string_view ns,
                               std::string_view name) const;
    /// The stored objects of `type` in `ns` ("" = all), in the server's key order.
    std::vector<Json> objects(const kube::ResourceType& type, std::string_view ns = {}) const;
    /// The latest resourceVersion of the whole server.
    std::string resource_version() const;

    // ---- history and watches -----------------------------------------------------------------

    /// Forgets the history up to now: a watch or a list page asked for at an older
    /// resourceVersion fails with kGone (as after etcd compaction). Open watches are not
    /// affected (they are fed from memory, as the watch cache feeds them).
    void compact();
    /// Sends a BOOKMARK at the current resourceVersion to every open watch that allows them,
    /// after the events it has not yet delivered.
    void send_bookmarks();
    /// Ends every open watch: cleanly (as a server ending it does) or with `error`. Events not
    /// yet delivered are not delivered.
    void end_watches(std::optional<Error> error = std::nullopt);
    /// Watches open now (a watch is open from when the server took it until it ends).
    std::size_t open_watches() const;

    // ---- fault injection ---------------------------------------------------------------------

    /// The next `count` calls matching `match` fail with `error`. Faults are tried in the order
    /// they were added; each call consumes at most one.
    void fail_next(CallMatcher match, int count, Error error,
                   FaultTiming timing = FaultTiming::kBeforeServer);
    void fail_next(CallMatcher match, int count, ErrorKind kind,
                   FaultTiming timing = FaultTiming::kBeforeServer);
    /// Injected failures not yet consumed.
    int faults_pending() const;
    void clear_faults();

    // ---- the write log -----------------------------------------------------------------------

    /// Every write call that reached the server, in order, from every client.
    const std::vector<WriteRecord>& writes() const;
    /// describe() of each record, only of those the server carried out when `applied_only`.
    std::vector<std::string> write_log(bool applied_only = false) const;
    void clear_write_log();

private:
    friend class FakeKubeClient;
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

/// A KubeClient on a FakeApiServer. See the namespace comment for its semantics.
class FakeKubeClient final : public kube::KubeClient {
public:
    explicit FakeKubeClient(FakeApiServer& server);
    ~FakeKubeClient() override;
    FakeKubeClient(const FakeKubeClient&) = delete;
    FakeKubeClient& operator=(const FakeKubeClient&) = delete;

    /// Simulates the process dying after its `k`-th write from now that the server carries out
    /// (0: at once): that write's caller still gets its answer, then every call (reads too)
    /// fails with kTransient and this client's open watches end with kTransient.
    void crash_after_writes(std::size_t k);
    bool crashed() const { return crashed_; }
    /// Writes of this client the server carried out (dry runs excluded).
    std::size_t writes_applied() const { return writes_applied_; }

    // KubeClient
    boost::asio::awaitable<Result<Json>> get(kube::ResourceType type, std::string ns,
                                             std::string name) override;
    boost::asio::awaitable<Result<kube::ListPage>> list(kube::ResourceType type, std::string ns,
                                                        kube::ListOptions options) override;
    boost::asio::awaitable<Result<Json>> create(kube::ResourceType type, std::string ns,
                                                Json object, kube::WriteOptions options) override;
    boost::asio::awaitable<Result<Json>> update(kube::ResourceType type, std::string ns,
                                                Json object, kube::WriteOptions options) override;
    boost::asio::awaitable<Result<Json>> patch(kube::ResourceType type, std::string ns,
                                               std::string name, kube::PatchType patch_type,
                                               std::string body,
                                               kube::WriteOptions options) override;
    boost::asio::awaitable<Result<void>> remove(kube::ResourceType type, std::string ns,
                                                std::string name,
                                                kube::DeleteOptions options) override;
    boost::asio::awaitable<Result<void>> watch(kube::ResourceType type, std::string ns,
                                               kube::WatchOptions options,
                                               kube::WatchHandler handler) override;
    boost::asio::awaitable<Result<std::string>> get_raw(std::string path) override;

    using kube::KubeClient::create;
    using kube::KubeClient::list;
    using kube::KubeClient::patch;
    using kube::KubeClient::remove;
    using kube::KubeClient::update;

private:
    /// Suspends (so no call completes inline), then lets the call through or fails it: when
    /// cancelled, crashed, or a fault strikes before the server.
    boost::asio::awaitable<Result<void>> enter(const Call& call);
    /// Records a write, applies after-server faults and counts towards a crash.
    Result<Json> finish(const Call& call, bool dry_run, Result<Json> result);
    Result<void> finish(const Call& call, bool dry_run, Result<void> result);
    std::optional<Error> after_server(const Call& call, bool dry_run, bool applied,
                                      const Result<Json>& answer);

    FakeApiServer& server_;
    std::uint64_t id_;
    bool crashed_ = false;
    std::optional<std::size_t> crash_at_;
    std::size_t writes_applied_ = 0;
};

}  // namespace serin::testing
