// The piano::blas build itself: this executable links piano::blas, so Eigen hands its
// products to the BLAS CMake found. The model, gradient and thread tests compiled into the
// same executable (tests/CMakeLists.txt) then run their checks through the BLAS: PyTorch's
// golden values, finite differences in double (dgemm) and the same bits on 1 and 2 threads.
#include <catch2/catch.hpp>

#include <piano/ops/linear.hpp>

#include <Eigen/Core>

#ifdef PIANO_BLAS_OPENBLAS
extern "C" int openblas_get_num_threads(void);
#endif

TEST_CASE("piano::blas hands Eigen's products to the BLAS, single-threaded", "[blas]") {
#ifndef EIGEN_USE_BLAS
    FAIL("piano::blas was linked, but EIGEN_USE_BLAS is not defined");
#endif
    // A product large enough that Eigen would never evaluate it coefficient by coefficient.
    const piano::Tensor<double> x(piano::Matrix<double>::Random(130, 70));
    const piano::Tensor<double> w(piano::Matrix<double>::Random(70, 90));
    const piano::Matrix<double> y = piano::linear(x, w).value();
    piano::Matrix<double> reference = piano::Matrix<double>::Zero(130, 90);
    for (Eigen::Index i = 0; i < 130; ++i)
        for (Eigen::Index j = 0; j < 90; ++j)
            for (Eigen::Index k = 0; k < 70; ++k) reference(i, j) += x.value()(i, k) * w.value()(k, j);
    CHECK((y - reference).cwiseAbs().maxCoeff() < 1e-12);
#ifdef PIANO_BLAS_OPENBLAS
    // piano's kernels ran once above, so keep_eigen_serial has set OpenBLAS to one thread.
    CHECK(openblas_get_num_threads() == 1);
#endif
}
