// Row kernels: one block per row of a dense [rows, n] tensor. Softmax, norms and losses compute
// in f32 (f64 for f64 inputs) with block-tree reductions.
#include <algorithm>

#include "backend/cuda/common.cuh"

namespace wick::cuda {
namespace {

constexpr int kThreads = 256;

inline unsigned row_blocks(int64_t rows) {
  return static_cast<unsigned>(rows < 65535 * 32 ? rows : 65535 * 32);
}

/// Blocks for the kernels that give each row one warp.
inline unsigned warp_blocks(int64_t rows) { return row_blocks((rows + kThreads / 32 - 1) / (kThreads / 32)); }

/// Calls f(i, v) over a dense row of n T's, v holding elements i, i + 1, ... in the compute
/// type: a 16-byte pack per call when `packed` (packs_fit), one element otherwise.
template <class T, class F>
__device__ __forceinline__ void walk_row(const T* xr, int64_t n, bool packed, F&& f) {
  using C = compute_t<T>;
  constexpr int W = Pack<T>::n;
  if (packed) {
#pragma unroll 4
    for (int64_t i = int64_t(threadIdx.x) * W; i < n; i += int64_t(blockDim.x) * W) {
      Pack<T> p = ld_pack<W>(xr + i);
      C v[W];
#pragma unroll
      for (int k = 0; k < W; ++k) v[k] = ld(&p.v[k]);
      f(i, v);
    }
    return;
  }
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
    C v[1] = {ld(xr + i)};
    f(i, v);
  }
}

/// Calls f(r) for the rows of a kernel that gives each row one warp.
template <class F>
__device__ __forceinline__ void for_warp_rows(int64_t rows, F&& f) {
  const int64_t warps = blockDim.x >> 5;
  for (int64_t r = blockIdx.x * warps + (threadIdx.x >> 5); r < rows; r += gridDim.x * warps) f(r);
}

/// Calls f(k, c) for this lane's K packs of W elements in a row of n: pack k starts at column c
/// (lanes take adjacent packs; those past n are skipped).
template <int K, int W, class F>
__device__ __forceinline__ void for_lane_packs(int64_t n, F&& f) {
  const int lane = threadIdx.x & 31;
#pragma unroll
  for (int k = 0; k < K; ++k) {
    const int64_t c = (int64_t(k) * 32 + lane) * W;
    if (c < n) f(k, c);
  }
}

/// Adds values to a running max m and sum s of exp(x − m) (one pass instead of a max pass and
/// a sum pass over a row).
template <class C, int N>
__device__ __forceinline__ void online_add(C& m, C& s, const C (&v)[N]) {
  C top = v[0];
#pragma unroll
  for (int k = 1; k < N; ++k) top = fmax(top, v[k]);
  if (top > m) {
    s *= exp(m - top);
    m = top;
  }
  if (m == -INFINITY) return;
#pragma unroll
  for (int k = 0; k < N; ++k) s += exp(v[k] - m);
}

/// Joins the block's running (max, sum) pairs; every thread gets the row's.
template <class C>
__device__ __forceinline__ void block_online(C& m, C& s) {
  C top = block_max(m);
  s = block_sum(m == -INFINITY ? C(0) : s * exp(m - top));
  m = top;
}

/// Calls f.template operator()<K>() with the least K of 1, 2, 4, 8 for which K·unit ≥ n, and
/// returns false when n is above 8·unit.
template <class F>
bool with_chunks(int64_t n, int64_t unit, F&& f) {
  if (n <= unit) f.template operator()<1>();
  else if (n <= 2 * unit) f.template operator()<2>();
  else if (n <= 4 * unit) f.template operator()<4>();
  else if (n <= 8 * unit) f.template operator()<8>();
  else return false;
  return true;
}

template <class T>
__global__ void softmax_kernel(const T* x, T* out, int64_t rows, int64_t n, bool log_out,
                               float scale, const T* mask, const __grid_constant__ Space lead,
                               const __grid_constant__ Walk ml, int64_t mi) {
  using C = std::conditional_t<std::is_same_v<T, double>, double, float>;
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* xr = x + r * n;
    const T* mr = mask ? mask + offset_of(r, lead, ml) : nullptr;
    // The same arithmetic as mul -> add -> softmax unfused: each step rounded to T.
    auto round = [](C v) {
      T t;
      st(&t, v);
      return static_cast<C>(ld(&t));
    };
    C sc = round(static_cast<C>(scale));
    auto val = [&](int64_t i) {
      C v = round(static_cast<C>(ld(xr + i)) * sc);
      if (mask) v = round(v + static_cast<C>(ld(mr + i * mi)));
      return v;
    };
    C m = -INFINITY;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) m = fmax(m, val(i));
    m = block_max(m);
    C s = 0;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) s += exp(val(i) - m);
    s = block_sum(s);
    if (log_out) {
      C lse = m + log(s);
      for (int64_t i = threadIdx.x; i < n; i += blockDim.x) st(out + r * n + i, val(i) - lse);
    } else {
      C inv = C(1) / s;
      for (int64_t i = threadIdx.x; i < n; i += blockDim.x)
        st(out + r * n + i, exp(val(i) - m) * inv);
    }
  }
}

template <class T>
__global__ void norm_kernel(const T* x, T* out, int64_t rows, int64_t n, double eps, bool center,
                            const void* w, DType wt, const void* b, DType bt) {
  using C = std::conditional_t<std::is_same_v<T, double>, double, float>;
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* xr = x + r * n;
    C mean = 0;
    if (center) {
      C s = 0;
      for (int64_t i = threadIdx.x; i < n; i += blockDim.x) s += static_cast<C>(ld(xr + i));
      mean = block_sum(s) / static_cast<C>(n);
    }
    C q = 0;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
      C d = static_cast<C>(ld(xr + i)) - mean;
      q += d * d;
    }
    q = block_sum(q);
    C inv = C(1) / sqrt(q / static_cast<C>(n) + static_cast<C>(eps));
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
      C y = (static_cast<C>(ld(xr + i)) - mean) * inv;
      if (w) y *= static_cast<C>(ld_any(w, wt, i));
      if (b) y += static_cast<C>(ld_any(b, bt, i));
      st(out + r * n + i, y);
    }
  }
}

/// RmsNormGrad: one block per row; the sums Σx² and Σ(g·w)·x, then dx in one more pass.
template <class T, class G>
__global__ void norm_grad_kernel(const T* x, const G* g, T* out, int64_t rows, int64_t n, double eps,
                                 const void* w, DType wt) {
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* xr = x + r * n;
    const G* gr = g + r * n;
    auto gw = [&](int64_t i) {
      float v = static_cast<float>(ld(gr + i));
      return w ? v * static_cast<float>(ld_any(w, wt, i)) : v;
    };
    float ss = 0.0f, dot = 0.0f;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
      const float xv = static_cast<float>(ld(xr + i));
      ss += xv * xv;
      dot += gw(i) * xv;
    }
    ss = block_sum(ss);
    dot = block_sum(dot);
    const float inv = 1.0f / sqrtf(ss / static_cast<float>(n) + static_cast<float>(eps));
    // mean(gn·n) = inv·Σ(gn·x)/n, and n = x·inv.
    const float c = inv * inv * dot / static_cast<float>(n);
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x)
      st(out + r * n + i, inv * (gw(i) - static_cast<float>(ld(xr + i)) * c));
  }
}

/// rms_norm for rows of at most K 16-byte packs a lane: a warp per row, read once, no block-wide
/// reductions (norm_kernel's block per row spent most of its time waiting at them). The same
/// arithmetic as norm_kernel, summed in another order.
template <class T, int K>
__global__ void rms_norm_warp_kernel(const T* x, T* out, int64_t rows, int64_t n, float eps,
                                     const void* w, DType wt) {
  constexpr int W = Pack<T>::n;
  for_warp_rows(rows, [&](int64_t r) {
    Pack<T> xv[K];
    float q = 0.0f;
    for_lane_packs<K, W>(n, [&](int k, int64_t c) {
      xv[k] = ld_pack<W>(x + r * n + c);
#pragma unroll
      for (int j = 0; j < W; ++j) q += float(ld(&xv[k].v[j])) * float(ld(&xv[k].v[j]));
    });
    const float inv = 1.0f / sqrtf(warp_sum(q) / static_cast<float>(n) + eps);
    for_lane_packs<K, W>(n, [&](int k, int64_t c) {
      float o[W];
#pragma unroll
      for (int j = 0; j < W; ++j) {
        o[j] = float(ld(&xv[k].v[j])) * inv;
        if (w) o[j] *= static_cast<float>(ld_any(w, wt, c + j));
      }
      st_pack<T, W>(out + r * n + c, o);
    });
  });
}

/// norm_grad_kernel for rows of at most K 16-byte packs a lane (x and g of one type): a warp
/// per row, both read once.
template <class T, int K>
__global__ void rms_norm_grad_warp_kernel(const T* x, const T* g, T* out, int64_t rows, int64_t n,
                                          float eps, const void* w, DType wt) {
  constexpr int W = Pack<T>::n;
  for_warp_rows(rows, [&](int64_t r) {
    Pack<T> xv[K];
    float gw[K][W];
    float ss = 0.0f, dot = 0.0f;
    for_lane_packs<K, W>(n, [&](int k, int64_t c) {
      xv[k] = ld_pack<W>(x + r * n + c);
      const Pack<T> gv = ld_pack<W>(g + r * n + c);
#pragma unroll
      for (int j = 0; j < W; ++j) {
        const float xj = float(ld(&xv[k].v[j]));
        gw[k][j] = float(ld(&gv.v[j]));
        if (w) gw[k][j] *= static_cast<float>(ld_any(w, wt, c + j));
        ss += xj * xj;
        dot += gw[k][j] * xj;
      }
    });
    const float inv = 1.0f / sqrtf(warp_sum(ss) / static_cast<float>(n) + eps);
    const float cf = inv * inv * warp_sum(dot) / static_cast<float>(n);
    for_lane_packs<K, W>(n, [&](int k, int64_t c) {
      float o[W];
#pragma unroll
      for (int j = 0; j < W; ++j) o[j] = inv * (gw[k][j] - float(ld(&xv[k].v[j])) * cf);
      st_pack<T, W>(out + r * n + c, o);
    });
  });
}

struct Freqs {
  float f[512];
};

/// I: the index type of the element walk (32-bit where the tensor allows: 64-bit divisions
/// were most of this kernel's time).
template <class T, class I>
__global__ void rope_kernel(const T* x, T* out, int64_t lead, int64_t T_, int64_t D,
                            const __grid_constant__ Freqs fr, int64_t offset,
                            const int64_t* position, RopeDest dest, int64_t* err) {
  using C = std::conditional_t<std::is_same_v<T, double>, double, float>;
  allow_dependents();
  wait_for_inputs();
  int64_t h = D / 2;
  const int64_t shift = position ? *position : 0;
  offset += shift;
  // Rows written at the position (a cache) must stay inside it.
  if (dest.at_position && (shift < 0 || shift + T_ > dest.limit)) {
    if (blockIdx.x == 0 && threadIdx.x == 0) report(err, kWriteAt, shift + T_ - 1, dest.limit);
    return;
  }
  // The frequencies go to shared memory first: kernel parameters read at a different index per
  // lane are read one address at a time, which cost more than the rest of the kernel.
  __shared__ float freq[512];
  for (int64_t j = threadIdx.x; j < h; j += blockDim.x) freq[j] = fr.f[j];
  __syncthreads();
  const I hh = static_cast<I>(h), tt = static_cast<I>(T_);
  WICK_GRID_LOOP(e, lead * T_ * h) {
    const I le = static_cast<I>(e), row_i = le / hh;
    const int64_t i = le - row_i * hh, row = row_i, t = row_i % tt;
    C angle, c, s;
    if constexpr (std::is_same_v<C, double>)
      angle = static_cast<double>(offset + t) * static_cast<double>(freq[i]);
    else
      angle = static_cast<float>(offset + t) * freq[i];
    sincos(angle, &s, &c);
    const T* xr = x + row * D;
    C x1 = static_cast<C>(ld(xr + i)), x2 = static_cast<C>(ld(xr + i + h));
    T* o = out + (row / T_) * dest.lead_stride + (t + (dest.at_position ? shift : 0)) * D;
    st(o + i, x1 * c - x2 * s);
    st(o + i + h, x2 * c + x1 * s);
  }
}

/// rope_kernel for the rows of a 4-d x [B, H, T, D] read through its strides (the transposed view
/// of a projection's output, so no dense copy comes first) into dense out: P adjacent pairs a
/// thread, both halves read and written 16 bytes at a time. The arithmetic is rope_kernel's.
template <class T, int P>
__global__ void rope_rows_kernel(const T* x, T* out, uint32_t H, uint32_t T_, uint32_t D,
                                 uint32_t s0, uint32_t s1, uint32_t s2, uint32_t n,
                                 const __grid_constant__ Freqs fr, int64_t offset) {
  allow_dependents();
  wait_for_inputs();
  const uint32_t h = D / 2, per_row = h / P;
  __shared__ float freq[512];
  for (uint32_t j = threadIdx.x; j < h; j += blockDim.x) freq[j] = fr.f[j];
  __syncthreads();
  for (uint32_t e = blockIdx.x * blockDim.x + threadIdx.x; e < n; e += gridDim.x * blockDim.x) {
    const uint32_t row = e / per_row, i0 = (e - row * per_row) * P, t = row % T_, bh = row / T_;
    const T* xr = x + (bh / H) * s0 + (bh % H) * s1 + t * s2 + i0;
    const uint4 lo = *reinterpret_cast<const uint4*>(xr),
                hi = *reinterpret_cast<const uint4*>(xr + h);
    const T* a = reinterpret_cast<const T*>(&lo);
    const T* b = reinterpret_cast<const T*>(&hi);
    uint4 olo, ohi;
    T* oa = reinterpret_cast<T*>(&olo);
    T* ob = reinterpret_cast<T*>(&ohi);
    const float pos = static_cast<float>(offset + t);
#pragma unroll
    for (int k = 0; k < P; ++k) {
      float c, sn;
      sincos(pos * freq[i0 + k], &sn, &c);
      const float x1 = static_cast<float>(a[k]), x2 = static_cast<float>(b[k]);
      oa[k] = static_cast<T>(x1 * c - x2 * sn);
      ob[k] = static_cast<T>(x2 * c + x1 * sn);
    }
    T* o = out + size_t(row) * D + i0;
    *reinterpret_cast<uint4*>(o) = olo;
    *reinterpret_cast<uint4*>(o + h) = ohi;
  }
}

/// Row loss: logsumexp(x) − (1−ε)·x[y] − (ε/V)·Σx; 0 for ignored rows.
template <class T>
__global__ void ce_kernel(const T* logits, DType lt, const void* labels, void* out, bool out64,
                          int64_t N, int64_t V, int64_t ignore, double eps, bool packed, int64_t* err) {
  using C = std::conditional_t<std::is_same_v<T, double>, double, float>;
  auto put = [&](int64_t r, C v) {
    if (out64)
      static_cast<double*>(out)[r] = v;
    else
      static_cast<float*>(out)[r] = static_cast<float>(v);
  };
  for (int64_t r = blockIdx.x; r < N; r += gridDim.x) {
    int64_t y = ld_index(labels, lt, r);
    if (y == ignore) {
      if (threadIdx.x == 0) put(r, C(0));
      continue;
    }
    if (y < 0 || y >= V) {
      if (threadIdx.x == 0) {
        report(err, kCrossEntropyLabel, y, V);
        put(r, C(NAN));
      }
      continue;
    }
    const T* xr = logits + r * V;
    C m = -INFINITY, s = 0, sx = 0;
    walk_row(xr, V, packed, [&](int64_t, const auto& v) {
      online_add(m, s, v);
      if (eps != 0)
        for (C x : v) sx += x;
    });
    block_online(m, s);
    if (eps != 0) sx = block_sum(sx);
    if (threadIdx.x == 0) {
      C lse = m + log(s);
      C xy = static_cast<C>(ld(xr + y));
      C loss = lse - (C(1) - static_cast<C>(eps)) * xy;
      if (eps != 0) loss -= static_cast<C>(eps) / static_cast<C>(V) * sx;
      put(r, loss);
    }
  }
}

/// Two passes over a row: its running (max, sum), then g·(softmax − target) written as it goes.
template <class T>
__global__ void ce_grad_kernel(const T* logits, DType lt, const void* labels, const void* g,
                               DType gt, T* out, int64_t N, int64_t V, int64_t ignore, double eps,
                               bool packed) {
  using C = std::conditional_t<std::is_same_v<T, double>, double, float>;
  for (int64_t r = blockIdx.x; r < N; r += gridDim.x) {
    int64_t y = ld_index(labels, lt, r);
    T* orow = out + r * V;
    if (y == ignore || y < 0 || y >= V) {
      for (int64_t i = threadIdx.x; i < V; i += blockDim.x) st(orow + i, C(0));
      continue;
    }
    const T* xr = logits + r * V;
    C m = -INFINITY, s = 0;
    walk_row(xr, V, packed, [&](int64_t, const auto& v) { online_add(m, s, v); });
    block_online(m, s);
    C inv = C(1) / s, gr = static_cast<C>(ld_any(g, gt, r));
    C off = static_cast<C>(eps) / static_cast<C>(V), on = C(1) - static_cast<C>(eps) + off;
    walk_row(xr, V, packed, [&](int64_t i, const auto& v) {
      constexpr int n = std::extent_v<std::remove_cvref_t<decltype(v)>>;
      C o[n];
#pragma unroll
      for (int k = 0; k < n; ++k) o[k] = gr * (exp(v[k] - m) * inv - (i + k == y ? on : off));
      st_pack<T, n>(orow + i, o);
    });
  }
}

template <class P>
__global__ void attention_softmax_kernel(const float* scores, P* p, int64_t rows, int64_t Hq,
                                         int64_t T, int64_t S, bool causal, const float* mask,
                                         int64_t m0, int64_t m1, int64_t m2, int64_t m3) {
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    int64_t t = r % T, h = (r / T) % Hq, b = r / (T * Hq);
    int64_t end = causal ? t + (S - T) + 1 : S;
    end = end < 0 ? 0 : (end > S ? S : end);
    const float* sr = scores + r * S;
    const float* mr = mask ? mask + b * m0 + h * m1 + t * m2 : nullptr;
    auto val = [&](int64_t s) { return mr ? sr[s] + mr[s * m3] : sr[s]; };
    float m = -INFINITY;
    for (int64_t s = threadIdx.x; s < end; s += blockDim.x) m = fmaxf(m, val(s));
    m = block_max(m);
    float sum = 0.0f;
    if (m != -INFINITY)
      for (int64_t s = threadIdx.x; s < end; s += blockDim.x) sum += expf(val(s) - m);
    sum = block_sum(sum);
    float inv = m == -INFINITY ? 0.0f : 1.0f / sum;
    for (int64_t s = threadIdx.x; s < S; s += blockDim.x)
      st(p + r * S + s, s < end && inv != 0.0f ? expf(val(s) - m) * inv : 0.0f);
  }
}

/// attention_softmax_kernel for rows of at most 128·K scores (S a multiple of 4): a warp per row,
/// which stays in registers, so the scores are read once (the block kernel reads them three
/// times, a few bytes a thread).
template <class P, int K>
__global__ void attention_softmax_warp_kernel(const float* scores, P* p, int64_t rows, int64_t Hq,
                                              int64_t T, int64_t S, bool causal, const float* mask,
                                              int64_t m0, int64_t m1, int64_t m2, int64_t m3) {
  const int lane = threadIdx.x & 31;
  const int64_t warps = blockDim.x >> 5;
  for (int64_t r = blockIdx.x * warps + (threadIdx.x >> 5); r < rows; r += gridDim.x * warps) {
    int64_t t = r % T, h = (r / T) % Hq, b = r / (T * Hq);
    int64_t end = causal ? t + (S - T) + 1 : S;
    end = end < 0 ? 0 : (end > S ? S : end);
    const float* sr = scores + r * S;
    const float* mr = mask ? mask + b * m0 + h * m1 + t * m2 : nullptr;
    float v[K][4];
    float m = -INFINITY;
#pragma unroll
    for (int k = 0; k < K; ++k) {
      const int64_t s0 = (int64_t(k) * 32 + lane) * 4;
      Pack<float, 4> x{};
      if (s0 < end) x = ld_pack<4>(sr + s0);
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        v[k][j] = s0 + j < end ? x.v[j] + (mr ? mr[(s0 + j) * m3] : 0.0f) : -INFINITY;
        m = fmaxf(m, v[k][j]);
      }
    }
    m = warp_max(m);
    float sum = 0.0f;
#pragma unroll
    for (int k = 0; k < K; ++k)
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        v[k][j] = m == -INFINITY ? 0.0f : expf(v[k][j] - m);
        sum += v[k][j];
      }
    sum = warp_sum(sum);
    const float inv = m == -INFINITY ? 0.0f : 1.0f / sum;
#pragma unroll
    for (int k = 0; k < K; ++k) {
      const int64_t s0 = (int64_t(k) * 32 + lane) * 4;
      if (s0 >= S) continue;
      float o[4];
#pragma unroll
      for (int j = 0; j < 4; ++j) o[j] = v[k][j] * inv;
      st_pack<P, 4>(p + r * S + s0, o);
    }
  }
}

/// softmax_grad_kernel for rows of at most K 16-byte packs a lane: a warp per row, read once.
template <class T, int K>
__global__ void softmax_grad_warp_kernel(const T* p, const T* dp, T* out, int64_t rows, int64_t n, float scale) {
  constexpr int W = Pack<T>::n;
  for_warp_rows(rows, [&](int64_t r) {
    Pack<T> pv[K], gv[K];
    float dot = 0.0f;
    for_lane_packs<K, W>(n, [&](int k, int64_t c) {
      pv[k] = ld_pack<W>(p + r * n + c);
      gv[k] = ld_pack<W>(dp + r * n + c);
#pragma unroll
      for (int j = 0; j < W; ++j) dot += float(ld(&pv[k].v[j])) * float(ld(&gv[k].v[j]));
    });
    dot = warp_sum(dot);
    for_lane_packs<K, W>(n, [&](int k, int64_t c) {
      float o[W];
#pragma unroll
      for (int j = 0; j < W; ++j)
        o[j] = scale * float(ld(&pv[k].v[j])) * (float(ld(&gv[k].v[j])) - dot);
      st_pack<T, W>(out + r * n + c, o);
    });
  });
}

template <class T>
__global__ void softmax_grad_kernel(const T* p, const T* dp, T* out, int64_t rows, int64_t n, float scale) {
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T *pr = p + r * n, *gr = dp + r * n;
    float dot = 0.0f;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) dot += float(ld(pr + i)) * float(ld(gr + i));
    dot = block_sum(dot);
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x)
      st(out + r * n + i, scale * float(ld(pr + i)) * (float(ld(gr + i)) - dot));
  }
}

}  // namespace

void softmax_grad(DType t, const void* p, const void* dp, void* out, int64_t rows, int64_t n, float scale) {
  if (rows == 0 || n == 0) return;
  dispatch_float(t, "softmax_grad", [&]<class T>() {
    if constexpr (!std::is_same_v<T, double>) {
      auto tp = static_cast<const T*>(p), tdp = static_cast<const T*>(dp);
      auto to = static_cast<T*>(out);
      const bool warp_rows = packs_fit<T>(p, n) && packs_fit<T>(dp, n) && packs_fit<T>(out, n) &&
                             with_chunks(n, 32 * Pack<T>::n, [&]<int K>() {
                               softmax_grad_warp_kernel<T, K><<<warp_blocks(rows), kThreads, 0, launch_stream()>>>(
                                   tp, tdp, to, rows, n, scale);
                             });
      if (!warp_rows)
        softmax_grad_kernel<T><<<row_blocks(rows), kThreads, 0, launch_stream()>>>(tp, tdp, to, rows, n, scale);
    } else {
      throw Error("softmax_grad: f64 has no CUDA kernel");
    }
  });
  check_launch("softmax_grad");
}

void attention_softmax(const float* scores, void* p, DType pt, int64_t B, int64_t Hq, int64_t T,
                       int64_t S, bool causal, const float* mask, const int64_t* ms) {
  int64_t rows = B * Hq * T;
  if (rows == 0 || S == 0) return;
  int64_t m[4] = {0, 0, 0, 0};
  if (mask)
    for (int d = 0; d < 4; ++d) m[d] = ms[d];
  dispatch_float(pt, "scaled_dot_product_attention", [&]<class P>() {
    auto out = static_cast<P*>(p);
    const bool warp_rows = S % 4 == 0 && reinterpret_cast<uintptr_t>(scores) % 16 == 0 &&
                           reinterpret_cast<uintptr_t>(p) % (4 * sizeof(P)) == 0 &&
                           with_chunks(S, 128, [&]<int K>() {
                             attention_softmax_warp_kernel<P, K><<<warp_blocks(rows), kThreads, 0, launch_stream()>>>(
                                 scores, out, rows, Hq, T, S, causal, mask, m[0], m[1], m[2], m[3]);
                           });
    if (!warp_rows)
      attention_softmax_kernel<P><<<row_blocks(rows), kThreads, 0, launch_stream()>>>(
          scores, out, rows, Hq, T, S, causal, mask, m[0], m[1], m[2], m[3]);
  });
  check_launch("attention_softmax");
}

void softmax(DType t, const void* x, void* out, int64_t rows, int64_t n, bool log) {
  if (rows == 0 || n == 0) return;
  dispatch_float(t, "softmax", [&]<class T>() {
    softmax_kernel<T><<<row_blocks(rows), kThreads, 0, launch_stream()>>>(
        static_cast<const T*>(x), static_cast<T*>(out), rows, n, log, 1.0f, nullptr, Space{},
        Walk{}, 0);
  });
  check_launch("softmax");
}

void scaled_masked_softmax(DType t, const void* x, void* out, int64_t rows, int64_t n, double scale,
                           const void* mask, const Space& lead, const Walk& mask_lead,
                           int64_t mask_inner) {
  if (rows == 0 || n == 0) return;
  dispatch_float(t, "scaled_masked_softmax", [&]<class T>() {
    softmax_kernel<T><<<row_blocks(rows), kThreads, 0, launch_stream()>>>(
        static_cast<const T*>(x), static_cast<T*>(out), rows, n, false, static_cast<float>(scale),
        static_cast<const T*>(mask), lead, mask_lead, mask_inner);
  });
  check_launch("scaled_masked_softmax");
}

void rms_norm(DType t, const void* x, void* out, int64_t rows, int64_t n, double eps, const void* w,
              DType wt) {
  if (rows == 0 || n == 0) return;
  dispatch_float(t, "rms_norm", [&]<class T>() {
    bool warp_rows = false;
    if constexpr (!std::is_same_v<T, double>)
      warp_rows = packs_fit<T>(x, n) && packs_fit<T>(out, n) &&
                  with_chunks(n, 32 * Pack<T>::n, [&]<int K>() {
                    rms_norm_warp_kernel<T, K><<<warp_blocks(rows), kThreads, 0, launch_stream()>>>(
                        static_cast<const T*>(x), static_cast<T*>(out), rows, n,
                        static_cast<float>(eps), w, wt);
                  });
    if (!warp_rows)
      norm_kernel<T><<<row_blocks(rows), kThreads, 0, launch_stream()>>>(
          static_cast<const T*>(x), static_cast<T*>(out), rows, n, eps, false, w, wt, nullptr, wt);
  });
  check_launch("rms_norm");
}

void rms_norm_grad(DType t, const void* x, DType gt, const void* g, void* out, int64_t rows, int64_t n,
                   double eps, const void* w, DType wt) {
  if (rows == 0 || n == 0) return;
  dispatch_float(t, "rms_norm", [&]<class T>() {
    dispatch_float(gt, "rms_norm", [&]<class G>() {
      if constexpr (!std::is_same_v<T, double> && !std::is_same_v<G, double>) {
        bool warp_rows = false;
        if constexpr (std::is_same_v<T, G>)
          warp_rows = packs_fit<T>(x, n) && packs_fit<T>(g, n) && packs_fit<T>(out, n) &&
                      with_chunks(n, 32 * Pack<T>::n, [&]<int K>() {
                        rms_norm_grad_warp_kernel<T, K>
                            <<<warp_blocks(rows), kThreads, 0, launch_stream()>>>(
                                static_cast<const T*>(x), static_cast<const T*>(g),
                                static_cast<T*>(out), rows, n, static_cast<float>(eps), w, wt);
                      });
        if (!warp_rows)
          norm_grad_kernel<T, G><<<row_blocks(rows), kThreads, 0, launch_stream()>>>(
              static_cast<const T*>(x), static_cast<const G*>(g), static_cast<T*>(out), rows, n,
              eps, w, wt);
      } else
        throw Error("rms_norm: f64 gradients compose from ops on CUDA");
    });
  });
  check_launch("rms_norm_grad");
}

void layer_norm(DType t, const void* x, void* out, int64_t rows, int64_t n, double eps,
                const void* w, DType wt, const void* b, DType bt) {
  if (rows == 0 || n == 0) return;
  dispatch_float(t, "layer_norm", [&]<class T>() {
    norm_kernel<T><<<row_blocks(rows), kThreads, 0, launch_stream()>>>(
        static_cast<const T*>(x), static_cast<T*>(out), rows, n, eps, true, w, wt, b, bt);
  });
  check_launch("layer_norm");
}

void rope(DType t, const void* x, void* out, int64_t lead, int64_t T, int64_t D,
          const float* inv_freq_host, int64_t offset, const int64_t* position, RopeDest dest) {
  if (lead * T * D == 0) return;
  Freqs fr;
  if (D / 2 > 512)
    throw Error("rope: head dimension " + std::to_string(D) + " is above the CUDA kernel's 1024");
  for (int64_t i = 0; i < D / 2; ++i) fr.f[i] = inv_freq_host[i];
  if (dest.lead_stride == 0) dest.lead_stride = T * D;
  int64_t* err = dest.at_position ? error_flag() : nullptr;
  dispatch_float(t, "rope", [&]<class X>() {
    // Blocks walk the tensor, so each stages the frequencies once for many elements.
    const int64_t n = lead * T * (D / 2);
    const unsigned blocks = std::min<unsigned>(grid_for(n), static_cast<unsigned>(active().sms) * 16);
    if (n < (int64_t(1) << 31))
      launch_overlapped(rope_kernel<X, uint32_t>, blocks, 256, 0, static_cast<const X*>(x),
                        static_cast<X*>(out), lead, T, D, fr, offset, position, dest, err);
    else
      launch_overlapped(rope_kernel<X, int64_t>, blocks, 256, 0, static_cast<const X*>(x),
                        static_cast<X*>(out), lead, T, D, fr, offset, position, dest, err);
  });
  check_launch("rope");
}

bool rope_rows(DType t, const void* x, const int64_t (&xs)[3], void* out, int64_t B, int64_t H,
               int64_t T, int64_t D, const float* inv_freq_host, int64_t offset) {
  if (t != DType::f32 && t != DType::bf16 && t != DType::f16) return false;
  const int64_t size = static_cast<int64_t>(itemsize(t)), P = 16 / size,
                n = B * H * T * (D / 2 / P);
  // 16-byte words: both halves of every row must start on one, and the indices fit 32 bits.
  bool fits = D / 2 <= 512 && (D / 2) % P == 0 && n < (int64_t(1) << 31) &&
              B * H * T * D < (int64_t(1) << 32) && reinterpret_cast<uintptr_t>(x) % 16 == 0 &&
              reinterpret_cast<uintptr_t>(out) % 16 == 0;
  for (int64_t s : xs) fits = fits && (s * size) % 16 == 0 && s >= 0 && s < (int64_t(1) << 32);
  if (!fits) return false;
  if (n == 0) return true;
  // The kernel's offsets into x are 32-bit: the farthest element must be within reach of them.
  if ((B - 1) * xs[0] + (H - 1) * xs[1] + (T - 1) * xs[2] + D >= (int64_t(1) << 32)) return false;
  Freqs fr;
  for (int64_t i = 0; i < D / 2; ++i) fr.f[i] = inv_freq_host[i];
  const unsigned blocks = std::min<unsigned>(grid_for(n), static_cast<unsigned>(active().sms) * 16);
  auto u = [](int64_t v) { return static_cast<uint32_t>(v); };
  dispatch_float(t, "rope", [&]<class X>() {
    if constexpr (!std::is_same_v<X, double>)
      launch_overlapped(rope_rows_kernel<X, 16 / sizeof(X)>, blocks, 256, 0,
                        static_cast<const X*>(x), static_cast<X*>(out), u(H), u(T), u(D), u(xs[0]),
                        u(xs[1]), u(xs[2]), u(n), fr, offset);
  });
  check_launch("rope");
  return true;
}

void cross_entropy(DType t, const void* logits, DType lt, const void* labels, void* out,
                   DType out_t, int64_t N, int64_t V, int64_t ignore_index, double smoothing) {
  if (N == 0) return;
  int64_t* err = error_flag();
  dispatch_float(t, "cross_entropy", [&]<class T>() {
    ce_kernel<T><<<row_blocks(N), kThreads, 0, launch_stream()>>>(
        static_cast<const T*>(logits), lt, labels, out, out_t == DType::f64, N, V, ignore_index,
        smoothing, packs_fit<T>(logits, V), err);
  });
  check_launch("cross_entropy");
}

void cross_entropy_grad(DType t, const void* logits, DType lt, const void* labels, const void* g,
                        DType gt, void* out, int64_t N, int64_t V, int64_t ignore_index,
                        double smoothing) {
  if (N == 0) return;
  dispatch_float(t, "cross_entropy_grad", [&]<class T>() {
    ce_grad_kernel<T><<<row_blocks(N), kThreads, 0, launch_stream()>>>(
        static_cast<const T*>(logits), lt, labels, g, gt, static_cast<T*>(out), N, V, ignore_index,
        smoothing, packs_fit<T>(logits, V) && packs_fit<T>(out, V));
  });
  check_launch("cross_entropy_grad");
}

}  // namespace wick::cuda
