#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include "analysis/release.hpp"
#include "platform/core/clock.hpp"

namespace serin::canary {

/// The answer to one of advance()'s questions: the run of a webhook type, or the metric checks.
using Answer = std::variant<analysis::HookRun, std::vector<analysis::MetricResult>>;

struct BackgroundCallOptions {
    /// Questions being worked out at once, over all canaries; past it a question waits.
    std::size_t max_questions = 256;
    /// Fire-and-forget posts (event webhooks, post-rollout hooks) at once; past it one is dropped
    /// with a warning.
    std::size_t max_posts = 256;
    /// The longest any one call may take, whatever its own timeouts and retries add up to.
    Duration budget = std::chrono::minutes{15};
    /// How long a finished answer waits to be used before it is worked out again.
    Duration answer_ttl = std::chrono::minutes{5};
};

/// Calls to servers that Canaries name (webhooks, metrics providers), made in the background so
/// that no worker ever waits on one: a slow canary delays only itself.
///
/// ask() is how the reconciler answers advance()'s questions. The first reconcile that needs an
/// answer starts the work and returns; when the work is done the canary is woken (the `wake`
/// callback re-queues it) and the next reconcile finds the answer. A canary has at most one
/// question being worked out; asking it another (its status moved on) cancels the first.
/// Every call ends within the budget: past it the work is cancelled and `expired` answers.
///
/// Thread safety: one io_context thread. Cancellation: forget() and the destructor cancel what
/// runs.
class BackgroundCalls {
public:
    using Wake = std::function<void(const std::string& key)>;
    /// Makes the awaitable that works the answer out. It must not be a capturing lambda
    /// coroutine: return a call of a coroutine function that takes its inputs by value.
    using Work = std::function<boost::asio::awaitable<Answer>()>;

    BackgroundCalls(boost::asio::any_io_executor executor, Clock& clock,
                    BackgroundCallOptions options, Wake wake);
    ~BackgroundCalls();
    BackgroundCalls(const BackgroundCalls&) = delete;
    BackgroundCalls& operator=(const BackgroundCalls&) = delete;

    /// The answer to `question` about canary `key` when it is ready; otherwise starts `work`
    /// (unless it runs already, or max_questions do) and returns nullopt. `expired` makes the
    /// answer when the budget runs out. `question` must name everything the answer depends on.
    std::optional<Answer> ask(const std::string& key, const std::string& question, Work work,
                              std::function<Answer()> expired);

    /// Drops the answers about `key` (a decision used them) and cancels what runs for it.
    void forget(const std::string& key);

    /// From now on ask() starts nothing new (answers already being worked out still come): for a
    /// drain, which finishes the steps in flight but begins none.
    void stop_asking() { asking_ = false; }
    /// The canaries with a question being worked out.
    std::set<std::string> keys_in_flight() const;
    /// Whether a question about `key` is being worked out.
    bool in_flight(const std::string& key) const;
    /// Cancels every question being worked out, logging each (the drain's grace is over).
    void cancel_all();

    /// Runs `work` in the background within the budget. Returns false, running nothing, when
    /// max_posts are running already.
    bool post(std::string key, boost::asio::awaitable<void> work);

    std::size_t questions_in_flight() const { return counts_->questions; }
    /// Whether a new question would have to wait for others to finish.
    bool saturated() const { return counts_->questions >= options_.max_questions; }
    Duration budget() const { return options_.budget; }
    std::size_t posts_in_flight() const { return counts_->posts; }

private:
    struct Call;
    using CallPtr = std::shared_ptr<Call>;

    /// Runs `work` and a watchdog that cancels it at the budget; `done` gets whether the budget
    /// ran out.
    void spawn(const CallPtr& call, boost::asio::awaitable<void> work,
               std::function<void(bool expired)> done);
    void cancel(Call& call);

    boost::asio::any_io_executor executor_;
    Clock& clock_;
    BackgroundCallOptions options_;
    Wake wake_;
    bool asking_ = true;
    /// Per canary key, per question.
    std::map<std::string, std::map<std::string, CallPtr>> questions_;
    std::vector<std::weak_ptr<Call>> posts_;
    /// Shared with the completion handlers, which may run after this object is gone.
    struct Counts {
        bool alive = true;
        std::size_t questions = 0;
        std::size_t posts = 0;
    };
    std::shared_ptr<Counts> counts_ = std::make_shared<Counts>();
};

}  // namespace serin::canary
