// DeepGEMM's einsum entry points over at::Tensor: the fixed expressions its callers
// use, every argument validated here.
#pragma once

#include <ATen/Tensor.h>

#include <optional>
#include <string>
#include <utility>

namespace deep_gemm::api {

// bf16 a and b, products accumulated in fp32. 'bmk,bnk->mn': d [m, n] = sum_b
// a[b] @ b[b]^T (an fp32 d accumulates, c must be d; a bf16 d is overwritten, no c),
// the kernel of einsum.cuh (k not a multiple of 8: cuBLAS). 'bhr,hdr->bhd' /
// 'bhd,hdr->bhr': per head h, d[:, h] = a[:, h] @ b[h]^T / a[:, h] @ b[h], bf16 d,
// no c: 'bhr,hdr->bhd' runs einsum.cuh's per-head kernel where the layout fits
// (packed a and d, the contracted dim a multiple of 64); the rest, 'bhd,hdr->bhr'
// (B read MN-major) and use_cublaslt run cuBLAS through ATen.
void einsum(const std::string& expr, const at::Tensor& a, const at::Tensor& b, const at::Tensor& d,
            const std::optional<at::Tensor>& c, bool use_cublaslt);

// 'bhr,hdr->bhd' with e4m3 operands and DeepGEMM's recipe (1, 128, 128): a = (x [b, h, r],
// per-token scales [b, h, ceil(r / 128)]), b = (y [h, d, r], per-block scales
// [h, ceil(d / 128), ceil(r / 128)]); d [b, h, d] bf16, or fp32 with c (fp32) added.
void fp8_einsum(const std::string& expr, const std::pair<at::Tensor, at::Tensor>& a,
                const std::pair<at::Tensor, at::Tensor>& b, const at::Tensor& d, const std::optional<at::Tensor>& c,
                int recipe_m, int recipe_n, int recipe_k);

}  // namespace deep_gemm::api
