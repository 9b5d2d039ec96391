// Scaled dot-product attention: out = softmax(scale·q·kᵀ + mask, causal) · v, per (batch, query
// head), GQA by mapping query head h to kv head h / (Hq/Hkv). Queries go in blocks of rows so
// that the f32 score tile stays small and, when causal, keys no row of the block can see are
// never multiplied. Each block is two dnnl_sgemm calls around an f32 softmax; blocks are spread
// over the OpenMP threads (oneDNN then runs single-threaded inside each). f16/bf16 are widened
// to f32 once; f64 takes a plain loop.
#include <oneapi/dnnl/dnnl.h>

#include <algorithm>
#include <cmath>
#include <exception>
#include <limits>
#include <vector>

#include "backend/composed.h"
#include "backend/cpu/kernel.h"
#include "backend/cpu/vmath.h"
#include "graph/primitives.h"

namespace wick::cpu {
namespace {

// Causal query blocks skip the keys none of their rows can see; 64 rows measured best here.
constexpr int64_t kCausalBlock = 64;
constexpr float kNegInf = -std::numeric_limits<float>::infinity();


/// An f32 [B, H, rows, cols] tensor as per-(b, h) GEMM operands.
struct Operand4 {
  const float* p = nullptr;
  int64_t sb = 0, sh = 0;  // batch and head strides
  char trans = 'N';
  int64_t ld = 1;
  const float* at(int64_t b, int64_t h) const { return p + b * sb + h * sh; }
};

/// Reads the node's f32 data directly when each [rows, cols] matrix is (ld, 1) or (1, ld)
/// strided; otherwise `dense` must be filled (and is then used) with a row-major f32 copy.
bool direct_operand(const Node& n, Operand4& op) {
  const Shape& s = n.shape;
  const Strides& st = n.strides;
  int64_t rows = s[2], cols = s[3], rs = st[2], cs = st[3];
  op.p = n.data<float>();
  op.sb = st[0];
  op.sh = st[1];
  if (n.dtype != DType::f32) return false;
  int64_t r1 = std::max<int64_t>(rows, 1), c1 = std::max<int64_t>(cols, 1);
  if ((cols <= 1 || cs == 1) && (rows <= 1 || rs >= c1)) {
    op.trans = 'N';
    op.ld = rows <= 1 ? c1 : rs;
    return true;
  }
  if ((rows <= 1 || rs == 1) && (cols <= 1 || cs >= r1)) {
    op.trans = 'T';
    op.ld = cols <= 1 ? r1 : cs;
    return true;
  }
  return false;
}

/// Row-major f32 copy of a node of any float dtype and strides.
void widen_dense(const Node& n, float* dst) {
  StridedLoop<2> loop(n.shape, {contiguous_strides(n.shape), n.strides});
  dispatch_float(n.dtype, "scaled_dot_product_attention", [&]<class T>() {
    const T* s = n.data<T>();
    loop.run([&](std::array<int64_t, 2> off, std::array<int64_t, 2> st, int64_t len) {
      to_f32(s + off[1], st[1], dst + off[0], len);
    });
  });
}

struct Prepared {
  Operand4 op;
  std::shared_ptr<detail::Storage> hold;
};

Prepared prepare(const Node& n) {
  Prepared p;
  if (direct_operand(n, p.op)) return p;
  p.hold = detail::allocate(std::max<size_t>(1, n.size()) * sizeof(float));
  float* d = static_cast<float*>(p.hold->ptr);
  widen_dense(n, d);
  p.op = {d, n.shape[1] * n.shape[2] * n.shape[3], n.shape[2] * n.shape[3], 'N',
          std::max<int64_t>(n.shape[3], 1)};
  return p;
}

void sgemm(char ta, char tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
           int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  dnnl_status_t st = dnnl_sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  if (st != dnnl_success)
    throw Error("scaled_dot_product_attention: oneDNN sgemm failed (status " + std::to_string(int(st)) + ")");
}

struct AttnF32 {
  int64_t B, Hq, Hkv, T, S, D;
  float scale;
  bool causal;
  Operand4 q, k, v;
  const Node* mask;  // [B, Hq, T, S] view, or null
  Node* out;

  /// Adds the mask row (b, h, t) over [0, n) to p.
  void add_mask(int64_t b, int64_t h, int64_t t, float* p, int64_t n) const {
    const Strides& ms = mask->strides;
    int64_t off = b * ms[0] + h * ms[1] + t * ms[2];
    int64_t step = mask->shape[3] == 1 ? 0 : ms[3];
    if (mask->dtype == DType::f32) {
      const float* m = mask->data<float>() + off;
      if (step == 1) {
#pragma omp simd
        for (int64_t s = 0; s < n; ++s) p[s] += m[s];
      } else {
        for (int64_t s = 0; s < n; ++s) p[s] += m[s * step];
      }
      return;
    }
    float* buf = thread_scratch(kAttnStage, static_cast<size_t>(n));
    dispatch_float(mask->dtype, "scaled_dot_product_attention", [&]<class U>() {
      to_f32(mask->data<U>() + off, step, buf, n);
    });
    for (int64_t s = 0; s < n; ++s) p[s] += buf[s];
  }

  /// Computes query rows [t0, t1) of heads h0 .. h0+nh-1 (nh > 1 only when the block covers all
  /// of T and the heads' rows are uniformly strided: the heads of one GQA group then share one
  /// pass over their kv head, stacked as nh·(t1-t0) rows).
  void block(int64_t b, int64_t h0, int64_t nh, int64_t t0, int64_t t1) const {
    int64_t tr = t1 - t0, rows = nh * tr;
    int64_t kvh = h0 / (Hq / Hkv);
    // Keys visible to some row of the block.
    int64_t s_eff = causal ? std::clamp<int64_t>(t1 + (S - T), 0, S) : S;
    bool f32_out = out->dtype == DType::f32;
    int64_t out_off = ((b * Hq + h0) * T + t0) * D;  // stacked rows are contiguous in out
    float* o = f32_out ? out->data<float>() + out_off : thread_scratch(kAttnOut, static_cast<size_t>(rows * D));
    if (s_eff == 0) {
      std::fill(o, o + rows * D, 0.0f);
    } else {
      float* p = thread_scratch(kAttnScores, static_cast<size_t>(rows * s_eff));
      const float* qa = q.at(b, h0) + t0 * (q.trans == 'N' ? q.ld : 1);
      int64_t lda = nh > 1 && T == 1 ? q.sh : q.ld;
      // kᵀ: k is [S, D]; as the right operand [D, S] its transpose flag flips.
      sgemm(q.trans, k.trans == 'N' ? 'T' : 'N', rows, s_eff, D, scale, qa, lda, k.at(b, kvh), k.ld,
            0.0f, p, s_eff);
      for (int64_t i = 0; i < rows; ++i) {
        int64_t h = h0 + i / tr, t = t0 + i % tr;
        float* pr = p + i * s_eff;
        int64_t n = causal ? std::clamp<int64_t>(t + (S - T) + 1, 0, s_eff) : s_eff;
        if (mask && n > 0) add_mask(b, h, t, pr, n);
        float m = n > 0 ? reduce_max(pr, n) : kNegInf;
        if (m == kNegInf) {
          n = 0;  // fully masked: the row's output is 0
        } else {
          float inv = 1.0f / exp_shift_sum(pr, m, pr, n);
#pragma omp simd
          for (int64_t s = 0; s < n; ++s) pr[s] *= inv;
        }
        std::fill(pr + n, pr + s_eff, 0.0f);
      }
      sgemm('N', v.trans, rows, D, s_eff, 1.0f, p, s_eff, v.at(b, kvh), v.ld, 0.0f, o, D);
    }
    if (!f32_out) {
      dispatch_float(out->dtype, "scaled_dot_product_attention", [&]<class U>() {
        from_f32(o, out->data<U>() + out_off, rows * D);
      });
    }
  }
};

/// Runs f(i) for i in [0, n), dynamically spread over the OpenMP threads when `parallel`
/// (causal blocks differ in cost); the first exception is rethrown here.
template <class F>
void parallel_items(int64_t n, bool parallel, F&& f) {
  if (!parallel) {
    for (int64_t i = 0; i < n; ++i) f(i);
    return;
  }
  std::exception_ptr err;
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t i = 0; i < n; ++i) {
    try {
      f(i);
    } catch (...) {
#pragma omp critical(wick_attention_error)
      if (!err) err = std::current_exception();
    }
  }
  if (err) std::rethrow_exception(err);
}

void attention_f32(std::span<Node* const> in, Node& out, float scale, bool causal, bool has_mask) {
  const Node& qn = *in[0];
  const Node& kn = *in[1];
  const Node& vn = *in[2];
  AttnF32 a;
  a.B = qn.shape[0];
  a.Hq = qn.shape[1];
  a.T = qn.shape[2];
  a.D = qn.shape[3];
  a.Hkv = kn.shape[1];
  a.S = kn.shape[2];
  a.scale = scale;
  a.causal = causal;
  a.mask = has_mask ? in[3] : nullptr;
  a.out = &out;
  Prepared pq = prepare(qn), pk = prepare(kn), pv = prepare(vn);
  a.q = pq.op;
  a.k = pk.op;
  a.v = pv.op;

  int threads = omp_get_max_threads();
  int64_t group = a.Hq / a.Hkv;
  // Stack a GQA group's query heads into one GEMM when their rows form one strided matrix and
  // the stack is short (decode, short prompts): one pass over each kv head instead of `group`.
  bool stack = group > 1 && a.q.trans == 'N' && a.T * group <= 256 &&
               (a.T == 1 ? a.q.sh >= std::max<int64_t>(a.D, 1) : a.q.sh == a.T * a.q.ld);
  if (stack) {
    int64_t items = a.B * a.Hkv;
    double flops = 4.0 * a.T * a.S * a.D * a.B * a.Hq;
    auto run_item = [&](int64_t it) { a.block(it / a.Hkv, (it % a.Hkv) * group, group, 0, a.T); };
    parallel_items(items, threads > 1 && items >= 2 && flops >= 2e5, run_item);
    return;
  }
  int64_t heads = a.B * a.Hq;
  // Query blocks: score tile of at most ~256K floats, rows in [16, 256], and enough blocks to
  // keep every thread busy.
  int64_t tb = std::clamp<int64_t>((int64_t{1} << 18) / std::max<int64_t>(a.S, 1), 16, 256);
  if (heads < 2 * threads) tb = std::min(tb, std::max<int64_t>(16, (a.T * heads + 2 * threads - 1) / (2 * threads)));
  // Causal blocks skip the keys none of their rows can see: smaller blocks skip more.
  if (causal) tb = std::min<int64_t>(tb, kCausalBlock);
  tb = std::min(tb, std::max<int64_t>(a.T, 1));
  int64_t nblk = (a.T + tb - 1) / tb;
  int64_t items = heads * nblk;
  double flops = 4.0 * a.T * a.S * a.D * heads;
  auto run_item = [&](int64_t it) {
    int64_t hb = it / nblk, blk = it % nblk;
    int64_t t0 = blk * tb, t1 = std::min(a.T, t0 + tb);
    a.block(hb / a.Hq, hb % a.Hq, 1, t0, t1);
  };
  parallel_items(items, threads > 1 && items >= 2 && flops >= 2e5, run_item);
}

/// Reference-precision loop for f64.
void attention_f64(std::span<Node* const> in, Node& out, double scale, bool causal, bool has_mask) {
  const Node& q = *in[0];
  const Node& k = *in[1];
  const Node& v = *in[2];
  const Node* mask = has_mask ? in[3] : nullptr;
  int64_t B = q.shape[0], Hq = q.shape[1], T = q.shape[2], D = q.shape[3];
  int64_t Hkv = k.shape[1], S = k.shape[2], group = Hq / Hkv;
  const double *qp = q.data<double>(), *kp = k.data<double>(), *vp = v.data<double>();
  double* o = out.data<double>();
  const Strides &qs = q.strides, &ks = k.strides, &vs = v.strides;
  parallel_for(B * Hq * T, 4 * S * D + 1, [&](int64_t r0, int64_t r1) {
    std::vector<double> p(static_cast<size_t>(S));
    std::vector<float> mrow(static_cast<size_t>(S));
    for (int64_t r = r0; r < r1; ++r) {
      int64_t t = r % T, h = (r / T) % Hq, b = r / (T * Hq), kh = h / group;
      const double* qr = qp + b * qs[0] + h * qs[1] + t * qs[2];
      if (mask) {
        const Strides& ms = mask->strides;
        dispatch_float(mask->dtype, "scaled_dot_product_attention", [&]<class M>() {
          for (int64_t s = 0; s < S; ++s)
            mrow[s] = static_cast<float>(load(mask->data<M>() + b * ms[0] + h * ms[1] + t * ms[2] + s * ms[3]));
        });
      }
      double m = -std::numeric_limits<double>::infinity();
      for (int64_t s = 0; s < S; ++s) {
        double d = 0;
        const double* kr = kp + b * ks[0] + kh * ks[1] + s * ks[2];
        for (int64_t j = 0; j < D; ++j) d += qr[j * qs[3]] * kr[j * ks[3]];
        d *= scale;
        if (mask) d += mrow[s];
        if (causal && s > t + (S - T)) d = -std::numeric_limits<double>::infinity();
        p[s] = d;
        m = std::max(m, d);
      }
      double sum = 0;
      bool empty = m == -std::numeric_limits<double>::infinity();
      for (int64_t s = 0; s < S; ++s) {
        p[s] = empty ? 0.0 : std::exp(p[s] - m);
        sum += p[s];
      }
      double* orow = o + r * D;
      for (int64_t j = 0; j < D; ++j) {
        double acc = 0;
        for (int64_t s = 0; s < S; ++s) acc += p[s] * vp[b * vs[0] + kh * vs[1] + s * vs[2] + j * vs[3]];
        orow[j] = empty ? 0.0 : acc / sum;
      }
    }
  });
}

}  // namespace
}  // namespace wick::cpu

namespace wick::detail {
using namespace cpu;

void Attention::eval_cpu(std::span<Node* const> in, Node& out) {
  if (!rope_q.empty()) return attention_rotating_q(*this, in, out);
  const Node& q = *in[0];
  const Node& k = *in[1];
  if (q.shape.size() != 4 || k.shape.size() != 4 || in[2]->shape != k.shape || k.shape[1] == 0 ||
      q.shape[1] % k.shape[1] != 0 || (has_mask && in[3]->shape.size() != 4))
    throw Error("scaled_dot_product_attention: kernel got q " + shape_str(q.shape) + ", k " +
                shape_str(k.shape) + ", v " + shape_str(in[2]->shape));
  alloc_output(out);
  if (out.size() == 0) return;
  if (out.dtype == DType::f64) {
    attention_f64(in, out, scale, causal, has_mask);
  } else if (out.dtype == DType::f32 || out.dtype == DType::f16 || out.dtype == DType::bf16) {
    attention_f32(in, out, static_cast<float>(scale), causal, has_mask);
  } else {
    throw Error(std::string("scaled_dot_product_attention: floating dtype expected, got ") + dtype_name(out.dtype));
  }
}

}  // namespace wick::detail

namespace wick::detail {
using namespace cpu;

void AttentionGrad::eval_cpu(std::span<Node* const>, Node&) {
  throw Error("attention_grad: a CUDA op (the CPU composes the attention gradient from ops)");
}

void RmsNormGrad::eval_cpu(std::span<Node* const>, Node&) {
  throw Error("rms_norm_grad: a CUDA op (the CPU composes the norm's gradient from ops)");
}

void AttentionProbs::eval_cpu(std::span<Node* const> in, Node& out) {
  // A reference loop: only the CUDA gradient uses this primitive; the CPU composes ops instead.
  const Node& q = *in[0];
  const Node& k = *in[1];
  const Node* mask = has_mask ? in[2] : nullptr;
  alloc_output(out);
  const int64_t B = q.shape[0], Hq = q.shape[1], T = q.shape[2], D = q.shape[3];
  const int64_t Hkv = k.shape[1], S = k.shape[2], G = Hq / Hkv;
  std::vector<double> row(static_cast<size_t>(S));
  // Probabilities in the output's dtype (f32, or the half type of a GPU gradient).
  dispatch_float(out.dtype, name(), [&]<class O>() {
  O* o = out.data<O>();
  dispatch_float(q.dtype, name(), [&]<class E>() {
    const E* qp = q.data<E>();
    const E* kp = k.data<E>();
    for (int64_t b = 0; b < B; ++b)
      for (int64_t h = 0; h < Hq; ++h)
        for (int64_t t = 0; t < T; ++t) {
          int64_t end = causal ? std::clamp<int64_t>(t + (S - T) + 1, 0, S) : S;
          double m = -std::numeric_limits<double>::infinity();
          for (int64_t s = 0; s < end; ++s) {
            double d = 0;
            for (int64_t j = 0; j < D; ++j)
              d += double(load(qp + b * q.strides[0] + h * q.strides[1] + t * q.strides[2] + j * q.strides[3])) *
                   double(load(kp + b * k.strides[0] + (h / G) * k.strides[1] + s * k.strides[2] + j * k.strides[3]));
            d *= scale;
            if (mask) {
              const Strides& ms = mask->strides;
              d += mask->data<float>()[b * ms[0] + h * ms[1] + t * ms[2] + s * ms[3]];
            }
            row[s] = d;
            m = std::max(m, d);
          }
          O* orow = o + ((b * Hq + h) * T + t) * S;
          double sum = 0;
          bool empty = m == -std::numeric_limits<double>::infinity();
          for (int64_t s = 0; s < end; ++s) sum += row[s] = empty ? 0.0 : std::exp(row[s] - m);
          for (int64_t s = 0; s < S; ++s)
            orow[s] = O(static_cast<compute_t<O>>(s < end && !empty ? row[s] / sum : 0.0));
        }
  });
  });
}

}  // namespace wick::detail
