#pragma once
// Bridges between wick tensors and the host references: building tensors (contiguous or as
// non-contiguous views) from host arrays, reading them back, per-dtype tolerances and
// comparisons that report the first mismatches.
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <thread>

#include "common/reference.h"
#include "wick/wick.h"

namespace wt {

using wick::DType;
using wick::Tensor;

inline const std::vector<DType> kFloatTypes = {DType::f32, DType::f64, DType::f16, DType::bf16};
inline const std::vector<DType> kAllTypes = {DType::f32, DType::f64, DType::f16, DType::bf16,
                                             DType::i32, DType::i64, DType::boolean};

inline bool is_float(DType t) {
  return t == DType::f32 || t == DType::f64 || t == DType::f16 || t == DType::bf16;
}

/// The value `v` becomes when stored as `dt`.
inline double quantize(double v, DType dt) {
  switch (dt) {
    case DType::f32: return static_cast<float>(v);
    case DType::f64: return v;
    case DType::f16: return static_cast<float>(wick::float16(static_cast<float>(v)));
    case DType::bf16: return static_cast<float>(wick::bfloat16(static_cast<float>(v)));
    case DType::i32: return static_cast<double>(static_cast<int32_t>(v));
    case DType::i64: return static_cast<double>(static_cast<int64_t>(v));
    case DType::boolean: return v != 0 ? 1.0 : 0.0;
  }
  return v;
}

inline HostArray quantize(const HostArray& a, DType dt) {
  return map(a, [dt](double x) { return quantize(x, dt); });
}

/// A dense, evaluated tensor holding `a` converted to `dt`.
inline Tensor to_tensor(const HostArray& a, DType dt) {
  const wick::Shape& s = a.shape;
  auto conv = [&]<class T>() {
    std::vector<T> d(a.v.size());
    for (size_t i = 0; i < d.size(); ++i) {
      if constexpr (std::is_same_v<T, wick::float16> || std::is_same_v<T, wick::bfloat16>)
        d[i] = T(static_cast<float>(a.v[i]));
      else
        d[i] = static_cast<T>(a.v[i]);
    }
    return Tensor::from_vector(d, s);
  };
  switch (dt) {
    case DType::f32: return conv.operator()<float>();
    case DType::f64: return conv.operator()<double>();
    case DType::f16: return conv.operator()<wick::float16>();
    case DType::bf16: return conv.operator()<wick::bfloat16>();
    case DType::i32: return conv.operator()<int32_t>();
    case DType::i64: return conv.operator()<int64_t>();
    case DType::boolean: {
      std::vector<bool> d(a.v.size());
      for (size_t i = 0; i < d.size(); ++i) d[i] = a.v[i] != 0;
      return Tensor::from_vector(d, s);
    }
  }
  return {};
}

/// Reads `t` back through its native element type (no conversion inside the engine).
inline HostArray to_host(const Tensor& t) {
  HostArray out(t.shape());
  auto rd = [&]<class T>() {
    std::vector<T> d = t.to_vector<T>();
    for (size_t i = 0; i < d.size(); ++i) out.v[i] = static_cast<double>(static_cast<float>(d[i]));
  };
  switch (t.dtype()) {
    case DType::f32: rd.operator()<float>(); break;
    case DType::f16: rd.operator()<wick::float16>(); break;
    case DType::bf16: rd.operator()<wick::bfloat16>(); break;
    case DType::f64: {
      auto d = t.to_vector<double>();
      out.v.assign(d.begin(), d.end());
      break;
    }
    case DType::i32: {
      auto d = t.to_vector<int32_t>();
      for (size_t i = 0; i < d.size(); ++i) out.v[i] = d[i];
      break;
    }
    case DType::i64: {
      auto d = t.to_vector<int64_t>();
      for (size_t i = 0; i < d.size(); ++i) out.v[i] = static_cast<double>(d[i]);
      break;
    }
    case DType::boolean: {
      auto d = t.to_vector<bool>();
      for (size_t i = 0; i < d.size(); ++i) out.v[i] = d[i] ? 1.0 : 0.0;
      break;
    }
  }
  return out;
}

/// The raw bytes of the value, row-major, for bit-for-bit comparisons.
inline std::vector<uint8_t> bytes_of(const Tensor& t) {
  std::vector<uint8_t> out(t.nbytes());
  auto cp = [&]<class T>() {
    std::vector<T> d = t.to_vector<T>();
    if (!d.empty()) std::memcpy(out.data(), d.data(), out.size());
  };
  switch (t.dtype()) {
    case DType::f32: cp.operator()<float>(); break;
    case DType::f64: cp.operator()<double>(); break;
    case DType::f16: cp.operator()<wick::float16>(); break;
    case DType::bf16: cp.operator()<wick::bfloat16>(); break;
    case DType::i32: cp.operator()<int32_t>(); break;
    case DType::i64: cp.operator()<int64_t>(); break;
    case DType::boolean: {
      auto d = t.to_vector<bool>();
      for (size_t i = 0; i < d.size(); ++i) out[i] = d[i];
      break;
    }
  }
  return out;
}

// ---- random host data ---------------------------------------------------------------------------

inline uint64_t splitmix64(uint64_t& s) {
  uint64_t z = (s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/// Uniform values in [lo, hi) already rounded to `dt` (integers in [lo, hi], bools 0/1).
inline HostArray random_host(const Dims& shape, DType dt, uint64_t seed, double lo = -2.0,
                             double hi = 2.0) {
  HostArray a(shape);
  uint64_t s = seed * 7919 + 17;
  for (auto& x : a.v) {
    double u = static_cast<double>(splitmix64(s) >> 11) * 0x1.0p-53;
    if (dt == DType::boolean) {
      x = u < 0.5 ? 0.0 : 1.0;
    } else if (dt == DType::i32 || dt == DType::i64) {
      x = std::floor(lo + u * (hi - lo + 1));
    } else {
      x = quantize(lo + u * (hi - lo), dt);
    }
  }
  return a;
}

// ---- inputs in several memory layouts -------------------------------------------------------------

enum class Layout {
  contiguous,  // dense, evaluated
  transposed,  // an evaluated transpose view of a dense tensor of the reversed shape
  strided,     // an unevaluated step-2 slice (with a start offset) of a larger tensor
  broadcast,   // an unevaluated broadcast_to view (stride 0 on axis 0); see random_input
};
inline const std::vector<Layout> kLayouts = {Layout::contiguous, Layout::transposed,
                                             Layout::strided, Layout::broadcast};

inline const char* layout_name(Layout l) {
  switch (l) {
    case Layout::contiguous: return "contiguous";
    case Layout::transposed: return "transposed";
    case Layout::strided: return "strided";
    case Layout::broadcast: return "broadcast";
  }
  return "?";
}

/// A tensor whose logical value is `a` (converted to `dt`) laid out as `l`. Layouts that make
/// no sense for the rank fall back to contiguous; `broadcast` is handled by random_input.
inline Tensor make_input(const HostArray& a, DType dt, Layout l) {
  if (l == Layout::transposed && a.ndim() >= 2) {
    Tensor t = to_tensor(transpose(a), dt);
    Tensor v = wick::transpose(t);
    v.eval();
    return v;
  }
  if ((l == Layout::strided || l == Layout::broadcast) && a.ndim() >= 1) {
    int64_t n = a.shape.back();
    Dims big = a.shape;
    big.back() = 2 * n + 1;
    HostArray h(big, 77.0);  // poison between the selected elements
    for (int64_t f = 0; f < a.size(); ++f) {
      Dims idx = unravel(f, a.shape);
      idx.back() = 1 + 2 * idx.back();
      h.at(idx) = a[f];
    }
    return wick::slice(to_tensor(h, dt), a.ndim() - 1, 1, 2 * n + 1, 2);
  }
  return to_tensor(a, dt);
}

struct Input {
  HostArray host;
  Tensor tensor;
};

/// Random values of `shape` in the given layout; for `broadcast` the values are drawn for
/// shape[0] == 1 and broadcast (as a view) along axis 0.
inline Input random_input(const Dims& shape, DType dt, Layout l, uint64_t seed, double lo = -2.0,
                          double hi = 2.0) {
  if (l == Layout::broadcast && !shape.empty()) {
    Dims small = shape;
    small[0] = 1;
    HostArray s = random_host(small, dt, seed, lo, hi);
    return {broadcast(s, shape), wick::broadcast_to(to_tensor(s, dt), shape)};
  }
  HostArray h = random_host(shape, dt, seed, lo, hi);
  return {h, make_input(h, dt, l)};
}

// ---- comparisons ----------------------------------------------------------------------------------

struct Tol {
  double rtol = 0, atol = 0;
};

inline Tol tol_for(DType dt) {
  switch (dt) {
    case DType::f64: return {1e-12, 1e-12};
    case DType::f32: return {1e-5, 1e-6};
    case DType::f16: return {2e-3, 1e-4};
    case DType::bf16: return {1e-2, 1e-3};
    default: return {0, 0};
  }
}

inline Tol scaled(Tol t, double f) { return {t.rtol * f, t.atol * f}; }

/// Element-wise |got - want| <= atol + rtol·|want|; NaN matches NaN, infinities must match.
inline ::testing::AssertionResult all_close(const HostArray& got, const HostArray& want, Tol tol) {
  if (got.shape != want.shape)
    return ::testing::AssertionFailure()
           << "shape " << dims_str(got.shape) << ", expected " << dims_str(want.shape);
  std::ostringstream bad;
  int64_t nbad = 0;
  for (int64_t i = 0; i < got.size(); ++i) {
    double g = got[i], w = want[i];
    bool ok;
    if (std::isnan(w) || std::isnan(g)) ok = std::isnan(w) && std::isnan(g);
    else if (std::isinf(w) || std::isinf(g)) ok = g == w;
    else ok = std::abs(g - w) <= tol.atol + tol.rtol * std::abs(w);
    if (!ok && nbad++ < 6)
      bad << "\n  at " << dims_str(unravel(i, got.shape)) << ": got " << g << ", expected " << w
          << " (diff " << std::abs(g - w) << ")";
  }
  if (nbad)
    return ::testing::AssertionFailure() << nbad << " of " << got.size() << " elements differ"
                                         << " (rtol " << tol.rtol << ", atol " << tol.atol
                                         << ") in " << dims_str(got.shape) << ":" << bad.str();
  return ::testing::AssertionSuccess();
}

/// `got` has dtype `dt`, want's shape, and values within `dt`'s tolerance (or `tol`).
inline ::testing::AssertionResult matches(const Tensor& got, const HostArray& want, DType dt,
                                          std::optional<Tol> tol = std::nullopt) {
  if (!got.defined()) return ::testing::AssertionFailure() << "undefined tensor";
  if (got.dtype() != dt)
    return ::testing::AssertionFailure()
           << "dtype " << wick::dtype_name(got.dtype()) << ", expected " << wick::dtype_name(dt);
  if (got.shape() != want.shape)
    return ::testing::AssertionFailure() << "shape " << dims_str(got.shape()) << ", expected "
                                         << dims_str(want.shape);
  HostArray h;
  try {
    h = to_host(got);
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure() << "reading the value threw: " << e.what();
  }
  return all_close(h, quantize(want, dt), tol ? *tol : tol_for(dt));
}

/// The message of the wick::Error that `f` throws ("<no error>" when it throws none).
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const wick::Error& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("<not a wick::Error: ") + e.what() + ">";
  }
  return "<no error>";
}

/// Polls f.ready() for up to `seconds`; a hang is reported and ends the process, since a
/// deadlocked evaluation cannot be recovered from inside the test.
inline void wait_or_die(const wick::Future& f, double seconds = 30.0) {
  auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (!f.ready()) {
    if (std::chrono::steady_clock::now() > until) {
      std::fprintf(stderr, "FATAL: evaluation did not finish within %.0f s (deadlock?)\n", seconds);
      std::fflush(stderr);
      std::_Exit(3);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

// ---- memory ---------------------------------------------------------------------------------------

inline size_t active() { return wick::memory_stats().active; }

/// Active bytes once they stop changing (a worker may drop its last references to a graph just
/// after the caller's wait returns; baselines are taken once that has happened).
inline size_t quiesce() {
  size_t last = active();
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  while (std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    size_t now = active();
    if (now == last) return now;
    last = now;
  }
  return last;
}

/// Active bytes settle at `base` within two seconds.
inline ::testing::AssertionResult settles_at(size_t base) {
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (active() != base && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  if (active() == base) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "active bytes " << active() << ", baseline " << base
                                       << " (" << static_cast<long long>(active() - base)
                                       << " bytes still held)";
}

/// Ends the process with a message when the scope it guards runs longer than `seconds`: a
/// deadlocked evaluation then fails the test instead of hanging the suite.
class Watchdog {
 public:
  Watchdog(double seconds, std::string what) : what_(std::move(what)) {
    thread_ = std::thread([this, seconds] {
      std::unique_lock lock(m_);
      if (!cv_.wait_for(lock, std::chrono::duration<double>(seconds), [this] { return done_; })) {
        std::fprintf(stderr, "FATAL: %s did not finish within %.0f s (deadlock?)\n", what_.c_str(),
                     seconds);
        std::fflush(stderr);
        std::_Exit(3);
      }
    });
  }
  ~Watchdog() {
    {
      std::lock_guard lock(m_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

 private:
  std::string what_;
  std::mutex m_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;
};

inline std::string describe(const char* what, DType dt, Layout l, const Dims& s) {
  return std::string(what) + " dtype=" + wick::dtype_name(dt) + " layout=" + layout_name(l) +
         " shape=" + dims_str(s);
}

}  // namespace wt
