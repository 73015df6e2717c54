// Events on the real API server: a repeated event is aggregated into one with a count.
#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "platform/kube/event_recorder.hpp"
#include "tests/support/catch_result.hpp"
#include "tests/support/cluster.hpp"

using namespace serin;
using namespace serin::testing;
using kube::Json;

TEST_CASE("events name the object and repeats are counted on one Event") {
    boost::asio::io_context io;
    auto client = make_admin_client(io);
    TestNamespace ns;
    Json cm = {{"apiVersion", "v1"}, {"kind", "ConfigMap"},
               {"metadata", {{"name", "subject"}, {"namespace", ns.name()}}}};
    auto subject = run(io, client->create(kube::types::config_maps(), ns.name(), cm));
    REQUIRE(subject);

    kube::EventRecorder recorder(*client, shared_cluster().clock(), {"flagger", "test-host", 16});
    for (int i = 0; i < 3; ++i) {
        REQUIRE(run(io, recorder.record(*subject, kube::EventType::kWarning, "Synced",
                                        "Rolling back subject.ns failed checks threshold reached 5")));
    }
    REQUIRE(run(io, recorder.record(*subject, kube::EventType::kNormal, "Synced",
                                    "Initialization done! subject.ns")));
    CHECK(recorder.created() == 2);
    CHECK(recorder.aggregated() == 2);

    kube::ListOptions options;
    options.field_selector = "involvedObject.name=subject";
    auto events = run(io, client->list(kube::types::events(), ns.name(), options));
    REQUIRE(events);
    REQUIRE(events->items.size() == 2);
    const Json* warning = nullptr;
    for (const auto& e : events->items) {
        if (e.at("type") == "Warning") {
            warning = &e;
        }
    }
    REQUIRE(warning != nullptr);
    CHECK(warning->at("count") == 3);
    CHECK(warning->at("reason") == "Synced");
    CHECK(warning->at("source").at("component") == "flagger");
    CHECK(warning->at("involvedObject").at("uid") == kube::object_uid(*subject));
    CHECK(warning->at("involvedObject").at("kind") == "ConfigMap");
}

TEST_CASE("an aggregated event whose Event was deleted is posted again") {
    boost::asio::io_context io;
    auto client = make_admin_client(io);
    TestNamespace ns;
    Json subject = {{"apiVersion", "v1"}, {"kind", "ConfigMap"},
                    {"metadata", {{"name", "gone"}, {"namespace", ns.name()}, {"uid", "u-1"}}}};
    kube::EventRecorder recorder(*client, shared_cluster().clock(), {});
    REQUIRE(run(io, recorder.record(subject, kube::EventType::kNormal, "Synced", "hello")));
    auto events = run(io, client->list(kube::types::events(), ns.name()));
    REQUIRE(events);
    REQUIRE(events->items.size() == 1);
    REQUIRE(run(io, client->remove(kube::types::events(), ns.name(),
                                   kube::object_name(events->items[0]))));
    REQUIRE(run(io, recorder.record(subject, kube::EventType::kNormal, "Synced", "hello")));
    CHECK(recorder.created() == 2);
    auto after = run(io, client->list(kube::types::events(), ns.name()));
    REQUIRE(after);
    REQUIRE(after->items.size() == 1);
    CHECK(after->items[0].at("count") == 1);
}

TEST_CASE("a long message that is not UTF-8 is recorded cut at a character, valid") {
    boost::asio::io_context io;
    auto client = make_admin_client(io);
    TestNamespace ns;
    Json subject = {{"apiVersion", "v1"}, {"kind", "ConfigMap"},
                    {"metadata", {{"name", "cut"}, {"namespace", ns.name()}, {"uid", "u-2"}}}};
    kube::EventRecorder recorder(*client, shared_cluster().clock(), {});
    // Two-byte characters: a cut at a fixed byte count lands inside one. And a Latin-1 byte.
    std::string message = "webhook said \xE9: ";
    for (int i = 0; i < 1000; ++i) {
        message += "\xC3\xA4";
    }
    REQUIRE(run(io, recorder.record(subject, kube::EventType::kWarning, "Synced", message)));
    auto events = run(io, client->list(kube::types::events(), ns.name()));
    REQUIRE(events);
    REQUIRE(events->items.size() == 1);
    const std::string stored = events->items[0].at("message");
    CHECK(stored.size() <= 1024);
    CHECK(stored.rfind("webhook said \xEF\xBF\xBD: \xC3\xA4", 0) == 0);
    CHECK(stored.substr(stored.size() - 3) == "...");
}

TEST_CASE("posted events are written in the background in the order they were posted") {
    boost::asio::io_context io;
    auto client = make_admin_client(io);
    TestNamespace ns;
    Json subject = {{"apiVersion", "v1"}, {"kind", "ConfigMap"},
                    {"metadata", {{"name", "posted"}, {"namespace", ns.name()}, {"uid", "u-2"}}}};
    kube::EventRecorderOptions options;
    options.queue_limit = 3;
    kube::EventRecorder recorder(*client, shared_cluster().clock(), options);
    std::vector<std::string> errors;
    const auto on_error = [&errors](const Error& error) { errors.push_back(error.message); };
    for (const char* message : {"first", "second", "third", "fourth: past the limit"}) {
        recorder.post(io.get_executor(), subject, kube::EventType::kNormal, "Synced", message,
                      on_error);
    }
    // post() returned without writing anything; the fourth found three waiting.
    CHECK(recorder.created() == 0);
    CHECK(recorder.pending() == 3);
    CHECK(recorder.dropped() == 1);
    REQUIRE(errors.size() == 1);
    CHECK(errors[0].find("dropped") != std::string::npos);

    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{30};
    while (recorder.pending() > 0 && std::chrono::steady_clock::now() < deadline) {
        io.run_one_for(std::chrono::milliseconds{100});
    }
    REQUIRE(recorder.pending() == 0);
    CHECK(recorder.created() == 3);
    CHECK(errors.size() == 1);
    auto events = run(io, client->list(kube::types::events(), ns.name()));
    REQUIRE(events);
    // In the order the server stored them: resourceVersions grow with each write.
    std::vector<std::pair<long long, std::string>> written;
    for (const auto& e : events->items) {
        written.emplace_back(std::stoll(kube::object_resource_version(e)), e.value("message", ""));
    }
    std::sort(written.begin(), written.end());
    REQUIRE(written.size() == 3);
    CHECK(written[0].second == "first");
    CHECK(written[1].second == "second");
    CHECK(written[2].second == "third");
}
