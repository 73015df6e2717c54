#include "platform/kube/manifest.hpp"

#include <catch2/catch.hpp>
#include <cstdint>
#include <string>

using serin::ErrorKind;
using serin::kube::Json;
using serin::kube::parse_json;
using serin::kube::parse_manifests;

namespace {

Json one(const std::string& yaml) {
    auto docs = parse_manifests(yaml);
    REQUIRE(docs.has_value());
    REQUIRE(docs->size() == 1);
    return docs->front();
}

std::string error_of(const std::string& yaml) {
    auto docs = parse_manifests(yaml);
    REQUIRE_FALSE(docs.has_value());
    CHECK(docs.error().kind == ErrorKind::kInvalid);
    return docs.error().message;
}

}  // namespace

TEST_CASE("several documents, skipping empty ones") {
    auto docs = parse_manifests(R"(# leading comment
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: a
data:
  key: value
---
# only a comment
---
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: b, labels: {app: b}}
spec:
  replicas: 3
  template:
    spec:
      containers:
      - name: app
        image: nginx:1.25
        ports: [{containerPort: 80}]
...
)");
    REQUIRE(docs.has_value());
    REQUIRE(docs->size() == 2);
    CHECK((*docs)[0] == Json::parse(R"({"apiVersion":"v1","kind":"ConfigMap",
        "metadata":{"name":"a"},"data":{"key":"value"}})"));
    const Json& deploy = (*docs)[1];
    CHECK(deploy.at("metadata").at("labels").at("app") == "b");
    CHECK(deploy.at("spec").at("replicas").get<std::int64_t>() == 3);
    CHECK(deploy.at("spec").at("template").at("spec").at("containers").at(0).at("ports").at(0) ==
          Json{{"containerPort", 80}});
}

TEST_CASE("an empty stream gives no documents") {
    for (const char* text : {"", "\n", "# nothing\n", "---\n...\n"}) {
        auto docs = parse_manifests(text);
        REQUIRE(docs.has_value());
        CHECK(docs->empty());
    }
}

TEST_CASE("plain scalars are typed, quoted and block scalars stay strings") {
    Json j = one(R"(
int: 42
negative: -7
plus: +5
hex: 0x1F
octal: 0o17
big: 18446744073709551615
min: -9223372036854775808
float: 1.5
exp: 1e3
dot: .5
bool_true: true
bool_caps: FALSE
null_word: null
tilde: ~
empty:
yes_is_text: yes
on_is_text: on
version: 1.0
text: hello world
quoted_int: "42"
single_quoted_bool: 'true'
quoted_null: "null"
quoted_empty: ""
explicit_str: !!str 123
explicit_int: !!int "7"
explicit_float: !!float 2
literal: |
  line one
  line two
folded: >-
  folded
  text
inf: .inf
port_spec: 8080:80
)");
    CHECK(j.at("int").is_number_integer());
    CHECK(j.at("int").get<std::int64_t>() == 42);
    CHECK(j.at("negative").get<std::int64_t>() == -7);
    CHECK(j.at("plus").get<std::int64_t>() == 5);
    CHECK(j.at("hex").get<std::int64_t>() == 31);
    CHECK(j.at("octal").get<std::int64_t>() == 15);
    CHECK(j.at("big").is_number_unsigned());
    CHECK(j.at("big").get<std::uint64_t>() == UINT64_MAX);
    CHECK(j.at("min").get<std::int64_t>() == INT64_MIN);
    CHECK(j.at("float").is_number_float());
    CHECK(j.at("float").get<double>() == 1.5);
    CHECK(j.at("exp").get<double>() == 1000.0);
    CHECK(j.at("dot").get<double>() == 0.5);
    CHECK(j.at("bool_true") == true);
    CHECK(j.at("bool_caps") == false);
    CHECK(j.at("null_word").is_null());
    CHECK(j.at("tilde").is_null());
    CHECK(j.at("empty").is_null());
    CHECK(j.at("yes_is_text") == "yes");
    CHECK(j.at("on_is_text") == "on");
    CHECK(j.at("version").is_number_float());
    CHECK(j.at("text") == "hello world");
    CHECK(j.at("quoted_int") == "42");
    CHECK(j.at("single_quoted_bool") == "true");
    CHECK(j.at("quoted_null") == "null");
    CHECK(j.at("quoted_empty") == "");
    CHECK(j.at("explicit_str") == "123");
    CHECK(j.at("explicit_int") == 7);
    CHECK(j.at("explicit_float").is_number_float());
    CHECK(j.at("explicit_float").get<double>() == 2.0);
    CHECK(j.at("literal") == "line one\nline two\n");
    CHECK(j.at("folded") == "folded text");
    CHECK(j.at("inf") == ".inf");
    CHECK(j.at("port_spec") == "8080:80");
}

TEST_CASE("anchors, aliases and merge keys") {
    Json j = one(R"(
base: &base {cpu: 100m, memory: 64Mi}
copy: *base
merged:
  <<: *base
  memory: 128Mi
)");
    CHECK(j.at("copy") == Json{{"cpu", "100m"}, {"memory", "64Mi"}});
    CHECK(j.at("merged") == Json{{"cpu", "100m"}, {"memory", "128Mi"}});
}

TEST_CASE("YAML errors give the line and column") {
    CHECK(error_of("a: 1\nb: [1, 2\nc: 3\n") ==
          "yaml: line 3, column 2: end of sequence flow not found");
    CHECK_THAT(error_of("a: 1\n  b: 2\n"), Catch::StartsWith("yaml: line 2, column "));
    CHECK(error_of("a: 1\nb: 2\na: 3\n") == "yaml: line 3, column 1: duplicate key \"a\"");
    CHECK_THAT(error_of("? [x, y]\n: 1\n"), Catch::Contains("a mapping key must be a scalar"));
    CHECK_THAT(error_of("n: !!int twelve\n"),
               Catch::Contains("\"twelve\" is not a valid tag:yaml.org,2002:int"));
}

TEST_CASE("self-referencing aliases and alias bombs are refused, not followed forever") {
    CHECK_THAT(error_of("&a [*a]\n"), Catch::Contains("nested too deeply"));
    std::string bomb = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n";
    for (int i = 1; i <= 8; ++i) {
        std::string prev = "*a" + std::to_string(i - 1);
        bomb += "a" + std::to_string(i) + ": &a" + std::to_string(i) + " [" + prev;
        for (int k = 1; k < 10; ++k) {
            bomb += ", " + prev;
        }
        bomb += "]\n";
    }
    CHECK_THAT(error_of(bomb), Catch::Contains("too many values"));
}

TEST_CASE("parse_json") {
    auto ok = parse_json(R"({"a": [1, 2.5, "x", null, true]})");
    REQUIRE(ok.has_value());
    CHECK(ok->at("a").size() == 5);

    auto bad = parse_json(R"({"a": })");
    REQUIRE_FALSE(bad.has_value());
    CHECK(bad.error().kind == ErrorKind::kInvalid);
    CHECK_THAT(bad.error().message, Catch::StartsWith("json: "));
    CHECK_THAT(bad.error().message, Catch::Contains("syntax error"));

    auto trailing = parse_json("{} {}");
    CHECK_FALSE(trailing.has_value());
    auto empty = parse_json("");
    CHECK_FALSE(empty.has_value());
}
