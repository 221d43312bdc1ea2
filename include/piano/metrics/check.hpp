// piano/metrics/check.hpp: argument checks shared by the metric functions.
//
// Every metric refuses bad input with std::invalid_argument rather than returning a
// number that looks plausible: a length mismatch or a NaN score silently shifts an AUC by
// a few thousandths, which is exactly the size of the effects the tables compare. The
// messages start with the function (and, from evaluate, the request) so the caller can
// find the offending record.
#pragma once

#include <cmath>
#include <cstddef>
#include <stdexcept>
#include <string>
#include <vector>

namespace piano::metrics::detail {

/// Throws "WHERE: A has 3 entries but B has 4" unless the sizes agree.
inline void require_same_size(const std::string& where, const char* a_name, std::size_t a_size,
                              const char* b_name, std::size_t b_size) {
    if (a_size != b_size) {
        throw std::invalid_argument(where + ": " + a_name + " has " + std::to_string(a_size) + " entries but " +
                                    b_name + " has " + std::to_string(b_size));
    }
}

/// Throws unless every label is 0 or 1, naming the first one that is not.
inline void require_binary(const std::string& where, const char* name, const std::vector<int>& labels) {
    for (std::size_t i = 0; i < labels.size(); ++i) {
        if (labels[i] != 0 && labels[i] != 1) {
            throw std::invalid_argument(where + ": " + name + "[" + std::to_string(i) + "] is " +
                                        std::to_string(labels[i]) + ", expected 0 or 1");
        }
    }
}

/// Throws if a score is NaN. Sorting needs a strict weak order, which NaN breaks (the
/// result would be undefined behaviour, not merely a wrong number). Infinities are fine:
/// log(0) = -inf is a legitimate rerank score.
inline void require_no_nan(const std::string& where, const char* name, const std::vector<double>& values) {
    for (std::size_t i = 0; i < values.size(); ++i) {
        if (std::isnan(values[i])) {
            throw std::invalid_argument(where + ": " + name + "[" + std::to_string(i) + "] is NaN");
        }
    }
}

/// Throws unless k >= 1: "the top 0" of a list is no list at all.
inline void require_positive_k(const std::string& where, std::size_t k) {
    if (k == 0) throw std::invalid_argument(where + ": k must be at least 1");
}

}  // namespace piano::metrics::detail
