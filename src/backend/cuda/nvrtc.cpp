// Fused elementwise chains as generated CUDA source, compiled once per program with NVRTC and
// cached on disk: straight-line code with every value in registers and every operand's offset
// from one set of divisions, where the interpreter (fused.cu) pays a switch per instruction
// and keeps its registers in local memory. Any failure falls back to the interpreter.
// GCC 12 warns wrongly about overlapping copies in std::string concatenation (GCC bug 105329).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wrestrict"
#endif

#include <cuda_runtime.h>
#include <nvrtc.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

#include "backend/cuda/glue.h"
#include "graph/op_codes.h"

namespace wick::cuda {
namespace {

using detail::BinaryOp;
using detail::UnaryOp;

/// The generated kernel's one parameter (mirrored in the source below).
struct GenArgs {
  const void* in[kMaxFusedInputs];
  int64_t s[kMaxFusedInputs][kMaxDims];
  int64_t shape[kMaxDims];
  int64_t numel;
  void* out;
};
static_assert(kMaxFusedInputs == 16 && kMaxDims == 8, "the generated Args struct spells these sizes out");

const char* kPrelude = R"(
typedef unsigned short u16;
typedef long long i64;
__device__ __forceinline__ float bf2f(u16 h) { return __uint_as_float(((unsigned)h) << 16); }
__device__ __forceinline__ u16 f2bf(float f) { u16 r; asm("cvt.rn.bf16.f32 %0, %1;" : "=h"(r) : "f"(f)); return r; }
__device__ __forceinline__ float h2f(u16 h) { float r; asm("cvt.f32.f16 %0, %1;" : "=f"(r) : "h"(h)); return r; }
__device__ __forceinline__ u16 f2h(float f) { u16 r; asm("cvt.rn.f16.f32 %0, %1;" : "=h"(r) : "f"(f)); return r; }
struct Args { const void* in[16]; i64 s[16][8]; i64 shape[8]; i64 numel; void* out; };
template <class T, int W> struct alignas(sizeof(T) * W) P { T v[W]; };
)";

/// The C type a dtype is stored as in the generated source.
const char* storage_type(DType t) {
  switch (t) {
    case DType::f32: return "float";
    case DType::f64: return "double";
    case DType::bf16:
    case DType::f16: return "u16";
    case DType::i32: return "int";
    case DType::i64: return "i64";
    case DType::boolean: return "unsigned char";
  }
  return "float";
}

/// A stored value `v` of dtype t as the compute type R.
std::string to_compute(DType t, const std::string& v, const char* R) {
  switch (t) {
    case DType::bf16: return "(" + std::string(R) + ")bf2f(" + v + ")";
    case DType::f16: return "(" + std::string(R) + ")h2f(" + v + ")";
    case DType::boolean: return "(" + std::string(R) + ")(" + v + " != 0)";
    default: return "(" + std::string(R) + ")" + v;
  }
}

/// A compute value `v` as dtype t's stored form.
std::string to_storage(DType t, const std::string& v) {
  switch (t) {
    case DType::bf16: return "f2bf((float)" + v + ")";
    case DType::f16: return "f2h((float)" + v + ")";
    case DType::boolean: return "(unsigned char)(" + v + " != 0)";
    default: return "(" + std::string(storage_type(t)) + ")" + v;
  }
}

/// Rounds register `r` to dtype t, as the interpreter's round_to.
std::string round_expr(DType t, const std::string& r, const char* R) {
  switch (t) {
    case DType::bf16: return "(" + std::string(R) + ")bf2f(f2bf((float)" + r + "))";
    case DType::f16: return "(" + std::string(R) + ")h2f(f2h((float)" + r + "))";
    case DType::f32: return "(" + std::string(R) + ")(float)" + r;
    case DType::boolean: return "(" + r + " != 0 ? (" + R + ")1 : (" + R + ")0)";
    default: return r;
  }
}

/// The expression of one instruction over registers (R is float or double).
std::string instr_expr(const FusedInstr& in, bool f64, const std::string& lane) {
  auto r = [&](int k) { return "r" + std::to_string(k) + lane; };
  std::string x = r(in.a), y = in.b >= 0 ? r(in.b) : "", z = in.c >= 0 ? r(in.c) : "";
  std::string f = f64 ? "" : "f", R = f64 ? "double" : "float";
  auto c = [&](const char* v) { return "(" + R + ")" + v; };
  if (in.kind == 0) {
    switch (static_cast<UnaryOp>(in.op)) {
      case UnaryOp::neg: return "(-" + x + ")";
      case UnaryOp::abs: return "(" + x + " < 0 ? -" + x + " : " + x + ")";
      case UnaryOp::exp: return "exp" + f + "(" + x + ")";
      case UnaryOp::log: return "log" + f + "(" + x + ")";
      case UnaryOp::sqrt: return "sqrt" + f + "(" + x + ")";
      case UnaryOp::rsqrt: return "(" + c("1") + " / sqrt" + f + "(" + x + "))";
      case UnaryOp::sin: return "sin" + f + "(" + x + ")";
      case UnaryOp::cos: return "cos" + f + "(" + x + ")";
      case UnaryOp::tanh: return "tanh" + f + "(" + x + ")";
      case UnaryOp::sigmoid: return "(" + c("1") + " / (" + c("1") + " + exp" + f + "(-" + x + ")))";
      case UnaryOp::silu: return "(" + x + " / (" + c("1") + " + exp" + f + "(-" + x + ")))";
      case UnaryOp::gelu:
        return "(" + c("0.5") + " * " + x + " * (" + c("1") + " + erf" + f + "(" + x + " * " + c("0.70710678118654752440") + ")))";
      case UnaryOp::gelu_tanh:
        return "(" + c("0.5") + " * " + x + " * (" + c("1") + " + tanh" + f + "(" + c("0.79788456080286535588") + " * (" + x +
               " + " + c("0.044715") + " * " + x + " * " + x + " * " + x + "))))";
      case UnaryOp::relu: return "(" + x + " > 0 ? " + x + " : " + c("0") + ")";
      case UnaryOp::square: return "(" + x + " * " + x + ")";
      case UnaryOp::logical_not: return "(" + x + " == 0 ? " + c("1") + " : " + c("0") + ")";
      case UnaryOp::erf: return "erf" + f + "(" + x + ")";
    }
  } else if (in.kind == 1) {
    auto cmp = [&](const char* op) { return "(" + x + " " + op + " " + y + " ? " + c("1") + " : " + c("0") + ")"; };
    switch (static_cast<BinaryOp>(in.op)) {
      case BinaryOp::add: return "(" + x + " + " + y + ")";
      case BinaryOp::sub: return "(" + x + " - " + y + ")";
      case BinaryOp::mul: return "(" + x + " * " + y + ")";
      case BinaryOp::div: return "(" + x + " / " + y + ")";
      case BinaryOp::pow: return "pow" + f + "(" + x + ", " + y + ")";
      case BinaryOp::max: return "(" + x + " > " + y + " || " + x + " != " + x + " ? " + x + " : " + y + ")";
      case BinaryOp::min: return "(" + x + " < " + y + " || " + x + " != " + x + " ? " + x + " : " + y + ")";
      case BinaryOp::eq: return cmp("==");
      case BinaryOp::ne: return cmp("!=");
      case BinaryOp::lt: return cmp("<");
      case BinaryOp::le: return cmp("<=");
      case BinaryOp::gt: return cmp(">");
      case BinaryOp::ge: return cmp(">=");
      case BinaryOp::logical_and: return "(" + x + " != 0 && " + y + " != 0 ? " + c("1") + " : " + c("0") + ")";
      case BinaryOp::logical_or: return "(" + x + " != 0 || " + y + " != 0 ? " + c("1") + " : " + c("0") + ")";
    }
  } else if (in.kind == 2) {
    return "(" + x + " != 0 ? " + y + " : " + z + ")";
  }
  return x;  // cast: the rounding below does it
}

/// Source of the kernel for one program, input dtypes, output dtype and rank of the space;
/// `small` spaces (under 2^31 elements) divide in 32 bits. With W > 1 the space counts packs of
/// W elements (pack_walk): each packed input and the output move W elements in one access, a
/// splat input is one element used W times, and the program runs once per element ("lane").
std::string source(const FusedArgs& f, int nd, bool small, int W, const bool* splat) {
  const char* R = f.f64 ? "double" : "float";
  const char* I = small ? "unsigned" : "i64";
  const std::string w = std::to_string(W);
  auto lane = [&](int e) { return W > 1 ? "_" + std::to_string(e) : std::string(); };
  std::ostringstream os;
  os << kPrelude << "extern \"C\" __global__ void wick_fused(const __grid_constant__ Args a) {\n"
     << "  for (i64 i = blockIdx.x * (i64)blockDim.x + threadIdx.x; i < a.numel; i += (i64)gridDim.x * blockDim.x) {\n"
     << "    " << I << " l = (" << I << ")i;\n";
  for (int d = nd - 1; d > 0; --d)
    os << "    i64 c" << d << " = l % (" << I << ")a.shape[" << d << "]; l /= (" << I << ")a.shape[" << d << "];\n";
  if (nd > 0) os << "    i64 c0 = l;\n";
  for (int k = 0; k < f.n_in; ++k) {
    const std::string ks = std::to_string(k), st = storage_type(f.in_t[k]);
    os << "    i64 o" << k << " = 0";
    for (int d = 0; d < nd; ++d) os << " + c" << d << " * a.s[" << k << "][" << d << "]";
    os << ";\n";
    if (W > 1 && !splat[k]) {
      os << "    P<" << st << ", " << w << "> p" << k << " = ((const P<" << st << ", " << w << ">*)a.in[" << k << "])[o" << k << "];\n";
      for (int e = 0; e < W; ++e)
        os << "    " << R << " r" << k << lane(e) << " = " << to_compute(f.in_t[k], "p" + ks + ".v[" + std::to_string(e) + "]", R) << ";\n";
    } else {
      os << "    " << R << " r" << k << lane(0) << " = " << to_compute(f.in_t[k], "((const " + st + "*)a.in[" + ks + "])[o" + ks + "]", R) << ";\n";
      for (int e = 1; e < W; ++e) os << "    " << R << " r" << k << lane(e) << " = r" << k << lane(0) << ";\n";
    }
  }
  for (int e = 0; e < W; ++e)
    for (int k = 0; k < f.n_instr; ++k) {
      std::string reg = "r" + std::to_string(f.n_in + k) + lane(e);
      os << "    " << R << " " << reg << " = " << instr_expr(f.ins[k], f.f64, lane(e)) << ";\n";
      os << "    " << reg << " = " << round_expr(f.ins[k].dtype, reg, R) << ";\n";
    }
  const std::string out_st = storage_type(f.out_t), last = "r" + std::to_string(f.n_in + f.n_instr - 1);
  if (W > 1) {
    os << "    P<" << out_st << ", " << w << "> po;\n";
    for (int e = 0; e < W; ++e) os << "    po.v[" << e << "] = " << to_storage(f.out_t, last + lane(e)) << ";\n";
    os << "    ((P<" << out_st << ", " << w << ">*)a.out)[i] = po;\n  }\n}\n";
  } else {
    os << "    ((" << out_st << "*)a.out)[i] = " << to_storage(f.out_t, last) << ";\n  }\n}\n";
  }
  return os.str();
}

std::string cache_dir() {
  if (const char* d = std::getenv("WICK_KERNEL_CACHE")) return d;
  if (const char* x = std::getenv("XDG_CACHE_HOME")) return std::string(x) + "/wick/kernels";
  if (const char* h = std::getenv("HOME")) return std::string(h) + "/.cache/wick/kernels";
  return "";
}

/// CUBIN for `src` on `arch`: from the disk cache when an entry holds this exact source, else
/// compiled by NVRTC (and cached). Empty on failure.
std::string cubin_for(const std::string& src, const std::string& arch) {
  std::string dir = cache_dir();
  std::string path;
  if (!dir.empty()) {
    std::ostringstream name;
    name << std::hex << std::hash<std::string>{}(src + arch) << "-" << arch << ".cubin";
    path = dir + "/" + name.str();
    std::ifstream in(path, std::ios::binary);
    if (in) {
      // Entry: source length, source, binary. A hash collision shows as a different source.
      uint64_t n = 0;
      in.read(reinterpret_cast<char*>(&n), sizeof n);
      std::string stored(n < (1u << 24) ? n : 0, '\0');
      in.read(stored.data(), static_cast<std::streamsize>(stored.size()));
      if (in && stored == src) return std::string(std::istreambuf_iterator<char>(in), {});
    }
  }
  nvrtcProgram prog;
  if (nvrtcCreateProgram(&prog, src.c_str(), "wick_fused.cu", 0, nullptr, nullptr) != NVRTC_SUCCESS) return "";
  std::string arch_opt = "--gpu-architecture=" + arch;
  const char* opts[] = {arch_opt.c_str(), "--std=c++17"};
  std::string bin;
  if (nvrtcCompileProgram(prog, 2, opts) == NVRTC_SUCCESS) {
    size_t n = 0;
    if (nvrtcGetCUBINSize(prog, &n) == NVRTC_SUCCESS && n) {
      bin.resize(n);
      if (nvrtcGetCUBIN(prog, bin.data()) != NVRTC_SUCCESS) bin.clear();
    }
  } else {
    size_t n = 0;
    nvrtcGetProgramLogSize(prog, &n);
    std::string log(n, '\0');
    nvrtcGetProgramLog(prog, log.data());
    std::fprintf(stderr, "wick: NVRTC could not compile a fused kernel (using the interpreter):\n%s\n", log.c_str());
  }
  nvrtcDestroyProgram(&prog);
  if (bin.empty() || path.empty()) return bin;
  // Written to a temporary name and renamed: concurrent processes never read half an entry.
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  std::string tmp = path + ".tmp" + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::binary);
    uint64_t n = src.size();
    out.write(reinterpret_cast<const char*>(&n), sizeof n);
    out.write(src.data(), static_cast<std::streamsize>(src.size()));
    out.write(bin.data(), static_cast<std::streamsize>(bin.size()));
    if (!out) ec = std::make_error_code(std::errc::io_error);
  }
  if (ec) std::filesystem::remove(tmp, ec);
  else std::filesystem::rename(tmp, path, ec);
  return bin;
}

std::string device_arch(int device) {
  int major = 0, minor = 0;
  cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device);
  cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device);
  return "sm_" + std::to_string(major) + std::to_string(minor);
}

}  // namespace

bool launch_generated(const FusedArgs& f, void* out, const Space& sp) {
  static const bool enabled = [] {
    const char* e = std::getenv("WICK_NVRTC");
    return !(e && std::string(e) == "0");
  }();
  if (!enabled || sp.numel == 0) return false;
  Context& ctx = active();
  // Packs of 16 bytes of the widest operand where the walk allows (see pack_walk).
  size_t widest = itemsize(f.out_t);
  Walk walks[kMaxFusedInputs + 1];
  const void* ptr[kMaxFusedInputs + 1] = {out};
  size_t size[kMaxFusedInputs + 1] = {itemsize(f.out_t)};
  int64_t stride = 1;  // the output is dense
  for (int d = sp.nd - 1; d >= 0; --d) {
    walks[0].s[d] = stride;
    stride *= sp.shape[d];
  }
  for (int k = 0; k < f.n_in; ++k) {
    walks[k + 1] = f.in_s[k];
    ptr[k + 1] = f.in[k];
    size[k + 1] = itemsize(f.in_t[k]);
    widest = std::max(widest, size[k + 1]);
  }
  Space ps = sp;
  bool splat[kMaxFusedInputs + 1] = {};
  const int W = pack_walk(ps, walks, ptr, size, f.n_in + 1, static_cast<int>(16 / widest), splat) ? static_cast<int>(16 / widest) : 1;
  bool small = ps.numel < (int64_t(1) << 31);
  // Kernels are found by what their source is made from, not by the source: generating it
  // costs more host time than a small kernel takes on the GPU, and a training step launches
  // thousands.
  std::string key;
  auto put = [&](const auto& v) { key.append(reinterpret_cast<const char*>(&v), sizeof v); };
  put(ctx.device);
  put(f.n_in);
  put(f.n_instr);
  put(f.f64);
  put(f.out_t);
  put(ps.nd);
  put(small);
  put(W);
  for (int k = 0; k < f.n_in; ++k) {
    put(f.in_t[k]);
    put(splat[k + 1]);
  }
  for (int k = 0; k < f.n_instr; ++k) {
    put(f.ins[k].kind);
    put(f.ins[k].op);
    put(f.ins[k].dtype);
    put(f.ins[k].a);
    put(f.ins[k].b);
    put(f.ins[k].c);
  }
  static std::mutex mutex;
  static std::map<std::string, cudaKernel_t> kernels;  // null: failed, interpret
  cudaKernel_t kernel = nullptr;
  {
    std::lock_guard lock(mutex);
    auto it = kernels.find(key);
    if (it == kernels.end()) {
      std::string bin = cubin_for(source(f, ps.nd, small, W, splat + 1), device_arch(ctx.device));
      cudaLibrary_t lib = nullptr;
      if (!bin.empty() && cudaLibraryLoadData(&lib, bin.data(), nullptr, nullptr, 0, nullptr, nullptr, 0) == cudaSuccess &&
          cudaLibraryGetKernel(&kernel, lib, "wick_fused") == cudaSuccess) {
        // The library stays loaded for the process: its kernel is cached here.
      } else {
        cudaGetLastError();
        kernel = nullptr;
      }
      it = kernels.emplace(key, kernel).first;
    }
    kernel = it->second;
  }
  if (!kernel) return false;
  GenArgs a{};
  for (int k = 0; k < f.n_in; ++k) {
    a.in[k] = f.in[k];
    for (int d = 0; d < ps.nd; ++d) a.s[k][d] = walks[k + 1].s[d];
  }
  for (int d = 0; d < ps.nd; ++d) a.shape[d] = ps.shape[d];
  a.numel = ps.numel;
  a.out = out;
  void* args[] = {&a};
  int64_t blocks = std::min<int64_t>((ps.numel + 255) / 256, 65535 * 8);
  check(cudaLaunchKernel(reinterpret_cast<const void*>(kernel), dim3(static_cast<unsigned>(blocks)), dim3(256), args, 0,
                         launch_stream()),
        "generated fused kernel");
  return true;
}

}  // namespace wick::cuda
