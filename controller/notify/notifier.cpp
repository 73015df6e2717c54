#include "controller/notify/notifier.hpp"

#include <boost/asio/co_spawn.hpp>
#include <spdlog/spdlog.h>

#include "platform/core/json.hpp"
#include "platform/core/text.hpp"

namespace serin::notify {

namespace asio = boost::asio;

namespace {

/// The longest alert text, and field value, posted.
constexpr std::size_t kMaxAlertText = 2048;

}  // namespace

void Notifier::post(Destination destination, Message message, FailureHandler on_failure) {
    if (stats_.in_flight >= options_.max_in_flight) {
        ++stats_.failed;
        if (on_failure) {
            on_failure("alert to " + destination.label + " dropped: " +
                       std::to_string(stats_.in_flight) + " alerts are already being sent");
        }
        return;
    }
    // The text quotes what webhooks and metrics servers answered: bounded, like an Event.
    message.text = text::clip(message.text, kMaxAlertText);
    for (Field& field : message.fields) {
        field.value = text::clip(field.value, kMaxAlertText);
    }
    std::string body = dump_json(payload(destination, message));
    ++stats_.in_flight;
    const std::string label = destination.label;
    const std::string address = destination.address;
    const std::string token = destination.token;
    asio::co_spawn(
        executor_, deliver(std::move(destination), std::move(body)),
        [this, label, address, token, handler = std::move(on_failure)](std::exception_ptr e,
                                                                       Result<void> result) {
            --stats_.in_flight;
            if (!e && result) {
                ++stats_.sent;
                return;
            }
            ++stats_.failed;
            std::string why = e ? std::string("unexpected exception") : result.error().message;
            why = redact(redact(std::move(why), address), token);
            const std::string text = "alert to " + label + " failed: " + why;
            spdlog::warn("{}", text);
            if (handler) {
                handler(text);
            }
        });
}

asio::awaitable<Result<void>> Notifier::deliver(Destination destination, std::string body) {
    auto backoff = options_.backoff;
    for (int attempt_no = 1;; ++attempt_no) {
        Result<void> result = co_await attempt(destination, body);
        if (result || attempt_no >= options_.attempts || !http::worth_retrying(result.error())) {
            if (!result && attempt_no > 1) {
                Error error = result.error();
                error.message += " (after " + std::to_string(attempt_no) + " attempts)";
                co_return error;
            }
            co_return result;
        }
        ++stats_.retries;
        co_await clock_.sleep_for(backoff);
        backoff *= 2;
    }
}

asio::awaitable<Result<void>> Notifier::attempt(const Destination& destination,
                                                const std::string& body) {
    http::Request request;
    request.method = http::Method::kPost;
    request.url = post_url(destination);
    request.body = body;
    request.timeout = options_.timeout;
    request.proxy = destination.proxy;
    request.headers.emplace_back("Content-Type", "application/json");
    if (!destination.token.empty()) {
        request.headers.emplace_back("Authorization", "Bearer " + destination.token);
    }
    auto response = co_await http_.send(std::move(request));
    if (!response) {
        co_return response.error();
    }
    if (response->status >= 200 && response->status < 300) {
        co_return Result<void>{};
    }
    // Not the body: a chat service's error page is no use in a log, and may echo the address.
    co_return http::status_error(response->status, "status " + std::to_string(response->status));
}

}  // namespace serin::notify
