// Scaled dot-product attention, forward: an online softmax in f32 per query row, so the [T, S]
// scores never exist in memory. Grouped-query heads share their key/value head.
// Keys past the causal limit (s > t + S − T) are skipped.
#include <algorithm>
#include <cstdlib>

#include "backend/cuda/common.cuh"
#include "core/position_mask.h"

namespace wick::cuda {
namespace {

// The general kernel: one block per query row (rows whose scores would not fit the GEMM path's
// budget, and decoding rows decode_attention_kernel below does not take: head dims under four
// 16-byte chunks, unaligned or strided rows). Its warps take tiles of 32 keys in turn: each
// lane scores one key of the tile (the query sits in shared memory), the warp updates its
// online softmax once per tile, and the values are accumulated with lanes over the head
// dimension. The warps' partial results are merged at the end. Keys the mask hides (−inf)
// score −inf without their rows being read, and a tile with no visible key costs nothing more:
// a step over a whole preallocated cache pays only for the positions written so far.
constexpr int kWarps = 16;  // 512 keys in flight per row: every warp's share of a 2k-token cache is a few tiles

/// q·k for one key row (q pre-scaled in shared memory), with 16-byte loads when the row is dense
/// and aligned. The loads go out eight at a time before their products: one at a time, a row
/// of 64 keys waited for memory eight times in a row.
template <class T, int NV>
__device__ __forceinline__ float key_dot(const T* kr, int64_t stride, int64_t D, const float* q) {
  constexpr int V = 16 / sizeof(T), kLoads = 32 * NV / V, kBatch = kLoads < 8 ? kLoads : 8;
  float dot = 0.0f;
  if (stride == 1 && D % V == 0 && reinterpret_cast<uintptr_t>(kr) % 16 == 0) {
#pragma unroll
    for (int i0 = 0; i0 < kLoads; i0 += kBatch) {
      uint4 raw[kBatch];
#pragma unroll
      for (int i = 0; i < kBatch; ++i)
        if ((i0 + i) * V < D) raw[i] = *reinterpret_cast<const uint4*>(kr + (i0 + i) * V);
#pragma unroll
      for (int i = 0; i < kBatch; ++i) {
        if ((i0 + i) * V >= D) break;
        const T* e = reinterpret_cast<const T*>(&raw[i]);
#pragma unroll
        for (int u = 0; u < V; ++u) dot += q[(i0 + i) * V + u] * static_cast<float>(ld(e + u));
      }
    }
    return dot;
  }
  for (int64_t d = 0; d < D; ++d) dot += q[d] * static_cast<float>(ld(kr + d * stride));
  return dot;
}

/// Element d of row x (element stride xs) rotated as rope_kernel does at `position`, rounded to T
/// as the rotated row would have been stored.
template <class T>
__device__ __forceinline__ float rotated(const T* x, int64_t xs, int64_t d, int64_t half, const float* freq,
                                         int64_t position) {
  const int64_t i = d % half;
  const float angle = static_cast<float>(position) * freq[i];
  const float c = cos(angle), s = sin(angle), x1 = ld(x + i * xs), x2 = ld(x + (i + half) * xs);
  T r;
  st(&r, d < half ? x1 * c - x2 * s : x2 * c + x1 * s);
  return ld(&r);
}

/// Key s's additive bias for the query at cache position `at`: the mask's entry (element stride
/// ms; I is the kernel's offset type), else 0, or −inf where a folded PositionMask hides it.
template <class I>
__device__ __forceinline__ float key_bias(const AttentionArgs& a, const float* mask, I ms, I s,
                                          int64_t at) {
  if (mask) return mask[s * ms];
  return a.position_window < 0 || detail::position_visible(s, at, a.position_window) ? 0.0f
                                                                                     : -INFINITY;
}

template <class T, int NV>
__global__ void __launch_bounds__(32 * kWarps) attention_kernel(const __grid_constant__ AttentionArgs a) {
  constexpr int kRows = NV <= 2 ? 16 : 8;  // value rows per batch of loads
  __shared__ float qs[32 * NV];
  __shared__ float part_m[kWarps], part_l[kWarps];
  __shared__ float part_acc[kWarps][32 * NV];
  __shared__ __align__(16) T k_row[32 * NV], v_row[32 * NV];  // a cached step's new rows
  allow_dependents();
  wait_for_inputs();
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int64_t row = blockIdx.x / a.split, part = blockIdx.x % a.split;
  int64_t t = row % a.T, h = (row / a.T) % a.Hq, b = row / (a.T * a.Hq);
  int64_t hk = h / (a.Hq / a.Hkv);
  const T* q = static_cast<const T*>(a.q) + b * a.qs[0] + h * a.qs[1] + t * a.qs[2];
  const T* k = static_cast<const T*>(a.k) + b * a.ks[0] + hk * a.ks[1];
  const T* v = static_cast<const T*>(a.v) + b * a.vs[0] + hk * a.vs[1];
  const float* mask =
      a.mask ? static_cast<const float*>(a.mask) + b * a.ms[0] + h * a.ms[1] + t * a.ms[2]
             : nullptr;
  // The cached step's position (its key and value rows come from k_row and v_row), else none.
  const int64_t fresh = a.k_new ? *a.rope_position : -1;
  const int64_t at = a.position_window >= 0 ? *a.rope_position + t : 0;  // for key_bias
  if (a.k_new && (fresh < 0 || fresh >= a.S)) {
    if (blockIdx.x == 0 && threadIdx.x == 0) report(a.err, kWriteAt, fresh, a.S);
    return;
  }
  for (int64_t d = threadIdx.x; d < a.D; d += blockDim.x) {
    const float x = a.rope_half ? rotated(q, a.qs[3], d, a.rope_half, a.rope_freq, *a.rope_position + t)
                                : static_cast<float>(ld(q + d * a.qs[3]));
    qs[d] = x * a.scale;
    if (a.k_new) {
      const T* kn = static_cast<const T*>(a.k_new) + b * a.kns[0] + hk * a.kns[1];
      st(k_row + d, rotated(kn, a.kns[3], d, a.rope_half, a.rope_freq, fresh));
      v_row[d] = static_cast<const T*>(a.v_new)[b * a.vns[0] + hk * a.vns[1] + d * a.vns[3]];
    }
  }
  __syncthreads();
  float acc[NV];
  for (int j = 0; j < NV; ++j) acc[j] = 0.0f;
  int64_t end = a.causal ? t + (a.S - a.T) + 1 : a.S;
  if (end > a.S) end = a.S;
  // This block's share of the keys (all of them unless the row is split over blocks).
  const int64_t share = (a.S + a.split - 1) / a.split, first = part * share;
  if (end > first + share) end = first + share;
  // The first query head of a group, in the block whose share holds the position, stores the
  // new rows in the caches (dense: unit element stride).
  if (a.k_new && h % (a.Hq / a.Hkv) == 0 && fresh >= first && fresh < first + share)
    for (int64_t d = threadIdx.x; d < a.D; d += blockDim.x) {
      const_cast<T*>(k)[fresh * a.ks[2] + d] = k_row[d];
      const_cast<T*>(v)[fresh * a.vs[2] + d] = v_row[d];
    }
  float m = -INFINITY, l = 0.0f;
  for (int64_t s0 = first + int64_t(warp) * 32; s0 < end; s0 += 32 * kWarps) {
    const int64_t s = s0 + lane;
    const float bias = s < end ? key_bias(a, mask, a.ms[3], s, at) : -INFINITY;
    if (!__any_sync(0xffffffffu, bias != -INFINITY)) continue;  // nothing visible in this tile
    // Value rows kRows at a time, the first batch loaded together with the keys, so that the
    // tile waits for memory about three times. A hidden key's weight is 0 and its value is not
    // used (it may be anything, NaN included).
    const int n = end - s0 < 32 ? static_cast<int>(end - s0) : 32;
    float vv[kRows][NV];
    auto load_values = [&](int i0) {
#pragma unroll
      for (int u = 0; u < kRows; ++u) {
        const int i = i0 + u;
        const int64_t s = s0 + (i < n ? i : 0);
        const T* vr = s == fresh ? v_row : v + s * a.vs[2];
#pragma unroll
        for (int j = 0; j < NV; ++j) {
          int64_t d = lane + 32 * j;
          vv[u][j] = i < n && d < a.D ? static_cast<float>(ld(vr + d * a.vs[3])) : 0.0f;
        }
      }
    };
    load_values(0);
    const float score =
        bias == -INFINITY ? -INFINITY : key_dot<T, NV>(s == fresh ? k_row : k + s * a.ks[2], a.ks[3], a.D, qs) + bias;
    float tile_max = score;
    for (int o = 16; o > 0; o >>= 1) tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, o));
    if (tile_max == -INFINITY) continue;  // visible keys scored −inf
    const float nm = fmaxf(m, tile_max), corr = expf(m - nm);
    const float p = score == -INFINITY ? 0.0f : expf(score - nm);
    float psum = p;
    for (int o = 16; o > 0; o >>= 1) psum += __shfl_xor_sync(0xffffffffu, psum, o);
    l = l * corr + psum;
    for (int j = 0; j < NV; ++j) acc[j] *= corr;
    for (int i0 = 0; i0 < n; i0 += kRows) {
      if (i0 > 0) load_values(i0);
#pragma unroll
      for (int u = 0; u < kRows; ++u) {
        const float pu = __shfl_sync(0xffffffffu, p, (i0 + u) & 31);
        if (i0 + u < n && pu != 0.0f)
#pragma unroll
          for (int j = 0; j < NV; ++j) acc[j] += pu * vv[u][j];
      }
    }
    m = nm;
  }
  if (lane == 0) {
    part_m[warp] = m;
    part_l[warp] = l;
  }
  for (int j = 0; j < NV; ++j) part_acc[warp][lane + 32 * j] = acc[j];
  __syncthreads();
  if (warp != 0) return;
  float top = -INFINITY;
  for (int w = 0; w < kWarps; ++w) top = fmaxf(top, part_m[w]);
  float total = 0.0f, out[NV] = {};
  for (int w = 0; w < kWarps; ++w) {
    if (part_m[w] == -INFINITY) continue;  // a warp that saw no visible key
    float c = expf(part_m[w] - top);
    total += part_l[w] * c;
    for (int j = 0; j < NV; ++j) out[j] += part_acc[w][lane + 32 * j] * c;
  }
  if (a.split > 1) {
    // Unnormalised: attention_merge weighs the blocks of the row by their maxima.
    float* p = a.partials + (row * a.split + part) * (a.D + 2);
    if (lane == 0) {
      p[0] = top;
      p[1] = total;
    }
    for (int j = 0; j < NV; ++j) {
      int64_t d = lane + 32 * j;
      if (d < a.D) p[2 + d] = out[j];
    }
    return;
  }
  T* o = static_cast<T*>(a.out) + row * a.D;
  float inv = total > 0.0f ? 1.0f / total : 0.0f;  // a fully masked row gives 0, as on the CPU
  for (int j = 0; j < NV; ++j) {
    int64_t d = lane + 32 * j;
    if (d < a.D) st(o + d, out[j] * inv);
  }
}

/// Joins a row's blocks (a split row): one warp per row.
template <class T>
__global__ void attention_merge(const __grid_constant__ AttentionArgs a) {
  allow_dependents();
  wait_for_inputs();
  const int64_t row = blockIdx.x;
  const float* p = a.partials + row * a.split * (a.D + 2);
  float top = -INFINITY;
  for (int c = 0; c < a.split; ++c) top = fmaxf(top, p[c * (a.D + 2)]);
  float total = 0.0f;
  for (int c = 0; c < a.split; ++c)
    if (p[c * (a.D + 2)] != -INFINITY) total += p[c * (a.D + 2) + 1] * expf(p[c * (a.D + 2)] - top);
  const float inv = total > 0.0f ? 1.0f / total : 0.0f;
  for (int64_t d = threadIdx.x; d < a.D; d += blockDim.x) {
    float o = 0.0f;
    for (int c = 0; c < a.split; ++c)
      if (p[c * (a.D + 2)] != -INFINITY) o += p[c * (a.D + 2) + 2 + d] * expf(p[c * (a.D + 2)] - top);
    st(static_cast<T*>(a.out) + row * a.D + d, o * inv);
  }
}

// ---- decoding: one query row per head ----
//
// attention_kernel spends ~10 µs on a handful of keys: a lane scores a whole key row, so a
// tile is a chain of dependent loads, 64 multiply-adds, shuffles and a 16-warp merge. Here C
// lanes share a key row, one 16-byte chunk each, so a warp scores 32 / C keys in a few
// instructions; each lane issues its keys' loads for a whole batch at once, and four warps
// merge through shared memory once. A round's masks, keys and values are loaded together, so
// it waits for memory once.
// Key batches a lane holds in a round of a block of W warps: 2 where a row is one block of 16
// warps (128 keys a round in bf16 at D 64; 4 spilled registers and measured slower), 8 where it
// is split over blocks of 4 warps.
constexpr int decode_lane_batches(int W) {
  return W == 16 ? 2 : 8;
}

/// Chunk c (16 bytes) of a row and, for RoPE, its partner: RoPE pairs element i with i + D/2,
/// which lies in chunk c ± C/2.
template <class T>
struct RowChunk {
  Packed16<T> own, other;
};

template <class T, int C>
__device__ __forceinline__ RowChunk<T> load_chunk(const T* row, int c, bool rope) {
  constexpr int V = Packed16<T>::V;
  RowChunk<T> r;
  r.own = load16(row + c * V);
  r.other = rope ? load16(row + ((c + C / 2) % C) * V) : r.own;
  return r;
}

/// The chunk's elements, rotated when `rope` (cs and sn: cosines and sines of its angles) and
/// then rounded to T as the rotated row would have been stored.
template <class T, int C>
__device__ __forceinline__ void rotate_chunk(const RowChunk<T>& x, int c, bool rope, const float* cs,
                                             const float* sn, float* out) {
  constexpr int V = Packed16<T>::V;
  const bool low = c < C / 2;
#pragma unroll
  for (int j = 0; j < V; ++j) {
    const float u = x.own[j], w = x.other[j];
    if (!rope) {
      out[j] = u;
      continue;
    }
    T r;
    st(&r, low ? u * cs[j] - w * sn[j] : u * cs[j] + w * sn[j]);
    out[j] = ld(&r);
  }
}

template <class T, int C, int W>
__global__ void __launch_bounds__(32 * W) decode_attention_kernel(const __grid_constant__ AttentionArgs a) {
  constexpr int V = Packed16<T>::V, D = C * V, KW = 32 / C, KB = W * KW, NI = decode_lane_batches(W);
  __shared__ float cos_s[D / 2], sin_s[D / 2];
  __shared__ float part_m[W], part_l[W], part_acc[W][D];
  // RoPE's angles once per block, not once per lane and element, from the frequencies (kernel
  // parameters: read per lane, they would be read one address at a time) and the position.
  const bool rope = a.rope_half != 0;
  auto angles = [&](int64_t position) {
    for (int i = threadIdx.x; i < a.rope_half; i += blockDim.x)
      sincosf(static_cast<float>(position) * a.rope_freq[i], &sin_s[i], &cos_s[i]);
  };
  allow_dependents();
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, c = lane % C, kq = lane / C;
  // The grid is (split, Hq, B), so a block finds its row and share with three 32-bit divisions:
  // from a flat index it took seven 64-bit ones (ncu: 1225 → 1142 instructions a warp).
  const int part = blockIdx.x, h = blockIdx.y, b = blockIdx.z, group = static_cast<int>(a.Hq) / static_cast<int>(a.Hkv);
  const int hk = h / group;
  const int64_t row = b * a.Hq + h;
  const T* k = static_cast<const T*>(a.k) + b * a.ks[0] + hk * a.ks[1] + c * V;
  const T* v = static_cast<const T*>(a.v) + b * a.vs[0] + hk * a.vs[1] + c * V;
  const float* mask = a.mask ? static_cast<const float*>(a.mask) + b * a.ms[0] + h * a.ms[1] : nullptr;
  // Keys are counted and their rows offset in 32 bits (decode_chunks checks they fit).
  const int S = static_cast<int>(a.S), share = (S + a.split - 1) / a.split, first = part * share;
  const int end = min(first + share, S), ks = static_cast<int>(a.ks[2]), vs = static_cast<int>(a.vs[2]);
  const int ms = static_cast<int>(a.ms[3]);
  // A round's keys: their biases and rows. The first round's are loaded together whatever the
  // mask says (a hidden row may hold anything, NaN included: its score and value are replaced,
  // not used), so they go out before anything else and wait for memory once. A later round's
  // biases are loaded during the round before it, and a warp that sees none of its keys skips
  // the round's rows: a preallocated cache's unwritten tail costs no loads.
  float bias[NI], next_bias[NI];
  Packed16<T> kp[NI], vp[NI];
  // Batches of KB keys a round holds (a short cache fills one or two: the others are skipped,
  // a block-uniform branch, since their instructions would be most of the kernel).
  auto batches_in = [&](int base) { return min(NI, (end - base + KB - 1) / KB); };
  auto key = [&](int base, int i) { return base + warp * KW + kq + i * KB; };
  int64_t position = 0;
  auto load_biases = [&](int base, float (&out)[NI]) {
    const int batches = batches_in(base);
#pragma unroll
    for (int i = 0; i < NI; ++i) {
      if (i >= batches) break;
      const int s = key(base, i);
      out[i] = s < end ? key_bias(a, mask, ms, s, position) : -INFINITY;
    }
  };
  auto load_rows = [&](int base) {
    const int batches = batches_in(base);
#pragma unroll
    for (int i = 0; i < NI; ++i) {
      if (i >= batches) break;
      const int s = key(base, i);
      kp[i] = s < end ? load16(k + s * ks) : Packed16<T>{};
      vp[i] = s < end ? load16(v + s * vs) : Packed16<T>{};
    }
  };
  // What no kernel ahead in this launch unit wrote is read before the wait: the position, and
  // then RoPE's angles and, with the mask folded in, the first round of the caches (the step's
  // own row among them is stale, and replaced below), so that after the wait only the step's
  // new rows are waited for.
  const bool uses_position = rope || a.position_window >= 0;
  const bool position_early = uses_position && a.position_untouched;
  if (position_early) {
    position = *a.rope_position;
    if (rope) angles(position);
  }
  const bool rows_early = a.cache_untouched && !mask && (position_early || !uses_position);
  if (rows_early) {
    load_biases(first, bias);
    load_rows(first);
  }
  wait_for_inputs();
  if (uses_position && !position_early) position = *a.rope_position;
  if (!rows_early) {
    load_biases(first, bias);
    load_rows(first);
  }
  // This lane's chunk of q and of the step's new key and value rows, loaded before anything
  // waits for memory.
  const T* q_row = static_cast<const T*>(a.q) + b * a.qs[0] + h * a.qs[1];
  const RowChunk<T> q_raw = load_chunk<T, C>(q_row, c, rope);
  // Without new rows q's row stands in, unused: loaded under a branch, the rows were merged
  // into zero-filled registers, two instructions an element (34 of a warp's ~1040).
  const RowChunk<T> k_raw = load_chunk<T, C>(
      a.k_new ? static_cast<const T*>(a.k_new) + b * a.kns[0] + hk * a.kns[1] : q_row, c, true);
  const RowChunk<T> v_raw = load_chunk<T, C>(
      a.k_new ? static_cast<const T*>(a.v_new) + b * a.vns[0] + hk * a.vns[1] : q_row, c, false);
  if (a.k_new && (position < 0 || position >= a.S)) {
    if (blockIdx.x == 0 && threadIdx.x == 0) report(a.err, kWriteAt, position, a.S);
    return;
  }
  const int fresh = a.k_new ? static_cast<int>(position) : -1;  // the key the step writes
  float cs[V], sn[V], qv[V], kn[V] = {}, vn[V] = {};
  if (rope) {
    if (!position_early) angles(position);
    __syncthreads();
#pragma unroll
    for (int j = 0; j < V; ++j) {
      cs[j] = cos_s[(c * V + j) % (D / 2)];
      sn[j] = sin_s[(c * V + j) % (D / 2)];
    }
  }
  rotate_chunk<T, C>(q_raw, c, rope, cs, sn, qv);
#pragma unroll
  for (int j = 0; j < V; ++j) qv[j] *= a.scale;
  if (a.k_new) {
    rotate_chunk<T, C>(k_raw, c, true, cs, sn, kn);
    rotate_chunk<T, C>(v_raw, c, false, cs, sn, vn);
    // The group's first query head, in the block whose share holds the position, stores them.
    if (h == hk * group && fresh >= first && fresh < end && warp == 0 && kq == 0) {
      st_pack<T, V>(const_cast<T*>(k) + fresh * ks, kn);
      st_pack<T, V>(const_cast<T*>(v) + fresh * vs, vn);
    }
  }
  float m = -INFINITY, l = 0.0f, acc[V] = {};
  for (int base = first; base < end; base += NI * KB) {
    const int batches = batches_in(base);
    if (base > first) {
#pragma unroll
      for (int i = 0; i < NI; ++i) bias[i] = next_bias[i];
    }
    if (base + NI * KB < end) load_biases(base + NI * KB, next_bias);
    if (base > first) {
      bool seen = false;
#pragma unroll
      for (int i = 0; i < NI; ++i) seen = seen || (i < batches && bias[i] != -INFINITY);
      if (!__any_sync(0xffffffffu, seen)) continue;  // warp-uniform: no visible key of this warp
      load_rows(base);
    }
    const int s0 = base + warp * KW + kq;
    float sc[NI], top = -INFINITY;
#pragma unroll
    for (int i = 0; i < NI; ++i) {
      if (i >= batches) break;
      const bool mine = s0 + i * KB == fresh;
      float dot = 0.0f;
#pragma unroll
      for (int j = 0; j < V; ++j) dot += qv[j] * (mine ? kn[j] : kp[i][j]);
#pragma unroll
      for (int o = C / 2; o > 0; o >>= 1) dot += __shfl_xor_sync(0xffffffffu, dot, o);
      sc[i] = bias[i] == -INFINITY ? -INFINITY : dot + bias[i];
      top = fmaxf(top, sc[i]);
    }
#pragma unroll
    for (int o = C; o < 32; o <<= 1) top = fmaxf(top, __shfl_xor_sync(0xffffffffu, top, o));
    if (top == -INFINITY) continue;  // nothing visible to this warp in the round
    const float nm = fmaxf(m, top), corr = expf(m - nm);
    float p[NI], psum = 0.0f;
#pragma unroll
    for (int i = 0; i < NI; ++i) {
      if (i >= batches) break;
      p[i] = sc[i] == -INFINITY ? 0.0f : expf(sc[i] - nm);
      psum += p[i];
    }
    // Each key's weight is on its C lanes: sum over the warp's keys, not its lanes.
#pragma unroll
    for (int o = C; o < 32; o <<= 1) psum += __shfl_xor_sync(0xffffffffu, psum, o);
    l = l * corr + psum;
#pragma unroll
    for (int j = 0; j < V; ++j) acc[j] *= corr;
#pragma unroll
    for (int i = 0; i < NI; ++i) {
      if (i >= batches) break;
      const bool mine = s0 + i * KB == fresh, hidden = bias[i] == -INFINITY;
#pragma unroll
      for (int j = 0; j < V; ++j)
        acc[j] += p[i] * (mine ? vn[j] : hidden ? 0.0f : vp[i][j]);
    }
    m = nm;
  }
#pragma unroll
  for (int j = 0; j < V; ++j)
#pragma unroll
    for (int o = C; o < 32; o <<= 1) acc[j] += __shfl_xor_sync(0xffffffffu, acc[j], o);
  if (lane == 0) {
    part_m[warp] = m;
    part_l[warp] = l;
  }
  if (kq == 0)
#pragma unroll
    for (int j = 0; j < V; ++j) part_acc[warp][c * V + j] = acc[j];
  __syncthreads();
  // The warps' results joined: Q adjacent threads a dimension, each over W / Q warps, then two
  // shuffles (64 threads each over all 16 warps were a long serial tail: ncu counts ~1000
  // instructions a warp at ~8 cycles each in this kernel). A block with fewer threads than
  // dimensions (4 warps, D 256) takes several a thread.
  constexpr int kThreads = 32 * W, Q = kThreads >= 4 * D ? 4 : kThreads >= 2 * D ? 2 : 1;
  float top = -INFINITY;
#pragma unroll
  for (int w = 0; w < W; ++w) top = fmaxf(top, part_m[w]);
  for (int t = threadIdx.x; t < (D * Q + kThreads - 1) / kThreads * kThreads; t += kThreads) {
    const int d = t / Q, q = t % Q;
    float total = 0.0f, o = 0.0f;
    if (d < D) {
#pragma unroll
      for (int w = q * (W / Q); w < (q + 1) * (W / Q); ++w) {
        if (part_m[w] == -INFINITY) continue;
        const float e = expf(part_m[w] - top);
        total += part_l[w] * e;
        o += part_acc[w][d] * e;
      }
    }
#pragma unroll
    for (int lane_bit = 1; lane_bit < Q; lane_bit <<= 1) {
      total += __shfl_xor_sync(0xffffffffu, total, lane_bit);
      o += __shfl_xor_sync(0xffffffffu, o, lane_bit);
    }
    if (d >= D || q != 0) continue;
    if (a.split > 1) {
      // Unnormalised, as attention_kernel leaves them for attention_merge.
      float* pp = a.partials + (row * a.split + part) * (D + 2);
      if (d == 0) {
        pp[0] = top;
        pp[1] = total;
      }
      pp[2 + d] = o;
    } else {
      st(static_cast<T*>(a.out) + row * D + d, o * (total > 0.0f ? 1.0f / total : 0.0f));
    }
  }
}

/// Threads sharing a key row in decode_attention_kernel (D / 16 bytes), or 0 where that kernel
/// does not take the arguments: one query row per head, D of 4 to 32 chunks of 16 bytes, rows
/// of q, k, v (and the new rows) unit-stride and 16-byte aligned.
template <class T>
int decode_chunks(const AttentionArgs& a) {
  constexpr int64_t V = 16 / sizeof(T);
  const int64_t C = a.D / V;
  // (A causal row of one query sees every key.)
  if (a.T != 1 || a.D % V || (C != 4 && C != 8 && C != 16 && C != 32)) return 0;
  // Its grid is (split, Hq, B), and it offsets key rows and mask entries in 32 bits.
  if (a.B > 65535 || a.Hq > 65535) return 0;
  const int64_t widest = std::max({int64_t(1), std::abs(a.ks[2]), std::abs(a.vs[2]), a.mask ? std::abs(a.ms[3]) : 1});
  if (a.S > INT32_MAX / 2 / widest) return 0;
  if (a.rope_half && a.rope_half * 2 != a.D) return 0;
  auto rows_fit = [&](const void* p, const int64_t* strides, int outer) {
    if (reinterpret_cast<uintptr_t>(p) % 16 || strides[3] != 1) return false;
    for (int d = 0; d < outer; ++d)
      if (strides[d] % V) return false;
    return true;
  };
  if (!rows_fit(a.q, a.qs, 2) || !rows_fit(a.k, a.ks, 3) || !rows_fit(a.v, a.vs, 3)) return 0;
  if (a.k_new && (!rows_fit(a.k_new, a.kns, 2) || !rows_fit(a.v_new, a.vns, 2))) return 0;
  return static_cast<int>(C);
}

template <class T>
void launch(const AttentionArgs& a) {
  const unsigned rows = static_cast<unsigned>(a.B * a.Hq * a.T), blocks = rows * a.split;
  if constexpr (!std::is_same_v<T, double>) {
    if (const int c = decode_chunks<T>(a)) {
      // A row in one block (a short cache) is a chain of dependent steps over a few keys: 16
      // warps with two key batches each finish it sooner than 4 with eight (measured 7.5 →
      // 6.0 µs a layer). Rows split over blocks keep 4 warps, which measured faster there.
      auto run = [&]<int W>() {
        const auto kernel = c == 4    ? decode_attention_kernel<T, 4, W>
                            : c == 8  ? decode_attention_kernel<T, 8, W>
                            : c == 16 ? decode_attention_kernel<T, 16, W>
                                      : decode_attention_kernel<T, 32, W>;
        launch_overlapped(kernel, dim3(a.split, static_cast<unsigned>(a.Hq), static_cast<unsigned>(a.B)), 32 * W, 0, a);
      };
      if (a.split == 1) run.template operator()<16>();
      else run.template operator()<4>();
      if (a.split > 1) launch_overlapped(attention_merge<T>, rows, 64, 0, a);
      return;
    }
  }
  if (a.D <= 64)
    launch_overlapped(attention_kernel<T, 2>, blocks, 32 * kWarps, 0, a);
  else if (a.D <= 128)
    launch_overlapped(attention_kernel<T, 4>, blocks, 32 * kWarps, 0, a);
  else
    launch_overlapped(attention_kernel<T, 8>, blocks, 32 * kWarps, 0, a);
  if (a.split > 1) launch_overlapped(attention_merge<T>, rows, 64, 0, a);
}

}  // namespace

int attention_split(const AttentionArgs& a) {
  const int64_t rows = a.B * a.Hq * a.T, most = std::clamp<int64_t>(2 * active().sms / std::max<int64_t>(rows, 1), 1, 32);
  int64_t keys_per_warp = 0;  // in a decoding block's round, per lane batch
  dispatch_float(a.t, "scaled_dot_product_attention", [&]<class T>() {
    if constexpr (!std::is_same_v<T, double>)
      if (int c = decode_chunks<T>(a)) keys_per_warp = 32 / c;
  });
  // The decoding kernel: a row in one block of 16 warps for up to four of its rounds (512 keys
  // in bf16 at D 64), else split over blocks of 4 warps, a round each, and merged. Measured
  // decoding: at 272 keys one block gave 1350 tok/s where the split gave 1231; at 640 keys the
  // split was faster (1204 against 1167 for one block), and at 2128 far faster (1110 vs 754).
  // The general kernel: about two blocks per SM in all and at least 256 keys a block.
  if (keys_per_warp) {
    const int64_t whole = 16 * decode_lane_batches(16) * keys_per_warp, part = 4 * decode_lane_batches(4) * keys_per_warp;
    return static_cast<int>(a.S <= 4 * whole ? 1 : std::min(most, (a.S + part - 1) / part));
  }
  return static_cast<int>(std::clamp<int64_t>(std::min<int64_t>(a.S / 256, most), 1, 32));
}

void attention(const AttentionArgs& a) {
  if (a.B * a.Hq * a.T == 0) return;
  if (a.split > 1 && !a.partials) throw Error("scaled_dot_product_attention: split rows need a partials buffer");
  if (a.D > 256)
    throw Error("scaled_dot_product_attention: head dimension " + std::to_string(a.D) +
                " is above the CUDA kernel's 256");
  if (a.t == DType::f64)
    throw Error("scaled_dot_product_attention: f64 has no CUDA kernel; use the CPU");
  dispatch_float(a.t, "scaled_dot_product_attention", [&]<class T>() {
    if constexpr (!std::is_same_v<T, double>) launch<T>(a);
  });
  check_launch("scaled_dot_product_attention");
}

}  // namespace wick::cuda
