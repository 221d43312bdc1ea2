// Trains y = 2x + 1 for a few steps with piano's autograd and checks the loss fell, and
// that the generated version header agrees with itself. It says whose products it ran
// (built against piano::blas with a BLAS: "blas"), for run_consumer.cmake to check.
#include <piano/piano.hpp>

#include <cstdio>
#include <string>

int main() {
    using piano::Tensor;
    piano::Matrix<float> xs(4, 1), ys(4, 1);
    xs << 0.f, 1.f, 2.f, 3.f;
    ys << 1.f, 3.f, 5.f, 7.f;
    Tensor<float> x(xs), y(ys);
    Tensor<float> w = Tensor<float>::zeros(1, 1, true), b = Tensor<float>::zeros(1, 1, true);
    float first = 0.f, last = 0.f;
    for (int step = 0; step < 200; ++step) {
        Tensor<float> err = piano::matmul(x, w) + b - y;
        Tensor<float> loss = piano::mean(err * err);
        loss.backward();
        if (step == 0) first = loss.item();
        last = loss.item();
        w.mutable_value() -= 0.05f * w.grad();
        b.mutable_value() -= 0.05f * b.grad();
        w.zero_grad();
        b.zero_grad();
    }
    const std::string version = std::to_string(PIANO_VERSION_MAJOR) + "." + std::to_string(PIANO_VERSION_MINOR) +
                                "." + std::to_string(PIANO_VERSION_PATCH);
    if (version != piano::kVersion) return 2;
#ifdef EIGEN_USE_BLAS
    const char* products = "blas";
#else
    const char* products = "eigen";
#endif
    std::printf("piano %s: loss %.4f -> %.6f, products: %s\n", piano::kVersion, first, last, products);
    return last < 0.01f * first ? 0 : 1;
}
