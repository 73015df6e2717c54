#include "cli/dashboard/dashboard.hpp"

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <deque>
#include <list>
#include <random>
#include <string_view>
#include <utility>
#include <vector>

#include "cli/dashboard/assets.hpp"
#include "cli/dashboard/summary.hpp"
#include "cli/request.hpp"
#include "platform/core/json.hpp"
#include "platform/core/text.hpp"
#include "platform/http/server.hpp"
#include "platform/kube/informer.hpp"

namespace serin::dashboard {

namespace asio = boost::asio;
using text::clip;
using text::is_valid_utf8;
using text::trim;

namespace {

constexpr auto kUse = asio::as_tuple(asio::use_awaitable);
/// The cookie's name carries the port: cookies are shared by every port of a host, so two
/// dashboards side by side would otherwise overwrite each other's.
constexpr std::string_view kCookiePrefix = "serin_token_";
constexpr std::string_view kTokenHeader = "X-Serin-Token";
constexpr std::size_t kMaxReasonBytes = 512;
constexpr std::size_t kMaxBodyDepth = 4;

/// One open live stream: the events not yet written, and a timer cancelled to wake its writer.
struct Subscriber {
    explicit Subscriber(const asio::any_io_executor& executor) : wake(executor) {}
    std::deque<std::string> queue;
    asio::steady_timer wake;
    bool closed = false;  ///< fell too far behind, or the dashboard stopped
};

std::string random_token() {
    std::random_device device;
    std::string token;
    constexpr std::string_view kHex = "0123456789abcdef";
    for (int i = 0; i < 32; ++i) {
        const auto byte = static_cast<unsigned>(device()) & 0xffU;
        token += kHex[byte >> 4U];
        token += kHex[byte & 0xfU];
    }
    return token;
}

/// Compares in time independent of where the strings differ.
bool same_secret(std::string_view a, std::string_view b) {
    if (a.size() != b.size() || a.empty()) {
        return false;
    }
    unsigned diff = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        diff |= static_cast<unsigned>(static_cast<unsigned char>(a[i]) ^
                                      static_cast<unsigned char>(b[i]));
    }
    return diff == 0;
}

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() &&
           std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c; };
               return lower(x) == lower(y);
           });
}

/// The value of cookie `name` in a Cookie header, if any.
std::optional<std::string_view> cookie_value(std::string_view header, std::string_view name) {
    while (!header.empty()) {
        const auto semi = header.find(';');
        std::string_view pair = trim(header.substr(0, semi));
        header = semi == std::string_view::npos ? std::string_view{} : header.substr(semi + 1);
        const auto eq = pair.find('=');
        if (eq != std::string_view::npos && trim(pair.substr(0, eq)) == name) {
            return trim(pair.substr(eq + 1));
        }
    }
    return std::nullopt;
}

/// The value of query parameter `name` (not percent-decoded: tokens are hex).
std::optional<std::string_view> query_value(std::string_view query, std::string_view name) {
    while (!query.empty()) {
        const auto amp = query.find('&');
        const std::string_view pair = query.substr(0, amp);
        query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
        const auto eq = pair.find('=');
        if (eq != std::string_view::npos && pair.substr(0, eq) == name) {
            return pair.substr(eq + 1);
        }
    }
    return std::nullopt;
}

/// The path split at '/', without empty parts.
std::vector<std::string_view> split_path(std::string_view path) {
    std::vector<std::string_view> parts;
    while (!path.empty()) {
        const auto slash = path.find('/');
        const std::string_view part = path.substr(0, slash);
        if (!part.empty()) {
            parts.push_back(part);
        }
        if (slash == std::string_view::npos) {
            break;
        }
        path = path.substr(slash + 1);
    }
    return parts;
}

http::ServerResponse json_response(int status, const Json& body) {
    http::ServerResponse r;
    r.status = status;
    r.content_type = "application/json";
    r.body = dump_json(body) + "\n";
    return r;
}

http::ServerResponse error_response(int status, std::string message) {
    return json_response(status, Json{{"error", std::move(message)}});
}

/// Headers every answer carries: nothing cached, no sniffing, no framing, only our own scripts.
void add_security_headers(http::ServerResponse& r) {
    r.headers.emplace_back("Cache-Control", "no-store");
    r.headers.emplace_back("X-Content-Type-Options", "nosniff");
    r.headers.emplace_back("X-Frame-Options", "DENY");
    r.headers.emplace_back("Referrer-Policy", "no-referrer");
    r.headers.emplace_back("Content-Security-Policy",
                           "default-src 'self'; script-src 'self'; style-src 'self' "
                           "'unsafe-inline'; img-src 'self' data:; connect-src 'self'; "
                           "object-src 'none'; base-uri 'none'; frame-ancestors 'none'");
}

/// The canary as the page gets it: without managedFields and kubectl's copy of the manifest.
Json for_page(Json canary) {
    if (canary.is_object() && canary.contains("metadata") && canary["metadata"].is_object()) {
        auto& metadata = canary["metadata"];
        metadata.erase("managedFields");
        if (metadata.contains("annotations") && metadata["annotations"].is_object()) {
            metadata["annotations"].erase("kubectl.kubernetes.io/last-applied-configuration");
        }
    }
    return canary;
}

/// An Event as the page shows it.
Json event_row(const Json& event) {
    std::string time = json_string(event, "lastTimestamp");
    if (time.empty()) {
        time = json_string(event, "eventTime");
    }
    if (time.empty() && event.contains("metadata")) {
        time = json_string(event["metadata"], "creationTimestamp");
    }
    std::int64_t count = 1;
    if (event.contains("count") && event["count"].is_number_integer()) {
        count = event["count"].get<std::int64_t>();
    }
    return {{"time", time},
            {"type", json_string(event, "type")},
            {"reason", json_string(event, "reason")},
            {"message", clip(json_string(event, "message"), 1024)},
            {"count", count}};
}

std::string sse(std::string_view event, const Json& data) {
    return "event: " + std::string(event) + "\ndata: " + dump_json(data) + "\n\n";
}

}  // namespace

struct Dashboard::Impl : std::enable_shared_from_this<Dashboard::Impl> {
    Impl(asio::any_io_executor ex, kube::KubeClient& c, Clock& clk, DashboardConfig cfg)
        : executor(std::move(ex)), client(c), clock(clk), config(std::move(cfg)) {}

    asio::any_io_executor executor;
    kube::KubeClient& client;
    Clock& clock;
    DashboardConfig config;
    std::unique_ptr<kube::Informer> informer;
    std::unique_ptr<http::HttpServer> server;
    std::list<std::shared_ptr<Subscriber>> subscribers;
    bool stopped = false;

    std::string origin_host(std::string_view name) const {
        return std::string(name) + ":" + std::to_string(server ? server->port() : config.port);
    }

    void publish(const std::string& message) {
        for (const auto& sub : subscribers) {
            if (sub->closed) {
                continue;
            }
            if (sub->queue.size() >= config.max_queued_events) {
                sub->closed = true;  // it reconnects and gets a fresh snapshot
            } else {
                sub->queue.push_back(message);
            }
            sub->wake.cancel();
        }
    }

    Json list_json() const {
        Json rows = Json::array();
        if (informer) {
            auto objects = informer->list();
            std::sort(objects.begin(), objects.end(), [](const auto& a, const auto& b) {
                return kube::object_key(*a) < kube::object_key(*b);
            });
            for (const auto& object : objects) {
                rows.push_back(canary_summary(*object));
            }
        }
        return {{"namespace", config.ns},
                {"synced", informer && informer->has_synced()},
                {"canaries", std::move(rows)}};
    }

    std::string cookie_name() const { return std::string(kCookiePrefix) + std::to_string(server->port()); }

    bool in_scope(std::string_view ns) const { return config.ns.empty() || config.ns == ns; }

    /// Host header check (DNS rebinding) and the token (header or cookie).
    std::optional<http::ServerResponse> refuse(const http::ServerRequest& request,
                                               bool allow_query_token) const {
        const auto host = request.header("Host");
        if (!host || !(iequals(*host, origin_host("127.0.0.1")) ||
                       iequals(*host, origin_host("localhost")))) {
            return error_response(403, "unexpected Host header: open the dashboard at "
                                       "http://127.0.0.1:" +
                                           std::to_string(server->port()) + "/");
        }
        if (const auto origin = request.header("Origin")) {
            if (!iequals(*origin, "http://" + origin_host("127.0.0.1")) &&
                !iequals(*origin, "http://" + origin_host("localhost"))) {
                return error_response(403, "cross-origin request refused");
            }
        }
        const bool post = request.method != "GET";
        const auto header = request.header(kTokenHeader);
        if (header && same_secret(*header, config.token)) {
            return std::nullopt;
        }
        if (post) {
            return error_response(403, "a POST needs the X-Serin-Token header");
        }
        if (const auto cookie = request.header("Cookie")) {
            const auto value = cookie_value(*cookie, cookie_name());
            if (value && same_secret(*value, config.token)) {
                return std::nullopt;
            }
        }
        if (allow_query_token) {
            return std::nullopt;  // the caller checks ?token=
        }
        return error_response(401, "missing or wrong token: open the URL that "
                                   "`kubectl serin dashboard` printed");
    }
};

namespace {

using ImplPtr = std::shared_ptr<Dashboard::Impl>;

asio::awaitable<void> write_stream(ImplPtr self, http::ResponseStream& out) {
    auto sub = std::make_shared<Subscriber>(self->executor);
    self->subscribers.push_back(sub);
    struct Unsubscribe {
        Dashboard::Impl& impl;
        std::shared_ptr<Subscriber> sub;
        ~Unsubscribe() { impl.subscribers.remove(sub); }
    } unsubscribe{*self, sub};

    // retry: the browser reconnects 2 s after the stream ends (the dashboard restarted, say).
    bool ok = co_await out.write("retry: 2000\n\n" + sse("snapshot", self->list_json()));
    while (ok && !self->stopped && !sub->closed) {
        if (sub->queue.empty()) {
            sub->wake.expires_after(self->config.heartbeat);
            [[maybe_unused]] auto [error] = co_await sub->wake.async_wait(kUse);
            if (self->stopped || sub->closed) {
                break;
            }
            if (sub->queue.empty()) {
                ok = co_await out.write(": keep-alive\n\n");
                continue;
            }
        }
        std::string batch;
        while (!sub->queue.empty()) {
            batch += sub->queue.front();
            sub->queue.pop_front();
        }
        ok = co_await out.write(std::move(batch));
    }
}

/// The canary from the cache, else from the API server (the cache may lag a create).
asio::awaitable<Result<Json>> find_canary(ImplPtr self, std::string ns, std::string name) {
    if (self->informer) {
        if (auto cached = self->informer->get(ns, name)) {
            co_return Result<Json>(boost::system::in_place_value, Json(*cached));
        }
    }
    auto fetched = co_await self->client.get(kube::types::canaries(), ns, name);
    co_return fetched;
}

/// A 403 of the API server as the page shows it: what was refused and which role grants it.
http::ServerResponse forbidden(const Error& error, std::string_view verb, std::string_view what,
                               std::string_view ns, std::string_view role) {
    Json body = {{"error", "forbidden: your credentials may not " + std::string(verb) + " " +
                               std::string(what) + " in namespace " + std::string(ns) +
                               " (the ClusterRole " + std::string(role) + " grants it)"},
                 {"permission", std::string(verb) + " " + std::string(what)},
                 {"detail", clip(error.message, 512)}};
    return json_response(403, body);
}

http::ServerResponse api_error(const Error& error) {
    int status = 502;
    if (error.kind == ErrorKind::kNotFound) {
        status = 404;
    } else if (error.kind == ErrorKind::kUnauthorized) {
        status = 401;
    } else if (error.kind == ErrorKind::kInvalid || error.kind == ErrorKind::kBadRequest) {
        status = 422;
    }
    return error_response(status, clip(error.describe(), 1024));
}

asio::awaitable<http::ServerResponse> canary_detail(ImplPtr self, std::string ns,
                                                    std::string name) {
    auto canary = co_await find_canary(self, ns, name);
    if (!canary) {
        if (canary.error().kind == ErrorKind::kForbidden) {
            co_return forbidden(canary.error(), "get", "canaries.flagger.app", ns, "serin-viewer");
        }
        co_return api_error(canary.error());
    }
    Json errors = Json::array();
    Json history = nullptr;
    auto fetched = co_await self->client.get(kube::types::canary_histories(), ns, name);
    if (fetched) {
        history = std::move(*fetched);
        if (history.is_object() && history.contains("metadata")) {
            history["metadata"].erase("managedFields");
        }
    } else if (fetched.error().kind != ErrorKind::kNotFound) {
        errors.push_back("history: " + clip(fetched.error().describe(), 512));
    }
    Json events = Json::array();
    kube::ListOptions options;
    options.field_selector = "involvedObject.kind=Canary,involvedObject.name=" + name;
    auto listed = co_await self->client.list(kube::types::events(), ns, options);
    if (listed) {
        std::vector<Json> rows;
        for (const auto& event : listed->items) {
            rows.push_back(event_row(event));
        }
        std::stable_sort(rows.begin(), rows.end(), [](const Json& a, const Json& b) {
            return a["time"].get<std::string>() < b["time"].get<std::string>();
        });
        const std::size_t skip =
            rows.size() > self->config.max_events ? rows.size() - self->config.max_events : 0;
        for (std::size_t i = skip; i < rows.size(); ++i) {
            events.push_back(std::move(rows[i]));
        }
    } else {
        errors.push_back("events: " + clip(listed.error().describe(), 512));
    }
    Json body = {{"summary", canary_summary(*canary)},
                 {"canary", for_page(std::move(*canary))},
                 {"history", std::move(history)},
                 {"events", std::move(events)},
                 {"errors", std::move(errors)}};
    co_return json_response(200, body);
}

asio::awaitable<http::ServerResponse> create_request(ImplPtr self, std::string ns,
                                                     std::string name, std::string text) {
    auto body = parse_json(text, kMaxBodyDepth, "the request");
    if (!body || !body->is_object()) {
        co_return error_response(400, body ? "the request is not a JSON object"
                                           : body.error().message);
    }
    const std::string action = json_string(*body, "action");
    if (!is_request_action(action)) {
        co_return error_response(400, "action must be one of promote, abort, pause, resume, retry");
    }
    bool full = false;
    if (body->contains("full")) {
        if (!(*body)["full"].is_boolean()) {
            co_return error_response(400, "full must be true or false");
        }
        full = (*body)["full"].get<bool>();
    }
    if (full && action != "promote") {
        co_return error_response(400, "full applies to promote only");
    }
    const std::string reason = json_string(*body, "reason");
    if (reason.size() > kMaxReasonBytes || !is_valid_utf8(reason)) {
        co_return error_response(400, "reason must be UTF-8 of at most 512 bytes");
    }
    auto canary = co_await find_canary(self, ns, name);
    if (!canary) {
        if (canary.error().kind == ErrorKind::kForbidden) {
            co_return forbidden(canary.error(), "get", "canaries.flagger.app", ns, "serin-viewer");
        }
        co_return api_error(canary.error());
    }
    Json object = cli::make_request(*canary, action, full, self->config.requested_by, reason);
    kube::WriteOptions options;
    options.field_manager = "kubectl-serin";
    auto created = co_await self->client.create(kube::types::canary_requests(), ns, std::move(object), options);
    if (!created) {
        if (created.error().kind == ErrorKind::kForbidden) {
            co_return forbidden(created.error(), "create", "canaryrequests.serin.dev", ns,
                                "serin-operator");
        }
        co_return api_error(created.error());
    }
    Json answer = {{"name", kube::object_name(*created)},
                   {"namespace", ns},
                   {"action", action},
                   {"full", full},
                   {"message", "requested " + action + (full ? " --full" : "") + " of " + name +
                                   " (" + kube::object_name(*created) + ")"}};
    co_return json_response(201, answer);
}

http::ServerResponse serve_page(const Dashboard::Impl& self, std::string_view path) {
    if (path == "/" || path == "/index.html") {
        path = "/index.html";
    }
    const Asset* asset = find_asset(path);
    if (asset == nullptr) {
        return error_response(404, "not found");
    }
    http::ServerResponse r;
    r.content_type = std::string(asset->content_type);
    r.body = std::string(asset->body);
    if (path == "/index.html") {
        // The page's scripts send the token as a header, which a POST needs (CSRF); the cookie
        // is HttpOnly, so the page carries it.
        const std::string marker = "__SERIN_TOKEN__";
        const auto at = r.body.find(marker);
        if (at != std::string::npos) {
            r.body.replace(at, marker.size(), self.config.token);
        }
    }
    return r;
}

asio::awaitable<http::ServerResponse> route(ImplPtr self, http::ServerRequest request) {
    const std::string_view target = request.target;
    const auto question = target.find('?');
    const std::string_view path = target.substr(0, question);
    const std::string_view query =
        question == std::string_view::npos ? std::string_view{} : target.substr(question + 1);
    const bool page = path == "/" || path == "/index.html";

    if (auto refused = self->refuse(request, page)) {
        co_return std::move(*refused);
    }
    const bool authorised_by_query = [&] {
        const auto header = request.header(kTokenHeader);
        if (header && same_secret(*header, self->config.token)) {
            return false;
        }
        const auto cookie = request.header("Cookie");
        const auto value = cookie ? cookie_value(*cookie, self->cookie_name()) : std::nullopt;
        return !(value && same_secret(*value, self->config.token));
    }();
    if (page && authorised_by_query) {
        const auto token = query_value(query, "token");
        if (!token || !same_secret(*token, self->config.token)) {
            co_return error_response(401, "missing or wrong token: open the URL that "
                                          "`kubectl serin dashboard` printed");
        }
        // Trade the token in the URL for a cookie, and drop it from the address bar.
        http::ServerResponse r;
        r.status = 303;
        r.body = "see /\n";
        r.headers.emplace_back("Location", "/");
        r.headers.emplace_back("Set-Cookie", self->cookie_name() + "=" + self->config.token +
                                                 "; Path=/; HttpOnly; SameSite=Strict");
        co_return r;
    }

    const auto parts = split_path(path);
    if (request.method == "GET") {
        if (parts.empty() || parts[0] != "api") {
            co_return serve_page(*self, path);
        }
        if (parts.size() == 2 && parts[1] == "canaries") {
            co_return json_response(200, self->list_json());
        }
        if (parts.size() == 2 && parts[1] == "stream") {
            if (self->subscribers.size() >= self->config.max_streams) {
                co_return error_response(503, "too many open live streams");
            }
            http::ServerResponse r;
            r.content_type = "text/event-stream";
            r.stream = [self](http::ResponseStream& out) { return write_stream(self, out); };
            co_return r;
        }
        if (parts.size() == 4 && parts[1] == "canaries" && is_object_name(parts[2]) &&
            is_object_name(parts[3])) {
            if (!self->in_scope(parts[2])) {
                co_return error_response(404, "namespace " + std::string(parts[2]) +
                                                  " is not served by this dashboard");
            }
            co_return co_await canary_detail(self, std::string(parts[2]), std::string(parts[3]));
        }
        co_return error_response(404, "not found");
    }
    if (request.method == "POST") {
        if (parts.size() == 5 && parts[0] == "api" && parts[1] == "canaries" &&
            is_object_name(parts[2]) && is_object_name(parts[3]) && parts[4] == "requests") {
            const auto type = request.header("Content-Type");
            if (!type || type->substr(0, 16) != "application/json") {
                co_return error_response(415, "a request's body must be application/json");
            }
            if (!self->in_scope(parts[2])) {
                co_return error_response(404, "namespace " + std::string(parts[2]) +
                                                  " is not served by this dashboard");
            }
            co_return co_await create_request(self, std::string(parts[2]),
                                              std::string(parts[3]), std::move(request.body));
        }
        co_return error_response(404, "not found");
    }
    co_return error_response(405, "method not allowed");
}

}  // namespace

Result<std::unique_ptr<Dashboard>> Dashboard::start(asio::any_io_executor executor,
                                                    kube::KubeClient& client, Clock& clock,
                                                    DashboardConfig config) {
    if (config.token.empty()) {
        config.token = random_token();
    }
    if (config.address != "127.0.0.1" && config.address != "::1") {
        return fail(ErrorKind::kInvalid, "the dashboard listens on loopback only, not " +
                                             config.address);
    }
    auto impl = std::make_shared<Impl>(executor, client, clock, config);
    http::ServerOptions options;
    options.max_body_bytes = config.max_body_bytes;
    options.max_header_bytes = 8 * 1024;
    options.max_connections = 64;
    options.server_name = "serin-dashboard";
    std::weak_ptr<Impl> weak = impl;
    auto server = http::HttpServer::listen(
        executor, config.address, config.port, options,
        [weak](http::ServerRequest request) -> asio::awaitable<http::ServerResponse> {
            auto self = weak.lock();
            if (!self || self->stopped) {
                co_return error_response(503, "the dashboard is stopping");
            }
            auto answer = co_await route(self, std::move(request));
            add_security_headers(answer);
            co_return answer;
        });
    if (!server) {
        return server.error();
    }
    impl->server = std::move(*server);

    kube::InformerOptions informer_options;
    informer_options.ns = config.ns;
    impl->informer = std::make_unique<kube::Informer>(client, clock, kube::types::canaries(),
                                                      informer_options);
    Impl* raw = impl.get();
    impl->informer->add_handlers(kube::EventHandlers{
        [raw](const kube::ObjectPtr& object) {
            raw->publish(sse("canary", {{"op", "upsert"}, {"canary", canary_summary(*object)}}));
        },
        [raw](const kube::ObjectPtr& old_object, const kube::ObjectPtr& new_object) {
            Json before = canary_summary(*old_object);
            Json after = canary_summary(*new_object);
            if (before != after) {
                raw->publish(sse("canary", {{"op", "upsert"}, {"canary", std::move(after)}}));
            }
        },
        [raw](const kube::ObjectPtr& object) {
            raw->publish(sse("canary", {{"op", "delete"},
                                        {"namespace", kube::object_namespace(*object)},
                                        {"name", kube::object_name(*object)}}));
        },
    });
    impl->informer->start(executor);
    return std::unique_ptr<Dashboard>(new Dashboard(std::move(impl)));
}

Dashboard::~Dashboard() { stop(); }

std::uint16_t Dashboard::port() const { return impl_->server ? impl_->server->port() : 0; }

const std::string& Dashboard::token() const { return impl_->config.token; }

std::string Dashboard::url() const {
    return "http://127.0.0.1:" + std::to_string(port()) + "/?token=" + impl_->config.token;
}

std::size_t Dashboard::open_streams() const { return impl_->subscribers.size(); }

bool Dashboard::synced() const { return impl_->informer && impl_->informer->has_synced(); }

void Dashboard::stop() {
    if (impl_->stopped) {
        return;
    }
    impl_->stopped = true;
    if (impl_->informer) {
        impl_->informer->stop();
    }
    for (const auto& sub : impl_->subscribers) {
        sub->closed = true;
        sub->wake.cancel();
    }
    if (impl_->server) {
        impl_->server->stop();
    }
}

}  // namespace serin::dashboard
