#include "controller/app/supervisor.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_state.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <exception>
#include <utility>

namespace serin::app {

namespace asio = boost::asio;

Supervisor::Supervisor(Clock& clock, Supervised& work, Election* election,
                       SupervisorOptions options)
    : clock_(clock), work_(work), election_(election), options_(options) {}

void Supervisor::start(asio::any_io_executor executor, OnExit on_exit) {
    executor_ = std::move(executor);
    on_exit_ = std::move(on_exit);
    asio::co_spawn(executor_, supervise(),
                   asio::bind_cancellation_slot(stop_.slot(), [this](const std::exception_ptr& e) {
                       if (e) {
                           try {
                               std::rethrow_exception(e);
                           } catch (const std::exception& ex) {
                               spdlog::error("stopped by an exception: {}", ex.what());
                           }
                           exit_code_ = 1;
                       }
                       finish(exit_code_);
                   }));
}

asio::awaitable<void> Supervisor::supervise() {
    // Not `if (!co_await ...)`: g++ 12 miscompiles a co_await inside a condition.
    const bool prepared = co_await work_.prepare();
    if (!prepared) {
        exit_code_ = 1;
        co_return;
    }
    if (election_ == nullptr) {
        running_ = true;
        co_await work_.run();
        running_ = false;
        co_return;
    }
    co_await lead();
}

asio::awaitable<void> Supervisor::lead() {
    kube::LeaderCallbacks callbacks;
    callbacks.on_started_leading = [this] { started_leading(); };
    // Losing the lease stops all work at once.
    callbacks.on_stopped_leading = [this] { lost_.emit(asio::cancellation_type::all); };
    co_await election_->run(std::move(callbacks));
    const asio::cancellation_state state = co_await asio::this_coro::cancellation_state;
    if (state.cancelled() != asio::cancellation_type::none) {
        // Stopping (a signal): hand the Lease over, so a standby need not wait out its
        // duration. The release must not inherit the cancellation that stopped the work.
        co_await asio::this_coro::reset_cancellation_state();
        auto released = co_await election_->release();
        if (!released) {
            spdlog::warn("lease not released: {}", released.error().describe());
        }
    } else if (leading_) {
        spdlog::error("lost the leader election lease; exiting");
        exit_code_ = 1;
    }
}

void Supervisor::started_leading() {
    spdlog::info("leading as {}", election_->identity());
    leading_ = true;
    running_ = true;
    // Run beside the election, which goes on renewing the lease; losing it emits lost_.
    asio::co_spawn(executor_, work_.run(),
                   asio::bind_cancellation_slot(lost_.slot(), [this](const std::exception_ptr&) {
                       running_ = false;
                       if (work_.draining()) {
                           // Drained: now stop the election, which hands the Lease over.
                           asio::post(executor_, [this] { stop_all(); });
                       }
                   }));
}

void Supervisor::signal(int number) {
    if (exited_) {
        return;
    }
    if (signalled_) {
        give_up(fmt::format("signal {} during shutdown", number));
        return;
    }
    signalled_ = true;
    set_alarm(deadline_alarm_, options_.shutdown_grace + options_.shutdown_deadline,
              &Supervisor::deadline_passed);
    if (!running_) {
        spdlog::info("signal {}: stopping", number);
        stop_all();
        return;
    }
    spdlog::info("signal {}: draining, {} reconciles in flight, {} ms to finish", number,
                 work_.in_flight(), options_.shutdown_grace.count());
    work_.drain();
    set_alarm(grace_alarm_, options_.shutdown_grace, &Supervisor::grace_over);
}

void Supervisor::grace_over() {
    if (running_) {
        spdlog::warn("shutdown grace over: cancelling {} reconciles", work_.in_flight());
        stop_all();
    }
}

void Supervisor::deadline_passed() {
    give_up(fmt::format("shutdown took longer than {} ms",
                        (options_.shutdown_grace + options_.shutdown_deadline).count()));
}

void Supervisor::set_alarm(asio::cancellation_signal& cancel, Duration after,
                           void (Supervisor::*ring)()) {
    // The deadline is taken now, not when the alarm's coroutine first runs.
    // An alarm only logs and ends serin: an exception from it is a bug, which leaves
    // io_context::run.
    asio::co_spawn(executor_, alarm(clock_.steady_now() + after, ring),
                   asio::bind_cancellation_slot(cancel.slot(), [](const std::exception_ptr& e) {
                       if (e) {
                           std::rethrow_exception(e);
                       }
                   }));
}

asio::awaitable<void> Supervisor::alarm(SteadyTime at, void (Supervisor::*ring)()) {
    const bool reached = co_await clock_.sleep_until(at);
    if (reached) {
        (this->*ring)();
    }
}

void Supervisor::stop_all() {
    if (!stopped_) {
        stopped_ = true;
        stop_.emit(asio::cancellation_type::all);
    }
}

void Supervisor::give_up(std::string_view why) {
    spdlog::error("{}; exiting without a clean shutdown", why);
    finish(1);
}

void Supervisor::finish(int code) {
    if (exited_) {
        return;
    }
    exited_ = true;
    exit_code_ = code;
    grace_alarm_.emit(asio::cancellation_type::all);
    deadline_alarm_.emit(asio::cancellation_type::all);
    on_exit_(code);
}

}  // namespace serin::app
