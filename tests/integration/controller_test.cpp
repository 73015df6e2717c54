// The canary Controller in this process against the devcluster, to count what it asks of the API
// server: an analysis tick must read nothing (informer caches) and write only what changed.
#include <catch2/catch.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>

#include "controller/canary/controller.hpp"
#include "controller/canary/webhook.hpp"
#include "meshes/common/route_types.hpp"
#include "meshes/router.hpp"
#include "metrics/metric_checker.hpp"
#include "platform/kube/discovery.hpp"
#include "platform/kube/event_recorder.hpp"
#include "tests/e2e/e2e.hpp"

namespace {

namespace asio = boost::asio;
namespace types = serin::kube::types;
using namespace serin::e2e;

int iterations(const Json& canary) {
    Json it = at(canary, "/status/iterations");
    return it.is_number() ? it.get<int>() : 0;
}

}  // namespace

TEST_CASE("an analysis tick reads nothing from the API server and writes only what changed") {
    // Each provider's routing objects are read from informer caches too.
    const std::string provider =
        GENERATE(as<std::string>{}, "kubernetes", "istio", "smi:v1alpha3", "gatewayapi:v1");
    INFO("provider " << provider);
    Scenario s;  // its client sets the scene; the controller gets a client of its own
    GateServer gates(s.io());
    serin::SystemClock clock;
    auto client = serin::testing::make_admin_client(s.io(), s.cluster());
    auto verified = serin::http::make_beast_client(s.io().get_executor(), {});
    REQUIRE(verified.has_value());
    serin::canary::WebhookClient webhooks(**verified, **verified, clock);
    serin::kube::EventRecorder recorder(*client, clock, {});
    serin::metrics::UnavailableMetricChecker metrics;
    serin::canary::ControllerOptions options;
    options.register_routers = serin::meshes::register_builtin_routers;
    serin::canary::CacheOptions cache_options;
    cache_options.ns = s.ns();
    cache_options.route_types = serin::testing::run(
        s.io(), serin::kube::served_types(*client, serin::meshes::route_types::all()));
    serin::canary::Caches caches(*client, clock, cache_options);
    serin::canary::Controller controller(
        serin::canary::ControllerDeps{s.io().get_executor(), caches, clock, recorder, webhooks,
                                      metrics, nullptr, nullptr},
        options);
    asio::cancellation_signal stop;
    serin::test::TestEvent stopped(s.io().get_executor());
    asio::co_spawn(s.io(), controller.run(),
                   asio::bind_cancellation_slot(stop.slot(),
                                                [&](std::exception_ptr) { stopped.set(); }));

    s.create(types::deployments(), s.deployment("ghcr.io/stefanprodan/podinfo:6.0.0"));
    s.create(types::canaries(),
             s.canary({{"interval", "1s"},
                       {"threshold", 2},
                       {"iterations", 1000},
                       {"webhooks",
                        {{{"name", "load-test"}, {"type", "rollout"}, {"url", gates.url("/approve")}}}}},
                      {{"provider", provider},
                       {"service",
                        {{"gatewayRefs", Json::array({{{"name", "public"}, {"namespace", "gateways"}}})}}}}));
    s.wait_phase("Initialized");
    s.bump_image("ghcr.io/stefanprodan/podinfo:6.0.1");
    s.wait_canary([](const Json& c) { return iterations(c) >= 2; }, "the analysis under way");

    // Steady state: count the controller's requests over several ticks.
    const serin::kube::RestClientStats before = client->stats();
    const std::size_t hooks_before = gates.calls("/approve");
    const int from = iterations(s.get(types::canaries(), "podinfo"));
    const int ticks = 5;
    s.wait_canary([&](const Json& c) { return iterations(c) >= from + ticks; }, "five more ticks");
    const serin::kube::RestClientStats after = client->stats();
    const std::size_t hooks = gates.calls("/approve") - hooks_before;
    const std::uint64_t reads = after.reads - before.reads;
    const std::uint64_t writes = after.writes - before.writes;
    WARN("over " << ticks << " analysis ticks: " << reads << " reads, " << writes
                 << " writes, " << hooks << " rollout hook calls");

    CHECK(reads == 0);
    CHECK(hooks >= static_cast<std::size_t>(ticks));
    // Each tick writes the status (one more iteration), then, in the background, its step into
    // the CanaryHistory and one Event: three writes, and no rewrite of the owned objects, which
    // have not changed. The window opens and closes when a tick's status is seen, so the history
    // write and Event of the tick before it, or of its last tick, may fall on either side.
    CHECK(writes >= static_cast<std::uint64_t>(3 * ticks - 2));
    CHECK(writes <= static_cast<std::uint64_t>(3 * ticks + 2));

    stop.emit(asio::cancellation_type::all);
    serin::testing::run(s.io(), stopped.wait(), std::chrono::seconds{30});
}
