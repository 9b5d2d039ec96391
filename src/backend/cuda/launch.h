#pragma once
// The CUDA kernels' launchers: plain C++ declarations shared by the .cu files that define them
// and the .cpp files that implement the primitives with them. Pointers are device pointers to
// an operand's first element; strides and shapes are in elements. Every launcher queues its
// kernel on the active device's stream (context.h) and returns at once.
#include <cstdint>
#include <span>

#include "core/adamw_rule.h"
#include "wick/dtype.h"

namespace wick::cuda {

constexpr int kMaxDims = 8;

/// An iteration space: a (collapsed) shape walked in row-major order.
struct Space {
  int nd = 0;
  int64_t shape[kMaxDims] = {};
  int64_t numel = 0;
};

/// One operand's element strides over a Space.
struct Walk {
  int64_t s[kMaxDims] = {};
};

/// Regroups an elementwise walk of k operands into packs of W elements, for the kernels that
/// move 16 bytes at a time, when every operand allows it: the innermost axis is a multiple of
/// W long and unit-stride, and a unit-stride operand's address and other strides are multiples
/// of W elements. Where `splat` is given, operands after the first (the output) may instead have
/// stride 0 along the innermost axis: one element repeated over a pack (splat[i] set). Packed
/// operands' strides become pack strides; splat ones keep element strides. Returns false, with
/// the arguments untouched, when the walk does not pack.
inline bool pack_walk(Space& sp, Walk* w, const void* const* ptr, const size_t* size, int k, int W, bool* splat) {
  const int in = sp.nd - 1;
  if (W <= 1 || sp.nd == 0 || sp.shape[in] % W != 0) return false;
  for (int i = 0; i < k; ++i) {
    if (splat && i > 0 && w[i].s[in] == 0) continue;
    if (w[i].s[in] != 1 || reinterpret_cast<uintptr_t>(ptr[i]) % (W * size[i]) != 0) return false;
    for (int d = 0; d < in; ++d)
      if (w[i].s[d] % W != 0) return false;
  }
  for (int i = 0; i < k; ++i) {
    const bool rep = splat && i > 0 && w[i].s[in] == 0;
    if (splat) splat[i] = rep;
    if (!rep)
      for (int d = 0; d < in; ++d) w[i].s[d] /= W;
  }
  sp.shape[in] /= W;
  sp.numel /= W;
  return true;
}

// ---- creation (creation.cu) ----
void fill(void* out, int64_t n, DType t, double value);
void arange(void* out, int64_t n, DType t, double start, double step);
/// PositionMask's f32 [T, S] at the position *position (device memory).
void position_mask(float* out, int64_t T, int64_t S, const int64_t* position, int64_t window);
/// Philox-4x32-10 samples identical to the CPU kernel's (counter j gives samples 2j, 2j+1).
void random(void* out, int64_t n, DType t, bool normal, uint64_t seed, uint64_t counter, double a,
            double b);

// ---- elementwise (elementwise.cu); `op` is a detail::UnaryOp / BinaryOp value ----
void unary(int op, DType t, const void* x, const Walk& xs, void* out, const Walk& os,
           const Space& sp);
/// Inputs of dtype in_t; the output has out_t (bool for comparisons).
void binary(int op, DType in_t, DType out_t, const void* a, const Walk& as, const void* b,
            const Walk& bs, void* out, const Walk& os, const Space& sp);
void where(const void* c, const Walk& cs, DType t, const void* a, const Walk& as, const void* b,
           const Walk& bs, void* out, const Walk& os, const Space& sp);
/// Contiguous byte ranges copied in one launch (a concatenation of many dense pieces, such as an
/// optimizer's flattened parameters, or a CUDA graph's inputs and outputs): count ≤ kCopyPieces.
constexpr int kCopyPieces = 96;
struct CopyPieces {
  const void* src[kCopyPieces];
  void* dst[kCopyPieces];
  int64_t bytes[kCopyPieces];
  int count = 0;
  /// Queues src → dst; launches the batch when it is full.
  void add(const void* from, void* to, int64_t n);
};
/// Launches what is queued and empties it.
void copy_pieces(CopyPieces& p);
/// Copies the 3 values of a kernel error flag to `host` (mapped pinned memory), in stream order.
void copy_error_flag(const int64_t* flag, int64_t* host);

/// Converting copy between any views (a plain copy when the dtypes agree).
void cast(DType from, const void* x, const Walk& xs, DType to, void* out, const Walk& os,
          const Space& sp);

// ---- fused elementwise chains (fused.cu) ----
constexpr int kMaxFusedInputs = 16;
constexpr int kMaxFusedInstrs = 40;
struct FusedInstr {
  uint8_t kind;  // detail::FusedElementwise::Kind
  uint8_t op;
  DType dtype;
  int16_t a, b, c;
};
struct FusedArgs {
  int n_in = 0, n_instr = 0;
  bool f64 = false;
  DType out_t = DType::f32;
  FusedInstr ins[kMaxFusedInstrs];
  DType in_t[kMaxFusedInputs];
  const void* in[kMaxFusedInputs];
  Walk in_s[kMaxFusedInputs];
};
void fused(const FusedArgs& f, void* out, const Space& sp);

// ---- reductions (reduce.cu); x viewed as [kept..., reduced...] ----
/// `op` is a detail::ReduceOp value; out is dense over `kept`.
void reduce(int op, DType t, const void* x, const Space& kept, const Walk& kept_s, const Space& red,
            const Walk& red_s, void* out);
void argreduce(bool is_max, DType t, const void* x, const Space& kept, const Walk& kept_s,
               int64_t n, int64_t stride, int64_t* out);
/// greedy_pick (see GreedyPick) over dense rows [rows, n] of x (row stride ld) into out [rows, 2]
/// f32, in one launch; `scratch` holds greedy_pick_scratch(rows, n) bytes of device memory.
void greedy_pick(DType t, const void* x, int64_t rows, int64_t n, int64_t ld, float* out, void* scratch);
size_t greedy_pick_scratch(int64_t rows, int64_t n);

// ---- rows (rows.cu): dense [rows, n] inputs and outputs ----
void softmax(DType t, const void* x, void* out, int64_t rows, int64_t n, bool log);
/// softmax(scale·x + mask); the mask (x's dtype) is walked over the rows' space plus its last
/// stride.
void scaled_masked_softmax(DType t, const void* x, void* out, int64_t rows, int64_t n, double scale,
                           const void* mask, const Space& lead, const Walk& mask_lead,
                           int64_t mask_inner);
/// w and b may be null; they are dense vectors of their own float dtypes.
/// dx of rms_norm over dense rows: x and out of dtype t, the cotangent g of gt, w (wt) may be null.
void rms_norm_grad(DType t, const void* x, DType gt, const void* g, void* out, int64_t rows, int64_t n,
                   double eps, const void* w, DType wt);
void rms_norm(DType t, const void* x, void* out, int64_t rows, int64_t n, double eps, const void* w,
              DType wt);
void layer_norm(DType t, const void* x, void* out, int64_t rows, int64_t n, double eps,
                const void* w, DType wt, const void* b, DType bt);
/// Where rope writes its rows: dense [lead, T, D] by default; with lead_stride and at_position,
/// row t of lead l goes to out + l·lead_stride + (position[0] + t)·D (a KV cache; positions
/// outside [0, limit) are reported through the error flag and nothing is written).
struct RopeDest {
  int64_t lead_stride = 0;  // 0: T·D
  bool at_position = false;
  int64_t limit = 0;
};
/// x dense [lead, T, D]; position of row t is offset + t (+ position[0] when given).
void rope(DType t, const void* x, void* out, int64_t lead, int64_t T, int64_t D,
          const float* inv_freq_host, int64_t offset, const int64_t* position, RopeDest dest = {});
/// rope over x [B, H, T, D] read through strides xs (elements; the last axis unit-stride) into
/// dense out. Returns false, launching nothing, where its 16-byte accesses do not fit.
bool rope_rows(DType t, const void* x, const int64_t (&xs)[3], void* out, int64_t B, int64_t H,
               int64_t T, int64_t D, const float* inv_freq_host, int64_t offset);
/// Per-row loss (out f32, or f64 for f64 logits; 0 where ignored); labels and g dense.
void cross_entropy(DType t, const void* logits, DType lt, const void* labels, void* out,
                   DType out_t, int64_t N, int64_t V, int64_t ignore_index, double smoothing);
void cross_entropy_grad(DType t, const void* logits, DType lt, const void* labels, const void* g,
                        DType gt, void* out, int64_t N, int64_t V, int64_t ignore_index,
                        double smoothing);

// ---- indexing (index.cu); indices i32/i64, negatives wrap, out-of-range ones are reported ----
/// x of any strides, shape xshape (nd dims); out dense [pre, n_idx, post].
void take(DType t, const void* x, const Space& xshape, const Walk& xs, int axis, DType it,
          const void* idx, int64_t n_idx, void* out);
/// out dense over sp; idx and x walked over sp (x's axis stride zeroed), ax_stride and n of x's
/// axis.
void take_along_axis(DType t, const void* x, const Walk& xs, int64_t ax_stride, int64_t n, DType it,
                     const void* idx, const Walk& is, void* out, const Space& sp);
/// g dense [pre, n_idx, post]; out dense [pre, n, post], zeroed and accumulated here.
void take_grad(DType t, const void* g, DType it, const void* idx, int64_t pre, int64_t n_idx,
               int64_t post, int64_t n, void* out);
/// g walked over sp; out dense with out_size elements (walked with os, the axis zeroed), zeroed
/// and accumulated here.
void take_along_axis_grad(DType t, const void* g, const Walk& gs, DType it, const void* idx,
                          const Walk& is, void* out, int64_t out_size, const Walk& os,
                          int64_t ax_stride, int64_t n, const Space& sp);
// ---- matrix-vector products (gemv.cu) ----
constexpr int64_t kMaxGemvRows = 8;
constexpr int kMaxGemvGroups = 3;
/// A LoRA adapter on one weight of gemv_groups: A [rank, K] (rows lda apart) and B [n, rank]
/// (rows ldb apart), dtype of the product; the weight's columns get scale·(x·Aᵀ)·Bᵀ added before
/// their one rounding, x·Aᵀ kept in f32 (as the CPU's lora_linear computes).
struct GemvLora {
  const void* a = nullptr;
  const void* b = nullptr;
  int64_t rank = 0, lda = 0, ldb = 0;
  float scale = 0.0f;
};
/// One weight of gemv_groups: n rows of w (ldw apart, dtype of the product), an optional
/// addend (add[m·add_ld + j]; add_ld 0 makes it a bias vector) and an optional adapter.
struct GemvGroup {
  const void* w;
  int64_t ldw, n;
  const void* add;
  int64_t add_ld;
  GemvLora lora{};
};
constexpr int64_t kMaxGemvLoraRank = 128;  // the adapters' ranks of one gemv_groups call, summed
// Every block reads the adapters' A [Σ rank, K] again (from L2): past this many bytes the
// separate products cost less (rank 64 on every projection of the 0.5B model, 128 rows of
// 896 for gate/up, decoded at 294 tok/s fused).
constexpr int64_t kMaxGemvLoraBytes = int64_t(80) << 10;
/// What gemv_groups folds in: with gamma (dtype t, [K]), x becomes rms_norm(x)·gamma before the
/// product; gated (two weights of one width: gate and up) writes silu(gate)·up [M, n] instead of
/// both products. Each is rounded to the dtype where the unfused ops would round.
struct GemvFusion {
  const void* gamma = nullptr;
  float eps = 0.0f;
  bool gated = false;
  // The weights (and adapters' B) may be read before the kernel waits for the kernels ahead of
  // it (no kernel of this launch unit wrote them, context.h): their first loads then overlap the
  // previous kernel.
  bool weights_untouched = false;
};
/// out[m, n0_i + j] = alpha·Σ_k x[m, k]·w_i[j, k] + beta·out[...] + add_i[m, j] for M ≤
/// kMaxGemvRows rows of x (ldx apart) and up to kMaxGemvGroups weights whose columns follow each
/// other in out (rows ldo apart), with the fusions of `f`; f32 accumulation. Returns false,
/// queuing nothing, when the operands do not suit it (dtype, 16-byte alignment, K or a leading
/// dimension not a multiple of 16 bytes, normalised rows over 48 KiB, adapters' ranks over
/// kMaxGemvLoraRank or their A over kMaxGemvLoraBytes).
bool gemv_groups(DType t, int64_t M, int64_t K, const void* x, int64_t ldx, std::span<const GemvGroup> groups,
                 void* out, int64_t ldo, float alpha, float beta, const GemvFusion& f);
/// gemv_groups over one weight, out dense [M, N].
bool gemv(DType t, int64_t M, int64_t N, int64_t K, const void* x, int64_t ldx, const void* w,
          int64_t ldw, void* out, float alpha, float beta, const void* add = nullptr, int64_t add_ld = 0,
          bool w_untouched = false);

// ---- optimizers (optim.cu) ----
/// One tensor of adamw: its dense parameter p (the launch's parameter dtype), gradient g (the
/// gradients' dtype) and f32 moments m and v, n elements each; decays: whether 1 − lr·wd applies.
/// Its results go to offset `at` of each of out's three rows.
struct AdamWTensor {
  const void* p;
  const void* g;
  const float* m;
  const float* v;
  int64_t n, at;
  bool decays;
};
/// AdamWStep's update (core/adamw_rule.h) of every tensor into out [3, total] (new parameters,
/// first and second moments, in f32): c's β and eps from the host, its step scalars read from
/// `scalars` (three f32 on the device). Parameters and gradients are f32, bf16 or f16 (another
/// dtype throws).
void adamw(DType pt, DType gt, std::span<const AdamWTensor> tensors, const float* const scalars[3],
           const detail::AdamWConstants& c, float* out, int64_t total);

/// Copies u (walked over sp) into out at element offset position[0]·ax_stride (walked with os);
/// position is read on the device and must keep [position, position + rows) inside `limit`.
void write_at(DType t, const void* u, const Walk& us, void* out, const Walk& os, const Space& sp,
              const int64_t* position, int64_t ax_stride, int64_t rows, int64_t limit);

/// Attention probabilities from scaled f32 scores [B·Hq·T, S] (rows in (b, h, t) order): adds the
/// f32 mask (strides ms over [B, Hq, T, S], may be null), hides keys past t + S − T when causal,
/// and writes softmax rows in dtype pt (zeros for a fully masked row).
void attention_softmax(const float* scores, void* p, DType pt, int64_t B, int64_t Hq, int64_t T,
                       int64_t S, bool causal, const float* mask, const int64_t* ms);

/// ds = p·(dp − Σ dp·p) over dense f32 rows of n.
void softmax_grad(DType t, const void* p, const void* dp, void* out, int64_t rows, int64_t n, float scale);

// ---- attention (attention.cu) ----
struct AttentionArgs {
  const void *q, *k, *v, *mask;  // mask: f32, may be null
  int64_t qs[4], ks[4], vs[4], ms[4];
  int64_t B, Hq, Hkv, T, S, D;
  float scale;
  bool causal;
  DType t;
  void* out;  // dense [B, Hq, T, D]
  // With rope_half = D/2 > 0, q is rotated as it is read (rope_freq, at rope_position[0] + t).
  const int64_t* rope_position = nullptr;
  bool position_untouched = false;  // no kernel of this launch unit wrote it (context.h)
  int64_t rope_half = 0;
  float rope_freq[128];
  // Blocks per query row over its keys (flash-decoding: a decoding step has only B·Hq rows, too
  // few for the GPU over a long cache); with split > 1, partials holds [rows, split, D + 2] f32
  // (each block's max, sum and unnormalised output) for the merge kernel.
  int split = 1;
  float* partials = nullptr;
  // A decoding step's cached attention (T = 1, rope_half set): the step's key and value rows
  // [B, Hkv, 1, D] (strides kns, vns) are written at rope_position[0] into k and v, dense
  // caches, the key rotated; the kernel takes that position's rows from them, not from the
  // caches. A position outside [0, S) is reported through err.
  const void *k_new = nullptr, *v_new = nullptr;
  int64_t kns[4], vns[4];
  int64_t* err = nullptr;
  bool cache_untouched = false;  // no kernel of this launch unit wrote k or v (context.h)
  // >= 0 without a mask: keys are hidden by rope_position[0] as PositionMask(position_window)
  // would hide them (a decoding step's mask, folded in by compile).
  int64_t position_window = -1;
};
void attention(const AttentionArgs& a);
/// Blocks per query row for attention() (its `split`), for the kernel that takes `a`.
int attention_split(const AttentionArgs& a);
/// The same on the tensor cores for many query rows (flash_attention.cu): half types, D of 64
/// or 128, no fused RoPE, unit-stride rows (an f32 mask may be given). Returns false, launching
/// nothing, for arguments it does not take (or with WICK_FLASH=0). With `lse`, each query row's
/// log-sum-exp [B, Hq, T] goes there too, as the gradient's stats pass would compute it (bit for
/// bit).
bool flash_attention(const AttentionArgs& a, float* lse = nullptr);
/// Whether flash_attention takes `a`.
bool flash_attention_fits(const AttentionArgs& a);
/// What a forward's log-sum-exp rows depend on besides q and k (shapes, scale, causal): the
/// gradient uses the rows its forward left beside O only when these agree.
uint64_t flash_stats_tag(const AttentionArgs& a);
/// The attention gradient on the tensor cores: a stats pass (each query row's log-sum-exp,
/// skipped when lse_ready: the forward wrote them), dvec = rowsum(dO∘O), then one kernel over key
/// tiles and query heads that adds dQ, dK and dV in f32 (zeroed here) with atomics, so their last
/// bits depend on the order blocks finish. The buffers are the caller's: lse and dvec [B, Hq, T];
/// dq [B, Hq, T, D], dk and dv [B, Hkv, S, D] dense. O and dO have unit-stride rows (strides os,
/// gs).
struct FlashGradArgs {
  AttentionArgs a;
  const void *o, *g;
  int64_t os[4], gs[4];
  float *lse, *dvec, *dq, *dk, *dv;
  bool lse_ready;
};
/// Whether the tensor-core kernels run on `device` (compute capability 8.0 on, WICK_FLASH not 0).
bool flash_available(int device);
/// Whether flash_attention_grad takes these arguments (head dim 64 or 128, no mask).
bool flash_attention_grad_fits(const FlashGradArgs& f);
void flash_attention_grad(FlashGradArgs f);

}  // namespace wick::cuda
