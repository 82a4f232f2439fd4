// Hardware limits of the Hopper (sm_90a) GPUs the launchers size their kernels for.
#pragma once

namespace deep_gemm::kernels {

// Largest dynamic shared memory a Hopper CTA may opt into (227 KiB).
constexpr int kMaxSharedBytes = 232448;

}  // namespace deep_gemm::kernels
