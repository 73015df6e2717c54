// kubectl-serin's requests: the CanaryRequest it creates, who it says asked, and how a 403
// reads (cli/request).
#include <catch2/catch.hpp>

#include "cli/request.hpp"
#include "platform/core/base64.hpp"
#include "tests/support/test_certs.hpp"

namespace {

using Json = nlohmann::json;
namespace cli = serin::cli;

Json canary() {
    return {{"apiVersion", "flagger.app/v1beta1"},
            {"kind", "Canary"},
            {"metadata", {{"name", "podinfo"}, {"namespace", "test"}, {"uid", "u-123"}}}};
}

std::string base64url(const std::string& text) {
    std::string b = serin::encode_base64(text);
    for (char& c : b) {
        c = c == '+' ? '-' : c == '/' ? '_' : c;
    }
    while (!b.empty() && b.back() == '=') {
        b.pop_back();
    }
    return b;
}

}  // namespace

TEST_CASE("a CanaryRequest carries the docs' shape: generateName, owner, spec") {
    Json r = cli::make_request(canary(), "promote", true, "alice", "hotfix verified");
    CHECK(r["apiVersion"] == "serin.dev/v1alpha1");
    CHECK(r["kind"] == "CanaryRequest");
    CHECK(r["metadata"]["generateName"] == "podinfo-promote-");
    CHECK(r["metadata"]["namespace"] == "test");
    CHECK(r["metadata"]["ownerReferences"] ==
          Json::array({{{"apiVersion", "flagger.app/v1beta1"},
                        {"kind", "Canary"},
                        {"name", "podinfo"},
                        {"uid", "u-123"},
                        {"controller", false}}}));
    CHECK(r["spec"] == Json{{"canaryRef", {{"name", "podinfo"}}},
                            {"action", "promote"},
                            {"full", true},
                            {"requestedBy", "alice"},
                            {"reason", "hotfix verified"}});
    // full belongs to promote only; no reason, no field.
    Json abort = cli::make_request(canary(), "abort", true, "bob", "");
    CHECK(abort["metadata"]["generateName"] == "podinfo-abort-");
    CHECK(!abort["spec"].contains("full"));
    CHECK(!abort["spec"].contains("reason"));
}

TEST_CASE("requestedBy is the certificate's CN, else the token's ServiceAccount, else the user") {
    serin::kube::ClusterConfig config;
    config.user = "admin-entry";
    CHECK(cli::requested_by(config) == "admin-entry");

    config.token = "eyJhbGciOiJSUzI1NiJ9." +
                   base64url(R"({"iss":"kubernetes/serviceaccount","sub":"system:serviceaccount:ci:deployer"})") +
                   ".c2lnbmF0dXJl";
    CHECK(cli::token_subject(config.token) == "system:serviceaccount:ci:deployer");
    CHECK(cli::requested_by(config) == "system:serviceaccount:ci:deployer");

    config.tls.client_cert_pem = serin::test::test_pki().client.cert_pem;
    CHECK(cli::certificate_common_name(config.tls.client_cert_pem) == "serin-test-client");
    CHECK(cli::requested_by(config) == "serin-test-client");

    // An opaque token names nobody; the kubeconfig's user entry does.
    serin::kube::ClusterConfig opaque;
    opaque.token = "abcdef0123456789";
    opaque.user = "ci";
    CHECK(cli::token_subject(opaque.token).empty());
    CHECK(cli::requested_by(opaque) == "ci");
    CHECK(cli::requested_by(serin::kube::ClusterConfig{}) == "unknown");
}

TEST_CASE("a 403 names the missing permission from the API server's message") {
    const std::string message =
        "canaryrequests.serin.dev is forbidden: User \"system:serviceaccount:t-1:viewer\" cannot "
        "create resource \"canaryrequests\" in API group \"serin.dev\" in the namespace \"t-1\"";
    CHECK(cli::missing_permission(message) == "create canaryrequests.serin.dev in namespace t-1");
    CHECK(cli::missing_permission("namespaces is forbidden: User \"x\" cannot list resource "
                                  "\"namespaces\" in API group \"\" at the cluster scope") ==
          "list namespaces at the cluster scope");
    CHECK(cli::missing_permission("something else").empty());

    serin::Error error = serin::fail(serin::ErrorKind::kForbidden, message);
    error.http_status = 403;
    CHECK(cli::describe_failure(error, "create a promote request for canary t-1/podinfo") ==
          "cannot create a promote request for canary t-1/podinfo: permission denied: you lack "
          "`create canaryrequests.serin.dev in namespace t-1`");
    serin::Error missing = serin::fail(serin::ErrorKind::kNotFound,
                                       "canaries.flagger.app \"nope\" not found");
    CHECK(cli::describe_failure(missing, "get canary t-1/nope") ==
          "cannot get canary t-1/nope: not found: canaries.flagger.app \"nope\" not found");
}
