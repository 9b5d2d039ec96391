// Rotary position embedding, rotate-half form (as HF): for i < D/2, with angle = pos·inv_freq[i],
//   out[i] = x[i]·cos − x[i+D/2]·sin,   out[i+D/2] = x[i+D/2]·cos + x[i]·sin.
// cos/sin are computed into a [T, D/2] table (f32 as HF does: f32 angle, f32 cos/sin; f64 inputs
// get an f64 table) shared by every leading index. A forward pass applies the same table to q
// and k of every layer, so the last few tables are kept (sin/cos dominate the cost otherwise).
#include <cmath>
#include <cstring>
#include <memory>
#include <mutex>
#include <vector>

#include "backend/cpu/kernel.h"
#include "backend/cpu/vmath.h"
#include "graph/primitives.h"

namespace wick::cpu {
namespace {

/// One dense row: o = rotate(x) with the row's cos/sin (h = D/2). o must not alias x.
template <class C>
inline void rope_row(const C* __restrict x, const C* __restrict c, const C* __restrict s,
                     C* __restrict o, int64_t h) {
#pragma omp simd
  for (int64_t i = 0; i < h; ++i) {
    C x1 = x[i], x2 = x[i + h];
    o[i] = x1 * c[i] - x2 * s[i];
    o[i + h] = x2 * c[i] + x1 * s[i];
  }
}

/// cos and sin of (offset + t)·inv_freq[i], [T, D/2] each, in the compute type C.
template <class C>
struct Table {
  std::vector<float> inv_freq;
  int64_t offset = 0, T = 0;
  std::vector<C> cs, sn;
};

template <class C>
std::shared_ptr<const Table<C>> make_table(const std::vector<float>& inv_freq, int64_t offset, int64_t T) {
  auto tab = std::make_shared<Table<C>>();
  tab->inv_freq = inv_freq;
  tab->offset = offset;
  tab->T = T;
  int64_t h = static_cast<int64_t>(inv_freq.size());
  tab->cs.resize(static_cast<size_t>(T * h));
  tab->sn.resize(static_cast<size_t>(T * h));
  C* cs = tab->cs.data();
  C* sn = tab->sn.data();
  parallel_for(T, 40 * h, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t)
      for (int64_t i = 0; i < h; ++i) {
        C angle;
        if constexpr (std::is_same_v<C, double>) {
          angle = static_cast<double>(offset + t) * static_cast<double>(inv_freq[i]);
        } else {
          angle = static_cast<float>(offset + t) * inv_freq[i];
        }
        cs[t * h + i] = std::cos(angle);
        sn[t * h + i] = std::sin(angle);
      }
  });
  return tab;
}

/// The table for (inv_freq, offset, T): from a small most-recently-used cache, else computed
/// (outside the lock) and added.
template <class C>
std::shared_ptr<const Table<C>> get_table(const std::vector<float>& inv_freq, int64_t offset, int64_t T) {
  constexpr size_t kEntries = 4;
  constexpr size_t kMaxElems = size_t{1} << 20;  // bigger tables are not kept
  // Leaked on purpose: kernels may still run while statics are destroyed at exit.
  static std::mutex& mu = *new std::mutex;
  static auto& cache = *new std::vector<std::shared_ptr<const Table<C>>>;  // most recent last
  auto same = [&](const Table<C>& e) {
    return e.offset == offset && e.T == T && e.inv_freq.size() == inv_freq.size() &&
           std::memcmp(e.inv_freq.data(), inv_freq.data(), inv_freq.size() * sizeof(float)) == 0;
  };
  {
    std::lock_guard lock(mu);
    for (size_t i = cache.size(); i-- > 0;) {
      if (same(*cache[i])) {
        auto hit = cache[i];
        cache.erase(cache.begin() + static_cast<std::ptrdiff_t>(i));
        cache.push_back(hit);
        return hit;
      }
    }
  }
  auto tab = make_table<C>(inv_freq, offset, T);
  if (tab->cs.size() <= kMaxElems) {
    std::lock_guard lock(mu);
    if (cache.size() >= kEntries) cache.erase(cache.begin());
    cache.push_back(tab);
  }
  return tab;
}

template <class T>
void rope_typed(const Node& x, Node& out, const std::vector<float>& inv_freq, int64_t offset) {
  using C = std::conditional_t<std::is_same_v<T, double>, double, float>;
  size_t nd = x.shape.size();
  int64_t D = x.shape[nd - 1], T_ = x.shape[nd - 2], h = D / 2;
  int64_t rows = out.size() / D;
  auto table = get_table<C>(inv_freq, offset, T_);
  const std::vector<C>& cs = table->cs;
  const std::vector<C>& sn = table->sn;
  int64_t xs = x.strides[nd - 1];
  RowOffsets offs(x);
  const T* xp = x.data<T>();
  T* yp = out.data<T>();
  parallel_for(rows, 3 * D, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const T* xr = xp + offs(r);
      T* yr = yp + r * D;
      int64_t t = r % T_;
      const C* c = cs.data() + t * h;
      const C* s = sn.data() + t * h;
      if constexpr (std::is_same_v<T, C>) {
        if (xs == 1) {
          rope_row<C>(xr, c, s, yr, h);
        } else {
          C* buf;
          std::vector<C> dbuf;
          if constexpr (std::is_same_v<C, float>) {
            buf = thread_scratch(kRowBuffer, static_cast<size_t>(D));
          } else {
            dbuf.resize(static_cast<size_t>(D));
            buf = dbuf.data();
          }
          for (int64_t i = 0; i < D; ++i) buf[i] = xr[i * xs];
          rope_row<C>(buf, c, s, yr, h);
        }
      } else {
        float* buf = thread_scratch(kRowBuffer, static_cast<size_t>(2 * D));
        to_f32(xr, xs, buf, D);
        rope_row<float>(buf, c, s, buf + D, h);
        from_f32(buf + D, yr, D);
      }
    }
  });
}

}  // namespace
}  // namespace wick::cpu

namespace wick::detail {
using namespace cpu;

void Rope::eval_cpu(std::span<Node* const> in, Node& out) {
  const Node& x = *in[0];
  require_same_dtype("rope", x, out);
  if (x.shape.size() < 2 || x.shape.back() % 2 != 0 ||
      static_cast<int64_t>(inv_freq.size()) * 2 != x.shape.back())
    throw Error("rope: x " + shape_str(x.shape) + " needs [..., T, D] with D even and D/2 frequencies");
  // A position input (i64 [1], see rope_at) moves the offset when the op runs.
  int64_t at = offset + (in.size() > 1 ? *in[1]->data<int64_t>() : 0);
  if (at < 0) throw Error("rope: negative position " + std::to_string(at));
  alloc_output(out);
  if (out.size() == 0) return;
  dispatch_float(out.dtype, "rope", [&]<class T>() { rope_typed<T>(x, out, inv_freq, at); });
}

}  // namespace wick::detail
