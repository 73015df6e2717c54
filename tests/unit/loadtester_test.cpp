// serin-loadtester's pure parts: reading payloads and their errors, the tasks they ask for, the
// de-duplication key, the gate store and the flags.
#include <catch2/catch.hpp>
#include <sstream>

#include "loadtester/flags.hpp"
#include "loadtester/gates.hpp"
#include "loadtester/payload.hpp"
#include "loadtester/task.hpp"

namespace {

using namespace serin::loadtester;

Payload payload_with(std::map<std::string, std::string> metadata) {
    Payload p;
    p.name = "podinfo";
    p.ns = "test";
    p.metadata = std::move(metadata);
    return p;
}

}  // namespace

TEST_CASE("a Flagger webhook payload is read with its metadata") {
    auto p = read_payload(
        R"({"name":"podinfo","namespace":"test","phase":"Progressing","checksum":"6cb4c9d6c",)"
        R"("metadata":{"type":"cmd","cmd":"hey -z 1m http://podinfo-canary.test/"}})");
    REQUIRE(p.has_value());
    CHECK(p->name == "podinfo");
    CHECK(p->ns == "test");
    CHECK(p->phase == "Progressing");
    CHECK(p->checksum == "6cb4c9d6c");
    CHECK(p->canary() == "podinfo.test");
    CHECK(p->metadata.at("cmd") == "hey -z 1m http://podinfo-canary.test/");
}

TEST_CASE("absent payload fields are empty and null metadata is none") {
    auto p = read_payload(R"({"metadata":null})");
    REQUIRE(p.has_value());
    CHECK(p->name.empty());
    CHECK(p->metadata.empty());
}

TEST_CASE("unreadable payloads are refused with the reason") {
    auto message = [](std::string_view body) {
        auto p = read_payload(body);
        REQUIRE_FALSE(p.has_value());
        CHECK(p.error().kind == serin::ErrorKind::kBadRequest);
        return p.error().message;
    };
    CHECK_THAT(message(""), Catch::Contains("not JSON"));
    CHECK_THAT(message("{\"name\":"), Catch::Contains("not JSON"));
    CHECK_THAT(message("[1,2]"), Catch::Contains("not a JSON object"));
    CHECK_THAT(message(R"({"name":5})"), Catch::Contains("\"name\" is not a string"));
    CHECK_THAT(message(R"({"metadata":[]})"), Catch::Contains("\"metadata\" is not an object"));
    CHECK_THAT(message(R"({"metadata":{"cmd":1}})"), Catch::Contains("\"cmd\" is not a string"));
    CHECK_THAT(message(R"({"metadata":{"cmd":{"a":{"b":{"c":{"d":{"e":{"f":{"g":1}}}}}}}}})"),
               Catch::Contains("nested deeper"));
    CHECK_THAT(message("{\"name\":\"\xff\"}"), Catch::Contains("UTF-8"));
    CHECK_THAT(message("{\"name\":\"" + std::string(300, 'a') + "\"}"),
               Catch::Contains("longer than"));
    CHECK_THAT(message(std::string(kMaxBodyBytes + 1, ' ')), Catch::Contains("larger than"));
}

TEST_CASE("a task defaults to a background sh command") {
    auto t = make_task(payload_with({{"cmd", "hey -z 1m -q 10 -c 2 http://x/"}}));
    REQUIRE(t.has_value());
    CHECK(t->type == TaskType::kCmd);
    CHECK_FALSE(t->blocking());
    CHECK(t->argv == std::vector<std::string>{"sh", "-c", "hey -z 1m -q 10 -c 2 http://x/"});
    CHECK(t->canary == "podinfo.test");
    CHECK_FALSE(t->log_output);
}

TEST_CASE("bash, kubectl and helm tasks block and build their command lines") {
    auto bash = make_task(payload_with(
        {{"type", "bash"}, {"cmd", "curl -s x | grep ok"}, {"returnCmdOutput", "true"}}));
    REQUIRE(bash.has_value());
    CHECK(bash->blocking());
    CHECK(bash->return_output);
    CHECK(bash->argv == std::vector<std::string>{"bash", "-c", "curl -s x | grep ok"});
    auto kubectl = make_task(payload_with({{"type", "kubectl"}, {"cmd", " get  pods\t-n x "}}));
    REQUIRE(kubectl.has_value());
    CHECK(kubectl->argv == std::vector<std::string>{"kubectl", "get", "pods", "-n", "x"});
    auto helm = make_task(payload_with({{"type", "helmv3"}, {"cmd", "test podinfo -n test"}}));
    REQUIRE(helm.has_value());
    CHECK(helm->type == TaskType::kHelm);
    CHECK(helm->argv == std::vector<std::string>{"helm", "test", "podinfo", "-n", "test"});
}

TEST_CASE("tasks that cannot run are refused with flagger-loadtester's messages") {
    auto message = [](std::map<std::string, std::string> metadata) {
        auto t = make_task(payload_with(std::move(metadata)));
        REQUIRE_FALSE(t.has_value());
        CHECK(t.error().kind == serin::ErrorKind::kBadRequest);
        return t.error().message;
    };
    CHECK(message({}) == "metadata not found in payload");
    CHECK(message({{"type", "cmd"}}) == "cmd not found in metadata");
    CHECK(message({{"type", "grpc"}, {"cmd", "x"}}) == "unknown task type grpc");
    CHECK_THAT(message({{"type", "ngrinder"}, {"server", "x"}}),
               Catch::StartsWith("task type ngrinder is not built"));
    CHECK_THAT(message({{"type", "concord"}}), Catch::StartsWith("task type concord is not built"));
    CHECK_THAT(message({{"cmd", std::string(kMaxCommandBytes + 1, 'x')}}),
               Catch::Contains("longer than"));
    CHECK_THAT(message({{"cmd", std::string("a\0b", 3)}}), Catch::Contains("NUL"));
}

TEST_CASE("split_fields splits on runs of whitespace without quoting") {
    CHECK(split_fields("") == std::vector<std::string>{});
    CHECK(split_fields("  a \n b\t\"c d\" ") ==
          std::vector<std::string>{"a", "b", "\"c", "d\""});
}

TEST_CASE("the dedupe key is one canary's command, and the parts cannot run together") {
    CHECK(dedupe_key("a.b", "hey x") == dedupe_key("a.b", "hey x"));
    CHECK(dedupe_key("a.b", "hey x") != dedupe_key("a.c", "hey x"));
    CHECK(dedupe_key("a.b", "hey x") != dedupe_key("a.b", "hey y"));
    CHECK(dedupe_key("a.b", "c") != dedupe_key("a.bc", ""));
}

TEST_CASE("gates are created closed, open and close, and stay as set") {
    GateStore gates;
    CHECK_FALSE(gates.is_open("podinfo.test"));
    CHECK(gates.size() == 1);
    CHECK(gates.set("podinfo.test", true));
    CHECK(gates.is_open("podinfo.test"));
    CHECK(gates.is_open("podinfo.test"));  // checking does not close it
    CHECK_FALSE(gates.is_open(GateStore::rollback_key("podinfo.test")));
    CHECK(GateStore::rollback_key("podinfo.test") == "rollback.podinfo.test");
    CHECK(gates.set("podinfo.test", false));
    CHECK_FALSE(gates.is_open("podinfo.test"));
}

TEST_CASE("the gate store stops growing at its limit") {
    GateStore gates;
    for (std::size_t i = 0; i < GateStore::kMaxGates; ++i) {
        REQUIRE(gates.set("g" + std::to_string(i), false));
    }
    CHECK_FALSE(gates.is_open("another"));
    CHECK(gates.size() == GateStore::kMaxGates);
    CHECK_FALSE(gates.set("another", true));
    CHECK(gates.set("g1", true));  // known gates still change
    CHECK(gates.is_open("g1"));
}

TEST_CASE("flags take flagger-loadtester's names with one dash or two") {
    std::ostringstream out;
    std::ostringstream err;
    auto parsed = parse_flags({"-port=8080", "--timeout", "30s", "-namespace-regexp=^team-a-",
                               "-log-level=warning", "-zap-encoding=console",
                               "-zap-replace-globals", "-port-file", "/tmp/p"},
                              out, err);
    REQUIRE(parsed.flags.has_value());
    CHECK(parsed.flags->port == 8080);
    CHECK(parsed.flags->options.timeout == std::chrono::seconds{30});
    REQUIRE(parsed.flags->options.namespace_regexp.has_value());
    CHECK(std::regex_search("team-a-dev", *parsed.flags->options.namespace_regexp));
    CHECK(parsed.flags->log_level == "warn");
    CHECK(parsed.flags->port_file == "/tmp/p");
    auto defaults = parse_flags({}, out, err);
    REQUIRE(defaults.flags.has_value());
    CHECK(defaults.flags->port == 9090);
    CHECK(defaults.flags->options.timeout == std::chrono::hours{1});
    CHECK_FALSE(defaults.flags->options.namespace_regexp.has_value());
}

TEST_CASE("bad flags are refused") {
    std::ostringstream out;
    std::ostringstream err;
    CHECK_FALSE(parse_flags({"-port=http"}, out, err).flags.has_value());
    CHECK_FALSE(parse_flags({"-port=70000"}, out, err).flags.has_value());
    CHECK_FALSE(parse_flags({"-timeout=soon"}, out, err).flags.has_value());
    CHECK_FALSE(parse_flags({"-namespace-regexp=("}, out, err).flags.has_value());
    CHECK_FALSE(parse_flags({"-no-such-flag"}, out, err).flags.has_value());
}
