// podsim against the real controller-manager: Deployment status is computed by Kubernetes' own
// deployment and replicaset controllers from the pod statuses podsim writes.
#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>

#include "platform/kube/kube_client.hpp"
#include "tests/support/cluster.hpp"

namespace kube = serin::kube;
namespace testing = serin::testing;
using Json = nlohmann::json;
using namespace std::chrono_literals;

namespace {

Json make_deployment(const std::string& name, int replicas, Json annotations = Json::object()) {
    return {
        {"apiVersion", "apps/v1"},
        {"kind", "Deployment"},
        {"metadata", {{"name", name}}},
        {"spec",
         {{"replicas", replicas},
          {"selector", {{"matchLabels", {{"app", name}}}}},
          {"template",
           {{"metadata", {{"labels", {{"app", name}}}, {"annotations", annotations}}},
            {"spec",
             {{"containers", {{{"name", "app"}, {"image", "ghcr.io/serin/podinfo:6.0.0"}}}}}}}}}}};
}

std::int64_t int_at(const Json& object, const std::string& pointer) {
    const Json* value = testing::find_pointer(object, pointer);
    return value != nullptr && value->is_number_integer() ? value->get<std::int64_t>() : 0;
}

std::string string_at(const Json& object, const std::string& pointer) {
    const Json* value = testing::find_pointer(object, pointer);
    return value != nullptr && value->is_string() ? value->get<std::string>() : std::string{};
}

bool condition_is(const Json& object, const std::string& type, const std::string& status,
                  const std::string& reason = {}) {
    const Json* c = testing::find_condition(object, type);
    return c != nullptr && c->value("status", "") == status &&
           (reason.empty() || c->value("reason", "") == reason);
}

kube::ListOptions by_label(std::string selector) {
    kube::ListOptions options;
    options.label_selector = std::move(selector);
    return options;
}

}  // namespace

TEST_CASE("a Deployment becomes Available through podsim and the controller-manager",
          "[integration][podsim]") {
    testing::TestNamespace ns;
    boost::asio::io_context io;
    auto client = testing::make_admin_client(io);
    REQUIRE(testing::run(
        io, client->create(kube::types::deployments(), ns.name(), make_deployment("web", 2), {})));

    auto available = testing::run(io, testing::wait_for_object(
                                          *client, kube::types::deployments(), ns.name(), "web",
                                          [](const Json& d) {
                                              return int_at(d, "/status/availableReplicas") == 2 &&
                                                     condition_is(d, "Available", "True");
                                          },
                                          60s));
    INFO((available ? "" : available.error().message));
    REQUIRE(available);
    CHECK(int_at(*available, "/status/readyReplicas") == 2);

    auto pods = testing::run(io, client->list(kube::types::pods(), ns.name(), by_label("app=web")));
    REQUIRE(pods.has_value());
    CHECK(pods->items.size() == 2);
    for (const auto& pod : pods->items) {
        CHECK(string_at(pod, "/status/phase") == "Running");
        CHECK(condition_is(pod, "Ready", "True"));
        CHECK_FALSE(string_at(pod, "/status/podIP").empty());
        CHECK(string_at(pod, "/status/containerStatuses/0/image") == "ghcr.io/serin/podinfo:6.0.0");
    }
}

TEST_CASE("sim.serin.dev/ready false makes a Deployment miss its progress deadline",
          "[integration][podsim]") {
    testing::TestNamespace ns;
    boost::asio::io_context io;
    auto client = testing::make_admin_client(io);
    auto deployment = make_deployment("stuck", 2, {{"sim.serin.dev/ready", "false"}});
    deployment["spec"]["progressDeadlineSeconds"] = 5;
    REQUIRE(
        testing::run(io, client->create(kube::types::deployments(), ns.name(), deployment, {})));

    auto stuck = testing::run(io, testing::wait_for_object(
                                      *client, kube::types::deployments(), ns.name(), "stuck",
                                      [](const Json& d) {
                                          return condition_is(d, "Progressing", "False",
                                                              "ProgressDeadlineExceeded");
                                      },
                                      60s));
    INFO((stuck ? "" : stuck.error().message));
    REQUIRE(stuck);
    CHECK(int_at(*stuck, "/status/readyReplicas") == 0);
    CHECK(int_at(*stuck, "/status/availableReplicas") == 0);

    // The pods run, but are not ready.
    auto pods =
        testing::run(io, client->list(kube::types::pods(), ns.name(), by_label("app=stuck")));
    REQUIRE(pods.has_value());
    REQUIRE(pods->items.size() == 2);
    for (const auto& pod : pods->items) {
        CHECK(string_at(pod, "/status/phase") == "Running");
        CHECK(condition_is(pod, "Ready", "False"));
        CHECK(condition_is(pod, "ContainersReady", "False"));
    }
}

TEST_CASE("sim.serin.dev/crash true gives crash-looping pods whose restarts grow",
          "[integration][podsim]") {
    testing::TestNamespace ns;
    boost::asio::io_context io;
    auto client = testing::make_admin_client(io);
    REQUIRE(testing::run(
        io, client->create(kube::types::deployments(), ns.name(),
                           make_deployment("crashy", 1, {{"sim.serin.dev/crash", "true"}}), {})));

    auto crashing = testing::run(
        io, testing::wait_for_objects(
                *client, kube::types::pods(), ns.name(), "app=crashy",
                [](const testing::ObjectMap& pods) {
                    for (const auto& [name, pod] : pods) {
                        if (string_at(pod, "/status/containerStatuses/0/state/waiting/reason") ==
                            "CrashLoopBackOff") {
                            return true;
                        }
                    }
                    return false;
                },
                60s));
    INFO((crashing ? "" : crashing.error().message));
    REQUIRE(crashing.has_value());
    std::string name;
    std::int64_t restarts = 0;
    for (const auto& [pod_name, pod] : *crashing) {
        if (string_at(pod, "/status/containerStatuses/0/state/waiting/reason") ==
            "CrashLoopBackOff") {
            name = pod_name;
            restarts = int_at(pod, "/status/containerStatuses/0/restartCount");
            CHECK(int_at(pod, "/status/containerStatuses/0/lastState/terminated/exitCode") == 1);
            CHECK(condition_is(pod, "Ready", "False"));
        }
    }
    CHECK(restarts >= 1);

    auto later = testing::run(
        io, testing::wait_for_object(
                *client, kube::types::pods(), ns.name(), name,
                [restarts](const Json& pod) {
                    return int_at(pod, "/status/containerStatuses/0/restartCount") > restarts;
                },
                30s));
    INFO((later ? "" : later.error().message));
    REQUIRE(later);
    CHECK(string_at(*later, "/status/containerStatuses/0/state/waiting/reason") ==
          "CrashLoopBackOff");
}
