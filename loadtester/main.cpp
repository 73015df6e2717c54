// serin-loadtester: the HTTP API of flagger-loadtester (docs/loadtester.md). A thin main: the
// flags, the logger, the server and the signals; the work is in serin_loadtester.
#include <spdlog/spdlog.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <csignal>
#include <fstream>
#include <iostream>

#include "loadtester/flags.hpp"
#include "loadtester/loadtester.hpp"
#include "platform/http/server.hpp"

namespace {

namespace asio = boost::asio;
namespace lt = serin::loadtester;

/// The shutdown: the first signal closes the listener and refuses new tasks, lets running ones
/// finish within the grace, then kills what is left; a second signal kills at once. The
/// io_context ends when the last task has ended.
class Shutdown {
public:
    Shutdown(asio::io_context& io, lt::LoadTester& tester, serin::http::HttpServer& server,
             std::chrono::milliseconds grace)
        : io_(io), tester_(tester), server_(server), grace_(grace), signals_(io, SIGINT, SIGTERM),
          timer_(io) {}

    void arm() {
        signals_.async_wait([this](const boost::system::error_code& ec, int number) {
            if (!ec) {
                on_signal(number);
            }
        });
    }

private:
    void on_signal(int number) {
        ++signals_seen_;
        spdlog::info("signal {}: shutting down ({} tasks running)", number, tester_.running());
        server_.stop_accepting();
        tester_.refuse_new_tasks();
        if (signals_seen_ > 1) {
            tester_.shutdown();
        } else {
            deadline_ = std::chrono::steady_clock::now() + grace_;
        }
        arm();
        poll();
    }

    /// Checks every 100 ms whether the tasks have ended (the io_context then stops) or the
    /// grace has run out (what runs is killed).
    void poll() {
        if (tester_.running() == 0) {
            server_.stop();
            signals_.cancel();
            io_.stop();
            return;
        }
        if (std::chrono::steady_clock::now() >= deadline_) {
            tester_.shutdown();
        }
        timer_.expires_after(std::chrono::milliseconds{100});
        timer_.async_wait([this](const boost::system::error_code& ec) {
            if (!ec) {
                poll();
            }
        });
    }

    asio::io_context& io_;
    lt::LoadTester& tester_;
    serin::http::HttpServer& server_;
    std::chrono::milliseconds grace_;
    asio::signal_set signals_;
    asio::steady_timer timer_;
    int signals_seen_ = 0;
    std::chrono::steady_clock::time_point deadline_{};
};

}  // namespace

int main(int argc, char** argv) {
    auto parsed =
        lt::parse_flags(std::vector<std::string>(argv + 1, argv + argc), std::cout, std::cerr);
    if (!parsed.flags) {
        return parsed.exit_code;
    }
    lt::Flags& flags = *parsed.flags;
    serin::configure_logging(flags.log_level, flags.log_format);
    // A client that goes away mid-answer must not end the process.
    std::signal(SIGPIPE, SIG_IGN);

    asio::io_context io;
    lt::LoadTester tester(io.get_executor(), flags.options);
    auto server = serin::http::HttpServer::listen(
        io.get_executor(), flags.address, flags.port, lt::server_options(),
        [&tester](lt::Request request) { return tester.handle(std::move(request)); });
    if (!server) {
        spdlog::error("-port={}: {}", flags.port, server.error().describe());
        return 1;
    }
    const std::uint16_t port = (*server)->port();
    spdlog::info("serin-loadtester listening on {}:{}, task timeout {} s", flags.address, port,
                 std::chrono::duration_cast<std::chrono::seconds>(flags.options.timeout).count());
    if (!flags.port_file.empty()) {
        // Written whole under another name, then renamed: a reader never sees half a number.
        const std::string temporary = flags.port_file + ".tmp";
        std::ofstream(temporary) << port << "\n";
        if (std::rename(temporary.c_str(), flags.port_file.c_str()) != 0) {
            spdlog::error("-port-file {}: cannot write it", flags.port_file);
            return 1;
        }
    }
    Shutdown shutdown(io, tester, **server, flags.shutdown_grace);
    shutdown.arm();
    io.run();
    spdlog::info("serin-loadtester stopped");
    return 0;
}
