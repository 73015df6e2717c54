#include "metrics/prometheus/prometheus_provider.hpp"

#include <utility>

#include "metrics/prometheus/prometheus_client.hpp"
#include "platform/core/text.hpp"

namespace serin::metrics {

namespace {

class PrometheusProvider final : public MetricProvider {
public:
    PrometheusProvider(http::HttpClient& http, PrometheusQuery base)
        : client_(http), base_(std::move(base)) {}

    void set_observer(QueryObserver observer) { client_.set_observer(std::move(observer)); }

    // MetricProvider
    std::string_view name() const override { return "Prometheus"; }

    boost::asio::awaitable<Result<std::optional<double>>> query(std::string query) override {
        PrometheusQuery q = base_;
        q.promql = std::move(query);
        co_return co_await client_.query(std::move(q));
    }

    boost::asio::awaitable<Result<std::vector<double>>> query_range(std::string query,
                                                                    RangeWindow window) override {
        PrometheusQuery q = base_;
        q.promql = std::move(query);
        co_return co_await client_.query_range(std::move(q), window.start, window.end, window.step);
    }

private:
    PrometheusClient client_;
    PrometheusQuery base_;  ///< address, headers and credentials; the query goes in per call
};

/// The Secret's credentials into `query`: `token`, else `username` and `password`.
Result<void> read_credentials(const ProviderSettings& settings, PrometheusQuery& query) {
    const auto data = [&settings](const char* key) {
        const auto it = settings.secret.find(key);
        return it == settings.secret.end() ? std::string() : it->second;
    };
    // A bearer token never holds whitespace, so a trailing newline is trimmed rather than sent.
    query.bearer_token = std::string(text::trim(data("token")));
    if (query.bearer_token.empty()) {
        query.username = data("username");
        query.password = data("password");
        if (query.username.empty() || query.password.empty()) {
            return secret_error(settings, "it has neither token nor username and password");
        }
    }
    // They go into an Authorization header, where a line break would start another header.
    for (const auto& [key, value] : {std::pair<const char*, const std::string*>{"token", &query.bearer_token},
                                     {"username", &query.username},
                                     {"password", &query.password}}) {
        if (text::has_line_break(*value)) {
            return secret_error(settings, std::string("data.") + key + " holds a line break or NUL");
        }
    }
    return {};
}

}  // namespace

Result<MetricProviderPtr> make_prometheus_provider(const ProviderSettings& settings,
                                                   const ProviderDeps& deps) {
    auto client = deps.client_for(settings);
    if (!client) {
        return client.error();
    }
    PrometheusQuery base;
    base.address = settings.address;
    base.headers = settings.headers;
    if (!settings.secret_name.empty()) {
        auto credentials = read_credentials(settings, base);
        if (!credentials) {
            return credentials.error();
        }
    }
    for (const auto& [name, values] : settings.headers) {
        for (const std::string& value : values) {
            if (text::has_line_break(name) || text::has_line_break(value)) {
                return provider_error("spec.provider.headers." + text::clip(name, 64) +
                                      " holds a line break or NUL");
            }
        }
    }
    auto provider = std::make_unique<PrometheusProvider>(**client, std::move(base));
    if (deps.observer) {
        provider->set_observer(deps.observer);
    }
    return MetricProviderPtr(std::move(provider));
}

}  // namespace serin::metrics
