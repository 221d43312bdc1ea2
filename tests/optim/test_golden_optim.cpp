// Ten steps of Adam, AdamW and SGD on a tiny MLP, compared with PyTorch
// (fixture: tests/golden/golden_optim.py -> tests/fixtures/golden/optim_mlp.txt).
#include <catch2/catch.hpp>

#include <piano/nn/linear.hpp>
#include <piano/ops/reduce.hpp>
#include <piano/ops/unary.hpp>
#include <piano/optim/adam.hpp>
#include <piano/optim/sgd.hpp>

#include <support/golden.hpp>

#include <memory>
#include <random>
#include <string>

using piano::Matrix;
using piano::Tensor;
using piano::testing::GoldenFixture;
using piano::testing::max_relative_difference;

namespace {

/// Linear(4, 5) -> ReLU -> Linear(5, 1), its parameters named as in the fixture.
class Mlp : public piano::Module<double> {
public:
    explicit Mlp(const GoldenFixture& fixture) {
        std::mt19937_64 rng(0);  // overwritten below; Linear needs an initialiser
        l1 = register_module("l1", std::make_shared<piano::Linear<double>>(4, 5, rng));
        l2 = register_module("l2", std::make_shared<piano::Linear<double>>(5, 1, rng));
        for (auto& [name, p] : named_parameters()) p.mutable_value() = fixture["init." + name];
    }
    Tensor<double> forward(const Tensor<double>& x) const { return l2->forward(piano::relu(l1->forward(x))); }

    std::shared_ptr<piano::Linear<double>> l1, l2;
};

const GoldenFixture& fixture() {
    static const GoldenFixture f(std::string(PIANO_TEST_FIXTURES) + "/golden/optim_mlp.txt");
    return f;
}

/// Trains a fresh MLP for ten steps and returns the largest relative difference from
/// PyTorch over the ten losses and the parameters after every step.
template <typename Make>
double ten_steps(const std::string& label, Make make_optimizer) {
    const GoldenFixture& f = fixture();
    Mlp model(f);
    auto optimizer = make_optimizer(model.named_parameters());
    const Tensor<double> x(f["x"]), y(f["y"]);
    const Matrix<double>& losses = f[label + ".loss"];
    double worst = 0.0;
    for (int step = 1; step <= 10; ++step) {
        model.zero_grad();
        const Tensor<double> d = model.forward(x) - y;
        Tensor<double> loss = piano::mean(d * d);
        loss.backward();
        optimizer->step();
        worst = std::max(worst, max_relative_difference(loss.value(), losses.col(step - 1)));
        for (const auto& [name, p] : model.named_parameters()) {
            const double diff = max_relative_difference(p.value(), f[label + ".step" + std::to_string(step) + "." + name]);
            INFO(label << " step " << step << " " << name);
            CHECK(diff < 1e-6);
            worst = std::max(worst, diff);
        }
    }
    return worst;
}

}  // namespace

TEST_CASE("Adam (L2 weight decay) matches PyTorch for ten steps", "[optim][golden]") {
    const double worst = ten_steps("adam", [](auto parameters) {
        piano::AdamOptions o;
        o.learning_rate = 0.01;
        o.weight_decay = 0.01;
        return std::make_unique<piano::Adam<double>>(parameters, o);
    });
    CHECK(worst < 1e-6);
}

TEST_CASE("AdamW (decoupled weight decay) matches PyTorch for ten steps", "[optim][golden]") {
    const double worst = ten_steps("adamw", [](auto parameters) {
        piano::AdamOptions o;
        o.learning_rate = 0.01;
        o.weight_decay = 0.01;
        return std::make_unique<piano::AdamW<double>>(parameters, o);
    });
    CHECK(worst < 1e-6);
}

TEST_CASE("SGD (Nesterov, weight decay) matches PyTorch for ten steps", "[optim][golden]") {
    const double worst = ten_steps("sgd", [](auto parameters) {
        return std::make_unique<piano::SGD<double>>(parameters, piano::SGDOptions{0.05, 0.9, true, 0.01});
    });
    CHECK(worst < 1e-6);
}
