// Host side of einsum's bf16 kernels (deep_gemm/include/deep_gemm/einsum.cuh): sources,
// TMA descriptors, the batch split, launches. Tensors are validated by csrc/apis/einsum.cpp.
#pragma once

#include <ATen/Tensor.h>

#include <vector>

#include "../jit/runtime.hpp"

namespace deep_gemm::kernels {

std::vector<jit::KernelSource> einsum_kernel_sources();

// d (fp32 [m, n], contiguous) += sum_b a[b] @ b[b]^T for contiguous bf16 a [S, m, k],
// b [S, n, k]; k a multiple of 8.
void launch_bmk_bnk_mn(const at::Tensor& a, const at::Tensor& b, const at::Tensor& d, int num_sms);

// d[:, h] = a[:, h] @ b[h]^T for b [H, N, K] or, mn_major_b, a[:, h] @ b[h] for b
// [H, K, N]; bf16 a [rows, H, K] (contiguous), b (unit last stride, rows evenly
// strided by a multiple of 8, heads N or K rows apart), bf16 d [rows, H, N]; K a
// multiple of 64. tma_store: d stored through a TMA tensor map (unit last stride, the
// others multiples of 8, not overlapping), else from registers (d contiguous).
void launch_per_head_gemm(const at::Tensor& a, const at::Tensor& b, const at::Tensor& d, bool mn_major_b,
                          bool tma_store);

}  // namespace deep_gemm::kernels
