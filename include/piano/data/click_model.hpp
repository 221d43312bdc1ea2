// piano/data/click_model.hpp: how a simulated user goes down a ranked list, and the
// exact expected outcome of any order under it.
//
// The simulator draws its logged clicks from a ClickModel, and the online evaluation
// (piano/metrics/online.hpp) values a model's new order under the same one, so the
// equations live here once. Both models take, for each candidate i of a list,
//   a_i  its attractiveness: P(click | examined), position-free
//   c_i  its conversion probability: P(conv | click)
// and differ in which ranks the user examines (r = 0-based rank in the order shown):
//
//   position_based (PBM): rank r is examined with e_r = (r+1)^-eta, independently of
//     everything else; clicks are independent across ranks.
//   dbn (a cascade, Chapelle & Zhang 2009): the user examines rank 0, and goes from
//     rank r to r+1 with probability gamma unless satisfied at r. A click satisfies when
//     it converts (satisfaction grows with the song's conversion value: P(satisfied |
//     click) = c_i), so
//         e_0 = 1,   e_{r+1} = e_r · gamma · (1 - a_r c_r).
//     What is above a song decides whether it is seen: the list as a whole matters.
//
// Under both, P(click at r) = e_r a_r and P(conv at r) = e_r a_r c_r, so
//   E[clicks] = Σ_r e_r a_r,   E[conversions] = Σ_r e_r a_r c_r.
// P(>= 1 click) and P(>= 1 conversion):
//   PBM: 1 - Π_r (1 - e_r a_r)  and  1 - Π_r (1 - e_r a_r c_r)  (independent ranks);
//   DBN: Σ_r n_r a_r with n_0 = 1, n_{r+1} = n_r gamma (1 - a_r)  (first click at r), and
//        Σ_r e_r a_r c_r (at most one conversion: it satisfies and ends the visit).
#pragma once

#include <charconv>
#include <cmath>
#include <cstddef>
#include <limits>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "piano/core/error.hpp"
#include "piano/data/lines.hpp"

namespace piano::data {

enum class ClickModelKind { position_based, dbn };

struct ClickModel {
    ClickModelKind kind = ClickModelKind::position_based;
    double position_bias = 1.0;  // eta, PBM only: e_r = (r+1)^-eta
    double persistence = 0.9;    // gamma, DBN only: P(go on to the next rank | not satisfied)

    /// "pbm" or "dbn", as `piano simulate --click-model` and click_model.txt spell it.
    static const char* name(ClickModelKind kind) { return kind == ClickModelKind::dbn ? "dbn" : "pbm"; }
    static ClickModelKind parse_kind(const std::string& text) {
        if (text == "pbm") return ClickModelKind::position_based;
        if (text == "dbn") return ClickModelKind::dbn;
        throw ConfigError("click model: expected pbm or dbn, got '" + text + "'");
    }

    /// Throws ConfigError naming the parameter that cannot work.
    void check() const {
        if (!(position_bias >= 0.0 && std::isfinite(position_bias)))
            throw ConfigError("click model: position_bias must be finite and >= 0, got " + std::to_string(position_bias));
        if (!(persistence >= 0.0 && persistence <= 1.0))
            throw ConfigError("click model: persistence must be in [0, 1], got " + std::to_string(persistence));
    }

    /// PBM's examination probability of 0-based rank r.
    double pbm_examination(std::size_t rank) const {
        return std::pow(static_cast<double>(rank + 1), -position_bias);
    }
};

/// The expected outcome of showing one list in one order.
struct ListOutcome {
    double clicks = 0.0;       // E[number of clicks]
    double conversions = 0.0;  // E[number of conversions]
    double p_click = 0.0;      // P(>= 1 click)
    double p_conversion = 0.0; // P(>= 1 conversion)
};

/// e_r for every rank of a list shown in the order given: `attraction[r]` and
/// `conversion[r]` belong to the song at rank r.
inline std::vector<double> examination(const ClickModel& model, const std::vector<double>& attraction,
                                       const std::vector<double>& conversion) {
    std::vector<double> e(attraction.size());
    double reach = 1.0;
    for (std::size_t r = 0; r < e.size(); ++r) {
        if (model.kind == ClickModelKind::position_based) {
            e[r] = model.pbm_examination(r);
        } else {
            e[r] = reach;
            reach *= model.persistence * (1.0 - attraction[r] * conversion[r]);
        }
    }
    return e;
}

/// The exact expected outcome (see the top of this file); inputs in shown order.
inline ListOutcome expected_outcome(const ClickModel& model, const std::vector<double>& attraction,
                                    const std::vector<double>& conversion) {
    if (attraction.size() != conversion.size())
        throw ShapeError("expected_outcome: attraction has " + std::to_string(attraction.size()) +
                         " entries, conversion " + std::to_string(conversion.size()));
    const std::vector<double> e = examination(model, attraction, conversion);
    ListOutcome out;
    double no_click = 1.0, no_conversion = 1.0, first_click_reach = 1.0;
    for (std::size_t r = 0; r < e.size(); ++r) {
        const double click = e[r] * attraction[r];
        out.clicks += click;
        out.conversions += click * conversion[r];
        if (model.kind == ClickModelKind::position_based) {
            no_click *= 1.0 - click;
            no_conversion *= 1.0 - click * conversion[r];
        } else {
            out.p_click += first_click_reach * attraction[r];
            first_click_reach *= model.persistence * (1.0 - attraction[r]);
        }
    }
    if (model.kind == ClickModelKind::position_based) {
        out.p_click = 1.0 - no_click;
        out.p_conversion = 1.0 - no_conversion;
    } else {
        out.p_conversion = out.conversions;  // a conversion ends the visit: at most one
    }
    return out;
}

/// What an order is chosen to maximise: expected clicks or expected conversions.
enum class Objective { clicks, conversions };

/// A key per candidate whose descending sort is an order with the most expected
/// `objective` under `model` (any order among equal keys is as good). It reads the
/// candidate's own a and c only: under both models the best order is a sort by a
/// per-candidate index, so a scorer that knew every a_i and c_i exactly would reach it
/// without looking at the rest of the list. The list decides how much an order is worth
/// (under DBN through what is above), never which order is best.
///
/// Why (swap two neighbours, song i above song k, and compare; x = a c):
///   conversions, PBM: e_r falls with r, so the largest a c goes highest.   key a c
///   conversions, DBN: reached with e, i above k earns e[x_i + gamma (1 - x_i) x_k];
///     swapped, e[x_k + gamma (1 - x_k) x_i]; the difference is e (1 - gamma)(x_i - x_k).
///                                                                          key a c
///   clicks, PBM: as for conversions, with a.                               key a
///   clicks, DBN: i above k earns e[a_i + gamma (1 - x_i) a_k]; the gain over the swap is
///     e[(1 - gamma)(a_i - a_k) + gamma a_i a_k (c_k - c_i)], positive exactly when
///     (1 - gamma)/a_i + gamma c_i < (1 - gamma)/a_k + gamma c_k.    key a / (1 - gamma + gamma a c)
///     A song likely to convert ends the visit, so it is worth less to clicks than its
///     attraction says: sorting by attraction alone is not the most clicks under DBN.
/// Every order that is not sorted by the key has two neighbours out of key order, and
/// swapping them loses nothing, so the sorted order is a best one. A song with a = 0 gets
/// key 0; with gamma = 1, a > 0 and a c = 0 the clicks key is +infinity (it never ends
/// the visit). tests/metrics/test_online.cpp checks every key against all orders of
/// small lists.
inline double best_order_key(const ClickModel& model, Objective objective, double attraction, double conversion) {
    if (objective == Objective::conversions) return attraction * conversion;
    if (model.kind == ClickModelKind::position_based || attraction == 0.0) return attraction;
    const double gamma = model.persistence;
    const double denominator = 1.0 - gamma + gamma * attraction * conversion;
    return denominator > 0.0 ? attraction / denominator : std::numeric_limits<double>::infinity();
}

/// The inputs of a list permuted into a shown order: out[r] = values[order[r]].
inline std::vector<double> in_order(const std::vector<double>& values, const std::vector<std::size_t>& order) {
    std::vector<double> out(order.size());
    for (std::size_t r = 0; r < order.size(); ++r) {
        if (order[r] >= values.size())
            throw ShapeError("in_order: index " + std::to_string(order[r]) + " outside a list of " +
                             std::to_string(values.size()));
        out[r] = values[order[r]];
    }
    return out;
}

/// click_model.txt: `key = value` lines, the file the simulator writes beside its data.
inline std::string click_model_text(const ClickModel& m) {
    // The shortest text that reads back as the same double (0.9, not 0.90000000000000002).
    auto shortest = [](double v) {
        char buffer[32];
        const auto result = std::to_chars(buffer, buffer + sizeof buffer, v);
        return std::string(buffer, result.ptr);
    };
    return std::string("click_model = ") + ClickModel::name(m.kind) + "\nposition_bias = " +
           shortest(m.position_bias) + "\npersistence = " + shortest(m.persistence) + '\n';
}

/// Reads click_model.txt. Unknown keys and bad values are DataErrors naming file and line.
inline ClickModel read_click_model(const std::string& path) {
    ClickModel m;
    long last_line = 0;
    detail::for_each_data_line(path, "", [&](std::string_view line, long line_no) {
        last_line = line_no;
        const std::size_t eq = line.find(" = ");
        if (eq == std::string_view::npos) throw DataError(path, line_no, "line", "expected 'key = value'");
        const std::string key(line.substr(0, eq)), value(line.substr(eq + 3));
        try {
            if (key == "click_model") {
                m.kind = ClickModel::parse_kind(value);
            } else if (key == "position_bias" || key == "persistence") {
                std::size_t used = 0;
                const double v = std::stod(value, &used);
                if (used != value.size()) throw ConfigError("not a number");
                (key == "position_bias" ? m.position_bias : m.persistence) = v;
            } else {
                throw DataError(path, line_no, key, "unknown key");
            }
        } catch (const DataError&) {
            throw;
        } catch (const std::exception& e) {
            throw DataError(path, line_no, key, "'" + value + "': " + e.what());
        }
    });
    try {
        m.check();
    } catch (const ConfigError& e) {
        throw DataError(path, last_line, "file", e.what());
    }
    return m;
}

}  // namespace piano::data
