"""DeepSeek V3.2's sparse-attention indexer: MQA logits, dense (prefill) and over a paged
FP8 KV cache (decode), with DeepGEMM 2.x's names, parameters and defaults.

For a query row i, head h and key j the indexer scores
``logits[i, j] = kv_scale[j] * sum_h weights[i, h] * relu(q[i, h] . kv[j])``
from e4m3 queries and keys (one fp32 scale per key) on the tensor cores. On SM90 q
has 32 or 64 heads of head dim 32, 64 or 128; FP4 queries and variable-length
``indices`` are SM100 features and are refused with a ValueError. Each function
calls one positional `_C` entry point, which validates every argument.
"""
from __future__ import annotations

import torch

from ._loader import _C

__all__ = [
    "fp8_fp4_mqa_logits",
    "fp8_fp4_paged_mqa_logits",
    "fp8_mqa_logits",
    "fp8_paged_mqa_logits",
    "get_paged_mqa_logits_metadata",
]


def _split_q(q):
    """DeepGEMM's fp8_fp4 entry points take q as (values, scales or None)."""
    if isinstance(q, (tuple, list)):
        if len(q) != 2:
            raise ValueError(f"q must be a tensor or a (values, scales) pair, got a sequence of {len(q)}")
        return q[0], q[1]
    return q, None


def fp8_fp4_mqa_logits(q, kv, weights: torch.Tensor, cu_seq_len_k_start: torch.Tensor,
                       cu_seq_len_k_end: torch.Tensor, clean_logits: bool = True, max_seqlen_k: int = 0,
                       logits_dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Prefill indexer logits.

    q: (e4m3 [seq_len, heads, head_dim], None) (or the tensor alone); kv: (e4m3
    [seq_len_kv, head_dim], fp32 [seq_len_kv] per-key scales); weights: fp32
    [seq_len, heads]; cu_seq_len_k_start / cu_seq_len_k_end: int32 [seq_len], the
    keys [start[i], end[i]) row i attends to.

    Returns logits [seq_len, seq_len_kv] of logits_dtype (float32 or bfloat16), -inf
    outside each row's range when clean_logits (else unspecified there). With
    max_seqlen_k > 0 the logits are compressed: [seq_len, max_seqlen_k], row i
    holding keys start[i] ... start[i] + max_seqlen_k - 1 from column 0 (needs
    clean_logits=False). Rows are padded to 1024-byte strides, as upstream's.
    """
    values, scales = _split_q(q)
    return _C.fp8_mqa_logits(values, scales, kv, weights, cu_seq_len_k_start, cu_seq_len_k_end, bool(clean_logits),
                             max_seqlen_k, str(logits_dtype))


def fp8_mqa_logits(q: torch.Tensor, kv, weights: torch.Tensor, cu_seq_len_k_start: torch.Tensor,
                   cu_seq_len_k_end: torch.Tensor, clean_logits: bool = True, max_seqlen_k: int = 0) -> torch.Tensor:
    """fp8_fp4_mqa_logits for an e4m3 q tensor, float32 logits (DeepGEMM's legacy name)."""
    return fp8_fp4_mqa_logits((q, None), kv, weights, cu_seq_len_k_start, cu_seq_len_k_end, clean_logits,
                              max_seqlen_k, torch.float32)


def get_paged_mqa_logits_metadata(context_lens: torch.Tensor, block_kv: int, num_sms: int,
                                  indices: torch.Tensor | None = None) -> torch.Tensor:
    """The schedule of fp8_fp4_paged_mqa_logits for one batch: int32 [num_sms + 1, 2].

    context_lens: int32 [batch, next_n] on the GPU (2-D: one length per query row);
    block_kv: the cache's block size, 64 on SM90. Computed on the GPU without a host
    sync; pass it to every paged call over the same context_lens.
    """
    return _C.get_paged_mqa_logits_metadata(context_lens, block_kv, num_sms, indices)


def fp8_fp4_paged_mqa_logits(q, kv_cache: torch.Tensor, weights: torch.Tensor, context_lens: torch.Tensor,
                             block_table: torch.Tensor, schedule_meta: torch.Tensor, max_context_len: int,
                             clean_logits: bool = False, logits_dtype: torch.dtype = torch.float32,
                             indices: torch.Tensor | None = None) -> torch.Tensor:
    """Decode indexer logits over a paged FP8 KV cache.

    q: (e4m3 [batch, next_n, heads, head_dim], None) (or the tensor alone);
    kv_cache: uint8 [blocks, 64, 1, head_dim + 4], each block its 64 keys' e4m3 values
    then their fp32 scales; weights: fp32 [batch * next_n, heads]; context_lens: int32
    [batch, next_n]; block_table: int32 [batch, max_blocks], the cache blocks of each
    batch entry's keys in order; schedule_meta from get_paged_mqa_logits_metadata.

    Returns logits [batch * next_n, max_context_len] of logits_dtype: row
    b * next_n + n holds keys j < context_lens[b, n]; the rest is -inf when
    clean_logits, else unspecified. No host sync: capturable in a CUDA graph.
    """
    values, scales = _split_q(q)
    return _C.fp8_paged_mqa_logits(values, scales, kv_cache, weights, context_lens, block_table, schedule_meta,
                                   max_context_len, bool(clean_logits), str(logits_dtype), indices)


def fp8_paged_mqa_logits(q: torch.Tensor, kv_cache: torch.Tensor, weights: torch.Tensor, context_lens: torch.Tensor,
                         block_table: torch.Tensor, schedule_meta: torch.Tensor, max_context_len: int,
                         clean_logits: bool = False, indices: torch.Tensor | None = None) -> torch.Tensor:
    """fp8_fp4_paged_mqa_logits for an e4m3 q tensor, float32 logits (DeepGEMM's legacy name)."""
    return fp8_fp4_paged_mqa_logits((q, None), kv_cache, weights, context_lens, block_table, schedule_meta,
                                    max_context_len, clean_logits, torch.float32, indices)
