// The GEMM entry points over at::Tensor, with DeepGEMM's names, argument order
// and layouts. Every argument is validated here; a bad one raises a c10 error
// (TypeError / ValueError / RuntimeError in Python) naming it.
//
// FP8 operands are (e4m3 data, fp32 scales) pairs: A's scales [.., M, ceil(K/128)] in
// the MN-major TMA-aligned layout (get_mn_major_tma_aligned_tensor), B's scales
// [.., ceil(N/128), ceil(K/128)] contiguous (recipe (1, 128, 128)). D is bf16 or fp32;
// C (fp32, may be D) needs an fp32 D. Grouped B is [G, N, K]. K is any multiple of 16
// (FP8) or 8 (BF16): rows of A and B must be 16-byte aligned for TMA.
#pragma once

#include <ATen/Tensor.h>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace deep_gemm::api {

using ScaledTensor = std::pair<at::Tensor, at::Tensor>;  // (fp8 data, fp32 scales)

// Rows of each expert's segment in the contiguous layout are a multiple of this.
int get_mk_alignment_for_contiguous_layout();

// D = A @ B^T (+ C); A [M, K], B [N, K], D [M, N].
void fp8_gemm_nt(const ScaledTensor& a, const ScaledTensor& b, const at::Tensor& d,
                 const std::optional<at::Tensor>& c);
// Recipe (1, 1, 128) ("1D1D", upstream's weight-gradient kernel): B's scales are per
// (column, K-block) like A's, [N, ceil(K/128)] MN-major TMA-aligned; D is fp32.
void fp8_gemm_nt_1d1d(const ScaledTensor& a, const ScaledTensor& b, const at::Tensor& d,
                      const std::optional<at::Tensor>& c);
void bf16_gemm_nt(const at::Tensor& a, const at::Tensor& b, const at::Tensor& d, const std::optional<at::Tensor>& c);

// D[r] = A[r] @ B[m_indices[r]]^T; A [M, K], D [M, N], m_indices int32 [M] with
// -1 for padding rows. A tile of rows is computed with the expert of its first row,
// padding rows included (upstream's semantics); tiles that start with padding are
// skipped, their D rows left untouched. Each expert's segment
// starts at a multiple of get_mk_alignment_for_contiguous_layout() rows.
void m_grouped_fp8_gemm_nt_contiguous(const ScaledTensor& a, const ScaledTensor& b, const at::Tensor& d,
                                      const at::Tensor& m_indices);
void m_grouped_bf16_gemm_nt_contiguous(const at::Tensor& a, const at::Tensor& b, const at::Tensor& d,
                                       const at::Tensor& m_indices);

// K-grouped (MoE weight gradients): d[g] = c[g] + A_g @ B_g^T over groups concatenated
// along K, ks[g] each; ks_tensor is ks as int32 [G] on d's device. FP8 (recipe (1, 1, 128)):
// a[0] holds each group's A_g [M, ks[g]] K-major one after another (flat), a[1] the
// MN-major [M, sum(ks) / 128] scales; b likewise for N. BF16 ("tn"): a [sum(ks), M],
// b [sum(ks), N] row-major. d, c fp32 [G, M, N] (c may be d).
void k_grouped_fp8_gemm_nt_contiguous(const ScaledTensor& a, const ScaledTensor& b, const at::Tensor& d,
                                      const std::vector<uint64_t>& ks, const at::Tensor& ks_tensor,
                                      const std::optional<at::Tensor>& c);
void k_grouped_bf16_gemm_tn_contiguous(const at::Tensor& a, const at::Tensor& b, const at::Tensor& d,
                                       const std::vector<uint64_t>& ks, const at::Tensor& ks_tensor,
                                       const std::optional<at::Tensor>& c);

// D[g, :masked_m[g]] = A[g, :masked_m[g]] @ B[g]^T; A [G, M, K], D [G, M, N],
// masked_m int32 [G] on the GPU; expected_m (typical rows per group) tunes tiles.
void m_grouped_fp8_gemm_nt_masked(const ScaledTensor& a, const ScaledTensor& b, const at::Tensor& d,
                                  const at::Tensor& masked_m, int expected_m);
void m_grouped_bf16_gemm_nt_masked(const at::Tensor& a, const at::Tensor& b, const at::Tensor& d,
                                   const at::Tensor& masked_m, int expected_m);

// (name, CUDA source) of every kernel the API can launch: each GEMM instantiation it
// can select and the grouping checks of m_indices / masked_m.
std::vector<std::pair<std::string, std::string>> kernel_sources();

// Re-reads the DG_GEMM_* tuning overrides (kernels::reload_plan_overrides).
void reload_gemm_plan_overrides();

// The kernel the tile heuristic picks for a problem and its split K, if any, without a
// GPU (for tests): input "fp8" / "bf16", type "dense" / "contiguous" / "masked",
// output "bf16" / "fp32". See kernels::GemmPlan::describe.
std::string gemm_config_name(const std::string& input, const std::string& type, int m, int n, int k, int num_groups,
                             int expected_m, const std::string& output, int num_sms);

}  // namespace deep_gemm::api
