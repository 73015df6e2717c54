// meshsim and Prometheus in the devcluster: traffic split by a real VirtualService, TrafficSplit
// and HTTPRoute reaches Prometheus, and Flagger's builtin queries (metrics/queries) read each
// version's success rate and latency from it.
#include <catch2/catch.hpp>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cmath>

#include "meshes/common/route_types.hpp"
#include "metrics/prometheus/prometheus_result.hpp"
#include "metrics/queries.hpp"
#include "platform/http/http_client.hpp"
#include "tests/e2e/e2e.hpp"

namespace {

namespace asio = boost::asio;
namespace types = serin::kube::types;
using namespace serin::e2e;
using serin::metrics::Observer;
using namespace std::chrono_literals;

/// Runs a query against the cluster's Prometheus; nullopt for no data.
std::optional<double> query(Scenario& s, serin::http::HttpClient& http, const std::string& promql) {
    serin::http::Request request;
    request.url = s.cluster().prometheus_url() + "/api/v1/query?query=" + serin::http::url_encode(promql);
    request.timeout = 5s;
    auto response = serin::testing::run(s.io(), http.send(std::move(request)));
    REQUIRE(response.has_value());
    auto value = serin::metrics::parse_query_response(response->body);
    INFO(promql << " -> " << response->body);
    REQUIRE(value.has_value());
    return *value;
}

/// Polls Prometheus (it has the data only after a few scrapes) until `ready` holds for the
/// query's value, or 60 s pass. Returns the last value.
std::optional<double> wait_query(Scenario& s, serin::http::HttpClient& http, const std::string& promql,
                                 const std::function<bool(double)>& ready) {
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    std::optional<double> value;
    asio::steady_timer timer(s.io());
    while (std::chrono::steady_clock::now() < deadline) {
        value = query(s, http, promql);
        if (value && ready(*value)) {
            return value;
        }
        timer.expires_after(250ms);
        serin::testing::run(s.io(), [](asio::steady_timer& t) -> asio::awaitable<void> {
            co_await t.async_wait(asio::use_awaitable);
        }(timer));
    }
    return value;
}

Json app_deployment(const std::string& name, Json annotations) {
    return {{"apiVersion", "apps/v1"},
            {"kind", "Deployment"},
            {"metadata", {{"name", name}}},
            {"spec",
             {{"replicas", 1},
              {"selector", {{"matchLabels", {{"app", name}}}}},
              {"template",
               {{"metadata", {{"labels", {{"app", name}}}, {"annotations", std::move(annotations)}}},
                {"spec", {{"containers", {{{"name", "app"}, {"image", "ghcr.io/stefanprodan/podinfo:6.0.0"}}}}}}}}}}};
}

Json service(const std::string& name, const std::string& app) {
    return {{"apiVersion", "v1"},
            {"kind", "Service"},
            {"metadata", {{"name", name}}},
            {"spec", {{"selector", {{"app", app}}}, {"ports", {{{"name", "http"}, {"port", 80}}}}}}};
}

/// podinfo-primary (healthy, ~20 ms) and podinfo (20% errors, ~600 ms) behind the three
/// Services, ready.
void versions(Scenario& s) {
    s.create(types::deployments(), app_deployment("podinfo-primary", {{"sim.serin.dev/latency-ms", "20"}}));
    s.create(types::deployments(), app_deployment("podinfo", {{"sim.serin.dev/error-rate", "20"},
                                                             {"sim.serin.dev/latency-ms", "600"}}));
    s.create(types::services(), service("podinfo", "podinfo-primary"));
    s.create(types::services(), service("podinfo-primary", "podinfo-primary"));
    s.create(types::services(), service("podinfo-canary", "podinfo"));
    for (const char* name : {"podinfo", "podinfo-primary"}) {
        s.wait_object(types::deployments(), name,
                      [](const Json& d) { return at(d, "/status/availableReplicas") == 1; }, "available");
    }
}

std::string rendered(Scenario& s, Observer observer, const char* metric, const std::string& target) {
    auto builtin = serin::metrics::builtin_query(observer, metric);
    REQUIRE(builtin.has_value());
    serin::metrics::TemplateVars vars;
    vars.ns = s.ns();
    vars.target = target;
    vars.interval = "15s";
    auto text = serin::metrics::render_query(builtin->query, vars);
    REQUIRE(text.has_value());
    return serin::metrics::collapse_whitespace(*text);
}

}  // namespace

TEST_CASE("meshsim splits traffic by a VirtualService and the builtin Istio queries read it") {
    Scenario s;
    REQUIRE_FALSE(s.cluster().prometheus_url().empty());
    auto http = serin::http::make_beast_client(s.io().get_executor(), {});
    REQUIRE(http.has_value());
    versions(s);
    const auto vs = serin::meshes::route_types::istio_virtual_services();
    s.create(vs, {{"apiVersion", vs.api_version()},
                  {"kind", vs.kind},
                  {"metadata", {{"name", "podinfo"}}},
                  {"spec", {{"hosts", {"podinfo"}},
                            {"http", {{{"route", {{{"destination", {{"host", "podinfo-primary"}}}, {"weight", 70}},
                                                  {{"destination", {{"host", "podinfo-canary"}}}, {"weight", 30}}}}}}}}}});

    // The canary's share of the requests is its weight.
    const std::string total = "sum(rate(istio_requests_total{destination_workload_namespace=\"" + s.ns() +
                              "\"}[15s]))";
    const std::string canary = "sum(rate(istio_requests_total{destination_workload_namespace=\"" + s.ns() +
                               "\",destination_workload=\"podinfo\"}[15s]))";
    REQUIRE(wait_query(s, **http, total, [](double v) { return v > 40; }));
    auto share = wait_query(s, **http, canary + " / " + total,
                            [](double v) { return std::abs(v - 0.3) < 0.03; });
    REQUIRE(share);
    CHECK(*share == Approx(0.3).margin(0.03));

    // Flagger's builtin queries: the canary's success rate is 80%, its p99 above 500 ms; the
    // primary's are 100% and about 20 ms.
    auto success = wait_query(s, **http, rendered(s, Observer::kIstio, "request-success-rate", "podinfo"),
                              [](double v) { return std::abs(v - 80) < 2; });
    REQUIRE(success);
    CHECK(*success == Approx(80).margin(2));
    auto primary = query(s, **http, rendered(s, Observer::kIstio, "request-success-rate", "podinfo-primary"));
    REQUIRE(primary);
    CHECK(*primary == 100);
    auto slow = query(s, **http, rendered(s, Observer::kIstio, "request-duration", "podinfo"));
    REQUIRE(slow);
    CHECK(*slow > 500);
    CHECK(*slow < 1000);
    auto fast = query(s, **http, rendered(s, Observer::kIstio, "request-duration", "podinfo-primary"));
    REQUIRE(fast);
    CHECK(*fast < 50);

    // The same traffic as Linkerd and the app itself report it.
    auto linkerd = query(s, **http, rendered(s, Observer::kLinkerd, "request-success-rate", "podinfo"));
    REQUIRE(linkerd);
    CHECK(*linkerd == Approx(80).margin(3));
    auto generic = query(s, **http, rendered(s, Observer::kHttp, "request-success-rate", "podinfo"));
    REQUIRE(generic);
    CHECK(*generic == Approx(80).margin(3));
}

TEST_CASE("meshsim follows a v1alpha1 TrafficSplit's Quantity weights, and no traffic means no data") {
    Scenario s;
    auto http = serin::http::make_beast_client(s.io().get_executor(), {});
    REQUIRE(http.has_value());
    versions(s);
    // No routing object yet: the apex selects the primary, the canary gets nothing.
    const std::string canary_rate = "sum(rate(response_total{namespace=\"" + s.ns() +
                                    "\",deployment=\"podinfo\"}[15s]))";
    const std::string primary_rate = "sum(rate(response_total{namespace=\"" + s.ns() +
                                     "\",deployment=\"podinfo-primary\"}[15s]))";
    REQUIRE(wait_query(s, **http, primary_rate, [](double v) { return v > 40; }));
    CHECK_FALSE(query(s, **http, rendered(s, Observer::kLinkerd, "request-success-rate", "podinfo")).has_value());

    const auto split = serin::meshes::route_types::smi_traffic_splits("v1alpha1");
    const Json backends = Json::array({Json{{"service", "podinfo-canary"}, {"weight", "50"}},
                                       Json{{"service", "podinfo-primary"}, {"weight", "50"}}});
    s.create(split, Json{{"apiVersion", split.api_version()},
                         {"kind", split.kind},
                         {"metadata", {{"name", "podinfo"}}},
                         {"spec", {{"service", "podinfo"}, {"backends", backends}}}});
    auto half = wait_query(s, **http, canary_rate + " / (" + canary_rate + " + " + primary_rate + ")",
                           [](double v) { return std::abs(v - 0.5) < 0.05; });
    REQUIRE(half);
    CHECK(*half == Approx(0.5).margin(0.05));
}
