#pragma once

#include <string_view>

namespace serin::dashboard {

/// A file of the web page, embedded into the binary at build time (cli/dashboard/embed.cmake).
struct Asset {
    std::string_view path;          ///< "/app.js"
    std::string_view content_type;  ///< "text/javascript; charset=utf-8"
    std::string_view body;
};

/// The asset served at `path`, or null.
const Asset* find_asset(std::string_view path);

}  // namespace serin::dashboard
