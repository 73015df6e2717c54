#pragma once

#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>

/// The corpus of inputs that once broke Serin (tests/data/hostile/), for the tests that replay
/// them and for fuzz targets. Needs SERIN_SOURCE_DIR defined for the test target.
namespace serin::testing {

/// The bytes of tests/data/hostile/`name`, exactly as stored.
inline std::string hostile_input(const std::string& name) {
    const std::string path = std::string(SERIN_SOURCE_DIR) + "/tests/data/hostile/" + name;
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        throw std::runtime_error("cannot read " + path);
    }
    std::stringstream buffer;
    buffer << in.rdbuf();
    return buffer.str();
}

}  // namespace serin::testing
