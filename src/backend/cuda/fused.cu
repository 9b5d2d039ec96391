// Fused elementwise chains, interpreted per element: registers 0..n_in-1 hold the inputs,
// instruction k writes register n_in+k, and each result is rounded to its instruction's dtype,
// so the chain computes exactly what the unfused kernels would (up to the device's libm).
#include "backend/cuda/ops.cuh"

namespace wick::cuda {
namespace {

enum Kind : uint8_t { kUnary = 0, kBinary = 1, kWhere = 2, kCast = 3 };

template <class R>
__device__ __forceinline__ R round_to(R v, DType t) {
  switch (t) {
    case DType::bf16:
      return static_cast<R>(__bfloat162float(__float2bfloat16_rn(static_cast<float>(v))));
    case DType::f16:
      return static_cast<R>(__half2float(__float2half_rn(static_cast<float>(v))));
    case DType::f32:
      return static_cast<R>(static_cast<float>(v));
    case DType::boolean:
      return v != R(0) ? R(1) : R(0);
    default:
      return v;
  }
}

/// NIN > 0: exactly NIN inputs, whose offsets come from one set of divisions; NIN = 0: any
/// number, each input's offset found on its own.
template <class R, class O, int NIN>
__global__ void fused_kernel(const __grid_constant__ FusedArgs f, O* out,
                             const __grid_constant__ Space sp) {
  R reg[kMaxFusedInputs + kMaxFusedInstrs];
  WICK_GRID_LOOP(i, sp.numel) {
    if constexpr (NIN > 0) {
      int64_t off[NIN];
      offsets_of<NIN>(i, sp, f.in_s, off);
#pragma unroll
      for (int k = 0; k < NIN; ++k) reg[k] = static_cast<R>(ld_any(f.in[k], f.in_t[k], off[k]));
    } else {
      for (int k = 0; k < f.n_in; ++k)
        reg[k] = static_cast<R>(ld_any(f.in[k], f.in_t[k], offset_of(i, sp, f.in_s[k])));
    }
    for (int k = 0; k < f.n_instr; ++k) {
      const FusedInstr& in = f.ins[k];
      R v;
      switch (in.kind) {
        case kUnary:
          v = apply_unary(static_cast<UnaryOp>(in.op), reg[in.a]);
          break;
        case kBinary:
          v = apply_binary(static_cast<BinaryOp>(in.op), reg[in.a], reg[in.b]);
          break;
        case kWhere:
          v = reg[in.a] != R(0) ? reg[in.b] : reg[in.c];
          break;
        default:
          v = reg[in.a];
          break;
      }
      reg[f.n_in + k] = round_to(v, in.dtype);
    }
    st(out + i, reg[f.n_in + f.n_instr - 1]);
  }
}

template <class R, class O>
void launch(const FusedArgs& f, O* out, const Space& sp) {
  cudaStream_t s = launch_stream();
  unsigned g = grid_for(sp.numel);
  // The specialisations (compile time) only for the float outputs that hot chains produce.
  if constexpr (!std::is_floating_point_v<compute_t<O>>)
    return fused_kernel<R, O, 0><<<g, 256, 0, s>>>(f, out, sp);
  switch (f.n_in) {
    case 1:
      return fused_kernel<R, O, 1><<<g, 256, 0, s>>>(f, out, sp);
    case 2:
      return fused_kernel<R, O, 2><<<g, 256, 0, s>>>(f, out, sp);
    case 3:
      return fused_kernel<R, O, 3><<<g, 256, 0, s>>>(f, out, sp);
    case 4:
      return fused_kernel<R, O, 4><<<g, 256, 0, s>>>(f, out, sp);
    default:
      return fused_kernel<R, O, 0><<<g, 256, 0, s>>>(f, out, sp);
  }
}

}  // namespace

void fused(const FusedArgs& f, void* out, const Space& sp) {
  if (sp.numel == 0) return;
  dispatch(f.out_t, [&]<class O>() {
    if (f.f64)
      launch<double, O>(f, static_cast<O*>(out), sp);
    else
      launch<float, O>(f, static_cast<O*>(out), sp);
  });
  check_launch("fused_elementwise");
}

}  // namespace wick::cuda
