#pragma once

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "metrics/provider.hpp"
#include "platform/core/result.hpp"
#include "platform/http/http_client.hpp"

namespace serin::metrics {

/// One instant query (flagger-spec §5.2).
struct PrometheusQuery {
    std::string address;  ///< http(s)://host:port[/path]
    std::string promql;   ///< whitespace is collapsed before sending
    std::map<std::string, std::vector<std::string>> headers;  ///< MetricTemplate headers
    std::string bearer_token;                                 ///< from the template's secret
    std::string username;                                     ///< basic auth, with password
    std::string password;
    std::chrono::milliseconds timeout{5000};
};

/// Runs instant queries over one HttpClient (its connections are reused).
/// Errors: the client's; kBadRequest "error response: Status <code>: <body>" for a status of 400
/// or more; parse_query_response's. No data is a value of nullopt, not an error.
/// Thread safety: the HttpClient's (one io_context thread).
class PrometheusClient {
public:
    /// Told, after each request to Prometheus, how long it took and whether it was answered
    /// with a success (false for a failed connection, a timeout or a status of 400 or more).
    using QueryObserver = metrics::QueryObserver;

    explicit PrometheusClient(http::HttpClient& http) : http_(http) {}

    void set_observer(QueryObserver observer) { observer_ = std::move(observer); }

    boost::asio::awaitable<Result<std::optional<double>>> query(PrometheusQuery query);

    /// The samples of `query` from `start` to `end` every `step` (`/api/v1/query_range`), as
    /// parse_range_response reads them.
    boost::asio::awaitable<Result<std::vector<double>>> query_range(
        PrometheusQuery query, std::chrono::system_clock::time_point start,
        std::chrono::system_clock::time_point end, std::chrono::milliseconds step);

private:
    boost::asio::awaitable<Result<http::Response>> get(const PrometheusQuery& query,
                                                       std::string path_and_query);

    http::HttpClient& http_;
    QueryObserver observer_;
};

}  // namespace serin::metrics
