#include "metrics/prometheus/prometheus_provider.hpp"
#include "metrics/provider.hpp"

namespace serin::metrics {

void register_builtin_providers(ProviderRegistry& registry) {
    registry.add("prometheus", make_prometheus_provider);
}

}  // namespace serin::metrics
