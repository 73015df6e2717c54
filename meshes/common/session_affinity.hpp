#pragma once

#include <functional>
#include <random>
#include <string>
#include <string_view>

#include "analysis/routes.hpp"
#include "crds/api/canary.hpp"

/// Session affinity (flagger-spec §4.5): cookies that keep a user on the version that first
/// served them, for the routers that support it (Istio, Gateway API).
namespace serin::meshes {

/// The cookies of `status` updated for a move to `routes`: while the canary has traffic, the
/// current canary cookie (and the primary one, when affinity.primaryCookieName is set) is made
/// once per release from `random_value`; when its weight drops to 0 the canary cookie becomes
/// the previous one (to be expired) and the current ones are cleared. Whether anything changed.
/// Pure but for `random_value`.
bool update_session_cookies(api::CanaryStatus& status, const api::SessionAffinity& affinity,
                            const analysis::Routes& routes,
                            const std::function<std::string()>& random_value);

/// 10 random ASCII letters, a cookie value.
std::string random_cookie_value(std::mt19937_64& random);

/// The Set-Cookie value for `cookie` ("name=value"): `cookie; Max-Age=<max_age>` plus Domain,
/// HttpOnly, Partitioned, Path, SameSite and Secure when set, in that order.
std::string set_cookie_value(const api::SessionAffinity& affinity, std::string_view cookie,
                             int max_age);

/// The name and value of "name=value" (the value is empty without '=').
std::pair<std::string, std::string> split_cookie(std::string_view cookie);

/// The regular expression matching a Cookie header that carries `cookie` ("name=value").
std::string cookie_header_regex(std::string_view cookie);

}  // namespace serin::meshes
