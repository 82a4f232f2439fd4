// Host side of the FP8 GEMM kernel: pick a tile configuration for a shape, write
// the kernel's source for it, encode the TMA descriptors, launch.
#pragma once

#include <ATen/Tensor.h>

#include <optional>
#include <string>
#include <vector>

#include "../jit/runtime.hpp"

namespace deep_gemm::kernels {

enum class OutputType { BF16, FP32 };

struct FP8GemmConfig {
    int block_m;
    int block_n;
    int stages;
    OutputType output;
    bool tma_store;  // bf16 D staged in shared memory and stored with TMA

    int threads() const;
    int shared_bytes() const;
    jit::KernelSource source() const;
};

// Heuristic choice of tile sizes for one problem (see the comment in the .cpp).
FP8GemmConfig select_fp8_gemm_config(int m, int n, int k, int num_sms, OutputType output);

// Every configuration select_fp8_gemm_config can return: the CPU tests compile all of them.
std::vector<FP8GemmConfig> all_fp8_gemm_configs();

// Arguments are already validated by the API layer.
void launch_fp8_gemm_nt(const at::Tensor& a, const at::Tensor& sfa, const at::Tensor& b, const at::Tensor& sfb,
                        const at::Tensor& d, const std::optional<at::Tensor>& c, int num_sms);

}  // namespace deep_gemm::kernels
