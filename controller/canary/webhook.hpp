#pragma once

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "analysis/release.hpp"
#include "crds/api/canary.hpp"
#include "platform/core/clock.hpp"
#include "platform/core/result.hpp"
#include "platform/http/http_client.hpp"

namespace serin::canary {

/// One webhook of a Canary's analysis, as far as calling it goes.
struct WebhookTarget {
    std::string name;
    std::string url;
    std::chrono::milliseconds timeout{10'000};  ///< per attempt
    int retries = 0;                             ///< extra attempts after the first
    bool disable_tls = false;                    ///< skip certificate verification
    std::map<std::string, std::string> metadata;
};

/// The body Flagger posts: {"name","namespace","phase","checksum","metadata"}.
struct WebhookPayload {
    std::string name;       ///< the Canary's name
    std::string ns;         ///< the Canary's namespace
    std::string phase;
    std::string checksum;   ///< of the canary's revision
    std::map<std::string, std::string> metadata;  ///< omitted from the JSON when empty
};

nlohmann::json to_json(const WebhookPayload& payload);

/// The payload of an `event` hook: `base` plus eventMessage, eventType ("Normal"/"Warning") and
/// timestamp (unix milliseconds) merged over the hook's own metadata, which never overrides them.
WebhookPayload event_payload(WebhookPayload base, const std::map<std::string, std::string>& hook_metadata,
                             std::string message, bool warning, SystemTime now);

/// Flagger's rules: 200, 201 and 202 are success (204 is not).
bool webhook_succeeded(int status);
/// Worth another attempt: connection failures, 429 and 5xx other than 501.
bool webhook_retryable(const Error& error);

/// Calls webhooks the way Flagger does: POST of the JSON payload, a timeout per attempt, up to
/// `retries` more attempts with exponential backoff (1 s doubling to 30 s) on retryable failures.
/// A refused call returns an Error whose message is the response body (or the transport error)
/// and whose http_status is the answer's status.
///
/// Thread safety: one io_context thread, like the HttpClients it is given.
class WebhookClient {
public:
    /// `verified` checks certificates; `insecure` is used for hooks with disableTLS.
    WebhookClient(http::HttpClient& verified, http::HttpClient& insecure, Clock& clock)
        : verified_(verified), insecure_(insecure), clock_(clock) {}

    boost::asio::awaitable<Result<void>> call(WebhookTarget target, WebhookPayload payload);

private:
    boost::asio::awaitable<Result<void>> attempt(const WebhookTarget& target,
                                                 const std::string& body);

    http::HttpClient& verified_;
    http::HttpClient& insecure_;
    Clock& clock_;
};

/// The target of a Canary's webhook spec entry.
WebhookTarget webhook_target(const api::CanaryWebhook& hook);

/// Calls the canary's hooks of `type` in spec order with Flagger's payload (flagger-spec §6) and
/// returns their answers. Gating types stop at the first hook that refuses; rollback hooks stop
/// at the first that answers ok. Never fails: a hook's error is its answer.
boost::asio::awaitable<analysis::HookRun> run_hooks(WebhookClient& client, api::Canary canary,
                                                    analysis::HookType type, std::string phase,
                                                    std::string checksum);

}  // namespace serin::canary
