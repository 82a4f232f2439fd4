// Host side of the sparse-attention indexer kernels (deep_gemm/include/deep_gemm/
// mqa_logits.cuh, paged_mqa_logits.cuh): the generated sources, the TMA
// descriptors, the launches. Tensors are validated by csrc/apis/attention.cpp.
#pragma once

#include <ATen/Tensor.h>

#include <cstdint>
#include <vector>

#include "../jit/runtime.hpp"

namespace deep_gemm::kernels {

// Every instantiation the launchers below can pick, for the CPU compile tests.
std::vector<jit::KernelSource> attention_kernel_sources();

// logits[i, j] (or [i, j - ks[i]] when compressed) for j in [ks[i], ke[i]); the rest untouched.
struct MqaLogitsProblem {
    at::Tensor q;          // e4m3 [seq_len, heads, dim], contiguous
    at::Tensor kv;         // e4m3 [seq_len_kv, dim], contiguous
    at::Tensor kv_scales;  // fp32 [seq_len_kv]
    at::Tensor weights;    // fp32 [seq_len, heads], unit column stride
    at::Tensor ks, ke;     // int32 [seq_len]
    at::Tensor logits;     // fp32 or bf16, rows logits.stride(0) apart
    bool compressed;
    int num_sms;           // the SMs the launch may use (set_num_sms)
};
void launch_mqa_logits(const MqaLogitsProblem& p);

// Row i of logits [rows, cols] gets -inf outside [ks[i], ke[i]) (ks undefined: from 0).
void launch_clean_logits(const at::Tensor& logits, const at::Tensor& ks, const at::Tensor& ke);

struct PagedMqaLogitsProblem {
    at::Tensor q;             // e4m3 [batch, next_n, heads, dim], contiguous
    at::Tensor kv_cache;      // uint8 [blocks, 64, 1, dim + 4]
    at::Tensor weights;       // fp32 [batch * next_n, heads], contiguous
    at::Tensor context_lens;  // int32 [batch, next_n], contiguous
    at::Tensor block_table;   // int32 [batch, width], unit column stride
    at::Tensor schedule;      // int32 [parts + 1, 2] from launch_paged_mqa_schedule
    at::Tensor logits;        // fp32 or bf16 [batch * next_n, max_context_len], rows logits.stride(0) apart
};
void launch_paged_mqa_logits(const PagedMqaLogitsProblem& p);

// Columns per MMA for next_n x heads columns (a power of two that divides them).
int paged_mqa_chunk(int columns);
// Largest next_n x heads a launch takes (Q and the weights in shared memory, one TMA box).
constexpr int kMaxPagedColumns = 256;

// schedule [parts + 1, 2] for context_lens [batch, next_n] (see paged_mqa_schedule).
void launch_paged_mqa_schedule(const at::Tensor& context_lens, const at::Tensor& schedule);

}  // namespace deep_gemm::kernels
