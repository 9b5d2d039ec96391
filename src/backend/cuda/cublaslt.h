// cuBLASLt, loaded on first use instead of linked. Loading the library runs static
// initialisers that cost every process ~0.45 s whether or not it touches a GPU: each test
// process, `wick --help`, a CPU-only run on a machine with CUDA installed.
#pragma once

#include <cublasLt.h>

namespace wick::cuda {

/// The cuBLASLt entry points wick calls.
struct CublasLt {
  decltype(&cublasLtCreate) create;
  decltype(&cublasLtMatmul) matmul;
  decltype(&cublasLtMatmulAlgoGetHeuristic) heuristic;
  decltype(&cublasLtMatmulDescCreate) desc_create;
  decltype(&cublasLtMatmulDescDestroy) desc_destroy;
  decltype(&cublasLtMatmulDescSetAttribute) desc_set;
  decltype(&cublasLtMatrixLayoutCreate) layout_create;
  decltype(&cublasLtMatrixLayoutDestroy) layout_destroy;
  decltype(&cublasLtMatrixLayoutSetAttribute) layout_set;
  decltype(&cublasLtMatmulPreferenceCreate) pref_create;
  decltype(&cublasLtMatmulPreferenceDestroy) pref_destroy;
  decltype(&cublasLtMatmulPreferenceSetAttribute) pref_set;
};

/// The library, loaded by the first call (thread-safe); throws Error naming it when it cannot
/// be loaded or lacks an entry point.
const CublasLt& lt();

}  // namespace wick::cuda
