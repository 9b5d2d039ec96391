// Kernels of compile's fused primitives. A fused elementwise chain runs over the output in
// chunks of at most kChunk elements of one row: each input's chunk is loaded (converted to the
// register type, or used in place when it is dense f32/f64), then every instruction makes one
// vectorised pass over the chunk's registers, which stay in L1. Each instruction computes like
// its unfused kernel and rounds to its dtype, so results are bit-identical to the unfused graph.
#include <cmath>
#include <ostream>

#include "backend/cpu/kernel.h"
#include "backend/cpu/vmath.h"
#include "graph/primitives.h"

namespace wick::cpu {
namespace {

constexpr int64_t kChunk = 512;
using detail::BinaryOp;
using detail::FusedElementwise;
using detail::UnaryOp;

template <class R>
R round_to(R v, DType t) {
  switch (t) {
    case DType::bf16: return static_cast<R>(static_cast<float>(bfloat16(static_cast<float>(v))));
    case DType::f16: return static_cast<R>(static_cast<float>(float16(static_cast<float>(v))));
    case DType::f32: return static_cast<R>(static_cast<float>(v));
    case DType::boolean: return v != R(0) ? R(1) : R(0);
    default: return v;
  }
}

template <class R>
void run_unary(UnaryOp op, const R* x, R* y, int64_t n) {
  constexpr bool f = std::is_same_v<R, float>;
  switch (op) {
    case UnaryOp::neg:
      for (int64_t i = 0; i < n; ++i) y[i] = -x[i];
      return;
    case UnaryOp::abs:
      for (int64_t i = 0; i < n; ++i) y[i] = x[i] < 0 ? -x[i] : x[i];
      return;
    case UnaryOp::relu:
      for (int64_t i = 0; i < n; ++i) y[i] = x[i] > 0 ? x[i] : R(0);
      return;
    case UnaryOp::square:
      for (int64_t i = 0; i < n; ++i) y[i] = x[i] * x[i];
      return;
    case UnaryOp::logical_not:
      for (int64_t i = 0; i < n; ++i) y[i] = x[i] == R(0) ? R(1) : R(0);
      return;
    case UnaryOp::exp:
      if constexpr (f) {
#pragma omp simd
        for (int64_t i = 0; i < n; ++i) y[i] = fast_exp(x[i]);
      } else {
        for (int64_t i = 0; i < n; ++i) y[i] = std::exp(x[i]);
      }
      return;
    case UnaryOp::sigmoid:
      if constexpr (f) {
#pragma omp simd
        for (int64_t i = 0; i < n; ++i) y[i] = 1.0f / (1.0f + fast_exp(-x[i]));
      } else {
        for (int64_t i = 0; i < n; ++i) y[i] = R(1) / (R(1) + std::exp(-x[i]));
      }
      return;
    case UnaryOp::silu:
      if constexpr (f) {
#pragma omp simd
        for (int64_t i = 0; i < n; ++i) y[i] = x[i] / (1.0f + fast_exp(-x[i]));
      } else {
        for (int64_t i = 0; i < n; ++i) y[i] = x[i] / (R(1) + std::exp(-x[i]));
      }
      return;
    case UnaryOp::log:
      for (int64_t i = 0; i < n; ++i) y[i] = std::log(x[i]);
      return;
    case UnaryOp::sqrt:
      for (int64_t i = 0; i < n; ++i) y[i] = std::sqrt(x[i]);
      return;
    case UnaryOp::rsqrt:
      for (int64_t i = 0; i < n; ++i) y[i] = R(1) / std::sqrt(x[i]);
      return;
    case UnaryOp::sin:
      for (int64_t i = 0; i < n; ++i) y[i] = std::sin(x[i]);
      return;
    case UnaryOp::cos:
      for (int64_t i = 0; i < n; ++i) y[i] = std::cos(x[i]);
      return;
    case UnaryOp::tanh:
      for (int64_t i = 0; i < n; ++i) y[i] = std::tanh(x[i]);
      return;
    case UnaryOp::erf:
      if constexpr (std::is_same_v<R, float>) {
#pragma omp simd
        for (int64_t i = 0; i < n; ++i) y[i] = fast_erf(x[i]);
      } else {
        for (int64_t i = 0; i < n; ++i) y[i] = std::erf(x[i]);
      }
      return;
    case UnaryOp::gelu:
      if constexpr (std::is_same_v<R, float>) {
#pragma omp simd
        for (int64_t i = 0; i < n; ++i) y[i] = fast_gelu(x[i]);
      } else {
        for (int64_t i = 0; i < n; ++i) y[i] = R(0.5) * x[i] * (R(1) + std::erf(x[i] * R(0.70710678118654752440)));
      }
      return;
    case UnaryOp::gelu_tanh:
      if constexpr (std::is_same_v<R, float>) {
#pragma omp simd
        for (int64_t i = 0; i < n; ++i) y[i] = fast_gelu_tanh(x[i]);
        return;
      }
      for (int64_t i = 0; i < n; ++i) {
        R v = x[i], inner = R(0.79788456080286535588) * (v + R(0.044715) * v * v * v);
        y[i] = R(0.5) * v * (R(1) + std::tanh(inner));
      }
      return;
  }
}

template <class R>
void run_binary(BinaryOp op, const R* a, const R* b, R* y, int64_t n) {
  auto each = [&](auto f) {
    for (int64_t i = 0; i < n; ++i) y[i] = f(a[i], b[i]);
  };
  switch (op) {
    case BinaryOp::add: return each([](R x, R z) { return x + z; });
    case BinaryOp::sub: return each([](R x, R z) { return x - z; });
    case BinaryOp::mul: return each([](R x, R z) { return x * z; });
    case BinaryOp::div: return each([](R x, R z) { return x / z; });
    case BinaryOp::pow: return each([](R x, R z) { return std::pow(x, z); });
    case BinaryOp::max: return each([](R x, R z) { return x > z || x != x ? x : z; });
    case BinaryOp::min: return each([](R x, R z) { return x < z || x != x ? x : z; });
    case BinaryOp::eq: return each([](R x, R z) { return R(x == z); });
    case BinaryOp::ne: return each([](R x, R z) { return R(x != z); });
    case BinaryOp::lt: return each([](R x, R z) { return R(x < z); });
    case BinaryOp::le: return each([](R x, R z) { return R(x <= z); });
    case BinaryOp::gt: return each([](R x, R z) { return R(x > z); });
    case BinaryOp::ge: return each([](R x, R z) { return R(x >= z); });
    case BinaryOp::logical_and: return each([](R x, R z) { return R(x != 0 && z != 0); });
    case BinaryOp::logical_or: return each([](R x, R z) { return R(x != 0 || z != 0); });
  }
}

/// Loads n elements of `in` at element offset `off` with `stride` as R.
template <class R>
void load_chunk(const Node& in, int64_t off, int64_t stride, R* dst, int64_t n) {
  dispatch(in.dtype, [&]<class T>() {
    const T* p = in.data<T>() + off;
    if (stride == 0) {
      R v = static_cast<R>(load(p));
      for (int64_t i = 0; i < n; ++i) dst[i] = v;
    } else {
      for (int64_t i = 0; i < n; ++i) dst[i] = static_cast<R>(load(p + i * stride));
    }
  });
}

template <class R>
void run_fused(const FusedElementwise& f, std::span<Node* const> in, Node& out) {
  const size_t n_in = in.size(), n_regs = n_in + f.program.size();
  const size_t nd = out.shape.size();
  int64_t inner = nd ? out.shape.back() : 1;
  int64_t rows = inner ? out.size() / inner : 0;
  int64_t chunks_per_row = (inner + kChunk - 1) / kChunk;
  // Per input: strides of the leading (row) axes and of the last axis, aligned to the output.
  std::vector<Strides> row_st(n_in);
  std::vector<int64_t> inner_st(n_in, 0);
  for (size_t i = 0; i < n_in; ++i) {
    Strides a = aligned_strides(*in[i], nd);
    if (nd) {
      inner_st[i] = a.back();
      a.pop_back();
    }
    row_st[i] = std::move(a);
  }
  Shape lead(out.shape.begin(), out.shape.end() - (nd ? 1 : 0));
  parallel_for(rows * chunks_per_row, kChunk * static_cast<int64_t>(f.program.size()), [&](int64_t b, int64_t e) {
    // Registers for this thread: the scratch is grown once per thread, outside any hot loop.
    R* regs = reinterpret_cast<R*>(thread_scratch(kRowBuffer, n_regs * kChunk * sizeof(R) / sizeof(float)));
    std::vector<const R*> src(n_regs);
    // One-element inputs (scalars) are splatted once, not per chunk.
    for (size_t i = 0; i < n_in; ++i)
      if (in[i]->size() == 1) {
        load_chunk<R>(*in[i], 0, 0, regs + i * kChunk, kChunk);
        src[i] = regs + i * kChunk;
      }
    for (int64_t t = b; t < e; ++t) {
      int64_t r = t / chunks_per_row, c0 = (t % chunks_per_row) * kChunk;
      int64_t n = std::min(kChunk, inner - c0);
      for (size_t i = 0; i < n_in; ++i) {
        if (in[i]->size() == 1) continue;
        int64_t s = inner_st[i];
        int64_t off = linear_offset(r, lead, row_st[i]) + c0 * s;  // relative to the node's offset
        if (in[i]->dtype == dtype_of_v<R> && s == 1) {
          src[i] = in[i]->data<R>() + off;
        } else {
          R* d = regs + i * kChunk;
          load_chunk<R>(*in[i], off, s, d, n);
          src[i] = d;
        }
      }
      for (size_t k = 0; k < f.program.size(); ++k) {
        const auto& ins = f.program[k];
        R* y = regs + (n_in + k) * kChunk;
        switch (ins.kind) {
          case FusedElementwise::Kind::unary: run_unary(static_cast<UnaryOp>(ins.op), src[ins.a], y, n); break;
          case FusedElementwise::Kind::binary:
            run_binary(static_cast<BinaryOp>(ins.op), src[ins.a], src[ins.b], y, n);
            break;
          case FusedElementwise::Kind::where:
            for (int64_t i = 0; i < n; ++i) y[i] = src[ins.a][i] != R(0) ? src[ins.b][i] : src[ins.c][i];
            break;
          case FusedElementwise::Kind::cast:
            for (int64_t i = 0; i < n; ++i) y[i] = src[ins.a][i];
            break;
        }
        if (ins.dtype != dtype_of_v<R>)
          for (int64_t i = 0; i < n; ++i) y[i] = round_to(y[i], ins.dtype);
        src[n_in + k] = y;
      }
      const R* res = src[n_regs - 1];
      dispatch(out.dtype, [&]<class T>() {
        T* o = out.data<T>() + r * inner + c0;
        for (int64_t i = 0; i < n; ++i) store(o + i, res[i]);
      });
    }
  });
}

}  // namespace
}  // namespace wick::cpu

namespace wick::detail {
using namespace cpu;

void FusedElementwise::eval_cpu(std::span<Node* const> in, Node& out) {
  // A chunk's inputs are all read before its outputs are stored, so a dense input of the
  // output's size may lend its buffer.
  alloc_output_donating(out, in);
  if (out.size() == 0) return;
  if (f64) run_fused<double>(*this, in, out);
  else run_fused<float>(*this, in, out);
}

void FusedElementwise::print(std::ostream& os) const {
  os << "fused_elementwise[";
  for (size_t i = 0; i < program.size(); ++i) {
    const Instr& p = program[i];
    if (i) os << ", ";
    switch (p.kind) {
      case Kind::unary: os << unary_name(static_cast<UnaryOp>(p.op)); break;
      case Kind::binary: os << binary_name(static_cast<BinaryOp>(p.op)); break;
      case Kind::where: os << "where"; break;
      case Kind::cast: os << "astype"; break;
    }
  }
  os << "]";
}

}  // namespace wick::detail
