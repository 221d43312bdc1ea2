// quickstart: a two-layer network learns which points lie inside a circle.
//
// Everything here is piano's own autograd: the forward pass builds a graph of ops,
// loss.backward() fills every parameter's gradient, and a plain gradient-descent step
// updates the weights. The loss printed every 50 steps falls from about 0.69 (a coin flip).
#include <piano/piano.hpp>

#include <cstdio>
#include <random>

int main() {
    using piano::Matrix;
    using piano::Tensor;
    std::mt19937_64 rng(7);

    // Data: 256 points in [-1,1]^2; label 1 inside the circle of radius 0.7.
    const piano::Index n = 256;
    std::uniform_real_distribution<float> u(-1.f, 1.f);
    Matrix<float> points(n, 2), labels(n, 1);
    for (piano::Index i = 0; i < n; ++i) {
        points(i, 0) = u(rng);
        points(i, 1) = u(rng);
        labels(i, 0) = points.row(i).squaredNorm() < 0.49f ? 1.f : 0.f;
    }
    const Tensor<float> x(points);

    // Model: logits = relu(x W1 + b1) W2 + b2, with x [256,2], hidden [256,16], logits [256,1].
    piano::Linear<float> hidden(2, 16, rng, true, piano::Init::kaiming);
    piano::Linear<float> output(16, 1, rng);
    std::vector<Tensor<float>> params = {hidden.weight, hidden.bias, output.weight, output.bias};

    const float learning_rate = 0.5f;
    float first_loss = 0.f, loss_value = 0.f;
    for (int step = 0; step <= 500; ++step) {
        Tensor<float> logits = output.forward(piano::relu(hidden.forward(x)));
        Tensor<float> loss = piano::binary_cross_entropy_with_logits(logits, labels);
        loss.backward();  // d(loss)/d(every parameter)
        loss_value = loss.item();
        if (step == 0) first_loss = loss_value;
        if (step % 50 == 0) std::printf("step %3d  loss %.4f\n", step, loss_value);
        for (auto& p : params) {
            p.mutable_value() -= learning_rate * p.grad();
            p.zero_grad();
        }
    }

    // Accuracy of the trained model, computed without building a graph.
    piano::NoGradGuard no_grad;
    const Matrix<float> logits = output.forward(piano::relu(hidden.forward(x))).value();
    int correct = 0;
    for (piano::Index i = 0; i < n; ++i) correct += (logits(i, 0) > 0.f) == (labels(i, 0) > 0.5f);
    std::printf("loss %.4f -> %.4f, accuracy %.1f%%\n", first_loss, loss_value, 100.0 * correct / n);
    return loss_value < 0.5f * first_loss ? 0 : 1;
}
