#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

#include "controller/notify/payload.hpp"
#include "platform/core/clock.hpp"
#include "platform/core/result.hpp"
#include "platform/http/http_client.hpp"

namespace serin::notify {

struct NotifierOptions {
    std::chrono::milliseconds timeout{5'000};  ///< per attempt, as Flagger's 5 s
    int attempts = 3;                          ///< in all, on retryable failures
    std::chrono::milliseconds backoff{1'000};  ///< before the second attempt, doubling
    std::size_t max_in_flight = 64;            ///< more at once are dropped (and counted)
};

/// Counters since the notifier was made.
struct NotifierStats {
    std::uint64_t sent = 0;
    std::uint64_t failed = 0;   ///< gave up after the last attempt, or dropped
    std::uint64_t retries = 0;  ///< attempts after the first
    std::size_t in_flight = 0;
};

/// Posts notifications in the background, so that a slow or dead chat service never holds up a
/// release: post() returns at once. Each post is a JSON POST with a timeout per attempt and a
/// bounded number of attempts with exponential backoff on connection failures, 429 and 5xx; any
/// other non-2xx answer fails at once. A failure is reported to `on_failure` with a message
/// that names the destination's label and never its address or token.
///
/// Thread safety: one io_context thread, like the HttpClient it is given. The notifier must
/// outlive its posts: destroy it only after the io_context has stopped.
class Notifier {
public:
    using FailureHandler = std::function<void(const std::string& message)>;

    Notifier(boost::asio::any_io_executor executor, http::HttpClient& http, Clock& clock,
             NotifierOptions options = {})
        : executor_(std::move(executor)), http_(http), clock_(clock), options_(options) {}

    void post(Destination destination, Message message, FailureHandler on_failure = {});

    const NotifierStats& stats() const { return stats_; }

private:
    boost::asio::awaitable<Result<void>> deliver(Destination destination, std::string body);
    boost::asio::awaitable<Result<void>> attempt(const Destination& destination,
                                                 const std::string& body);

    boost::asio::any_io_executor executor_;
    http::HttpClient& http_;
    Clock& clock_;
    NotifierOptions options_;
    NotifierStats stats_;
};

}  // namespace serin::notify
