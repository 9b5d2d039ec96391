// Matmul and LoRA linear on the CPU. f32 GEMM goes through oneDNN: dnnl_sgemm in general, and
// the oneDNN matmul primitive (brgemm kernels) where dnnl_sgemm is known to be slow on this
// class of CPU: a transposed right operand (x·Wᵀ, the layout of every linear layer) with more
// than a handful of rows runs 1.5-5x slower through dnnl_sgemm than through the primitive.
// Operands whose last two axes are (ld, 1) or (1, ld) strided are passed without copying;
// f16/bf16 operands are widened to f32 and the result rounded once. f64 and integer types take
// a plain loop (they exist for reference checks).
#include <oneapi/dnnl/dnnl.h>

#include <oneapi/dnnl/dnnl.hpp>

#include <algorithm>
#include <cstring>
#include <exception>
#include <unordered_map>
#include <vector>

#include "backend/cpu/gemv.h"
#include "backend/cpu/kernel.h"
#include "backend/cpu/vmath.h"
#include "graph/primitives.h"

namespace wick::cpu {
namespace {


/// An uninitialised f32 buffer from the caching allocator (large temporaries are not kept).
struct F32Buf {
  std::shared_ptr<detail::Storage> storage;
  float* p = nullptr;
  F32Buf() = default;
  explicit F32Buf(size_t n) { reset(n); }
  float* reset(size_t n) {
    storage = detail::allocate(std::max<size_t>(n, 1) * sizeof(float));
    p = static_cast<float*>(storage->ptr);
    return p;
  }
};

dnnl::engine& dnnl_engine() {
  // Leaked on purpose: a worker may still be inside a GEMM while statics are destroyed at exit.
  static dnnl::engine& e = *new dnnl::engine(dnnl::engine::kind::cpu, 0);
  return e;
}

/// One f32 matrix as GEMM sees it: op(X) where X is row-major with leading dimension ld.
struct GemmOperand {
  const float* p = nullptr;
  char trans = 'N';
  int64_t ld = 1;
};

void check_dnnl(dnnl_status_t st) {
  if (st != dnnl_success) throw Error("matmul: oneDNN sgemm failed (status " + std::to_string(int(st)) + ")");
}

constexpr int64_t kSkinny = 16;

/// c = alpha·acc + beta·c, never reading c when beta is 0 (it may be uninitialised).
inline float blend(float alpha, float acc, float beta, float c) {
  return beta == 0.0f ? alpha * acc : alpha * acc + beta * c;
}

/// C = alpha·A·Bᵀ + beta·C for N <= kSkinny (e.g. x·Aᵀ of a LoRA factor): rows of A and B are
/// both contiguous along K, so each output is one vectorised dot product. oneDNN takes 3-5x
/// longer for these shapes.
void gemm_small_n(int64_t M, int64_t N, int64_t K, float alpha, GemmOperand a, GemmOperand b,
                  float beta, float* c, int64_t ldc) {
  parallel_for(M, N * K, [&](int64_t r0, int64_t r1) {
    for (int64_t i = r0; i < r1; ++i) {
      const float* xr = a.p + i * a.ld;
      float* cr = c + i * ldc;
      int64_t j = 0;
      // Four columns at a time: four independent accumulator chains share each load of x.
      for (; j + 4 <= N; j += 4) {
        const float* b0 = b.p + j * b.ld;
        const float *b1 = b0 + b.ld, *b2 = b1 + b.ld, *b3 = b2 + b.ld;
        float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
#pragma omp simd reduction(+ : s0, s1, s2, s3)
        for (int64_t k = 0; k < K; ++k) {
          float x = xr[k];
          s0 += x * b0[k];
          s1 += x * b1[k];
          s2 += x * b2[k];
          s3 += x * b3[k];
        }
        cr[j] = blend(alpha, s0, beta, cr[j]);
        cr[j + 1] = blend(alpha, s1, beta, cr[j + 1]);
        cr[j + 2] = blend(alpha, s2, beta, cr[j + 2]);
        cr[j + 3] = blend(alpha, s3, beta, cr[j + 3]);
      }
      for (; j < N; ++j) {
        const float* br = b.p + j * b.ld;
        float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
        for (int64_t k = 0; k < K; ++k) acc += xr[k] * br[k];
        cr[j] = blend(alpha, acc, beta, cr[j]);
      }
    }
  });
}

/// C[M,N] = alpha·op(A)·op(B) + beta·C (+ bias[N] per row, only with beta == 0).
/// Row-major, C with leading dimension ldc and unit column stride.
void gemm_f32(int64_t M, int64_t N, int64_t K, float alpha, GemmOperand a, GemmOperand b,
              float beta, float* c, int64_t ldc, const float* bias = nullptr) {
  if (M == 0 || N == 0) return;
  if (K == 0) {
    for (int64_t i = 0; i < M; ++i) {
      float* row = c + i * ldc;
      for (int64_t j = 0; j < N; ++j)
        row[j] = (beta == 0.0f ? 0.0f : beta * row[j]) + (bias ? bias[j] : 0.0f);
    }
    return;
  }
  if (a.trans == 'N' && b.trans == 'T' && M <= kGemvMaxRows && N > kSkinny && (bias == nullptr || beta == 0.0f)) {
    // A few rows against a weight matrix: bandwidth-bound, so every thread streams a share of
    // the weights (oneDNN runs these as compute-shaped GEMMs on one thread).
    return gemv_rows(M, N, K, alpha, a.p, a.ld, b.p, b.ld, beta, c, ldc, bias);
  }
  // Below ~4 MFLOP (tens of microseconds on one core) a GEMM runs on the calling thread alone.
  SerialScope serial(2 * M * N * K < (int64_t{1} << 22));
  if (a.trans == 'N' && b.trans == 'T' && !bias && N <= kSkinny) {
    return gemm_small_n(M, N, K, alpha, a, b, beta, c, ldc);
  }
  bool use_primitive = b.trans == 'T' && M >= 16 && N >= 32 && K >= 32 && M * N * K >= (1 << 18) &&
                       (bias == nullptr || alpha == 1.0f);
  if (use_primitive) {
    try {
      using dnnl::memory;
      using dims = memory::dims;
      const auto f32 = memory::data_type::f32;
      memory::desc ad({M, K}, f32, a.trans == 'N' ? dims{a.ld, 1} : dims{1, a.ld});
      memory::desc bd({K, N}, f32, dims{1, b.ld});
      memory::desc cd({M, N}, f32, dims{ldc, 1});
      memory::desc biasd({1, N}, f32, dims{N, 1});
      dnnl::primitive_attr attr;
      attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
      if (alpha != 1.0f) attr.set_output_scales(0, {alpha});
      if (beta != 0.0f) {
        dnnl::post_ops po;
        po.append_sum(beta);
        attr.set_post_ops(po);
      }
      dnnl::engine& eng = dnnl_engine();
      auto md = bias ? dnnl::matmul::desc(ad, bd, biasd, cd) : dnnl::matmul::desc(ad, bd, cd);
      dnnl::matmul::primitive_desc pd(md, attr, eng);  // served from oneDNN's primitive cache
      dnnl::matmul prim(pd);
      memory::desc sd = pd.scratchpad_desc();
      float* sp = thread_scratch(kGemmScratchpad, sd.get_size() / sizeof(float) + 1);
      thread_local dnnl::stream stream(eng);
      std::unordered_map<int, memory> args = {
          {DNNL_ARG_SRC, memory(ad, eng, const_cast<float*>(a.p))},
          {DNNL_ARG_WEIGHTS, memory(bd, eng, const_cast<float*>(b.p))},
          {DNNL_ARG_DST, memory(cd, eng, c)},
          {DNNL_ARG_SCRATCHPAD, memory(sd, eng, sp)}};
      if (bias) args.emplace(DNNL_ARG_BIAS, memory(biasd, eng, const_cast<float*>(bias)));
      prim.execute(stream, args);
      stream.wait();
      return;
    } catch (const dnnl::error&) {
      // Not supported by the primitive on this machine: dnnl_sgemm below handles everything.
    }
  }
  if (b.trans == 'T' && M >= 8 && K * N <= (int64_t{1} << 16)) {
    // dnnl_sgemm's transposed-B path has a large fixed cost; a small B (e.g. a LoRA factor)
    // is cheaper to transpose first.
    float* bt = thread_scratch(kGemmTranspose, static_cast<size_t>(K * N));
    for (int64_t k = 0; k < K; ++k)
      for (int64_t j = 0; j < N; ++j) bt[k * N + j] = b.p[j * b.ld + k];
    b = {bt, 'N', N};
  }
  if (bias) {
    for (int64_t i = 0; i < M; ++i) std::memcpy(c + i * ldc, bias, N * sizeof(float));
    beta = 1.0f;
  }
  check_dnnl(dnnl_sgemm(a.trans, b.trans, M, N, K, alpha, a.p, a.ld, b.p, b.ld, beta, c, ldc));
}

/// A 2-D slice of a node: element (i, j) at base[i*rs + j*cs] (base already offset).
struct Strided2 {
  int64_t rows, cols, rs, cs;
};

/// The GEMM layout of a strided f32 matrix, or false when it needs a copy.
bool gemm_layout(const Strided2& m, char& trans, int64_t& ld) {
  int64_t r1 = std::max<int64_t>(m.rows, 1), c1 = std::max<int64_t>(m.cols, 1);
  if ((m.cols <= 1 || m.cs == 1) && (m.rows <= 1 || m.rs >= c1)) {
    trans = 'N';
    ld = m.rows <= 1 ? c1 : m.rs;
    return true;
  }
  if ((m.rows <= 1 || m.rs == 1) && (m.cols <= 1 || m.cs >= r1)) {
    trans = 'T';
    ld = m.cols <= 1 ? r1 : m.cs;
    return true;
  }
  return false;
}

/// Widens a strided matrix of T into a dense f32 buffer, keeping whichever of the two axes is
/// unit-stride as the fast one (so a transposed view stays a 'T' operand, read sequentially).
template <class T>
GemmOperand widen(const T* src, const Strided2& m, float* dst) {
  if (m.rs == 1 && m.cs != 1 && m.rows > 1) {
    for (int64_t j = 0; j < m.cols; ++j) to_f32(src + j * m.cs, 1, dst + j * m.rows, m.rows);
    return {dst, 'T', std::max<int64_t>(m.rows, 1)};
  }
  for (int64_t i = 0; i < m.rows; ++i) to_f32(src + i * m.rs, m.cs, dst + i * m.cols, m.cols);
  return {dst, 'N', std::max<int64_t>(m.cols, 1)};
}

/// A GEMM operand for the matrix of `n` at element offset `off`: the data itself when it is f32
/// and its layout allows, else a widened/dense f32 copy held by `hold`.
GemmOperand operand(const Node& n, int64_t off, const Strided2& m, F32Buf& hold) {
  if (n.dtype == DType::f32) {
    GemmOperand g;
    if (gemm_layout(m, g.trans, g.ld)) {
      g.p = n.data<float>() - n.offset + off;
      return g;
    }
  }
  float* dst = hold.reset(static_cast<size_t>(m.rows * m.cols));
  return dispatch_float(n.dtype, "matmul", [&]<class T>() {
    return widen(n.data<T>() - n.offset + off, m, dst);
  });
}

/// Element offset of batch index `bi` (row-major over `batch`) for the given batch strides.
int64_t batch_offset(int64_t bi, const Shape& batch, const Strides& st) {
  int64_t off = 0;
  for (size_t d = batch.size(); d-- > 0;) {
    off += (bi % batch[d]) * st[d];
    bi /= batch[d];
  }
  return off;
}

/// When `n`'s batch axes and row axis (strides st, matrix strides m.rs/m.cs) collapse into one
/// uniformly strided row axis of a dense-column f32 matrix, returns that row stride (else -1).
int64_t merged_row_stride(const Node& n, const Shape& batch, const Strides& st, const Strided2& m) {
  if (n.dtype != DType::f32 || (m.cols > 1 && m.cs != 1)) return -1;
  int64_t row_stride = -1, expect = -1;  // stride of the innermost non-unit axis seen so far
  auto visit = [&](int64_t size, int64_t stride) {
    if (size == 1) return true;
    if (row_stride < 0) {
      row_stride = stride;
      expect = stride * size;
      return true;
    }
    if (stride != expect) return false;
    expect *= size;
    return true;
  };
  if (!visit(m.rows, m.rs)) return -1;
  for (size_t d = batch.size(); d-- > 0;)
    if (!visit(batch[d], st[d])) return -1;
  if (row_stride < 0) row_stride = std::max<int64_t>(m.cols, 1);
  return row_stride >= std::max<int64_t>(m.cols, 1) ? row_stride : -1;
}

/// Dense f32 copy of all of `n` (any dtype, any strides) in row-major order.
void widen_all(const Node& n, float* dst) {
  StridedLoop<2> loop(n.shape, {contiguous_strides(n.shape), n.strides});
  dispatch_float(n.dtype, "matmul", [&]<class T>() {
    const T* s = n.data<T>();
    loop.run([&](std::array<int64_t, 2> off, std::array<int64_t, 2> st, int64_t len) {
      to_f32(s + off[1], st[1], dst + off[0], len);
    });
  });
}

/// Runs body(i) for i in [0, n), across the OpenMP threads when `parallel`; the first exception
/// thrown by any iteration is rethrown here.
template <class F>
void for_each_maybe_parallel(int64_t n, bool parallel, F&& body) {
  if (!parallel) {
    for (int64_t i = 0; i < n; ++i) body(i);
    return;
  }
  std::exception_ptr err;
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    try {
      body(i);
    } catch (...) {
#pragma omp critical(wick_matmul_error)
      if (!err) err = std::current_exception();
    }
  }
  if (err) std::rethrow_exception(err);
}

/// A batch of f32 matrices for GEMM: matrix bi starts at base + batch_offset(bi, batch, bst).
struct BatchOperand {
  const float* base;
  char trans;
  int64_t ld;
  Strides bst;
};

/// The node's own data when it is f32 with a GEMM layout, else a dense f32 copy of all of it.
BatchOperand batch_operand(const Node& n, const Strided2& m, const Strides& bst, F32Buf& hold) {
  BatchOperand g{n.data<float>(), 'N', 1, bst};
  if (n.dtype == DType::f32 && gemm_layout(m, g.trans, g.ld)) return g;
  widen_all(n, hold.reset(static_cast<size_t>(n.size())));
  Strides dense = contiguous_strides(n.shape);
  dense.resize(bst.size());
  return {hold.p, 'N', std::max<int64_t>(m.cols, 1), dense};
}

/// Whether this CPU multiplies bf16 natively (AVX512_BF16): checked once.
bool native_bf16() {
  static const bool yes = dnnl::get_effective_cpu_isa() >= dnnl::cpu_isa::avx512_core_bf16;
  return yes;
}

/// A 2-D bf16 product with bf16 output through oneDNN's bf16 matmul (vdpbf16ps): the products of
/// two bf16 values are exact in f32 and are accumulated in f32, then rounded to bf16 once, as the
/// widening path computes them (summation order aside), at about twice the speed and half the
/// memory traffic. Returns false (nothing done) where the layout or the CPU does not fit.
bool matmul_bf16_native(const Node& a, const Node& b, Node& out) {
  if (out.dtype != DType::bf16 || a.dtype != DType::bf16 || b.dtype != DType::bf16 || out.shape.size() != 2 ||
      !native_bf16())
    return false;
  const int64_t M = out.shape[0], N = out.shape[1], K = a.shape[1];
  if (M < 16 || N < 32 || K < 32) return false;
  Strided2 ma{M, K, a.strides[0], a.strides[1]}, mb{K, N, b.strides[0], b.strides[1]};
  char ta, tb;
  int64_t lda, ldb;
  if (!gemm_layout(ma, ta, lda) || !gemm_layout(mb, tb, ldb)) return false;
  try {
    using dnnl::memory;
    using dims = memory::dims;
    const auto bf16 = memory::data_type::bf16;
    memory::desc ad({M, K}, bf16, ta == 'N' ? dims{lda, 1} : dims{1, lda});
    memory::desc bd({K, N}, bf16, tb == 'N' ? dims{ldb, 1} : dims{1, ldb});
    memory::desc cd({M, N}, bf16, dims{N, 1});
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    dnnl::engine& eng = dnnl_engine();
    dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(ad, bd, cd), attr, eng);
    dnnl::matmul prim(pd);
    memory::desc sd = pd.scratchpad_desc();
    float* sp = thread_scratch(kGemmScratchpad, sd.get_size() / sizeof(float) + 1);
    thread_local dnnl::stream stream(eng);
    prim.execute(stream, {{DNNL_ARG_SRC, memory(ad, eng, const_cast<void*>(static_cast<const void*>(a.data<bfloat16>())))},
                          {DNNL_ARG_WEIGHTS, memory(bd, eng, const_cast<void*>(static_cast<const void*>(b.data<bfloat16>())))},
                          {DNNL_ARG_DST, memory(cd, eng, static_cast<void*>(out.data<bfloat16>()))},
                          {DNNL_ARG_SCRATCHPAD, memory(sd, eng, sp)}});
    stream.wait();
    return true;
  } catch (const dnnl::error&) {
    return false;  // the widening path handles it
  }
}

void matmul_f32(const Node& a, const Node& b, Node& out) {
  size_t nd = out.shape.size();
  int64_t M = out.shape[nd - 2], N = out.shape[nd - 1], K = a.shape.back();
  Shape batch(out.shape.begin(), out.shape.end() - 2);
  Strides sa = aligned_strides(a, nd), sb = aligned_strides(b, nd);
  Strided2 ma{M, K, sa[nd - 2], sa[nd - 1]}, mb{K, N, sb[nd - 2], sb[nd - 1]};
  sa.resize(nd - 2);
  sb.resize(nd - 2);
  int64_t nb = numel(batch);
  bool f32_out = out.dtype == DType::f32;
  F32Buf out_buf, a_buf, b_buf;
  float* outp = f32_out ? out.data<float>() : out_buf.reset(static_cast<size_t>(nb * M * N));

  bool b_shared = std::all_of(sb.begin(), sb.end(), [](int64_t s) { return s == 0; });
  if (nb == 1 || b_shared) {
    // Every batch uses the same right operand: one GEMM over all nb·M rows.
    GemmOperand gb = operand(b, b.offset, mb, b_buf);
    Strided2 rows{nb * M, K, 0, ma.cs};
    GemmOperand ga;
    int64_t rs = merged_row_stride(a, batch, sa, ma);
    if (rs >= 0) {
      rows.rs = rs;
      if (!gemm_layout(rows, ga.trans, ga.ld)) rs = -1;
      ga.p = a.data<float>();
    }
    if (rs < 0) {
      if (nb == 1) {
        ga = operand(a, a.offset, ma, a_buf);
      } else {
        widen_all(a, a_buf.reset(static_cast<size_t>(nb * M * K)));
        ga = {a_buf.p, 'N', std::max<int64_t>(K, 1)};
      }
    }
    gemm_f32(nb * M, N, K, 1.0f, ga, gb, 0.0f, outp, N);
  } else {
    // A batch of independent products; small ones are spread over the threads (oneDNN then
    // runs each single-threaded), large ones use oneDNN's own threading.
    BatchOperand ba = batch_operand(a, ma, sa, a_buf);
    BatchOperand bb = batch_operand(b, mb, sb, b_buf);
    int threads = omp_get_max_threads();
    double flops = 2.0 * M * N * K;
    bool parallel = threads > 1 && nb >= 2 && flops * nb >= 2e5 && (nb >= threads || flops < 4e6);
    for_each_maybe_parallel(nb, parallel, [&](int64_t bi) {
      GemmOperand ga{ba.base + batch_offset(bi, batch, ba.bst), ba.trans, ba.ld};
      GemmOperand gb{bb.base + batch_offset(bi, batch, bb.bst), bb.trans, bb.ld};
      gemm_f32(M, N, K, 1.0f, ga, gb, 0.0f, outp + bi * M * N, N);
    });
  }
  if (!f32_out) {
    dispatch_float(out.dtype, "matmul", [&]<class T>() {
      T* o = out.data<T>();
      parallel_for(nb * M, N, [&](int64_t r0, int64_t r1) {
        from_f32(outp + r0 * N, o + r0 * N, (r1 - r0) * N);
      });
    });
  }
}

/// Plain loop for f64 and integer types (reference precision, not speed).
template <class T>
void matmul_naive(const Node& a, const Node& b, Node& out) {
  using C = std::conditional_t<std::is_floating_point_v<T>, double, int64_t>;
  size_t nd = out.shape.size();
  int64_t M = out.shape[nd - 2], N = out.shape[nd - 1], K = a.shape.back();
  Shape batch(out.shape.begin(), out.shape.end() - 2);
  Strides sa = aligned_strides(a, nd), sb = aligned_strides(b, nd);
  int64_t nb = numel(batch);
  const T* ap = a.data<T>();
  const T* bp = b.data<T>();
  T* o = out.data<T>();
  parallel_for(nb * M, N * K + 1, [&](int64_t r0, int64_t r1) {
    std::vector<C> acc(static_cast<size_t>(N));
    for (int64_t r = r0; r < r1; ++r) {
      int64_t bi = r / M, i = r % M;
      const T* arow = ap + batch_offset(bi, batch, sa) + i * sa[nd - 2];
      const T* bm = bp + batch_offset(bi, batch, sb);
      std::fill(acc.begin(), acc.end(), C(0));
      for (int64_t k = 0; k < K; ++k) {
        C av = static_cast<C>(arow[k * sa[nd - 1]]);
        const T* brow = bm + k * sb[nd - 2];
        for (int64_t j = 0; j < N; ++j) acc[j] += av * static_cast<C>(brow[j * sb[nd - 1]]);
      }
      for (int64_t j = 0; j < N; ++j) o[r * N + j] = static_cast<T>(acc[j]);
    }
  });
}

}  // namespace
}  // namespace wick::cpu

namespace wick::detail {
using namespace cpu;

namespace {
/// out += add, with add a bias [N] or of out's shape (the third input compile fuses into a
/// matmul; same dtype as out): after the product's rounding, as the unfused add.
void add_to_product(const Node& add, Node& out) {
  const int64_t N = out.shape.back(), rows = out.size() / N;
  const bool bias = add.shape != out.shape;
  const RowOffsets offs(add);
  const int64_t as = add.strides.back();
  dispatch_float(out.dtype, "matmul", [&]<class T>() {
    T* o = out.data<T>();
    parallel_for(rows, N, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const T* a = add.data<T>() + (bias ? 0 : offs(r));
        for (int64_t n = 0; n < N; ++n)
          o[r * N + n] = T(static_cast<compute_t<T>>(o[r * N + n]) + static_cast<compute_t<T>>(a[n * as]));
      }
    });
  });
}
}  // namespace

void Matmul::eval_cpu(std::span<Node* const> in, Node& out) {
  const Node& a = *in[0];
  const Node& b = *in[1];
  alloc_output(out);
  if (out.size() == 0) return;
  if (out.shape.size() < 2 || a.shape.size() != out.shape.size() || b.shape.size() != out.shape.size())
    throw Error("matmul: kernel expects operands broadcast to the output's rank");
  switch (out.dtype) {
    case DType::f32:
    case DType::f16:
    case DType::bf16:
      if (!matmul_bf16_native(a, b, out)) matmul_f32(a, b, out);
      break;
    default:
      if (a.dtype != out.dtype || b.dtype != out.dtype)
        throw Error("matmul: operands must have the output dtype " + std::string(dtype_name(out.dtype)));
      dispatch(out.dtype, [&]<class T>() {
        if constexpr (!is_half_v<T>) matmul_naive<T>(a, b, out);
      });
  }
  if (in.size() > 2) add_to_product(*in[2], out);
  if (act) unary_in_place(*act, out);  // rounded after the sum, as the unfused ops are
}

void LoraLinear::eval_cpu(std::span<Node* const> in, Node& out) {
  const Node& x = *in[0];
  const Node& w = *in[1];
  const Node& la = *in[2];
  const Node& lb = *in[3];
  const Node* bias = has_bias ? in[4] : nullptr;
  alloc_output(out);
  if (out.size() == 0) return;
  int64_t n_in = w.shape[1], n_out = w.shape[0], r = la.shape[0];
  int64_t M = out.size() / n_out;

  if (out.dtype == DType::f64) {
    // Reference path: straight loops in double.
    const double *wp = w.data<double>(), *ap = la.data<double>(), *bp = lb.data<double>();
    double* o = out.data<double>();
    Shape lead(x.shape.begin(), x.shape.end() - 1);
    Strides xs(x.strides.begin(), x.strides.end() - 1);
    int64_t xc = x.strides.back();
    parallel_for(M, (n_out + r) * n_in + 1, [&](int64_t r0, int64_t r1) {
      std::vector<double> xa(static_cast<size_t>(r));
      for (int64_t i = r0; i < r1; ++i) {
        const double* xr = x.data<double>() + batch_offset(i, lead, xs);
        for (int64_t k = 0; k < r; ++k) {
          double s = 0;
          for (int64_t j = 0; j < n_in; ++j) s += xr[j * xc] * ap[k * la.strides[0] + j * la.strides[1]];
          xa[k] = s;
        }
        for (int64_t oi = 0; oi < n_out; ++oi) {
          double s = bias ? bias->data<double>()[oi * bias->strides[0]] : 0.0;
          for (int64_t j = 0; j < n_in; ++j) s += xr[j * xc] * wp[oi * w.strides[0] + j * w.strides[1]];
          double d = 0;
          for (int64_t k = 0; k < r; ++k) d += xa[k] * bp[oi * lb.strides[0] + k * lb.strides[1]];
          o[i * n_out + oi] = s + scale * d;
        }
      }
    });
    return;
  }
  if (out.dtype != DType::f32 && out.dtype != DType::f16 && out.dtype != DType::bf16)
    throw Error(std::string("lora_linear: floating dtype expected, got ") + dtype_name(out.dtype));

  // x as one [M, in] matrix: directly when its leading axes collapse to one row axis.
  Shape lead(x.shape.begin(), x.shape.end() - 1);
  Strides xs(x.strides.begin(), x.strides.end() - 1);
  for (size_t d = 0; d < lead.size(); ++d)
    if (lead[d] == 1) xs[d] = 0;
  Strided2 mx{1, n_in, 0, x.strides.back()};
  Shape lead_outer = lead;
  Strides xs_outer = xs;
  if (!lead.empty()) {  // the last leading axis plays the row axis of merged_row_stride
    mx.rows = lead.back();
    mx.rs = xs.back();
    lead_outer.pop_back();
    xs_outer.pop_back();
  }
  GemmOperand gx;
  F32Buf x_buf, w_buf, a_buf, b_buf, out_buf;
  int64_t xrs = merged_row_stride(x, lead_outer, xs_outer, mx);
  Strided2 rows{M, n_in, xrs, x.strides.back()};
  if (xrs < 0 || !gemm_layout(rows, gx.trans, gx.ld)) {
    widen_all(x, x_buf.reset(static_cast<size_t>(M * n_in)));
    gx = {x_buf.p, 'N', std::max<int64_t>(n_in, 1)};
  } else {
    gx.p = x.data<float>();
  }
  // Wᵀ [in, out], Aᵀ [in, r], Bᵀ [r, out] as strided views of the weights.
  GemmOperand gw = operand(w, w.offset, {n_in, n_out, w.strides[1], w.strides[0]}, w_buf);
  GemmOperand ga = operand(la, la.offset, {n_in, r, la.strides[1], la.strides[0]}, a_buf);
  float* bias_f32 = nullptr;
  std::vector<float> bias_buf;
  if (bias) {
    bias_buf.resize(static_cast<size_t>(n_out));
    dispatch_float(bias->dtype, "lora_linear", [&]<class T>() {
      to_f32(bias->data<T>(), bias->strides[0], bias_buf.data(), n_out);
    });
    bias_f32 = bias_buf.data();
  }
  bool f32_out = out.dtype == DType::f32;
  float* o = f32_out ? out.data<float>() : out_buf.reset(static_cast<size_t>(M * n_out));

  gemm_f32(M, n_out, n_in, 1.0f, gx, gw, 0.0f, o, n_out, bias_f32);
  if (r > 0) {
    std::vector<float> xa(static_cast<size_t>(M * r));
    gemm_f32(M, r, n_in, 1.0f, gx, ga, 0.0f, xa.data(), r);
    GemmOperand gb = operand(lb, lb.offset, {r, n_out, lb.strides[1], lb.strides[0]}, b_buf);
    gemm_f32(M, n_out, r, static_cast<float>(scale), {xa.data(), 'N', r}, gb, 1.0f, o, n_out);
  }
  if (!f32_out) {
    dispatch_float(out.dtype, "lora_linear", [&]<class T>() {
      T* op = out.data<T>();
      parallel_for(M, n_out, [&](int64_t r0, int64_t r1) {
        from_f32(o + r0 * n_out, op + r0 * n_out, (r1 - r0) * n_out);
      });
    });
  }
}

}  // namespace wick::detail

namespace wick::detail {

void prepare_cpu_backend() {
  // One tiny GEMM through each oneDNN path creates oneDNN's internal singletons (primitive
  // cache, CPU detection, thread pool) now, so that they are constructed before - and destroyed
  // after - the runtime's exit handler that waits for in-flight work.
  float a[16 * 32] = {}, b[32 * 32] = {}, c[16 * 32] = {};
  gemm_f32(16, 32, 32, 1.0f, {a, 'N', 32}, {b, 'T', 32}, 0.0f, c, 32);
  gemm_f32(2, 2, 2, 1.0f, {a, 'N', 2}, {b, 'N', 2}, 0.0f, c, 2);
}

}  // namespace wick::detail
