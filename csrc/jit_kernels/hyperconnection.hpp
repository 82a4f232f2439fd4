// Host side of the hyperconnection pre-norm GEMM (deep_gemm/include/deep_gemm/
// hc_prenorm.cuh): sources, TMA descriptors, the K split, launches. Tensors are
// validated by csrc/apis/hyperconnection.cpp.
#pragma once

#include <ATen/Tensor.h>

#include <vector>

#include "../jit/runtime.hpp"

namespace deep_gemm::kernels {

// Largest N (columns of D) the kernel takes: B's rows in one MMA.
constexpr int kMaxHcColumns = 32;

std::vector<jit::KernelSource> hyperconnection_kernel_sources();

// a bf16 [M, K], b fp32 [N, K], contiguous. splits > 0: d [splits, M, N] and sqr_sum
// [splits, M] get the partial sums of `splits` K ranges; splits == 0: d [M, N] and
// sqr_sum [M] get the whole sums. Either way K is cut into as many ranges as fill the
// GPU, added up in order.
void launch_tf32_hc_prenorm_gemm(const at::Tensor& a, const at::Tensor& b, const at::Tensor& d,
                                 const at::Tensor& sqr_sum, int splits, int num_sms);

// The K ranges that fill one wave of CTAs for M rows (before rounding to the caller's splits).
int hc_prenorm_splits(int m, int k, int num_sms);

}  // namespace deep_gemm::kernels
