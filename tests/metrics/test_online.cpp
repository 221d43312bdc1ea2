// The online evaluation: exact values of an order under both click models, checked
// against sums done by hand, the oracles, the paired bootstrap, and the simulator's
// logged clicks agreeing with the click model it wrote.
#include <catch2/catch.hpp>

#include <algorithm>
#include <fstream>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

#include <piano/data/click_model.hpp>
#include <piano/data/simulator.hpp>
#include <piano/metrics/online.hpp>

#include <support/test_helpers.hpp>

using piano::data::ClickModel;
using piano::data::ClickModelKind;
using piano::data::expected_outcome;
using piano::data::ListOutcome;

namespace {

// One list of three songs, in first-stage order: attraction a_i and conversion c_i.
const std::vector<double> kAttraction{0.5, 0.2, 0.8};
const std::vector<double> kConversion{0.1, 0.5, 0.25};

// Two requests under PBM: the list above and a two-song list.
piano::metrics::OnlineEvaluator two_requests() {
    return piano::metrics::OnlineEvaluator(
        ClickModel{}, {{0, kAttraction, kConversion}, {1, {0.1, 0.9}, {0.9, 0.1}}});
}

ClickModel dbn(double persistence) {
    ClickModel m;
    m.kind = ClickModelKind::dbn;
    m.persistence = persistence;
    return m;
}

}  // namespace

TEST_CASE("online: a 3-song list under the position-based model, by hand", "[metrics][online]") {
    ClickModel pbm;  // eta = 1: e = 1, 1/2, 1/3
    const ListOutcome o = expected_outcome(pbm, kAttraction, kConversion);
    // clicks 0.5 + 0.1 + 0.8/3; conversions 0.05 + 0.05 + 0.2/3
    CHECK(o.clicks == Approx(0.5 + 0.1 + 0.8 / 3).epsilon(1e-12));
    CHECK(o.conversions == Approx(0.05 + 0.05 + 0.2 / 3).epsilon(1e-12));
    // independent ranks: 1 - (1-0.5)(1-0.1)(1-0.8/3), 1 - (1-0.05)(1-0.05)(1-0.2/3)
    CHECK(o.p_click == Approx(1 - 0.5 * 0.9 * (1 - 0.8 / 3)).epsilon(1e-12));
    CHECK(o.p_conversion == Approx(1 - 0.95 * 0.95 * (1 - 0.2 / 3)).epsilon(1e-12));

    pbm.position_bias = 0.0;  // every rank examined: the order no longer matters
    const ListOutcome flat = expected_outcome(pbm, kAttraction, kConversion);
    CHECK(flat.clicks == Approx(1.5));
    const ListOutcome flat_reversed = expected_outcome(pbm, {0.8, 0.2, 0.5}, {0.25, 0.5, 0.1});
    CHECK(flat_reversed.clicks == Approx(flat.clicks));
    CHECK(flat_reversed.p_conversion == Approx(flat.p_conversion));
}

TEST_CASE("online: a 3-song list under the DBN cascade, by hand, in two orders", "[metrics][online]") {
    const ClickModel m = dbn(0.9);
    // e_0 = 1, e_1 = 0.9 (1 - 0.05) = 0.855, e_2 = 0.855 * 0.9 * (1 - 0.1) = 0.69255
    const std::vector<double> e = piano::data::examination(m, kAttraction, kConversion);
    CHECK(e[1] == Approx(0.855));
    CHECK(e[2] == Approx(0.69255));
    const ListOutcome o = expected_outcome(m, kAttraction, kConversion);
    CHECK(o.clicks == Approx(0.5 + 0.855 * 0.2 + 0.69255 * 0.8).epsilon(1e-12));
    CHECK(o.conversions == Approx(0.05 + 0.855 * 0.1 + 0.69255 * 0.2).epsilon(1e-12));
    CHECK(o.p_conversion == Approx(o.conversions));  // a conversion ends the visit
    // first click at rank r: n_0 = 1, n_1 = 0.9 * 0.5, n_2 = 0.45 * 0.9 * 0.8
    CHECK(o.p_click == Approx(0.5 + 0.45 * 0.2 + 0.324 * 0.8).epsilon(1e-12));

    // Reversed: a = 0.8, 0.2, 0.5; c = 0.25, 0.5, 0.1; e = 1, 0.9 * 0.8, 0.72 * 0.9 * 0.9
    const ListOutcome r = expected_outcome(m, {0.8, 0.2, 0.5}, {0.25, 0.5, 0.1});
    CHECK(r.clicks == Approx(0.8 + 0.72 * 0.2 + 0.5832 * 0.5).epsilon(1e-12));
    CHECK(r.conversions == Approx(0.2 + 0.072 + 0.5832 * 0.05).epsilon(1e-12));
    CHECK(r.conversions > o.conversions);  // the best a*c first: the conversion oracle's order

    // gamma = 1 and no conversion: every rank is seen, as under PBM with eta = 0.
    const ListOutcome patient = expected_outcome(dbn(1.0), kAttraction, {0.0, 0.0, 0.0});
    CHECK(patient.clicks == Approx(1.5));
    CHECK_THROWS_AS(expected_outcome(m, kAttraction, {0.1}), piano::ShapeError);
}

TEST_CASE("online: the evaluator values orders, its oracles and a paired bootstrap", "[metrics][online]") {
    const piano::metrics::OnlineEvaluator ev = two_requests();
    const auto first = ev.value(ev.first_stage_orders());
    const auto by_attraction = ev.value(ev.attraction_oracle_orders());
    const auto by_conversion = ev.value(ev.conversion_oracle_orders());
    CHECK(ev.attraction_oracle_orders()[0] == std::vector<std::size_t>{2, 0, 1});
    CHECK(ev.conversion_oracle_orders()[0] == std::vector<std::size_t>{2, 1, 0});  // a*c = .05 .1 .2
    CHECK(ev.conversion_oracle_orders()[1] == std::vector<std::size_t>{0, 1});     // a*c = .09 .09: tie kept
    CHECK(first[0].clicks == Approx(0.5 + 0.1 + 0.8 / 3));
    CHECK(by_attraction[1].clicks == Approx(0.9 + 0.05));
    CHECK(by_attraction[0].clicks > first[0].clicks);

    const auto row = ev.summarize("oracle", by_attraction, first, 200, 7);
    const double mean_first = (first[0].clicks + first[1].clicks) / 2;
    const double mean_oracle = (by_attraction[0].clicks + by_attraction[1].clicks) / 2;
    CHECK(row.mean[0].value == Approx(mean_oracle));
    CHECK(row.lift[0].value == Approx(mean_oracle / mean_first - 1));
    CHECK(row.mean[0].low <= row.mean[0].value);
    CHECK(row.mean[0].high >= row.mean[0].value);
    // Against itself, every paired resample has a lift of exactly 0.
    const auto same = ev.summarize("first", first, first, 200, 7);
    CHECK(same.lift[0].low == 0.0);
    CHECK(same.lift[0].high == 0.0);
    // The same seed draws the same resamples.
    CHECK(ev.summarize("oracle", by_attraction, first, 200, 7).mean[0].low == row.mean[0].low);

    CHECK_THROWS_AS(ev.value({{0, 1, 1}, {0, 1}}), piano::ShapeError);  // not a permutation
    CHECK_THROWS_AS(ev.value({{0, 1, 2}}), piano::ShapeError);          // one order for two requests
}

TEST_CASE("online: two orders head to head, the difference of their lifts with a paired interval", "[metrics][online]") {
    const piano::metrics::OnlineEvaluator ev = two_requests();
    const auto first = ev.value(ev.first_stage_orders());
    const auto by_attraction = ev.value(ev.attraction_oracle_orders());
    const auto by_conversion = ev.value(ev.conversion_oracle_orders());

    const auto d = ev.difference("attraction", by_attraction, "conversion", by_conversion, first, 200, 7);
    CHECK(d.name == "attraction");
    CHECK(d.against == "conversion");
    const double sum_first = first[0].clicks + first[1].clicks;
    CHECK(d.lift_difference[0].value ==
          Approx((by_attraction[0].clicks + by_attraction[1].clicks - by_conversion[0].clicks - by_conversion[1].clicks) /
                 sum_first));
    CHECK(d.lift_difference[1].value ==
          Approx((by_attraction[0].conversions + by_attraction[1].conversions - by_conversion[0].conversions -
                  by_conversion[1].conversions) /
                 (first[0].conversions + first[1].conversions)));
    // Against the reference itself the difference is the lift, resample by resample.
    const auto lift = ev.summarize("attraction", by_attraction, first, 200, 7).lift[0];
    const auto against_first = ev.difference("attraction", by_attraction, "first", first, first, 200, 7).lift_difference[0];
    CHECK(against_first.value == Approx(lift.value));
    CHECK(against_first.low == Approx(lift.low));
    CHECK(against_first.high == Approx(lift.high));
    // More clicks on every request: the whole interval is above 0. Against itself: exactly 0.
    REQUIRE(by_attraction[0].clicks > first[0].clicks);
    REQUIRE(by_attraction[1].clicks > first[1].clicks);
    CHECK(against_first.low > 0.0);
    const auto same = ev.difference("a", by_attraction, "b", by_attraction, first, 200, 7).lift_difference[0];
    CHECK(same.low == 0.0);
    CHECK(same.high == 0.0);
    CHECK_THROWS_AS(ev.difference("a", by_attraction, "b", {by_attraction[0]}, first), piano::ShapeError);

    // head_to_head: one named order against each other one, in order.
    const std::vector<std::pair<std::string, std::vector<std::vector<std::size_t>>>> orders{
        {"first", ev.first_stage_orders()}, {"attraction", ev.attraction_oracle_orders()},
        {"conversion", ev.conversion_oracle_orders()}};
    const auto rows = piano::metrics::head_to_head(ev, "attraction", orders, 200, 7);
    REQUIRE(rows.size() == 2);
    CHECK(rows[0].against == "first");
    CHECK(rows[1].against == "conversion");
    CHECK(rows[1].lift_difference[0].value == Approx(d.lift_difference[0].value));
    CHECK(rows[1].lift_difference[0].low == Approx(d.lift_difference[0].low));
    CHECK_THROWS_AS(piano::metrics::head_to_head(ev, "nobody", orders), piano::ConfigError);
    const std::string md = piano::metrics::online_difference_markdown(rows);
    CHECK(md.find("| attraction | conversion | ") != std::string::npos);
    const std::string csv = piano::metrics::online_difference_csv(rows);
    CHECK(csv.rfind("order,against,lift_difference_clicks,lift_difference_clicks_low,lift_difference_clicks_high,", 0) == 0);
    CHECK(std::count(csv.begin(), csv.end(), '\n') == 3);
}

TEST_CASE("online: the best-order keys beat every order of small lists under both click models", "[metrics][online]") {
    using piano::data::best_order_key;
    using piano::data::Objective;
    // Every order of six songs (720) against the sort by the key, for PBM at three position
    // biases and DBN at four persistences, on random lists with some a = 0 and c = 0 songs.
    std::vector<ClickModel> models;
    for (double eta : {0.5, 1.0, 2.0}) {
        ClickModel m;
        m.position_bias = eta;
        models.push_back(m);
    }
    for (double gamma : {0.0, 0.5, 0.9, 1.0}) models.push_back(dbn(gamma));
    std::mt19937_64 rng(3);
    std::uniform_real_distribution<double> u(0.0, 1.0);
    int lists = 0;
    for (const ClickModel& m : models) {
        for (int trial = 0; trial < 20; ++trial) {
            std::vector<double> a(6), c(6);
            for (std::size_t i = 0; i < a.size(); ++i) {
                a[i] = i == 0 && trial % 4 == 0 ? 0.0 : u(rng);
                c[i] = i == 1 && trial % 3 == 0 ? 0.0 : u(rng);
            }
            for (Objective objective : {Objective::clicks, Objective::conversions}) {
                const auto value = [&](const std::vector<std::size_t>& order) {
                    const ListOutcome o =
                        expected_outcome(m, piano::data::in_order(a, order), piano::data::in_order(c, order));
                    return objective == Objective::clicks ? o.clicks : o.conversions;
                };
                std::vector<std::size_t> by_key(a.size());
                std::iota(by_key.begin(), by_key.end(), std::size_t{0});
                std::stable_sort(by_key.begin(), by_key.end(), [&](std::size_t i, std::size_t k) {
                    return best_order_key(m, objective, a[i], c[i]) > best_order_key(m, objective, a[k], c[k]);
                });
                std::vector<std::size_t> order(a.size());
                std::iota(order.begin(), order.end(), std::size_t{0});
                double best = 0.0;
                do {
                    best = std::max(best, value(order));
                } while (std::next_permutation(order.begin(), order.end()));
                INFO("model " << ClickModel::name(m.kind) << ", eta " << m.position_bias << ", gamma " << m.persistence
                              << ", objective " << (objective == Objective::clicks ? "clicks" : "conversions"));
                CHECK(value(by_key) >= best - 1e-12);
                ++lists;
            }
        }
    }
    CHECK(lists == 7 * 20 * 2);
}

TEST_CASE("online: under DBN the most clicks is not the sort by attraction, by hand", "[metrics][online]") {
    // Song 0: a = 0.9, c = 1 (a click always converts and ends the visit); song 1: a = 0.5,
    // c = 0. gamma = 0.9. By attraction (0, 1): 0.9 + 0.9 (1 - 0.9) 0.5 = 0.945 clicks;
    // (1, 0): 0.5 + 0.9 (1 - 0) 0.9 = 1.31. Keys: 0.9 / (0.1 + 0.81) and 0.5 / 0.1.
    const ClickModel m = dbn(0.9);
    using piano::data::Objective;
    CHECK(piano::data::best_order_key(m, Objective::clicks, 0.9, 1.0) == Approx(0.9 / 0.91));
    CHECK(piano::data::best_order_key(m, Objective::clicks, 0.5, 0.0) == Approx(5.0));
    CHECK(expected_outcome(m, {0.9, 0.5}, {1.0, 0.0}).clicks == Approx(0.945).epsilon(1e-12));
    CHECK(expected_outcome(m, {0.5, 0.9}, {0.0, 1.0}).clicks == Approx(1.31).epsilon(1e-12));
    // gamma = 1: a song that never converts never ends the visit, whatever its attraction.
    CHECK(piano::data::best_order_key(dbn(1.0), Objective::clicks, 0.1, 0.0) ==
          std::numeric_limits<double>::infinity());
    CHECK(piano::data::best_order_key(dbn(1.0), Objective::clicks, 0.0, 0.0) == 0.0);

    // The evaluator's click oracle follows the key; the online table adds it under DBN
    // only (under PBM it is the oracle by attraction) and measures the click gap against it.
    const piano::metrics::OnlineEvaluator ev(m, {{0, {0.9, 0.5}, {1.0, 0.0}}});
    CHECK(ev.attraction_oracle_orders()[0] == std::vector<std::size_t>{0, 1});
    CHECK(ev.click_oracle_orders()[0] == std::vector<std::size_t>{1, 0});
    const auto rows = piano::metrics::online_table(ev, {}, 50, 1);
    REQUIRE(rows.size() == 4);
    CHECK(rows[1].name == "oracle by attraction");
    CHECK(rows[2].name == "oracle by conversion");
    CHECK(rows[3].name == "oracle for clicks");
    CHECK(rows[3].mean[0].value == Approx(1.31));
    CHECK(rows[3].gap_closed_clicks == Approx(1.0));
    CHECK(rows[1].gap_closed_clicks == Approx(0.0));  // by attraction is the first stage here
    CHECK(rows[2].mean[1].value == Approx(0.9));  // a c = 0.9, 0: the first stage's order
    const piano::metrics::OnlineEvaluator pbm_ev = two_requests();
    CHECK(pbm_ev.click_oracle_orders() == pbm_ev.attraction_oracle_orders());
    const auto pbm_rows = piano::metrics::online_table(pbm_ev, {}, 50, 1);
    REQUIRE(pbm_rows.size() == 3);
    CHECK(pbm_rows[1].gap_closed_clicks == Approx(1.0));
}

TEST_CASE("online: the simulator's logged clicks follow the click model it writes", "[metrics][online][simulator]") {
    for (const ClickModelKind kind : {ClickModelKind::position_based, ClickModelKind::dbn}) {
        piano::data::SimulatorOptions o;
        o.users = 200;
        o.songs = 400;
        o.artists = 40;
        o.requests = 8000;
        o.test_fraction = 0.5;
        o.clicks.kind = kind;
        const piano::data::Simulation sim = piano::data::simulate_music_search(o);
        piano::testing::TempDir dir("online");
        piano::data::write_jdsearch_files(sim, dir.path());
        const auto ev = piano::metrics::OnlineEvaluator::from_dir(dir.path().string());
        CHECK(ev.click_model().kind == kind);
        REQUIRE(ev.requests() == sim.test);
        const auto valued = ev.value(ev.first_stage_orders());
        double expected_clicks = 0.0, expected_conversions = 0.0, logged_clicks = 0.0, logged_conversions = 0.0;
        for (std::size_t k = 0; k < sim.test; ++k) {
            expected_clicks += valued[k].clicks;
            expected_conversions += valued[k].conversions;
            for (int label : sim.requests[sim.train + sim.valid + k].label) {
                logged_clicks += label > 0;
                logged_conversions += label == 3;
            }
        }
        INFO("click model " << ClickModel::name(kind));
        // 4000 requests: the logged totals are within a few standard errors of the truth.
        CHECK(logged_clicks == Approx(expected_clicks).epsilon(0.05));
        CHECK(logged_conversions == Approx(expected_conversions).epsilon(0.08));
    }
}

TEST_CASE("online: click_model.txt round-trips and a bad value names file, line and key", "[metrics][online]") {
    piano::testing::TempDir dir("clickmodel");
    const ClickModel m = dbn(0.75);
    {
        std::ofstream out(dir / "click_model.txt");
        out << piano::data::click_model_text(m);
    }
    const ClickModel back = piano::data::read_click_model((dir / "click_model.txt").string());
    CHECK(back.kind == ClickModelKind::dbn);
    CHECK(back.persistence == 0.75);
    {
        std::ofstream out(dir / "bad.txt");
        out << "click_model = dbn\npersistence = 1.5\n";
    }
    CHECK_THROWS_WITH(piano::data::read_click_model((dir / "bad.txt").string()), Catch::Contains("persistence"));
    {
        std::ofstream out(dir / "bad2.txt");
        out << "click_model = cascade\n";
    }
    CHECK_THROWS_WITH(piano::data::read_click_model((dir / "bad2.txt").string()),
                      Catch::Contains("bad2.txt:1") && Catch::Contains("click_model"));
}

TEST_CASE("online: a malformed online_truth.txt names its file, line and field", "[metrics][online]") {
    piano::testing::TempDir dir("onlinetruth");
    {
        std::ofstream out(dir / "online_truth.txt");
        out << "0\t0.5_0.2\t0.1_0.3\n1\t0.5_1.7\t0.1_0.3\n";
    }
    const std::string path = (dir / "online_truth.txt").string();
    CHECK_THROWS_WITH(piano::data::read_online_truth(path),
                      Catch::Contains("online_truth.txt:2") && Catch::Contains("field attraction") &&
                          Catch::Contains("'1.7'"));
    {
        std::ofstream out(dir / "online_truth.txt");
        out << "0\t0.5_0.2\t0.1\n";
    }
    CHECK_THROWS_WITH(piano::data::read_online_truth(path), Catch::Contains("field conversion"));
    // Rows out of test order are refused by the evaluator, naming the row.
    std::vector<piano::data::OnlineTruthRow> swapped{{1, {0.5}, {0.1}}, {0, {0.5}, {0.1}}};
    CHECK_THROWS_AS(piano::metrics::OnlineEvaluator(ClickModel{}, swapped), piano::DataError);
}
