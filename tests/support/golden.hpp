// tests/support/golden.hpp: reads fixtures written by tests/golden/fixture_io.py.
#pragma once

#include <fstream>
#include <limits>
#include <map>
#include <stdexcept>
#include <string>

#include <piano/core/tensor.hpp>

namespace piano::testing {

/// name -> matrix, read from a golden fixture file (see tests/golden/fixture_io.py).
class GoldenFixture {
public:
    explicit GoldenFixture(const std::string& path) {
        std::ifstream in(path);
        if (!in) throw std::runtime_error("golden fixture not found: " + path);
        std::string name;
        Index rows = 0, cols = 0;
        while (in >> name >> rows >> cols) {
            Matrix<double> m(rows, cols);
            for (Index i = 0; i < m.size(); ++i) {
                if (!(in >> m.data()[i])) throw std::runtime_error(path + ": truncated matrix " + name);
            }
            matrices_[name] = std::move(m);
        }
    }

    const Matrix<double>& operator[](const std::string& name) const {
        auto it = matrices_.find(name);
        if (it == matrices_.end()) throw std::runtime_error("golden fixture has no matrix named " + name);
        return it->second;
    }

    bool has(const std::string& name) const { return matrices_.count(name) != 0; }

private:
    std::map<std::string, Matrix<double>> matrices_;
};

/// Largest |a - b| / max(1, |b|) over all entries: relative for large values, absolute
/// near zero, so a tolerance of 1e-6 means "6 significant digits or 1e-6 absolute".
inline double max_relative_difference(const Matrix<double>& a, const Matrix<double>& b) {
    if (a.rows() != b.rows() || a.cols() != b.cols()) return std::numeric_limits<double>::infinity();
    return ((a - b).array().abs() / b.array().abs().max(1.0)).maxCoeff();
}

/// The bound on max_relative_difference that the model and attention comparisons with
/// PyTorch share: 6 significant digits.
inline constexpr double kGoldenTolerance = 1e-6;

}  // namespace piano::testing
