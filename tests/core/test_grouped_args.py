"""The grouped (MoE) and BF16 GEMMs reject bad arguments with an exception naming the argument.

CPU tensors: every check except the device ones comes first (see test_fp8_gemm_args.py).
"""
import re

import pytest
import torch

import deep_gemm
from deep_gemm import get_mn_major_tma_aligned_tensor as mn_major

G, M, N, K = 2, 256, 256, 256


def fp8(*shape):
    return torch.zeros(shape, dtype=torch.float8_e4m3fn)


def contiguous_args():
    a = (fp8(M, K), mn_major(torch.ones(M, K // 128)))
    b = (fp8(G, N, K), torch.ones(G, N // 128, K // 128))
    return a, b, torch.empty(M, N, dtype=torch.bfloat16), torch.zeros(M, dtype=torch.int32)


def masked_args():
    a = (fp8(G, M, K), mn_major(torch.ones(G, M, K // 128)))
    b = (fp8(G, N, K), torch.ones(G, N // 128, K // 128))
    return a, b, torch.empty(G, M, N, dtype=torch.bfloat16), torch.zeros(G, dtype=torch.int32)


def expect(error, message, fn, *args):
    with pytest.raises(error, match=re.escape(message)):
        fn(*args)


def test_alignment_helper():
    assert deep_gemm.get_mk_alignment_for_contiguous_layout() == 128


def test_contiguous_errors():
    op = deep_gemm.m_grouped_fp8_gemm_nt_contiguous
    a, b, d, m_indices = contiguous_args()
    expect(ValueError, "a[0] must be a CUDA tensor", op, a, b, d, m_indices)  # all valid but on the CPU
    expect(TypeError, "m_indices must have dtype Int, got Long", op, a, b, d, m_indices.long())
    expect(ValueError, "m_indices must have shape [M] = [256], got [255]", op, a, b, d, m_indices[:255])
    expect(ValueError, "b[0] must be 3-D, got shape [256, 256]", op, a, (fp8(N, K), b[1]), d, m_indices)
    expect(ValueError, "b[1] must have shape [G, ceil(N / 128), ceil(K / 128)] = [2, 2, 2], got [2, 2, 3]", op, a,
           (b[0], torch.ones(G, 2, 3)), d, m_indices)
    short = (fp8(200, K), mn_major(torch.ones(200, K // 128)))
    expect(ValueError, "needs M (200) to be a multiple of get_mk_alignment_for_contiguous_layout() = 128", op, short,
           b, torch.empty(200, N, dtype=torch.bfloat16), torch.zeros(200, dtype=torch.int32))


def test_masked_errors():
    op = deep_gemm.m_grouped_fp8_gemm_nt_masked
    a, b, d, masked_m = masked_args()
    expect(ValueError, "a[0] must be a CUDA tensor", op, a, b, d, masked_m, 128)
    expect(ValueError, "a has 3 groups but b has 2", op, (fp8(3, M, K), mn_major(torch.ones(3, M, 2))), b,
           torch.empty(3, M, N, dtype=torch.bfloat16), masked_m, 128)
    expect(ValueError, "masked_m must have shape [G] = [2], got [3]", op, a, b, d, torch.zeros(3, dtype=torch.int32),
           128)
    expect(ValueError, "expected_m must be positive, got 0", op, a, b, d, masked_m, 0)
    expect(ValueError, "d must be 3-D, got shape [256, 256]", op, a, b, torch.empty(M, N, dtype=torch.bfloat16),
           masked_m, 128)
    # Row-major A scales are re-laid out (as DeepGEMM does): the call reaches the device check.
    expect(ValueError, "a[0] must be a CUDA tensor", op, (a[0], torch.ones(G, M, 2)), b, d, masked_m, 128)


def test_bf16_errors():
    a = torch.zeros(M, K, dtype=torch.bfloat16)
    d = torch.empty(M, N, dtype=torch.bfloat16)
    expect(ValueError, "a must be a CUDA tensor", deep_gemm.bf16_gemm_nt, a, a, d)
    expect(TypeError, "b must have dtype BFloat16, got Float", deep_gemm.bf16_gemm_nt, a, a.float(), d)
    expect(ValueError, "K must be a positive multiple of 8 (rows of A and B 16-byte aligned for TMA), got K = 100",
           deep_gemm.bf16_gemm_nt, a[:, :100].contiguous(), a[:, :100].contiguous(), d)
    xm = torch.zeros(G, M, K, dtype=torch.bfloat16)
    expect(ValueError, "d must have shape [G, M, N] = [2, 256, 256], got [2, 256, 255]",
           deep_gemm.m_grouped_bf16_gemm_nt_masked, xm, torch.zeros(G, N, K, dtype=torch.bfloat16),
           torch.empty(G, M, N - 1, dtype=torch.bfloat16), torch.zeros(G, dtype=torch.int32), 64)


def test_k_grouped_errors_come_before_any_group_runs():
    """Every argument of the K-grouped GEMMs is checked before the first group's GEMM: on CPU
    tensors each bad one is named; a valid set reaches the device check."""
    ks = [128, 0, 256]
    a = (fp8(sum(ks) * M), mn_major(torch.ones(M, sum(ks) // 128)))
    b = (fp8(sum(ks) * N), mn_major(torch.ones(N, sum(ks) // 128)))
    d = torch.zeros(len(ks), M, N)
    layout = torch.tensor(ks, dtype=torch.int32)
    op = deep_gemm.k_grouped_fp8_gemm_nt_contiguous
    expect(ValueError, "a[0] must be a CUDA tensor", op, a, b, d, ks, layout, d)
    expect(ValueError, "ks_cpu[2] = 200 must be a non-negative multiple of 128", op, a, b, d, [128, 0, 200],
           torch.tensor([128, 0, 200], dtype=torch.int32), d)
    # _C checks again (its callers are not only this package's Python layer).
    expect(ValueError, "ks_cpu[2] = 200 is not a multiple of 128", deep_gemm._C.k_grouped_fp8_gemm_nt_contiguous,
           a, b, d, [128, 0, 200], torch.tensor([128, 0, 200], dtype=torch.int32), d)
    expect(ValueError, "a and b hold fewer than sum(ks_cpu) = 512 K-rows", op, a, b, d, [128, 128, 256],
           torch.tensor([128, 128, 256], dtype=torch.int32), d)
    x, y = torch.zeros(sum(ks), M, dtype=torch.bfloat16), torch.zeros(sum(ks), N, dtype=torch.bfloat16)
    bf16 = deep_gemm.k_grouped_bf16_gemm_tn_contiguous
    expect(ValueError, "a must be a CUDA tensor", bf16, x, y, d, ks, layout, d)
    expect(ValueError, "a and b hold fewer than sum(ks_cpu) = 512 K-rows", bf16, x, y, d, [256, 0, 256],
           torch.tensor([256, 0, 256], dtype=torch.int32), d)
