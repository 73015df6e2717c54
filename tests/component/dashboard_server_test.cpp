// The dashboard's server (cli/dashboard) on an in-memory API server (tests/support/
// fake_kube_client): the token and its cookie, the Host and CSRF checks, the size limit, the JSON
// API (list, detail, requests, a 403 named), the namespace scope and the live stream of
// server-sent events fed by the canary informer. Requests go over real loopback sockets as raw
// HTTP/1.1, so the tests choose every header.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <catch2/catch.hpp>
#include <array>
#include <chrono>
#include <memory>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "cli/dashboard/dashboard.hpp"
#include "cli/dashboard/summary.hpp"
#include "platform/core/clock.hpp"
#include "tests/support/fake_kube_client.hpp"

namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using namespace serin;
using namespace std::chrono_literals;
using Json = nlohmann::json;

constexpr auto kUse = asio::as_tuple(asio::use_awaitable);

struct Answer {
    int status = 0;
    std::string head;  ///< status line and headers
    std::string body;  ///< as sent (chunked bodies are not decoded)

    bool has_header(const std::string& line) const { return head.find(line) != std::string::npos; }
    Json json() const {
        // Fixed-length JSON answers only.
        return Json::parse(body);
    }
};

Answer parse_answer(const std::string& raw) {
    Answer a;
    const auto end = raw.find("\r\n\r\n");
    a.head = raw.substr(0, end);
    a.body = end == std::string::npos ? "" : raw.substr(end + 4);
    if (a.head.size() > 12) {
        a.status = std::stoi(a.head.substr(9, 3));
    }
    return a;
}

Json canary_object(const std::string& ns, const std::string& name) {
    return Json{{"apiVersion", "flagger.app/v1beta1"},
                {"kind", "Canary"},
                {"metadata", {{"namespace", ns}, {"name", name}}},
                {"spec",
                 {{"targetRef", {{"apiVersion", "apps/v1"}, {"kind", "Deployment"}, {"name", name}}},
                  {"analysis",
                   {{"interval", "10s"}, {"threshold", 2}, {"stepWeight", 10}, {"maxWeight", 50}}}}}};
}

struct Fixture {
    ManualClock clock;  // before the io_context
    asio::io_context io;
    testing::FakeApiServer api{clock};
    std::unique_ptr<testing::FakeKubeClient> client = api.client();
    std::unique_ptr<dashboard::Dashboard> board;

    explicit Fixture(std::string ns = {}) {
        api.serve(kube::types::canary_requests());
        api.serve(kube::types::canary_histories());
        dashboard::DashboardConfig config;
        config.ns = std::move(ns);
        config.requested_by = "alice";
        config.heartbeat = 200ms;
        auto started = dashboard::Dashboard::start(io.get_executor(), *client, clock, config);
        REQUIRE(started.has_value());
        board = std::move(*started);
        run_until([&] { return board->synced(); }, "the canary informer lists");
    }
    ~Fixture() {
        board->stop();
        io.restart();
        io.run_for(1s);  // the coroutines end: every socket is closed and every timer cancelled
    }

    std::string host() const { return "127.0.0.1:" + std::to_string(board->port()); }
    std::string cookie_name() const { return "serin_token_" + std::to_string(board->port()); }
    std::string cookie() const { return cookie_name() + "=" + board->token(); }

    void run_until(const std::function<bool()>& done, const std::string& what,
                   std::chrono::milliseconds timeout = 5s) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        io.restart();
        while (!done()) {
            if (std::chrono::steady_clock::now() > deadline) {
                FAIL("timed out waiting until " << what);
            }
            io.run_one_for(50ms);
        }
    }

    /// Sends `request` as is (Connection: close) and reads the answer to the end.
    Answer send(std::string request) {
        std::optional<std::string> raw;
        asio::co_spawn(
            io,
            [&, port = board->port(), text = std::move(request)]() -> asio::awaitable<void> {
                tcp::socket socket(io);
                auto [connect_error] = co_await socket.async_connect(
                    tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), kUse);
                REQUIRE(!connect_error);
                auto [write_error, written] = co_await asio::async_write(socket, asio::buffer(text), kUse);
                REQUIRE(!write_error);
                std::string in;
                [[maybe_unused]] auto [read_error, read] =
                    co_await asio::async_read(socket, asio::dynamic_buffer(in), kUse);
                raw = std::move(in);
            },
            asio::detached);
        run_until([&] { return raw.has_value(); }, "an answer came");
        return parse_answer(*raw);
    }

    Answer get(const std::string& target, const std::vector<std::string>& headers) {
        std::string request = "GET " + target + " HTTP/1.1\r\nConnection: close\r\n";
        for (const auto& h : headers) {
            request += h + "\r\n";
        }
        return send(request + "\r\n");
    }
    /// A GET with the right Host and the token's cookie.
    Answer get(const std::string& target) {
        return get(target, {"Host: " + host(), "Cookie: " + cookie()});
    }
    Answer post(const std::string& target, const std::string& body,
                const std::vector<std::string>& headers) {
        std::string request = "POST " + target + " HTTP/1.1\r\nConnection: close\r\n";
        for (const auto& h : headers) {
            request += h + "\r\n";
        }
        request += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
        return send(request);
    }
    Answer post(const std::string& target, const std::string& body) {
        return post(target, body,
                    {"Host: " + host(), "X-Serin-Token: " + board->token(),
                     "Content-Type: application/json", "Origin: http://" + host()});
    }

    Json seed_canary(const std::string& ns, const std::string& name, Json status) {
        auto created = api.seed(kube::types::canaries(), canary_object(ns, name));
        REQUIRE(created.has_value());
        auto updated = api.set_status(kube::types::canaries(), ns, name, std::move(status));
        REQUIRE(updated.has_value());
        return *updated;
    }
    std::vector<Json> requests(const std::string& ns) {
        return api.objects(kube::types::canary_requests(), ns);
    }
};

/// A live stream read as it comes. The reading coroutine shares its state, so it may finish
/// after the Stream is gone.
struct Stream {
    struct State {
        explicit State(asio::io_context& io) : socket(io) {}
        tcp::socket socket;
        std::string in;
        bool connected = false;
        bool closed = false;
    };
    Fixture& f;
    std::shared_ptr<State> state;

    explicit Stream(Fixture& fixture) : f(fixture), state(std::make_shared<State>(fixture.io)) {
        asio::co_spawn(
            f.io,
            [s = state, port = f.board->port(), host = f.host(),
             cookie = f.cookie()]() -> asio::awaitable<void> {
                auto [error] = co_await s->socket.async_connect(
                    tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), kUse);
                if (error) {
                    s->closed = true;
                    co_return;
                }
                const std::string request = "GET /api/stream HTTP/1.1\r\nHost: " + host +
                                            "\r\nCookie: " + cookie + "\r\n\r\n";
                auto [write_error, written] =
                    co_await asio::async_write(s->socket, asio::buffer(request), kUse);
                s->connected = !write_error;
                for (;;) {
                    std::array<char, 4096> buffer{};
                    auto [read_error, n] =
                        co_await s->socket.async_read_some(asio::buffer(buffer), kUse);
                    if (read_error) {
                        s->closed = true;
                        co_return;
                    }
                    s->in.append(buffer.data(), n);
                }
            },
            asio::detached);
        f.run_until([&] { return state->connected || state->closed; }, "the stream is open");
        REQUIRE(state->connected);
    }
    ~Stream() {
        boost::system::error_code ignored;
        state->socket.close(ignored);
    }
    Stream(const Stream&) = delete;
    Stream& operator=(const Stream&) = delete;

    const std::string& in() const { return state->in; }
    /// Waits until what has arrived contains `text` after position `from`; returns where.
    std::size_t wait_for(const std::string& text, std::size_t from = 0) {
        f.run_until([&] { return state->in.find(text, from) != std::string::npos; },
                    "the stream carries " + text + " after " + std::to_string(from) +
                        ", it has: " + state->in);
        return state->in.find(text, from);
    }
};

}  // namespace

TEST_CASE("the first page load trades the token in the URL for an HttpOnly cookie") {
    Fixture f;
    const std::string host = "Host: " + f.host();
    CHECK(f.board->url() == "http://127.0.0.1:" + std::to_string(f.board->port()) +
                                "/?token=" + f.board->token());
    CHECK(f.board->token().size() == 64);

    CHECK(f.get("/", {host}).status == 401);
    CHECK(f.get("/?token=wrong", {host}).status == 401);
    const Answer traded = f.get("/?token=" + f.board->token(), {host});
    CHECK(traded.status == 303);
    CHECK(traded.has_header("Location: /"));
    CHECK(traded.has_header("Set-Cookie: " + f.cookie_name() + "=" + f.board->token() +
                            "; Path=/; HttpOnly; SameSite=Strict"));

    const Answer page = f.get("/");
    REQUIRE(page.status == 200);
    CHECK(page.has_header("Content-Type: text/html"));
    CHECK(page.has_header("Content-Security-Policy: default-src 'self'"));
    CHECK(page.body.find("content=\"" + f.board->token() + "\"") != std::string::npos);
    CHECK(page.body.find("__SERIN_TOKEN__") == std::string::npos);
    const Answer script = f.get("/app.js");
    CHECK(script.status == 200);
    CHECK(script.has_header("Content-Type: text/javascript"));
    const Answer chart = f.get("/vendor/uPlot.iife.min.js");
    CHECK(chart.status == 200);
    CHECK(chart.body.find("uPlot") != std::string::npos);
    CHECK(f.get("/nothing-here.js").status == 404);
}

TEST_CASE("every API call needs the token, as the cookie or the X-Serin-Token header") {
    Fixture f;
    const std::string host = "Host: " + f.host();
    CHECK(f.get("/api/canaries", {host}).status == 401);
    CHECK(f.get("/api/canaries", {host, "Cookie: " + f.cookie_name() + "=" + std::string(64, 'a')})
              .status == 401);
    // The cookie of a dashboard on another port is not this one's.
    CHECK(f.get("/api/canaries", {host, "Cookie: serin_token_1=" + f.board->token()}).status == 401);
    CHECK(f.get("/api/canaries", {host, "X-Serin-Token: nope"}).status == 401);
    CHECK(f.get("/app.js", {host}).status == 401);
    CHECK(f.get("/api/stream", {host}).status == 401);
    CHECK(f.get("/api/canaries", {host, "Cookie: other=1; " + f.cookie()}).status == 200);
    CHECK(f.get("/api/canaries", {host, "X-Serin-Token: " + f.board->token()}).status == 200);
    CHECK(f.send("DELETE /api/canaries HTTP/1.1\r\nConnection: close\r\nHost: " + f.host() +
                 "\r\nX-Serin-Token: " + f.board->token() + "\r\n\r\n")
              .status == 405);
}

TEST_CASE("a Host header other than 127.0.0.1 or localhost on the dashboard's port is refused") {
    Fixture f;
    const std::string port = std::to_string(f.board->port());
    const std::string cookie = "Cookie: " + f.cookie();
    CHECK(f.get("/api/canaries", {"Host: attacker.example:" + port, cookie}).status == 403);
    CHECK(f.get("/api/canaries", {"Host: 127.0.0.1:1", cookie}).status == 403);
    CHECK(f.get("/api/canaries", {"Host: 127.0.0.1", cookie}).status == 403);
    CHECK(f.get("/api/canaries", {cookie}).status == 403);
    CHECK(f.get("/?token=" + f.board->token(), {"Host: rebound.example:" + port}).status == 403);
    CHECK(f.get("/api/canaries", {"Host: localhost:" + port, cookie}).status == 200);
    CHECK(f.get("/api/canaries", {"Host: 127.0.0.1:" + port, cookie}).status == 200);
}

TEST_CASE("a POST needs the token header and a same origin: the cookie alone creates nothing") {
    Fixture f;
    f.seed_canary("test", "podinfo", {{"phase", "Progressing"}, {"canaryWeight", 10}});
    const std::string body = R"({"action":"abort"})";
    const std::string target = "/api/canaries/test/podinfo/requests";
    const std::string host = "Host: " + f.host();
    const std::string json = "Content-Type: application/json";
    CHECK(f.post(target, body, {host, "Cookie: " + f.cookie(), json}).status == 403);
    CHECK(f.post(target, body,
                 {host, "X-Serin-Token: " + f.board->token(), json,
                  "Origin: http://attacker.example"})
              .status == 403);
    CHECK(f.post(target, body, {host, "X-Serin-Token: " + f.board->token(), "Content-Type: text/plain"})
              .status == 415);
    CHECK(f.requests("test").empty());
    CHECK(f.post(target, body).status == 201);
    CHECK(f.requests("test").size() == 1);
}

TEST_CASE("a request body over the limit is answered 413, a malformed one 400") {
    Fixture f;
    f.seed_canary("test", "podinfo", {{"phase", "Progressing"}});
    const std::string target = "/api/canaries/test/podinfo/requests";
    const std::string big = R"({"action":"abort","reason":")" + std::string(20000, 'x') + "\"}";
    CHECK(f.post(target, big).status == 413);
    CHECK(f.post(target, "not json").status == 400);
    CHECK(f.post(target, R"({"action":"delete"})").status == 400);
    CHECK(f.post(target, R"({"action":"abort","full":true})").status == 400);
    CHECK(f.post(target, R"({"action":"abort","reason":")" + std::string(600, 'x') + "\"}").status ==
          400);
    CHECK(f.post(target, R"([[[[[[[[[[["deep"]]]]]]]]]]])").status == 400);
    CHECK(f.requests("test").empty());
    // A name that is not a Kubernetes name never reaches the API server.
    CHECK(f.post("/api/canaries/test/..%2f..%2fsecrets/requests", R"({"action":"abort"})").status ==
          404);
}

TEST_CASE("the canary list gives each canary's namespace, name, phase, weight and step") {
    Fixture f;
    f.seed_canary("test", "podinfo",
                  {{"phase", "Progressing"}, {"canaryWeight", 20}, {"failedChecks", 1}});
    f.seed_canary("other", "backend", {{"phase", "Succeeded"}, {"canaryWeight", 0}});
    f.run_until([&] { return f.get("/api/canaries").json()["canaries"].size() == 2; },
                "both canaries are listed");
    const Json list = f.get("/api/canaries").json();
    CHECK(list["namespace"] == "");
    CHECK(list["synced"] == true);
    const Json& backend = list["canaries"][0];
    CHECK(backend["namespace"] == "other");
    CHECK(backend["phase"] == "Succeeded");
    const Json& podinfo = list["canaries"][1];
    CHECK(podinfo["name"] == "podinfo");
    CHECK(podinfo["phase"] == "Progressing");
    CHECK(podinfo["weight"] == 20);
    CHECK(podinfo["failedChecks"] == 1);
    CHECK(podinfo["step"] == Json{{"index", 2}, {"total", 5}});
    CHECK(!podinfo["created"].get<std::string>().empty());
}

TEST_CASE("a dashboard scoped to one namespace neither lists nor serves canaries of another") {
    Fixture f("test");
    f.seed_canary("test", "podinfo", {{"phase", "Progressing"}});
    f.seed_canary("other", "backend", {{"phase", "Progressing"}});
    f.run_until([&] { return f.get("/api/canaries").json()["canaries"].size() == 1; },
                "the canary of test is listed");
    const Json list = f.get("/api/canaries").json();
    CHECK(list["namespace"] == "test");
    CHECK(list["canaries"][0]["name"] == "podinfo");
    CHECK(f.get("/api/canaries/other/backend").status == 404);
    CHECK(f.post("/api/canaries/other/backend/requests", R"({"action":"abort"})").status == 404);
    CHECK(f.requests("other").empty());
}

TEST_CASE("a canary's detail holds the canary, its CanaryHistory and its recent Events") {
    Fixture f;
    f.seed_canary("test", "podinfo", {{"phase", "Progressing"}, {"canaryWeight", 10}});
    Json history = {
        {"apiVersion", "serin.dev/v1alpha1"},
        {"kind", "CanaryHistory"},
        {"metadata", {{"namespace", "test"}, {"name", "podinfo"}}},
        {"spec",
         {{"canaryRef", {{"name", "podinfo"}}},
          {"releases",
           Json::array({{{"revision", "s1:abc"},
                         {"outcome", "Running"},
                         {"start", "2026-12-05T20:00:00Z"},
                         {"steps", Json::array({{{"time", "2026-12-05T20:00:30Z"},
                                                 {"phase", "Progressing"},
                                                 {"weight", 10},
                                                 {"checks", Json::array({{{"name", "request-success-rate"},
                                                                          {"value", 99.5},
                                                                          {"min", 99},
                                                                          {"verdict", "Pass"}}})}}})}}})}}}};
    REQUIRE(f.api.seed(kube::types::canary_histories(), history).has_value());
    for (const auto& [name, involved] :
         std::vector<std::pair<std::string, std::string>>{{"e1", "podinfo"}, {"e2", "other"}}) {
        Json event = {{"apiVersion", "v1"},
                      {"kind", "Event"},
                      {"metadata", {{"namespace", "test"}, {"name", name}}},
                      {"involvedObject", {{"kind", "Canary"}, {"name", involved}, {"namespace", "test"}}},
                      {"reason", "Synced"},
                      {"type", "Normal"},
                      {"message", "Advance " + involved + ".test canary weight 10"},
                      {"lastTimestamp", "2026-12-05T20:00:30Z"}};
        REQUIRE(f.api.seed(kube::types::events(), event).has_value());
    }
    const Answer answer = f.get("/api/canaries/test/podinfo");
    REQUIRE(answer.status == 200);
    const Json detail = answer.json();
    CHECK(detail["summary"]["weight"] == 10);
    CHECK(detail["canary"]["spec"]["analysis"]["stepWeight"] == 10);
    CHECK(detail["history"]["spec"]["releases"][0]["steps"][0]["checks"][0]["value"] == 99.5);
    REQUIRE(detail["events"].size() == 1);
    CHECK(detail["events"][0]["message"] == "Advance podinfo.test canary weight 10");
    CHECK(detail["errors"].empty());
    CHECK(f.get("/api/canaries/test/missing").status == 404);
}

TEST_CASE("a POST creates a CanaryRequest with generateName, ownerReference and requestedBy") {
    Fixture f;
    const Json canary = f.seed_canary("test", "podinfo", {{"phase", "Progressing"}});
    const Answer answer = f.post("/api/canaries/test/podinfo/requests",
                                 R"({"action":"promote","full":true,"reason":"hotfix verified"})");
    REQUIRE(answer.status == 201);
    const auto created = f.requests("test");
    REQUIRE(created.size() == 1);
    const Json& request = created[0];
    CHECK(answer.json()["name"] == request["metadata"]["name"]);
    CHECK(request["metadata"]["name"].get<std::string>().rfind("podinfo-promote-", 0) == 0);
    CHECK(request["metadata"]["generateName"] == "podinfo-promote-");
    const Json& owner = request["metadata"]["ownerReferences"][0];
    CHECK(owner["apiVersion"] == "flagger.app/v1beta1");
    CHECK(owner["kind"] == "Canary");
    CHECK(owner["name"] == "podinfo");
    CHECK(owner["uid"] == canary["metadata"]["uid"]);
    CHECK(owner["controller"] == false);
    CHECK(request["spec"] == Json{{"canaryRef", {{"name", "podinfo"}}},
                                  {"action", "promote"},
                                  {"full", true},
                                  {"requestedBy", "alice"},
                                  {"reason", "hotfix verified"}});
    CHECK(f.post("/api/canaries/test/missing/requests", R"({"action":"abort"})").status == 404);
}

TEST_CASE("a 403 of the API server is answered 403 naming the missing permission") {
    Fixture f;
    f.seed_canary("test", "podinfo", {{"phase", "Progressing"}});
    f.api.fail_next(testing::calls(testing::Verb::kCreate, kube::types::canary_requests()), 1,
                    ErrorKind::kForbidden);
    const Answer answer = f.post("/api/canaries/test/podinfo/requests", R"({"action":"abort"})");
    REQUIRE(answer.status == 403);
    const Json body = answer.json();
    CHECK(body["permission"] == "create canaryrequests.serin.dev");
    CHECK(body["error"].get<std::string>().find("may not create canaryrequests.serin.dev in "
                                                "namespace test") != std::string::npos);
    CHECK(body["error"].get<std::string>().find("serin-operator") != std::string::npos);
    CHECK(f.requests("test").empty());
}

TEST_CASE("the live stream sends a snapshot, then each change of a canary as it happens") {
    Fixture f;
    f.seed_canary("test", "podinfo", {{"phase", "Progressing"}, {"canaryWeight", 10}});
    f.run_until([&] { return f.get("/api/canaries").json()["canaries"].size() == 1; },
                "the canary is cached");
    Stream stream(f);
    std::size_t at = stream.wait_for("Content-Type: text/event-stream");
    CHECK(stream.in().find("Transfer-Encoding: chunked") != std::string::npos);
    at = stream.wait_for("event: snapshot", at);
    at = stream.wait_for("\"weight\":10", at);
    CHECK(f.board->open_streams() == 1);

    REQUIRE(f.api.set_status(kube::types::canaries(), "test", "podinfo",
                             {{"phase", "Progressing"}, {"canaryWeight", 20}})
                .has_value());
    at = stream.wait_for("event: canary", at);
    stream.wait_for("\"op\":\"upsert\"", at);
    at = stream.wait_for("\"weight\":20", at);

    f.seed_canary("test", "second", {{"phase", "Initialized"}});
    at = stream.wait_for("\"name\":\"second\"", at);

    // A quiet stream carries a heartbeat, so a proxy or the browser keeps it open.
    at = stream.wait_for(": keep-alive", at);

    REQUIRE(f.api.remove(kube::types::canaries(), "test", "podinfo").has_value());
    at = stream.wait_for("\"op\":\"delete\"", at);

    f.board->stop();
    f.run_until([&] { return stream.state->closed; }, "stop() closes the stream");
    f.run_until([&] { return f.board->open_streams() == 0; }, "the stream is forgotten");
}

TEST_CASE("a closed browser tab ends its stream on the server") {
    Fixture f;
    Stream stream(f);
    stream.wait_for("event: snapshot");
    CHECK(f.board->open_streams() == 1);
    stream.state->socket.close();
    // The next heartbeat's write fails and the writer returns.
    f.run_until([&] { return f.board->open_streams() == 0; }, "the server forgets the stream");
}

TEST_CASE("the canary summary counts steps from stepWeights, stepWeight or iterations") {
    Json canary = canary_object("test", "podinfo");
    canary["status"] = {{"canaryWeight", 30}, {"iterations", 0}};
    CHECK(dashboard::canary_summary(canary)["step"] == Json{{"index", 3}, {"total", 5}});
    canary["spec"]["analysis"] = {{"stepWeights", {5, 10, 30, 60}}};
    CHECK(dashboard::canary_summary(canary)["step"] == Json{{"index", 3}, {"total", 4}});
    canary["spec"]["analysis"] = {{"iterations", 10}};
    canary["status"]["iterations"] = 4;
    CHECK(dashboard::canary_summary(canary)["step"] == Json{{"index", 4}, {"total", 10}});
    CHECK(dashboard::canary_summary(canary)["strategy"] == "blue-green");
    // Hostile shapes give neutral values, never an exception.
    CHECK(dashboard::canary_summary(Json::array())["phase"] == "");
    CHECK(dashboard::canary_summary(Json{{"status", {{"canaryWeight", "ten"}}}})["weight"] == 0);
    CHECK(dashboard::canary_summary(Json{{"status", {{"canaryWeight", 1e300}}}})["weight"] == 0);
}
