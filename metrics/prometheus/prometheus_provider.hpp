#pragma once

#include "metrics/provider.hpp"

namespace serin::metrics {

/// The Prometheus provider (flagger-spec §5.2): PrometheusClient's instant and range queries at
/// `settings.address`, with the template's headers and its Secret's `token` (Bearer, trimmed:
/// a token file saved with a trailing newline is common), else its `username` and `password`
/// (Basic), over the deps' insecure client when insecureSkipVerify is set. Its queries are
/// named "Prometheus" in messages.
///
/// Errors (kInvalid, as ProviderFactory's): insecureSkipVerify without an insecure client; a
/// Secret with neither token nor username and password, or with a line break or NUL in the
/// one sent; a header name or value with a line break or NUL.
Result<MetricProviderPtr> make_prometheus_provider(const ProviderSettings& settings,
                                                   const ProviderDeps& deps);

}  // namespace serin::metrics
