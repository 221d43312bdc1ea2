// piano/metrics/online.hpp: a simulated A/B test. What would the simulated users have
// done had they been shown each model's new order?
//
// Offline metrics judge a new order by the labels logged under the old one, and those
// labels are shaped by position bias: a model can win offline by copying the logged
// order. On simulated data the true user model is known (online_truth.txt and
// click_model.txt, written by the simulator), so any order of a test request can be
// valued exactly (data/click_model.hpp):
//   clicks       E[number of clicks] per request
//   conversions  E[number of conversions] per request
//   p_click      P(>= 1 click) per request
//   p_conversion P(>= 1 conversion) per request
// Each is a mean over the test requests, with a 95% interval from a paired bootstrap
// over requests (the same resampled requests for the order and for the reference, so
// the lift's interval is not widened by request-to-request variance they share), and
// the lift against the reference order (the first stage): mean_order / mean_reference - 1.
//
// Oracle orders bound what any model can reach: by true attraction a_i (the most clicks
// under PBM) and by true a_i c_i (the most conversions under both click models); under
// DBN a third, the most clicks there (data::best_order_key). `gap closed` = (order - first
// stage) / (oracle - first stage), clicks against the most-clicks oracle and conversions
// against the conversion oracle.
//
// Two orders against each other ("head to head"): the difference of their lifts,
//   (mean_order - mean_other) / mean_reference,
// in points of the reference's value, with its 95% paired bootstrap interval (both orders
// and the reference on the same resampled requests). An interval that holds 0 is a
// difference this test set cannot tell from chance.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <locale>
#include <numeric>
#include <random>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "piano/core/error.hpp"
#include "piano/data/click_model.hpp"
#include "piano/data/shuffle.hpp"
#include "piano/data/simulator.hpp"
#include "piano/metrics/ranking.hpp"

namespace piano::metrics {

/// A point estimate and its 95% bootstrap interval.
struct Interval {
    double value = std::numeric_limits<double>::quiet_NaN();
    double low = std::numeric_limits<double>::quiet_NaN();
    double high = std::numeric_limits<double>::quiet_NaN();
};

/// The four online measures, in report order, as members of data::ListOutcome.
struct OnlineMeasure {
    const char* name;
    double data::ListOutcome::*field;
};
inline constexpr OnlineMeasure kOnlineMeasures[4] = {{"clicks", &data::ListOutcome::clicks},
                                                     {"conversions", &data::ListOutcome::conversions},
                                                     {"p_click", &data::ListOutcome::p_click},
                                                     {"p_conversion", &data::ListOutcome::p_conversion}};

namespace detail {
/// A stream for the tables below: the classic locale (a decimal point whatever the global
/// locale) and fixed notation with `precision` decimals.
inline std::ostringstream table_stream(int precision) {
    std::ostringstream s;
    s.imbue(std::locale::classic());
    s.setf(std::ios::fixed);
    s.precision(precision);
    return s;
}
}  // namespace detail

/// One order's online figures: per measure (kOnlineMeasures order) the mean per request
/// and its lift against the reference order, each with its interval.
struct OnlineRow {
    std::string name;
    Interval mean[4];
    Interval lift[4];
    double gap_closed_clicks = std::numeric_limits<double>::quiet_NaN();
    double gap_closed_conversions = std::numeric_limits<double>::quiet_NaN();
};

/// One order against another on the same requests: per measure (kOnlineMeasures order) the
/// difference of their lifts over the reference order, with its paired interval.
struct OnlineDifference {
    std::string name, against;
    Interval lift_difference[4];
};

/// Values orders of the test requests under a click model and their true probabilities.
class OnlineEvaluator {
public:
    /// `truth[k]` belongs to test request k (online_truth.txt order).
    OnlineEvaluator(data::ClickModel model, std::vector<data::OnlineTruthRow> truth)
        : model_(model), truth_(std::move(truth)) {
        model_.check();
        for (std::size_t k = 0; k < truth_.size(); ++k) {
            if (truth_[k].request != k)
                throw DataError("online truth", static_cast<long>(k + 1), "request",
                                "row " + std::to_string(k) + " is for request " + std::to_string(truth_[k].request));
        }
    }

    /// The truth of a simulated data directory: online_truth.txt and click_model.txt.
    static OnlineEvaluator from_dir(const std::string& dir) {
        return OnlineEvaluator(data::read_click_model(dir + "/click_model.txt"),
                               data::read_online_truth(dir + "/online_truth.txt"));
    }

    std::size_t requests() const { return truth_.size(); }
    const data::ClickModel& click_model() const { return model_; }

    /// The exact outcome of each request shown in `orders[k]` (candidate indices, best
    /// first). Throws ShapeError when an order is not a permutation of its list.
    std::vector<data::ListOutcome> value(const std::vector<std::vector<std::size_t>>& orders) const {
        if (orders.size() != truth_.size())
            throw ShapeError("OnlineEvaluator::value: " + std::to_string(orders.size()) + " orders for " +
                             std::to_string(truth_.size()) + " requests");
        std::vector<data::ListOutcome> out(orders.size());
        for (std::size_t k = 0; k < orders.size(); ++k) {
            const data::OnlineTruthRow& t = truth_[k];
            check_permutation(orders[k], t.attraction.size(), k);
            out[k] = data::expected_outcome(model_, data::in_order(t.attraction, orders[k]),
                                            data::in_order(t.conversion, orders[k]));
        }
        return out;
    }

    /// The logged first-stage order of every request: 0, 1, ..., L-1.
    std::vector<std::vector<std::size_t>> first_stage_orders() const {
        return orders_by([](const data::OnlineTruthRow&, std::size_t i) { return -static_cast<double>(i); });
    }
    /// The oracle by true attraction a_i (ties keep the first-stage order).
    std::vector<std::vector<std::size_t>> attraction_oracle_orders() const {
        return orders_by([](const data::OnlineTruthRow& t, std::size_t i) { return t.attraction[i]; });
    }
    /// The oracle by true a_i c_i = P(click and conv | examined): the most expected
    /// conversions under both click models (data::best_order_key).
    std::vector<std::vector<std::size_t>> conversion_oracle_orders() const {
        return best_orders(data::Objective::conversions);
    }
    /// The order with the most expected clicks under the click model
    /// (data::best_order_key): the oracle by attraction under PBM; under DBN the sort by
    /// a_i / (1 - gamma + gamma a_i c_i), which puts songs that end visits lower.
    std::vector<std::vector<std::size_t>> click_oracle_orders() const { return best_orders(data::Objective::clicks); }

    /// Means, lifts against `reference` and their 95% intervals from `samples` paired
    /// bootstrap resamples of the requests, drawn from `seed` (the same seed gives the
    /// same resamples for every order, so rows of one table are compared on one draw).
    OnlineRow summarize(const std::string& name, const std::vector<data::ListOutcome>& values,
                        const std::vector<data::ListOutcome>& reference, std::size_t samples = 1000,
                        std::uint64_t seed = 1) const {
        check_paired("summarize", values, reference);
        OnlineRow row;
        row.name = name;
        // Per measure: the sums of the order's and the reference's values over the requests
        // picked (all of them, or a resample), then the mean and the lift.
        const auto mean_and_lift = [&](const std::vector<std::size_t>* picks, int m) {
            const double a = sum(values, m, picks), b = sum(reference, m, picks);
            const double lift = b > 0.0 ? a / b - 1.0 : std::numeric_limits<double>::quiet_NaN();
            return std::pair<double, double>{a / static_cast<double>(values.size()), lift};
        };
        std::vector<std::vector<double>> boot_mean(4), boot_lift(4);
        bootstrap(values.size(), samples, seed, [&](const std::vector<std::size_t>& picks) {
            for (int m = 0; m < 4; ++m) {
                const auto [mean, lift] = mean_and_lift(&picks, m);
                boot_mean[m].push_back(mean);
                boot_lift[m].push_back(lift);
            }
        });
        for (int m = 0; m < 4; ++m) {
            const auto [mean, lift] = mean_and_lift(nullptr, m);
            row.mean[m] = {mean, percentile(boot_mean[m], 0.025), percentile(boot_mean[m], 0.975)};
            row.lift[m] = {lift, percentile(boot_lift[m], 0.025), percentile(boot_lift[m], 0.975)};
        }
        return row;
    }

    /// `values` against `other` (both of the same requests): per measure the difference of
    /// their lifts over `reference`, (sum values - sum other) / sum reference, with its 95%
    /// interval from the paired bootstrap of summarize (the same seed draws the same
    /// resamples, so a table's rows and its differences rest on one draw).
    OnlineDifference difference(const std::string& name, const std::vector<data::ListOutcome>& values,
                                const std::string& against, const std::vector<data::ListOutcome>& other,
                                const std::vector<data::ListOutcome>& reference, std::size_t samples = 1000,
                                std::uint64_t seed = 1) const {
        check_paired("difference", values, reference);
        check_paired("difference", other, reference);
        OnlineDifference out;
        out.name = name;
        out.against = against;
        const auto lift_difference = [&](const std::vector<std::size_t>* picks, int m) {
            const double b = sum(reference, m, picks);
            return b > 0.0 ? (sum(values, m, picks) - sum(other, m, picks)) / b
                           : std::numeric_limits<double>::quiet_NaN();
        };
        std::vector<std::vector<double>> boot(4);
        bootstrap(values.size(), samples, seed, [&](const std::vector<std::size_t>& picks) {
            for (int m = 0; m < 4; ++m) boot[m].push_back(lift_difference(&picks, m));
        });
        for (int m = 0; m < 4; ++m)
            out.lift_difference[m] = {lift_difference(nullptr, m), percentile(boot[m], 0.025), percentile(boot[m], 0.975)};
        return out;
    }

private:
    std::vector<std::vector<std::size_t>> best_orders(data::Objective objective) const {
        return orders_by([&](const data::OnlineTruthRow& t, std::size_t i) {
            return data::best_order_key(model_, objective, t.attraction[i], t.conversion[i]);
        });
    }

    template <typename Score>
    std::vector<std::vector<std::size_t>> orders_by(Score score) const {
        std::vector<std::vector<std::size_t>> orders;
        orders.reserve(truth_.size());
        for (const data::OnlineTruthRow& t : truth_) {
            std::vector<double> s(t.attraction.size());
            for (std::size_t i = 0; i < s.size(); ++i) s[i] = score(t, i);
            orders.push_back(rerank_order(s));
        }
        return orders;
    }

    static void check_paired(const char* what, const std::vector<data::ListOutcome>& values,
                             const std::vector<data::ListOutcome>& reference) {
        if (values.size() != reference.size() || values.empty())
            throw ShapeError(std::string("OnlineEvaluator::") + what + ": " + std::to_string(values.size()) +
                             " values and " + std::to_string(reference.size()) +
                             " reference values (need the same number, >= 1)");
    }

    /// The sum of measure m over the requests `picks` names (every request when null).
    static double sum(const std::vector<data::ListOutcome>& values, int m, const std::vector<std::size_t>* picks) {
        const auto field = kOnlineMeasures[m].field;
        double total = 0.0;
        const std::size_t n = picks ? picks->size() : values.size();
        for (std::size_t j = 0; j < n; ++j) total += values[picks ? (*picks)[j] : j].*field;
        return total;
    }

    /// fn(picks) for `samples` resamples of n requests drawn with replacement from `seed`.
    template <typename Fn>
    static void bootstrap(std::size_t n, std::size_t samples, std::uint64_t seed, Fn&& fn) {
        std::mt19937_64 rng = data::seeded_generator(seed, 0);
        std::vector<std::size_t> picks(n);
        for (std::size_t s = 0; s < samples; ++s) {
            for (std::size_t& p : picks) p = static_cast<std::size_t>(data::uniform_below(rng, n));
            fn(picks);
        }
    }

    static void check_permutation(const std::vector<std::size_t>& order, std::size_t length, std::size_t request) {
        std::vector<char> seen(length, 0);
        bool ok = order.size() == length;
        for (std::size_t i = 0; ok && i < order.size(); ++i) {
            ok = order[i] < length && !seen[order[i]];
            if (ok) seen[order[i]] = 1;
        }
        if (!ok)
            throw ShapeError("OnlineEvaluator::value: the order of request " + std::to_string(request) +
                             " is not a permutation of its " + std::to_string(length) + " candidates");
    }

    /// The q-quantile of `v` (nearest rank on the sorted copy), NaN when empty.
    static double percentile(std::vector<double> v, double q) {
        v.erase(std::remove_if(v.begin(), v.end(), [](double x) { return std::isnan(x); }), v.end());
        if (v.empty()) return std::numeric_limits<double>::quiet_NaN();
        std::sort(v.begin(), v.end());
        const auto k = static_cast<std::size_t>(std::floor(q * static_cast<double>(v.size() - 1) + 0.5));
        return v[std::min(k, v.size() - 1)];
    }

    data::ClickModel model_;
    std::vector<data::OnlineTruthRow> truth_;
};

/// The share of the first-stage -> oracle gap that each row closes (clicks against
/// `click_oracle`, conversions against `conversion_oracle`), filled into every row.
inline void fill_gap_closed(std::vector<OnlineRow>& rows, const OnlineRow& first_stage, const OnlineRow& click_oracle,
                            const OnlineRow& conversion_oracle) {
    auto share = [](double v, double from, double to) {
        return to != from ? (v - from) / (to - from) : std::numeric_limits<double>::quiet_NaN();
    };
    for (OnlineRow& r : rows) {
        r.gap_closed_clicks = share(r.mean[0].value, first_stage.mean[0].value, click_oracle.mean[0].value);
        r.gap_closed_conversions =
            share(r.mean[1].value, first_stage.mean[1].value, conversion_oracle.mean[1].value);
    }
}

/// The whole online table: the first stage, each named order, then the oracle by
/// attraction, the oracle by conversion and, under DBN (where the oracle by attraction is
/// not the most clicks), the oracle for clicks; every lift against the first stage and
/// every row on the same bootstrap resamples, with the gap each row closes filled in:
/// clicks against the most-clicks oracle, conversions against the oracle by conversion.
inline std::vector<OnlineRow> online_table(
    const OnlineEvaluator& evaluator,
    const std::vector<std::pair<std::string, std::vector<std::vector<std::size_t>>>>& orders,
    std::size_t samples = 1000, std::uint64_t seed = 1) {
    const auto reference = evaluator.value(evaluator.first_stage_orders());
    auto row = [&](const std::string& name, const std::vector<std::vector<std::size_t>>& order) {
        return evaluator.summarize(name, evaluator.value(order), reference, samples, seed);
    };
    std::vector<OnlineRow> rows{row("first-stage", evaluator.first_stage_orders())};
    for (const auto& [name, order] : orders) rows.push_back(row(name, order));
    rows.push_back(row("oracle by attraction", evaluator.attraction_oracle_orders()));
    const OnlineRow by_conversion = row("oracle by conversion", evaluator.conversion_oracle_orders());
    rows.push_back(by_conversion);
    OnlineRow most_clicks = rows[rows.size() - 2];
    if (evaluator.click_model().kind == data::ClickModelKind::dbn) {
        most_clicks = row("oracle for clicks", evaluator.click_oracle_orders());
        rows.push_back(most_clicks);
    }
    const OnlineRow first = rows.front();
    fill_gap_closed(rows, first, most_clicks, by_conversion);
    return rows;
}

/// `name`'s order against each other named order in `orders` (in their order), every
/// difference on the same bootstrap resamples as online_table's rows (same samples, seed).
/// Throws ConfigError when `name` is not among the orders.
inline std::vector<OnlineDifference> head_to_head(
    const OnlineEvaluator& evaluator, const std::string& name,
    const std::vector<std::pair<std::string, std::vector<std::vector<std::size_t>>>>& orders,
    std::size_t samples = 1000, std::uint64_t seed = 1) {
    const auto focus = std::find_if(orders.begin(), orders.end(), [&](const auto& o) { return o.first == name; });
    if (focus == orders.end()) throw ConfigError("head_to_head: no order named '" + name + "'");
    const auto reference = evaluator.value(evaluator.first_stage_orders());
    const auto values = evaluator.value(focus->second);
    std::vector<OnlineDifference> out;
    for (const auto& [other, order] : orders) {
        if (other == name) continue;
        out.push_back(evaluator.difference(name, values, other, evaluator.value(order), reference, samples, seed));
    }
    return out;
}

/// Head-to-head differences in Markdown: per row the difference in lift, in percentage
/// points of the first stage's value, for each measure, with its interval.
inline std::string online_difference_markdown(const std::vector<OnlineDifference>& rows) {
    std::ostringstream s = detail::table_stream(2);
    auto points = [&s](double x) -> std::ostringstream& {
        s << (x >= 0 ? "+" : "") << x * 100;
        return s;
    };
    s << "| order | against | clicks, points | conversions, points | P(>= 1 click), points | P(>= 1 conv), points |\n";
    s << "|---|---|---:|---:|---:|---:|\n";
    for (const OnlineDifference& r : rows) {
        s << "| " << r.name << " | " << r.against << " |";
        for (const Interval& d : r.lift_difference) {
            s << ' ';
            points(d.value) << " [";
            points(d.low) << ", ";
            points(d.high) << "] |";
        }
        s << '\n';
    }
    return s.str();
}

/// Head-to-head differences as CSV: one header line, then a row per pair; 6 decimals.
inline std::string online_difference_csv(const std::vector<OnlineDifference>& rows) {
    std::ostringstream s = detail::table_stream(6);
    s << "order,against";
    for (const OnlineMeasure& m : kOnlineMeasures)
        s << ",lift_difference_" << m.name << ",lift_difference_" << m.name << "_low,lift_difference_" << m.name
          << "_high";
    s << '\n';
    for (const OnlineDifference& r : rows) {
        s << r.name << ',' << r.against;
        for (const Interval& d : r.lift_difference) s << ',' << d.value << ',' << d.low << ',' << d.high;
        s << '\n';
    }
    return s.str();
}

/// The online table in Markdown: per row the clicks and conversions per request with
/// their intervals, their lifts, P(>= 1 click), P(>= 1 conversion) and the gap closed.
inline std::string online_markdown(const std::vector<OnlineRow>& rows) {
    std::ostringstream s = detail::table_stream(2);
    auto interval = [&s](const Interval& i, int digits, double scale, const char* unit) {
        s.precision(digits);
        s << i.value * scale << unit << " [" << i.low * scale << ", " << i.high * scale << "]";
    };
    auto signed_percent = [&s](const Interval& i) {
        s.precision(2);
        s << (i.value >= 0 ? "+" : "") << i.value * 100 << "% [" << (i.low >= 0 ? "+" : "") << i.low * 100 << ", "
          << (i.high >= 0 ? "+" : "") << i.high * 100 << "]";
    };
    s << "| order | clicks / request | lift | conversions / request | lift | P(>= 1 click) | P(>= 1 conv) | "
         "gap closed, clicks | gap closed, conv |\n";
    s << "|---|---:|---:|---:|---:|---:|---:|---:|---:|\n";
    for (const OnlineRow& r : rows) {
        s << "| " << r.name << " | ";
        interval(r.mean[0], 3, 1.0, "");
        s << " | ";
        signed_percent(r.lift[0]);
        s << " | ";
        interval(r.mean[1], 3, 1.0, "");
        s << " | ";
        signed_percent(r.lift[1]);
        s << " | ";
        s.precision(4);
        s << r.mean[2].value << " | " << r.mean[3].value << " | ";
        s.precision(1);
        s << r.gap_closed_clicks * 100 << "% | " << r.gap_closed_conversions * 100 << "% |\n";
    }
    return s.str();
}

/// The online table as CSV, one header line then a row per order; 6 decimals.
inline std::string online_csv(const std::vector<OnlineRow>& rows) {
    std::ostringstream s = detail::table_stream(6);
    s << "order";
    for (const OnlineMeasure& m : kOnlineMeasures)
        s << ',' << m.name << ',' << m.name << "_low," << m.name << "_high,lift_" << m.name << ",lift_" << m.name
          << "_low,lift_" << m.name << "_high";
    s << ",gap_closed_clicks,gap_closed_conversions\n";
    for (const OnlineRow& r : rows) {
        s << r.name;
        for (int m = 0; m < 4; ++m)
            s << ',' << r.mean[m].value << ',' << r.mean[m].low << ',' << r.mean[m].high << ',' << r.lift[m].value
              << ',' << r.lift[m].low << ',' << r.lift[m].high;
        s << ',' << r.gap_closed_clicks << ',' << r.gap_closed_conversions << '\n';
    }
    return s.str();
}

}  // namespace piano::metrics
