// What a pod is given to find its API server: KUBERNETES_SERVICE_HOST and _PORT and the service
// account's CA and namespace files. The input is split at NUL bytes into host, port, CA text and
// namespace text (a missing fourth part: no namespace file).
#include <algorithm>
#include <cctype>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "platform/http/http_client.hpp"
#include "platform/kube/config.hpp"
#include "tests/fuzz/fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view rest = serin::fuzz::as_text(data, size);
    std::vector<std::string_view> parts;
    while (parts.size() < 3) {
        const auto nul = rest.find('\0');
        parts.push_back(rest.substr(0, nul));
        rest = nul == std::string_view::npos ? std::string_view{} : rest.substr(nul + 1);
    }
    std::optional<std::string_view> ns;
    if (!rest.empty()) {
        ns = rest;
    }
    auto config = serin::kube::make_in_cluster_config(parts[0], parts[1], std::string(parts[2]), ns);
    if (!config) {
        serin::fuzz::check(!config.error().message.empty(), "an error without a message");
        return 0;
    }
    // What is accepted makes a URL the HTTP client can use, to the host and port given.
    auto url = serin::http::Url::parse(config->server);
    serin::fuzz::check(url.has_value(), "an accepted host and port that make no URL");
    std::string_view host = parts[0];
    if (host.size() >= 2 && host.front() == '[') {
        host = host.substr(1, host.size() - 2);
    }
    // Host names are case-insensitive; the URL parser lowers them.
    std::string lowered(host);
    std::transform(lowered.begin(), lowered.end(), lowered.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    serin::fuzz::check(url->host == lowered || url->host == host,
                       "the URL's host is not the one given");
    serin::fuzz::check(std::stoi(url->port) == std::stoi(std::string(parts[1])),
                       "the URL's port is not the one given");
    serin::fuzz::check(!config->tls.ca_pem.empty(), "an empty CA accepted");
    const std::string& name = config->default_namespace;
    serin::fuzz::check(!name.empty() && name.size() <= 63, "a namespace that is not a label");
    return 0;
}
