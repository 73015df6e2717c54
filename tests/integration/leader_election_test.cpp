// Leader election on a real Lease: one leader at a time, takeover after the lease expires when
// the leader dies, a fast hand-over when it releases.
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>

#include "platform/kube/leader_election.hpp"
#include "tests/support/catch_result.hpp"
#include "tests/support/cluster.hpp"

namespace {

namespace asio = boost::asio;
using namespace serin;
using namespace serin::testing;
using namespace std::chrono_literals;

/// One candidate: its elector, a way to kill it, and what its callbacks saw.
struct Candidate {
    kube::LeaderElector elector;
    asio::cancellation_signal kill;
    bool started = false;
    bool stopped = false;
    bool run_ended = false;
    std::vector<std::string> leaders_seen;

    Candidate(kube::KubeClient& client, Clock& clock, kube::LeaderElectionOptions options)
        : elector(client, clock, std::move(options),
                  kube::LeaderCallbacks{[this] { started = true; }, [this] { stopped = true; },
                                        [this](const std::string& id) {
                                            leaders_seen.push_back(id);
                                        }}) {}

    void start(asio::io_context& io) {
        asio::co_spawn(io, elector.run(),
                       asio::bind_cancellation_slot(kill.slot(),
                                                    [this](std::exception_ptr) { run_ended = true; }));
    }
};

kube::LeaderElectionOptions options_for(const std::string& ns, const std::string& identity) {
    kube::LeaderElectionOptions options;
    options.lease_namespace = ns;
    options.lease_name = "serin-leader";
    options.identity = identity;
    options.lease_duration = 2s;
    options.renew_deadline = 1500ms;
    options.retry_period = 200ms;
    return options;
}

/// Runs the io_context until `condition` or the timeout; true when the condition held.
bool run_until(asio::io_context& io, const std::function<bool()>& condition,
               std::chrono::milliseconds timeout) {
    return wait_until([&] {
        io.restart();
        io.run_for(5ms);
        return condition();
    }, timeout, 1ms);
}

}  // namespace

TEST_CASE("one leader at a time and a takeover after the leader dies") {
    asio::io_context io;
    auto client = make_admin_client(io);
    TestNamespace ns;
    Candidate a(*client, shared_cluster().clock(), options_for(ns.name(), "a"));
    Candidate b(*client, shared_cluster().clock(), options_for(ns.name(), "b"));

    a.start(io);
    REQUIRE(run_until(io, [&] { return a.started; }, 10s));
    b.start(io);
    // For twice the lease duration, while a keeps renewing, b never leads.
    CHECK_FALSE(run_until(io, [&] { return b.started; }, 4s));
    CHECK(b.leaders_seen == std::vector<std::string>{"a"});

    // a dies without releasing: b takes over once a's last renewal is a lease duration old.
    a.kill.emit(asio::cancellation_type::terminal);
    auto killed_at = std::chrono::steady_clock::now();
    REQUIRE(run_until(io, [&] { return b.started; }, 10s));
    auto takeover = std::chrono::steady_clock::now() - killed_at;
    CHECK(takeover >= 1500ms);  // not before a's lease could have run out (less one retry)
    CHECK(takeover < 4s);
    CHECK(a.stopped);
    CHECK(a.run_ended);

    auto lease = run(io, client->get(kube::types::leases(), ns.name(), "serin-leader"));
    REQUIRE(lease);
    CHECK(lease->at("spec").at("holderIdentity") == "b");
    CHECK(lease->at("spec").at("leaseTransitions") == 1);
    CHECK(lease->at("spec").at("leaseDurationSeconds") == 2);
    b.kill.emit(asio::cancellation_type::terminal);
    run_until(io, [&] { return b.run_ended; }, 5s);
}

TEST_CASE("a released lease is taken at once instead of after the lease duration") {
    asio::io_context io;
    auto client = make_admin_client(io);
    TestNamespace ns;
    auto long_lease = [&](const std::string& id) {
        auto options = options_for(ns.name(), id);
        options.lease_duration = 30s;  // so only a release can explain a quick hand-over
        options.renew_deadline = 20s;
        return options;
    };
    Candidate a(*client, shared_cluster().clock(), long_lease("a"));
    Candidate b(*client, shared_cluster().clock(), long_lease("b"));
    a.start(io);
    REQUIRE(run_until(io, [&] { return a.started; }, 10s));
    b.start(io);
    REQUIRE(run_until(io, [&] { return !b.leaders_seen.empty(); }, 10s));

    a.kill.emit(asio::cancellation_type::terminal);
    REQUIRE(run_until(io, [&] { return a.run_ended; }, 5s));
    auto released_at = std::chrono::steady_clock::now();
    REQUIRE(run(io, a.elector.release()));
    REQUIRE(run_until(io, [&] { return b.started; }, 10s));
    CHECK(std::chrono::steady_clock::now() - released_at < 5s);
    b.kill.emit(asio::cancellation_type::terminal);
    run_until(io, [&] { return b.run_ended; }, 5s);
}
