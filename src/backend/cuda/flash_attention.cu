// Scaled dot-product attention over many query rows (prefill, training's forward) on the tensor
// cores, flash-attention style: a block takes 64 query rows of one head and walks the keys in
// tiles of 64, keeping the scores, the online softmax and the output in registers. The [T, S]
// scores are never written, where the GEMM path writes them in f32, reads them back for the
// softmax and writes the probabilities in the half type.
#include <cstdlib>
#include <cstring>
#include <string>

#include "backend/cuda/common.cuh"

namespace wick::cuda {
namespace {

constexpr int kRows = 64;   // query rows a block (16 a warp)
constexpr int kKeys = 64;   // keys a tile
constexpr int kWarps = kRows / 16;

/// Two values as the half type's packed pair (the low half first), as an mma operand register.
template <class T>
__device__ __forceinline__ uint32_t pack2(float lo, float hi) {
  if constexpr (std::is_same_v<T, bf16_t>) {
    __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<uint32_t*>(&v);
  } else {
    __half2 v = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<uint32_t*>(&v);
  }
}

/// c += a·b for one 16×8×16 tile (a row-major 16×16, b 16×8 given column by column), f32
/// accumulation. Register layouts are PTX's for mma.m16n8k16: with g = lane / 4, t = lane % 4,
/// a holds rows g and g + 8 at columns 2t, 2t + 1 (and + 8); b column g at rows 2t, 2t + 1 (and
/// + 8); c rows g and g + 8 at columns 2t, 2t + 1.
template <class T>
__device__ __forceinline__ void mma16816(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  if constexpr (std::is_same_v<T, bf16_t>)
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  else
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#endif
}

/// The B fragment (16 rows k × 8 columns n, from row k0 and column n0) of a row-major tile x[k][n]
/// with row stride ld, read transposed by ldmatrix: a tile stored as it is loaded serves both
/// as an A operand (rows) and as a B operand (columns), with no transposed copy.
template <class T>
__device__ __forceinline__ void b_frag_t(uint32_t& b0, uint32_t& b1, const T* x, int ld, int k0, int n0, int lane) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  const auto addr = static_cast<uint32_t>(__cvta_generic_to_shared(x + (k0 + (lane & 15)) * ld + n0));
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0, %1}, [%2];" : "=r"(b0), "=r"(b1) : "r"(addr));
#endif
}

/// Starts a copy of 16 (or 4) bytes from global to shared memory that completes at
/// wait_copies() (cp.async); with `fill` false the destination gets zeros and src is not read.
template <int N>
__device__ __forceinline__ void copy_async(void* dst, const void* src, bool fill) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  const unsigned d = static_cast<unsigned>(__cvta_generic_to_shared(dst));
  if constexpr (N == 16)
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(d), "l"(src),
                 "r"(fill ? 16 : 0)
                 : "memory");
  else
    asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;" ::"r"(d), "l"(src),
                 "r"(fill ? 4 : 0)
                 : "memory");
#else
  if (N == 16)
    *static_cast<uint4*>(dst) = fill ? *static_cast<const uint4*>(src) : uint4{0, 0, 0, 0};
  else
    *static_cast<uint32_t*>(dst) = fill ? *static_cast<const uint32_t*>(src) : 0u;
#endif
}

/// Waits for this thread's copy_async()s (the others' need a __syncthreads after).
__device__ __forceinline__ void wait_copies() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.wait_all;" ::: "memory");
#endif
}

/// Closes a group of this thread's copy_async()s (possibly empty), for wait_groups().
__device__ __forceinline__ void commit_copies() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.commit_group;" ::: "memory");
#endif
}

/// Waits until at most N of this thread's committed groups, the latest ones, are in flight.
template <int N>
__device__ __forceinline__ void wait_groups() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.wait_group %0;" ::"n"(N) : "memory");
#endif
}

/// Starts copying rows [r0, r0 + R) of a strided [rows, D] matrix (zeros past `limit`) into a
/// row tile, 16 bytes at a time.
template <class T, int D, int R>
__device__ __forceinline__ void load_tile_async(const T* x, int64_t stride, int64_t r0,
                                                int64_t limit, T* rows) {
  constexpr int row = D + 8;
  for (int i = threadIdx.x; i < R * (D / 8); i += 32 * kWarps) {
    const int r = i / (D / 8), c = (i % (D / 8)) * 8;
    const bool in = r0 + r < limit;
    copy_async<16>(rows + r * row + c, x + (in ? r0 + r : 0) * stride + c, in);
  }
}

/// Grid: (query tiles, B·Hq). Rows of q, k and v are unit-stride (AttentionArgs strides in
/// elements); out is dense [B, Hq, T, D]. A mask over keys (f32, the same for every query row:
/// padding) is added to the scores (in natural-log units, so scaled by log2 e here); a row it
/// hides wholly is 0, as a causal row with no key. Each row's log-sum-exp (log2 units, +inf for a
/// row that sees no key) goes to lse where it is given. With kStats (the gradient's first pass)
/// nothing is multiplied by v and only lse is written.
///
/// Causal grids run the last query tiles, which see the most keys, first, so the short ones
/// fill the last wave. The next key tile is copied (cp.async) while p·v of this one is
/// computed, and the next value tile while the next scores are; only tiles that cross S or the
/// causal diagonal test each score against the mask.
template <class T, int D, bool kStats, bool kMask = false>
__device__ __forceinline__ void flash_forward(const AttentionArgs& a, float* lse) {
  // Padded rows: the fragment loads of 8 rows × 4 lanes then hit 32 different banks.
  __shared__ alignas(16) T ks[kKeys][D + 8];   // the key tile, a key a row
  __shared__ alignas(16) T vs[kKeys][D + 8];   // the value tile, a key a row
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, t4 = lane & 3;
  const int64_t bh = blockIdx.y, b = bh / a.Hq, h = bh % a.Hq, hk = h / (a.Hq / a.Hkv);
  const int64_t tile = a.causal ? gridDim.x - 1 - blockIdx.x : blockIdx.x;
  const int64_t row0 = tile * kRows + warp * 16;  // this warp's first query row
  const T* q = static_cast<const T*>(a.q) + b * a.qs[0] + h * a.qs[1];
  const T* k = static_cast<const T*>(a.k) + b * a.ks[0] + hk * a.ks[1];
  const T* v = static_cast<const T*>(a.v) + b * a.vs[0] + hk * a.vs[1];
  const int64_t shift = a.S - a.T;  // query row t sees keys up to t + shift when causal
  // With kMask, a.mask: an additive f32 mask, the same for every query row (a.ms[2] is 0), so
  // a key tile's 64 values come to shared memory with its keys.
  __shared__ float mk[kMask ? kKeys : 1];
  const float* mask =
      kMask ? static_cast<const float*>(a.mask) + b * a.ms[0] + h * a.ms[1] : nullptr;
  auto load_keys = [&](int64_t key0) {
    load_tile_async<T, D, kKeys>(k, a.ks[2], key0, a.S, &ks[0][0]);
    if constexpr (kMask)
      if (threadIdx.x < kKeys) {
        const bool in = key0 + threadIdx.x < a.S;
        copy_async<4>(&mk[threadIdx.x], mask + (in ? key0 + threadIdx.x : 0) * a.ms[3], in);
      }
  };

  // The warp's 16 query rows as A fragments, one per 16 dimensions.
  uint32_t qa[D / 16][4];
  {
    const int64_t r_lo = row0 + g, r_hi = row0 + g + 8;
#pragma unroll
    for (int kc = 0; kc < D / 16; ++kc) {
      const int c = kc * 16 + 2 * t4;
      auto at = [&](int64_t r, int col) {
        return r < a.T ? *reinterpret_cast<const uint32_t*>(q + r * a.qs[2] + col) : 0u;
      };
      qa[kc][0] = at(r_lo, c);
      qa[kc][1] = at(r_hi, c);
      qa[kc][2] = at(r_lo, c + 8);
      qa[kc][3] = at(r_hi, c + 8);
    }
  }

  float o[D / 8][4] = {};
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};  // rows g and g + 8, log2 domain
  const float scale = a.scale * 1.4426950408889634f;         // exp(x) = exp2(x·log2 e)
  const int64_t block_last = tile * kRows + kRows - 1;
  const int64_t key_end = a.causal && block_last + shift + 1 < a.S ? block_last + shift + 1 : a.S;

  // Copy groups in flight at the top of each pass: this key tile's, then this value tile's
  // (empty with kStats). Keys past S are zeros.
  if (key_end > 0) load_keys(0);
  commit_copies();
  if (!kStats && key_end > 0) load_tile_async<T, D, kKeys>(v, a.vs[2], 0, a.S, &vs[0][0]);
  commit_copies();
  for (int64_t key0 = 0; key0 < key_end; key0 += kKeys) {
    const bool more = key0 + kKeys < key_end;
    wait_groups<1>();
    __syncthreads();  // the key tile has landed

    // Scores of the warp's 16 rows against the tile's 64 keys: 8 fragments of 8 keys.
    float s[kKeys / 8][4] = {};
#pragma unroll
    for (int kc = 0; kc < D / 16; ++kc)
#pragma unroll
      for (int nt = 0; nt < kKeys / 8; ++nt) {
        const T* kr = &ks[nt * 8 + g][kc * 16 + 2 * t4];
        mma16816<T>(s[nt], qa[kc], *reinterpret_cast<const uint32_t*>(kr), *reinterpret_cast<const uint32_t*>(kr + 8));
      }

    // Mask (keys past S or past the causal limit), then the online softmax per row.
    float top[2] = {-INFINITY, -INFINITY};
    const bool whole = key0 + kKeys <= a.S && (!a.causal || key0 + kKeys - 1 <= row0 + shift);
#pragma unroll
    for (int nt = 0; nt < kKeys / 8; ++nt)
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const int key = nt * 8 + 2 * t4 + (j & 1), row = g + (j >> 1) * 8;  // from key0, row0
        const bool seen =
            whole || (key0 + key < a.S && (!a.causal || key0 + key <= row0 + row + shift));
        if constexpr (kMask)
          s[nt][j] = seen ? s[nt][j] * scale + mk[key] * 1.4426950408889634f : -INFINITY;
        else
          s[nt][j] = seen ? s[nt][j] * scale : -INFINITY;
        top[j >> 1] = fmaxf(top[j >> 1], s[nt][j]);
      }
    float alpha[2];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      top[r] = fmaxf(top[r], __shfl_xor_sync(0xffffffffu, top[r], 1));
      top[r] = fmaxf(top[r], __shfl_xor_sync(0xffffffffu, top[r], 2));
      const float next = fmaxf(m[r], top[r]);
      alpha[r] = next == -INFINITY ? 1.0f : exp2f(m[r] - next);
      m[r] = next;
      l[r] *= alpha[r];
    }
#pragma unroll
    for (int nt = 0; nt < kKeys / 8; ++nt)
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const float mr = m[j >> 1];
        s[nt][j] = mr == -INFINITY ? 0.0f : exp2f(s[nt][j] - mr);
        l[j >> 1] += s[nt][j];
      }
#pragma unroll
    for (int dt = 0; dt < D / 8; ++dt) {
      o[dt][0] *= alpha[0];
      o[dt][1] *= alpha[0];
      o[dt][2] *= alpha[1];
      o[dt][3] *= alpha[1];
    }

    wait_groups<0>();
    __syncthreads();  // the value tile has landed, and every warp is done with the key tile
    if (more) load_keys(key0 + kKeys);
    commit_copies();
    if constexpr (!kStats) {
      // o += p·v: the score fragments of 16 keys are the A fragment (rounded to T, as the GEMM
      // path rounds its probabilities).
#pragma unroll
      for (int kc = 0; kc < kKeys / 16; ++kc) {
        const uint32_t pa[4] = {pack2<T>(s[2 * kc][0], s[2 * kc][1]),
                                pack2<T>(s[2 * kc][2], s[2 * kc][3]),
                                pack2<T>(s[2 * kc + 1][0], s[2 * kc + 1][1]),
                                pack2<T>(s[2 * kc + 1][2], s[2 * kc + 1][3])};
#pragma unroll
        for (int dt = 0; dt < D / 8; ++dt) {
          uint32_t b0, b1;
          b_frag_t(b0, b1, &vs[0][0], D + 8, kc * 16, dt * 8, lane);
          mma16816<T>(o[dt], pa, b0, b1);
        }
      }
      __syncthreads();  // every warp is done with the value tile
      if (more) load_tile_async<T, D, kKeys>(v, a.vs[2], key0 + kKeys, a.S, &vs[0][0]);
    }
    commit_copies();
  }

  // Each lane holds part of its rows' sums: the four lanes of a row add theirs.
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    l[r] += __shfl_xor_sync(0xffffffffu, l[r], 1);
    l[r] += __shfl_xor_sync(0xffffffffu, l[r], 2);
  }
  if (lse && t4 == 0)
    for (int r = 0; r < 2; ++r) {
      const int64_t row = row0 + g + r * 8;
      if (row < a.T) lse[bh * a.T + row] = l[r] > 0.0f ? m[r] + log2f(l[r]) : INFINITY;
    }
  if constexpr (kStats) return;
  T* out = static_cast<T*>(a.out) + (b * a.Hq + h) * a.T * D;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int64_t row = row0 + g + r * 8;
    if (row >= a.T) continue;
    const float inv = l[r] > 0.0f ? 1.0f / l[r] : 0.0f;  // a row that sees no key is 0
#pragma unroll
    for (int dt = 0; dt < D / 8; ++dt)
      *reinterpret_cast<uint32_t*>(out + row * D + dt * 8 + 2 * t4) = pack2<T>(o[dt][2 * r] * inv, o[dt][2 * r + 1] * inv);
  }
}

// At head dim 64, four blocks an SM (128 registers a lane, which the copy pipeline would pass),
// three with a mask.
template <class T, int D, bool kMask>
__global__ void __launch_bounds__(32 * kWarps, D == 64 ? (kMask ? 3 : 4) : 1)
    flash_attention_kernel(const __grid_constant__ AttentionArgs a, float* lse) {
  flash_forward<T, D, false, kMask>(a, lse);
}

template <class T, int D>
__global__ void __launch_bounds__(32 * kWarps) flash_stats_kernel(const __grid_constant__ AttentionArgs a, float* lse) {
  flash_forward<T, D, true>(a, lse);
}

/// dvec[row] = Σ_d dO[row, d]·O[row, d] in f32 over the rows of [B, Hq, T, D] (strided, 16-byte
/// aligned): D / 8 lanes a row, 16 bytes of each a lane (a warp per row left most lanes idle).
template <class T, int D>
__global__ void flash_dvec_kernel(const __grid_constant__ FlashGradArgs f, float* dvec) {
  constexpr int kPer = D / 8;  // lanes a row
  static_assert(32 % kPer == 0);
  const AttentionArgs& a = f.a;
  const int lane = threadIdx.x & 31, sub = lane % kPer;
  const int64_t rows = a.B * a.Hq * a.T, stride = int64_t(gridDim.x) * blockDim.x / kPer;
  // w, the warp's first row, is the same for all its lanes, so every lane takes the shuffles.
  for (int64_t w = (blockIdx.x * int64_t(blockDim.x) + threadIdx.x - lane) / kPer; w < rows;
       w += stride) {
    const int64_t r = w + lane / kPer;
    float acc = 0.0f;
    if (r < rows) {
      const int64_t t = r % a.T, h = (r / a.T) % a.Hq, b = r / (a.T * a.Hq);
      const T* o = static_cast<const T*>(f.o) + b * f.os[0] + h * f.os[1] + t * f.os[2] + sub * 8;
      const T* g = static_cast<const T*>(f.g) + b * f.gs[0] + h * f.gs[1] + t * f.gs[2] + sub * 8;
      const uint4 ov = *reinterpret_cast<const uint4*>(o), gv = *reinterpret_cast<const uint4*>(g);
      const T* oe = reinterpret_cast<const T*>(&ov);
      const T* ge = reinterpret_cast<const T*>(&gv);
#pragma unroll
      for (int i = 0; i < 8; ++i) acc += float(oe[i]) * float(ge[i]);
    }
#pragma unroll
    for (int m = kPer / 2; m > 0; m /= 2) acc += __shfl_xor_sync(0xffffffffu, acc, m);
    if (r < rows && sub == 0) dvec[r] = acc;
  }
}

/// Shared memory of the gradient kernel, in elements of T: the key and value tiles, two buffers
/// of the query and output-gradient tiles of QR rows (a row each; the next query tile is copied
/// into one while the other is used), and dS [query row][key].
template <int D, int QR>
struct GradTiles {
  static constexpr int row = D + 8, col = kKeys + 8;
  static constexpr int ks = 0, vs = ks + kKeys * row, qs = vs + kKeys * row, gs = qs + 2 * QR * row,
                       ds = gs + 2 * QR * row, end = ds + QR * col;
};

/// One A fragment (16 rows × 16 columns from column c) of a row-major tile with row stride ld.
template <class T>
__device__ __forceinline__ void a_frag(uint32_t (&f)[4], const T* tile, int ld, int r, int c, int g, int t4) {
  f[0] = *reinterpret_cast<const uint32_t*>(tile + (r + g) * ld + c + 2 * t4);
  f[1] = *reinterpret_cast<const uint32_t*>(tile + (r + g + 8) * ld + c + 2 * t4);
  f[2] = *reinterpret_cast<const uint32_t*>(tile + (r + g) * ld + c + 2 * t4 + 8);
  f[3] = *reinterpret_cast<const uint32_t*>(tile + (r + g + 8) * ld + c + 2 * t4 + 8);
}

/// b += f(x) over the 16×8 fragments of a warp's C tile laid out as the next mma's A operand:
/// fragment pair (2k, 2k + 1) of 8 columns each is A fragment k.
template <class T, int N>
__device__ __forceinline__ void c_to_a(uint32_t (&f)[4], const float (&c)[N][4], int k) {
  f[0] = pack2<T>(c[2 * k][0], c[2 * k][1]);
  f[1] = pack2<T>(c[2 * k][2], c[2 * k][3]);
  f[2] = pack2<T>(c[2 * k + 1][0], c[2 * k + 1][1]);
  f[3] = pack2<T>(c[2 * k + 1][2], c[2 * k + 1][3]);
}

/// Adds a warp's 16 × N C fragments (rows r0 + g and r0 + g + 8) to the first N columns of an
/// f32 matrix of row stride ld with atomics, skipping rows at or past `limit`. On Hopper, lanes t
/// and t ^ 1 swap a pair first, so that each adds four adjacent values in one atomic (an even lane
/// four of row g, an odd one four of row g + 8): the gradient kernel's dQ adds were ~16M scalar
/// atomics a layer.
template <int N>
__device__ __forceinline__ void add_rows(float* m, int64_t ld, const float (&c)[N / 8][4],
                                         int64_t r0, int64_t limit, int g, int t4) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  const bool even = (t4 & 1) == 0;
  const int64_t row = r0 + g + (even ? 0 : 8);
  const int col = 2 * (t4 & ~1);
#pragma unroll
  for (int dt = 0; dt < N / 8; ++dt) {
    const float s0 = even ? c[dt][2] : c[dt][0], s1 = even ? c[dt][3] : c[dt][1];
    const float r0v = __shfl_xor_sync(0xffffffffu, s0, 1),
                r1v = __shfl_xor_sync(0xffffffffu, s1, 1);
    const float4 v = even ? make_float4(c[dt][0], c[dt][1], r0v, r1v)
                          : make_float4(r0v, r1v, c[dt][2], c[dt][3]);
    if (row < limit) atomicAdd(reinterpret_cast<float4*>(m + row * ld + dt * 8 + col), v);
  }
#else
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int64_t row = r0 + g + r * 8;
    if (row >= limit) continue;
#pragma unroll
    for (int dt = 0; dt < N / 8; ++dt) {
      atomicAdd(m + row * ld + dt * 8 + 2 * t4, c[dt][2 * r]);
      atomicAdd(m + row * ld + dt * 8 + 2 * t4 + 1, c[dt][2 * r + 1]);
    }
  }
#endif
}

/// Grid: (key tiles, B·Hq). Warp w owns keys key0 + 16w ... + 15 and accumulates their dK and
/// dV over the query rows of one head; those and dQ (over the key tiles) are added in f32 with
/// atomics to f.dq, f.dk, f.dv, so a grouped key head's query heads run in parallel blocks
/// (one block per key tile and KV head was too few for the GPU). P is recomputed from the stats
/// pass's lse; dS = P∘(dP − dvec)·scale is rounded to T once, as the GEMM path's softmax
/// gradient is.
///
/// Query tiles have QR rows: 64 at head dim 64, 32 at 128, where a warp's dK and dV sums alone
/// take 128 registers a lane and the score fragments must shrink to leave room. The tile's dQ
/// is split among the warps by 16 query rows and, where there are fewer row groups than warps,
/// by columns.
template <class T, int D, int QR>
__global__ void __launch_bounds__(32 * kWarps)
    flash_grad_kernel(const __grid_constant__ FlashGradArgs f) {
  static_assert(QR % 16 == 0 && kWarps % (QR / 16) == 0);
  // dQ: the tile's groups of 16 rows, and the columns a warp takes.
  constexpr int kGroups = QR / 16, kCols = D / (kWarps / kGroups);
  extern __shared__ __align__(16) unsigned char smem[];
  using L = GradTiles<D, QR>;
  T* sm = reinterpret_cast<T*>(smem);
  float* lse_s = reinterpret_cast<float*>(sm + L::end);  // two buffers each
  float* dvec_s = lse_s + 2 * QR;
  const AttentionArgs& a = f.a;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, t4 = lane & 3;
  const int64_t b = blockIdx.y / a.Hq, hq = blockIdx.y % a.Hq, hk = hq / (a.Hq / a.Hkv);
  const int64_t key0 = int64_t(blockIdx.x) * kKeys, shift = a.S - a.T;
  const float scale2 = a.scale * 1.4426950408889634f;
  const T* k = static_cast<const T*>(a.k) + b * a.ks[0] + hk * a.ks[1];
  const T* v = static_cast<const T*>(a.v) + b * a.vs[0] + hk * a.vs[1];
  // The key and value tiles land with the first query tile (the loop's first wait).
  load_tile_async<T, D, kKeys>(k, a.ks[2], key0, a.S, sm + L::ks);
  load_tile_async<T, D, kKeys>(v, a.vs[2], key0, a.S, sm + L::vs);

  float dk[D / 8][4] = {}, dv[D / 8][4] = {};
  // Query rows that see this tile's first key: t + shift ≥ key0 when causal.
  const int64_t first = a.causal ? (key0 - shift > 0 ? (key0 - shift) / QR * QR : 0) : 0;
  {
    const T* q = static_cast<const T*>(a.q) + b * a.qs[0] + hq * a.qs[1];
    const T* dout = static_cast<const T*>(f.g) + b * f.gs[0] + hq * f.gs[1];
    const float* lse = f.lse + (b * a.Hq + hq) * a.T;
    const float* dvec = f.dvec + (b * a.Hq + hq) * a.T;
    float* dq = f.dq + (b * a.Hq + hq) * a.T * D;
    // Query tile q0's rows, output-gradient rows and row statistics into buffer `buf`, in
    // flight while the tile before it is used (the loop was bound by these loads' latency).
    // Rows past T are zeros; their keys are masked, so lse and dvec are not used there.
    auto fetch = [&](int64_t q0, int buf) {
      load_tile_async<T, D, QR>(q, a.qs[2], q0, a.T, sm + L::qs + buf * QR * L::row);
      load_tile_async<T, D, QR>(dout, f.gs[2], q0, a.T, sm + L::gs + buf * QR * L::row);
      if (threadIdx.x < QR) {
        const bool in = q0 + threadIdx.x < a.T;
        const int64_t r = in ? q0 + threadIdx.x : 0;
        copy_async<4>(lse_s + buf * QR + threadIdx.x, lse + r, in);
        copy_async<4>(dvec_s + buf * QR + threadIdx.x, dvec + r, in);
      }
    };
    if (first < a.T) fetch(first, 0);
    for (int64_t q0 = first, it = 0; q0 < a.T; q0 += QR, ++it) {
      const int buf = static_cast<int>(it & 1);
      wait_copies();
      __syncthreads();  // this tile has landed; the previous tiles and dS are consumed
      if (q0 + QR < a.T) fetch(q0 + QR, buf ^ 1);
      const T* qt = sm + L::qs + buf * QR * L::row;
      const T* gt = sm + L::gs + buf * QR * L::row;
      const float* lse_t = lse_s + buf * QR;
      const float* dvec_t = dvec_s + buf * QR;

      // Sᵀ (the warp's 16 keys × QR query rows) = K·Qᵀ, and dPᵀ = V·dOᵀ.
      float sc[QR / 8][4] = {}, dp[QR / 8][4] = {};
#pragma unroll
      for (int kc = 0; kc < D / 16; ++kc) {
        uint32_t ka[4], va[4];
        a_frag(ka, sm + L::ks, L::row, warp * 16, kc * 16, g, t4);
        a_frag(va, sm + L::vs, L::row, warp * 16, kc * 16, g, t4);
#pragma unroll
        for (int nt = 0; nt < QR / 8; ++nt) {
          const T* qr = qt + (nt * 8 + g) * L::row + kc * 16 + 2 * t4;
          const T* gr = gt + (nt * 8 + g) * L::row + kc * 16 + 2 * t4;
          mma16816<T>(sc[nt], ka, *reinterpret_cast<const uint32_t*>(qr), *reinterpret_cast<const uint32_t*>(qr + 8));
          mma16816<T>(dp[nt], va, *reinterpret_cast<const uint32_t*>(gr), *reinterpret_cast<const uint32_t*>(gr + 8));
        }
      }
      // Pᵀ and dSᵀ, masked as the forward masks.
#pragma unroll
      for (int nt = 0; nt < QR / 8; ++nt)
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          const int qi = nt * 8 + 2 * t4 + (j & 1);
          const int64_t key = key0 + warp * 16 + g + (j >> 1) * 8, row = q0 + qi;
          const bool seen = key < a.S && row < a.T && (!a.causal || key <= row + shift);
          const float p = seen ? exp2f(sc[nt][j] * scale2 - lse_t[qi]) : 0.0f;
          sc[nt][j] = p;
          dp[nt][j] = p * (dp[nt][j] - dvec_t[qi]) * a.scale;
        }
      // dV += Pᵀ·dO and dK += dSᵀ·Q (B operands from the transposed tiles); dS to shared memory.
#pragma unroll
      for (int kc = 0; kc < QR / 16; ++kc) {
        uint32_t pa[4], sa[4];
        c_to_a<T>(pa, sc, kc);
        c_to_a<T>(sa, dp, kc);
#pragma unroll
        for (int dt = 0; dt < D / 8; ++dt) {
          uint32_t g0, g1, q0b, q1b;
          b_frag_t(g0, g1, gt, L::row, kc * 16, dt * 8, lane);
          b_frag_t(q0b, q1b, qt, L::row, kc * 16, dt * 8, lane);
          mma16816<T>(dv[dt], pa, g0, g1);
          mma16816<T>(dk[dt], sa, q0b, q1b);
        }
      }
      T* ds = sm + L::ds;  // [query row][key], rounded as dk's operand was
#pragma unroll
      for (int nt = 0; nt < QR / 8; ++nt)
#pragma unroll
        for (int j = 0; j < 4; ++j) st(ds + (nt * 8 + 2 * t4 + (j & 1)) * L::col + warp * 16 + g + (j >> 1) * 8, dp[nt][j]);
      __syncthreads();
      // dQ (the warp's 16 query rows × kCols columns) = dS·K over the tile's keys.
      const int rows16 = (kGroups == kWarps ? warp : warp % kGroups) * 16,
                col0 = kGroups == kWarps ? 0 : warp / kGroups * kCols;
      float dqa[kCols / 8][4] = {};
#pragma unroll
      for (int kc = 0; kc < kKeys / 16; ++kc) {
        uint32_t sa[4];
        a_frag(sa, ds, L::col, rows16, kc * 16, g, t4);
#pragma unroll
        for (int dt = 0; dt < kCols / 8; ++dt) {
          uint32_t b0, b1;
          b_frag_t(b0, b1, sm + L::ks, L::row, kc * 16, col0 + dt * 8, lane);
          mma16816<T>(dqa[dt], sa, b0, b1);
        }
      }
      add_rows<kCols>(dq + col0, D, dqa, q0 + rows16, a.T, g, t4);
    }
  }
  // The warp's keys' gradients, dense [B, Hkv, S, D].
  const int64_t base = (b * a.Hkv + hk) * a.S * D;
  add_rows<D>(f.dk + base, D, dk, key0 + warp * 16, a.S, g, t4);
  add_rows<D>(f.dv + base, D, dv, key0 + warp * 16, a.S, g, t4);
}

/// Whether p and each of the first three strides (in 2-byte elements) are multiples of `bytes`.
bool aligned_rows(const void* p, const int64_t* s, int bytes) {
  bool ok = reinterpret_cast<uintptr_t>(p) % bytes == 0;
  for (int d = 0; d < 3; ++d) ok = ok && (s[d] * 2) % bytes == 0;
  return ok;
}

bool tensor_cores(int device) {
  static int major[64] = {};
  if (device < 0 || device >= 64) return false;
  if (!major[device]) cudaDeviceGetAttribute(&major[device], cudaDevAttrComputeCapabilityMajor, device);
  return major[device] >= 8;
}

/// Whether the tensor-core kernels take these arguments (see flash_attention in launch.h).
bool flash_enabled() {
  static const bool enabled = [] {
    const char* e = std::getenv("WICK_FLASH");
    return !(e && std::string(e) == "0");
  }();
  return enabled;
}

bool flash_fits(const AttentionArgs& a) {
  if (!flash_enabled() || !(a.t == DType::bf16 || a.t == DType::f16) ||
      !(a.D == 64 || a.D == 128) || a.rope_half || a.qs[3] != 1 || a.ks[3] != 1 || a.vs[3] != 1 ||
      a.B * a.Hq > 65535 || !tensor_cores(active().device))
    return false;
  // A mask must be one row of keys per (batch, head): padding. One that varies over query rows
  // takes the GEMM path.
  if (a.mask && a.ms[2] != 0) return false;
  // Query rows are read 4 bytes at a time, key and value rows 16.
  return aligned_rows(a.q, a.qs, 4) && aligned_rows(a.k, a.ks, 16) && aligned_rows(a.v, a.vs, 16);
}

}  // namespace

bool flash_attention_fits(const AttentionArgs& a) {
  return flash_fits(a);
}

uint64_t flash_stats_tag(const AttentionArgs& a) {
  // FNV-1a over the values; a collision would need equal shapes anyway (the gradient checks O's).
  uint64_t h = 1469598103934665603ull;
  auto mix = [&](uint64_t v) { h = (h ^ v) * 1099511628211ull; };
  for (int64_t v : {a.B, a.Hq, a.Hkv, a.T, a.S, a.D}) mix(static_cast<uint64_t>(v));
  uint32_t bits;
  std::memcpy(&bits, &a.scale, sizeof bits);
  mix(bits);
  mix(a.causal ? 1 : 2);
  return h;
}

bool flash_attention(const AttentionArgs& a, float* lse) {
  if (!flash_fits(a)) return false;
  if (a.B * a.Hq == 0 || a.T == 0) return true;
  const dim3 grid(static_cast<unsigned>((a.T + kRows - 1) / kRows), static_cast<unsigned>(a.B * a.Hq));
  dispatch_float(a.t, "scaled_dot_product_attention", [&]<class T>() {
    if constexpr (is_half_v<T>) {
      auto run = [&]<int D, bool kMask>() {
        flash_attention_kernel<T, D, kMask><<<grid, 32 * kWarps, 0, launch_stream()>>>(a, lse);
      };
      if (a.D == 64)
        a.mask ? run.template operator()<64, true>() : run.template operator()<64, false>();
      else
        a.mask ? run.template operator()<128, true>() : run.template operator()<128, false>();
    }
  });
  check_launch("flash_attention");
  return true;
}

bool flash_available(int device) { return flash_enabled() && tensor_cores(device); }

bool flash_attention_grad_fits(const FlashGradArgs& f) {
  // The gradient kernel reads query rows 16 bytes at a time too.
  return !f.a.mask && flash_fits(f.a) && aligned_rows(f.a.q, f.a.qs, 16) && f.gs[3] == 1 &&
         aligned_rows(f.g, f.gs, 16);
}

void flash_attention_grad(FlashGradArgs f) {
  const AttentionArgs& a = f.a;
  const int64_t rows = a.B * a.Hq * a.T;
  cudaStream_t stream = launch_stream();
  // Zero sums first: with no query rows or no keys they are the gradients.
  check(cudaMemsetAsync(f.dq, 0, static_cast<size_t>(rows * a.D) * sizeof(float), stream), "attention gradient");
  check(cudaMemsetAsync(f.dk, 0, static_cast<size_t>(a.B * a.Hkv * a.S * a.D) * sizeof(float), stream), "attention gradient");
  check(cudaMemsetAsync(f.dv, 0, static_cast<size_t>(a.B * a.Hkv * a.S * a.D) * sizeof(float), stream), "attention gradient");
  if (rows == 0 || a.S == 0) return;
  auto run = [&]<class T, int D, int QR>() {
    const dim3 rows_grid(static_cast<unsigned>((a.T + kRows - 1) / kRows),
                         static_cast<unsigned>(a.B * a.Hq));
    if (!f.lse_ready) flash_stats_kernel<T, D><<<rows_grid, 32 * kWarps, 0, stream>>>(a, f.lse);
    flash_dvec_kernel<T, D><<<grid_for(rows * (D / 8)), 256, 0, stream>>>(f, f.dvec);
    const size_t smem = GradTiles<D, QR>::end * sizeof(T) + 4 * QR * sizeof(float);
    check(cudaFuncSetAttribute(flash_grad_kernel<T, D, QR>,
                               cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)),
          "attention gradient");
    const dim3 grid(static_cast<unsigned>((a.S + kKeys - 1) / kKeys),
                    static_cast<unsigned>(a.B * a.Hq));
    flash_grad_kernel<T, D, QR><<<grid, 32 * kWarps, smem, stream>>>(f);
  };
  dispatch_float(a.t, "scaled_dot_product_attention", [&]<class T>() {
    if constexpr (is_half_v<T>) {
      if (a.D == 64)
        run.template operator()<T, 64, 64>();
      else
        run.template operator()<T, 128, 32>();
    }
  });
  check_launch("flash_attention_grad");
}

}  // namespace wick::cuda
