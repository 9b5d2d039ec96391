#include "backend/cuda/cublaslt.h"

#include <dlfcn.h>

#include <string>

#include "wick/error.h"

namespace wick::cuda {
namespace {

/// By soname first (the loader's paths, LD_LIBRARY_PATH), then where the toolkit that built
/// wick keeps it.
void* open_library() {
  for (const char* name : {WICK_CUBLASLT_SONAME, WICK_CUBLASLT_PATH})
    if (void* h = dlopen(name, RTLD_NOW | RTLD_LOCAL)) return h;
  const char* why = dlerror();
  throw Error(std::string("cuda: cannot load cuBLASLt (") + WICK_CUBLASLT_SONAME + " or " +
              WICK_CUBLASLT_PATH + "): " + (why ? why : "not found") +
              "; GPU matrix products need it");
}

template <class F>
void bind(void* h, F& f, const char* symbol) {
  f = reinterpret_cast<F>(dlsym(h, symbol));
  if (!f) throw Error(std::string("cuda: ") + WICK_CUBLASLT_SONAME + " has no " + symbol);
}

CublasLt load() {
  void* h = open_library();
  CublasLt a{};
  bind(h, a.create, "cublasLtCreate");
  bind(h, a.matmul, "cublasLtMatmul");
  bind(h, a.heuristic, "cublasLtMatmulAlgoGetHeuristic");
  bind(h, a.desc_create, "cublasLtMatmulDescCreate");
  bind(h, a.desc_destroy, "cublasLtMatmulDescDestroy");
  bind(h, a.desc_set, "cublasLtMatmulDescSetAttribute");
  bind(h, a.layout_create, "cublasLtMatrixLayoutCreate");
  bind(h, a.layout_destroy, "cublasLtMatrixLayoutDestroy");
  bind(h, a.layout_set, "cublasLtMatrixLayoutSetAttribute");
  bind(h, a.pref_create, "cublasLtMatmulPreferenceCreate");
  bind(h, a.pref_destroy, "cublasLtMatmulPreferenceDestroy");
  bind(h, a.pref_set, "cublasLtMatmulPreferenceSetAttribute");
  return a;
}

}  // namespace

const CublasLt& lt() {
  static const CublasLt api = load();  // a failed load throws, and the next call tries again
  return api;
}

}  // namespace wick::cuda
