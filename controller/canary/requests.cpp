// The Reconciler's handling of CanaryRequests (docs/runtime-control.md), kept apart from the
// release path: which requests a canary has pending, completing those a stopped controller
// recorded but did not finish, the request's status write after the canary's, and the refusal
// of requests naming a canary that does not exist.
#include "controller/canary/requests.hpp"

#include "controller/canary/reconciler.hpp"
#include "crds/api/canary_request.hpp"
#include "crds/api/json_access.hpp"
#include "platform/core/log.hpp"
#include "platform/core/text.hpp"
#include "platform/core/time_format.hpp"

#include <algorithm>
#include <cctype>

namespace serin::canary {

namespace asio = boost::asio;
using kube::Json;
using kube::ObjectPtr;

std::vector<std::string> request_canary_index(const Json& request) {
    const std::string canary = api::string_at(request, {"spec", "canaryRef", "name"});
    if (canary.empty()) {
        return {};
    }
    return {kube::object_namespace(request) + "/" + canary};
}

bool request_pending(const Json& request) {
    return api::string_at(request, {"status", "phase"}).empty();
}

std::vector<ObjectPtr> Reconciler::pending_request_objects(const std::string& ns,
                                                           const std::string& canary) const {
    std::vector<ObjectPtr> out;
    if (!options_.requests) {
        return out;
    }
    for (const ObjectPtr& raw : deps_.kube.list(kube::types::canary_requests(), ns)) {
        if (request_pending(*raw) &&
            api::string_at(*raw, {"spec", "canaryRef", "name"}) == canary) {
            out.push_back(raw);
        }
    }
    return out;
}

asio::awaitable<std::vector<api::CanaryRequest>> Reconciler::pending_requests(
    CanaryContext& ctx) {
    std::vector<api::CanaryRequest> pending;
    const std::vector<ObjectPtr> objects = pending_request_objects(ctx.ns(), ctx.canary.metadata.name);
    for (const ObjectPtr& raw : objects) {
        auto decoded = api::decode_canary_request(*raw);
        if (!decoded) {
            // The CRD's schema keeps most of these out; what gets through is refused by name.
            std::string message = "invalid request: " + decoded.error().message;
            std::string phase = "Refused";
            co_await write_request_status(ctx.ns(), raw, std::move(phase), std::move(message),
                                          ctx.canary.status.last_applied_spec);
            continue;
        }
        const auto& records = ctx.canary.status.requests;
        auto record = std::find_if(records.begin(), records.end(), [&](const api::HandledRequest& h) {
            return h.uid == decoded->metadata.uid;
        });
        if (record != records.end()) {
            // Handled and recorded, but the controller stopped before the request's own status
            // was written: complete it from the record, without acting again.
            const analysis::RequestOutcome outcome =
                analysis::outcome_of(*record, decoded->spec.reason);
            co_await finish_request(ctx, outcome, ctx.canary.status);
            continue;
        }
        pending.push_back(std::move(*decoded));
    }
    std::sort(pending.begin(), pending.end(), api::handled_before);
    co_return pending;
}

asio::awaitable<bool> Reconciler::write_request_status(const std::string& ns, ObjectPtr raw,
                                                       std::string phase, std::string message,
                                                       std::string revision) {
    api::CanaryRequestStatus status;
    status.phase = std::move(phase);
    status.message = text::clip(message, api::kMaxRequestMessageBytes);
    status.handled_time = format_time(deps_.clock.system_now());
    status.revision = std::move(revision);
    Json body = *raw;
    body["status"] = api::encode_request_status(status);
    kube::WriteOptions options;
    options.subresource = "status";
    auto written =
        co_await deps_.kube.update(kube::types::canary_requests(), ns, std::move(body), options);
    if (!written) {
        // The canary's status holds the record: the next reconcile completes the request.
        CanaryLog(ns + "/" + kube::object_name(*raw))
            .warn("cannot write the status of CanaryRequest {}: {}", kube::object_name(*raw),
                  written.error().describe());
        co_return false;
    }
    co_return true;
}

asio::awaitable<void> Reconciler::finish_request(CanaryContext& ctx,
                                                 const analysis::RequestOutcome& outcome,
                                                 const api::CanaryStatus& status) {
    ObjectPtr raw = deps_.kube.get(kube::types::canary_requests(), ctx.ns(), outcome.name);
    if (raw == nullptr || kube::object_uid(*raw) != outcome.uid || !request_pending(*raw)) {
        co_return;  // deleted since, or already complete
    }
    std::string phase = outcome.done ? "Done" : "Refused";
    const bool written = co_await write_request_status(ctx.ns(), raw, std::move(phase),
                                                       outcome.message, status.last_applied_spec);
    if (!written) {
        co_return;
    }
    // The Event once the request is complete: a controller stopped before this point records
    // it when it completes the request from the canary's record.
    const analysis::RecordEvent event{outcome.warning, outcome.event, status.phase};
    reporter_.event(ctx, event);
}

asio::awaitable<void> Reconciler::refuse_requests_of_rejected(const std::string& ns,
                                                              const std::string& name,
                                                              const std::string& why) {
    // Named locals, not temporaries, around each co_await (g++ 12's coroutine temporaries).
    const std::vector<ObjectPtr> pending = pending_request_objects(ns, name);
    for (const ObjectPtr& raw : pending) {
        // Nothing is acted on, so nothing goes into the canary's status: the request's own
        // status is the whole record, and a repeat finds it no longer pending.
        std::string action = api::string_at(*raw, {"spec", "action"});
        const std::string asker = api::string_at(*raw, {"spec", "requestedBy"});
        if (!action.empty()) {
            action[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(action[0])));
        }
        std::string message = action.empty() ? std::string("Request") : action;
        message += " requested by ";
        message += asker.empty() ? std::string("an unnamed client") : asker;
        message += " refused: " + name + " cannot be acted on: " + why;
        std::string phase = "Refused";
        co_await write_request_status(ns, raw, std::move(phase), std::move(message),
                                      std::string());
    }
}

asio::awaitable<Result<ReconcileResult>> Reconciler::refuse_orphan_requests(const std::string& ns,
                                                                            const std::string& name) {
    ReconcileResult result;
    const SystemTime now = deps_.clock.system_now();
    const std::vector<ObjectPtr> pending = pending_request_objects(ns, name);
    for (const ObjectPtr& raw : pending) {
        // The canaries' cache may lag behind the requests' for a canary just created: a
        // request younger than this is looked at again before it is refused.
        constexpr auto kGrace = std::chrono::seconds{5};
        const auto created =
            parse_time(api::string_at(*raw, {"metadata", "creationTimestamp"}));
        if (created && now - *created < kGrace) {
            result.requeue_after = Duration(kGrace);
            continue;
        }
        std::string message = "canary " + name + " not found in namespace " + ns;
        std::string phase = "Refused";
        co_await write_request_status(ns, raw, std::move(phase), std::move(message),
                                      std::string());
    }
    co_return result;
}

}  // namespace serin::canary
