// gather_rows, embedding (row-sparse gradients), concat_rows/cols, slice_rows/cols, reshape.
#include <catch2/catch.hpp>

#include <piano/core/gradcheck.hpp>
#include <piano/ops/indexing.hpp>
#include <piano/ops/reduce.hpp>

#include <support/test_helpers.hpp>

using piano::Index;
using piano::Matrix;
using piano::Tensor;
using piano::testing::check_ok;
using piano::testing::random_tensor;
using Inputs = std::vector<Tensor<double>>;

namespace {
/// [r,c] holding 0, 1, 2, ... in row-major order, so every entry says where it came from.
Tensor<double> iota(Index r, Index c, bool requires_grad = false) {
    Matrix<double> m(r, c);
    for (Index k = 0; k < m.size(); ++k) m.data()[k] = static_cast<double>(k);
    return Tensor<double>(m, requires_grad);
}
}  // namespace

TEST_CASE("gather_rows picks rows, repeats included", "[ops][indexing]") {
    const Tensor<double> x = iota(4, 2);  // rows (0 1) (2 3) (4 5) (6 7)
    const Tensor<double> y = piano::gather_rows(x, {2, 0, 2});
    REQUIRE(y.rows() == 3);
    REQUIRE(y.cols() == 2);
    CHECK(y.value()(0, 0) == 4);
    CHECK(y.value()(0, 1) == 5);
    CHECK(y.value()(1, 1) == 1);
    CHECK(y.value()(2, 0) == 4);
    CHECK(piano::gather_rows(x, {}).rows() == 0);
}

TEST_CASE("gather_rows gradient scatter-adds into repeated rows", "[ops][indexing]") {
    auto f = [](const Inputs& in) { return piano::gather_rows(in[0], {3, 1, 3, 0, 3}); };
    check_ok(piano::check_gradients(f, {random_tensor(5, 3, 1)}));
}

TEST_CASE("gather_rows rejects ids outside the table", "[ops][indexing][errors]") {
    const Tensor<double> x = Tensor<double>::zeros(4, 3);
    CHECK_THROWS_AS(piano::gather_rows(x, {0, 4}), piano::ShapeError);
    CHECK_THROWS_WITH(piano::gather_rows(x, {0, 4}),
                      Catch::StartsWith("gather_rows") && Catch::Contains("index 4") && Catch::Contains("[0,4)") &&
                          Catch::Contains("[4,3]"));
    CHECK_THROWS_WITH(piano::gather_rows(x, {-1}), Catch::Contains("index -1"));
}

TEST_CASE("embedding looks up rows", "[ops][embedding]") {
    const Tensor<double> table = iota(5, 3);
    const Tensor<double> y = piano::embedding(table, {4, 1});
    REQUIRE(y.rows() == 2);
    CHECK(y.value()(0, 0) == 12);
    CHECK(y.value()(0, 2) == 14);
    CHECK(y.value()(1, 1) == 4);
}

TEST_CASE("embedding gradient matches finite differences", "[ops][embedding]") {
    auto f = [](const Inputs& in) { return piano::embedding(in[0], {2, 0, 2, 5}); };
    check_ok(piano::check_gradients(f, {random_tensor(6, 4, 2)}));
}

TEST_CASE("embedding gradients are row-sparse and zero_grad clears them", "[ops][embedding]") {
    Tensor<double> table = iota(6, 2, true);
    Tensor<double> y = piano::embedding(table, {4, 1, 4});
    Matrix<double> seed(3, 2);
    seed << 1, 2, 3, 4, 5, 6;
    y.backward(seed);

    const auto& node = *table.node();
    CHECK(node.grad_is_row_sparse);
    CHECK(node.touched_rows == std::vector<Index>{4, 1, 4});
    const Matrix<double>& g = table.grad();
    CHECK(g(4, 0) == 1 + 5);  // row 4 was looked up twice: both gradient rows add
    CHECK(g(4, 1) == 2 + 6);
    CHECK(g(1, 0) == 3);
    CHECK(g(1, 1) == 4);
    for (Index r : {0, 2, 3, 5}) {
        INFO("row " << r);
        CHECK(g.row(r).isZero(0));
    }

    table.zero_grad();
    CHECK(table.grad().isZero(0));
    CHECK(table.node()->touched_rows.empty());

    // A second step records only its own rows.
    piano::embedding(table, {2}).backward(Matrix<double>::Ones(1, 2));
    CHECK(table.node()->touched_rows == std::vector<Index>{2});
    CHECK(table.grad().row(2).isOnes(0));
    CHECK(table.grad().row(4).isZero(0));
}

TEST_CASE("embedding rejects ids outside the table", "[ops][embedding][errors]") {
    const Tensor<double> table = Tensor<double>::zeros(10, 4);
    CHECK_THROWS_AS(piano::embedding(table, {10}), piano::ShapeError);
    CHECK_THROWS_WITH(piano::embedding(table, {3, 10}),
                      Catch::StartsWith("embedding") && Catch::Contains("index 10") &&
                          Catch::Contains("position 1") && Catch::Contains("[0,10)"));
    CHECK_THROWS_WITH(piano::embedding(table, {-2}), Catch::Contains("index -2"));
}

TEST_CASE("concat_rows and concat_cols stack their parts", "[ops][indexing]") {
    const Tensor<double> a = iota(1, 2), b = iota(2, 2);
    const Tensor<double> v = piano::concat_rows<double>({a, b});  // (0 1) (0 1) (2 3)
    REQUIRE(v.rows() == 3);
    REQUIRE(v.cols() == 2);
    CHECK(v.value()(1, 1) == 1);
    CHECK(v.value()(2, 0) == 2);

    const Tensor<double> c = iota(2, 1);
    const Tensor<double> h = piano::concat_cols<double>({b, c});  // (0 1 0) (2 3 1)
    REQUIRE(h.rows() == 2);
    REQUIRE(h.cols() == 3);
    CHECK(h.value()(0, 2) == 0);
    CHECK(h.value()(1, 0) == 2);
    CHECK(h.value()(1, 2) == 1);
}

TEST_CASE("concat gradients, including a part used twice and an empty part", "[ops][indexing]") {
    auto rows = [](const Inputs& in) { return piano::concat_rows<double>({in[0], in[1], in[0], in[2]}); };
    check_ok(piano::check_gradients(rows, {random_tensor(2, 3, 3), random_tensor(1, 3, 4), random_tensor(0, 3, 5)}));
    auto cols = [](const Inputs& in) { return piano::concat_cols<double>({in[1], in[0], in[1]}); };
    check_ok(piano::check_gradients(cols, {random_tensor(3, 2, 6), random_tensor(3, 1, 7)}));
}

TEST_CASE("concat rejects an empty list and mismatched parts", "[ops][indexing][errors]") {
    CHECK_THROWS_AS(piano::concat_rows<double>({}), piano::ShapeError);
    CHECK_THROWS_WITH(piano::concat_rows<double>({}), Catch::StartsWith("concat_rows") && Catch::Contains("empty"));
    CHECK_THROWS_WITH(piano::concat_cols<double>({}), Catch::StartsWith("concat_cols") && Catch::Contains("empty"));
    const Tensor<double> a = Tensor<double>::zeros(2, 3), b = Tensor<double>::zeros(4, 5);
    CHECK_THROWS_AS(piano::concat_rows<double>({a, b}), piano::ShapeError);
    CHECK_THROWS_WITH(piano::concat_rows<double>({a, a, b}),
                      Catch::StartsWith("concat_rows") && Catch::Contains("part 2") && Catch::Contains("[4,5]") &&
                          Catch::Contains("[2,3]"));
    CHECK_THROWS_WITH(piano::concat_cols<double>({a, b}),
                      Catch::StartsWith("concat_cols") && Catch::Contains("[4,5]") && Catch::Contains("[2,3]"));
}

TEST_CASE("slice_rows and slice_cols cut a block", "[ops][indexing]") {
    const Tensor<double> x = iota(4, 3);  // (0 1 2) (3 4 5) (6 7 8) (9 10 11)
    const Tensor<double> r = piano::slice_rows(x, 1, 2);
    REQUIRE(r.rows() == 2);
    REQUIRE(r.cols() == 3);
    CHECK(r.value()(0, 0) == 3);
    CHECK(r.value()(1, 2) == 8);
    const Tensor<double> c = piano::slice_cols(x, 2, 1);
    REQUIRE(c.rows() == 4);
    REQUIRE(c.cols() == 1);
    CHECK(c.value()(3, 0) == 11);
    CHECK(piano::slice_rows(x, 4, 0).rows() == 0);
}

TEST_CASE("slice gradients land in the slice's place", "[ops][indexing]") {
    auto rows = [](const Inputs& in) { return piano::slice_rows(in[0], 1, 3); };
    check_ok(piano::check_gradients(rows, {random_tensor(5, 2, 8)}));
    auto cols = [](const Inputs& in) { return piano::slice_cols(in[0], 0, 2); };
    check_ok(piano::check_gradients(cols, {random_tensor(3, 4, 9)}));
}

TEST_CASE("slices past the end or negative are rejected", "[ops][indexing][errors]") {
    const Tensor<double> x = Tensor<double>::zeros(4, 6);
    CHECK_THROWS_AS(piano::slice_rows(x, 3, 2), piano::ShapeError);
    CHECK_THROWS_WITH(piano::slice_rows(x, 3, 2), Catch::StartsWith("slice_rows") && Catch::Contains("begin 3") &&
                                                      Catch::Contains("count 2") && Catch::Contains("[0,4)") &&
                                                      Catch::Contains("[4,6]"));
    CHECK_THROWS_WITH(piano::slice_rows(x, -1, 1), Catch::Contains("begin -1"));
    CHECK_THROWS_WITH(piano::slice_cols(x, 0, 7), Catch::StartsWith("slice_cols") && Catch::Contains("[0,6)"));
    CHECK_THROWS_WITH(piano::slice_cols(x, 2, -1), Catch::Contains("count -1"));
}

TEST_CASE("reshape reads the row-major storage in a new shape", "[ops][indexing]") {
    const Tensor<double> x = iota(2, 3);  // (0 1 2) (3 4 5)
    const Tensor<double> y = piano::reshape(x, 3, 2);  // (0 1) (2 3) (4 5): not a transpose
    REQUIRE(y.rows() == 3);
    REQUIRE(y.cols() == 2);
    CHECK(y.value()(1, 0) == 2);
    CHECK(y.value()(2, 1) == 5);
    CHECK(piano::reshape(x, 1, 6).value()(0, 4) == 4);

    auto f = [](const Inputs& in) { return piano::reshape(in[0], 2, 6); };
    check_ok(piano::check_gradients(f, {random_tensor(4, 3, 10)}));
}

TEST_CASE("reshape rejects a different number of entries", "[ops][indexing][errors]") {
    const Tensor<double> x = Tensor<double>::zeros(2, 3);
    CHECK_THROWS_AS(piano::reshape(x, 4, 2), piano::ShapeError);
    CHECK_THROWS_WITH(piano::reshape(x, 4, 2),
                      Catch::StartsWith("reshape") && Catch::Contains("[2,3]") && Catch::Contains("[4,2]"));
    CHECK_THROWS_WITH(piano::reshape(x, -2, -3), Catch::Contains("[-2,-3]"));
}

TEST_CASE("reshape to a shape whose size overflows is a ShapeError", "[ops][indexing][errors][overflow]") {
    // 2^62 x 4 wraps around to 0 entries in 64-bit arithmetic: the [0,3] input must not pass.
    const Tensor<double> empty = Tensor<double>::zeros(0, 3);
    const piano::Index huge = piano::Index{1} << 62;
    CHECK_THROWS_WITH(piano::reshape(empty, huge, 4), "reshape: 4611686018427387904 x 4 entries overflow the index type");
    CHECK_THROWS_AS(piano::reshape(empty, huge, huge), piano::ShapeError);
    CHECK_THROWS_AS(Tensor<double>::zeros(huge, 8), piano::ShapeError);
    CHECK_THROWS_AS(Tensor<double>::ones(-1, 2), piano::ShapeError);
    CHECK(piano::detail::checked_size_product(3, 5, "test") == 15);
    CHECK(piano::detail::checked_size_product(0, huge, "test") == 0);
}

TEST_CASE("a table that also receives a dense gradient is cleared whole", "[ops][embedding]") {
    Tensor<double> table(Matrix<double>::Ones(4, 2), true);
    // The table is gathered (sparse) and also used in a product (dense) in one graph.
    Tensor<double> loss = piano::sum(piano::embedding(table, {1})) + piano::sum(table * 2.0);
    loss.backward();
    CHECK_FALSE(table.node()->grad_is_row_sparse);
    CHECK(table.grad()(3, 0) == Approx(2.0));  // a row no gather touched
    table.zero_grad();
    CHECK(table.grad().isZero());
    // After zero_grad the next sparse-only step is row-sparse again.
    piano::sum(piano::embedding(table, {2})).backward();
    CHECK(table.node()->grad_is_row_sparse);
    CHECK(table.node()->touched_rows == std::vector<Index>{2});
}
