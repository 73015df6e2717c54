// LeaderElector against an in-memory Lease: how leadership ends when the elector is cancelled in
// the middle of a renewal (a SIGTERM that arrives while the update is on the wire).
#include "platform/kube/leader_election.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <functional>
#include <optional>

#include "platform/core/clock.hpp"
#include "tests/support/unimplemented_kube_client.hpp"

namespace asio = boost::asio;
using namespace std::chrono_literals;
using serin::ErrorKind;
using serin::Result;

namespace {

using Json = nlohmann::json;

/// One Lease in memory. `during_update` runs inside each update, before it is answered; while
/// `hang` is set, updates wait on `clock` for an hour (a slow API server) unless cancelled.
class LeaseStore final : public serin::testing::UnimplementedKubeClient {
public:
    explicit LeaseStore(serin::Clock* clock = nullptr) : clock_(clock) {}
    std::optional<Json> lease;
    std::function<void()> during_update;
    int updates = 0;
    bool hang = false;
    bool last_write_unthrottled = false;

    asio::awaitable<Result<Json>> get(serin::kube::ResourceType, std::string,
                                      std::string) override {
        if (!lease) {
            co_return serin::fail(ErrorKind::kNotFound, "leases \"serin\" not found");
        }
        co_return Result<Json>(boost::system::in_place_value, *lease);
    }
    asio::awaitable<Result<Json>> create(serin::kube::ResourceType, std::string, Json body,
                                         serin::kube::WriteOptions options) override {
        last_write_unthrottled = options.unthrottled;
        lease = std::move(body);
        co_return Result<Json>(boost::system::in_place_value, *lease);
    }
    asio::awaitable<Result<Json>> update(serin::kube::ResourceType, std::string, Json body,
                                         serin::kube::WriteOptions options) override {
        ++updates;
        last_write_unthrottled = options.unthrottled;
        if (during_update) {
            during_update();
        }
        if (hang && clock_ != nullptr) {
            const bool slept = co_await clock_->sleep_for(std::chrono::hours{1});
            if (!slept) {
                co_return serin::fail(ErrorKind::kCancelled, "cancelled");
            }
        }
        lease = std::move(body);
        co_return Result<Json>(boost::system::in_place_value, *lease);
    }

private:
    serin::Clock* clock_;
};

serin::kube::LeaderElectionOptions options() {
    serin::kube::LeaderElectionOptions o;
    o.lease_namespace = "test";
    o.lease_name = "serin";
    o.identity = "me";
    o.lease_duration = 15s;
    o.renew_deadline = 10s;
    o.retry_period = 2s;
    return o;
}

}  // namespace

TEST_CASE("cancelled while a renewal is in flight, the elector stops leading instead of renewing on") {
    asio::io_context io;
    serin::ManualClock clock;
    LeaseStore store;
    int started = 0;
    int stopped = 0;
    serin::kube::LeaderElector elector(store, clock, options(),
                                       {[&] { ++started; }, [&] { ++stopped; }, nullptr});
    asio::cancellation_signal stop;
    bool ended = false;
    asio::co_spawn(io, elector.run(),
                   asio::bind_cancellation_slot(stop.slot(),
                                                [&](std::exception_ptr) { ended = true; }));
    io.run_for(50ms);
    REQUIRE(started == 1);  // created the Lease
    CHECK(clock.sleepers() == 1);

    // A renewal that succeeds: the elector sleeps again.
    clock.advance(2s);
    io.restart();
    io.run_for(50ms);
    CHECK(store.updates == 1);
    CHECK(clock.sleepers() == 1);

    // The next renewal is answered, but the stop arrives while it is on the wire.
    store.during_update = [&] { stop.emit(asio::cancellation_type::terminal); };
    clock.advance(2s);
    io.restart();
    io.run_for(50ms);
    CHECK(store.updates == 2);
    CHECK(ended);
    CHECK(stopped == 1);
    CHECK(clock.sleepers() == 0);
    CHECK(store.lease->at("spec").at("holderIdentity") == "me");  // release() comes next
}

TEST_CASE("a renewal that hangs past the renew deadline ends the leadership at the deadline") {
    asio::io_context io;
    serin::ManualClock clock;
    LeaseStore store(&clock);
    int started = 0;
    int stopped = 0;
    serin::kube::LeaderElector elector(store, clock, options(),
                                       {[&] { ++started; }, [&] { ++stopped; }, nullptr});
    bool ended = false;
    asio::co_spawn(io, elector.run(), [&](std::exception_ptr) { ended = true; });
    io.run_for(50ms);
    REQUIRE(started == 1);
    CHECK(store.last_write_unthrottled);  // Lease writes never wait behind reconcile writes

    store.hang = true;
    // Renewals start every 2 s; the first hangs. The deadline is 10 s after the last renewal.
    for (int second = 1; second <= 9; ++second) {
        clock.advance(1s);
        io.restart();
        io.run_for(20ms);
        INFO(second);
        CHECK(stopped == 0);
    }
    CHECK(store.updates == 1);  // still the one that hangs
    clock.advance(1s);          // the renew deadline
    io.restart();
    io.run_for(50ms);
    CHECK(stopped == 1);
    CHECK(ended);
}
