#include "controller/canary/webhook.hpp"

#include <algorithm>

#include "platform/core/json.hpp"
#include "platform/core/text.hpp"

namespace serin::canary {

namespace asio = boost::asio;

namespace {

/// A hook's answer is read only for its status and, on a refusal, a few hundred bytes of its
/// body; anything larger is refused rather than buffered.
constexpr std::size_t kMaxHookAnswerBytes = 256 * 1024;

}  // namespace

nlohmann::json to_json(const WebhookPayload& payload) {
    nlohmann::json out = {{"name", payload.name},
                          {"namespace", payload.ns},
                          {"phase", payload.phase},
                          {"checksum", payload.checksum}};
    if (!payload.metadata.empty()) {
        out["metadata"] = payload.metadata;
    }
    return out;
}

WebhookPayload event_payload(WebhookPayload base,
                             const std::map<std::string, std::string>& hook_metadata,
                             std::string message, bool warning, SystemTime now) {
    base.metadata = hook_metadata;
    base.metadata["eventMessage"] = std::move(message);
    base.metadata["eventType"] = warning ? "Warning" : "Normal";
    base.metadata["timestamp"] = std::to_string(
        std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count());
    return base;
}

bool webhook_succeeded(int status) { return status >= 200 && status <= 202; }

bool webhook_retryable(const Error& error) { return http::worth_retrying(error); }

asio::awaitable<Result<void>> WebhookClient::attempt(const WebhookTarget& target,
                                                     const std::string& body) {
    http::Request request;
    request.method = http::Method::kPost;
    request.url = target.url;
    request.body = body;
    request.timeout = target.timeout;
    request.max_body_bytes = kMaxHookAnswerBytes;
    request.headers.emplace_back("Content-Type", "application/json");
    http::HttpClient& client = target.disable_tls ? insecure_ : verified_;
    auto response = co_await client.send(std::move(request));
    if (!response) {
        Error error = response.error();
        error.message = "webhook " + target.name + ": " + error.message;
        co_return error;
    }
    if (webhook_succeeded(response->status)) {
        co_return Result<void>{};
    }
    // Flagger reports the body as the reason; a bodiless refusal still says what happened. The
    // body is the hook's to write: it is quoted as valid UTF-8 and cut short.
    co_return http::status_error(response->status,
                                 response->body.empty()
                                     ? "status " + std::to_string(response->status)
                                     : text::clip(response->body, text::kMaxRemoteBodyBytes));
}

asio::awaitable<Result<void>> WebhookClient::call(WebhookTarget target, WebhookPayload payload) {
    const std::string body = dump_json(to_json(payload));
    auto delay = std::chrono::milliseconds{1'000};
    const auto max_delay = std::chrono::milliseconds{30'000};
    for (int attempt_no = 0;; ++attempt_no) {
        auto result = co_await attempt(target, body);
        if (result || attempt_no >= target.retries || !webhook_retryable(result.error())) {
            co_return result;
        }
        const bool slept = co_await clock_.sleep_for(delay);
        if (!slept) {
            co_return fail(ErrorKind::kCancelled, "webhook " + target.name + ": cancelled");
        }
        delay = std::min(max_delay, delay * 2);
    }
}

WebhookTarget webhook_target(const api::CanaryWebhook& hook) {
    WebhookTarget target;
    target.name = hook.name;
    target.url = hook.url;
    target.timeout = hook.timeout_duration;
    target.retries = hook.retries;
    target.disable_tls = hook.disable_tls;
    target.metadata = hook.metadata;
    return target;
}

asio::awaitable<analysis::HookRun> run_hooks(WebhookClient& client, api::Canary canary,
                                             analysis::HookType type, std::string phase,
                                             std::string checksum) {
    analysis::HookRun run;
    if (!canary.spec.analysis) {
        co_return run;
    }
    for (const api::CanaryWebhook& hook : canary.spec.analysis->webhooks) {
        if (analysis::hook_type(hook.type) != type) {
            continue;
        }
        WebhookPayload payload{canary.metadata.name, canary.metadata.ns, phase, checksum,
                               hook.metadata};
        auto result = co_await client.call(webhook_target(hook), std::move(payload));
        analysis::HookCall call{hook.name, result.has_value(),
                                result ? std::string() : result.error().message};
        run.push_back(std::move(call));
        const bool stop = type == analysis::HookType::kRollback ? run.back().ok : !run.back().ok;
        if (stop) {
            break;
        }
    }
    co_return run;
}

}  // namespace serin::canary
