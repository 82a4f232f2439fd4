// DeepGEMM's einsum entry points over at::Tensor: the fixed expressions its callers
// use, every argument validated here.
#pragma once

#include <ATen/Tensor.h>

#include <optional>
#include <string>
#include <tuple>
#include <utility>

namespace deep_gemm::api {

// bf16 a and b. 'bmk,bnk->mn': d [m, n] = sum_b a[b] @ b[b]^T; an fp32 d accumulates
// (c must be d), a bf16 d is overwritten (no c). 'bhr,hdr->bhd' / 'bhd,hdr->bhr':
// per head h, d[:, h] = a[:, h] @ b[h]^T / a[:, h] @ b[h], bf16 d, no c. The products
// accumulate in fp32 (cuBLAS through ATen; use_cublaslt only selects it explicitly).
void einsum(const std::string& expr, const at::Tensor& a, const at::Tensor& b, const at::Tensor& d,
            const std::optional<at::Tensor>& c, bool use_cublaslt);

// 'bhr,hdr->bhd' with e4m3 operands and DeepGEMM's recipe (1, 128, 128): a = (x [b, h, r],
// per-token scales [b, h, ceil(r / 128)]), b = (y [h, d, r], per-block scales
// [h, ceil(d / 128), ceil(r / 128)]); d [b, h, d] bf16, or fp32 with c (fp32) added.
void fp8_einsum(const std::string& expr, const std::pair<at::Tensor, at::Tensor>& a,
                const std::pair<at::Tensor, at::Tensor>& b, const at::Tensor& d, const std::optional<at::Tensor>& c,
                int recipe_m, int recipe_n, int recipe_k);

}  // namespace deep_gemm::api
