#include "metrics/prometheus/prometheus_client.hpp"

#include "metrics/prometheus/prometheus_result.hpp"
#include "metrics/queries.hpp"
#include "platform/core/base64.hpp"
#include "platform/core/text.hpp"

namespace serin::metrics {

namespace {

/// The largest answer read from a metrics server (which any Canary may name). A judged range
/// query's one series of 11,000 points is about 400 KB.
constexpr std::size_t kMaxAnswerBytes = 4 * 1024 * 1024;

}  // namespace

boost::asio::awaitable<Result<http::Response>> PrometheusClient::get(
    const PrometheusQuery& q, std::string path_and_query) {
    std::string address = q.address;
    while (!address.empty() && address.back() == '/') {
        address.pop_back();
    }
    http::Request request;
    request.url = address + path_and_query;
    request.timeout = q.timeout;
    request.max_body_bytes = kMaxAnswerBytes;
    for (const auto& [name, values] : q.headers) {
        for (const std::string& value : values) {
            request.headers.emplace_back(name, value);
        }
    }
    if (!q.bearer_token.empty()) {
        request.headers.emplace_back("Authorization", "Bearer " + q.bearer_token);
    } else if (!q.username.empty()) {
        request.headers.emplace_back("Authorization", "Basic " + encode_base64(q.username + ":" + q.password));
    }
    const auto started = std::chrono::steady_clock::now();
    auto response = co_await http_.send(std::move(request));
    if (observer_) {
        observer_(std::chrono::steady_clock::now() - started, response && response->status < 400);
    }
    if (!response) {
        co_return response.error();
    }
    if (response->status >= 400) {
        co_return fail(ErrorKind::kBadRequest,
                       "error response: Status " + std::to_string(response->status) + ": " +
                           text::clip(response->body, text::kMaxRemoteBodyBytes));
    }
    co_return response;
}

boost::asio::awaitable<Result<std::optional<double>>> PrometheusClient::query(PrometheusQuery q) {
    const std::string path =
        "/api/v1/query?query=" + http::url_encode(metrics::collapse_whitespace(q.promql));
    auto response = co_await get(q, path);
    if (!response) {
        co_return response.error();
    }
    co_return parse_query_response(response->body);
}

boost::asio::awaitable<Result<std::vector<double>>> PrometheusClient::query_range(
    PrometheusQuery q, std::chrono::system_clock::time_point start,
    std::chrono::system_clock::time_point end, std::chrono::milliseconds step) {
    // Prometheus takes RFC 3339 or Unix seconds with a fraction; milliseconds are plenty.
    const auto unix_seconds = [](std::chrono::system_clock::time_point t) {
        const auto ms =
            std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
        return std::to_string(ms / 1000) + "." + std::to_string(1000 + ms % 1000).substr(1);
    };
    const std::string path =
        "/api/v1/query_range?query=" + http::url_encode(metrics::collapse_whitespace(q.promql)) +
        "&start=" + unix_seconds(start) + "&end=" + unix_seconds(end) +
        "&step=" + std::to_string(std::max<long long>(1, step.count() / 1000)) + "s";
    auto response = co_await get(q, path);
    if (!response) {
        co_return response.error();
    }
    co_return parse_range_response(response->body);
}

}  // namespace serin::metrics
