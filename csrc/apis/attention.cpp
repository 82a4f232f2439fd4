#include "attention.hpp"

#include <ATen/ops/empty.h>
#include <c10/util/Exception.h>

#include "../jit_kernels/attention.hpp"
#include "device.hpp"
#include "tensor_checks.hpp"

namespace deep_gemm::api {
namespace {

// Upstream's logits allocation: rows a multiple of 1024 bytes apart, at least one
// 256-key split past the keys (the kernels never write past the logical width).
constexpr int64_t kLogitsRowAlignment = 1024;
constexpr int64_t kLogitsSplit = 256;
constexpr int kQHeads = 128;       // the dense kernel's MMA columns (query rows x heads)
constexpr int kPagedBlock = 64;    // keys per cache block

int64_t align(int64_t x, int64_t to) { return (x + to - 1) / to * to; }

at::ScalarType logits_type(const char* op, const std::string& logits_dtype) {
    if (logits_dtype == "torch.float32") return at::kFloat;
    if (logits_dtype == "torch.bfloat16") return at::kBFloat16;
    TORCH_CHECK_TYPE(false, op, ": logits_dtype must be torch.float32 or torch.bfloat16, got ", logits_dtype);
}

void check_heads_and_dim(const char* op, int64_t heads, int64_t dim) {
    TORCH_CHECK_VALUE(heads == 32 || heads == 64, op, ": q must have 32 or 64 heads on SM90, got ", heads);
    TORCH_CHECK_VALUE(dim == 32 || dim == 64 || dim == 128, op, ": the head dim must be 32, 64 or 128, got ", dim);
}

void reject_fp4(const char* op, const std::optional<at::Tensor>& q_scales) {
    TORCH_CHECK_VALUE(!q_scales.has_value(), op,
                      ": FP4 queries (q given as (values, scales)) need an SM100 GPU; on SM90 pass q as (e4m3 "
                      "tensor, None)");
}

void reject_indices(const char* op, const std::optional<at::Tensor>& indices) {
    TORCH_CHECK_VALUE(!indices.has_value(), op,
                      ": indices (variable-length batches) need an SM100 GPU; on SM90 pass indices=None");
}

}  // namespace

at::Tensor fp8_mqa_logits(const at::Tensor& q, const std::optional<at::Tensor>& q_scales,
                          const std::pair<at::Tensor, at::Tensor>& kv, const at::Tensor& weights,
                          const at::Tensor& ks, const at::Tensor& ke, bool clean_logits, int max_seqlen_k,
                          const std::string& logits_dtype) {
    const char* op = "fp8_mqa_logits";
    reject_fp4(op, q_scales);
    const at::ScalarType out_type = logits_type(op, logits_dtype);
    checks::dtype(op, "q", q, {at::kFloat8_e4m3fn});
    checks::rank(op, "q", q, 3, "[seq_len, heads, head_dim]");
    const int64_t seq_len = q.size(0), heads = q.size(1), dim = q.size(2);
    check_heads_and_dim(op, heads, dim);
    checks::dtype(op, "kv[0]", kv.first, {at::kFloat8_e4m3fn});
    checks::rank(op, "kv[0]", kv.first, 2, "[seq_len_kv, head_dim]");
    const int64_t seq_len_kv = kv.first.size(0);
    checks::shape(op, "kv[0]", kv.first, {seq_len_kv, dim}, "[seq_len_kv, head_dim]");
    checks::dtype(op, "kv[1]", kv.second, {at::kFloat});
    checks::shape(op, "kv[1]", kv.second, {seq_len_kv}, "[seq_len_kv]");
    checks::dtype(op, "weights", weights, {at::kFloat});
    checks::shape(op, "weights", weights, {seq_len, heads}, "[seq_len, heads]");
    TORCH_CHECK_VALUE(weights.stride(1) == 1 || heads == 1, op, ": weights must have unit column stride, got strides ",
                      weights.strides());
    checks::dtype(op, "cu_seq_len_k_start", ks, {at::kInt});
    checks::shape(op, "cu_seq_len_k_start", ks, {seq_len}, "[seq_len]");
    checks::dtype(op, "cu_seq_len_k_end", ke, {at::kInt});
    checks::shape(op, "cu_seq_len_k_end", ke, {seq_len}, "[seq_len]");
    TORCH_CHECK_VALUE(max_seqlen_k >= 0, op, ": max_seqlen_k must be >= 0, got ", max_seqlen_k);
    TORCH_CHECK_VALUE(max_seqlen_k == 0 || !clean_logits, op,
                      ": compressed logits (max_seqlen_k > 0) cannot be cleaned; pass clean_logits=False");
    checks::contiguous(op, "q", q);
    checks::contiguous(op, "kv[0]", kv.first);
    checks::contiguous(op, "kv[1]", kv.second);
    checks::contiguous(op, "cu_seq_len_k_start", ks);
    checks::contiguous(op, "cu_seq_len_k_end", ke);
    checks::devices(op, {{"q", &q}, {"kv[0]", &kv.first}, {"kv[1]", &kv.second}, {"weights", &weights},
                         {"cu_seq_len_k_start", &ks}, {"cu_seq_len_k_end", &ke}});
    checks::aligned16(op, "q", q);
    checks::aligned16(op, "kv[0]", kv.first);
    checks::aligned16(op, "kv[1]", kv.second);
    require_sm90(q, op);

    const int64_t q_rows = kQHeads / heads;
    const int64_t row_alignment = kLogitsRowAlignment / static_cast<int64_t>(c10::elementSize(out_type));
    const int64_t width = max_seqlen_k == 0 ? seq_len_kv : max_seqlen_k;
    const int64_t stride = max_seqlen_k == 0 ? align(seq_len_kv + kLogitsSplit, row_alignment)
                                             : align(align(max_seqlen_k, kLogitsSplit), row_alignment);
    at::Tensor logits = at::empty({align(seq_len, q_rows), stride}, q.options().dtype(out_type))
                            .slice(0, 0, seq_len)
                            .slice(1, 0, width);
    if (seq_len == 0 || width == 0) return logits;
    if (seq_len_kv > 0)
        kernels::launch_mqa_logits({q, kv.first, kv.second, weights, ks, ke, logits, max_seqlen_k > 0, get_num_sms()});
    if (clean_logits) kernels::launch_clean_logits(logits, ks, ke);
    return logits;
}

at::Tensor get_paged_mqa_logits_metadata(const at::Tensor& context_lens, int block_kv, int num_sms,
                                         const std::optional<at::Tensor>& indices) {
    const char* op = "get_paged_mqa_logits_metadata";
    reject_indices(op, indices);
    TORCH_CHECK_VALUE(block_kv == kPagedBlock, op, ": block_kv must be ", kPagedBlock, " on SM90, got ", block_kv);
    TORCH_CHECK_VALUE(num_sms >= 1, op, ": num_sms must be >= 1, got ", num_sms);
    checks::dtype(op, "context_lens", context_lens, {at::kInt});
    checks::rank(op, "context_lens", context_lens, 2, "[batch, next_n]");
    checks::contiguous(op, "context_lens", context_lens);
    checks::devices(op, {{"context_lens", &context_lens}});
    require_sm90(context_lens, op);
    at::Tensor schedule = at::empty({num_sms + 1, 2}, context_lens.options());
    kernels::launch_paged_mqa_schedule(context_lens, schedule);
    return schedule;
}

at::Tensor fp8_paged_mqa_logits(const at::Tensor& q, const std::optional<at::Tensor>& q_scales,
                                const at::Tensor& kv_cache, const at::Tensor& weights,
                                const at::Tensor& context_lens, const at::Tensor& block_table,
                                const at::Tensor& schedule_meta, int max_context_len, bool clean_logits,
                                const std::string& logits_dtype, const std::optional<at::Tensor>& indices) {
    const char* op = "fp8_paged_mqa_logits";
    reject_fp4(op, q_scales);
    reject_indices(op, indices);
    const at::ScalarType out_type = logits_type(op, logits_dtype);
    checks::dtype(op, "q", q, {at::kFloat8_e4m3fn});
    checks::rank(op, "q", q, 4, "[batch, next_n, heads, head_dim]");
    const int64_t batch = q.size(0), next_n = q.size(1), heads = q.size(2), dim = q.size(3);
    check_heads_and_dim(op, heads, dim);
    TORCH_CHECK_VALUE(next_n >= 1, op, ": next_n (q.shape[1]) must be >= 1, got ", next_n);
    TORCH_CHECK_VALUE(next_n * heads <= kernels::kMaxPagedColumns, op, ": next_n x heads must be at most ",
                      kernels::kMaxPagedColumns, ", got ", next_n, " x ", heads);
    checks::dtype(op, "kv_cache", kv_cache, {at::kByte});
    checks::rank(op, "kv_cache", kv_cache, 4, "[blocks, block_kv, 1, head_dim + 4]");
    TORCH_CHECK_VALUE(kv_cache.size(1) == kPagedBlock, op, ": kv_cache blocks must hold ", kPagedBlock,
                      " keys on SM90 (block_kv), got shape ", checks::shape_of(kv_cache));
    TORCH_CHECK_VALUE(kv_cache.size(2) == 1 && kv_cache.size(3) == dim + 4, op,
                      ": kv_cache must have shape [blocks, 64, 1, head_dim + 4] (e4m3 values then an fp32 scale "
                      "per key), head_dim = ",
                      dim, ", got ", checks::shape_of(kv_cache));
    TORCH_CHECK_VALUE(kv_cache.stride(3) == 1 && kv_cache.stride(1) == dim + 4 && kv_cache.stride(0) % 16 == 0 &&
                          kv_cache.stride(0) >= kPagedBlock * (dim + 4),
                      op, ": kv_cache's blocks must be packed rows of head_dim + 4 bytes, blocks a multiple of 16 ",
                      "bytes apart, got strides ", kv_cache.strides());
    checks::dtype(op, "weights", weights, {at::kFloat});
    checks::shape(op, "weights", weights, {batch * next_n, heads}, "[batch * next_n, heads]");
    checks::contiguous(op, "weights", weights);
    checks::dtype(op, "context_lens", context_lens, {at::kInt});
    TORCH_CHECK_VALUE(context_lens.dim() == 2, op,
                      ": context_lens must be 2-D [batch, next_n] (one length per query row), got shape ",
                      checks::shape_of(context_lens));
    checks::shape(op, "context_lens", context_lens, {batch, next_n}, "[batch, next_n]");
    checks::contiguous(op, "context_lens", context_lens);
    checks::dtype(op, "block_table", block_table, {at::kInt});
    checks::rank(op, "block_table", block_table, 2, "[batch, max_blocks]");
    TORCH_CHECK_VALUE(block_table.size(0) == batch, op, ": block_table must have batch = ", batch, " rows, got shape ",
                      checks::shape_of(block_table));
    TORCH_CHECK_VALUE(block_table.stride(1) == 1 || block_table.size(1) <= 1, op,
                      ": block_table must have unit column stride, got strides ", block_table.strides());
    checks::dtype(op, "schedule_meta", schedule_meta, {at::kInt});
    TORCH_CHECK_VALUE(schedule_meta.dim() == 2 && schedule_meta.size(0) >= 2 && schedule_meta.size(1) == 2, op,
                      ": schedule_meta must be [num_sms + 1, 2] from get_paged_mqa_logits_metadata, got shape ",
                      checks::shape_of(schedule_meta));
    checks::contiguous(op, "schedule_meta", schedule_meta);
    TORCH_CHECK_VALUE(max_context_len >= 0, op, ": max_context_len must be >= 0, got ", max_context_len);
    checks::contiguous(op, "q", q);
    checks::devices(op, {{"q", &q}, {"kv_cache", &kv_cache}, {"weights", &weights}, {"context_lens", &context_lens},
                         {"block_table", &block_table}, {"schedule_meta", &schedule_meta}});
    checks::aligned16(op, "q", q);
    checks::aligned16(op, "kv_cache", kv_cache);
    checks::aligned16(op, "weights", weights);
    require_sm90(q, op);

    const int64_t row_alignment = kLogitsRowAlignment / static_cast<int64_t>(c10::elementSize(out_type));
    const int64_t stride = align(align(max_context_len, kLogitsSplit), row_alignment);
    at::Tensor logits =
        at::empty({batch * next_n, stride}, q.options().dtype(out_type)).slice(1, 0, max_context_len);
    if (batch == 0 || max_context_len == 0) return logits;
    if (kv_cache.size(0) > 0 && block_table.size(1) > 0)
        kernels::launch_paged_mqa_logits({q, kv_cache, weights, context_lens, block_table, schedule_meta, logits});
    if (clean_logits) kernels::launch_clean_logits(logits, at::Tensor(), context_lens.view({-1}));
    return logits;
}

}  // namespace deep_gemm::api
