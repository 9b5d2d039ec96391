// Matmul and LoRA linear on cuBLASLt. Operands are used in place when each matrix is row- or
// column-contiguous and the batch axes collapse to one stride (0 for a broadcast operand);
// otherwise they are copied dense first. Half types compute in f32 (CUBLAS_COMPUTE_32F).
#include <map>
#include <memory>
#include <mutex>
#include <tuple>

#include "backend/composed.h"
#include "backend/cuda/cublaslt.h"
#include "backend/cuda/glue.h"

namespace wick::cuda {

/// Describes the last two axes of `n` (rows, cols) over `batch` matrices, copying when needed.
Mat as_mat(const Node& n, int64_t rows, int64_t cols, int64_t batch) {
  size_t nd = n.shape.size();
  Mat m;
  int64_t rs = rows == 1 ? cols : n.strides[nd - 2], cs = cols == 1 ? 1 : n.strides[nd - 1];
  bool ok = true;
  if (cs == 1 && rs >= cols) {
    m.ld = std::max<int64_t>(rs, 1);
  } else if (rs == 1 && cs >= rows) {
    m.col = true;
    m.ld = std::max<int64_t>(cs, 1);
  } else {
    ok = false;
  }
  // Batch axes: one stride for all of them, or all broadcast.
  int64_t bs = -1, expect = -1;
  for (size_t d = nd - 2; d-- > 0 && ok;) {
    if (n.shape[d] == 1) continue;
    if (bs < 0) {
      bs = n.strides[d];
      expect = bs * n.shape[d];
    } else if (n.strides[d] == expect || (bs == 0 && n.strides[d] == 0)) {
      expect = n.strides[d] * n.shape[d];
    } else {
      ok = false;
    }
  }
  m.batch_stride = bs < 0 ? 0 : bs;
  if (ok) {
    m.ptr = n.raw();
    m.untouched = untouched(n);
    return m;
  }
  m.hold = detail::allocate(std::max<size_t>(1, n.size() * itemsize(n.dtype)), n.device);
  auto s = make_space<2>(n.shape, {contiguous_strides(n.shape), n.strides});
  cast(n.dtype, n.raw(), s.walks[1], n.dtype, m.hold->ptr, s.walks[0], s.space);
  m.ptr = m.hold->ptr;
  m.col = false;
  m.ld = cols;
  m.batch_stride = batch > 1 ? rows * cols : 0;
  return m;
}

Mat transposed(Mat m) {
  m.col = !m.col;
  return m;
}

namespace {

cudaDataType_t cuda_type(DType t) {
  switch (t) {
    case DType::f32:
      return CUDA_R_32F;
    case DType::f64:
      return CUDA_R_64F;
    case DType::f16:
      return CUDA_R_16F;
    case DType::bf16:
      return CUDA_R_16BF;
    default:
      throw Error(std::string("matmul: no CUDA GEMM for ") + dtype_name(t));
  }
}

void lt_check(cublasStatus_t s, const char* what) {
  if (s != CUBLAS_STATUS_SUCCESS)
    throw Error(std::string("cuBLASLt: ") + what + " failed (status " + std::to_string(s) + ")");
}

int alignment(const void* p) {
  auto a = reinterpret_cast<uintptr_t>(p);
  int k = 1;
  while (k < 256 && (a % (2 * k)) == 0) k *= 2;
  return k;
}

/// The algorithm cuBLASLt's heuristic picks, cached per problem (the query costs more than a
/// small GEMM).
using AlgoKey = std::tuple<int, int64_t, int64_t, int64_t, int64_t, bool, bool, int64_t, int64_t,
                           int64_t, int64_t, int, int, int, int, bool, int, int>;

struct Layouts {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  ~Layouts() {
    if (op) lt().desc_destroy(op);
    if (a) lt().layout_destroy(a);
    if (b) lt().layout_destroy(b);
    if (c) lt().layout_destroy(c);
  }
};

void set_batch(cublasLtMatrixLayout_t l, int64_t batch, int64_t stride) {
  int32_t count = static_cast<int32_t>(batch);
  lt_check(lt().layout_set(l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count, sizeof count), "layout");
  lt_check(lt().layout_set(l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride, sizeof stride),
           "layout");
}

/// Adds the dense row `bias` [N] to each of out's `rows` rows of N, in place.
void add_row_bias(DType t, void* out, int64_t rows, int64_t N, const void* bias) {
  auto s = make_space<3>(Shape{rows, N}, {Strides{N, 1}, Strides{N, 1}, Strides{0, 1}});
  binary(static_cast<int>(detail::BinaryOp::add), t, t, out, s.walks[1], bias, s.walks[2], out,
         s.walks[0], s.space);
}

/// out = act(out) over n dense elements, in place.
void activate(DType t, void* out, int64_t n, detail::UnaryOp act) {
  auto s = make_space<2>(Shape{n}, {Strides{1}, Strides{1}});
  unary(static_cast<int>(act), t, out, s.walks[1], out, s.walks[0], s.space);
}

/// cuBLASLt's epilogue for a bias and an activation (0: none; -1: one it does not have). Its GELU
/// is the tanh approximation, gelu_tanh's formula.
int lt_epilogue(bool bias, std::optional<detail::UnaryOp> act) {
  if (!act) return bias ? CUBLASLT_EPILOGUE_BIAS : 0;
  if (*act == detail::UnaryOp::relu)
    return bias ? CUBLASLT_EPILOGUE_RELU_BIAS : CUBLASLT_EPILOGUE_RELU;
  if (*act == detail::UnaryOp::gelu_tanh)
    return bias ? CUBLASLT_EPILOGUE_GELU_BIAS : CUBLASLT_EPILOGUE_GELU;
  return -1;
}

}  // namespace

void gemm(DType t, int64_t M, int64_t N, int64_t K, int64_t batch, const Mat& A, const Mat& B,
          void* out, double alpha, double beta, DType out_t, const void* c, const void* bias,
          std::optional<detail::UnaryOp> act) {
  Context& ctx = active();
  const bool f64 = t == DType::f64;
  if (out_t == DType::boolean) out_t = t;  // "same as the operands"
  // A few rows against a row-major weight (B = Wᵀ): the bandwidth-bound kernel.
  if (batch == 1 && out_t == t && !A.col && B.col && (!c || beta == 0) &&
      gemv(t, M, N, K, A.ptr, A.ld, B.ptr, B.ld, out, static_cast<float>(alpha),
           static_cast<float>(beta), bias, 0, B.untouched)) {
    if (act) activate(t, out, M * N, *act);
    return;
  }
  // cuBLASLt's epilogue adds the bias and applies the activation before D is rounded: one pass
  // over out and one rounding fewer for each. Only in the plain form (the batch stride of the
  // bias and a C read alongside it are not needed here).
  const int epilogue_kind = lt_epilogue(bias != nullptr, act);
  const bool epilogue =
      epilogue_kind > 0 && batch == 1 && beta == 0 && !f64 && (!bias || alignment(bias) >= 16);
  const int al_a = alignment(B.ptr), al_b = alignment(A.ptr), al_c = alignment(out);
  const AlgoKey key{static_cast<int>(t),
                    M,
                    N,
                    K,
                    batch,
                    A.col,
                    B.col,
                    A.ld,
                    B.ld,
                    A.batch_stride,
                    B.batch_stride,
                    ctx.device,
                    al_a,
                    al_b,
                    al_c,
                    beta != 0,
                    static_cast<int>(out_t),
                    epilogue ? epilogue_kind : 0};
  // Descriptors and the heuristic's choice per problem: building them costs more than a small
  // GEMM (a decoding step runs ~170), and cuBLASLt only reads them, except for the bias
  // pointer, set per call under the plan's lock.
  struct Plan {
    Layouts L;
    cublasLtMatmulAlgo_t algo;
    bool found = true;  // false: no algorithm with the epilogue
    std::mutex bias_lock;
  };
  static std::mutex mutex;
  static std::map<AlgoKey, std::unique_ptr<Plan>> cache;
  Plan* plan = nullptr;
  {
    std::lock_guard lock(mutex);
    auto it = cache.find(key);
    if (it != cache.end()) plan = it->second.get();
  }
  if (!plan) {
    auto p = std::make_unique<Plan>();
    Layouts& L = p->L;
    cudaDataType_t dt = cuda_type(t);
    // Column-major view: outᵀ (N×M) = Bᵀ (N×K) · Aᵀ (K×M). A row-major operand is its own
    // transpose in column-major terms, so it needs no transposition flag.
    cublasOperation_t opB = B.col ? CUBLAS_OP_T : CUBLAS_OP_N;
    cublasOperation_t opA = A.col ? CUBLAS_OP_T : CUBLAS_OP_N;
    lt_check(lt().desc_create(&L.op, f64 ? CUBLAS_COMPUTE_64F : CUBLAS_COMPUTE_32F,
                              f64 ? CUDA_R_64F : CUDA_R_32F),
             "descriptor");
    lt_check(lt().desc_set(L.op, CUBLASLT_MATMUL_DESC_TRANSA, &opB, sizeof opB), "descriptor");
    lt_check(lt().desc_set(L.op, CUBLASLT_MATMUL_DESC_TRANSB, &opA, sizeof opA), "descriptor");
    if (epilogue) {
      // In the column-major view outᵀ has N rows, so the per-row vector is our per-column bias.
      const auto e = static_cast<cublasLtEpilogue_t>(epilogue_kind);
      lt_check(lt().desc_set(L.op, CUBLASLT_MATMUL_DESC_EPILOGUE, &e, sizeof e), "descriptor");
      if (bias)
        lt_check(lt().desc_set(L.op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias),
                 "descriptor");
    }
    // First operand (ours B): N×K as stored when not transposed, K×N when it is.
    lt_check(
        lt().layout_create(&L.a, dt, opB == CUBLAS_OP_N ? N : K, opB == CUBLAS_OP_N ? K : N, B.ld),
        "layout");
    lt_check(
        lt().layout_create(&L.b, dt, opA == CUBLAS_OP_N ? K : M, opA == CUBLAS_OP_N ? M : K, A.ld),
        "layout");
    lt_check(lt().layout_create(&L.c, cuda_type(out_t), N, M, N), "layout");
    if (batch > 1) {
      set_batch(L.a, batch, B.batch_stride);
      set_batch(L.b, batch, A.batch_stride);
      set_batch(L.c, batch, M * N);
    }
    cublasLtMatmulPreference_t pref;
    lt_check(lt().pref_create(&pref), "preference");
    uint64_t ws = ctx.workspace_bytes;
    uint32_t a1 = al_a, a2 = al_b, a3 = al_c;
    lt().pref_set(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws);
    lt().pref_set(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &a1, sizeof a1);
    lt().pref_set(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &a2, sizeof a2);
    lt().pref_set(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &a3, sizeof a3);
    lt().pref_set(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &a3, sizeof a3);
    cublasLtMatmulHeuristicResult_t res{};
    int n = 0;
    cublasStatus_t st = lt().heuristic(ctx.lt, L.op, L.a, L.b, L.c, L.c, pref, 1, &res, &n);
    lt().pref_destroy(pref);
    if (epilogue && (st != CUBLAS_STATUS_SUCCESS || n == 0))
      p->found = false;
    else if (st != CUBLAS_STATUS_SUCCESS || n == 0)
      throw Error("matmul: cuBLASLt has no algorithm for " + std::string(dtype_name(t)) + " [" +
                  std::to_string(M) + "x" + std::to_string(K) + "] x [" + std::to_string(K) + "x" +
                  std::to_string(N) + "]");
    p->algo = res.algo;
    std::lock_guard lock(mutex);
    plan = cache.emplace(key, std::move(p)).first->second.get();
  }
  if ((bias || act) && !(epilogue && plan->found)) {
    gemm(t, M, N, K, batch, A, B, out, alpha, beta, out_t, c);
    if (bias) add_row_bias(out_t, out, batch * M, N, bias);
    if (act) activate(out_t, out, batch * M * N, *act);
    return;
  }
  float af = static_cast<float>(alpha), bf = static_cast<float>(beta);
  const void* ap = f64 ? static_cast<const void*>(&alpha) : &af;
  const void* bp = f64 ? static_cast<const void*>(&beta) : &bf;
  Plan& P = *plan;
  std::unique_lock<std::mutex> hold;
  if (epilogue && bias) {
    hold = std::unique_lock(P.bias_lock);
    lt_check(lt().desc_set(P.L.op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias),
             "descriptor");
  }
  lt_check(
      lt().matmul(ctx.lt, P.L.op, ap, B.ptr, P.L.a, A.ptr, P.L.b, bp, c ? c : out, P.L.c, out,
                  P.L.c, &P.algo, active_lane().workspace, ctx.workspace_bytes, launch_stream()),
      "matmul");
}

}  // namespace wick::cuda

namespace wick::detail {
using namespace cuda;

void Matmul::eval_cuda(std::span<Node* const> in, Node& out) {
  const Node& a = *in[0];
  const Node& b = *in[1];
  on(out);
  alloc_output(out);
  if (out.size() == 0) return;
  size_t nd = out.shape.size();
  if (nd < 2 || a.shape.size() != nd || b.shape.size() != nd)
    throw Error("matmul: kernel expects operands broadcast to the output's rank");
  int64_t M = out.shape[nd - 2], N = out.shape[nd - 1], K = a.shape[nd - 1];
  int64_t batch = out.size() / (M * N);
  if (K == 0) {
    fill(out.raw(), out.size(), out.dtype, 0.0);
    return;
  }
  Mat A = as_mat(a, M, K, batch), B = as_mat(b, K, N, batch);
  if (in.size() < 3) {
    gemm(out.dtype, M, N, K, batch, A, B, out.raw(), 1.0, 0.0, DType::boolean, nullptr, nullptr,
         act);
    return;
  }
  // A bias [N] or an addend of out's shape, fused by compile: in the GEMV's epilogue; else the
  // addend is cuBLASLt's C (beta 1), and a bias goes to its epilogue.
  std::shared_ptr<Storage> hadd;
  const void* add = dense(*in[2], hadd);
  const bool bias = in[2]->shape != out.shape;
  if (batch == 1 && !A.col && B.col &&
      gemv(out.dtype, M, N, K, A.ptr, A.ld, B.ptr, B.ld, out.raw(), 1.0f, 0.0f, add, bias ? 0 : N,
           B.untouched)) {
    if (act) activate(out.dtype, out.raw(), out.size(), *act);
    return;
  }
  if (bias) {
    gemm(out.dtype, M, N, K, batch, A, B, out.raw(), 1.0, 0.0, DType::boolean, nullptr, add, act);
    return;
  }
  gemm(out.dtype, M, N, K, batch, A, B, out.raw(), 1.0, 1.0, DType::boolean, add);
  if (act) activate(out.dtype, out.raw(), out.size(), *act);  // (compile fuses none over an addend)
}

void FusedLinear::eval_cuda(std::span<Node* const> in, Node& out) {
  on(out);
  const size_t w0 = first_weight(), G = widths.size();
  const Node& x = *in[0];
  const int64_t M = out.shape[0], K = in[w0]->shape[0];
  // One GEMV kernel when x's rows and each weight's rows are contiguous; otherwise the ops it
  // replaces, one by one.
  bool direct = x.strides[1] == 1 || K == 1;
  std::vector<std::shared_ptr<detail::Storage>> holds(G + 1);
  std::vector<GemvGroup> groups(G);
  size_t next_addend = w0 + G, next_lora = first_adapter();
  GemvFusion f;
  f.weights_untouched = true;
  for (size_t g = 0; g < G; ++g) {
    const Node& w = *in[w0 + g];
    direct = direct && (w.strides[0] == 1 || K == 1) && w.strides[1] >= K;
    f.weights_untouched = f.weights_untouched && untouched(w);
    groups[g] = {w.raw(), w.strides[1], widths[g], nullptr, 0};
    if (has_addend[g]) {
      const Node& a = *in[next_addend++];
      groups[g].add = dense(a, holds[g]);
      groups[g].add_ld = a.shape.size() == 1 ? 0 : widths[g];
    }
    if (lora_scale[g]) {
      // A [r, K] and B [N, r] with contiguous rows (adapter weights always are).
      const Node &la = *in[next_lora], &lb = *in[next_lora + 1];
      next_lora += 2;
      direct = direct && la.strides[1] == 1 && lb.strides[1] == 1;
      // B's rows are loaded with the weights', before the kernel waits (gemv.cu).
      f.weights_untouched = f.weights_untouched && untouched(lb);
      groups[g].lora = {la.raw(),      lb.raw(),      la.shape[0],
                        la.strides[0], lb.strides[0], static_cast<float>(*lora_scale[g])};
    }
  }
  f.gated = gated;
  if (norm) {
    f.gamma = dense(*in[1], holds[G]);
    f.eps = static_cast<float>(eps);
  }
  if (direct) alloc_output(out);
  if (direct && gemv_groups(out.dtype, M, K, x.raw(), M == 1 ? K : x.strides[0], groups, out.raw(), out.shape[1],
                            1.0f, 0.0f, f))
    return;
  detail::fused_linear_unfused(*this, in, out);
}

void LoraLinear::eval_cuda(std::span<Node* const> in, Node& out) {
  const Node& x = *in[0];
  const Node& w = *in[1];
  const Node& la = *in[2];
  const Node& lb = *in[3];
  on(out);
  alloc_output(out);
  if (out.size() == 0) return;
  int64_t n_in = w.shape[1], n_out = w.shape[0], r = la.shape[0];
  int64_t M = out.size() / n_out;
  // x as one [M, in] matrix: its leading axes must collapse to one row stride.
  Strides s;
  std::shared_ptr<Storage> hx;
  Mat X;
  if (reshape_strides(x, Shape{M, n_in}, s) && (s[1] == 1 || n_in == 1) &&
      (M == 1 || s[0] >= n_in)) {
    X.ptr = x.raw();
    X.ld = M == 1 ? n_in : s[0];
  } else {
    X.ptr = dense(x, hx);
    X.ld = n_in;
  }
  std::shared_ptr<Storage> hbias;
  const void* bias = has_bias ? dense(*in[4], hbias) : nullptr;
  // A few rows (decoding): one GEMV kernel reads x once for both W and A, and adds the adapter's
  // product to each output as it is written.
  const bool rows_contiguous = w.strides[1] == 1 && la.strides[1] == 1 && lb.strides[1] == 1;
  if (rows_contiguous && M <= kMaxGemvRows && r > 0) {
    GemvGroup g{w.raw(), w.strides[0], n_out, bias, 0};
    g.lora = {la.raw(), lb.raw(), r, la.strides[0], lb.strides[0], static_cast<float>(scale)};
    GemvFusion f;
    f.weights_untouched = untouched(w) && untouched(lb);  // W and B are read before the wait
    if (gemv_groups(out.dtype, M, n_in, X.ptr, X.ld, {&g, 1}, out.raw(), n_out, 1.0f, 0.0f, f))
      return;
  }
  Mat W = transposed(as_mat(w, n_out, n_in, 1));  // Wᵀ: [in, out]
  Mat A = transposed(as_mat(la, r, n_in, 1));     // Aᵀ: [in, r]
  Mat B = transposed(as_mat(lb, n_out, r, 1));    // Bᵀ: [r, out]
  // The bias joins the base product's epilogue; the adapter's product is added after it.
  gemm(out.dtype, M, n_out, n_in, 1, X, W, out.raw(), 1.0, 0.0, DType::boolean, nullptr, bias);
  if (r > 0) {
    auto tmp = detail::allocate(std::max<size_t>(1, M * r * itemsize(out.dtype)), out.device);
    gemm(out.dtype, M, r, n_in, 1, X, A, tmp->ptr, 1.0, 0.0);
    Mat Tm;
    Tm.ptr = tmp->ptr;
    Tm.ld = r;
    gemm(out.dtype, M, n_out, r, 1, Tm, B, out.raw(), scale, 1.0);
  }
}

}  // namespace wick::detail
