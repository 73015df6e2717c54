// kubectl-serin against the devcluster's API server: get, history and explain read a Canary
// whose status the test writes through the status subresource and a CanaryHistory it creates;
// the request verbs create proper CanaryRequests; a read-only ServiceAccount can get but not
// promote. The binary is run as a user runs it, with a kubeconfig.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "devcluster/process.hpp"
#include "platform/core/time_format.hpp"
#include "tests/support/cluster.hpp"

namespace {

namespace fs = std::filesystem;
namespace kube = serin::kube;
using serin::testing::Json;
using serin::testing::run;
using namespace std::chrono_literals;
using Catch::Contains;

const kube::ResourceType& kRequests = kube::types::canary_requests();
const kube::ResourceType& kHistories = kube::types::canary_histories();

Json fixture(const std::string& name) {
    std::ifstream in(std::string(SERIN_SOURCE_DIR) + "/tests/data/cli/" + name);
    REQUIRE(in.good());
    std::stringstream text;
    text << in.rdbuf();
    return Json::parse(text.str());
}

/// One test's namespace with podinfo's Canary (status written as a controller writes it), its
/// CanaryHistory and a Warning Event about it.
class CliWorld {
public:
    CliWorld() : client_(serin::testing::make_admin_client(io_)) {}

    const std::string& ns() const { return ns_.name(); }
    boost::asio::io_context& io() { return io_; }
    kube::KubeClient& client() { return *client_; }
    const fs::path& kubeconfig() const { return cluster_.kubeconfig_path(); }

    /// Creates podinfo from the fixture and writes its status through the subresource.
    Json create_canary() {
        Json canary = fixture("canary_progressing.json");
        Json status = canary["status"];
        canary.erase("status");
        canary["metadata"] = {{"name", "podinfo"}, {"namespace", ns()}};
        auto created = run(io_, client_->create(kube::types::canaries(), ns(), canary));
        REQUIRE(created.has_value());
        Json with_status = *created;
        with_status["status"] = status;
        kube::WriteOptions options;
        options.subresource = "status";
        auto updated = run(io_, client_->update(kube::types::canaries(), ns(), with_status, options));
        REQUIRE(updated.has_value());
        REQUIRE(updated->at("status").at("canaryWeight") == 20);
        return *updated;
    }

    void create_history() {
        Json history = fixture("history.json");
        history["metadata"] = {{"name", "podinfo"}, {"namespace", ns()}};
        auto created = run(io_, client_->create(kHistories, ns(), history));
        REQUIRE(created.has_value());
    }

    void create_warning(const std::string& message) {
        const std::string now = serin::format_time(std::chrono::system_clock::now());
        Json event = {{"apiVersion", "v1"},
                      {"kind", "Event"},
                      {"metadata", {{"name", "podinfo.readiness"}, {"namespace", ns()}}},
                      {"involvedObject",
                       {{"apiVersion", "flagger.app/v1beta1"},
                        {"kind", "Canary"},
                        {"name", "podinfo"},
                        {"namespace", ns()}}},
                      {"type", "Warning"},
                      {"reason", "Synced"},
                      {"message", message},
                      {"source", {{"component", "flagger"}}},
                      {"count", 1},
                      {"firstTimestamp", now},
                      {"lastTimestamp", now}};
        auto created = run(io_, client_->create(kube::types::events(), ns(), event));
        REQUIRE(created.has_value());
    }

    std::vector<Json> requests() {
        auto listed = run(io_, client_->list(kRequests, ns()));
        REQUIRE(listed.has_value());
        return listed->items;
    }

private:
    serin::testing::TestCluster& cluster_ = serin::testing::shared_cluster();
    serin::testing::TestNamespace ns_{cluster_, "cli"};
    boost::asio::io_context io_;
    std::unique_ptr<kube::RestKubeClient> client_;
};

serin::devcluster::CommandResult kubectl_serin(const fs::path& kubeconfig,
                                               std::vector<std::string> args) {
    args.insert(args.begin(), {"--kubeconfig", kubeconfig.string()});
    auto result = serin::devcluster::run_command(SERIN_CLI_BINARY, args, 60s);
    REQUIRE(result.has_value());
    return *result;
}

}  // namespace

TEST_CASE("kubectl-serin get, history and explain read the canary, its history and its events") {
    CliWorld w;
    w.create_canary();
    w.create_history();
    w.create_warning("podinfo." + w.ns() +
                     " not ready: waiting for rollout to finish: 1 of 2 updated replicas are "
                     "available");

    auto get = kubectl_serin(w.kubeconfig(), {"get", "-n", w.ns()});
    INFO(get.output);
    REQUIRE(get.exit_code == 0);
    CHECK_THAT(get.output, Contains("NAME      PHASE         WEIGHT   STEP   FAILED   CHECKS"));
    CHECK_THAT(get.output, Contains("podinfo   Progressing   20       2/5    1        "
                                    "request-success-rate=81.39! request-duration=312.5"));
    CHECK(get.output.find('\x1b') == std::string::npos);  // not a terminal: no colour

    auto all = kubectl_serin(w.kubeconfig(), {"get", "-A"});
    INFO(all.output);
    REQUIRE(all.exit_code == 0);
    CHECK_THAT(all.output, Contains("NAMESPACE"));
    CHECK_THAT(all.output, Contains(w.ns() + "   podinfo"));

    auto json = kubectl_serin(w.kubeconfig(), {"get", "podinfo", "-n", w.ns(), "-o", "json"});
    INFO(json.output);
    REQUIRE(json.exit_code == 0);
    Json row = Json::parse(json.output);
    CHECK(row["namespace"] == w.ns());
    CHECK(row["phase"] == "Progressing");
    CHECK(row["weight"] == 20);
    CHECK(row["step"] == Json{{"index", 2}, {"total", 5}});
    CHECK(row["failedChecks"] == 1);

    auto history = kubectl_serin(w.kubeconfig(), {"history", "podinfo", "-n", w.ns()});
    INFO(history.output);
    REQUIRE(history.exit_code == 0);
    auto newest = history.output.find("podinfo:6.0.1");
    auto oldest = history.output.find("podinfo:6.0.0");
    REQUIRE(newest != std::string::npos);
    REQUIRE(oldest != std::string::npos);
    CHECK(newest < oldest);
    auto steps = kubectl_serin(w.kubeconfig(), {"history", "podinfo", "-n", w.ns(), "--steps"});
    CHECK_THAT(steps.output, Contains("request-success-rate=81.39!"));
    auto yaml = kubectl_serin(w.kubeconfig(), {"history", "podinfo", "-n", w.ns(), "-o", "yaml"});
    CHECK_THAT(yaml.output, Contains("image: ghcr.io/stefanprodan/podinfo:6.0.1"));

    auto explain = kubectl_serin(w.kubeconfig(), {"explain", "podinfo", "-n", w.ns()});
    INFO(explain.output);
    REQUIRE(explain.exit_code == 0);
    CHECK_THAT(explain.output, Contains("metric check request-success-rate failed: 81.39 is "
                                        "below its minimum 99"));
    CHECK_THAT(explain.output, Contains("waiting for readiness: podinfo." + w.ns() + " not ready"));

    // Errors name the object and exit 3.
    auto missing = kubectl_serin(w.kubeconfig(), {"status", "nope", "-n", w.ns()});
    CHECK(missing.exit_code == 3);
    CHECK_THAT(missing.output, Contains("cannot get canary " + w.ns() + "/nope: not found"));
}

TEST_CASE("the request verbs create CanaryRequests owned by the canary, naming who asked") {
    CliWorld w;
    const Json canary = w.create_canary();
    const std::string uid = canary["metadata"]["uid"];

    auto promoted = kubectl_serin(
        w.kubeconfig(), {"promote", "podinfo", "-n", w.ns(), "--full", "--reason", "verified"});
    INFO(promoted.output);
    REQUIRE(promoted.exit_code == 0);
    CHECK_THAT(promoted.output, Contains("canaryrequest.serin.dev/podinfo-promote-"));
    for (const char* action : {"abort", "pause", "resume", "retry"}) {
        auto r = kubectl_serin(w.kubeconfig(), {action, "podinfo", "-n", w.ns()});
        INFO(r.output);
        REQUIRE(r.exit_code == 0);
    }
    auto requests = w.requests();
    REQUIRE(requests.size() == 5);
    std::set<std::string> actions;
    for (const Json& r : requests) {
        const std::string action = r["spec"]["action"];
        actions.insert(action);
        const std::string name = r["metadata"]["name"];
        CHECK(name.rfind("podinfo-" + action + "-", 0) == 0);
        CHECK(name.size() > ("podinfo-" + action + "-").size());
        const Json& owner = r["metadata"]["ownerReferences"].at(0);
        CHECK(owner["kind"] == "Canary");
        CHECK(owner["apiVersion"] == "flagger.app/v1beta1");
        CHECK(owner["name"] == "podinfo");
        CHECK(owner["uid"] == uid);
        CHECK(owner["controller"] == false);
        CHECK(r["spec"]["canaryRef"]["name"] == "podinfo");
        // The devcluster's admin kubeconfig names its user entry serin-admin; its token is
        // opaque, so the entry's name is who asked.
        CHECK(r["spec"]["requestedBy"] == "serin-admin");
        if (action == "promote") {
            CHECK(r["spec"]["full"] == true);
            CHECK(r["spec"]["reason"] == "verified");
        }
    }
    CHECK(actions == std::set<std::string>{"promote", "abort", "pause", "resume", "retry"});
}

TEST_CASE("a request waited for exits 1 when refused and 2 when nobody answers in time") {
    CliWorld w;
    w.create_canary();
    // Nobody answers: the wait ends at its timeout with exit 2.
    auto unanswered = kubectl_serin(w.kubeconfig(), {"pause", "podinfo", "-n", w.ns(), "--wait",
                                                     "--timeout", "2s"});
    INFO(unanswered.output);
    CHECK(unanswered.exit_code == 2);
    CHECK_THAT(unanswered.output, Contains("timed out waiting for serin to handle canaryrequest"));

    // The test plays serin's part: it refuses the request through the status subresource.
    const fs::path log = fs::temp_directory_path() / ("kubectl-serin-" + w.ns() + ".log");
    auto process = serin::devcluster::Process::spawn(
        {"kubectl-serin", SERIN_CLI_BINARY,
         {"--kubeconfig", w.kubeconfig().string(), "retry", "podinfo", "-n", w.ns(), "--wait",
          "--timeout", "60s"},
         {}, log, {}});
    REQUIRE(process.has_value());
    auto found = run(w.io(), serin::testing::wait_for_objects(
                                 w.client(), kRequests, w.ns(), "",
                                 [](const serin::testing::ObjectMap& objects) {
                                     for (const auto& [name, r] : objects) {
                                         if (name.rfind("podinfo-retry-", 0) == 0) {
                                             return true;
                                         }
                                     }
                                     return false;
                                 }));
    REQUIRE(found.has_value());
    Json request;
    for (const auto& [name, r] : *found) {
        if (name.rfind("podinfo-retry-", 0) == 0) {
            request = r;
        }
    }
    request["status"] = {{"phase", "Refused"},
                         {"message", "nothing to retry: podinfo is releasing"},
                         {"handledTime", serin::format_time(std::chrono::system_clock::now())}};
    kube::WriteOptions status;
    status.subresource = "status";
    auto refused = run(w.io(), w.client().update(kRequests, w.ns(), request, status));
    REQUIRE(refused.has_value());
    REQUIRE(process->wait_for_exit(30s));
    INFO(process->log_tail());
    CHECK(process->describe_exit() == "exited with status 1");
    CHECK_THAT(process->log_tail(), Contains("refused: nothing to retry: podinfo is releasing"));
    fs::remove(log);
}

TEST_CASE("a read-only ServiceAccount can get but promote fails naming the missing permission") {
    CliWorld w;
    w.create_canary();
    auto create = [&](const kube::ResourceType& type, const Json& object) {
        auto created = run(w.io(), w.client().create(type, w.ns(), object));
        INFO(object.dump());
        REQUIRE(created.has_value());
    };
    const kube::ResourceType roles{"rbac.authorization.k8s.io", "v1", "roles", "Role", true};
    const kube::ResourceType bindings{"rbac.authorization.k8s.io", "v1", "rolebindings",
                                      "RoleBinding", true};
    create(kube::types::service_accounts(),
           {{"apiVersion", "v1"}, {"kind", "ServiceAccount"}, {"metadata", {{"name", "viewer"}}}});
    create(roles,
           {{"apiVersion", "rbac.authorization.k8s.io/v1"},
            {"kind", "Role"},
            {"metadata", {{"name", "serin-read-only"}}},
            {"rules",
             {{{"apiGroups", {"flagger.app"}},
               {"resources", {"canaries"}},
               {"verbs", {"get", "list", "watch"}}},
              {{"apiGroups", {"serin.dev"}},
               {"resources", {"canaryrequests", "canaryhistories"}},
               {"verbs", {"get", "list", "watch"}}},
              {{"apiGroups", {""}}, {"resources", {"events"}}, {"verbs", {"get", "list", "watch"}}}}}});
    create(bindings, {{"apiVersion", "rbac.authorization.k8s.io/v1"},
                      {"kind", "RoleBinding"},
                      {"metadata", {{"name", "viewer"}}},
                      {"roleRef",
                       {{"apiGroup", "rbac.authorization.k8s.io"},
                        {"kind", "Role"},
                        {"name", "serin-read-only"}}},
                      {"subjects", {{{"kind", "ServiceAccount"}, {"name", "viewer"},
                                     {"namespace", w.ns()}}}}});
    // Its token from the TokenRequest API, as the kubelet gets one; then a kubeconfig for it.
    kube::ResourceType token_requests = kube::types::service_accounts();
    token_requests.resource = "serviceaccounts/viewer/token";
    auto token = run(w.io(), w.client().create(token_requests, w.ns(),
                                               {{"apiVersion", "authentication.k8s.io/v1"},
                                                {"kind", "TokenRequest"},
                                                {"spec", {{"expirationSeconds", 3600}}}}));
    REQUIRE(token.has_value());
    const auto& cluster = serin::testing::shared_cluster();
    const fs::path dir = fs::temp_directory_path() / ("kubectl-serin-" + w.ns());
    fs::create_directories(dir);
    std::ofstream(dir / "ca.crt") << cluster.ca_pem();
    const fs::path kubeconfig = dir / "kubeconfig";
    std::ofstream(kubeconfig) << "apiVersion: v1\nkind: Config\nclusters:\n- name: dev\n"
                              << "  cluster:\n    server: " << cluster.config().server
                              << "\n    certificate-authority: " << (dir / "ca.crt").string()
                              << "\nusers:\n- name: viewer-entry\n  user:\n    token: "
                              << token->at("status").at("token").get<std::string>()
                              << "\ncontexts:\n- name: other\n  context: {cluster: dev, user: "
                                 "viewer-entry}\n- name: viewer\n  context:\n    cluster: dev\n"
                              << "    user: viewer-entry\n    namespace: " << w.ns()
                              << "\ncurrent-context: other\n";

    // --context picks the context whose namespace is the test's: no -n needed.
    auto get = kubectl_serin(kubeconfig, {"--context", "viewer", "get"});
    INFO(get.output);
    CHECK(get.exit_code == 0);
    CHECK_THAT(get.output, Contains("podinfo   Progressing"));

    auto promote = kubectl_serin(kubeconfig, {"promote", "podinfo", "--context", "viewer"});
    INFO(promote.output);
    CHECK(promote.exit_code == 1);
    CHECK_THAT(promote.output, Contains("cannot create a promote request for canary " + w.ns() +
                                        "/podinfo: permission denied: you lack `create "
                                        "canaryrequests.serin.dev in namespace " +
                                        w.ns() + "`"));
    CHECK(w.requests().empty());
    fs::remove_all(dir);
}
