#pragma once
// Float math for hot loops. Everything here is inline, branch-free and free of libm calls, so
// that GCC (-O3 -march=native) vectorizes the loops that call it; results do not depend on
// whether a loop was vectorized (fma is used explicitly, never left to contraction).
#include <bit>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

#if defined(__F16C__) || defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "wick/dtype.h"

namespace wick::cpu {

/// a*b + c, rounded once where the target has FMA (and a plain multiply-add otherwise).
[[gnu::always_inline]] inline float fmadd(float a, float b, float c) {
#ifdef __FMA__
  return __builtin_fmaf(a, b, c);
#else
  return a * b + c;
#endif
}

/// 2^k for integer k in [-126, 127], built from the exponent bits.
[[gnu::always_inline]] inline float pow2i(int32_t k) { return std::bit_cast<float>(static_cast<uint32_t>(k + 127) << 23); }

/// e^x in float. Range reduction x = n·ln2 + r with |r| <= ln2/2 (two-constant ln2, exact
/// products), e^r by a degree-7 minimax polynomial (Cephes' coefficients), then scaling by 2^n
/// in two steps so that results in the subnormal range come out right. Max error measured
/// 0.97 ulp against double exp over [-110, 90]; x < -103.97 gives 0, x > 88.73 gives +inf,
/// -inf -> 0, +inf -> +inf, NaN -> NaN. Loops calling it vectorize (GCC 12, -O3 -march=native).
[[gnu::always_inline]] inline float fast_exp(float x) {
  constexpr float kLog2e = 1.44269504088896341f;
  constexpr float kLn2Hi = 0.693359375f;         // 9 significant bits: n·kLn2Hi is exact
  constexpr float kLn2Lo = -2.12194440e-4f;
  constexpr float kMagic = 12582912.0f;          // 1.5·2^23: adding it rounds to an integer
  float t = fmadd(x, kLog2e, kMagic);
  float nf = t - kMagic;                         // round(x·log2 e) while |x| < 2^21
  // Unsigned arithmetic: for out-of-range x the bits are garbage but never UB.
  int32_t n = static_cast<int32_t>(std::bit_cast<uint32_t>(t) - std::bit_cast<uint32_t>(kMagic));
  float r = fmadd(nf, -kLn2Hi, x);
  r = fmadd(nf, -kLn2Lo, r);
  float p = 1.9875691500e-4f;
  p = fmadd(p, r, 1.3981999507e-3f);
  p = fmadd(p, r, 8.3334519073e-3f);
  p = fmadd(p, r, 4.1665795894e-2f);
  p = fmadd(p, r, 1.6666665459e-1f);
  p = fmadd(p, r, 5.0000001201e-1f);
  float y = fmadd(p, r * r, r) + 1.0f;
  // For x in [-104, 89], n lies in [-150, 129]: each half is a normal power of two, and the
  // product overflows to inf or underflows to a (correctly rounded) subnormal or 0 by itself.
  int32_t n1 = n >> 1;
  uint32_t e1 = static_cast<uint32_t>(n1) + 127u, e2 = static_cast<uint32_t>(n - n1) + 127u;
  float res = y * std::bit_cast<float>(e1 << 23) * std::bit_cast<float>(e2 << 23);
  // Outside [-104, 89] the result is 0 or inf; selecting at the end (rather than clamping x
  // first) keeps GCC from propagating the clamp constants through the whole computation,
  // which vectorizes into long mask sequences. NaN fails both tests and stays NaN.
  res = x > 89.0f ? std::numeric_limits<float>::infinity() : res;
  return x < -104.0f ? 0.0f : res;
}

// erf in float without libm, so that GELU loops vectorize. Two pieces, both evaluated and one
// selected (branch-free): |z| <= 0.875: erf(z) = z·P(z²); beyond: erfc(|z|) = exp(-z²)·Q(t) with
// t = 1/(1 + |z|/2). P and Q are least-squares fits (relative error, to double-precision
// erf/erfc on [0, 0.875] and [0.875, 10]) rounded to float; max error measured against double
// erf: 1.2e-7 absolute, 1.8e-7 relative. erfc is kept separately so that 1 + erf(z) for negative
// z (GELU's left tail) keeps its relative accuracy instead of cancelling to 0.
[[gnu::always_inline]] inline float erf_small_poly(float u) {  // P(u), u = z²
  float p = 8.71399897732772e-05f;
  p = fmadd(p, u, -8.220505551435053e-04f);
  p = fmadd(p, u, 5.207620561122894e-03f);
  p = fmadd(p, u, -2.6861967518925667e-02f);
  p = fmadd(p, u, 1.1283741146326065e-01f);
  p = fmadd(p, u, -3.7612637877464294e-01f);
  return fmadd(p, u, 1.128379225730896f);
}
[[gnu::always_inline]] inline float erfc_large(float a) {  // erfc(a) for a >= 0.875 (inf -> 0)
  a = a > 11.0f ? 11.0f : a;  // erfc underflows to 0 long before; keeps inf out of a² (NaN stays)
  float t = 1.0f / fmadd(0.5f, a, 1.0f);
  float q = -6.5782330930233e-02f;
  q = fmadd(q, t, 3.1992927193641663e-01f);
  q = fmadd(q, t, -5.618842244148254e-01f);
  q = fmadd(q, t, 3.6284685134887695e-01f);
  q = fmadd(q, t, -8.410376310348511e-02f);
  q = fmadd(q, t, 2.2689425945281982e-01f);
  q = fmadd(q, t, 2.3676875233650208e-01f);
  q = fmadd(q, t, 2.8336772322654724e-01f);
  q = fmadd(q, t, 2.8200209140777590e-01f);
  q = fmadd(q, t, 2.9573684514616616e-06f);
  // a² = hi + lo exactly (fma): exp(-a²) = exp(-hi)·(1 - lo), so that the rounding of a² (up
  // to 6e-6 relative in exp at a = 10) does not reach the tail.
  float hi = a * a, lo = fmadd(a, a, -hi);
  return fast_exp(-hi) * fmadd(-lo, q, q);
}
constexpr float kErfSplit = 0.875f;

/// erf(x); erf(±inf) = ±1, NaN -> NaN.
[[gnu::always_inline]] inline float fast_erf(float x) {
  float a = x < 0.0f ? -x : x;
  float r = a <= kErfSplit ? a * erf_small_poly(a * a) : 1.0f - erfc_large(a);
  return x < 0.0f ? -r : r;
}

/// GELU, erf form: 0.5·x·(1 + erf(x/√2)), with 1 + erf from erfc on the left tail.
[[gnu::always_inline]] inline float fast_gelu(float x) {
  float z = x * 0.70710678118654752440f;
  float a = z < 0.0f ? -z : z;
  float ec = erfc_large(a);
  float one_plus_erf = a <= kErfSplit ? fmadd(z, erf_small_poly(a * a), 1.0f) : (z > 0.0f ? 2.0f - ec : ec);
  return 0.5f * x * one_plus_erf;
}

/// GELU, tanh form: 0.5·x·(1 + tanh(u)) = x·sigmoid(2u), u = √(2/π)·(x + 0.044715·x³).
[[gnu::always_inline]] inline float fast_gelu_tanh(float x) {
  float u = 0.79788456080286535588f * fmadd(0.044715f * x, x * x, x);
  return x / (1.0f + fast_exp(-2.0f * u));
}

/// Largest element of x[0, n) (-inf for n == 0; NaNs are skipped).
inline float reduce_max(const float* x, int64_t n) {
  float m = -std::numeric_limits<float>::infinity();
#pragma omp simd reduction(max : m)
  for (int64_t i = 0; i < n; ++i) m = x[i] > m ? x[i] : m;
  // OpenMP may start each lane at the lowest finite value instead of −inf (clang's libomp
  // does), which turns an all −inf row (fully masked attention) into −FLT_MAX. That value is
  // rechecked with a plain loop.
  if (m == std::numeric_limits<float>::lowest()) {
    m = -std::numeric_limits<float>::infinity();
    for (int64_t i = 0; i < n; ++i) m = x[i] > m ? x[i] : m;
  }
  return m;
}

/// Sum of x[0, n), accumulated in SIMD lanes in a fixed order.
inline float reduce_sum(const float* x, int64_t n) {
  float s = 0.0f;
#pragma omp simd reduction(+ : s)
  for (int64_t i = 0; i < n; ++i) s += x[i];
  return s;
}

/// Sum of squares of x[0, n).
inline float reduce_sum_sq(const float* x, int64_t n) {
  float s = 0.0f;
#pragma omp simd reduction(+ : s)
  for (int64_t i = 0; i < n; ++i) s = fmadd(x[i], x[i], s);
  return s;
}

#if defined(__AVX512F__)
/// fast_exp on 16 lanes, bit-identical to fast_exp: same reduction and polynomial, and
/// vscalefps performs the final y·2^n with one rounding, exactly as fast_exp's two steps do.
/// Hand-vectorized because GCC does not emit vscalefps, and the plain version's exponent
/// bit-assembly costs a third of the work in softmax-sized loops.
inline __m512 fast_exp16(__m512 x) {
  x = _mm512_maskz_max_ps(0xffff, _mm512_set1_ps(-104.0f), x);  // operand order keeps a NaN x;
  // (maskz forms only to dodge a GCC 12 -Wmaybe-uninitialized false positive)
  x = _mm512_maskz_min_ps(0xffff, _mm512_set1_ps(89.0f), x);
  const __m512 magic = _mm512_set1_ps(12582912.0f);
  __m512 t = _mm512_fmadd_ps(x, _mm512_set1_ps(1.44269504088896341f), magic);
  __m512 nf = _mm512_sub_ps(t, magic);
  __m512 r = _mm512_fnmadd_ps(nf, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(nf, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  __m512 y = _mm512_add_ps(_mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r), _mm512_set1_ps(1.0f));
  return _mm512_maskz_scalef_ps(0xffff, y, nf);
}
#endif

#if defined(__AVX512F__)
/// Sum of the 16 lanes, pairwise in a fixed order.
inline float hsum16(__m512 v) {
  alignas(64) float t[16];
  _mm512_store_ps(t, v);
  for (int w = 8; w >= 1; w /= 2)
    for (int i = 0; i < w; ++i) t[i] += t[i + w];
  return t[0];
}
#endif

#if defined(__AVX512F__)
/// Sum over i of exp(x[i] - shift), also stored to dst when Store. Two vectors per iteration:
/// one exp is a long dependency chain, and a single chain per iteration leaves the FMA pipes
/// idle (measured ~1.4x slower). Not inlined: inlined into a caller's row loop, GCC 12 reloads
/// the polynomial constants from memory on every iteration instead of keeping them in registers.
template <bool Store>
[[gnu::noinline]] inline float exp_shift_sum_avx512(const float* x, float shift, float* dst, int64_t n) {
  const __m512 sh = _mm512_set1_ps(shift);
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    __m512 e0 = fast_exp16(_mm512_sub_ps(_mm512_loadu_ps(x + i), sh));
    __m512 e1 = fast_exp16(_mm512_sub_ps(_mm512_loadu_ps(x + i + 16), sh));
    if constexpr (Store) {
      _mm512_storeu_ps(dst + i, e0);
      _mm512_storeu_ps(dst + i + 16, e1);
    }
    acc0 = _mm512_add_ps(acc0, e0);
    acc1 = _mm512_add_ps(acc1, e1);
  }
  for (; i < n; i += 16) {
    __mmask16 m = n - i >= 16 ? __mmask16(0xffff) : static_cast<__mmask16>((1u << (n - i)) - 1);
    __m512 e = fast_exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), sh));
    if constexpr (Store) _mm512_mask_storeu_ps(dst + i, m, e);
    acc0 = _mm512_add_ps(acc0, _mm512_maskz_mov_ps(m, e));
  }
  return hsum16(_mm512_add_ps(acc0, acc1));
}
#endif

/// dst[i] = exp(x[i] - shift); returns the sum of the dst values. dst may alias x.
inline float exp_shift_sum(const float* x, float shift, float* dst, int64_t n) {
#if defined(__AVX512F__)
  return exp_shift_sum_avx512<true>(x, shift, dst, n);
#else
  float s = 0.0f;
#pragma omp simd reduction(+ : s)
  for (int64_t i = 0; i < n; ++i) {
    float e = fast_exp(x[i] - shift);
    dst[i] = e;
    s += e;
  }
  return s;
#endif
}

/// Sum of exp(x[i] - shift) without storing.
inline float exp_shift_sum(const float* x, float shift, int64_t n) {
#if defined(__AVX512F__)
  return exp_shift_sum_avx512<false>(x, shift, nullptr, n);
#else
  float s = 0.0f;
#pragma omp simd reduction(+ : s)
  for (int64_t i = 0; i < n; ++i) s += fast_exp(x[i] - shift);
  return s;
#endif
}

// ---- conversions between the storage types and f32 rows ----------------------------------------

/// f32 -> bf16 bits, round to nearest even, NaN kept quiet (same as wick::bfloat16(float)).
inline uint16_t f32_to_bf16_bits(float f) {
  uint32_t u = std::bit_cast<uint32_t>(f);
  uint32_t r = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
  uint32_t q = (u >> 16) | 0x40u;
  return static_cast<uint16_t>((u & 0x7fffffffu) > 0x7f800000u ? q : r);
}
inline float bf16_bits_to_f32(uint16_t b) { return std::bit_cast<float>(uint32_t(b) << 16); }

/// dst[i] = float(src[i * stride]) for any storage type.
template <class T>
inline void to_f32(const T* src, int64_t stride, float* dst, int64_t n) {
  if constexpr (std::is_same_v<T, float>) {
    if (stride == 1) {
      std::memcpy(dst, src, n * sizeof(float));
    } else {
      for (int64_t i = 0; i < n; ++i) dst[i] = src[i * stride];
    }
  } else if constexpr (std::is_same_v<T, bfloat16>) {
    const uint16_t* s = reinterpret_cast<const uint16_t*>(src);
    if (stride == 1) {
      for (int64_t i = 0; i < n; ++i) dst[i] = bf16_bits_to_f32(s[i]);
    } else {
      for (int64_t i = 0; i < n; ++i) dst[i] = bf16_bits_to_f32(s[i * stride]);
    }
  } else if constexpr (std::is_same_v<T, float16>) {
    const uint16_t* s = reinterpret_cast<const uint16_t*>(src);
    int64_t i = 0;
#if defined(__AVX512F__)
    if (stride == 1) {
      for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(dst + i, _mm512_mask_cvtph_ps(  // masked forms: no GCC 12 warning
                                      _mm512_setzero_ps(), 0xffff,
                                      _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + i))));
    }
#elif defined(__F16C__)
    if (stride == 1) {
      for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128(
                                      reinterpret_cast<const __m128i*>(s + i))));
    }
#endif
    for (; i < n; ++i) dst[i] = half_to_float(s[i * stride]);
  } else {
    for (int64_t i = 0; i < n; ++i) dst[i] = static_cast<float>(src[i * stride]);
  }
}

/// dst[i] = T(src[i]), rounding once, for any storage type (dst dense).
template <class T>
inline void from_f32(const float* src, T* dst, int64_t n) {
  if constexpr (std::is_same_v<T, float>) {
    if (static_cast<const void*>(src) != static_cast<const void*>(dst))
      std::memcpy(dst, src, n * sizeof(float));
  } else if constexpr (std::is_same_v<T, bfloat16>) {
    uint16_t* d = reinterpret_cast<uint16_t*>(dst);
    for (int64_t i = 0; i < n; ++i) d[i] = f32_to_bf16_bits(src[i]);
  } else if constexpr (std::is_same_v<T, float16>) {
    uint16_t* d = reinterpret_cast<uint16_t*>(dst);
    int64_t i = 0;
#if defined(__AVX512F__)
    for (; i + 16 <= n; i += 16)
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(d + i),
                          _mm512_mask_cvtps_ph(_mm256_setzero_si256(), 0xffff,
                                               _mm512_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
#elif defined(__F16C__)
    for (; i + 8 <= n; i += 8)
      _mm_storeu_si128(reinterpret_cast<__m128i*>(d + i),
                       _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
#endif
    for (; i < n; ++i) d[i] = float_to_half(src[i]);
  } else if constexpr (std::is_same_v<T, bool>) {
    for (int64_t i = 0; i < n; ++i) dst[i] = src[i] != 0.0f;
  } else {
    for (int64_t i = 0; i < n; ++i) dst[i] = static_cast<T>(src[i]);
  }
}

}  // namespace wick::cpu
