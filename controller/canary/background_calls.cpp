#include "controller/canary/background_calls.hpp"

#include "platform/core/assert.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/this_coro.hpp>

#include "platform/core/log.hpp"

namespace serin::canary {

namespace asio = boost::asio;

struct BackgroundCalls::Call {
    std::string key;
    bool running = true;
    bool expired = false;
    std::optional<Answer> answer;
    SteadyTime finished_at{};
    asio::cancellation_signal work_signal;
    asio::cancellation_signal watchdog_signal;
};

BackgroundCalls::BackgroundCalls(asio::any_io_executor executor, Clock& clock,
                                 BackgroundCallOptions options, Wake wake)
    : executor_(std::move(executor)),
      clock_(clock),
      options_(options),
      wake_(std::move(wake)) {}

BackgroundCalls::~BackgroundCalls() {
    // What still runs ends with cancellation; its completion handlers check `running` through
    // their own shared Call, never this object.
    counts_->alive = false;
    for (auto& [key, calls] : questions_) {
        for (auto& [question, call] : calls) {
            cancel(*call);
        }
    }
    for (auto& weak : posts_) {
        if (auto call = weak.lock()) {
            cancel(*call);
        }
    }
}

void BackgroundCalls::cancel(Call& call) {
    if (call.running) {
        call.running = false;
        call.work_signal.emit(asio::cancellation_type::terminal);
        call.watchdog_signal.emit(asio::cancellation_type::terminal);
    }
}

namespace {

/// Stores what `work` answers (a coroutine function, so its inputs live in its own frame).
asio::awaitable<void> store_answer(BackgroundCalls::Work work,
                                   std::shared_ptr<std::optional<Answer>> answer) {
    *answer = co_await work();
}

}  // namespace

void BackgroundCalls::spawn(const CallPtr& call, asio::awaitable<void> work,
                            std::function<void(bool expired)> done) {
    // The watchdog: once the budget has passed, the work is cancelled.
    asio::co_spawn(
        executor_,
        [](Clock& clock, Duration budget, CallPtr c) -> asio::awaitable<void> {
            co_await asio::this_coro::throw_if_cancelled(false);
            const bool slept = co_await clock.sleep_for(budget);
            if (slept && c->running) {
                c->expired = true;
                c->work_signal.emit(asio::cancellation_type::terminal);
            }
        }(clock_, options_.budget, call),
        asio::bind_cancellation_slot(call->watchdog_signal.slot(), asio::detached));
    asio::co_spawn(executor_, std::move(work),
                   asio::bind_cancellation_slot(
                       call->work_signal.slot(),
                       [call, done = std::move(done)](std::exception_ptr e) {
                           if (e) {
                               try {
                                   std::rethrow_exception(e);
                               } catch (const std::exception& what) {
                                   CanaryLog(call->key).error("background call threw: {}",
                                                              what.what());
                               } catch (...) {
                                   CanaryLog(call->key).error("background call threw");
                               }
                           }
                           call->watchdog_signal.emit(asio::cancellation_type::terminal);
                           done(call->expired);
                       }));
}

std::optional<Answer> BackgroundCalls::ask(const std::string& key, const std::string& question,
                                           Work work, std::function<Answer()> expired) {
    auto& calls = questions_[key];
    if (auto it = calls.find(question); it != calls.end()) {
        Call& call = *it->second;
        if (call.running) {
            return std::nullopt;
        }
        if (call.answer && clock_.steady_now() - call.finished_at <= options_.answer_ttl) {
            return call.answer;
        }
        calls.erase(it);  // stale or never answered: work it out again
    }
    // One question per canary: any other still running is about a status that has moved on.
    for (auto it = calls.begin(); it != calls.end();) {
        if (it->second->running) {
            cancel(*it->second);
            it = calls.erase(it);
        } else {
            ++it;
        }
    }
    if (!asking_ || counts_->questions >= options_.max_questions) {
        if (calls.empty()) {
            questions_.erase(key);
        }
        return std::nullopt;
    }
    auto call = std::make_shared<Call>();
    call->key = key;
    calls.emplace(question, call);
    ++counts_->questions;
    auto answer = std::make_shared<std::optional<Answer>>();
    spawn(
        call, store_answer(std::move(work), answer),
        [this, counts = counts_, call, answer, expired = std::move(expired)](bool ran_out) {
            // Each call is counted once and ends once; a count gone below zero would let
            // max_questions be exceeded without bound.
            SERIN_ASSERT(counts->questions > 0, "a background question ended twice");
            --counts->questions;
            if (!counts->alive || !call->running) {
                return;  // forgotten or superseded: nobody waits for this answer
            }
            call->running = false;
            call->finished_at = clock_.steady_now();
            if (ran_out || !*answer) {
                CanaryLog(call->key).warn("a webhook or metric check took longer than {} s; "
                                          "it was cancelled",
                                          std::chrono::duration_cast<std::chrono::seconds>(
                                              options_.budget)
                                              .count());
                call->answer = expired();
            } else {
                call->answer = std::move(*answer);
            }
            if (wake_) {
                wake_(call->key);
            }
        });
    return std::nullopt;
}

std::set<std::string> BackgroundCalls::keys_in_flight() const {
    std::set<std::string> keys;
    for (const auto& [key, calls] : questions_) {
        if (in_flight(key)) {
            keys.insert(key);
        }
    }
    return keys;
}

bool BackgroundCalls::in_flight(const std::string& key) const {
    const auto it = questions_.find(key);
    if (it == questions_.end()) {
        return false;
    }
    for (const auto& [question, call] : it->second) {
        if (call->running) {
            return true;
        }
    }
    return false;
}

void BackgroundCalls::cancel_all() {
    for (const std::string& key : keys_in_flight()) {
        CanaryLog(key).info("webhook or metric check cancelled");
        forget(key);
    }
}

void BackgroundCalls::forget(const std::string& key) {
    auto it = questions_.find(key);
    if (it == questions_.end()) {
        return;
    }
    for (auto& [question, call] : it->second) {
        cancel(*call);
    }
    questions_.erase(it);
}

bool BackgroundCalls::post(std::string key, asio::awaitable<void> work) {
    if (counts_->posts >= options_.max_posts) {
        return false;
    }
    std::erase_if(posts_, [](const std::weak_ptr<Call>& weak) { return weak.expired(); });
    auto call = std::make_shared<Call>();
    call->key = std::move(key);
    posts_.push_back(call);
    ++counts_->posts;
    spawn(call, std::move(work), [this, counts = counts_, call](bool ran_out) {
        SERIN_ASSERT(counts->posts > 0, "a background post ended twice");
        --counts->posts;
        if (counts->alive && ran_out) {
            CanaryLog(call->key).warn("a background webhook took longer than {} s; it was "
                                      "cancelled",
                                      std::chrono::duration_cast<std::chrono::seconds>(
                                          options_.budget)
                                          .count());
        }
        call->running = false;
    });
    return true;
}

}  // namespace serin::canary
