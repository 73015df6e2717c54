#include "meshes/common/session_affinity.hpp"

namespace serin::meshes {

bool update_session_cookies(api::CanaryStatus& status, const api::SessionAffinity& affinity,
                            const analysis::Routes& routes,
                            const std::function<std::string()>& random_value) {
    const api::CanaryStatus before = status;
    if (routes.canary != 0) {
        if (status.session_affinity_cookie.empty()) {
            status.session_affinity_cookie = affinity.cookie_name + "=" + random_value();
        }
        if (affinity.primary_cookie_name.empty()) {
            status.primary_session_affinity_cookie.clear();
        } else if (status.primary_session_affinity_cookie.empty()) {
            status.primary_session_affinity_cookie =
                affinity.primary_cookie_name + "=" + random_value();
        }
    } else if (!status.session_affinity_cookie.empty()) {
        status.previous_session_affinity_cookie = status.session_affinity_cookie;
        status.session_affinity_cookie.clear();
        status.primary_session_affinity_cookie.clear();
    }
    return status.session_affinity_cookie != before.session_affinity_cookie ||
           status.primary_session_affinity_cookie != before.primary_session_affinity_cookie ||
           status.previous_session_affinity_cookie != before.previous_session_affinity_cookie;
}

std::string random_cookie_value(std::mt19937_64& random) {
    static constexpr std::string_view kLetters =
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    std::uniform_int_distribution<std::size_t> pick(0, kLetters.size() - 1);
    std::string value(10, 'a');
    for (char& c : value) {
        c = kLetters[pick(random)];
    }
    return value;
}

std::string set_cookie_value(const api::SessionAffinity& affinity, std::string_view cookie,
                             int max_age) {
    std::string out = std::string(cookie) + "; Max-Age=" + std::to_string(max_age);
    if (!affinity.domain.empty()) {
        out += "; Domain=" + affinity.domain;
    }
    if (affinity.http_only.value_or(false)) {
        out += "; HttpOnly";
    }
    if (affinity.partitioned.value_or(false)) {
        out += "; Partitioned";
    }
    if (!affinity.path.empty()) {
        out += "; Path=" + affinity.path;
    }
    if (!affinity.same_site.empty()) {
        out += "; SameSite=" + affinity.same_site;
    }
    if (affinity.secure.value_or(false)) {
        out += "; Secure";
    }
    return out;
}

std::pair<std::string, std::string> split_cookie(std::string_view cookie) {
    const auto eq = cookie.find('=');
    if (eq == std::string_view::npos) {
        return {std::string(cookie), {}};
    }
    return {std::string(cookie.substr(0, eq)), std::string(cookie.substr(eq + 1))};
}

std::string cookie_header_regex(std::string_view cookie) {
    const auto [name, value] = split_cookie(cookie);
    return ".*" + name + ".*" + value + ".*";
}

}  // namespace serin::meshes
