// Scale-factor layout transforms over at::Tensor (deep_gemm/utils/layout.py's GPU
// path); every argument is validated here.
#pragma once

#include <ATen/Tensor.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace deep_gemm::api {

// K-grouped per-channel fp32 power-of-two scales sf [sum_g ceil(ks[g] / gran_k), MN]
// (contiguous, on a Hopper GPU) -> int32 [sum_g ceil(ceil(ks[g] / gran_k) / 4), MN],
// contiguous: each group's scale rows packed four to a row, row 4p + i of the group in
// byte i of its packed row p (its UE8M0 exponent byte; rows past the group's end give 0).
at::Tensor k_grouped_packed_ue8m0(const at::Tensor& sf, const std::vector<uint64_t>& ks, int gran_k);

std::vector<std::pair<std::string, std::string>> layout_kernel_sources();

}  // namespace deep_gemm::api
