#include "platform/kube/rest_client.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/this_coro.hpp>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <sstream>

#include "platform/core/backoff.hpp"
#include "platform/core/base64.hpp"
#include "platform/core/json.hpp"
#include "platform/core/text.hpp"
#include "platform/kube/token_bucket.hpp"

namespace serin::kube {

namespace asio = boost::asio;
using http::Method;

namespace {

using http::url_encode;

/// Builds "?a=b&c=d" from the non-empty pairs.
class Query {
public:
    Query& add(std::string_view key, std::string_view value) {
        if (!value.empty()) {
            text_ += text_.empty() ? '?' : '&';
            text_ += key;
            text_ += '=';
            text_ += url_encode(value);
        }
        return *this;
    }
    const std::string& str() const { return text_; }

private:
    std::string text_;
};

bool is_read(Method method) { return method == Method::kGet || method == Method::kHead; }

/// What to ask for with ListOptions/WatchOptions::metadata_only (the server falls back to the
/// full objects when it cannot serve metadata, hence the second type).
constexpr std::string_view kMetadataListAccept =
    "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json";
constexpr std::string_view kMetadataAccept =
    "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json";

/// The longest Retry-After honoured.
constexpr std::chrono::seconds kMaxRetryAfter{60};

std::optional<std::chrono::milliseconds> parse_retry_after(const http::Response& response) {
    auto value = response.header("Retry-After");
    if (!value) {
        return std::nullopt;
    }
    long long seconds = 0;
    auto [ptr, ec] = std::from_chars(value->data(), value->data() + value->size(), seconds);
    if (ec == std::errc::result_out_of_range && ptr != value->data() && value->front() != '-') {
        seconds = kMaxRetryAfter.count();  // a number too large to read is as good as the cap
    } else if (ec != std::errc{} || seconds < 0) {
        return std::nullopt;
    }
    // Capped before the conversion to milliseconds, which would overflow for huge values; a
    // server asking for more than a minute is asked again after one.
    return std::chrono::milliseconds{std::min<long long>(seconds, kMaxRetryAfter.count()) * 1000};
}

/// Turns a non-2xx answer into an Error, reading the server's Status object when there is one.
Error error_from_response(const http::Response& response, std::string_view what) {
    Error error;
    error.http_status = response.status;
    std::string reason;
    auto body = Json::parse(response.body, nullptr, false);
    if (!body.is_discarded() && body.is_object() && json_string(body, "kind") == "Status") {
        error.message = text::clip(json_string(body, "message"), text::kMaxMessageBytes);
        reason = json_string(body, "reason");
        if (auto details = body.find("details"); details != body.end() && details->is_object()) {
            if (auto causes = details->find("causes");
                causes != details->end() && causes->is_array()) {
                for (const auto& cause : *causes) {
                    if (!cause.is_object()) {
                        continue;
                    }
                    error.causes.push_back(ErrorCause{
                        json_string(cause, "field"), json_string(cause, "reason"),
                        text::clip(json_string(cause, "message"), text::kMaxMessageBytes)});
                }
            }
        }
    }
    if (error.message.empty()) {
        error.message =
            std::string(what) + ": " + text::clip(response.body, text::kMaxRemoteBodyBytes);
    }
    switch (response.status) {
        case 400: error.kind = ErrorKind::kBadRequest; break;
        case 401: error.kind = ErrorKind::kUnauthorized; break;
        case 403: error.kind = ErrorKind::kForbidden; break;
        case 404: error.kind = ErrorKind::kNotFound; break;
        case 409:
            error.kind = reason == "AlreadyExists" ? ErrorKind::kAlreadyExists
                                                   : ErrorKind::kConflict;
            break;
        case 410: error.kind = ErrorKind::kGone; break;
        case 422: error.kind = ErrorKind::kInvalid; break;
        case 429:
            error.kind = ErrorKind::kTooManyRequests;
            error.retry_after = parse_retry_after(response);
            break;
        default:
            error.kind = response.status >= 500 ? ErrorKind::kTransient : ErrorKind::kBadRequest;
            if (response.status >= 500) {
                error.retry_after = parse_retry_after(response);
            }
            break;
    }
    return error;
}

std::string_view content_type(PatchType type) {
    switch (type) {
        case PatchType::kMerge: return "application/merge-patch+json";
        case PatchType::kJson: return "application/json-patch+json";
        case PatchType::kStrategicMerge: return "application/strategic-merge-patch+json";
        case PatchType::kApply: return "application/apply-patch+yaml";
    }
    return "application/merge-patch+json";
}

Result<Json> parse_body(const http::Response& response) {
    auto body = Json::parse(response.body, nullptr, false);
    if (body.is_discarded()) {
        return fail(ErrorKind::kTransient, "the API server sent a body that is not JSON");
    }
    // nlohmann::json converts to anything, so say which alternative of the result this is.
    return Result<Json>(boost::system::in_place_value, std::move(body));
}

/// A bearer token read from a file and re-read when the file changes (service-account tokens
/// are rotated on disk by the kubelet, by swapping a symlink to a new file).
class TokenFile {
public:
    explicit TokenFile(std::filesystem::path path) : path_(std::move(path)) {}

    /// The current token; re-reads the file if it changed or `force` is set.
    Result<std::string> token(bool force = false) {
        struct stat info {};
        if (::stat(path_.c_str(), &info) != 0) {
            return fail(ErrorKind::kUnauthorized, "cannot read token file " + path_.string() +
                                                      ": " + std::strerror(errno));
        }
        // The inode tells a renamed-in replacement apart even when it was written within the
        // same timestamp tick as the file it replaces.
        Identity identity{info.st_ino, info.st_size, info.st_mtim.tv_sec, info.st_mtim.tv_nsec};
        if (force || !loaded_ || identity != identity_) {
            std::ifstream in(path_);
            if (!in) {
                return fail(ErrorKind::kUnauthorized, "cannot open token file " + path_.string());
            }
            std::stringstream buffer;
            buffer << in.rdbuf();
            std::string text = buffer.str();
            while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back())) != 0) {
                text.pop_back();
            }
            token_ = std::move(text);
            identity_ = identity;
            loaded_ = true;
        }
        return token_;
    }

private:
    struct Identity {
        ino_t inode = 0;
        off_t size = 0;
        time_t mtime_sec = 0;
        long mtime_nsec = 0;
        bool operator==(const Identity&) const = default;
    };
    std::filesystem::path path_;
    Identity identity_;
    std::string token_;
    bool loaded_ = false;
};

class RestKubeClientImpl final : public RestKubeClient {
public:
    RestKubeClientImpl(http::HttpClientPtr http, ClusterConfig config, Clock& clock,
                       RestClientOptions options)
        : http_(std::move(http)),
          config_(std::move(config)),
          clock_(clock),
          options_(std::move(options)),
          writes_(clock, options_.write_qps, options_.write_burst) {
        while (!config_.server.empty() && config_.server.back() == '/') {
            config_.server.pop_back();
        }
        if (!config_.token_file.empty()) {
            token_file_.emplace(config_.token_file);
        }
    }

    const RestClientStats& stats() const override { return stats_; }

    // KubeClient
    asio::awaitable<Result<Json>> get(ResourceType type, std::string ns,
                                      std::string name) override {
        std::string path = type.object_path(ns, name);
        co_return co_await call_json(Method::kGet, std::move(path), std::string(),
                                     std::string_view());
    }

    asio::awaitable<Result<ListPage>> list(ResourceType type, std::string ns,
                                           ListOptions options) override {
        Query query;
        query.add("labelSelector", options.label_selector)
            .add("fieldSelector", options.field_selector)
            .add("continue", options.continue_token)
            .add("resourceVersion", options.resource_version);
        if (options.limit > 0) {
            query.add("limit", std::to_string(options.limit));
        }
        std::string path = type.collection_path(ns) + query.str();
        auto body = co_await call_json(Method::kGet, std::move(path), std::string(),
                                       std::string_view(),
                                       options.metadata_only ? kMetadataListAccept : "");
        if (!body) {
            co_return body.error();
        }
        ListPage page;
        if (auto meta = body->find("metadata"); meta != body->end() && meta->is_object()) {
            page.resource_version = json_string(*meta, "resourceVersion");
            page.continue_token = json_string(*meta, "continue");
        }
        if (auto items = body->find("items"); items != body->end() && items->is_array()) {
            page.items.reserve(items->size());
            for (auto& item : *items) {
                // LIST items carry no apiVersion/kind; fill them in so they read like GETs.
                if (item.is_object()) {
                    item["apiVersion"] = type.api_version();
                    item["kind"] = type.kind;
                }
                page.items.push_back(std::move(item));
            }
        }
        co_return page;
    }

    asio::awaitable<Result<Json>> create(ResourceType type, std::string ns, Json object,
                                         WriteOptions options) override {
        if (ns.empty()) {
            ns = object_namespace(object);
        }
        co_return co_await call_json(Method::kPost,
                                     type.collection_path(ns) + write_query(options).str(),
                                     dump_json(object), "application/json", {},
                                     options.unthrottled);
    }

    asio::awaitable<Result<Json>> update(ResourceType type, std::string ns, Json object,
                                         WriteOptions options) override {
        if (ns.empty()) {
            ns = object_namespace(object);
        }
        std::string path = type.object_path(ns, object_name(object), options.subresource);
        co_return co_await call_json(Method::kPut, path + write_query(options).str(),
                                     dump_json(object), "application/json", {},
                                     options.unthrottled);
    }

    asio::awaitable<Result<Json>> patch(ResourceType type, std::string ns, std::string name,
                                        PatchType patch_type, std::string body,
                                        WriteOptions options) override {
        Query query = write_query(options);
        if (patch_type == PatchType::kApply && options.force) {
            query.add("force", "true");
        }
        std::string path = type.object_path(ns, name, options.subresource);
        co_return co_await call_json(Method::kPatch, path + query.str(), std::move(body),
                                     content_type(patch_type), {}, options.unthrottled);
    }

    asio::awaitable<Result<void>> remove(ResourceType type, std::string ns, std::string name,
                                         DeleteOptions options) override {
        Json body = {{"apiVersion", "v1"}, {"kind", "DeleteOptions"}};
        if (!options.propagation_policy.empty()) {
            body["propagationPolicy"] = options.propagation_policy;
        }
        if (options.precondition_resource_version) {
            body["preconditions"] = {{"resourceVersion", *options.precondition_resource_version}};
        }
        if (options.grace_period_seconds) {
            body["gracePeriodSeconds"] = *options.grace_period_seconds;
        }
        auto result = co_await call(Method::kDelete, type.object_path(ns, name), dump_json(body),
                                    "application/json");
        if (!result) {
            co_return result.error();
        }
        co_return Result<void>{};
    }

    asio::awaitable<Result<void>> watch(ResourceType type, std::string ns, WatchOptions options,
                                        WatchHandler handler) override {
        Query query;
        query.add("watch", "true")
            .add("resourceVersion", options.resource_version)
            .add("labelSelector", options.label_selector)
            .add("fieldSelector", options.field_selector)
            .add("allowWatchBookmarks", options.allow_bookmarks ? "true" : "")
            .add("timeoutSeconds", options.timeout_seconds > 0
                                       ? std::to_string(options.timeout_seconds)
                                       : std::string{});
        ++stats_.watches;
        const std::string watch_path = type.collection_path(ns);
        std::optional<Error> stream_error;
        // A watch is counted once it is established (its first line, which only a 2xx answer
        // delivers), not when it ends minutes later; one that never sends a line is counted then.
        bool counted = false;
        auto on_line = [&](std::string_view line) -> bool {
            if (!counted) {
                counted = true;
                ++stats_.by_verb_and_code[{"WATCH", "200"}];
                auto [kube_verb, resource] = kube_verb_and_resource("WATCH", watch_path);
                ++stats_.by_verb_resource_code[{kube_verb, resource, "200"}];
            }
            if (line.empty()) {
                return true;
            }
            count_connections();  // the watch's own connection, before the stream ends
            auto event = decode_watch_frame(line);
            if (!event) {
                stream_error = event.error();
                return false;
            }
            return handler(std::move(*event));
        };

        auto response = co_await with_auth_retry([&](http::Request request)
                                                     -> asio::awaitable<Result<http::Response>> {
            request.timeout = watch_silence_limit(options.timeout_seconds);
            auto streamed = co_await http_->stream(std::move(request), on_line);
            count_connections();
            co_return streamed;
        }, Method::kGet, type.collection_path(ns) + query.str(), {}, {}, "WATCH", &counted,
           options.metadata_only ? kMetadataAccept : "");
        if (!response) {
            co_return response.error();
        }
        if (response->status / 100 != 2) {
            co_return error_from_response(*response, "watch " + type.resource);
        }
        if (stream_error) {
            co_return *stream_error;
        }
        co_return Result<void>{};
    }

    asio::awaitable<Result<std::string>> get_raw(std::string path) override {
        auto response = co_await call(Method::kGet, std::move(path), std::string(),
                                      std::string_view());
        if (!response) {
            co_return response.error();
        }
        co_return std::move(response->body);
    }

private:
    /// How long a watch may stay silent before it is taken for dead (RestClientOptions).
    std::chrono::milliseconds watch_silence_limit(std::int64_t timeout_seconds) const {
        if (timeout_seconds <= 0) {
            return options_.watch_idle_timeout;
        }
        return std::max(options_.watch_idle_timeout,
                        std::chrono::milliseconds(std::chrono::seconds{timeout_seconds}) +
                            options_.watch_stall_margin);
    }

    static Query write_query(const WriteOptions& options) {
        Query query;
        query.add("fieldManager", options.field_manager);
        if (options.dry_run) {
            query.add("dryRun", "All");
        }
        return query;
    }

    Result<std::string> authorization(bool refresh) {
        if (token_file_) {
            auto token = token_file_->token(refresh);
            if (!token) {
                return token.error();
            }
            return "Bearer " + *token;
        }
        if (!config_.token.empty()) {
            return "Bearer " + config_.token;
        }
        if (!config_.username.empty()) {
            return "Basic " + encode_base64(config_.username + ":" + config_.password);
        }
        return std::string{};
    }

    /// Builds the request and sends it with `send`; on a 401 with a token file, re-reads the token
    /// once and tries again, so a rotated token is picked up even between change checks. Each
    /// request sent is counted under `verb` and the answer's status (or "error"), unless `counted`
    /// says it was counted already.
    template <class Send>
    asio::awaitable<Result<http::Response>> with_auth_retry(Send send, Method method,
                                                           std::string path, std::string body,
                                                           std::string_view type,
                                                           std::string_view verb,
                                                           const bool* counted = nullptr,
                                                           std::string_view accept = {}) {
        for (int attempt = 0;; ++attempt) {
            auto auth = authorization(attempt > 0);
            if (!auth) {
                co_return auth.error();
            }
            http::Request request;
            request.method = method;
            request.url = config_.server + path;
            request.body = body;
            request.timeout = options_.request_timeout;
            request.headers.emplace_back("Accept",
                                         accept.empty() ? "application/json" : std::string(accept));
            if (!auth->empty()) {
                request.headers.emplace_back("Authorization", std::move(*auth));
            }
            if (!type.empty()) {
                request.headers.emplace_back("Content-Type", std::string(type));
            }
            ++stats_.requests;
            auto response = co_await send(std::move(request));
            if (counted == nullptr || !*counted) {
                const std::string code = response ? std::to_string(response->status) : "error";
                ++stats_.by_verb_and_code[{std::string{verb}, code}];
                auto [kube_verb, resource] = kube_verb_and_resource(verb, path);
                ++stats_.by_verb_resource_code[{kube_verb, resource, code}];
            }
            if (response && response->status == 401 && token_file_ && attempt == 0) {
                continue;
            }
            co_return response;
        }
    }

    /// One API call with the retry policy: 429s are retried for every verb (the server did not
    /// act on them), transient failures only for reads. Writes wait on the token bucket unless
    /// `unthrottled` (the leader's Lease).
    asio::awaitable<Result<http::Response>> call(Method method, std::string path,
                                                 std::string body, std::string_view type,
                                                 std::string_view accept = {},
                                                 bool unthrottled = false) {
        const bool read = is_read(method);
        if (read) {
            ++stats_.reads;
        } else {
            ++stats_.writes;
            if (!unthrottled && co_await writes_.acquire()) {
                ++stats_.throttled;
            }
        }
        Backoff backoff(std::chrono::milliseconds{100}, std::chrono::milliseconds{5'000});
        for (int attempt = 0;; ++attempt) {
            auto response = co_await with_auth_retry(
                [this](http::Request request) -> asio::awaitable<Result<http::Response>> {
                    auto answer = co_await http_->send(std::move(request));
                    count_connections();
                    co_return answer;
                },
                method, path, body, type, http::to_string(method), nullptr, accept);
            std::optional<Error> error;
            if (!response) {
                error = response.error();
            } else if (response->status / 100 != 2) {
                error = error_from_response(*response, path);
            } else {
                co_return response;
            }
            bool retry = error->kind == ErrorKind::kTooManyRequests ||
                         (read && error->kind == ErrorKind::kTransient);
            if (!retry || attempt >= options_.max_retries) {
                co_return *error;
            }
            auto delay = error->retry_after.value_or(backoff.next());
            spdlog::debug("kube: {} {} failed ({}), retrying in {} ms", http::to_string(method),
                          path, error->describe(), delay.count());
            // Not `if (!co_await ...)`: g++ 12 miscompiles a co_await inside a condition.
            const bool slept = co_await clock_.sleep_for(delay);
            if (!slept) {
                co_return fail(ErrorKind::kCancelled, "cancelled while waiting to retry");
            }
        }
    }

    asio::awaitable<Result<Json>> call_json(Method method, std::string path, std::string body,
                                            std::string_view type, std::string_view accept = {},
                                            bool unthrottled = false) {
        auto response =
            co_await call(method, std::move(path), std::move(body), type, accept, unthrottled);
        if (!response) {
            co_return response.error();
        }
        co_return parse_body(*response);
    }

    /// Copies the HttpClient's connection counters into stats_ (read by reference elsewhere).
    void count_connections() {
        const http::ClientStats now = http_->stats();
        stats_.connections_opened = now.connections_opened;
        stats_.connections_reused = now.connections_reused;
        stats_.tls_sessions_resumed = now.tls_sessions_resumed;
    }

    http::HttpClientPtr http_;
    ClusterConfig config_;
    Clock& clock_;
    RestClientOptions options_;
    TokenBucket writes_;
    std::optional<TokenFile> token_file_;
    RestClientStats stats_;
};

}  // namespace

std::pair<std::string, std::string> kube_verb_and_resource(std::string_view method,
                                                           std::string_view path) {
    path = path.substr(0, path.find('?'));
    std::vector<std::string_view> parts;
    while (!path.empty()) {
        const std::size_t slash = path.find('/');
        if (slash != 0) {
            parts.push_back(path.substr(0, slash));
        }
        path = slash == std::string_view::npos ? std::string_view{} : path.substr(slash + 1);
    }
    std::string lower;
    for (const char c : method) {
        lower += static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    }
    // /api/v1/... or /apis/GROUP/VERSION/...; then [namespaces/NS/]RESOURCE[/NAME[/SUBRESOURCE]],
    // where namespaces/NS alone is the Namespace NS itself.
    std::size_t at = 0;
    if (!parts.empty() && parts[0] == "api") {
        at = 2;
    } else if (!parts.empty() && parts[0] == "apis") {
        at = 3;
    } else {
        return {lower, ""};
    }
    if (parts.size() > at + 2 && parts[at] == "namespaces") {
        at += 2;
    }
    if (parts.size() <= at) {
        return {lower, ""};
    }
    std::string resource{parts[at]};
    const bool collection = parts.size() == at + 1;
    if (parts.size() > at + 2) {
        resource += "/" + std::string{parts[at + 2]};
    }
    static constexpr std::pair<std::string_view, std::string_view> kVerbs[] = {
        {"post", "create"}, {"put", "update"}, {"patch", "patch"}, {"watch", "watch"}};
    std::string verb = lower;
    if (lower == "get") {
        verb = collection ? "list" : "get";
    } else if (lower == "delete") {
        verb = collection ? "deletecollection" : "delete";
    } else {
        for (const auto& [from, to] : kVerbs) {
            if (lower == from) {
                verb = to;
            }
        }
    }
    return {verb, resource};
}

Result<WatchEvent> decode_watch_frame(std::string_view line) {
    auto frame = Json::parse(line, nullptr, false);
    if (frame.is_discarded() || !frame.is_object()) {
        return fail(ErrorKind::kTransient, "watch sent a frame that is not JSON");
    }
    std::string event_type = json_string(frame, "type");
    auto object = frame.find("object");
    if (object == frame.end()) {
        return fail(ErrorKind::kTransient, "watch frame without an object");
    }
    WatchEvent event;
    if (event_type == "ADDED") {
        event.type = WatchEvent::Type::kAdded;
    } else if (event_type == "MODIFIED") {
        event.type = WatchEvent::Type::kModified;
    } else if (event_type == "DELETED") {
        event.type = WatchEvent::Type::kDeleted;
    } else if (event_type == "BOOKMARK") {
        event.type = WatchEvent::Type::kBookmark;
    } else if (event_type == "ERROR") {
        http::Response as_response;
        const Json* code =
            object->is_object() && object->contains("code") ? &object->at("code") : nullptr;
        as_response.status = code != nullptr && code->is_number_integer() &&
                                     code->get<std::int64_t>() >= 100 &&
                                     code->get<std::int64_t>() <= 599
                                 ? static_cast<int>(code->get<std::int64_t>())
                                 : 500;
        as_response.body = dump_json(*object);
        return error_from_response(as_response, "watch");
    } else {
        return fail(ErrorKind::kTransient,
                    "watch sent an unknown event type '" + text::clip(event_type, 64) + "'");
    }
    event.object = std::move(*object);
    return event;
}

Result<std::unique_ptr<RestKubeClient>> make_rest_client(asio::any_io_executor executor,
                                                         ClusterConfig config, Clock& clock,
                                                         RestClientOptions options) {
    http::ClientOptions http_options;
    http_options.tls = config.tls;
    http_options.user_agent = options.user_agent;
    http_options.proxies = options.proxies;
    // The API server's answers are trusted more than a tenant's servers, but LIST pages of large
    // objects are big: bounded well below the controller's memory limit, not at the default.
    http_options.max_body_bytes = options.max_response_bytes;
    auto http = http::make_beast_client(std::move(executor), std::move(http_options));
    if (!http) {
        return http.error();
    }
    return make_rest_client(std::move(*http), std::move(config), clock, std::move(options));
}

std::unique_ptr<RestKubeClient> make_rest_client(http::HttpClientPtr http, ClusterConfig config,
                                                 Clock& clock, RestClientOptions options) {
    return std::make_unique<RestKubeClientImpl>(std::move(http), std::move(config), clock,
                                                std::move(options));
}

}  // namespace serin::kube
