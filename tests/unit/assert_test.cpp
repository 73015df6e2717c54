// The assertion tiers: a failed SERIN_ASSERT aborts with the condition, the place and the
// message on stderr; SERIN_DEBUG_ASSERT does the same in this (Debug or sanitizer) build.
#include <catch2/catch.hpp>

#include "platform/core/assert.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <functional>
#include <string>

namespace {

struct Outcome {
    bool aborted = false;
    std::string stderr_text;
};

/// Runs `body` in a child process and reports whether it died of SIGABRT and what it wrote to
/// stderr.
Outcome in_child(const std::function<void()>& body) {
    int pipe_fds[2];
    REQUIRE(::pipe(pipe_fds) == 0);
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        ::close(pipe_fds[0]);
        ::dup2(pipe_fds[1], STDERR_FILENO);
        body();
        ::_exit(0);
    }
    ::close(pipe_fds[1]);
    Outcome out;
    char buffer[4096];
    for (ssize_t n; (n = ::read(pipe_fds[0], buffer, sizeof buffer)) > 0;) {
        out.stderr_text.append(buffer, static_cast<std::size_t>(n));
    }
    ::close(pipe_fds[0]);
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    out.aborted = WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
    return out;
}

}  // namespace

TEST_CASE("a failed SERIN_ASSERT aborts and names the condition, the place and the message") {
    const Outcome out = in_child([] {
        const int queued = 2;
        SERIN_ASSERT(queued == 1, "one key at a time");
    });
    CHECK(out.aborted);
    CHECK(out.stderr_text.find("queued == 1") != std::string::npos);
    CHECK(out.stderr_text.find("assert_test.cpp") != std::string::npos);
    CHECK(out.stderr_text.find("one key at a time") != std::string::npos);
}

TEST_CASE("a SERIN_ASSERT that holds does nothing") {
    const Outcome out = in_child([] { SERIN_ASSERT(1 + 1 == 2, "arithmetic"); });
    CHECK_FALSE(out.aborted);
    CHECK(out.stderr_text.empty());
}

TEST_CASE("SERIN_DEBUG_ASSERT is checked in a build without NDEBUG") {
#ifdef NDEBUG
    const Outcome out = in_child([] { SERIN_DEBUG_ASSERT(false, "release builds skip this"); });
    CHECK_FALSE(out.aborted);
#else
    const Outcome out = in_child([] { SERIN_DEBUG_ASSERT(false, "debug builds check this"); });
    CHECK(out.aborted);
    CHECK(out.stderr_text.find("debug builds check this") != std::string::npos);
#endif
}
