#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "analysis/severity.hpp"

/// What Serin posts to chat services (flagger-spec §7): one message about one canary, shaped for
/// each AlertProvider type. Pure: no I/O.
namespace serin::notify {

using Json = nlohmann::json;
using analysis::Severity;

/// "info", "warn" or "error".
std::string_view to_string(Severity severity);

/// A titled value shown under the message (Slack attachment field, Teams fact, gchat widget).
struct Field {
    std::string title;
    std::string value;
};

/// One notification about canary `name` in `ns`.
struct Message {
    std::string name;
    std::string ns;
    std::string text;
    Severity severity = Severity::kInfo;
    std::vector<Field> fields;
};

/// The AlertProvider types, with Flagger's payload shapes.
enum class Kind { kSlack, kDiscord, kRocket, kMsTeams, kGChat };

/// "slack", "discord", "rocket", "msteams" or "gchat"; nullopt for anything else.
std::optional<Kind> parse_kind(std::string_view type);
std::string_view to_string(Kind kind);

/// Where and how one notification is posted. `address` and `token` are secrets: they are never
/// logged or written into an error (use `label` to name the destination).
struct Destination {
    Kind kind = Kind::kSlack;
    std::string label;  ///< e.g. "AlertProvider slack.test" or "-slack-url"
    std::string address;
    std::string token;  ///< sent as a Bearer token when set
    std::string channel = "general";
    std::string username = "flagger";
    std::string proxy;  ///< an HTTP proxy to post through (http::Proxy), empty for none
};

/// The URL the message is posted to: `address`, except that Discord's gets Slack-compatible
/// `/slack` appended unless it already ends with it.
std::string post_url(const Destination& destination);

/// The JSON body for `destination.kind`:
/// - slack, discord: {channel, username, icon_url "", icon_emoji ":rocket:", attachments: [{color
///   good|danger, author_name "<name>.<ns>", text, mrkdwn_in ["text"], fields [{title, value,
///   short false}]}]};
/// - rocket: the same with colors #0076D7 / #FF0000;
/// - msteams: a MessageCard with themeColor 0076D7 / FF0000 and the fields as facts;
/// - gchat: a card headed "Flagger" with the message and one widget per field.
/// The error color is used for Severity::kError only.
Json payload(const Destination& destination, const Message& message);

/// Whether an `alerts[]` entry with `entry_severity` gets an alert of `severity`: an entry of
/// info (or none: Flagger documents info as the default) gets everything, warn gets warn and
/// error, error gets error. nullopt for an unknown entry severity.
std::optional<bool> severity_matches(std::string_view entry_severity, Severity severity);

/// `text` with every occurrence of `secret` (and of its path and query, for URLs) replaced by
/// "<redacted>", so an error about a webhook URL can be logged. Empty secrets change nothing.
std::string redact(std::string text, std::string_view secret);

}  // namespace serin::notify
