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

/// A malformed input record. what() reads "FILE:LINE: field NAME: problem"; the parts
/// are also available for programs that report errors their own way.
class DataError : public std::runtime_error {
public:
    DataError(std::string file, long line, std::string field, const std::string& problem)
        : std::runtime_error(file + ":" + std::to_string(line) + ": field " + field + ": " + problem),
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

/// "[rows,cols]": the notation every shape message uses.
inline std::string shape_string(Eigen::Index rows, Eigen::Index cols) {
    std::ostringstream out;
    out << '[' << rows << ',' << cols << ']';
    return out.str();
}

}  // namespace piano
