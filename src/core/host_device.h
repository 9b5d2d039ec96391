#pragma once
// Functions shared by the CPU kernels and the CUDA kernels, so both devices compute the same.
#ifdef __CUDACC__
#define WICK_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define WICK_HOST_DEVICE inline
#endif
