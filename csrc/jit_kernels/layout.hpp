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

// sf fp32 [G, MN, SF_K] (any strides) and out int32 [G, MN, ceil(SF_K / 4)] with strides
// (aligned_mn * ceil(SF_K / 4), 1, aligned_mn), on one CUDA device, G and ceil(SF_K / 4)
// at most 65535: out's first MN columns get sf's rows packed as UE8M0 bytes, four to an
// int. One launch on the current stream.
void launch_transpose_and_pack_ue8m0(const at::Tensor& sf, const at::Tensor& out);

}  // namespace deep_gemm::kernels
