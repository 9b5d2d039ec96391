// Scaled dot-product attention over many query rows (prefill, training's forward) on the tensor
// cores, flash-attention style: a block takes 64 query rows of one head and walks the keys in
// tiles of 64, keeping the scores, the online softmax and the output in registers. The [T, S]
// scores are never written, where the GEMM path writes them in f32, reads them back for the
// softmax and writes the probabilities in the half type.
#include <cstdlib>
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

/// Grid: (query tiles, B·Hq). Rows of q, k and v are unit-stride (AttentionArgs strides in
/// elements); out is dense [B, Hq, T, D].
template <class T, int D>
__global__ void __launch_bounds__(32 * kWarps) flash_attention_kernel(const __grid_constant__ AttentionArgs a) {
  // Padded rows: the fragment loads of 8 rows × 4 lanes then hit 32 different banks.
  __shared__ alignas(16) T ks[kKeys][D + 8];   // the key tile, a key a row
  __shared__ alignas(16) T vt[D][kKeys + 8];   // the value tile transposed, a dimension a row
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, t4 = lane & 3;
  const int64_t bh = blockIdx.y, b = bh / a.Hq, h = bh % a.Hq, hk = h / (a.Hq / a.Hkv);
  const int64_t row0 = int64_t(blockIdx.x) * kRows + warp * 16;  // this warp's first query row
  const T* q = static_cast<const T*>(a.q) + b * a.qs[0] + h * a.qs[1];
  const T* k = static_cast<const T*>(a.k) + b * a.ks[0] + hk * a.ks[1];
  const T* v = static_cast<const T*>(a.v) + b * a.vs[0] + hk * a.vs[1];
  const int64_t shift = a.S - a.T;  // query row t sees keys up to t + shift when causal

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
  const int64_t block_last = int64_t(blockIdx.x) * kRows + kRows - 1;
  const int64_t key_end = a.causal && block_last + shift + 1 < a.S ? block_last + shift + 1 : a.S;

  for (int64_t key0 = 0; key0 < key_end; key0 += kKeys) {
    __syncthreads();  // the previous tile is consumed
    // 16-byte chunks of the tile's rows; keys past S are zero.
    for (int i = threadIdx.x; i < kKeys * (D / 8); i += 32 * kWarps) {
      const int r = i / (D / 8), c = (i % (D / 8)) * 8;
      uint4 kv = {0, 0, 0, 0}, vv = {0, 0, 0, 0};
      if (key0 + r < a.S) {
        kv = *reinterpret_cast<const uint4*>(k + (key0 + r) * a.ks[2] + c);
        vv = *reinterpret_cast<const uint4*>(v + (key0 + r) * a.vs[2] + c);
      }
      *reinterpret_cast<uint4*>(&ks[r][c]) = kv;
      const T* ve = reinterpret_cast<const T*>(&vv);
#pragma unroll
      for (int e = 0; e < 8; ++e) vt[c + e][r] = ve[e];
    }
    __syncthreads();

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
#pragma unroll
    for (int nt = 0; nt < kKeys / 8; ++nt)
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const int64_t key = key0 + nt * 8 + 2 * t4 + (j & 1), row = row0 + g + (j >> 1) * 8;
        const bool seen = key < a.S && (!a.causal || key <= row + shift);
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

    // o += p·v: the score fragments of 16 keys are the A fragment (rounded to T, as the GEMM
    // path rounds its probabilities).
#pragma unroll
    for (int kc = 0; kc < kKeys / 16; ++kc) {
      const uint32_t pa[4] = {pack2<T>(s[2 * kc][0], s[2 * kc][1]), pack2<T>(s[2 * kc][2], s[2 * kc][3]),
                              pack2<T>(s[2 * kc + 1][0], s[2 * kc + 1][1]), pack2<T>(s[2 * kc + 1][2], s[2 * kc + 1][3])};
#pragma unroll
      for (int dt = 0; dt < D / 8; ++dt) {
        const T* vr = &vt[dt * 8 + g][kc * 16 + 2 * t4];
        mma16816<T>(o[dt], pa, *reinterpret_cast<const uint32_t*>(vr), *reinterpret_cast<const uint32_t*>(vr + 8));
      }
    }
  }

  // Each lane holds part of its rows' sums: the four lanes of a row add theirs.
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    l[r] += __shfl_xor_sync(0xffffffffu, l[r], 1);
    l[r] += __shfl_xor_sync(0xffffffffu, l[r], 2);
  }
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

bool tensor_cores(int device) {
  static int major[64] = {};
  if (device < 0 || device >= 64) return false;
  if (!major[device]) cudaDeviceGetAttribute(&major[device], cudaDevAttrComputeCapabilityMajor, device);
  return major[device] >= 8;
}

}  // namespace

bool flash_attention(const AttentionArgs& a) {
  static const bool enabled = [] {
    const char* e = std::getenv("WICK_FLASH");
    return !(e && std::string(e) == "0");
  }();
  if (!enabled || !(a.t == DType::bf16 || a.t == DType::f16) || !(a.D == 64 || a.D == 128) || a.mask || a.rope_half ||
      a.qs[3] != 1 || a.ks[3] != 1 || a.vs[3] != 1 || !tensor_cores(active().device))
    return false;
  // Query rows are read 4 bytes at a time, key and value rows 16.
  const auto aligned = [](const void* p, const int64_t* s, int bytes) {
    bool ok = reinterpret_cast<uintptr_t>(p) % bytes == 0;
    for (int d = 0; d < 3; ++d) ok = ok && (s[d] * 2) % bytes == 0;
    return ok;
  };
  if (!aligned(a.q, a.qs, 4) || !aligned(a.k, a.ks, 16) || !aligned(a.v, a.vs, 16)) return false;
  if (a.B * a.Hq == 0 || a.T == 0) return true;
  if (a.B * a.Hq > 65535) return false;
  const dim3 grid(static_cast<unsigned>((a.T + kRows - 1) / kRows), static_cast<unsigned>(a.B * a.Hq));
  dispatch_float(a.t, "scaled_dot_product_attention", [&]<class T>() {
    if constexpr (is_half_v<T>) {
      if (a.D == 64)
        flash_attention_kernel<T, 64><<<grid, 32 * kWarps, 0, launch_stream()>>>(a);
      else
        flash_attention_kernel<T, 128><<<grid, 32 * kWarps, 0, launch_stream()>>>(a);
    }
  });
  check_launch("flash_attention");
  return true;
}

}  // namespace wick::cuda
