// The hyperconnection pre-norm GEMM (DeepSeek's mHC) over at::Tensor, with
// DeepGEMM's argument order; every argument is validated here.
#pragma once

#include <ATen/Tensor.h>


namespace deep_gemm::api {

// d = a @ b^T with TF32 products and sqr_sum = per-row sum of a^2, for bf16 a [M, K]
// and fp32 b [N, K] (N <= 32, K a multiple of 8). num_splits 0: d [M, N], sqr_sum [M];
// num_splits >= 1: d [num_splits, M, N] and sqr_sum [num_splits, M] hold the partial
// sums over num_splits ranges of K (their sum is the whole).
void tf32_hc_prenorm_gemm(const at::Tensor& a, const at::Tensor& b, const at::Tensor& d, const at::Tensor& sqr_sum,
                          int num_splits);

}  // namespace deep_gemm::api
