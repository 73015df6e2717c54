#include "controller/notify/payload.hpp"

namespace serin::notify {

std::string_view to_string(Severity severity) {
    switch (severity) {
    case Severity::kInfo:
        return "info";
    case Severity::kWarn:
        return "warn";
    case Severity::kError:
        return "error";
    }
    return "info";
}

std::optional<Kind> parse_kind(std::string_view type) {
    if (type == "slack") {
        return Kind::kSlack;
    }
    if (type == "discord") {
        return Kind::kDiscord;
    }
    if (type == "rocket") {
        return Kind::kRocket;
    }
    if (type == "msteams") {
        return Kind::kMsTeams;
    }
    if (type == "gchat") {
        return Kind::kGChat;
    }
    return std::nullopt;
}

std::string_view to_string(Kind kind) {
    switch (kind) {
    case Kind::kSlack:
        return "slack";
    case Kind::kDiscord:
        return "discord";
    case Kind::kRocket:
        return "rocket";
    case Kind::kMsTeams:
        return "msteams";
    case Kind::kGChat:
        return "gchat";
    }
    return "slack";
}

std::string post_url(const Destination& destination) {
    std::string url = destination.address;
    if (destination.kind == Kind::kDiscord) {
        constexpr std::string_view kSuffix = "/slack";
        if (url.size() < kSuffix.size() ||
            url.compare(url.size() - kSuffix.size(), kSuffix.size(), kSuffix) != 0) {
            url += kSuffix;
        }
    }
    return url;
}

namespace {

Json slack_shape(const Destination& d, const Message& m, const char* ok_color,
                 const char* error_color) {
    Json fields = Json::array();
    for (const Field& f : m.fields) {
        fields.push_back({{"title", f.title}, {"value", f.value}, {"short", false}});
    }
    Json attachment = {{"color", m.severity == Severity::kError ? error_color : ok_color},
                       {"author_name", m.name + "." + m.ns},
                       {"text", m.text},
                       {"mrkdwn_in", Json::array({"text"})},
                       {"fields", std::move(fields)}};
    return {{"channel", d.channel},
            {"username", d.username},
            {"icon_url", ""},
            {"icon_emoji", ":rocket:"},
            {"attachments", Json::array({std::move(attachment)})}};
}

Json teams_shape(const Message& m) {
    Json facts = Json::array();
    for (const Field& f : m.fields) {
        facts.push_back({{"name", f.title}, {"value", f.value}});
    }
    const std::string id = m.name + "." + m.ns;
    return {{"@type", "MessageCard"},
            {"@context", "http://schema.org/extensions"},
            {"themeColor", m.severity == Severity::kError ? "FF0000" : "0076D7"},
            {"summary", id},
            {"sections", Json::array({{{"activityTitle", m.text},
                                       {"activitySubtitle", id},
                                       {"facts", std::move(facts)}}})}};
}

Json gchat_shape(const Message& m) {
    const auto paragraph = [](std::string text) {
        return Json{{"textParagraph", {{"text", std::move(text)}}}};
    };
    Json sections = Json::array();
    sections.push_back(
        {{"widgets",
          Json::array({paragraph("<font color=#848484><strong>" + m.text + "</strong></font>")})}});
    if (!m.fields.empty()) {
        Json widgets = Json::array();
        for (const Field& f : m.fields) {
            widgets.push_back(paragraph(f.title + "<br><font color=#848484><strong>" + f.value +
                                        "</strong></font>"));
        }
        sections.push_back({{"widgets", std::move(widgets)}});
    }
    return {{"cards", Json::array({{{"header",
                                     {{"title", "Flagger"},
                                      {"subtitle", m.name + "." + m.ns},
                                      {"imageUrl", "https://flagger.app/favicon.png"}}},
                                    {"sections", std::move(sections)}}})}};
}

}  // namespace

Json payload(const Destination& destination, const Message& message) {
    switch (destination.kind) {
    case Kind::kSlack:
    case Kind::kDiscord:
        return slack_shape(destination, message, "good", "danger");
    case Kind::kRocket:
        return slack_shape(destination, message, "#0076D7", "#FF0000");
    case Kind::kMsTeams:
        return teams_shape(message);
    case Kind::kGChat:
        return gchat_shape(message);
    }
    return Json::object();
}

std::optional<bool> severity_matches(std::string_view entry_severity, Severity severity) {
    if (entry_severity.empty() || entry_severity == "info") {
        return true;
    }
    if (entry_severity == "warn") {
        return severity == Severity::kWarn || severity == Severity::kError;
    }
    if (entry_severity == "error") {
        return severity == Severity::kError;
    }
    return std::nullopt;
}

std::string redact(std::string text, std::string_view secret) {
    const auto replace_all = [&text](std::string_view what) {
        if (what.empty()) {
            return;
        }
        for (std::size_t at = text.find(what); at != std::string::npos;
             at = text.find(what, at + 10)) {
            text.replace(at, what.size(), "<redacted>");
        }
    };
    replace_all(secret);
    // A URL's path and query carry its secret (Slack's /services/T/B/XXX); the host does not.
    if (const auto scheme = secret.find("://"); scheme != std::string_view::npos) {
        if (const auto path = secret.find('/', scheme + 3); path != std::string_view::npos &&
                                                            secret.size() - path > 1) {
            replace_all(secret.substr(path));
        }
    }
    return text;
}

}  // namespace serin::notify
