#pragma once

// Lets Catch print a serin::Result in a failed assertion: the error's description, or "ok".
#include <catch2/catch.hpp>
#include <string>

#include "platform/core/result.hpp"

namespace Catch {

template <class T>
struct StringMaker<boost::system::result<T, serin::Error>> {
    static std::string convert(const boost::system::result<T, serin::Error>& result) {
        return result ? std::string("ok") : "error: " + result.error().describe();
    }
};

template <class T>
struct StringMaker<serin::Result<T>> {
    static std::string convert(const serin::Result<T>& result) {
        return StringMaker<boost::system::result<T, serin::Error>>::convert(result);
    }
};

}  // namespace Catch
