// Row kernels: one block per row of a dense [rows, n] tensor. Softmax, norms and losses compute
// in f32 (f64 for f64 inputs) with block-tree reductions.
#include "backend/cuda/common.cuh"

namespace wick::cuda {
namespace {

constexpr int kThreads = 256;

inline unsigned row_blocks(int64_t rows) {
  return static_cast<unsigned>(rows < 65535 * 32 ? rows : 65535 * 32);
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

struct Freqs {
  float f[512];
};

template <class T>
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
  WICK_GRID_LOOP(e, lead * T_ * h) {
    int64_t i = e % h, row = e / h, t = row % T_;
    C angle;
    if constexpr (std::is_same_v<C, double>)
      angle = static_cast<double>(offset + t) * static_cast<double>(fr.f[i]);
    else
      angle = static_cast<float>(offset + t) * fr.f[i];
    C c = cos(angle), s = sin(angle);
    const T* xr = x + row * D;
    C x1 = static_cast<C>(ld(xr + i)), x2 = static_cast<C>(ld(xr + i + h));
    T* o = out + (row / T_) * dest.lead_stride + (t + (dest.at_position ? shift : 0)) * D;
    st(o + i, x1 * c - x2 * s);
    st(o + i + h, x2 * c + x1 * s);
  }
}

/// Row loss: logsumexp(x) − (1−ε)·x[y] − (ε/V)·Σx; 0 for ignored rows.
template <class T>
__global__ void ce_kernel(const T* logits, DType lt, const void* labels, void* out, bool out64,
                          int64_t N, int64_t V, int64_t ignore, double eps, int64_t* err) {
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
    C m = -INFINITY;
    for (int64_t i = threadIdx.x; i < V; i += blockDim.x) m = fmax(m, static_cast<C>(ld(xr + i)));
    m = block_max(m);
    C s = 0, sx = 0;
    for (int64_t i = threadIdx.x; i < V; i += blockDim.x) {
      C v = static_cast<C>(ld(xr + i));
      s += exp(v - m);
      sx += v;
    }
    s = block_sum(s);
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

template <class T>
__global__ void ce_grad_kernel(const T* logits, DType lt, const void* labels, const void* g,
                               DType gt, T* out, int64_t N, int64_t V, int64_t ignore, double eps) {
  using C = std::conditional_t<std::is_same_v<T, double>, double, float>;
  for (int64_t r = blockIdx.x; r < N; r += gridDim.x) {
    int64_t y = ld_index(labels, lt, r);
    T* orow = out + r * V;
    if (y == ignore || y < 0 || y >= V) {
      for (int64_t i = threadIdx.x; i < V; i += blockDim.x) st(orow + i, C(0));
      continue;
    }
    const T* xr = logits + r * V;
    C m = -INFINITY;
    for (int64_t i = threadIdx.x; i < V; i += blockDim.x) m = fmax(m, static_cast<C>(ld(xr + i)));
    m = block_max(m);
    C s = 0;
    for (int64_t i = threadIdx.x; i < V; i += blockDim.x) s += exp(static_cast<C>(ld(xr + i)) - m);
    s = block_sum(s);
    C inv = C(1) / s, gr = static_cast<C>(ld_any(g, gt, r));
    C off = static_cast<C>(eps) / static_cast<C>(V), on = C(1) - static_cast<C>(eps) + off;
    for (int64_t i = threadIdx.x; i < V; i += blockDim.x) {
      C p = exp(static_cast<C>(ld(xr + i)) - m) * inv;
      st(orow + i, gr * (p - (i == y ? on : off)));
    }
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
    if constexpr (!std::is_same_v<T, double>)
      softmax_grad_kernel<T><<<row_blocks(rows), kThreads, 0, launch_stream()>>>(
          static_cast<const T*>(p), static_cast<const T*>(dp), static_cast<T*>(out), rows, n, scale);
    else
      throw Error("softmax_grad: f64 has no CUDA kernel");
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
    attention_softmax_kernel<P><<<row_blocks(rows), kThreads, 0, launch_stream()>>>(
        scores, static_cast<P*>(p), rows, Hq, T, S, causal, mask, m[0], m[1], m[2], m[3]);
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
    norm_kernel<T><<<row_blocks(rows), kThreads, 0, launch_stream()>>>(
        static_cast<const T*>(x), static_cast<T*>(out), rows, n, eps, false, w, wt, nullptr, wt);
  });
  check_launch("rms_norm");
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
    launch_overlapped(rope_kernel<X>, grid_for(lead * T * (D / 2)), 256, 0, static_cast<const X*>(x),
                      static_cast<X*>(out), lead, T, D, fr, offset, position, dest, err);
  });
  check_launch("rope");
}

void cross_entropy(DType t, const void* logits, DType lt, const void* labels, void* out,
                   DType out_t, int64_t N, int64_t V, int64_t ignore_index, double smoothing) {
  if (N == 0) return;
  int64_t* err = error_flag();
  dispatch_float(t, "cross_entropy", [&]<class T>() {
    ce_kernel<T><<<row_blocks(N), kThreads, 0, launch_stream()>>>(
        static_cast<const T*>(logits), lt, labels, out, out_t == DType::f64, N, V, ignore_index,
        smoothing, err);
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
        smoothing);
  });
  check_launch("cross_entropy_grad");
}

}  // namespace wick::cuda
