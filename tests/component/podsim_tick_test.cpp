// PodSim on the fake API server and a ManualClock: what its ticks re-evaluate. The real-cluster
// behaviour (Deployments becoming available, crash loops seen by the controller-manager) is in
// tests/integration/podsim_test.cpp; here time is in the test's hands, so "every tick" and "only
// at the full resync" can be told apart.
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <exception>
#include <memory>
#include <optional>
#include <string>

#include "devcluster/podsim/podsim.hpp"
#include "tests/support/fake_kube_client.hpp"
#include "tests/support/fake_loop.hpp"

namespace {

namespace asio = boost::asio;
using namespace serin;
using namespace serin::testing;
using kube::Json;

/// The shared loop, with the ticks of podsim's clock and reads of the pods it writes.
struct Fixture : FakeLoop {
    /// One second of ticks at a time, each run to idle.
    void tick(int seconds) {
        for (int s = 0; s < seconds; ++s) {
            clock.advance(std::chrono::seconds{1});
            run_until_idle();
        }
    }

    Json pod(const std::string& name) {
        auto got = run(client->get(kube::types::pods(), "ns", name));
        REQUIRE(got.has_value());
        return *got;
    }
};

Json make_pod(const std::string& name, bool crash) {
    Json pod = {{"apiVersion", "v1"},
                {"kind", "Pod"},
                {"metadata", {{"name", name}, {"namespace", "ns"}}},
                {"spec", {{"containers", {{{"name", "app"}, {"image", "app:1"}}}}}}};
    if (crash) {
        pod["metadata"]["annotations"] = {{std::string(podsim::kCrashAnnotation), "true"}};
    }
    return pod;
}

std::int64_t restarts(const Json& pod) {
    return pod.value("/status/containerStatuses/0/restartCount"_json_pointer, std::int64_t{-1});
}

/// Runs a PodSim on the fixture until the test ends, then cancels it and waits for it to end.
class Running {
public:
    Running(Fixture& f, podsim::PodSimOptions options)
        : f_(f), client_(f.api.client()), sim_(*client_, f.clock, std::move(options)) {
        asio::co_spawn(f_.io, sim_.run(),
                       asio::bind_cancellation_slot(
                           stop_.slot(), [this](const std::exception_ptr&) { ended_ = true; }));
        f_.run_until_idle();
    }
    ~Running() {
        stop_.emit(asio::cancellation_type::terminal);
        f_.run_until_idle();
        CHECK(ended_);
    }
    Running(const Running&) = delete;
    Running& operator=(const Running&) = delete;

private:
    Fixture& f_;
    std::unique_ptr<FakeKubeClient> client_;
    podsim::PodSim sim_;
    asio::cancellation_signal stop_;
    bool ended_ = false;
};

TEST_CASE("podsim re-evaluates a crash-looping pod at every tick and so its restarts grow") {
    Fixture f;
    REQUIRE(
        f.run(f.client->create(kube::types::pods(), "ns", make_pod("crashy", true))).has_value());
    podsim::PodSimOptions options;
    options.sim.crash_restart_interval = std::chrono::seconds{2};
    options.full_resync_ticks = 1000;  // far away: only the tick's own look can grow the count
    Running sim(f, options);
    REQUIRE(restarts(f.pod("crashy")) == 1);

    f.tick(2);
    CHECK(restarts(f.pod("crashy")) == 2);
    f.tick(4);
    CHECK(restarts(f.pod("crashy")) == 4);
}

TEST_CASE("podsim's full resync looks again at every pod, the quiet ones too") {
    Fixture f;
    REQUIRE(
        f.run(f.client->create(kube::types::pods(), "ns", make_pod("quiet", false))).has_value());
    // podsim's first status write meets a conflict, which it drops (the newer pod is expected
    // through the watch); none comes, as nothing changed, so only the full resync writes it.
    f.api.fail_next(writes_to(kube::types::pods(), "quiet"), 1, ErrorKind::kConflict);
    podsim::PodSimOptions options;
    options.full_resync_ticks = 3;
    Running sim(f, options);
    CHECK(f.api.faults_pending() == 0);
    CHECK_FALSE(f.pod("quiet").contains("/status/containerStatuses"_json_pointer));

    f.tick(2);
    CHECK_FALSE(f.pod("quiet").contains("/status/containerStatuses"_json_pointer));
    f.tick(1);
    CHECK(f.pod("quiet").value("/status/containerStatuses/0/ready"_json_pointer, false));
}

}  // namespace
