"""The indexer entry points (deep_gemm.attention) validate every argument before any
GPU work: CPU tensors of the wrong dtype, shape or layout raise a TypeError or
ValueError naming the argument; well-formed CPU tensors then fail the device check."""
import inspect

import pytest
import torch

import deep_gemm

E4M3 = torch.float8_e4m3fn


def dense(seq=16, heads=32, dim=64, seq_kv=100):
    return dict(
        q=(torch.zeros(seq, heads, dim).to(E4M3), None),
        kv=(torch.zeros(seq_kv, dim).to(E4M3), torch.ones(seq_kv)),
        weights=torch.zeros(seq, heads),
        cu_seq_len_k_start=torch.zeros(seq, dtype=torch.int32),
        cu_seq_len_k_end=torch.full((seq,), seq_kv, dtype=torch.int32),
    )


def paged(batch=4, next_n=2, heads=64, dim=128, blocks=10, width=3):
    return dict(
        q=(torch.zeros(batch, next_n, heads, dim).to(E4M3), None),
        kv_cache=torch.zeros(blocks, 64, 1, dim + 4, dtype=torch.uint8),
        weights=torch.zeros(batch * next_n, heads),
        context_lens=torch.ones(batch, next_n, dtype=torch.int32),
        block_table=torch.zeros(batch, width, dtype=torch.int32),
        schedule_meta=torch.zeros(133, 2, dtype=torch.int32),
        max_context_len=192,
    )


def test_signatures_are_upstreams():
    """Names, order and defaults of DeepGEMM 2.x (csrc/apis/attention.hpp's pybind11 arguments)."""
    def params(fn):
        return [(p.name, p.default) for p in inspect.signature(fn).parameters.values()]
    empty = inspect.Parameter.empty
    assert params(deep_gemm.fp8_fp4_mqa_logits) == [
        ("q", empty), ("kv", empty), ("weights", empty), ("cu_seq_len_k_start", empty), ("cu_seq_len_k_end", empty),
        ("clean_logits", True), ("max_seqlen_k", 0), ("logits_dtype", torch.float32)]
    assert params(deep_gemm.fp8_mqa_logits) == params(deep_gemm.fp8_fp4_mqa_logits)[:-1]
    assert params(deep_gemm.get_paged_mqa_logits_metadata) == [
        ("context_lens", empty), ("block_kv", empty), ("num_sms", empty), ("indices", None)]
    assert params(deep_gemm.fp8_fp4_paged_mqa_logits) == [
        ("q", empty), ("kv_cache", empty), ("weights", empty), ("context_lens", empty), ("block_table", empty),
        ("schedule_meta", empty), ("max_context_len", empty), ("clean_logits", False),
        ("logits_dtype", torch.float32), ("indices", None)]
    assert params(deep_gemm.fp8_paged_mqa_logits) == [
        p for p in params(deep_gemm.fp8_fp4_paged_mqa_logits) if p[0] != "logits_dtype"]


@pytest.mark.parametrize("change, error, words", [
    (dict(q=(torch.zeros(16, 16, 64).to(E4M3), None)), ValueError, "32 or 64 heads"),
    (dict(q=(torch.zeros(16, 32, 96).to(E4M3), None)), ValueError, "head dim must be 32, 64 or 128"),
    (dict(q=(torch.zeros(16, 32, 64, dtype=torch.bfloat16), None)), TypeError, "q must have dtype"),
    (dict(q=(torch.zeros(16, 32, 64).to(E4M3), torch.zeros(16, 32))), ValueError, "FP4 queries"),
    (dict(kv=(torch.zeros(100, 32).to(E4M3), torch.ones(100))), ValueError, "kv[0] must have shape"),
    (dict(kv=(torch.zeros(100, 64).to(E4M3), torch.ones(99))), ValueError, "kv[1] must have shape"),
    (dict(kv=(torch.zeros(100, 64).to(E4M3), torch.ones(100, dtype=torch.bfloat16))), TypeError, "kv[1]"),
    (dict(weights=torch.zeros(16, 64)), ValueError, "weights must have shape"),
    (dict(weights=torch.zeros(32, 16).t()), ValueError, "unit column stride"),
    (dict(cu_seq_len_k_start=torch.zeros(16, dtype=torch.int64)), TypeError, "cu_seq_len_k_start"),
    (dict(cu_seq_len_k_end=torch.zeros(15, dtype=torch.int32)), ValueError, "cu_seq_len_k_end must have shape"),
    (dict(logits_dtype=torch.float16), TypeError, "logits_dtype"),
    (dict(max_seqlen_k=8), ValueError, "clean_logits=False"),
    (dict(max_seqlen_k=-1, clean_logits=False), ValueError, "max_seqlen_k must be >= 0"),
    (dict(), ValueError, "must be a CUDA tensor"),
])
def test_mqa_logits_rejects(change, error, words):
    with pytest.raises(error) as info:
        deep_gemm.fp8_fp4_mqa_logits(**{**dense(), **change})
    assert words in str(info.value)


@pytest.mark.parametrize("change, error, words", [
    (dict(q=(torch.zeros(4, 5, 64, 128).to(E4M3), None)), ValueError, "next_n x heads must be at most 256"),
    (dict(q=(torch.zeros(4, 2, 64, 128).to(E4M3), torch.zeros(4, 2, 64))), ValueError, "FP4 queries"),
    (dict(kv_cache=torch.zeros(10, 32, 1, 132, dtype=torch.uint8)), ValueError, "hold 64 keys"),
    (dict(kv_cache=torch.zeros(10, 64, 1, 128, dtype=torch.uint8)), ValueError, "head_dim + 4"),
    (dict(kv_cache=torch.zeros(10, 64, 1, 132).to(E4M3)), TypeError, "kv_cache must have dtype"),
    (dict(kv_cache=torch.zeros(10, 64, 1, 140, dtype=torch.uint8)[..., :132]), ValueError, "packed rows"),
    (dict(weights=torch.zeros(4, 64)), ValueError, "weights must have shape"),
    (dict(context_lens=torch.ones(4, dtype=torch.int32)), ValueError, "context_lens must be 2-D"),
    (dict(context_lens=torch.ones(4, 1, dtype=torch.int32)), ValueError, "context_lens must have shape"),
    (dict(block_table=torch.zeros(3, 3, dtype=torch.int32)), ValueError, "block_table must have batch"),
    (dict(block_table=torch.zeros(3, 4, dtype=torch.int32).t()), ValueError, "unit column stride"),
    (dict(schedule_meta=torch.zeros(133, 3, dtype=torch.int32)), ValueError, "schedule_meta must be"),
    (dict(max_context_len=-1), ValueError, "max_context_len must be >= 0"),
    (dict(indices=torch.zeros(4, dtype=torch.int32)), ValueError, "indices"),
    (dict(logits_dtype=torch.float64), TypeError, "logits_dtype"),
    (dict(), ValueError, "must be a CUDA tensor"),
])
def test_paged_mqa_logits_rejects(change, error, words):
    with pytest.raises(error) as info:
        deep_gemm.fp8_fp4_paged_mqa_logits(**{**paged(), **change})
    assert words in str(info.value)


@pytest.mark.parametrize("args, error, words", [
    ((torch.ones(4, dtype=torch.int32), 64, 132), ValueError, "context_lens must be 2-D"),
    ((torch.ones(4, 1, dtype=torch.int32), 32, 132), ValueError, "block_kv must be 64"),
    ((torch.ones(4, 1, dtype=torch.int32), 64, 0), ValueError, "num_sms must be >= 1"),
    ((torch.ones(4, 1), 64, 132), TypeError, "context_lens must have dtype"),
    ((torch.ones(4, 1, dtype=torch.int32), 64, 132), ValueError, "must be a CUDA tensor"),
])
def test_metadata_rejects(args, error, words):
    with pytest.raises(error) as info:
        deep_gemm.get_paged_mqa_logits_metadata(*args)
    assert words in str(info.value)


def test_metadata_rejects_indices():
    with pytest.raises(ValueError, match="indices"):
        deep_gemm.get_paged_mqa_logits_metadata(torch.ones(4, 1, dtype=torch.int32), 64, 132,
                                                indices=torch.zeros(4, dtype=torch.int32))
