// Tutorial chapter 3 (docs/tutorial/03-modules.md): modules and optimizers.
//
// Writes a small module (a two-layer perceptron), fits it to a curve with Adam and
// watches the loss fall, then saves it to a checkpoint and reloads it into a fresh model:
// the reloaded model must give the same outputs, bit for bit, and training resumed from
// the checkpoint must take the same step as training that never stopped.
// Usage: 03_modules [checkpoint path]   (default: 03_modules.ckpt in the current directory)
#include <piano/io/checkpoint.hpp>
#include <piano/nn/linear.hpp>
#include <piano/nn/module.hpp>
#include <piano/ops/elementwise.hpp>
#include <piano/ops/reduce.hpp>
#include <piano/ops/unary.hpp>
#include <piano/optim/adam.hpp>

#include <cmath>
#include <cstdio>
#include <memory>
#include <random>
#include <string>

#include "checks.hpp"

namespace {

using piano::Index;
using piano::Matrix;
using piano::Tensor;

// [tutorial:module]
/// y = W2 tanh(W1 x + b1) + b2: one input, `hidden` tanh units, one output.
/// Requires: x is [N,1]. Ensures: the result is [N,1].
/// Parameters: "layer1.weight" [1,hidden], "layer1.bias" [1,hidden],
///             "layer2.weight" [hidden,1], "layer2.bias" [1,1].
class CurveFit : public piano::Module<float> {
public:
    CurveFit(Index hidden, std::mt19937_64& rng) {
        layer1_ = register_module("layer1", std::make_shared<piano::Linear<float>>(1, hidden, rng));
        layer2_ = register_module("layer2", std::make_shared<piano::Linear<float>>(hidden, 1, rng));
    }

    Tensor<float> forward(const Tensor<float>& x) const {
        return layer2_->forward(piano::tanh(layer1_->forward(x)));  // [N,1] -> [N,hidden] -> [N,1]
    }

private:
    std::shared_ptr<piano::Linear<float>> layer1_, layer2_;
};
// [tutorial:end]

// [tutorial:loss]
/// Mean squared error: mean((prediction − target)²), [N,1] and [N,1] -> [1,1].
Tensor<float> mse(const Tensor<float>& prediction, const Matrix<float>& target) {
    return piano::mean(piano::pow(prediction - Tensor<float>(target), 2));
}
// [tutorial:end]

}  // namespace

int main(int argc, char** argv) {
    const std::string path = argc > 1 ? argv[1] : "03_modules.ckpt";
    tutorial::Checks check;

    // [tutorial:data]
    // 64 points of y = sin(2x) on [-2, 2]: x [64,1], y [64,1].
    const Index n = 64;
    Matrix<float> xs(n, 1), ys(n, 1);
    for (Index i = 0; i < n; ++i) {
        xs(i, 0) = -2.0f + 4.0f * static_cast<float>(i) / static_cast<float>(n - 1);
        ys(i, 0) = std::sin(2.0f * xs(i, 0));
    }
    const Tensor<float> x(xs);
    // [tutorial:end]

    // [tutorial:build]
    std::mt19937_64 rng(3);
    CurveFit model(16, rng);
    for (const auto& [name, p] : model.named_parameters()) std::printf("  %-14s %s\n", name.c_str(), p.shape().c_str());
    std::printf("  %ld parameters\n", static_cast<long>(model.parameter_count()));
    // [tutorial:end]

    // [tutorial:train]
    // One training step: forward (a new graph), loss, backward (gradients into every
    // parameter), update (Adam: p -= lr · m̂ / (√v̂ + ε), per entry), clear the gradients.
    auto train_step = [&x, &ys](CurveFit& m, piano::Adam<float>& optimizer) {
        Tensor<float> loss = mse(m.forward(x), ys);
        loss.backward();
        optimizer.step();
        optimizer.zero_grad();
        return loss.item();
    };
    piano::AdamOptions options;
    options.learning_rate = 0.02;
    piano::Adam<float> adam(model.named_parameters(), options);
    const float first_loss = train_step(model, adam);
    float last_loss = first_loss;
    for (int step = 1; step < 400; ++step) {
        last_loss = train_step(model, adam);
        if (step % 50 == 0) std::printf("step %3d  loss %.5f\n", step, last_loss);
    }
    std::printf("loss %.5f -> %.5f\n", first_loss, last_loss);
    // [tutorial:end]
    check(last_loss < 0.02f * first_loss, "the loss falls to under 2% of its first value");

    // [tutorial:save]
    // A checkpoint holds the parameters by name, a config, and here the optimizer's
    // state too (Adam's moments), so training can resume exactly where it stopped.
    piano::save_checkpoint(path, piano::capture(model, {{"hidden", "16"}}, &adam));
    // [tutorial:end]

    // [tutorial:reload]
    // A fresh model: another seed, so other weights until the checkpoint is restored.
    std::mt19937_64 other_rng(99);
    CurveFit reloaded(16, other_rng);
    piano::Adam<float> reloaded_adam(reloaded.named_parameters(), options);
    const piano::Checkpoint<float> saved = piano::load_checkpoint<float>(path);
    piano::restore(reloaded, saved, &reloaded_adam);
    bool same_outputs = false;
    {
        piano::NoGradGuard no_grad;  // inference: no graph needed
        same_outputs = reloaded.forward(x).value() == model.forward(x).value();
    }
    // [tutorial:end]
    check(same_outputs, "the reloaded model gives exactly the same outputs (" + path + ")");

    // [tutorial:resume]
    // One more step on each: the same parameters and the same optimizer state must give
    // the same update, so the two models stay identical.
    train_step(model, adam);
    train_step(reloaded, reloaded_adam);
    bool same_parameters = true;
    const auto original = model.named_parameters(), resumed = reloaded.named_parameters();
    for (std::size_t i = 0; i < original.size(); ++i) {
        same_parameters = same_parameters && original[i].second.value() == resumed[i].second.value();
    }
    // [tutorial:end]
    check(same_parameters, "a step after reloading equals the step the original model takes");

    // [tutorial:refuse]
    // A model of another shape is refused, naming the parameter, and left unchanged.
    std::mt19937_64 rng8(4);
    CurveFit narrow(8, rng8);
    std::string refusal;
    try {
        piano::restore(narrow, saved);
    } catch (const piano::CheckpointError& e) {
        refusal = e.what();
    }
    std::printf("%s\n", refusal.c_str());
    // [tutorial:end]
    check(refusal.find("layer1.weight") != std::string::npos, "a checkpoint that does not fit is refused by name");

    return check.finish();
}
