// serin-loadtester's library on loopback: its HTTP server and LoadTester answering real HTTP
// requests, with real `sh` and `bash` children: gates, approve/halt, 400s, the 403 of
// -namespace-regexp, de-duplication of background commands, blocking bash, timeouts that kill
// the whole process group, and the limit on running tasks.
#include <signal.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>

#include "loadtester/child.hpp"
#include "loadtester/loadtester.hpp"
#include "loadtester/payload.hpp"
#include "platform/http/http_client.hpp"
#include "platform/http/server.hpp"

namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace serin;
using namespace serin::loadtester;
using namespace std::chrono_literals;

/// A directory of one test's own, removed afterwards.
struct TempDir {
    fs::path path;
    TempDir() {
        std::string pattern = (fs::temp_directory_path() / "serin-lt-XXXXXX").string();
        REQUIRE(::mkdtemp(pattern.data()) != nullptr);
        path = pattern;
    }
    ~TempDir() {
        std::error_code ignored;
        fs::remove_all(path, ignored);
    }
    std::string file(const std::string& name) const { return (path / name).string(); }
};

std::size_t lines_in(const std::string& file) {
    std::ifstream in(file);
    std::size_t n = 0;
    for (std::string line; std::getline(in, line);) {
        ++n;
    }
    return n;
}

std::string payload(const std::string& ns, const std::string& metadata_json = "null",
                    const std::string& name = "podinfo") {
    return R"({"name":")" + name + R"(","namespace":")" + ns +
           R"(","phase":"Progressing","checksum":"x","metadata":)" + metadata_json + "}";
}

std::string metadata(const std::string& type, const std::string& cmd,
                     const std::string& extra = "") {
    return R"({"type":")" + type + R"(","cmd":")" + cmd + "\"" + extra + "}";
}

struct Fixture {
    explicit Fixture(LoadTesterOptions options = {})
        : tester(io.get_executor(), std::move(options)) {
        auto s = http::HttpServer::listen(io.get_executor(), "127.0.0.1", 0, server_options(),
                                          [this](Request r) { return tester.handle(std::move(r)); });
        REQUIRE(s.has_value());
        server = std::move(*s);
        auto c = http::make_beast_client(io.get_executor(), {});
        REQUIRE(c.has_value());
        client = std::move(*c);
    }
    ~Fixture() {
        // Whatever still runs is killed, and the io_context runs until its coroutines end.
        tester.shutdown();
        server->stop();
        io.restart();
        io.run_for(5s);
    }

    http::Response post(const std::string& path, const std::string& body) {
        http::Request request;
        request.method = http::Method::kPost;
        request.url = "http://127.0.0.1:" + std::to_string(server->port()) + path;
        request.body = body;
        request.timeout = 20s;
        std::optional<Result<http::Response>> out;
        asio::co_spawn(io, client->send(std::move(request)),
                       [&out](std::exception_ptr e, Result<http::Response> r) {
                           if (e) {
                               std::rethrow_exception(e);
                           }
                           out.emplace(std::move(r));
                       });
        io.restart();
        while (!out && io.run_one_for(20s) > 0) {
        }
        REQUIRE(out.has_value());
        REQUIRE(out->has_value());
        return std::move(**out);
    }

    /// Runs the io_context until `condition` holds; fails after `timeout`.
    void wait_for(const std::function<bool()>& condition, const std::string& what,
                  std::chrono::milliseconds timeout = 10s) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        io.restart();
        while (!condition()) {
            if (std::chrono::steady_clock::now() >= deadline) {
                FAIL("timed out waiting for " << what);
            }
            io.run_one_for(50ms);
        }
    }

    std::uint64_t metric(const std::string& series) const {
        std::istringstream in(tester.metrics());
        for (std::string line; std::getline(in, line);) {
            if (line.rfind(series + " ", 0) == 0) {
                return std::stoull(line.substr(series.size() + 1));
            }
        }
        return 0;
    }

    asio::io_context io;
    LoadTester tester;
    std::unique_ptr<http::HttpServer> server;
    http::HttpClientPtr client;
};

bool process_gone(pid_t pid) {
    if (::kill(pid, 0) != 0) {
        return true;
    }
    // A zombie waiting for its (re)parent to reap it has ended too.
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
    const auto close = text.rfind(')');
    return close == std::string::npos || text.substr(close + 2, 1) == "Z";
}

}  // namespace

TEST_CASE("healthz, approve and halt answer without reading a body") {
    Fixture f;
    auto health = f.post("/healthz", "");
    CHECK(health.status == 200);
    CHECK(health.body == "OK");
    CHECK(f.post("/gate/approve", "not json").status == 200);
    auto halt = f.post("/gate/halt", "not json");
    CHECK(halt.status == 403);
    CHECK(halt.body == "Forbidden");
    auto metrics = f.post("/metrics", "");
    CHECK(metrics.status == 200);
    CHECK(metrics.body.find("serin_loadtester_requests_total 4") != std::string::npos);
}

TEST_CASE("a gate is closed until opened, stays open, and closes again") {
    Fixture f;
    const std::string body = payload("test");
    auto closed = f.post("/gate/check", body);
    CHECK(closed.status == 403);
    CHECK(closed.body == "Forbidden");
    auto opened = f.post("/gate/open", body);
    CHECK(opened.status == 202);
    CHECK(opened.body.empty());
    for (int i = 0; i < 2; ++i) {  // not closed by being checked
        auto approved = f.post("/gate/check", body);
        CHECK(approved.status == 200);
        CHECK(approved.body == "Approved");
    }
    CHECK(f.post("/gate/check", payload("test", "null", "other")).status == 403);
    CHECK(f.post("/rollback/check", body).status == 403);  // a gate of its own
    CHECK(f.post("/gate/close", body).status == 202);
    CHECK(f.post("/gate/check", body).status == 403);
}

TEST_CASE("the rollback gate opens and closes apart from the promotion gate") {
    Fixture f;
    const std::string body = payload("test");
    CHECK(f.post("/rollback/check", body).status == 403);
    CHECK(f.post("/rollback/open", body).status == 202);
    auto approved = f.post("/rollback/check", body);
    CHECK(approved.status == 200);
    CHECK(approved.body == "Approved");
    CHECK(f.post("/gate/check", body).status == 403);
    CHECK(f.post("/rollback/close", body).status == 202);
    CHECK(f.post("/rollback/check", body).status == 403);
}

TEST_CASE("bad payloads and task types are answered 400 with the reason") {
    Fixture f;
    CHECK(f.post("/gate/check", "{").status == 400);
    CHECK(f.post("/gate/open", "[]").status == 400);
    auto no_metadata = f.post("/", payload("test"));
    CHECK(no_metadata.status == 400);
    CHECK(no_metadata.body == "metadata not found in payload\n");
    auto no_cmd = f.post("/", payload("test", R"({"type":"cmd"})"));
    CHECK(no_cmd.status == 400);
    CHECK(no_cmd.body == "cmd not found in metadata\n");
    auto unknown = f.post("/anything", payload("test", metadata("grpc", "x")));
    CHECK(unknown.status == 400);
    CHECK(unknown.body == "unknown task type grpc\n");
    auto ngrinder = f.post("/", payload("test", R"({"type":"ngrinder","server":"http://x"})"));
    CHECK(ngrinder.status == 400);
    CHECK(ngrinder.body.find("ngrinder is not built") != std::string::npos);
    CHECK(f.post("/", std::string(kMaxBodyBytes + 10, ' ')).status == 413);
    CHECK(f.metric("serin_loadtester_requests_rejected_total") == 6);
}

TEST_CASE("with -namespace-regexp, other namespaces are answered 403") {
    LoadTesterOptions options;
    options.namespace_regexp.emplace("^team-a");
    Fixture f(options);
    auto gate = f.post("/gate/open", payload("team-b"));
    CHECK(gate.status == 403);
    CHECK(gate.body == "Forbidden");
    CHECK(f.post("/", payload("team-b", metadata("bash", "true"))).status == 403);
    CHECK(f.post("/gate/open", payload("team-a-dev")).status == 202);
    CHECK(f.post("/", payload("team-a-dev", metadata("bash", "true"))).status == 200);
}

TEST_CASE("bash answers 200 with the output when asked, and 500 with output and status") {
    Fixture f;
    auto quiet = f.post("/", payload("test", metadata("bash", "echo hello")));
    CHECK(quiet.status == 200);
    CHECK(quiet.body.empty());
    auto returned = f.post(
        "/", payload("test", metadata("bash", "echo hello; [[ 1 == 1 ]] && echo bash",
                                      R"(,"returnCmdOutput":"true")")));
    CHECK(returned.status == 200);
    CHECK(returned.body == "hello\nbash\n");
    auto failed = f.post("/", payload("test", metadata("bash", "echo oops >&2; exit 3")));
    CHECK(failed.status == 500);
    CHECK(failed.body == "command echo oops >&2; exit 3 failed: oops\n: exit status 3");
}

TEST_CASE("kubectl and helm run their program with the words of cmd, or say it is missing") {
    Fixture f;
    auto missing = f.post("/", payload("test", metadata("helm", "test podinfo")));
    if (::access("/usr/bin/helm", X_OK) != 0 && ::access("/usr/local/bin/helm", X_OK) != 0) {
        CHECK(missing.status == 500);
        CHECK(missing.body ==
              "command test podinfo failed: helm is not installed (not an executable in $PATH)");
    }
    auto kubectl = f.post("/", payload("test", metadata("kubectl", "version --client",
                                                        R"(,"returnCmdOutput":"true")")));
    if (::access("/usr/bin/kubectl", X_OK) == 0 || ::access("/usr/local/bin/kubectl", X_OK) == 0) {
        CHECK(kubectl.status == 200);
        CHECK(kubectl.body.find("Client Version") != std::string::npos);
    }
}

TEST_CASE("a background command runs once per canary while it runs, and again afterwards") {
    Fixture f;
    TempDir dir;
    const std::string runs = dir.file("runs");
    const std::string stop = dir.file("stop");
    // Records each start, then runs until the test lets it go.
    const std::string cmd =
        "echo started >> " + runs + "; while [ ! -e " + stop + " ]; do sleep 0.02; done";
    const std::string body = payload("test", metadata("cmd", cmd, R"(,"logCmdOutput":"true")"));
    CHECK(f.post("/", body).status == 202);
    f.wait_for([&] { return lines_in(runs) == 1; }, "the first run to start");
    auto again = f.post("/", body);
    CHECK(again.status == 202);  // accepted, and dropped
    CHECK(f.metric("serin_loadtester_tasks_skipped_total") == 1);
    // Another canary's identical command runs beside it.
    CHECK(f.post("/", payload("test", metadata("cmd", cmd), "other")).status == 202);
    f.wait_for([&] { return lines_in(runs) == 2; }, "the other canary's run to start");
    CHECK(f.tester.running() == 2);
    std::ofstream(stop).put('x');
    f.wait_for([&] { return f.tester.running() == 0; }, "both runs to end");
    CHECK(lines_in(runs) == 2);  // the skipped copy never ran
    fs::remove(stop);
    CHECK(f.post("/", body).status == 202);
    f.wait_for([&] { return lines_in(runs) == 3; }, "a run after the first ended");
    CHECK(f.metric("serin_loadtester_tasks_started_total{type=\"cmd\"}") == 3);
}

TEST_CASE("at -timeout a task's whole process group is killed") {
    LoadTesterOptions options;
    options.timeout = 300ms;
    Fixture f(options);
    TempDir dir;
    const std::string pid_file = dir.file("pid");
    // A grandchild in the background, and the shell waiting for it.
    auto answer = f.post("/", payload("test", metadata("bash", "sleep 30 & echo $! > " + pid_file +
                                                                   "; wait")));
    CHECK(answer.status == 500);
    CHECK(answer.body.find("signal: killed") != std::string::npos);
    std::ifstream in(pid_file);
    pid_t grandchild = 0;
    REQUIRE(in >> grandchild);
    f.wait_for([&] { return process_gone(grandchild); }, "the background sleep to be killed");
    CHECK(f.metric("serin_loadtester_tasks_timed_out_total") == 1);
}

TEST_CASE("a background command's group is killed when the command itself ends") {
    Fixture f;
    TempDir dir;
    const std::string pid_file = dir.file("pid");
    CHECK(f.post("/", payload("test", metadata("cmd", "sleep 30 & echo $! > " + pid_file)))
              .status == 202);
    f.wait_for([&] { return f.tester.running() == 0; }, "the command to end");
    std::ifstream in(pid_file);
    pid_t grandchild = 0;
    REQUIRE(in >> grandchild);
    f.wait_for([&] { return process_gone(grandchild); }, "its background sleep to be killed");
}

TEST_CASE("beyond the running-task limit tasks are refused with 429, and shutdown kills the rest") {
    LoadTesterOptions options;
    options.max_running = 2;
    Fixture f(options);
    for (int i = 0; i < 2; ++i) {
        CHECK(f.post("/", payload("test", metadata("cmd", "sleep 30 # " + std::to_string(i))))
                  .status == 202);
    }
    auto refused = f.post("/", payload("test", metadata("cmd", "sleep 30 # 2")));
    CHECK(refused.status == 429);
    CHECK(f.metric("serin_loadtester_tasks_refused_total") == 1);
    f.tester.shutdown();
    f.wait_for([&] { return f.tester.running() == 0; }, "shutdown to kill the running tasks");
    CHECK(f.post("/", payload("test", metadata("bash", "true"))).status == 503);
}

TEST_CASE("run_child keeps only the tail of a large output") {
    asio::io_context io;
    ChildGroups groups;
    ChildOptions options;
    options.argv = {"sh", "-c", "head -c 200000 /dev/zero | tr '\\0' a; echo -n end"};
    options.output_limit = 1000;
    std::optional<Result<ChildResult>> out;
    asio::co_spawn(io, run_child(options, groups),
                   [&out](std::exception_ptr e, Result<ChildResult> r) {
                       if (e) {
                           std::rethrow_exception(e);
                       }
                       out.emplace(std::move(r));
                   });
    io.run_for(10s);
    REQUIRE(out.has_value());
    REQUIRE(out->has_value());
    CHECK((*out)->ok());
    CHECK((*out)->output_bytes == 200003);
    CHECK((*out)->output.size() == 1000);
    CHECK((*out)->output.substr(997) == "end");
    CHECK(groups.size() == 0);
}

TEST_CASE("the binary on SIGTERM lets running tasks go on within the grace, then kills them") {
    asio::io_context io;
    TempDir dir;
    const std::string pid_file = dir.file("pid");
    const std::string port_file = dir.file("port");
    const std::string task_pid_file = dir.file("task-pid");
    ChildGroups groups;
    ChildOptions options;
    // The shell's pid is the loadtester's once it execs.
    options.argv = {"sh", "-c",
                    "echo $$ > " + pid_file + "; exec " SERIN_LOADTESTER_BINARY
                    " -port=0 -address=127.0.0.1 -port-file=" + port_file +
                        " -shutdown-grace=300ms -zap-encoding=console -log-level=info"};
    options.timeout = 30s;
    std::optional<Result<ChildResult>> exited;
    asio::co_spawn(io, run_child(options, groups),
                   [&exited](std::exception_ptr e, Result<ChildResult> r) {
                       if (e) {
                           std::rethrow_exception(e);
                       }
                       exited.emplace(std::move(r));
                   });
    auto wait_for = [&io](const std::function<bool()>& done, const std::string& what) {
        const auto deadline = std::chrono::steady_clock::now() + 10s;
        while (!done()) {
            if (std::chrono::steady_clock::now() >= deadline) {
                FAIL("timed out waiting for " << what);
            }
            io.restart();
            io.run_one_for(20ms);
        }
    };
    wait_for([&] { return lines_in(port_file) == 1 || exited.has_value(); }, "the port file");
    REQUIRE_FALSE(exited.has_value());
    std::ifstream port_in(port_file);
    int port = 0;
    REQUIRE(port_in >> port);

    auto client = http::make_beast_client(io.get_executor(), {});
    REQUIRE(client.has_value());
    http::Request request;
    request.method = http::Method::kPost;
    request.url = "http://127.0.0.1:" + std::to_string(port) + "/";
    request.body = payload("test", metadata("cmd", "sleep 30 & echo $! > " + task_pid_file +
                                                       "; wait"));
    std::optional<Result<http::Response>> answer;
    asio::co_spawn(io, (*client)->send(std::move(request)),
                   [&answer](std::exception_ptr e, Result<http::Response> r) {
                       if (e) {
                           std::rethrow_exception(e);
                       }
                       answer.emplace(std::move(r));
                   });
    wait_for([&] { return answer.has_value(); }, "the task's answer");
    REQUIRE(answer->has_value());
    CHECK((*answer)->status == 202);
    wait_for([&] { return lines_in(task_pid_file) == 1; }, "the task to start");
    std::ifstream task_in(task_pid_file);
    pid_t task_child = 0;
    REQUIRE(task_in >> task_child);
    std::ifstream pid_in(pid_file);
    pid_t loadtester = 0;
    REQUIRE(pid_in >> loadtester);

    const auto signalled = std::chrono::steady_clock::now();
    REQUIRE(::kill(loadtester, SIGTERM) == 0);
    wait_for([&] { return exited.has_value(); }, "the loadtester to exit");
    const auto took = std::chrono::steady_clock::now() - signalled;
    REQUIRE(exited->has_value());
    CHECK((*exited)->exit_code == 0);
    CHECK_FALSE((*exited)->timed_out);
    CHECK((*exited)->output.find("shutting down (1 tasks running)") != std::string::npos);
    CHECK(took >= 300ms);  // the grace was given
    CHECK(took < 5s);
    wait_for([&] { return process_gone(task_child); }, "the task's sleep to be killed");
}
