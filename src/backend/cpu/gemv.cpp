// gemv_rows: streams each row of B (a weight matrix [N, K]) once for all M rows of A. Four rows
// of B are read at a time (four independent streams keep the memory system busy and share each
// load of A), accumulating M x 4 vectors; the lanes are summed pairwise in a fixed order.
#include "backend/cpu/gemv.h"

#include "backend/cpu/kernel.h"
#include "backend/cpu/vmath.h"

namespace wick::cpu {
namespace {

inline float finish(float alpha, float acc, float beta, const float* c, const float* bias, int64_t j) {
  float v = alpha * acc;
  if (beta != 0.0f) v += beta * *c;
  if (bias) v += bias[j];
  return v;
}

#if defined(__AVX512F__)
template <int M>
void gemv_block(int64_t j0, int64_t j1, int64_t K, float alpha, const float* a, int64_t lda, const float* b,
                int64_t ldb, float beta, float* c, int64_t ldc, const float* bias) {
  const __mmask16 tail = static_cast<__mmask16>((1u << (K % 16)) - 1);
  const int64_t kv = K - K % 16;
  int64_t j = j0;
  for (; j + 4 <= j1; j += 4) {
    __m512 acc[M][4];
    for (int m = 0; m < M; ++m)
      for (int r = 0; r < 4; ++r) acc[m][r] = _mm512_setzero_ps();
    const float* b0 = b + j * ldb;
    const float *b1 = b0 + ldb, *b2 = b1 + ldb, *b3 = b2 + ldb;
    for (int64_t k = 0; k < kv; k += 16) {
      __m512 w0 = _mm512_loadu_ps(b0 + k), w1 = _mm512_loadu_ps(b1 + k);
      __m512 w2 = _mm512_loadu_ps(b2 + k), w3 = _mm512_loadu_ps(b3 + k);
      for (int m = 0; m < M; ++m) {
        __m512 x = _mm512_loadu_ps(a + m * lda + k);
        acc[m][0] = _mm512_fmadd_ps(x, w0, acc[m][0]);
        acc[m][1] = _mm512_fmadd_ps(x, w1, acc[m][1]);
        acc[m][2] = _mm512_fmadd_ps(x, w2, acc[m][2]);
        acc[m][3] = _mm512_fmadd_ps(x, w3, acc[m][3]);
      }
    }
    if (tail) {
      __m512 w0 = _mm512_maskz_loadu_ps(tail, b0 + kv), w1 = _mm512_maskz_loadu_ps(tail, b1 + kv);
      __m512 w2 = _mm512_maskz_loadu_ps(tail, b2 + kv), w3 = _mm512_maskz_loadu_ps(tail, b3 + kv);
      for (int m = 0; m < M; ++m) {
        __m512 x = _mm512_maskz_loadu_ps(tail, a + m * lda + kv);
        acc[m][0] = _mm512_fmadd_ps(x, w0, acc[m][0]);
        acc[m][1] = _mm512_fmadd_ps(x, w1, acc[m][1]);
        acc[m][2] = _mm512_fmadd_ps(x, w2, acc[m][2]);
        acc[m][3] = _mm512_fmadd_ps(x, w3, acc[m][3]);
      }
    }
    for (int m = 0; m < M; ++m)
      for (int r = 0; r < 4; ++r) {
        float* o = c + m * ldc + j + r;
        *o = finish(alpha, hsum16(acc[m][r]), beta, o, bias, j + r);
      }
  }
  for (; j < j1; ++j) {
    const float* br = b + j * ldb;
    for (int m = 0; m < M; ++m) {
      __m512 acc = _mm512_setzero_ps();
      const float* x = a + m * lda;
      for (int64_t k = 0; k < kv; k += 16)
        acc = _mm512_fmadd_ps(_mm512_loadu_ps(x + k), _mm512_loadu_ps(br + k), acc);
      if (tail) acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, x + kv), _mm512_maskz_loadu_ps(tail, br + kv), acc);
      float* o = c + m * ldc + j;
      *o = finish(alpha, hsum16(acc), beta, o, bias, j);
    }
  }
}
#else
template <int M>
void gemv_block(int64_t j0, int64_t j1, int64_t K, float alpha, const float* a, int64_t lda, const float* b,
                int64_t ldb, float beta, float* c, int64_t ldc, const float* bias) {
  for (int64_t j = j0; j < j1; ++j) {
    const float* br = b + j * ldb;
    for (int m = 0; m < M; ++m) {
      const float* x = a + m * lda;
      float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
      for (int64_t k = 0; k < K; ++k) acc = fmadd(x[k], br[k], acc);
      float* o = c + m * ldc + j;
      *o = finish(alpha, acc, beta, o, bias, j);
    }
  }
}
#endif

}  // namespace

void gemv_rows(int64_t M, int64_t N, int64_t K, float alpha, const float* a, int64_t lda, const float* b,
               int64_t ldb, float beta, float* c, int64_t ldc, const float* bias) {
  // Ranges of j in multiples of 4 keep every thread on the four-row path.
  int64_t groups = (N + 3) / 4;
  parallel_for(groups, 4 * K * M, [&](int64_t g0, int64_t g1) {
    int64_t j0 = g0 * 4, j1 = std::min(N, g1 * 4);
    switch (M) {
      case 1: gemv_block<1>(j0, j1, K, alpha, a, lda, b, ldb, beta, c, ldc, bias); break;
      case 2: gemv_block<2>(j0, j1, K, alpha, a, lda, b, ldb, beta, c, ldc, bias); break;
      case 3: gemv_block<3>(j0, j1, K, alpha, a, lda, b, ldb, beta, c, ldc, bias); break;
      default: gemv_block<4>(j0, j1, K, alpha, a, lda, b, ldb, beta, c, ldc, bias); break;
    }
  });
}

}  // namespace wick::cpu
