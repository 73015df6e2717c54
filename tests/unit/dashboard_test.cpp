// examples/grafana/serin-dashboard.json queries only series the controller exposes.
#include <catch2/catch.hpp>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>

#include "controller/telemetry/telemetry.hpp"

TEST_CASE("every series the Grafana dashboard queries is one serin exposes") {
    std::ifstream in(std::string(SERIN_SOURCE_DIR) + "/examples/grafana/serin-dashboard.json");
    REQUIRE(in.good());
    const auto dashboard = nlohmann::json::parse(in);
    REQUIRE(dashboard.contains("panels"));

    serin::telemetry::Telemetry t("0.1.0", "istio");
    serin::api::Canary c;
    c.metadata.name = "podinfo";
    c.metadata.ns = "test";
    c.spec.target_ref.name = "podinfo";
    t.set_canary_totals({{"test", 1}});
    t.set_status(c, "Progressing");
    t.set_weights(c, 100, 0);
    t.set_metric_value(c, "request-success-rate", 100);
    t.observe_analysis(c, 0.1);
    t.count_release(c, true, false);
    t.count_release(c, false, false);
    t.observe_reconcile(0.01, true);
    t.observe_queue_wait(0.001);
    t.observe_metric_query(0.01, true);
    serin::telemetry::Telemetry::Totals totals;
    totals.api_requests[{"GET", "200"}] = 1;
    t.set_totals(totals);
    const std::string exposed = t.scrape();

    const std::regex series("\\b((flagger|serin)_[a-z_]+)");
    std::set<std::string> queried;
    for (const auto& panel : dashboard["panels"]) {
        for (const auto& target : panel["targets"]) {
            const std::string expr = target["expr"];
            for (auto it = std::sregex_iterator(expr.begin(), expr.end(), series);
                 it != std::sregex_iterator(); ++it) {
                queried.insert((*it)[1]);
            }
        }
    }
    CHECK(queried.size() >= 14);
    for (const std::string& name : queried) {
        INFO(name);
        const bool found = exposed.find("\n" + name + "{") != std::string::npos ||
                           exposed.find("\n" + name + " ") != std::string::npos;
        CHECK(found);
    }
}
