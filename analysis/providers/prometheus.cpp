#include "analysis/providers/prometheus.hpp"

#include "analysis/providers/prometheus_result.hpp"
#include "analysis/queries.hpp"

namespace serin::metrics {

namespace {

std::string base64(std::string_view in) {
    static constexpr char kAlphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    std::size_t i = 0;
    for (; i + 2 < in.size(); i += 3) {
        const unsigned n = (static_cast<unsigned char>(in[i]) << 16U) |
                           (static_cast<unsigned char>(in[i + 1]) << 8U) |
                           static_cast<unsigned char>(in[i + 2]);
        out += kAlphabet[(n >> 18U) & 63U];
        out += kAlphabet[(n >> 12U) & 63U];
        out += kAlphabet[(n >> 6U) & 63U];
        out += kAlphabet[n & 63U];
    }
    if (i < in.size()) {
        unsigned n = static_cast<unsigned char>(in[i]) << 16U;
        if (i + 1 < in.size()) {
            n |= static_cast<unsigned char>(in[i + 1]) << 8U;
        }
        out += kAlphabet[(n >> 18U) & 63U];
        out += kAlphabet[(n >> 12U) & 63U];
        out += i + 1 < in.size() ? kAlphabet[(n >> 6U) & 63U] : '=';
        out += '=';
    }
    return out;
}

}  // namespace

boost::asio::awaitable<Result<std::optional<double>>> PrometheusClient::query(PrometheusQuery q) {
    std::string address = q.address;
    while (!address.empty() && address.back() == '/') {
        address.pop_back();
    }
    http::Request request;
    request.url = address + "/api/v1/query?query=" +
                  http::url_encode(analysis::collapse_whitespace(q.promql));
    request.timeout = q.timeout;
    for (const auto& [name, values] : q.headers) {
        for (const std::string& value : values) {
            request.headers.emplace_back(name, value);
        }
    }
    if (!q.bearer_token.empty()) {
        request.headers.emplace_back("Authorization", "Bearer " + q.bearer_token);
    } else if (!q.username.empty()) {
        request.headers.emplace_back("Authorization", "Basic " + base64(q.username + ":" + q.password));
    }
    auto response = co_await http_.send(std::move(request));
    if (!response) {
        co_return response.error();
    }
    if (response->status >= 400) {
        const std::string body = response->body.size() > 512 ? response->body.substr(0, 512) + "..."
                                                              : response->body;
        co_return fail(ErrorKind::kBadRequest,
                       "error response: Status " + std::to_string(response->status) + ": " + body);
    }
    co_return parse_query_response(response->body);
}

}  // namespace serin::metrics
