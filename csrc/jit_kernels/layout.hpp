// Host side of the scale-factor layout kernels (deep_gemm/include/deep_gemm/layout.cuh):
// sources and launches. Tensors are validated by csrc/apis/layout.cpp.
#pragma once

#include <ATen/Tensor.h>

#include <vector>

#include "../jit/runtime.hpp"

namespace deep_gemm::kernels {

std::vector<jit::KernelSource> layout_kernel_sources();

// sf fp32 [sum_g sf_rows[g], MN] and out int32 [sum_g ceil(sf_rows[g] / 4), MN], both
// contiguous on one CUDA device: out gets each group's scale rows packed four to a row
// as UE8M0 bytes. One launch per 256 groups on the current stream; no host sync.
void launch_pack_k_grouped_ue8m0(const at::Tensor& sf, const std::vector<int>& sf_rows, const at::Tensor& out);

}  // namespace deep_gemm::kernels
