#pragma once
// Matrix-vector products x·Wᵀ for a few rows of x (decode: one token per sequence), where GEMM
// libraries are compute-shaped and leave memory bandwidth unused.
#include <cstdint>

namespace wick::cpu {

/// Rows of x at most this many take gemv_rows.
constexpr int64_t kGemvMaxRows = 4;

/// C[m, j] = alpha·dot(A[m, :K], B[j, :K]) + beta·C[m, j] (+ bias[j]; only with beta == 0) for
/// m < M <= kGemvMaxRows and j < N: A rows lda apart, B rows ldb apart, both contiguous along K.
/// Spread over the OpenMP threads by ranges of j; each output is summed in a fixed order, so the
/// result does not depend on the thread count. C may be uninitialised when beta == 0.
void gemv_rows(int64_t M, int64_t N, int64_t K, float alpha, const float* a, int64_t lda, const float* b,
               int64_t ldb, float beta, float* c, int64_t ldc, const float* bias);

}  // namespace wick::cpu
