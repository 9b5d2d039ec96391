#pragma once
// Naive double-precision references for the engine's ops. Everything here is deliberately
// plain: row-major loops over a host array, NumPy broadcasting done by explicit index mapping,
// no shared code with the library (wick's own Shape type is only used as a vector of sizes).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <numeric>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace wt {

using Dims = std::vector<int64_t>;

inline int64_t count_of(const Dims& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

/// Concatenates anything streamable.
template <class... A>
std::string cat(const A&... a) {
  std::ostringstream os;
  (os << ... << a);
  return os.str();
}

inline std::string dims_str(const Dims& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) {
    if (i) out += ',';
    out += std::to_string(s[i]);
  }
  out += ']';
  return out;
}

/// A dense row-major host array of doubles.
struct HostArray {
  Dims shape;
  std::vector<double> v;

  HostArray() = default;
  explicit HostArray(Dims s, double fill = 0.0) : shape(std::move(s)), v(count_of(shape), fill) {}
  HostArray(Dims s, std::vector<double> values) : shape(std::move(s)), v(std::move(values)) {
    if (static_cast<int64_t>(v.size()) != count_of(shape))
      throw std::logic_error(cat("HostArray: ", v.size(), " values for ", dims_str(shape)));
  }
  int64_t size() const { return static_cast<int64_t>(v.size()); }
  int ndim() const { return static_cast<int>(shape.size()); }
  double& operator[](int64_t i) { return v[static_cast<size_t>(i)]; }
  double operator[](int64_t i) const { return v[static_cast<size_t>(i)]; }

  int64_t flat(const Dims& idx) const {
    int64_t f = 0;
    for (size_t d = 0; d < shape.size(); ++d) f = f * shape[d] + idx[d];
    return f;
  }
  double at(const Dims& idx) const { return v[static_cast<size_t>(flat(idx))]; }
  double& at(const Dims& idx) { return v[static_cast<size_t>(flat(idx))]; }
};

/// Multi-index of flat position `f` in a row-major array of shape `s`.
inline Dims unravel(int64_t f, const Dims& s) {
  Dims idx(s.size());
  for (size_t d = s.size(); d-- > 0;) {
    idx[d] = s[d] ? f % s[d] : 0;
    if (s[d]) f /= s[d];
  }
  return idx;
}

inline int norm_axis(int axis, int ndim) {
  int a = axis < 0 ? axis + ndim : axis;
  if (a < 0 || a >= ndim) throw std::logic_error("reference: bad axis");
  return a;
}

// ---- broadcasting -------------------------------------------------------------------------------

inline Dims broadcast_dims(const Dims& a, const Dims& b) {
  size_t n = std::max(a.size(), b.size());
  Dims out(n);
  for (size_t i = 0; i < n; ++i) {
    int64_t da = i + a.size() < n ? 1 : a[i + a.size() - n];
    int64_t db = i + b.size() < n ? 1 : b[i + b.size() - n];
    if (da != db && da != 1 && db != 1) throw std::logic_error("reference: no broadcast");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

/// a broadcast (NumPy rules) to `shape`, materialised.
inline HostArray broadcast(const HostArray& a, const Dims& shape) {
  HostArray out(shape);
  size_t lead = shape.size() - a.shape.size();
  for (int64_t f = 0; f < out.size(); ++f) {
    Dims oi = unravel(f, shape);
    Dims ai(a.shape.size());
    for (size_t d = 0; d < a.shape.size(); ++d) ai[d] = a.shape[d] == 1 ? 0 : oi[lead + d];
    out[f] = a.at(ai);
  }
  return out;
}

inline HostArray map(const HostArray& a, const std::function<double(double)>& f) {
  HostArray out(a.shape);
  for (int64_t i = 0; i < a.size(); ++i) out[i] = f(a[i]);
  return out;
}

inline HostArray zip(const HostArray& a, const HostArray& b,
                     const std::function<double(double, double)>& f) {
  Dims s = broadcast_dims(a.shape, b.shape);
  HostArray x = broadcast(a, s), y = broadcast(b, s), out(s);
  for (int64_t i = 0; i < out.size(); ++i) out[i] = f(x[i], y[i]);
  return out;
}

inline HostArray zip3(const HostArray& a, const HostArray& b, const HostArray& c,
                      const std::function<double(double, double, double)>& f) {
  Dims s = broadcast_dims(broadcast_dims(a.shape, b.shape), c.shape);
  HostArray x = broadcast(a, s), y = broadcast(b, s), z = broadcast(c, s), out(s);
  for (int64_t i = 0; i < out.size(); ++i) out[i] = f(x[i], y[i], z[i]);
  return out;
}

// ---- scalar functions -------------------------------------------------------------------------

inline double sigmoid_d(double x) { return 1.0 / (1.0 + std::exp(-x)); }
inline double gelu_d(double x) { return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0))); }
inline double gelu_tanh_d(double x) {
  const double c = std::sqrt(2.0 / M_PI);
  return 0.5 * x * (1.0 + std::tanh(c * (x + 0.044715 * x * x * x)));
}

// ---- reductions -------------------------------------------------------------------------------

/// Reduces `axes` (empty: all) by calling `f` on the list of reduced values of each output
/// element, in row-major order of the reduced axes.
inline HostArray reduce_axes(const HostArray& a, std::vector<int> axes, bool keepdims,
                        const std::function<double(const std::vector<double>&)>& f) {
  int nd = a.ndim();
  std::vector<bool> red(nd, axes.empty());
  for (int ax : axes) red[norm_axis(ax, nd)] = true;
  Dims kept_shape, out_shape;
  for (int d = 0; d < nd; ++d) {
    kept_shape.push_back(red[d] ? 1 : a.shape[d]);
    if (!red[d] || keepdims) out_shape.push_back(red[d] ? 1 : a.shape[d]);
  }
  std::vector<std::vector<double>> groups(count_of(kept_shape));
  for (int64_t f = 0; f < a.size(); ++f) {
    Dims idx = unravel(f, a.shape);
    for (int d = 0; d < nd; ++d)
      if (red[d]) idx[d] = 0;
    int64_t g = 0;
    for (int d = 0; d < nd; ++d) g = g * kept_shape[d] + idx[d];
    groups[g].push_back(a[f]);
  }
  HostArray out(out_shape);
  for (int64_t g = 0; g < out.size(); ++g) out[g] = f(groups[g]);
  return out;
}

inline double sum_of(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return s;
}
inline double mean_of(const std::vector<double>& v) {
  return v.empty() ? std::numeric_limits<double>::quiet_NaN() : sum_of(v) / v.size();
}
inline double max_of(const std::vector<double>& v) {
  double m = -std::numeric_limits<double>::infinity();
  for (double x : v) m = std::max(m, x);
  return m;
}
inline double min_of(const std::vector<double>& v) {
  double m = std::numeric_limits<double>::infinity();
  for (double x : v) m = std::min(m, x);
  return m;
}
inline double logsumexp_of(const std::vector<double>& v) {
  double m = max_of(v);
  if (std::isinf(m)) return m;
  double s = 0;
  for (double x : v) s += std::exp(x - m);
  return m + std::log(s);
}
inline double var_of(const std::vector<double>& v, int ddof) {
  double m = mean_of(v), s = 0;
  for (double x : v) s += (x - m) * (x - m);
  return s / (static_cast<double>(v.size()) - ddof);
}

/// Index of the first maximum (or minimum) along `axis`.
inline HostArray argreduce(const HostArray& a, int axis, bool is_max, bool keepdims) {
  int ax = norm_axis(axis, a.ndim());
  return reduce_axes(a, {ax}, keepdims, [&](const std::vector<double>& v) {
    size_t best = 0;
    for (size_t i = 1; i < v.size(); ++i)
      if (is_max ? v[i] > v[best] : v[i] < v[best]) best = i;
    return static_cast<double>(best);
  });
}

// ---- shape ops --------------------------------------------------------------------------------

inline HostArray reshape(const HostArray& a, const Dims& s) { return HostArray(s, a.v); }

inline HostArray transpose(const HostArray& a, const std::vector<int>& perm) {
  Dims s(perm.size());
  for (size_t d = 0; d < perm.size(); ++d) s[d] = a.shape[perm[d]];
  HostArray out(s);
  for (int64_t f = 0; f < out.size(); ++f) {
    Dims oi = unravel(f, s), ai(perm.size());
    for (size_t d = 0; d < perm.size(); ++d) ai[perm[d]] = oi[d];
    out[f] = a.at(ai);
  }
  return out;
}

inline HostArray transpose(const HostArray& a) {
  std::vector<int> perm(a.ndim());
  for (int d = 0; d < a.ndim(); ++d) perm[d] = a.ndim() - 1 - d;
  return transpose(a, perm);
}

/// Python slice semantics for step > 0 on one axis: normalises and clamps start/stop.
inline void py_slice(int64_t n, int64_t& start, int64_t& stop, int64_t step, int64_t& len) {
  if (start < 0) start += n;
  if (stop < 0) stop += n;
  start = std::clamp<int64_t>(start, 0, n);
  stop = std::clamp<int64_t>(stop, 0, n);
  len = stop > start ? (stop - start + step - 1) / step : 0;
}

inline HostArray slice(const HostArray& a, int axis, int64_t start, int64_t stop, int64_t step) {
  int ax = norm_axis(axis, a.ndim());
  int64_t len;
  py_slice(a.shape[ax], start, stop, step, len);
  Dims s = a.shape;
  s[ax] = len;
  HostArray out(s);
  for (int64_t f = 0; f < out.size(); ++f) {
    Dims idx = unravel(f, s);
    idx[ax] = start + idx[ax] * step;
    out[f] = a.at(idx);
  }
  return out;
}

inline HostArray concatenate(const std::vector<HostArray>& xs, int axis) {
  int ax = norm_axis(axis, xs[0].ndim());
  Dims s = xs[0].shape;
  s[ax] = 0;
  for (const auto& x : xs) s[ax] += x.shape[ax];
  HostArray out(s);
  int64_t base = 0;
  for (const auto& x : xs) {
    for (int64_t f = 0; f < x.size(); ++f) {
      Dims idx = unravel(f, x.shape);
      idx[ax] += base;
      out.at(idx) = x[f];
    }
    base += x.shape[ax];
  }
  return out;
}

inline HostArray stack(const std::vector<HostArray>& xs, int axis) {
  int ax = norm_axis(axis, xs[0].ndim() + 1);
  std::vector<HostArray> ys;
  for (const auto& x : xs) {
    Dims s = x.shape;
    s.insert(s.begin() + ax, 1);
    ys.push_back(reshape(x, s));
  }
  return concatenate(ys, ax);
}

/// NumPy take along `axis` with indices of any shape (negatives count from the end).
inline HostArray take(const HostArray& x, const HostArray& idx, int axis) {
  int ax = norm_axis(axis, x.ndim());
  Dims s(x.shape.begin(), x.shape.begin() + ax);
  s.insert(s.end(), idx.shape.begin(), idx.shape.end());
  s.insert(s.end(), x.shape.begin() + ax + 1, x.shape.end());
  HostArray out(s);
  int ni = idx.ndim();
  for (int64_t f = 0; f < out.size(); ++f) {
    Dims oi = unravel(f, s);
    Dims ii(oi.begin() + ax, oi.begin() + ax + ni);
    int64_t k = static_cast<int64_t>(idx.at(ii));
    if (k < 0) k += x.shape[ax];
    Dims xi(oi.begin(), oi.begin() + ax);
    xi.push_back(k);
    xi.insert(xi.end(), oi.begin() + ax + ni, oi.end());
    out[f] = x.at(xi);
  }
  return out;
}

inline HostArray take_along_axis(const HostArray& x, const HostArray& idx, int axis) {
  int ax = norm_axis(axis, x.ndim());
  HostArray out(idx.shape);
  for (int64_t f = 0; f < out.size(); ++f) {
    Dims i = unravel(f, idx.shape);
    int64_t k = static_cast<int64_t>(idx[f]);
    if (k < 0) k += x.shape[ax];
    i[ax] = k;
    out[f] = x.at(i);
  }
  return out;
}

// ---- linear algebra and nn --------------------------------------------------------------------

/// NumPy matmul: 1-d operands are promoted and the added axis removed again.
inline HostArray matmul(HostArray a, HostArray b) {
  bool a1 = a.ndim() == 1, b1 = b.ndim() == 1;
  if (a1) a.shape = {1, a.shape[0]};
  if (b1) b.shape = {b.shape[0], 1};
  int64_t M = a.shape[a.ndim() - 2], K = a.shape.back(), N = b.shape.back();
  if (b.shape[b.ndim() - 2] != K) throw std::logic_error("reference matmul: inner dims");
  Dims ba(a.shape.begin(), a.shape.end() - 2), bb(b.shape.begin(), b.shape.end() - 2);
  Dims batch = broadcast_dims(ba, bb);
  Dims as = batch, bs = batch, os = batch;
  as.insert(as.end(), {M, K});
  bs.insert(bs.end(), {K, N});
  os.insert(os.end(), {M, N});
  HostArray x = broadcast(a, as), y = broadcast(b, bs), out(os);
  int64_t nb = count_of(batch);
  for (int64_t p = 0; p < nb; ++p)
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) {
        double s = 0;
        for (int64_t k = 0; k < K; ++k) s += x[(p * M + i) * K + k] * y[(p * K + k) * N + j];
        out[(p * M + i) * N + j] = s;
      }
  Dims fs = batch;
  if (!a1) fs.push_back(M);
  if (!b1) fs.push_back(N);
  return reshape(out, fs);
}

/// x [..., in] · wᵀ (+ bias).
inline HostArray linear(const HostArray& x, const HostArray& w,
                        const std::optional<HostArray>& bias = std::nullopt) {
  HostArray y = matmul(x, transpose(w));
  if (bias) y = zip(y, *bias, std::plus<double>());
  return y;
}

inline HostArray lora_linear(const HostArray& x, const HostArray& w,
                             const std::optional<HostArray>& bias, const HostArray& a,
                             const HostArray& b, double scale) {
  HostArray base = linear(x, w, bias);
  HostArray low = matmul(matmul(x, transpose(a)), transpose(b));
  return zip(base, low, [scale](double p, double q) { return p + scale * q; });
}

/// Moves `axis` last, applies `f` to each row, moves it back.
inline HostArray along_axis(const HostArray& x, int axis,
                            const std::function<void(const double*, double*, int64_t)>& f) {
  int ax = norm_axis(axis, x.ndim());
  std::vector<int> perm;
  for (int d = 0; d < x.ndim(); ++d)
    if (d != ax) perm.push_back(d);
  perm.push_back(ax);
  HostArray t = transpose(x, perm), out(t.shape);
  int64_t n = x.shape[ax];
  for (int64_t r = 0; n && r < t.size() / n; ++r) f(&t.v[r * n], &out.v[r * n], n);
  std::vector<int> inv(perm.size());
  for (size_t d = 0; d < perm.size(); ++d) inv[perm[d]] = static_cast<int>(d);
  return transpose(out, inv);
}

inline HostArray softmax(const HostArray& x, int axis, bool log = false) {
  return along_axis(x, axis, [log](const double* in, double* out, int64_t n) {
    std::vector<double> row(in, in + n);
    double lse = logsumexp_of(row);
    for (int64_t i = 0; i < n; ++i) out[i] = log ? in[i] - lse : std::exp(in[i] - lse);
  });
}

inline HostArray rms_norm(const HostArray& x, const std::optional<HostArray>& w, double eps) {
  HostArray y = along_axis(x, -1, [eps](const double* in, double* out, int64_t n) {
    double ms = 0;
    for (int64_t i = 0; i < n; ++i) ms += in[i] * in[i];
    double r = 1.0 / std::sqrt(ms / n + eps);
    for (int64_t i = 0; i < n; ++i) out[i] = in[i] * r;
  });
  if (w) y = zip(y, *w, std::multiplies<double>());
  return y;
}

inline HostArray layer_norm(const HostArray& x, const std::optional<HostArray>& w,
                            const std::optional<HostArray>& b, double eps) {
  HostArray y = along_axis(x, -1, [eps](const double* in, double* out, int64_t n) {
    std::vector<double> row(in, in + n);
    double m = mean_of(row), v = var_of(row, 0), r = 1.0 / std::sqrt(v + eps);
    for (int64_t i = 0; i < n; ++i) out[i] = (in[i] - m) * r;
  });
  if (w) y = zip(y, *w, std::multiplies<double>());
  if (b) y = zip(y, *b, std::plus<double>());
  return y;
}

/// theta^(-2i/D), rounded to f32 as the engine stores it.
inline std::vector<float> rope_inv_freq(double theta, int64_t D) {
  std::vector<float> f(D / 2);
  for (int64_t i = 0; i < D / 2; ++i)
    f[i] = static_cast<float>(std::pow(theta, -2.0 * static_cast<double>(i) / D));
  return f;
}

/// Rotate-half RoPE over x [..., T, D]: row t sits at position offset + t.
inline HostArray rope(const HostArray& x, const std::vector<float>& inv_freq, int64_t offset) {
  int64_t D = x.shape.back(), T = x.shape[x.ndim() - 2], h = D / 2;
  HostArray out(x.shape);
  for (int64_t r = 0; r < x.size() / D; ++r) {
    double pos = static_cast<double>(offset + r % T);
    const double* in = &x.v[r * D];
    double* o = &out.v[r * D];
    for (int64_t i = 0; i < h; ++i) {
      double ang = pos * static_cast<double>(inv_freq[i]);
      double c = std::cos(ang), s = std::sin(ang);
      o[i] = in[i] * c - in[i + h] * s;
      o[i + h] = in[i + h] * c + in[i] * s;
    }
  }
  return out;
}

/// Attention over q [B,Hq,T,D], k/v [B,Hkv,S,D]. `mask` is additive and broadcasts to
/// [B,Hq,T,S] (use -inf to drop). Rows with no visible key come out as NaN.
inline HostArray attention(const HostArray& q, const HostArray& k, const HostArray& v,
                           double scale, bool causal,
                           const std::optional<HostArray>& mask = std::nullopt) {
  int64_t B = q.shape[0], Hq = q.shape[1], T = q.shape[2], D = q.shape[3];
  int64_t Hkv = k.shape[1], S = k.shape[2], Dv = v.shape[3];
  int64_t group = Hq / Hkv;
  std::optional<HostArray> m;
  if (mask) m = broadcast(*mask, {B, Hq, T, S});
  HostArray out({B, Hq, T, Dv});
  const double ninf = -std::numeric_limits<double>::infinity();
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < Hq; ++h) {
      int64_t hk = h / group;
      for (int64_t t = 0; t < T; ++t) {
        std::vector<double> sc(S);
        for (int64_t s = 0; s < S; ++s) {
          double dot = 0;
          for (int64_t d = 0; d < D; ++d) dot += q.at({b, h, t, d}) * k.at({b, hk, s, d});
          sc[s] = dot * scale;
          if (m) sc[s] += m->at({b, h, t, s});
          if (causal && s > t + (S - T)) sc[s] = ninf;
        }
        double mx = max_of(sc);
        for (int64_t d = 0; d < Dv; ++d) out.at({b, h, t, d}) = 0;
        if (std::isinf(mx)) {
          for (int64_t d = 0; d < Dv; ++d) out.at({b, h, t, d}) = std::nan("");
          continue;
        }
        double den = 0;
        for (int64_t s = 0; s < S; ++s) den += std::exp(sc[s] - mx);
        for (int64_t s = 0; s < S; ++s) {
          double p = std::exp(sc[s] - mx) / den;
          for (int64_t d = 0; d < Dv; ++d) out.at({b, h, t, d}) += p * v.at({b, hk, s, d});
        }
      }
    }
  return out;
}

}  // namespace wt
