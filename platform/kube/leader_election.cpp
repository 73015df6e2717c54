#include "platform/kube/leader_election.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/this_coro.hpp>
#include <ctime>

#include "platform/core/json.hpp"

namespace serin::kube {

namespace asio = boost::asio;

std::string format_micro_time(SystemTime t) {
    auto micros = std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch());
    std::time_t seconds = static_cast<std::time_t>(micros.count() / 1'000'000);
    auto fraction = static_cast<long>(micros.count() % 1'000'000);
    std::tm utc{};
    ::gmtime_r(&seconds, &utc);
    char buffer[40];
    std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%S", &utc);
    char out[64];
    std::snprintf(out, sizeof out, "%s.%06ldZ", buffer, fraction);
    return out;
}

namespace {

/// Lease writes skip the client's write throttle.
WriteOptions lease_write() {
    WriteOptions options;
    options.unthrottled = true;
    return options;
}

}  // namespace

LeaderElector::LeaderElector(KubeClient& client, Clock& clock, LeaderElectionOptions options,
                             LeaderCallbacks callbacks)
    : client_(client),
      clock_(clock),
      options_(std::move(options)),
      callbacks_(std::move(callbacks)) {}

void LeaderElector::observe(const Json& lease) {
    auto spec = lease.find("spec");
    std::string record = spec != lease.end() ? dump_json(*spec) : std::string{};
    if (record != observed_record_) {
        observed_record_ = std::move(record);
        observed_at_ = clock_.steady_now();
    }
    std::string holder;
    if (spec != lease.end() && spec->is_object()) {
        holder = json_string(*spec, "holderIdentity");
    }
    if (holder != observed_holder_) {
        observed_holder_ = holder;
        if (!holder.empty() && callbacks_.on_new_leader) {
            callbacks_.on_new_leader(holder);
        }
    }
}

asio::awaitable<bool> LeaderElector::try_acquire_or_renew() {
    const auto& leases = types::leases();
    const std::string now = format_micro_time(clock_.system_now());
    const auto duration_seconds = std::max<std::int64_t>(
        1, std::chrono::duration_cast<std::chrono::seconds>(options_.lease_duration).count());

    auto current = co_await client_.get(leases, options_.lease_namespace, options_.lease_name);
    if (!current) {
        if (current.error().kind != ErrorKind::kNotFound) {
            spdlog::warn("leader election: cannot read lease {}/{}: {}", options_.lease_namespace,
                         options_.lease_name, current.error().describe());
            co_return false;
        }
        Json lease = {{"apiVersion", "coordination.k8s.io/v1"},
                      {"kind", "Lease"},
                      {"metadata",
                       {{"name", options_.lease_name}, {"namespace", options_.lease_namespace}}},
                      {"spec",
                       {{"holderIdentity", options_.identity},
                        {"leaseDurationSeconds", duration_seconds},
                        {"acquireTime", now},
                        {"renewTime", now},
                        {"leaseTransitions", 0}}}};
        auto created =
            co_await client_.create(leases, options_.lease_namespace, lease, lease_write());
        if (!created) {
            co_return false;  // someone else created it first; read it next time
        }
        observe(*created);
        co_return true;
    }

    observe(*current);
    const bool mine = observed_holder_ == options_.identity;
    const bool expired =
        observed_holder_.empty() ||
        clock_.steady_now() >= observed_at_ + std::chrono::duration_cast<Duration>(
                                                  options_.lease_duration);
    if (!mine && !expired) {
        co_return false;
    }

    Json lease = *current;
    auto& spec = lease["spec"];
    if (!spec.is_object()) {
        spec = Json::object();
    }
    if (!mine) {
        std::int64_t transitions = 0;
        if (auto it = spec.find("leaseTransitions"); it != spec.end() && it->is_number_integer()) {
            transitions = it->get<std::int64_t>();
        }
        spec["leaseTransitions"] = observed_holder_.empty() ? transitions : transitions + 1;
        spec["acquireTime"] = now;
        spec["holderIdentity"] = options_.identity;
    }
    spec["leaseDurationSeconds"] = duration_seconds;
    spec["renewTime"] = now;
    // The resourceVersion read above is a precondition: a rival's write in between is a Conflict.
    auto updated =
        co_await client_.update(leases, options_.lease_namespace, std::move(lease), lease_write());
    if (!updated) {
        if (updated.error().kind != ErrorKind::kConflict) {
            spdlog::warn("leader election: cannot update lease {}/{}: {}",
                         options_.lease_namespace, options_.lease_name,
                         updated.error().describe());
        }
        co_return false;
    }
    observe(*updated);
    co_return true;
}

void LeaderElector::stop_leading() {
    if (leading_) {
        leading_ = false;
        if (callbacks_.on_stopped_leading) {
            callbacks_.on_stopped_leading();
        }
    }
}

asio::awaitable<void> LeaderElector::run() {
    // However leadership ends, a leader calls on_stopped_leading: cancellation normally ends the
    // loops through their results, but an operation may still throw once cancelled.
    co_await asio::this_coro::throw_if_cancelled(false);
    try {
        co_await campaign_and_lead();
    } catch (const std::exception& e) {
        spdlog::info("leader election: {} stopped: {}", options_.identity, e.what());
    }
    stop_leading();
}

asio::awaitable<void> LeaderElector::campaign_and_lead() {
    co_await asio::this_coro::throw_if_cancelled(false);
    // Campaign.
    for (;;) {
        const bool acquired = co_await try_acquire_or_renew();
        if (acquired) {
            break;
        }
        const bool slept = co_await clock_.sleep_for(options_.retry_period);
        if (!slept) {
            co_return;
        }
    }
    leading_ = true;
    spdlog::info("leader election: {} now leads {}/{}", options_.identity,
                 options_.lease_namespace, options_.lease_name);
    if (callbacks_.on_started_leading) {
        callbacks_.on_started_leading();
    }

    // Renew until a renewal has failed for renew_deadline. A renewal in flight is cut off at
    // the deadline too: a leader that cannot renew in time must stop acting before a standby,
    // which waits lease_duration, takes over.
    SteadyTime last_renewed = clock_.steady_now();
    for (;;) {
        const bool slept = co_await clock_.sleep_for(options_.retry_period);
        if (!slept) {
            break;
        }
        const SteadyTime deadline =
            last_renewed + std::chrono::duration_cast<Duration>(options_.renew_deadline);
        using namespace asio::experimental::awaitable_operators;
        const auto outcome = co_await (try_acquire_or_renew() || clock_.sleep_until(deadline));
        auto state = co_await asio::this_coro::cancellation_state;
        if (state.cancelled() != asio::cancellation_type::none) {
            break;
        }
        if (outcome.index() == 1) {
            spdlog::warn("leader election: {} could not renew {}/{} within the renew deadline "
                         "({} ms); stopping",
                         options_.identity, options_.lease_namespace, options_.lease_name,
                         options_.renew_deadline.count());
            break;
        }
        if (std::get<0>(outcome)) {
            last_renewed = clock_.steady_now();
            continue;
        }
        if (observed_holder_ != options_.identity ||
            clock_.steady_now() - last_renewed >=
                std::chrono::duration_cast<Duration>(options_.renew_deadline)) {
            spdlog::warn("leader election: {} lost {}/{} (holder now '{}')", options_.identity,
                         options_.lease_namespace, options_.lease_name, observed_holder_);
            break;
        }
    }
}

asio::awaitable<Result<void>> LeaderElector::release() {
    const auto& leases = types::leases();
    auto current = co_await client_.get(leases, options_.lease_namespace, options_.lease_name);
    if (!current) {
        co_return current.error();
    }
    auto spec = current->find("spec");
    if (spec == current->end() || !spec->is_object() ||
        json_string(*spec, "holderIdentity") != options_.identity) {
        co_return Result<void>{};  // not ours: nothing to give up
    }
    Json lease = *current;
    lease["spec"]["holderIdentity"] = "";
    lease["spec"]["leaseDurationSeconds"] = 1;
    auto updated =
        co_await client_.update(leases, options_.lease_namespace, std::move(lease), lease_write());
    if (!updated) {
        co_return updated.error();
    }
    stop_leading();
    co_return Result<void>{};
}

}  // namespace serin::kube
