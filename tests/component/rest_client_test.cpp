// RestKubeClient against a scripted loopback server: the error mapping and retry policy for
// answers the real API server will not give on demand (429, 5xx, a watch ERROR frame).
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>
#include <deque>
#include <map>

#include "platform/http/http_client.hpp"
#include "platform/kube/rest_client.hpp"
#include "tests/support/catch_result.hpp"
#include "tests/support/test_http_server.hpp"

namespace {

namespace asio = boost::asio;
using namespace serin;
using kube::Json;
using serin::test::TestHttpServer;
using serin::test::TestRequest;
using serin::test::TestResponseWriter;

struct Scripted {
    int status;
    std::string body;
    serin::test::TestHeaders headers;
};

std::string status_body(int code, const std::string& reason, const std::string& message,
                        Json causes = nullptr) {
    Json status = {{"kind", "Status"}, {"apiVersion", "v1"}, {"status", "Failure"},
                   {"code", code},     {"reason", reason},   {"message", message}};
    if (!causes.is_null()) {
        status["details"] = {{"causes", std::move(causes)}};
    }
    return status.dump();
}

/// A loopback server answering from a script, and a client talking to it on a ManualClock.
struct Fixture {
    asio::io_context io;
    ManualClock clock;
    std::deque<Scripted> script;
    TestHttpServer server{io.get_executor(),
                          [this](const TestRequest&, TestResponseWriter& writer)
                              -> asio::awaitable<void> {
                              Scripted next{200, "{}", {}};
                              if (!script.empty()) {
                                  next = script.front();
                                  script.pop_front();
                              }
                              co_await writer.respond(next.status, next.body, next.headers);
                          }};
    std::unique_ptr<kube::RestKubeClient> client;

    explicit Fixture(kube::RestClientOptions options = {}) {
        kube::ClusterConfig config;
        config.server = server.base_url();
        config.token = "secret-token";
        auto http = http::make_beast_client(io.get_executor(), {});
        REQUIRE(http);
        client = kube::make_rest_client(std::move(*http), config, clock, options);
    }

    /// Runs the io_context until `done`, advancing nothing.
    void run_until(const std::function<bool()>& done) {
        for (int i = 0; i < 100000 && !done(); ++i) {
            io.run_one_for(std::chrono::milliseconds{10});
        }
        REQUIRE(done());
    }

    template <class T>
    Result<T> await(asio::awaitable<Result<T>> task) {
        std::optional<Result<T>> out;
        asio::co_spawn(io, std::move(task), [&](std::exception_ptr e, Result<T> r) {
            if (e) {
                std::rethrow_exception(e);
            }
            out.emplace(std::move(r));
        });
        run_until([&] { return out.has_value(); });
        return std::move(*out);
    }
};

const kube::ResourceType& cm = kube::types::config_maps();

}  // namespace

TEST_CASE("the API server's Status decides the error kind, with causes and HTTP status") {
    Fixture f;
    f.script = {
        {404, status_body(404, "NotFound", "configmaps \"x\" not found"), {}},
        {409, status_body(409, "AlreadyExists", "configmaps \"x\" already exists"), {}},
        {409, status_body(409, "Conflict", "the object has been modified"), {}},
        {422, status_body(422, "Invalid", "ConfigMap \"Bad\" is invalid",
                          Json::array({{{"field", "metadata.name"},
                                        {"reason", "FieldValueInvalid"},
                                        {"message", "Invalid value: \"Bad\""}}})),
         {}},
        {403, status_body(403, "Forbidden", "configmaps is forbidden"), {}},
        {401, status_body(401, "Unauthorized", "Unauthorized"), {}},
        {410, status_body(410, "Gone", "too old resource version"), {}},
    };
    auto expect = [&](ErrorKind kind, int http_status) {
        auto r = f.await(f.client->get(cm, "ns", "x"));
        REQUIRE_FALSE(r);
        CHECK(r.error().kind == kind);
        CHECK(r.error().http_status == http_status);
        return r.error();
    };
    CHECK_THAT(expect(ErrorKind::kNotFound, 404).message, Catch::Contains("not found"));
    expect(ErrorKind::kAlreadyExists, 409);
    expect(ErrorKind::kConflict, 409);
    auto invalid = expect(ErrorKind::kInvalid, 422);
    REQUIRE(invalid.causes.size() == 1);
    CHECK(invalid.causes[0].field == "metadata.name");
    expect(ErrorKind::kForbidden, 403);
    expect(ErrorKind::kUnauthorized, 401);
    expect(ErrorKind::kGone, 410);
    // Every request carried the token.
    for (const auto& request : f.server.requests()) {
        CHECK(request.header("Authorization") == std::optional<std::string_view>("Bearer secret-token"));
    }
}

TEST_CASE("a 429 is retried after its Retry-After and not before") {
    Fixture f;
    f.script = {{429, status_body(429, "TooManyRequests", "slow down"), {{"Retry-After", "2"}}},
                {201, R"({"metadata":{"name":"x","namespace":"ns"}})", {}}};
    std::optional<Result<Json>> out;
    asio::co_spawn(f.io, f.client->create(cm, "ns", Json{{"metadata", {{"name", "x"}}}}),
                   [&](std::exception_ptr, Result<Json> r) { out.emplace(std::move(r)); });
    f.run_until([&] { return f.server.requests().size() == 1 && f.clock.sleepers() == 1; });
    f.clock.advance(std::chrono::milliseconds{1999});
    for (int i = 0; i < 20; ++i) {
        f.io.run_one_for(std::chrono::milliseconds{5});
    }
    CHECK(f.server.requests().size() == 1);
    f.clock.advance(std::chrono::milliseconds{1});
    f.run_until([&] { return out.has_value(); });
    REQUIRE(*out);
    CHECK(f.server.requests().size() == 2);
    CHECK(f.server.requests()[1].method == "POST");
}

TEST_CASE("a 429 that persists ends as TooManyRequests with its Retry-After") {
    kube::RestClientOptions options;
    options.max_retries = 0;
    Fixture f(options);
    f.script = {{429, status_body(429, "TooManyRequests", "slow down"), {{"Retry-After", "7"}}}};
    auto r = f.await(f.client->get(cm, "ns", "x"));
    REQUIRE_FALSE(r);
    CHECK(r.error().kind == ErrorKind::kTooManyRequests);
    REQUIRE(r.error().retry_after);
    CHECK(*r.error().retry_after == std::chrono::seconds{7});
}

TEST_CASE("a 5xx is retried for reads and returned at once for writes") {
    Fixture f;
    f.script = {{503, "unavailable", {}}, {200, R"({"metadata":{"name":"x"}})", {}}};
    std::optional<Result<Json>> read;
    asio::co_spawn(f.io, f.client->get(cm, "ns", "x"),
                   [&](std::exception_ptr, Result<Json> r) { read.emplace(std::move(r)); });
    f.run_until([&] { return f.clock.sleepers() == 1; });
    f.clock.advance(std::chrono::seconds{10});  // past any backoff
    f.run_until([&] { return read.has_value(); });
    REQUIRE(*read);
    CHECK(f.server.requests().size() == 2);

    f.script = {{503, "unavailable", {}}};
    auto write = f.await(f.client->patch(cm, "ns", "x", kube::PatchType::kMerge, "{}"));
    REQUIRE_FALSE(write);
    CHECK(write.error().kind == ErrorKind::kTransient);
    CHECK(f.server.requests().size() == 3);
    CHECK(f.server.requests()[2].header("Content-Type") ==
          std::optional<std::string_view>("application/merge-patch+json"));
}

TEST_CASE("the client counts connections opened and requests sent on a kept-alive one") {
    Fixture f;
    REQUIRE(f.await(f.client->get(cm, "ns", "a")));
    CHECK(f.client->stats().connections_opened == 1);
    CHECK(f.client->stats().connections_reused == 0);
    REQUIRE(f.await(f.client->get(cm, "ns", "b")));
    REQUIRE(f.await(f.client->remove(cm, "ns", "c")));
    CHECK(f.client->stats().connections_opened == 1);
    CHECK(f.client->stats().connections_reused == 2);
}

TEST_CASE("writes wait on the token bucket but reads do not") {
    kube::RestClientOptions options;
    options.write_qps = 1;
    options.write_burst = 1;
    Fixture f(options);
    REQUIRE(f.await(f.client->remove(cm, "ns", "a")));
    std::optional<Result<void>> second;
    asio::co_spawn(f.io, f.client->remove(cm, "ns", "b"),
                   [&](std::exception_ptr, Result<void> r) { second.emplace(std::move(r)); });
    f.run_until([&] { return f.clock.sleepers() == 1; });
    REQUIRE(f.await(f.client->get(cm, "ns", "c")));  // a read passes the waiting write
    CHECK(f.server.requests().size() == 2);
    CHECK_FALSE(second.has_value());
    f.clock.advance(std::chrono::seconds{1});
    f.run_until([&] { return second.has_value(); });
    REQUIRE(*second);
    CHECK(f.client->stats().throttled == 1);
    CHECK(f.client->stats().writes == 2);
    CHECK(f.client->stats().reads == 1);
}

TEST_CASE("a watch ERROR frame with code 410 ends the watch as Gone") {
    Fixture f;
    Json added = {{"type", "ADDED"}, {"object", {{"metadata", {{"name", "a"}, {"resourceVersion", "5"}}}}}};
    Json error = {{"type", "ERROR"},
                  {"object", Json::parse(status_body(410, "Expired", "too old resource version"))}};
    f.script = {{200, added.dump() + "\n" + error.dump() + "\n", {}}};
    std::vector<std::string> names;
    kube::WatchOptions options;
    options.resource_version = "1";
    auto r = f.await(f.client->watch(cm, "ns", options, [&](kube::WatchEvent&& event) {
        names.push_back(kube::object_name(event.object));
        return true;
    }));
    REQUIRE_FALSE(r);
    CHECK(r.error().kind == ErrorKind::kGone);
    CHECK(names == std::vector<std::string>{"a"});
    const auto& target = f.server.requests().at(0).target;
    CHECK_THAT(target, Catch::Contains("watch=true"));
    CHECK_THAT(target, Catch::Contains("resourceVersion=1"));
    CHECK_THAT(target, Catch::Contains("allowWatchBookmarks=true"));
}

TEST_CASE("requests are counted by verb and status, a watch once, when it is established") {
    Fixture f;
    using Counts = std::map<std::pair<std::string, std::string>, std::uint64_t>;
    auto count = [&](const std::string& verb, const std::string& code) {
        const Counts& counts = f.client->stats().by_verb_and_code;
        auto it = counts.find({verb, code});
        return it == counts.end() ? std::uint64_t{0} : it->second;
    };
    f.script = {{404, status_body(404, "NotFound", "configmaps \"x\" not found"), {}},
                {200, R"({"metadata":{"name":"y"}})", {}},
                {422, status_body(422, "Invalid", "bad"), {}}};
    CHECK_FALSE(f.await(f.client->get(cm, "ns", "x")));
    CHECK(f.await(f.client->get(cm, "ns", "y")));
    CHECK_FALSE(f.await(f.client->patch(cm, "ns", "y", kube::PatchType::kMerge, "{}")));
    CHECK(count("GET", "404") == 1);
    CHECK(count("GET", "200") == 1);
    CHECK(count("PATCH", "422") == 1);

    Json added = {{"type", "ADDED"}, {"object", {{"metadata", {{"name", "a"}, {"resourceVersion", "5"}}}}}};
    Json error = {{"type", "ERROR"},
                  {"object", Json::parse(status_body(410, "Expired", "too old resource version"))}};
    f.script = {{200, added.dump() + "\n" + error.dump() + "\n", {}},
                {403, status_body(403, "Forbidden", "no"), {}}};
    std::uint64_t counted_during_watch = 0;
    CHECK_FALSE(f.await(f.client->watch(cm, "ns", {}, [&](kube::WatchEvent&&) {
        counted_during_watch = count("WATCH", "200");
        return true;
    })));
    CHECK(counted_during_watch == 1);  // counted while the stream was still open
    CHECK(count("WATCH", "200") == 1);  // and not again when it ended, on the 410
    CHECK_FALSE(f.await(f.client->watch(cm, "ns", {}, [](kube::WatchEvent&&) { return true; })));
    CHECK(count("WATCH", "403") == 1);
    CHECK(f.client->stats().by_verb_and_code.size() == 5);
}

TEST_CASE("requests are counted by Kubernetes verb, resource and code as the audit log names them") {
    Fixture f;
    auto count = [&](const std::string& verb, const std::string& resource,
                     const std::string& code) {
        const auto& counts = f.client->stats().by_verb_resource_code;
        auto it = counts.find({verb, resource, code});
        return it == counts.end() ? std::uint64_t{0} : it->second;
    };
    f.script = {{200, R"({"metadata":{"name":"y"}})", {}},
                {200, R"({"metadata":{"resourceVersion":"3"},"items":[]})", {}},
                {409, status_body(409, "Conflict", "changed"), {}},
                {201, R"({"metadata":{"name":"z"}})", {}}};
    CHECK(f.await(f.client->get(cm, "ns", "y")));
    CHECK(f.await(f.client->list(cm, "ns", {})));
    Json object = {{"metadata", {{"name", "y"}}}};
    kube::WriteOptions status;
    status.subresource = "status";
    CHECK_FALSE(f.await(f.client->update(cm, "ns", object, status)));
    CHECK(f.await(f.client->create(cm, "ns", object)));
    CHECK(count("get", "configmaps", "200") == 1);
    CHECK(count("list", "configmaps", "200") == 1);
    CHECK(count("update", "configmaps/status", "409") == 1);
    CHECK(count("create", "configmaps", "201") == 1);

    Json added = {{"type", "ADDED"}, {"object", {{"metadata", {{"name", "a"}, {"resourceVersion", "5"}}}}}};
    f.script = {{200, added.dump() + "\n", {}}};
    (void)f.await(f.client->watch(cm, "ns", {}, [](kube::WatchEvent&&) { return true; }));
    CHECK(count("watch", "configmaps", "200") == 1);
    CHECK(f.client->stats().by_verb_resource_code.size() == 5);
}

TEST_CASE("a request's Kubernetes verb and resource are read from its method and path") {
    using kube::kube_verb_and_resource;
    using VR = std::pair<std::string, std::string>;
    CHECK(kube_verb_and_resource("GET", "/api/v1/namespaces/ns/pods/p") == VR{"get", "pods"});
    CHECK(kube_verb_and_resource("GET", "/api/v1/namespaces/ns/pods?limit=500") == VR{"list", "pods"});
    CHECK(kube_verb_and_resource("GET", "/api/v1/pods") == VR{"list", "pods"});
    CHECK(kube_verb_and_resource("GET", "/api/v1/namespaces") == VR{"list", "namespaces"});
    CHECK(kube_verb_and_resource("GET", "/api/v1/namespaces/ns") == VR{"get", "namespaces"});
    CHECK(kube_verb_and_resource("PUT", "/apis/flagger.app/v1beta1/namespaces/ns/canaries/c/status") ==
          VR{"update", "canaries/status"});
    CHECK(kube_verb_and_resource("PATCH", "/apis/apps/v1/namespaces/ns/deployments/d") ==
          VR{"patch", "deployments"});
    CHECK(kube_verb_and_resource("POST", "/apis/coordination.k8s.io/v1/namespaces/ns/leases") ==
          VR{"create", "leases"});
    CHECK(kube_verb_and_resource("DELETE", "/api/v1/namespaces/ns/services/s") == VR{"delete", "services"});
    CHECK(kube_verb_and_resource("DELETE", "/api/v1/namespaces/ns/services") ==
          VR{"deletecollection", "services"});
    CHECK(kube_verb_and_resource("WATCH", "/apis/apps/v1/deployments?watch=true") == VR{"watch", "deployments"});
    CHECK(kube_verb_and_resource("GET", "/version") == VR{"get", ""});
    CHECK(kube_verb_and_resource("GET", "") == VR{"get", ""});
}

TEST_CASE("a Status with fields of the wrong type is read without throwing") {
    Fixture f;
    f.script = {
        {409, R"({"kind":"Status","reason":7,"message":["x"],"details":{"causes":[{"field":1},3]}})", {}},
        {500, R"({"kind":1})", {}},
    };
    auto conflict = f.await(f.client->update(cm, "ns", Json{{"metadata", {{"name", "x"}}}}));
    REQUIRE_FALSE(conflict);
    CHECK(conflict.error().kind == ErrorKind::kConflict);
    REQUIRE(conflict.error().causes.size() == 1);
    CHECK(conflict.error().causes[0].field.empty());
    auto broken = f.await(f.client->patch(cm, "ns", "x", kube::PatchType::kMerge, "{}"));
    REQUIRE_FALSE(broken);
    CHECK(broken.error().kind == ErrorKind::kTransient);
}

TEST_CASE("a huge Retry-After is capped at a minute instead of overflowing") {
    kube::RestClientOptions options;
    options.max_retries = 0;
    Fixture f(options);
    f.script = {
        {429, status_body(429, "TooManyRequests", "slow down"), {{"Retry-After", "9223372036854775807"}}},
        {429, status_body(429, "TooManyRequests", "slow down"), {{"Retry-After", "99999999999999999999999"}}},
    };
    for (int i = 0; i < 2; ++i) {
        auto r = f.await(f.client->get(cm, "ns", "x"));
        REQUIRE_FALSE(r);
        REQUIRE(r.error().retry_after);
        CHECK(*r.error().retry_after == std::chrono::seconds{60});
    }
}

TEST_CASE("an object with text that is not UTF-8 is sent with U+FFFD instead of throwing") {
    Fixture f;
    Json object = {{"metadata", {{"name", "x"}}}, {"data", {{"k", "caf\xE9"}}}};
    auto written = f.await(f.client->update(cm, "ns", object));
    REQUIRE(written);
    REQUIRE(f.server.requests().size() == 1);
    CHECK(f.server.requests()[0].body.find("caf\xEF\xBF\xBD") != std::string::npos);
}

TEST_CASE("a watch that stalls is taken for dead a margin past its timeoutSeconds, not before") {
    asio::io_context io;
    ManualClock clock;
    // The server sends one event, then nothing, and never ends the watch.
    TestHttpServer server{io.get_executor(),
                          [](const TestRequest&, TestResponseWriter& writer)
                              -> asio::awaitable<void> {
                              co_await writer.start_chunked(200);
                              const Json added = {
                                  {"type", "ADDED"},
                                  {"object", {{"metadata", {{"name", "a"}, {"resourceVersion", "5"}}}}}};
                              co_await writer.write_chunk(added.dump() + "\n");
                              co_await writer.hang();
                          }};
    kube::ClusterConfig config;
    config.server = server.base_url();
    auto http = http::make_beast_client(io.get_executor(), {});
    REQUIRE(http);
    kube::RestClientOptions options;
    options.watch_idle_timeout = std::chrono::milliseconds{100};
    options.watch_stall_margin = std::chrono::milliseconds{300};
    auto client = kube::make_rest_client(std::move(*http), config, clock, options);

    // Waits for the watch to end; returns its result and how long it ran (real time: the
    // deadline is the HTTP client's).
    const auto watch = [&](std::int64_t timeout_seconds) {
        kube::WatchOptions watch_options;
        watch_options.timeout_seconds = timeout_seconds;
        int events = 0;
        std::optional<Result<void>> out;
        const auto started = std::chrono::steady_clock::now();
        asio::co_spawn(io, client->watch(cm, "ns", watch_options, [&](kube::WatchEvent&&) {
            ++events;
            return true;
        }), [&](std::exception_ptr e, Result<void> r) {
            REQUIRE_FALSE(e);
            out.emplace(std::move(r));
        });
        for (int i = 0; i < 1000 && !out; ++i) {
            io.run_one_for(std::chrono::milliseconds{10});
        }
        REQUIRE(out.has_value());
        CHECK(events == 1);
        return std::pair{std::move(*out), std::chrono::steady_clock::now() - started};
    };

    // timeoutSeconds=1: silence is allowed for 1 s + the 300 ms margin.
    auto [stalled, took] = watch(1);
    REQUIRE_FALSE(stalled);
    CHECK(stalled.error().kind == ErrorKind::kTransient);
    CHECK(took >= std::chrono::milliseconds{1300});
    CHECK(took < std::chrono::seconds{5});
    // Without a timeoutSeconds the idle timeout alone decides.
    auto [idle, idle_took] = watch(0);
    REQUIRE_FALSE(idle);
    CHECK(idle.error().kind == ErrorKind::kTransient);
    CHECK(idle_took < std::chrono::milliseconds{1000});
    server.stop();
    io.run_for(std::chrono::milliseconds{50});
}
