#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>

#include "controller/app/config.hpp"
#include "controller/app/services.hpp"
#include "controller/app/supervisor.hpp"
#include "controller/canary/controller.hpp"
#include "platform/kube/leader_election.hpp"

namespace serin::app {

/// The controller's options from the flags: every builtin router, the global notifier.
canary::ControllerOptions controller_options(const Config& config,
                                             std::optional<notify::Destination> global_notifier);

/// The caches' options from the flags (the types the server serves are found by prepare()).
canary::CacheOptions cache_options(const Config& config);

/// The Lease from the flags: in -namespace when set, else -leader-election-namespace.
kube::LeaderElectionOptions leader_election_options(const Config& config, std::string identity);

/// The canary controller, as the Supervisor runs it. prepare() fails fast when the server
/// cannot be reached or the CRDs are not installed, picks the HPA API version and the routing
/// APIs the server has, then builds the controller.
///
/// Thread safety: one io_context thread.
class ControllerRunner final : public Supervised {
public:
    ControllerRunner(boost::asio::any_io_executor executor, Services& services,
                     canary::ControllerOptions options, canary::CacheOptions cache_options);

    boost::asio::awaitable<bool> prepare() override;
    boost::asio::awaitable<void> run() override { return controller_->run(); }
    void drain() override { controller_->drain(); }
    bool draining() const override { return controller_->draining(); }
    std::size_t in_flight() const override { return controller_->in_flight(); }

    /// The controller once prepare() has built it, else null (for the endpoints).
    const canary::Controller* controller() const { return controller_.get(); }

private:
    boost::asio::any_io_executor executor_;
    Services& services_;
    canary::ControllerOptions options_;
    canary::CacheOptions cache_options_;
    std::unique_ptr<canary::Caches> caches_;  ///< before the controller, which uses them
    std::unique_ptr<canary::Controller> controller_;
};

/// Leader election on a coordination.k8s.io/v1 Lease (kube::LeaderElector).
class LeaseElection final : public Election {
public:
    LeaseElection(kube::KubeClient& client, Clock& clock, kube::LeaderElectionOptions options);

    boost::asio::awaitable<void> run(kube::LeaderCallbacks callbacks) override;
    boost::asio::awaitable<Result<void>> release() override;
    const std::string& identity() const override { return options_.identity; }

private:
    kube::KubeClient& client_;
    Clock& clock_;
    kube::LeaderElectionOptions options_;
    std::optional<kube::LeaderElector> elector_;  ///< from run(), which gives the callbacks
};

}  // namespace serin::app
