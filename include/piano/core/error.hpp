// piano/core/error.hpp: the exception types the library throws.
//
// Every error a caller can provoke with bad input is one of these, so a program can catch
// the family it cares about and show the message: the messages name the operation, the
// file, the line or the shapes involved, never just "invalid argument".
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

#include <Eigen/Core>

namespace piano {

/// Two tensors whose shapes do not fit together, e.g. `matmul: [2,3] x [4,5]`.
/// The message always names the op and both shapes.
class ShapeError : public std::invalid_argument {
public:
    using std::invalid_argument::invalid_argument;
};

namespace detail {

/// `text` with every byte that does not print (a control character or DEL) written as
/// \xNN, so a NUL or an escape sequence taken from a file neither cuts a message short
/// nor reaches the terminal. Bytes >= 0x80 (UTF-8) are kept.
inline std::string printable(const std::string& text) {
    std::string out;
    out.reserve(text.size());
    for (const char ch : text) {
        const auto byte = static_cast<unsigned char>(ch);
        if (byte >= 0x20 && byte != 0x7f) {
            out += ch;
        } else {
            out += "\\x";
            out += "0123456789ABCDEF"[byte >> 4];
            out += "0123456789ABCDEF"[byte & 15];
        }
    }
    return out;
}

}  // namespace detail

/// A malformed input record. what() reads "FILE:LINE: field NAME: problem", with bytes
/// that do not print escaped (detail::printable); the parts are also available, as given,
/// for programs that report errors their own way.
class DataError : public std::runtime_error {
public:
    DataError(std::string file, long line, std::string field, const std::string& problem)
        : std::runtime_error(detail::printable(file + ":" + std::to_string(line) + ": field " + field + ": " + problem)),
          file_(std::move(file)), line_(line), field_(std::move(field)) {}
    const std::string& file() const noexcept { return file_; }
    long line() const noexcept { return line_; }
    const std::string& field() const noexcept { return field_; }

private:
    std::string file_;
    long line_;
    std::string field_;
};

/// A checkpoint that cannot be read or does not fit the model: wrong magic number or
/// version, truncated, a missing or renamed parameter, a shape that differs.
class CheckpointError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// A configuration value that is missing, malformed or out of range.
class ConfigError : public std::invalid_argument {
public:
    using std::invalid_argument::invalid_argument;
};

/// An op produced NaN or Inf while anomaly detection was on (see set_anomaly_detection).
class AnomalyError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

namespace detail {

/// ConfigError "WHO: OPTION must be >= MIN, got VALUE" unless value >= minimum. NaN is
/// never >= anything, so it is refused too, and named: "got nan".
inline void require_at_least(const std::string& who, const std::string& option, double value, double minimum = 0) {
    if (value >= minimum) return;
    std::ostringstream out;
    out << who << ": " << option << " must be >= " << minimum << ", got " << value;
    throw ConfigError(out.str());
}

}  // namespace detail

/// "[rows,cols]": the notation every shape message uses.
inline std::string shape_string(Eigen::Index rows, Eigen::Index cols) {
    std::ostringstream out;
    out << '[' << rows << ',' << cols << ']';
    return out.str();
}

}  // namespace piano
