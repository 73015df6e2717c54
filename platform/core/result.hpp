#pragma once

#include <boost/system/result.hpp>
#include <stdexcept>
#include <utility>

#include "platform/core/error.hpp"

namespace serin {

/// Thrown only by Result<T>::value() on an error; code that handles errors checks first.
class ErrorException : public std::runtime_error {
public:
    explicit ErrorException(Error error)
        : std::runtime_error(error.describe()), error_(std::move(error)) {}
    const Error& error() const { return error_; }

private:
    Error error_;
};

/// Found by ADL from boost::system::result<T, Error>::value().
[[noreturn]] inline void throw_exception_from_error(const Error& e,
                                                    const boost::source_location& /*loc*/) {
    throw ErrorException(e);
}

/// The return type of every operation that can fail in an expected way. [[nodiscard]]: an error
/// dropped on the floor is a warning, an error under -Werror (boost::system::result is not
/// marked in Boost 1.81; clang also warns when the result of a co_await is dropped).
template <class T>
class [[nodiscard]] Result : public boost::system::result<T, Error> {
public:
    using Base = boost::system::result<T, Error>;
    using Base::Base;
    Result(const Base& base) : Base(base) {}        // NOLINT(google-explicit-constructor)
    Result(Base&& base) : Base(std::move(base)) {}  // NOLINT(google-explicit-constructor)
};

/// `return fail(ErrorKind::kInvalid, "...")` reads better than constructing an Error inline.
inline Error fail(ErrorKind kind, std::string message) {
    return Error{kind, std::move(message), 0, std::nullopt, {}};
}

}  // namespace serin
