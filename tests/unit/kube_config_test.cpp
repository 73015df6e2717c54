#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "platform/core/base64.hpp"
#include "platform/kube/config.hpp"

namespace fs = std::filesystem;
using serin::ErrorKind;
using serin::kube::ClusterConfig;
using serin::kube::InClusterPaths;
using serin::kube::load_in_cluster;
using serin::kube::load_kubeconfig;

namespace {

/// A fresh folder under the system's temporary directory, removed at the end of the test.
class TempDir {
public:
    TempDir() {
        std::random_device rd;
        path_ =
            fs::temp_directory_path() / ("serin-kube-config-test-" + std::to_string(::getpid()) +
                                         "-" + std::to_string(rd()) + std::to_string(rd()));
        fs::create_directories(path_);
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;

    const fs::path& path() const { return path_; }

    fs::path write(const fs::path& relative, const std::string& contents) const {
        fs::path p = path_ / relative;
        fs::create_directories(p.parent_path());
        std::ofstream out(p, std::ios::binary);
        out << contents;
        return p;
    }

private:
    fs::path path_;
};

std::string base64(std::string_view in) { return serin::encode_base64(in); }

const std::string kCa = "-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n";
const std::string kCert = "-----BEGIN CERTIFICATE-----\nCLIENT\n-----END CERTIFICATE-----\n";
const std::string kKey = "-----BEGIN PRIVATE KEY-----\nKEY!\n-----END PRIVATE KEY-----\n";

std::string error_message(const serin::Result<ClusterConfig>& r) {
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().kind == ErrorKind::kInvalid);
    return r.error().message;
}

/// An environment variable with a name no other test uses, unset again at the end.
class ScopedEnv {
public:
    ScopedEnv(const std::string& prefix, const char* value) {
        std::random_device rd;
        name_ = prefix + "_" + std::to_string(::getpid()) + "_" + std::to_string(rd());
        if (value != nullptr) {
            ::setenv(name_.c_str(), value, 1);
        }
    }
    ~ScopedEnv() { ::unsetenv(name_.c_str()); }
    ScopedEnv(const ScopedEnv&) = delete;
    ScopedEnv& operator=(const ScopedEnv&) = delete;
    const std::string& name() const { return name_; }

private:
    std::string name_;
};

}  // namespace

TEST_CASE("kubeconfig with inline base64 data for the CA and client certificate") {
    TempDir dir;
    auto path = dir.write("config", R"(apiVersion: v1
kind: Config
current-context: kind-serin
clusters:
- name: kind-serin
  cluster:
    server: https://127.0.0.1:6443/
    certificate-authority-data: )" + base64(kCa) +
                                        R"(
users:
- name: kind-serin
  user:
    client-certificate-data: )" + base64(kCert) +
                                        R"(
    client-key-data: )" + base64(kKey) + R"(
contexts:
- name: kind-serin
  context:
    cluster: kind-serin
    user: kind-serin
    namespace: canaries
)");
    auto config = load_kubeconfig(path);
    REQUIRE(config.has_value());
    CHECK(config->server == "https://127.0.0.1:6443");
    CHECK(config->tls.ca_pem == kCa);
    CHECK(config->tls.client_cert_pem == kCert);
    CHECK(config->tls.client_key_pem == kKey);
    CHECK_FALSE(config->tls.insecure_skip_verify);
    CHECK(config->token.empty());
    CHECK(config->token_file.empty());
    CHECK(config->default_namespace == "canaries");
}

TEST_CASE("kubeconfig file references are resolved against the kubeconfig's folder") {
    TempDir dir;
    dir.write("kube/pki/ca.crt", kCa);
    dir.write("kube/pki/client.crt", kCert);
    auto key = dir.write("elsewhere/client.key", kKey);
    auto token = dir.write("kube/token", "secret-token\n");
    auto path = dir.write("kube/config", R"(
current-context: dev
clusters:
- name: dev
  cluster:
    server: https://dev.example:443
    certificate-authority: pki/ca.crt
users:
- name: dev
  user:
    client-certificate: pki/client.crt
    client-key: )" + key.string() + R"(
    tokenFile: token
contexts:
- name: dev
  context: {cluster: dev, user: dev}
)");
    auto config = load_kubeconfig(path);
    REQUIRE(config.has_value());
    CHECK(config->server == "https://dev.example:443");
    CHECK(config->tls.ca_pem == kCa);
    CHECK(config->tls.client_cert_pem == kCert);
    CHECK(config->tls.client_key_pem == kKey);
    CHECK(config->token_file == token);
    CHECK(config->token.empty());  // kept as a file, re-read by the client
    CHECK(config->default_namespace == "default");
}

TEST_CASE("kubeconfig: a named context overrides current-context") {
    TempDir dir;
    auto path = dir.write("config", R"(
current-context: a
clusters:
- name: ca
  cluster: {server: "https://a:6443"}
- name: cb
  cluster:
    server: https://b:6443
    insecure-skip-tls-verify: true
users:
- name: ua
  user: {token: token-a}
- name: ub
  user: {username: admin, password: hunter2}
contexts:
- name: a
  context: {cluster: ca, user: ua}
- name: b
  context: {cluster: cb, user: ub, namespace: team-b}
)");
    SECTION("current-context") {
        auto config = load_kubeconfig(path);
        REQUIRE(config.has_value());
        CHECK(config->server == "https://a:6443");
        CHECK(config->token == "token-a");
        CHECK_FALSE(config->tls.insecure_skip_verify);
        CHECK(config->default_namespace == "default");
    }
    SECTION("named context, with insecure-skip-tls-verify and basic auth") {
        auto config = load_kubeconfig(path, "b");
        REQUIRE(config.has_value());
        CHECK(config->server == "https://b:6443");
        CHECK(config->tls.insecure_skip_verify);
        CHECK(config->tls.ca_pem.empty());
        CHECK(config->token.empty());
        CHECK(config->username == "admin");
        CHECK(config->password == "hunter2");
        CHECK(config->default_namespace == "team-b");
    }
    SECTION("missing context") {
        auto message = error_message(load_kubeconfig(path, "foo"));
        CHECK(message == "kubeconfig " + path.string() + ": context \"foo\" not found");
    }
}

TEST_CASE("kubeconfig errors name the file and the field") {
    TempDir dir;
    auto write = [&](const std::string& user_body, const std::string& cluster_extra = "") {
        return dir.write("config", R"(
current-context: c
clusters:
- name: c
  cluster:
    server: https://c:6443
)" + cluster_extra + R"(
users:
- name: u
  user:
)" + user_body + R"(
contexts:
- name: c
  context: {cluster: c, user: u}
)");
    };

    SECTION("malformed base64") {
        auto path = write(
            "    client-certificate-data: not*base64\n    client-key-data: " + base64(kKey) + "\n");
        CHECK(error_message(load_kubeconfig(path)) ==
              "kubeconfig " + path.string() +
                  ": users[0].user.client-certificate-data is not valid base64");
    }
    SECTION("base64 with a bad length or misplaced padding") {
        for (std::string bad : {"QUJD=", "QU=JD", "Q", "QUJDRA=", "QUJD!A=="}) {
            auto path = write("    token: x\n", "    certificate-authority-data: " + bad + "\n");
            INFO(bad);
            CHECK(error_message(load_kubeconfig(path)) ==
                  "kubeconfig " + path.string() +
                      ": clusters[0].cluster.certificate-authority-data is not valid base64");
        }
    }
    SECTION("base64 wrapped over lines and without padding is accepted") {
        std::string encoded = base64(kCa);
        while (!encoded.empty() && encoded.back() == '=') {
            encoded.pop_back();
        }
        auto path = write("    token: x\n", "    certificate-authority-data: >-\n      " +
                                                encoded.substr(0, 20) + "\n      " +
                                                encoded.substr(20) + "\n");
        auto config = load_kubeconfig(path);
        REQUIRE(config.has_value());
        CHECK(config->tls.ca_pem == kCa);
    }
    SECTION("a referenced file that does not exist") {
        auto path = write("    client-certificate: missing.crt\n    client-key: missing.key\n");
        auto message = error_message(load_kubeconfig(path));
        CHECK(message == "kubeconfig " + path.string() +
                             ": users[0].user.client-certificate: cannot read " +
                             (dir.path() / "missing.crt").string());
    }
    SECTION("a tokenFile that does not exist") {
        auto path = write("    tokenFile: nope\n");
        CHECK_THAT(error_message(load_kubeconfig(path)),
                   Catch::Contains("users[0].user.tokenFile: cannot read"));
    }
    SECTION("a client certificate without its key") {
        auto path = write("    client-certificate-data: " + base64(kCert) + "\n");
        CHECK_THAT(error_message(load_kubeconfig(path)),
                   Catch::Contains("users[0].user.client-key is missing"));
    }
    SECTION("an exec plugin is not supported") {
        auto path = write("    exec: {command: gke-gcloud-auth-plugin}\n");
        CHECK_THAT(error_message(load_kubeconfig(path)),
                   Catch::Contains("users[0].user.exec is not supported"));
    }
    SECTION("insecure-skip-tls-verify that is not a bool") {
        auto path = write("    token: x\n", "    insecure-skip-tls-verify: maybe\n");
        CHECK_THAT(error_message(load_kubeconfig(path)),
                   Catch::Contains("clusters[0].cluster.insecure-skip-tls-verify must be true or "
                                   "false"));
    }
}

TEST_CASE("kubeconfig: structural errors") {
    TempDir dir;
    SECTION("missing file") {
        auto path = dir.path() / "absent";
        CHECK(error_message(load_kubeconfig(path)) ==
              "kubeconfig " + path.string() + ": cannot read the file");
    }
    SECTION("invalid YAML gives the line") {
        auto path = dir.write("config", "clusters:\n- name: [a\n");
        CHECK_THAT(error_message(load_kubeconfig(path)), Catch::Contains("line 3"));
    }
    SECTION("no current-context") {
        auto path = dir.write("config", "clusters: []\n");
        CHECK_THAT(error_message(load_kubeconfig(path)),
                   Catch::Contains("no current-context is set"));
    }
    SECTION("the context names a cluster that does not exist") {
        auto path = dir.write("config", R"(
current-context: c
contexts:
- name: c
  context: {cluster: nowhere}
)");
        CHECK(error_message(load_kubeconfig(path)) ==
              "kubeconfig " + path.string() + ": cluster \"nowhere\" not found");
    }
    SECTION("a cluster without a server") {
        auto path = dir.write("config", R"(
current-context: c
clusters:
- name: k
  cluster: {}
contexts:
- name: c
  context: {cluster: k}
)");
        CHECK_THAT(error_message(load_kubeconfig(path)),
                   Catch::EndsWith(": clusters[0].cluster.server is missing"));
    }
    SECTION("a field of the wrong type") {
        auto path = dir.write("config", R"(
current-context: c
clusters:
- name: k
  cluster: {server: [https://x]}
contexts:
- name: c
  context: {cluster: k}
)");
        CHECK_THAT(error_message(load_kubeconfig(path)),
                   Catch::EndsWith(": clusters[0].cluster.server must be a string"));
    }
}

TEST_CASE("load_default_config uses the --kubeconfig flag first") {
    TempDir dir;
    auto path = dir.write("config", R"(
current-context: c
clusters: [{name: k, cluster: {server: "https://flag:1"}}]
contexts: [{name: c, context: {cluster: k}}]
)");
    auto config = serin::kube::load_default_config(path.string());
    REQUIRE(config.has_value());
    CHECK(config->server == "https://flag:1");
}

TEST_CASE("load_default_config selects the named context and records its user entry") {
    TempDir dir;
    auto path = dir.write("config", R"(
current-context: a
clusters: [{name: k1, cluster: {server: "https://one:1"}}, {name: k2, cluster: {server: "https://two:2"}}]
users: [{name: alice, user: {token: t1}}, {name: bob, user: {token: t2}}]
contexts:
- {name: a, context: {cluster: k1, user: alice}}
- {name: b, context: {cluster: k2, user: bob, namespace: team-b}}
)");
    auto current = serin::kube::load_default_config(path.string());
    REQUIRE(current.has_value());
    CHECK(current->server == "https://one:1");
    CHECK(current->user == "alice");
    CHECK(current->default_namespace == "default");
    auto named = serin::kube::load_default_config(path.string(), "b");
    REQUIRE(named.has_value());
    CHECK(named->server == "https://two:2");
    CHECK(named->user == "bob");
    CHECK(named->token == "t2");
    CHECK(named->default_namespace == "team-b");
    CHECK_THAT(error_message(serin::kube::load_default_config(path.string(), "c")),
               Catch::Contains("context \"c\" not found"));
}

TEST_CASE("in-cluster configuration from the environment and the service account files") {
    TempDir dir;
    InClusterPaths paths;
    paths.token_file = dir.write("token", "sa-token");
    paths.ca_file = dir.write("ca.crt", kCa);
    paths.namespace_file = dir.write("namespace", "serin-system\n");

    SECTION("IPv4 host") {
        ScopedEnv host("SERIN_TEST_HOST", "10.96.0.1");
        ScopedEnv port("SERIN_TEST_PORT", "443");
        paths.host_env = host.name();
        paths.port_env = port.name();
        auto config = load_in_cluster(paths);
        REQUIRE(config.has_value());
        CHECK(config->server == "https://10.96.0.1:443");
        CHECK(config->token.empty());  // the client reads the file, and re-reads it on rotation
        CHECK(config->token_file == paths.token_file);
        CHECK(config->tls.ca_pem == kCa);
        CHECK(config->default_namespace == "serin-system");
    }
    SECTION("IPv6 host is bracketed") {
        ScopedEnv host("SERIN_TEST_HOST", "fd00:10:96::1");
        ScopedEnv port("SERIN_TEST_PORT", "6443");
        paths.host_env = host.name();
        paths.port_env = port.name();
        auto config = load_in_cluster(paths);
        REQUIRE(config.has_value());
        CHECK(config->server == "https://[fd00:10:96::1]:6443");
    }
    SECTION("no namespace file") {
        ScopedEnv host("SERIN_TEST_HOST", "10.96.0.1");
        ScopedEnv port("SERIN_TEST_PORT", "443");
        paths.host_env = host.name();
        paths.port_env = port.name();
        paths.namespace_file = dir.path() / "absent";
        auto config = load_in_cluster(paths);
        REQUIRE(config.has_value());
        CHECK(config->default_namespace == "default");
    }
    SECTION("environment not set") {
        ScopedEnv host("SERIN_TEST_HOST", nullptr);
        ScopedEnv port("SERIN_TEST_PORT", "443");
        paths.host_env = host.name();
        paths.port_env = port.name();
        CHECK(error_message(load_in_cluster(paths)) ==
              "in-cluster config: " + host.name() + " is not set (not running in a pod?)");
    }
    SECTION("missing token or CA file") {
        ScopedEnv host("SERIN_TEST_HOST", "10.96.0.1");
        ScopedEnv port("SERIN_TEST_PORT", "443");
        paths.host_env = host.name();
        paths.port_env = port.name();
        InClusterPaths no_token = paths;
        no_token.token_file = dir.path() / "no-token";
        CHECK_THAT(error_message(load_in_cluster(no_token)),
                   Catch::Contains("no-token does not exist"));
        InClusterPaths no_ca = paths;
        no_ca.ca_file = dir.path() / "no-ca.crt";
        CHECK_THAT(error_message(load_in_cluster(no_ca)),
                   Catch::Contains("cannot read the CA certificate"));
    }
}

TEST_CASE("in-cluster values are checked: host, port, CA size and namespace name each named") {
    using serin::kube::make_in_cluster_config;
    auto message = [](auto result) { return error_message(std::move(result)); };
    CHECK(make_in_cluster_config("10.96.0.1", "443", "pem", std::nullopt)->server ==
          "https://10.96.0.1:443");
    CHECK(make_in_cluster_config("[fd00::1]", "443", "pem", std::nullopt)->server ==
          "https://[fd00::1]:443");
    CHECK(make_in_cluster_config("kubernetes.default.svc", "6443", "pem", "team-a\n")
              ->default_namespace == "team-a");
    CHECK(make_in_cluster_config("h", "1", "pem", "  \n")->default_namespace == "default");
    CHECK(make_in_cluster_config("h", "0443", "pem", std::nullopt)->server == "https://h:443");
    CHECK_THAT(message(make_in_cluster_config("fd00::1%eth0", "443", "pem", std::nullopt)),
               Catch::Contains("KUBERNETES_SERVICE_HOST is not a host name or IP address"));
    CHECK_THAT(message(make_in_cluster_config("fd00::0:96::1", "443", "pem", std::nullopt)),
               Catch::Contains("KUBERNETES_SERVICE_HOST is not a host name or IP address"));

    CHECK(message(make_in_cluster_config("evil.example/path?", "443", "pem", std::nullopt)) ==
          "in-cluster config: KUBERNETES_SERVICE_HOST is not a host name or IP address: "
          "\"evil.example/path?\"");
    CHECK(message(make_in_cluster_config("user@host", "443", "pem", std::nullopt)) ==
          "in-cluster config: KUBERNETES_SERVICE_HOST is not a host name or IP address: "
          "\"user@host\"");
    CHECK(message(make_in_cluster_config("10.0.0.1", "443/x", "pem", std::nullopt)) ==
          "in-cluster config: KUBERNETES_SERVICE_PORT is not a port (1-65535): \"443/x\"");
    CHECK_THAT(message(make_in_cluster_config("10.0.0.1", "70000", "pem", std::nullopt)),
               Catch::Contains("KUBERNETES_SERVICE_PORT is not a port"));
    CHECK_THAT(message(make_in_cluster_config("10.0.0.1", "0", "pem", std::nullopt)),
               Catch::Contains("KUBERNETES_SERVICE_PORT is not a port"));
    CHECK_THAT(message(make_in_cluster_config("10.0.0.1", "443", "", std::nullopt)),
               Catch::EndsWith("ca.crt is empty"));
    CHECK_THAT(message(make_in_cluster_config("10.0.0.1", "443",
                                              std::string(1024 * 1024 + 1, 'x'), std::nullopt)),
               Catch::EndsWith("ca.crt is larger than 1048576 bytes"));
    // A value with control bytes is shown with them replaced and cut short.
    CHECK_THAT(message(make_in_cluster_config("10.0.0.1", "443", "pem",
                                              "Bad_Name\x01" + std::string(100, 'a'))),
               Catch::EndsWith("does not hold a namespace name: \"Bad_Name?" +
                               std::string(55, 'a') + "...\""));
}

TEST_CASE("in-cluster: a CA file larger than 1 MiB is refused without reading it all") {
    TempDir dir;
    InClusterPaths paths;
    paths.token_file = dir.write("token", "sa-token");
    paths.ca_file = dir.write("ca.crt", std::string(3 * 1024 * 1024, 'x'));
    paths.namespace_file = dir.path() / "absent";
    ScopedEnv host("SERIN_TEST_HOST", "10.96.0.1");
    ScopedEnv port("SERIN_TEST_PORT", "443");
    paths.host_env = host.name();
    paths.port_env = port.name();
    CHECK_THAT(error_message(load_in_cluster(paths)),
               Catch::EndsWith("is larger than 1048576 bytes"));
}

TEST_CASE("kubeconfig: nesting and size are bounded before the YAML parser sees the text") {
    const std::string deep_flow =
        "clusters: " + std::string(100'000, '[') + std::string(100'000, ']');
    std::string deep_block = "clusters:\n";
    for (int i = 0; i < 2'000; ++i) {
        deep_block +=
            std::string(static_cast<std::size_t>(i + 1), ' ') + "k" + std::to_string(i) + ":\n";
    }
    const std::string dashes = std::string("clusters:\n") + [] {
        std::string s;
        for (int i = 0; i < 5'000; ++i) {
            s += "- ";
        }
        return s + "x\n";
    }();
    for (const std::string* text :
         std::vector<const std::string*>{&deep_flow, &deep_block, &dashes}) {
        const auto loaded = serin::kube::parse_kubeconfig(*text, "/tmp/deep.yaml");
        REQUIRE_FALSE(loaded.has_value());
        CHECK(loaded.error().kind == ErrorKind::kInvalid);
        CHECK_THAT(loaded.error().message,
                   Catch::StartsWith("kubeconfig /tmp/deep.yaml: nested deeper"));
    }
    // Brackets in quoted strings and comments do not count.
    const std::string quoted =
        "# " + std::string(200, '[') + "\nname: '" + std::string(200, '{') + "'\nclusters: []\n";
    const auto loaded = serin::kube::parse_kubeconfig(quoted, "/tmp/quoted.yaml");
    REQUIRE_FALSE(loaded.has_value());
    CHECK_THAT(loaded.error().message, !Catch::Contains("nested deeper"));
    const auto huge =
        serin::kube::parse_kubeconfig(std::string(5 * 1024 * 1024, ' '), "/tmp/huge.yaml");
    REQUIRE_FALSE(huge.has_value());
    CHECK_THAT(huge.error().message, Catch::Contains("larger than"));
}
