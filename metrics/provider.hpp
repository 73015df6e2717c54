#pragma once

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "platform/core/result.hpp"
#include "platform/http/http_client.hpp"

/// Metric providers (flagger-spec §5.2, flagger-spec-providers §13): the backends a metric's
/// query runs on, one per MetricTemplate `spec.provider.type`, behind one interface.
namespace serin::metrics {

/// The type of the server named by spec.metricsServer and -metrics-server. Builtin and inline
/// queries run on a provider of this type (they are PromQL), and so does a template of this type
/// that names no address of its own.
inline constexpr std::string_view kMetricsServerType = "prometheus";

/// The samples a range query asks for: from `start` to `end`, every `step`.
struct RangeWindow {
    std::chrono::system_clock::time_point start;
    std::chrono::system_clock::time_point end;
    std::chrono::milliseconds step{1000};
};

/// Runs rendered queries on one metrics backend, with the address and credentials it was built
/// with. A provider is built for each use (see ProviderRegistry::build) and is not shared.
///
/// No data (an empty answer, NaN, ±Inf) is a value, nullopt or an empty series, never an error;
/// errors are what kept a query from being run or read, with a message fit to follow
/// "Metric query failed for <metric>: ".
/// Thread safety: one io_context thread, as the HTTP clients it was built on.
class MetricProvider {
public:
    virtual ~MetricProvider() = default;

    /// How messages name this provider's queries: the "Prometheus" of Flagger's "Prometheus
    /// query failed: ..." (builtin and inline queries).
    virtual std::string_view name() const = 0;

    /// The one value of `query`; nullopt when it found no data.
    virtual boost::asio::awaitable<Result<std::optional<double>>> query(std::string query) = 0;

    /// The samples of `query` over `window`, in time order, without no-data samples (NaN,
    /// ±Inf); empty when it found no data. The statistical judge compares two of these.
    virtual boost::asio::awaitable<Result<std::vector<double>>> query_range(
        std::string query, RangeWindow window) = 0;
};

using MetricProviderPtr = std::unique_ptr<MetricProvider>;

/// What a provider is built from: a MetricTemplate's `spec.provider` with its Secret read, or,
/// for builtin and inline queries, just the metrics server (type kMetricsServerType).
struct ProviderSettings {
    std::string type;
    /// As the template has it; for kMetricsServerType the checker fills in the metrics server
    /// when the template names none (and carries no credentials).
    std::string address;
    std::map<std::string, std::vector<std::string>> headers;  ///< spec.provider.headers
    std::string secret_name;  ///< spec.provider.secretRef.name; empty without one
    /// The Secret's data, base64-decoded, every key of it: each provider reads its own keys
    /// (flagger-spec-providers §13.0). Empty without a secretRef.
    std::map<std::string, std::string> secret;
    std::string region;  ///< spec.provider.region (cloudwatch)
    bool insecure_skip_verify = false;
};

/// Told, after each request a provider makes, how long it took and whether it was answered
/// with a success (false for a failed connection, a timeout or an error status).
using QueryObserver = std::function<void(std::chrono::steady_clock::duration elapsed, bool ok)>;

/// What every provider is built with: the HTTP clients all providers share (keep-alive to the
/// metrics servers), and the observer of their queries.
struct ProviderDeps {
    http::HttpClient& http;  ///< verifies TLS
    /// For settings with insecureSkipVerify; null: such settings are refused (client_for).
    http::HttpClient* insecure = nullptr;
    QueryObserver observer;

    /// The client for `settings`: `insecure` when they skip TLS verification. Errors: kInvalid
    /// (provider_error) when they do and there is no such client: never a silent bypass, and
    /// never verification the template's author turned off.
    Result<http::HttpClient*> client_for(const ProviderSettings& settings) const;
};

/// The errors of a ProviderFactory read on from "Metric template <name>.<ns> " in the Warning,
/// as Flagger's do. provider_error: "error: <what>" about the template, where `what` names the
/// field ("spec.provider.insecureSkipVerify is set but ...").
Error provider_error(std::string what);
/// secret_error: "secret <name> error: <what>" about the Secret's data ("data.token holds a
/// line break or NUL").
Error secret_error(const ProviderSettings& settings, std::string what);

/// Builds a provider. Errors: kInvalid, from provider_error or secret_error.
using ProviderFactory =
    std::function<Result<MetricProviderPtr>(const ProviderSettings& settings,
                                            const ProviderDeps& deps)>;

/// Metric providers by MetricTemplate `spec.provider.type`, built in main (no static
/// registration), as meshes' RouterRegistry.
class ProviderRegistry {
public:
    explicit ProviderRegistry(ProviderDeps deps) : deps_(std::move(deps)) {}

    void add(std::string type, ProviderFactory factory);
    /// Told of every query of the providers built from now on.
    void set_query_observer(QueryObserver observer) { deps_.observer = std::move(observer); }

    /// Whether `type` was added. Errors: kInvalid "error: spec.provider.type: \"<type>\" is not
    /// supported by this build of Serin (prometheus is)" (provider_error).
    Result<void> supports(std::string_view type) const;
    /// A new provider for `settings`. Flagger too builds one for each use: a template's Secret
    /// may have changed since the last one, and building is cheap next to the query.
    /// Errors: supports'; the factory's.
    Result<MetricProviderPtr> build(const ProviderSettings& settings) const;
    /// The types added, for messages: "prometheus is", "datadog and prometheus are".
    std::string supported() const;
    /// The types added, sorted.
    std::vector<std::string> types() const;

private:
    ProviderDeps deps_;
    std::map<std::string, ProviderFactory, std::less<>> factories_;
};

/// Adds the providers of this build: prometheus.
void register_builtin_providers(ProviderRegistry& registry);

}  // namespace serin::metrics
