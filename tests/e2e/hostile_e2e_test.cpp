// What a namespace user controls (the Canary, the servers it names, their answers) cannot crash,
// stall or rob serin: each case runs the serin binary against the devcluster and hostile
// loopback servers, and checks what a user sees (status, Events, which requests were made).
#include <catch2/catch.hpp>

#include <algorithm>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fstream>
#include <sstream>

#include "platform/core/text.hpp"
#include "tests/e2e/e2e.hpp"
#include "tests/support/hostile.hpp"

namespace {

using namespace serin::e2e;
namespace asio = boost::asio;
namespace types = serin::kube::types;
namespace test = serin::test;

const std::string kV1 = "ghcr.io/stefanprodan/podinfo:6.0.0";
const std::string kV2 = "ghcr.io/stefanprodan/podinfo:6.0.1";

using serin::testing::hostile_input;

bool has_event(Scenario& s, const std::string& text) {
    const auto events = s.events();
    return std::any_of(events.begin(), events.end(),
                       [&](const std::string& e) { return e.find(text) != std::string::npos; });
}

/// A server whose every answer is `status` with `body`, recording what it is sent.
test::TestHttpServer answering(Scenario& s, int status, std::string body) {
    return test::TestHttpServer(
        s.io().get_executor(),
        [status, body](const test::TestRequest&, test::TestResponseWriter& writer)
            -> asio::awaitable<void> { co_await writer.respond(status, body); });
}

}  // namespace

TEST_CASE("a webhook's Latin-1 error body fails the check readably and the rollback keeps pace") {
    Scenario s;
    // 503 with a body that is not UTF-8: the message of every failed check quotes it.
    auto hook = answering(s, 503, hostile_input("text/latin1.txt"));
    SerinProcess& serin = s.start_serin();
    const Json analysis = {{"interval", "3s"},
                           {"threshold", 3},
                           {"iterations", 10},
                           {"webhooks",
                            {{{"name", "checks"},
                              {"type", "rollout"},
                              {"url", hook.base_url() + "/check"}}}}};
    s.create(types::deployments(), s.deployment(kV1));
    s.create(types::canaries(), s.canary(analysis));
    s.wait_phase("Initialized");
    s.bump_image(kV2);
    s.wait_canary([](const Json& c) { return at(c, "/status/failedChecks") == 1; },
                  "the first failed check");
    const auto first_failure = std::chrono::steady_clock::now();
    s.wait_phase("Failed", std::chrono::seconds{60});
    // Three failed checks are two more paced steps after the first: not a burst of retries.
    CHECK(std::chrono::steady_clock::now() - first_failure > std::chrono::milliseconds{5500});
    const std::string replaced = "caf\xEF\xBF\xBD cr\xEF\xBF\xBDme";
    CHECK(has_event(s, "advancement external check checks failed " + replaced));
    for (const std::string& e : s.events()) {
        CHECK(serin::text::is_valid_utf8(e));
    }
    CHECK(serin.running());
}

TEST_CASE("an interval the CRD pattern lets through, cut inside a character, is reported") {
    Scenario s;
    s.start_serin();
    std::string interval = "1m";
    for (int i = 0; i < 60; ++i) {
        interval += "\xC3\xA4";  // ä
    }
    s.create(types::deployments(), s.deployment(kV1));
    s.create(types::canaries(), s.canary({{"interval", interval}, {"threshold", 5}, {"iterations", 2}}));
    const Json canary = s.wait_canary(
        [](const Json& c) {
            const Json conditions = at(c, "/status/conditions");
            return conditions.is_array() &&
                   std::any_of(conditions.begin(), conditions.end(), [](const Json& cond) {
                       return cond.value("type", "") == "Accepted" &&
                              cond.value("status", "") == "False";
                   });
        },
        "Accepted=False");
    std::string message;
    for (const Json& cond : at(canary, "/status/conditions")) {
        if (cond.value("type", "") == "Accepted") {
            message = cond.value("message", "");
        }
    }
    CHECK(message.rfind("spec.analysis.interval: ", 0) == 0);
    CHECK(serin::text::is_valid_utf8(message));
    s.wait_event("spec.analysis.interval: ");
}

TEST_CASE("a metrics server answering JSON nested 50,000 deep fails the check, serin runs on") {
    Scenario s;
    auto prometheus = answering(s, 200, hostile_input("prometheus/deep-sample.json"));
    SerinProcess& serin = s.start_serin();
    const Json analysis = {
        {"interval", "2s"},
        {"threshold", 2},
        {"iterations", 5},
        {"metrics", {{{"name", "errors"}, {"query", "sum(up)"}, {"thresholdRange", {{"max", 1}}}}}}};
    s.create(types::deployments(), s.deployment(kV1));
    s.create(types::canaries(), s.canary(analysis, {{"metricsServer", prometheus.base_url()}}));
    s.wait_phase("Initialized");
    s.bump_image(kV2);
    s.wait_event("nested deeper than 64 levels");
    s.wait_phase("Failed", std::chrono::seconds{60});
    CHECK(serin.running());
}

TEST_CASE("a MetricTemplate's credentials never go to the server the Canary names") {
    Scenario s;
    auto prometheus = answering(
        s, 200, R"({"status":"success","data":{"resultType":"vector","result":[]}})");
    s.start_serin();
    s.create(types::secrets(), {{"apiVersion", "v1"},
                                {"kind", "Secret"},
                                {"metadata", {{"name", "shared-token"}}},
                                {"stringData", {{"token", "the-shared-token"}}}});
    // No address: it would fall back to the Canary's metricsServer, which its author picks.
    s.create(types::metric_templates(),
             {{"apiVersion", "flagger.app/v1beta1"},
              {"kind", "MetricTemplate"},
              {"metadata", {{"name", "error-rate"}}},
              {"spec",
               {{"provider", {{"type", "prometheus"}, {"secretRef", {{"name", "shared-token"}}}}},
                {"query", "sum(up)"}}}});
    const Json analysis = {{"interval", "2s"},
                           {"threshold", 2},
                           {"iterations", 5},
                           {"metrics",
                            {{{"name", "error-rate"},
                              {"templateRef", {{"name", "error-rate"}}},
                              {"thresholdRange", {{"max", 1}}}}}}};
    s.create(types::deployments(), s.deployment(kV1));
    s.create(types::canaries(), s.canary(analysis, {{"metricsServer", prometheus.base_url()}}));
    s.wait_phase("Initialized");
    s.bump_image(kV2);
    s.wait_event("spec.provider.address is empty");
    CHECK(prometheus.requests().empty());  // so the token went nowhere
}

TEST_CASE("a canary waiting on a slow webhook does not hold up another one") {
    Scenario s;
    GateServer hooks(s.io());
    // One worker: before, the slow canary's reconcile held it for the whole webhook call.
    SerinProcess serin(s.cluster(), s.ns(),
                       {"--threadiness=1", "--concurrent-reconciles=1", "--release-start-workers=0"});
    s.create(types::deployments(), s.deployment(kV1));
    s.create(types::canaries(),
             s.canary({{"interval", "1s"},
                       {"threshold", 2},
                       {"iterations", 2},
                       {"webhooks",
                        {{{"name", "slow"},
                          {"type", "pre-rollout"},
                          {"timeout", "5m"},
                          {"url", hooks.url("/slow/120000")}}}}}));
    Json other_deployment = s.deployment(kV1);
    other_deployment["metadata"]["name"] = "other";
    other_deployment["metadata"]["labels"]["app"] = "other";
    other_deployment["spec"]["selector"]["matchLabels"]["app"] = "other";
    other_deployment["spec"]["template"]["metadata"]["labels"]["app"] = "other";
    s.create(types::deployments(), other_deployment);
    Json other = s.canary({{"interval", "1s"},
                           {"threshold", 2},
                           {"iterations", 2},
                           {"webhooks",
                            {{{"name", "fast"},
                              {"type", "rollout"},
                              {"url", hooks.url("/approve")}}}}});
    other["metadata"]["name"] = "other";
    other["spec"]["targetRef"]["name"] = "other";
    s.create(types::canaries(), other);
    s.wait_phase("Initialized");
    const auto phase_is = [](const std::string& want) {
        return [want](const Json& c) { return phase(c) == want; };
    };
    s.wait_object(types::canaries(), "other", phase_is("Initialized"), "other Initialized");

    s.bump_image(kV2);
    s.wait_until([&] { return hooks.calls("/slow/120000") == 1; }, "the slow check to be called",
                 std::chrono::seconds{60});
    s.patch(types::deployments(), "other",
            {{"spec",
              {{"template",
                {{"spec", {{"containers", {{{"name", "podinfod"}, {"image", kV2}}}}}}}}}}});
    // The other release runs to the end while the slow check is still unanswered.
    s.wait_object(types::canaries(), "other", phase_is("Succeeded"), "other Succeeded",
                  std::chrono::seconds{60});
    CHECK(phase(s.get(types::canaries(), "podinfo")) == "Progressing");
    CHECK(hooks.calls("/slow/120000") == 1);
    CHECK(serin.running());
}

TEST_CASE("a MetricTemplate of a provider this build lacks is refused until the template is fixed") {
    Scenario s;
    // The template's server once fixed: a Prometheus whose every answer is 0, under max 1.
    auto prometheus = answering(
        s, 200,
        R"({"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"0"]}]}})");
    s.start_serin();
    s.create(types::metric_templates(),
             {{"apiVersion", "flagger.app/v1beta1"},
              {"kind", "MetricTemplate"},
              {"metadata", {{"name", "error-rate"}}},
              {"spec",
               {{"provider", {{"type", "datadog"}, {"address", prometheus.base_url()}}},
                {"query", "sum(errors)"}}}});
    const Json analysis = {{"interval", "2s"},
                           {"threshold", 1},
                           {"iterations", 2},
                           {"metrics",
                            {{{"name", "error-rate"},
                              {"templateRef", {{"name", "error-rate"}}},
                              {"thresholdRange", {{"max", 1}}}}}}};
    s.create(types::deployments(), s.deployment(kV1));
    s.create(types::canaries(), s.canary(analysis));
    const std::string refusal =
        "spec.analysis.metrics[0].templateRef: MetricTemplate \"error-rate\" provider.type "
        "\"datadog\" is not supported by this build (supported: prometheus)";
    const auto accepted_is = [](const std::string& status) {
        return [status](const Json& c) {
            for (const Json& condition : at(c, "/status/conditions")) {
                if (condition.value("type", "") == "Accepted") {
                    return condition.value("status", "") == status;
                }
            }
            return false;
        };
    };
    const Json refused = s.wait_canary(accepted_is("False"), "Accepted=False", 60s);
    s.wait_event(refusal);
    CHECK(phase(refused).empty());  // no release started
    CHECK(at(refused, "/status/failedChecks").is_null());
    // It stays refused: no primary, nothing queried, nothing counted.
    CHECK(s.canary_stays([](const Json& c) { return !phase(c).empty(); }, 5s));
    CHECK(prometheus.requests().empty());
    CHECK(at(s.get(types::deployments(), "podinfo"), "/spec/replicas") == 2);

    // Fixing the template re-queues the canary (serin watches the templates its canaries name):
    // accepted, initialized, and a release runs on the template's server.
    s.patch(types::metric_templates(), "error-rate",
            {{"spec", {{"provider", {{"type", "prometheus"}}}}}});
    s.wait_phase("Initialized", 30s);
    s.wait_canary(accepted_is("True"), "Accepted=True", 10s);
    s.bump_image(kV2);
    s.wait_phase("Succeeded", 90s);
    CHECK_FALSE(prometheus.requests().empty());
}

TEST_CASE("a webhook at a cloud metadata address is refused by the address policy, not called") {
    Scenario s;
    SerinProcess& serin = s.start_serin();
    const Json analysis = {{"interval", "2s"},
                           {"threshold", 2},
                           {"iterations", 10},
                           {"webhooks",
                            {{{"name", "steal-credentials"},
                              {"type", "rollout"},
                              {"url", "http://169.254.169.254/latest/meta-data/iam/"}}}}};
    s.create(types::deployments(), s.deployment(kV1));
    s.create(types::canaries(), s.canary(analysis));
    s.wait_phase("Initialized");
    s.bump_image(kV2);
    s.wait_phase("Failed", std::chrono::seconds{60});
    CHECK(has_event(s, "the address policy refuses 169.254.169.254 (denied by 169.254.0.0/16"));
    CHECK(image_of(s.get(types::deployments(), "podinfo-primary")) == kV1);
    CHECK(serin.running());
}

TEST_CASE("a host name is refused when it resolves to an address the policy denies") {
    Scenario s;
    // "localhost" is not a denied name, but the addresses it resolves to are. The canary has no
    // metric checks, so serin needs no loopback server besides the webhook it must not call.
    auto hook = answering(s, 200, "ok");
    SerinProcess& serin = s.start_serin_with_args({"-address-policy-deny=127.0.0.0/8,::1"});
    const Json analysis = {
        {"interval", "2s"},
        {"threshold", 2},
        {"iterations", 10},
        {"webhooks",
         {{{"name", "inside"},
           {"type", "rollout"},
           {"url", "http://localhost:" + std::to_string(hook.port()) + "/check"}}}}};
    s.create(types::deployments(), s.deployment(kV1));
    s.create(types::canaries(), s.canary(analysis));
    s.wait_phase("Initialized");
    s.bump_image(kV2);
    s.wait_phase("Failed", std::chrono::seconds{60});
    CHECK(has_event(s, "the address policy refuses localhost ("));
    CHECK(hook.requests().empty());
    CHECK(serin.running());
}
