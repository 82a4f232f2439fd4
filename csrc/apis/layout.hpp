// Scale-factor layout transforms over at::Tensor (deep_gemm/utils/layout.py's GPU
// path); every argument is validated here.
#pragma once

#include <ATen/Tensor.h>

#include <cstdint>
#include <vector>

namespace deep_gemm::api {

// K-grouped per-channel fp32 power-of-two scales sf [sum_g ceil(ks[g] / gran_k), MN]
// (contiguous, on a Hopper GPU) -> int32 [sum_g ceil(ceil(ks[g] / gran_k) / 4), MN],
// contiguous: each group's scale rows packed four to a row, row 4p + i of the group in
// byte i of its packed row p (its UE8M0 exponent byte; rows past the group's end give 0).
at::Tensor k_grouped_packed_ue8m0(const at::Tensor& sf, const std::vector<uint64_t>& ks, int gran_k);

// fp32 power-of-two scales sf [(G,) MN, SF_K] (any strides, on a Hopper GPU) -> int32
// [(G,) MN, ceil(SF_K / 4)] with strides (1, aligned_mn) and batch stride aligned_mn *
// ceil(SF_K / 4), aligned_mn = MN rounded up to 4: scale 4j + i of a row in byte i of
// its int j (0 past SF_K). The padding columns [MN, aligned_mn) are left unwritten.
at::Tensor mn_major_packed_ue8m0(const at::Tensor& sf);

}  // namespace deep_gemm::api
