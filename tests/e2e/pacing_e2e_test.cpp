// Persisted pacing (docs/release-engine.md, "Pacing") on the devcluster: serin killed with
// SIGKILL every few seconds through a release still keeps its analysis steps an interval apart,
// because the time of the last step is in the Canary's status. A watcher of its own, outside
// serin, times every step.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <thread>

#include "tests/e2e/e2e.hpp"

namespace {

using namespace serin::e2e;
namespace types = serin::kube::types;
using Clock = std::chrono::steady_clock;

const std::string kV1 = "ghcr.io/stefanprodan/podinfo:6.0.0";
const std::string kV2 = "ghcr.io/stefanprodan/podinfo:6.0.1";

/// One version of the canary's status as the watcher saw it, and when.
struct Seen {
    double at = 0;  ///< seconds since the image bump
    std::string phase;
    int iterations = 0;
    int weight = 0;
};

int int_at(const Json& canary, const std::string& pointer) {
    const Json value = at(canary, pointer);
    return value.is_number() ? value.get<int>() : 0;
}

}  // namespace

TEST_CASE("serin killed every 3 s through a 10 s-interval release keeps its steps an interval apart") {
    constexpr double kInterval = 10;
    constexpr double kTolerance = 1;  // watch delivery on a loaded machine
    constexpr int kIterations = 3;
    Scenario s;
    SerinProcess& serin = s.start_serin();
    s.create(types::deployments(), s.deployment(kV1));
    s.create(types::canaries(),
             s.canary({{"interval", "10s"}, {"threshold", 2}, {"iterations", kIterations}}));
    s.wait_phase("Initialized");

    // The watcher: its own client on its own thread, recording each change of phase, iterations
    // or weight until the release ends.
    std::vector<Seen> seen;
    std::atomic<bool> ended{false};
    std::string watch_error;
    const auto bumped = Clock::now();
    s.bump_image(kV2);
    std::thread watcher([&] {
        boost::asio::io_context io;
        auto client = serin::testing::make_admin_client(io, s.cluster());
        auto watched = serin::testing::run(
            io,
            serin::testing::wait_for_object(
                *client, types::canaries(), s.ns(), "podinfo",
                [&](const Json& c) {
                    Seen now{std::chrono::duration<double>(Clock::now() - bumped).count(),
                             phase(c), int_at(c, "/status/iterations"),
                             int_at(c, "/status/canaryWeight")};
                    if (seen.empty() || seen.back().phase != now.phase ||
                        seen.back().iterations != now.iterations ||
                        seen.back().weight != now.weight) {
                        seen.push_back(now);
                    }
                    return now.phase == "Succeeded" || now.phase == "Failed";
                },
                240s),
            270s);
        if (!watched) {
            watch_error = watched.error().message;
        }
        ended = true;
    });

    // The fault: SIGKILL and a restart every 3 s until the release ends.
    int restarts = 0;
    const auto deadline = Clock::now() + 240s;
    while (!ended && Clock::now() < deadline) {
        if (!s.canary_stays([&](const Json&) { return ended.load(); }, 3s)) {
            break;
        }
        serin.kill();
        serin.start();
        ++restarts;
    }
    watcher.join();
    REQUIRE(watch_error.empty());
    REQUIRE_FALSE(seen.empty());
    CHECK(seen.back().phase == "Succeeded");

    // The paced steps: the start of the run (Progressing), each iteration, the switch of all
    // traffic to the canary (iterations + 1) and the promotion (Promoting).
    std::vector<double> steps;
    std::string timeline;
    for (std::size_t i = 0; i < seen.size(); ++i) {
        const Seen& v = seen[i];
        timeline += std::to_string(v.at) + "s " + v.phase + " it=" + std::to_string(v.iterations) +
                    "; ";
        const Seen* before = i > 0 ? &seen[i - 1] : nullptr;
        const bool started = v.phase == "Progressing" && (before == nullptr ||
                                                          before->phase != "Progressing");
        const bool iterated = before != nullptr && v.iterations > before->iterations;
        const bool promoting = v.phase == "Promoting" && before != nullptr &&
                               before->phase != "Promoting";
        if (started || iterated || promoting) {
            steps.push_back(v.at);
        }
    }
    INFO("restarts " << restarts << "; seen: " << timeline);
    REQUIRE(steps.size() == static_cast<std::size_t>(kIterations + 3));
    double closest = 1e9;
    for (std::size_t i = 1; i < steps.size(); ++i) {
        closest = std::min(closest, steps[i] - steps[i - 1]);
        CHECK(steps[i] - steps[i - 1] >= kInterval - kTolerance);
    }
    const double release = steps.back() - steps.front();
    CHECK(release >= (kIterations + 2) * kInterval - kTolerance);
    CHECK(restarts >= 10);  // about three per interval: steps outlived restarts
    WARN("paced release under SIGKILL every 3 s: " << restarts << " restarts, "
                                                    << steps.size() - 1 << " steps in " << release
                                                    << " s, closest two " << closest << " s apart");
    CHECK(image_of(s.get(types::deployments(), "podinfo-primary")) == kV2);
}
