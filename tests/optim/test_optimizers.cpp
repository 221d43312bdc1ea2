// SGD, Adam, AdamW, lazy sparse updates, state round trips, clipping and schedules.
#include <catch2/catch.hpp>

#include <piano/ops/elementwise.hpp>
#include <piano/ops/indexing.hpp>
#include <piano/ops/reduce.hpp>
#include <piano/optim/adam.hpp>
#include <piano/optim/clip.hpp>
#include <piano/optim/schedule.hpp>
#include <piano/optim/sgd.hpp>

#include <support/test_helpers.hpp>

#include <cmath>
#include <limits>
#include <memory>
#include <string>
#include <vector>

using piano::Index;
using piano::Matrix;
using piano::Tensor;
using piano::testing::row_matrix;
using Named = std::vector<std::pair<std::string, Tensor<double>>>;

namespace {

/// Backward through loss = sum(p ⊙ c), so that p's gradient is exactly c.
void set_gradient_by_backward(Tensor<double>& p, const Matrix<double>& c) {
    p.zero_grad();
    piano::sum(p * Tensor<double>(c)).backward();
}

/// loss = sum((p - target)^2), backpropagated into p.
void quadratic_backward(Tensor<double>& p, const Matrix<double>& target) {
    p.zero_grad();
    const Tensor<double> d = p - Tensor<double>(target);
    piano::sum(d * d).backward();
}

void check_row(const Matrix<double>& actual, std::initializer_list<double> expected) {
    REQUIRE(actual.rows() == 1);
    REQUIRE(actual.cols() == static_cast<Index>(expected.size()));
    Index i = 0;
    for (double e : expected) CHECK(actual(0, i++) == Approx(e).margin(1e-12));
}

}  // namespace

// ---------------------------------------------------------------------------------------
// SGD: two steps by hand on p = [1, -2], lr = 0.1, gradients [0.5, 1] then [-1, 2].

TEST_CASE("SGD without momentum: p -= lr g", "[optim][sgd]") {
    Tensor<double> p(row_matrix({1, -2}), true);
    piano::SGD<double> sgd({{"p", p}}, {0.1, 0.0, false, 0.0});
    set_gradient_by_backward(p, row_matrix({0.5, 1}));
    sgd.step();
    check_row(p.value(), {0.95, -2.1});
    set_gradient_by_backward(p, row_matrix({-1, 2}));
    sgd.step();
    check_row(p.value(), {1.05, -2.3});
    CHECK(sgd.steps_taken() == 2);
    CHECK(sgd.state().slots.at("p").empty());  // no momentum, no state
}

TEST_CASE("SGD with momentum 0.9: b = 0.9 b + g, p -= lr b", "[optim][sgd]") {
    Tensor<double> p(row_matrix({1, -2}), true);
    piano::SGD<double> sgd({{"p", p}}, {0.1, 0.9, false, 0.0});
    set_gradient_by_backward(p, row_matrix({0.5, 1}));
    sgd.step();  // b = [0.5, 1]
    check_row(p.value(), {0.95, -2.1});
    set_gradient_by_backward(p, row_matrix({-1, 2}));
    sgd.step();  // b = [0.45 - 1, 0.9 + 2] = [-0.55, 2.9]
    check_row(p.value(), {1.005, -2.39});
    check_row(sgd.state().slots.at("p").at(0), {-0.55, 2.9});
}

TEST_CASE("SGD with Nesterov momentum: p -= lr (g + 0.9 b)", "[optim][sgd]") {
    Tensor<double> p(row_matrix({1, -2}), true);
    piano::SGD<double> sgd({{"p", p}}, {0.1, 0.9, true, 0.0});
    set_gradient_by_backward(p, row_matrix({0.5, 1}));
    sgd.step();  // b = [0.5, 1], d = [0.95, 1.9]
    check_row(p.value(), {0.905, -2.19});
    set_gradient_by_backward(p, row_matrix({-1, 2}));
    sgd.step();  // b = [-0.55, 2.9], d = [-1.495, 4.61]
    check_row(p.value(), {1.0545, -2.651});
}

TEST_CASE("SGD weight decay adds lambda p to the gradient", "[optim][sgd]") {
    Tensor<double> p(row_matrix({1, -2}), true);
    piano::SGD<double> sgd({{"p", p}}, {0.1, 0.0, false, 0.1});
    set_gradient_by_backward(p, row_matrix({0.5, 1}));
    sgd.step();  // d = [0.6, 0.8]
    check_row(p.value(), {0.94, -2.08});
    set_gradient_by_backward(p, row_matrix({-1, 2}));
    sgd.step();  // d = [-0.906, 1.792]
    check_row(p.value(), {1.0306, -2.2592});
}

TEST_CASE("SGD rejects bad options and ambiguous parameter names", "[optim][sgd]") {
    Tensor<double> p(row_matrix({1, 2}), true);
    CHECK_THROWS_AS(piano::SGD<double>({{"p", p}}, {-0.1, 0.0, false, 0.0}), piano::ConfigError);
    CHECK_THROWS_AS(piano::SGD<double>({{"p", p}}, {0.1, 1.0, false, 0.0}), piano::ConfigError);
    CHECK_THROWS_AS(piano::SGD<double>({{"p", p}}, {0.1, 0.0, true, 0.0}), piano::ConfigError);
    CHECK_THROWS_AS(piano::SGD<double>({{"p", p}}, {0.1, 0.0, false, -1.0}), piano::ConfigError);
    CHECK_THROWS_WITH(piano::SGD<double>({{"p", p}, {"p", p}}, {}), Catch::Contains("'p'"));
    CHECK_THROWS_WITH(piano::SGD<double>({{"q", Tensor<double>()}}, {}), Catch::Contains("'q'"));
}

// ---------------------------------------------------------------------------------------
// Adam and AdamW

TEST_CASE("Adam's first step moves each entry by lr g / (|g| + eps)", "[optim][adam]") {
    // After one step m_hat = g and v_hat = g^2 (the bias corrections undo the zero start).
    const double lr = 0.01, eps = 1e-8, lambda = 0.1;
    SECTION("Adam: L2 decay joins the gradient") {
        Tensor<double> p(row_matrix({1, -2}), true);
        piano::Adam<double> adam({{"p", p}}, {lr, 0.9, 0.999, eps, lambda, piano::SparseMode::dense});
        set_gradient_by_backward(p, row_matrix({0.5, 1}));
        adam.step();
        const double g0 = 0.5 + lambda * 1, g1 = 1 + lambda * -2;
        check_row(p.value(), {1 - lr * g0 / (std::abs(g0) + eps), -2 - lr * g1 / (std::abs(g1) + eps)});
        const auto state = adam.state();
        check_row(state.slots.at("p").at(0), {0.1 * g0, 0.1 * g1});                          // exp_avg
        check_row(state.slots.at("p").at(1), {0.001 * g0 * g0, 0.001 * g1 * g1});            // exp_avg_sq
        CHECK(state.step == 1);
    }
    SECTION("AdamW: decoupled decay shrinks p by (1 - lr lambda), the moments never see it") {
        Tensor<double> p(row_matrix({1, -2}), true);
        piano::AdamW<double> adamw({{"p", p}}, {lr, 0.9, 0.999, eps, lambda, piano::SparseMode::dense});
        set_gradient_by_backward(p, row_matrix({0.5, 1}));
        adamw.step();
        const double keep = 1 - lr * lambda;
        check_row(p.value(), {1 * keep - lr * 0.5 / (0.5 + eps), -2 * keep - lr * 1 / (1 + eps)});
        check_row(adamw.state().slots.at("p").at(0), {0.05, 0.1});
        CHECK(adamw.name() == "adamw");
    }
}

TEST_CASE("Adam and AdamW minimise a quadratic", "[optim][adam]") {
    const Matrix<double> target = row_matrix({3, -1, 0.5});
    auto run = [&](piano::Optimizer<double>& optimizer, Tensor<double>& p) {
        for (int i = 0; i < 1500; ++i) {
            quadratic_backward(p, target);
            optimizer.step();
        }
        return (p.value() - target).cwiseAbs().maxCoeff();
    };
    SECTION("Adam") {
        Tensor<double> p = Tensor<double>::zeros(1, 3, true);
        piano::Adam<double> adam({{"p", p}}, {0.05, 0.9, 0.999, 1e-8, 0.0, piano::SparseMode::dense});
        CHECK(run(adam, p) < 1e-4);
    }
    SECTION("AdamW") {
        // The decoupled decay pulls towards 0 by lr lambda p per step, against a normalised
        // gradient step m_hat / sqrt(v_hat) that shrinks only as fast as v forgets the early,
        // large gradients (b2 = 0.999). So p approaches the target slowly, held on the side
        // of 0.
        Tensor<double> p = Tensor<double>::zeros(1, 3, true);
        piano::AdamW<double> adamw({{"p", p}}, {0.05, 0.9, 0.999, 1e-8, 0.01, piano::SparseMode::dense});
        CHECK(run(adamw, p) < 1e-2);
        CHECK((p.value().cwiseAbs().array() < target.cwiseAbs().array()).all());
    }
}

TEST_CASE("Adam leaves parameters without a gradient alone", "[optim][adam]") {
    Tensor<double> used(row_matrix({1, 2}), true);
    Tensor<double> unused(row_matrix({3, 4}), true);
    piano::Adam<double> adam({{"used", used}, {"unused", unused}}, {});
    set_gradient_by_backward(used, row_matrix({1, 1}));
    adam.step();
    CHECK(unused.value() == row_matrix({3, 4}));
    CHECK(adam.state().slots.at("unused").at(0).isZero(0));
    CHECK_FALSE(unused.has_grad());
}

TEST_CASE("Adam rejects bad options", "[optim][adam]") {
    Tensor<double> p(row_matrix({1, 2}), true);
    auto with = [](auto change) {
        piano::AdamOptions o;
        change(o);
        return o;
    };
    CHECK_THROWS_AS(piano::Adam<double>({{"p", p}}, with([](auto& o) { o.beta1 = 1.0; })), piano::ConfigError);
    CHECK_THROWS_AS(piano::Adam<double>({{"p", p}}, with([](auto& o) { o.beta2 = -0.1; })), piano::ConfigError);
    CHECK_THROWS_AS(piano::Adam<double>({{"p", p}}, with([](auto& o) { o.eps = -1; })), piano::ConfigError);
    CHECK_THROWS_AS(piano::AdamW<double>({{"p", p}}, with([](auto& o) { o.weight_decay = -1; })),
                    piano::ConfigError);
    CHECK_THROWS_WITH(piano::AdamW<double>({{"p", p}}, with([](auto& o) { o.learning_rate = std::nan(""); })),
                      Catch::Contains("adamw") && Catch::Contains("learning_rate"));
}

// ---------------------------------------------------------------------------------------
// Lazy (sparse) embedding updates

namespace {

/// A [6,3] table with distinct entries.
Matrix<double> table_values() {
    Matrix<double> m(6, 3);
    for (Index i = 0; i < m.size(); ++i) m.data()[i] = 0.1 * static_cast<double>(i) - 0.7;
    return m;
}

/// loss = sum(embedding(table, ids) ⊙ W) with a fixed W, so touched rows get distinct gradients.
void embedding_backward(Tensor<double>& table, const std::vector<Index>& ids) {
    table.zero_grad();
    Matrix<double> w(static_cast<Index>(ids.size()), 3);
    for (Index i = 0; i < w.size(); ++i) w.data()[i] = std::sin(1.0 + static_cast<double>(i));
    piano::sum(piano::embedding(table, ids) * Tensor<double>(w)).backward();
}

}  // namespace

TEST_CASE("Lazy Adam updates only touched rows, dense Adam updates all", "[optim][adam][sparse]") {
    for (bool decoupled : {false, true}) {
        DYNAMIC_SECTION((decoupled ? "AdamW" : "Adam")) {
            auto make = [&](Tensor<double>& t, piano::SparseMode mode) -> std::unique_ptr<piano::Adam<double>> {
                piano::AdamOptions o;
                o.learning_rate = 0.01;
                o.weight_decay = 0.05;
                o.sparse_mode = mode;
                if (decoupled) return std::make_unique<piano::AdamW<double>>(Named{{"table", t}}, o);
                return std::make_unique<piano::Adam<double>>(Named{{"table", t}}, o);
            };
            Tensor<double> lazy_table(table_values(), true);
            Tensor<double> dense_table(table_values(), true);
            auto lazy = make(lazy_table, piano::SparseMode::lazy);
            auto dense = make(dense_table, piano::SparseMode::dense);

            // Step 1 touches rows 1 and 4 (row 1 twice: its gradient is the sum, used once).
            const std::vector<Index> first = {1, 4, 1};
            embedding_backward(lazy_table, first);
            embedding_backward(dense_table, first);
            REQUIRE(lazy_table.node()->grad_is_row_sparse);
            lazy->step();
            dense->step();
            for (Index r : {1, 4}) {
                INFO("touched row " << r);
                CHECK(lazy_table.value().row(r).isApprox(dense_table.value().row(r), 1e-15));
                CHECK(lazy->state().slots.at("table")[0].row(r).isApprox(dense->state().slots.at("table")[0].row(r),
                                                                         1e-15));
                CHECK(lazy->state().slots.at("table")[1].row(r).isApprox(dense->state().slots.at("table")[1].row(r),
                                                                         1e-15));
            }
            for (Index r : {0, 2, 3, 5}) {
                INFO("untouched row " << r);
                CHECK(lazy_table.value().row(r) == table_values().row(r));       // bit for bit
                CHECK(lazy->state().slots.at("table")[0].row(r).isZero(0));
                // Dense weight decay moved the untouched row.
                CHECK(dense_table.value().row(r) != table_values().row(r));
            }

            // Step 2 touches rows 0 and 2 only: rows 1 and 4 keep their values and moments
            // bit for bit in lazy mode, while dense Adam decays their moments.
            const Matrix<double> value_after_1 = lazy_table.value();
            const Matrix<double> value_after_1_dense = dense_table.value();
            const auto lazy_state_1 = lazy->state().slots.at("table");
            const auto dense_state_1 = dense->state().slots.at("table");
            lazy->zero_grad();
            dense->zero_grad();
            embedding_backward(lazy_table, {0, 2});
            embedding_backward(dense_table, {0, 2});
            lazy->step();
            dense->step();
            const auto lazy_state_2 = lazy->state().slots.at("table");
            const auto dense_state_2 = dense->state().slots.at("table");
            for (Index r : {1, 3, 4, 5}) {
                INFO("row " << r << " untouched in step 2");
                CHECK(lazy_table.value().row(r) == value_after_1.row(r));
                CHECK(lazy_state_2[0].row(r) == lazy_state_1[0].row(r));
                CHECK(lazy_state_2[1].row(r) == lazy_state_1[1].row(r));
            }
            for (Index r : {1, 4}) {
                // Dense Adam sees g = 0 there (g = lambda p with L2 decay) and decays the moments.
                const Matrix<double> g = decoupled ? Matrix<double>::Zero(1, 3) : Matrix<double>(0.05 * value_after_1_dense.row(r));
                CHECK(dense_state_2[0].row(r).isApprox(0.9 * dense_state_1[0].row(r) + 0.1 * g, 1e-15));
                CHECK(dense_state_2[1].row(r).isApprox(0.999 * dense_state_1[1].row(r) + 0.001 * g.cwiseAbs2(), 1e-15));
            }
            for (Index r : {0, 2}) CHECK(lazy_table.value().row(r) != value_after_1.row(r));
        }
    }
}

TEST_CASE("Lazy Adam treats a dense gradient densely", "[optim][adam][sparse]") {
    Tensor<double> p(row_matrix({1, -2}), true);
    Tensor<double> q(row_matrix({1, -2}), true);
    piano::AdamOptions lazy_options;
    lazy_options.sparse_mode = piano::SparseMode::lazy;
    piano::Adam<double> lazy({{"p", p}}, lazy_options);
    piano::Adam<double> dense({{"q", q}}, {});
    set_gradient_by_backward(p, row_matrix({0.5, 1}));
    set_gradient_by_backward(q, row_matrix({0.5, 1}));
    lazy.step();
    dense.step();
    CHECK(p.value() == q.value());

    // After zero_grad and no backward, the gradient is row-sparse with nothing touched: lazy
    // mode leaves p alone, dense mode takes a step with g = 0 (the momentum still moves q).
    const Matrix<double> p_before = p.value(), q_before = q.value();
    lazy.zero_grad();
    dense.zero_grad();
    lazy.step();
    dense.step();
    CHECK(p.value() == p_before);
    CHECK(q.value() != q_before);
}

// ---------------------------------------------------------------------------------------
// State: round trip and errors

namespace {

/// Runs `steps` updates of `optimizer` on p with a gradient that changes every step.
void train(piano::Optimizer<double>& optimizer, Tensor<double>& p, int steps, int offset = 0) {
    for (int s = 0; s < steps; ++s) {
        const double k = static_cast<double>(s + offset);
        set_gradient_by_backward(p, row_matrix({std::sin(k), std::cos(2 * k) - 0.3, 0.25 * k}));
        optimizer.step();
    }
}

template <typename Make>
void check_round_trip(Make make) {
    Tensor<double> a(row_matrix({0.5, -1, 2}), true);
    auto first = make(a);
    train(*first, a, 3);

    Tensor<double> b(a.value(), true);  // a fresh process: the parameter restored from a checkpoint
    auto second = make(b);
    second->load_state(first->state());
    CHECK(second->steps_taken() == 3);

    train(*first, a, 2, 3);
    train(*second, b, 2, 3);
    CHECK(a.value() == b.value());  // bit for bit
    const auto sa = first->state(), sb = second->state();
    CHECK(sa.step == sb.step);
    for (std::size_t k = 0; k < sa.slots.at("w").size(); ++k) CHECK(sa.slots.at("w")[k] == sb.slots.at("w")[k]);
}

}  // namespace

TEST_CASE("state() -> load_state() in a new optimizer continues bit for bit", "[optim][state]") {
    SECTION("SGD with Nesterov momentum") {
        check_round_trip([](Tensor<double>& p) {
            return std::make_unique<piano::SGD<double>>(Named{{"w", p}}, piano::SGDOptions{0.1, 0.9, true, 0.01});
        });
    }
    SECTION("Adam") {
        check_round_trip([](Tensor<double>& p) {
            return std::make_unique<piano::Adam<double>>(Named{{"w", p}}, piano::AdamOptions{});
        });
    }
    SECTION("AdamW") {
        piano::AdamOptions o;
        o.weight_decay = 0.01;
        check_round_trip([o](Tensor<double>& p) { return std::make_unique<piano::AdamW<double>>(Named{{"w", p}}, o); });
    }
}

TEST_CASE("load_state names the parameter whose state does not fit", "[optim][state]") {
    Tensor<double> w(row_matrix({1, 2, 3}), true);
    Tensor<double> b(row_matrix({0.5}), true);
    piano::Adam<double> adam({{"layer.w", w}, {"layer.b", b}}, {});
    set_gradient_by_backward(w, row_matrix({1, 1, 1}));
    set_gradient_by_backward(b, row_matrix({1}));
    adam.step();
    const piano::OptimizerState<double> good = adam.state();
    CHECK(good.slots.size() == 2);

    auto expect_error = [&](piano::OptimizerState<double> bad, const std::string& fragment1,
                            const std::string& fragment2) {
        CHECK_THROWS_AS(adam.load_state(bad), piano::CheckpointError);
        CHECK_THROWS_WITH(adam.load_state(bad), Catch::Contains(fragment1) && Catch::Contains(fragment2));
        // A failed load changes nothing.
        const auto now = adam.state();
        CHECK(now.step == good.step);
        CHECK(now.slots.at("layer.w")[0] == good.slots.at("layer.w")[0]);
    };
    SECTION("a parameter is missing") {
        auto bad = good;
        bad.slots.erase("layer.b");
        expect_error(bad, "'layer.b'", "no state");
    }
    SECTION("an unknown name") {
        auto bad = good;
        bad.slots["layer.renamed"] = bad.slots.at("layer.w");
        expect_error(bad, "'layer.renamed'", "not a parameter");
    }
    SECTION("a slot is missing") {
        auto bad = good;
        bad.slots.at("layer.w").pop_back();
        expect_error(bad, "'layer.w'", "exp_avg, exp_avg_sq");
    }
    SECTION("a slot has the wrong shape") {
        auto bad = good;
        bad.slots.at("layer.w")[1] = Matrix<double>::Zero(3, 1);
        expect_error(bad, "'layer.w'", "exp_avg_sq is [3,1]");
    }
    SECTION("a negative step count") {
        auto bad = good;
        bad.step = -1;
        expect_error(bad, "adam", "negative");
    }
    SECTION("SGD state into SGD without momentum") {
        piano::SGD<double> momentum({{"layer.w", w}}, {0.1, 0.9, false, 0.0});
        piano::SGD<double> plain({{"layer.w", w}}, {0.1, 0.0, false, 0.0});
        CHECK_THROWS_WITH(plain.load_state(momentum.state()), Catch::Contains("'layer.w'") && Catch::Contains("1 state slots"));
    }
}

// ---------------------------------------------------------------------------------------
// Clipping

TEST_CASE("clip_grad_norm scales all gradients by one factor", "[optim][clip]") {
    Tensor<double> a(row_matrix({1, 1}), true), b(row_matrix({1, 1}), true), none(row_matrix({7}), true);
    set_gradient_by_backward(a, row_matrix({3, 0}));
    set_gradient_by_backward(b, row_matrix({0, 4}));
    SECTION("above max_norm: clipped to max_norm / (N + 1e-6)") {
        const double norm = piano::clip_grad_norm<double>({a, b, none}, 1.0);
        CHECK(norm == Approx(5.0).epsilon(1e-15));
        const double factor = 1.0 / (5.0 + 1e-6);
        check_row(a.grad(), {3 * factor, 0});
        check_row(b.grad(), {0, 4 * factor});
        CHECK(std::sqrt(a.grad().squaredNorm() + b.grad().squaredNorm()) <= 1.0);
        CHECK_FALSE(none.has_grad());  // skipped, not allocated
    }
    SECTION("below max_norm: untouched") {
        CHECK(piano::clip_grad_norm<double>({a, b}, 10.0) == Approx(5.0));
        CHECK(a.grad() == row_matrix({3, 0}));
        CHECK(b.grad() == row_matrix({0, 4}));
    }
    SECTION("named parameters, as an optimizer holds them") {
        piano::SGD<double> sgd({{"a", a}, {"b", b}}, {});
        CHECK(piano::clip_grad_norm(sgd.parameters(), 2.5) == Approx(5.0));
        check_row(a.grad(), {3 * 2.5 / (5.0 + 1e-6), 0});
    }
    SECTION("a non-finite norm is returned and nothing is scaled") {
        b.mutable_grad()(0, 0) = std::numeric_limits<double>::infinity();
        CHECK(std::isinf(piano::clip_grad_norm<double>({a, b}, 1.0)));
        CHECK(a.grad() == row_matrix({3, 0}));
        b.mutable_grad()(0, 0) = std::nan("");
        CHECK(std::isnan(piano::clip_grad_norm<double>({a, b}, 1.0)));
        CHECK(a.grad() == row_matrix({3, 0}));
    }
    SECTION("max_norm < 0 is refused") {
        CHECK_THROWS_AS(piano::clip_grad_norm<double>({a}, -1.0), piano::ConfigError);
    }
}

TEST_CASE("clip_grad_norm reads a row-sparse gradient's touched rows once", "[optim][clip][sparse]") {
    Tensor<double> table(table_values(), true);
    embedding_backward(table, {1, 4, 1});
    const Matrix<double> before = table.grad();
    const double norm = piano::clip_grad_norm<double>({table}, 0.5);
    CHECK(norm == Approx(before.norm()).epsilon(1e-14));
    CHECK(table.grad().isApprox(before * (0.5 / (norm + 1e-6)), 1e-15));
}

// ---------------------------------------------------------------------------------------
// Schedules

TEST_CASE("ConstantSchedule", "[optim][schedule]") {
    const piano::ConstantSchedule s(0.3);
    CHECK(s.lr(0) == 0.3);
    CHECK(s.lr(1000000) == 0.3);
    CHECK_THROWS_AS(s.lr(-1), std::invalid_argument);
}

TEST_CASE("WarmupCosineSchedule: linear warm-up, half cosine to the floor", "[optim][schedule]") {
    // W = 4, S = 12, peak 1, floor 0.1.
    const piano::WarmupCosineSchedule s(1.0, 4, 12, 0.1);
    CHECK(s.lr(0) == 0.25);                                     // peak (0 + 1) / 4
    CHECK(s.lr(1) == 0.5);
    CHECK(s.lr(3) == 1.0);                                      // end of warm-up: the peak
    CHECK(s.lr(4) == 1.0);                                      // decay starts at the peak
    CHECK(s.lr(8) == Approx(0.55).margin(1e-15));               // middle: (peak + floor) / 2
    CHECK(s.lr(11) == Approx(0.1 + 0.45 * (1 + std::cos(std::acos(-1.0) * 7 / 8))).margin(1e-15));
    CHECK(s.lr(12) == 0.1);                                     // end: the floor
    CHECK(s.lr(1000) == 0.1);                                   // beyond: the floor
    CHECK(piano::WarmupCosineSchedule(2.0, 0, 10).lr(0) == 2.0);  // no warm-up
    CHECK_THROWS_AS(s.lr(-1), std::invalid_argument);
    CHECK_THROWS_AS(piano::WarmupCosineSchedule(1.0, 5, 5), piano::ConfigError);
    CHECK_THROWS_AS(piano::WarmupCosineSchedule(1.0, 2, 5, 2.0), piano::ConfigError);
    CHECK_THROWS_AS(piano::WarmupCosineSchedule(1.0, -1, 5), piano::ConfigError);
}

TEST_CASE("WarmupLinearSchedule: linear warm-up, linear decay to the floor", "[optim][schedule]") {
    // W = 2, S = 6, peak 0.5, floor 0.05.
    const piano::WarmupLinearSchedule s(0.5, 2, 6, 0.05);
    CHECK(s.lr(0) == 0.25);
    CHECK(s.lr(1) == 0.5);                                      // end of warm-up
    CHECK(s.lr(2) == 0.5);
    CHECK(s.lr(4) == Approx(0.275).margin(1e-15));              // middle
    CHECK(s.lr(6) == 0.05);                                     // end
    CHECK(s.lr(7) == 0.05);                                     // beyond
    CHECK_THROWS_AS(piano::WarmupLinearSchedule(0.5, 6, 2), piano::ConfigError);
}

TEST_CASE("A schedule drives an optimizer through set_learning_rate", "[optim][schedule]") {
    Tensor<double> p(row_matrix({0}), true);
    piano::SGD<double> sgd({{"p", p}}, {});
    const piano::WarmupLinearSchedule schedule(1.0, 2, 4);
    const double expected[] = {0.5, 1.0, 1.0, 0.5};
    double position = 0;
    for (double lr : expected) {
        sgd.set_learning_rate(schedule.lr(sgd.steps_taken()));
        CHECK(sgd.learning_rate() == lr);
        set_gradient_by_backward(p, row_matrix({-1}));
        sgd.step();
        position += lr;
        CHECK(p.value()(0, 0) == Approx(position).margin(1e-15));
    }
}
