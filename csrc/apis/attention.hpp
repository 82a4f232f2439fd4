// The sparse-attention indexer's entry points (DeepSeek V3.2) over at::Tensor,
// with DeepGEMM's argument order and semantics; every argument is validated here.
// logits_dtype is "torch.float32" or "torch.bfloat16" (str() of the torch dtype).
#pragma once

#include <ATen/Tensor.h>

#include <optional>
#include <string>
#include <utility>

namespace deep_gemm::api {

// logits [seq_len, seq_len_kv] (max_seqlen_k > 0: [seq_len, max_seqlen_k], row i
// holding keys ks[i]...) with logits[i, j] = kv[1][j] * sum_h weights[i, h] *
// relu(q[i, h] . kv[0][j]) for j in [ks[i], ke[i]); -inf elsewhere when
// clean_logits. q_scales: FP4 queries (SM100 only upstream), rejected.
at::Tensor fp8_mqa_logits(const at::Tensor& q, const std::optional<at::Tensor>& q_scales,
                          const std::pair<at::Tensor, at::Tensor>& kv, const at::Tensor& weights,
                          const at::Tensor& cu_seq_len_k_start, const at::Tensor& cu_seq_len_k_end, bool clean_logits,
                          int max_seqlen_k, const std::string& logits_dtype);

// int32 [num_sms + 1, 2]: where each of num_sms parts of the paged work starts.
at::Tensor get_paged_mqa_logits_metadata(const at::Tensor& context_lens, int block_kv, int num_sms,
                                         const std::optional<at::Tensor>& indices);

// logits [batch * next_n, max_context_len] with row b * next_n + n holding keys
// j < context_lens[b, n] of the paged cache; the rest -inf when clean_logits, else
// unspecified.
at::Tensor fp8_paged_mqa_logits(const at::Tensor& q, const std::optional<at::Tensor>& q_scales,
                                const at::Tensor& kv_cache, const at::Tensor& weights,
                                const at::Tensor& context_lens, const at::Tensor& block_table,
                                const at::Tensor& schedule_meta, int max_context_len, bool clean_logits,
                                const std::string& logits_dtype, const std::optional<at::Tensor>& indices);

}  // namespace deep_gemm::api
