// The GEMM entry points over at::Tensor, with DeepGEMM's names and argument
// conventions. Every argument is validated here; a bad one raises a c10 error
// (TypeError / ValueError / RuntimeError in Python) naming it.
#pragma once

#include <ATen/Tensor.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace deep_gemm::api {

using ScaledTensor = std::pair<at::Tensor, at::Tensor>;  // (fp8 data, fp32 scales)

// D = A @ B^T (+ C). A: e4m3 [M, K] with scales [M, K/128] in the MN-major,
// TMA-aligned layout (get_mn_major_tma_aligned_tensor); B: e4m3 [N, K] with
// scales [ceil(N/128), K/128] contiguous; D: bf16 or fp32 [M, N]; C: fp32 [M, N]
// (D must be fp32 then), may be D itself.
void fp8_gemm_nt(const ScaledTensor& a, const ScaledTensor& b, const at::Tensor& d,
                 const std::optional<at::Tensor>& c);

// (name, CUDA source) of every kernel instantiation the API can select.
std::vector<std::pair<std::string, std::string>> kernel_sources();

}  // namespace deep_gemm::api
