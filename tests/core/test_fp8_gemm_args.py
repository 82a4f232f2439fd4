"""fp8_gemm_nt rejects bad arguments with an exception naming the argument.

These run on CPU tensors: every check except the device ones comes first, so
each error here is the one a GPU user would see for the same mistake.
"""
import re

import pytest
import torch

import deep_gemm

M, N, K = 64, 256, 384


def operands(m=M, n=N, k=K):
    a = torch.zeros((m, k), dtype=torch.float8_e4m3fn)
    sfa = deep_gemm.get_mn_major_tma_aligned_tensor(torch.ones((m, k // 128)))
    b = torch.zeros((n, k), dtype=torch.float8_e4m3fn)
    sfb = torch.ones((deep_gemm.ceil_div(n, 128), k // 128))
    d = torch.empty((m, n), dtype=torch.bfloat16)
    return (a, sfa), (b, sfb), d


def call_with(**changes):
    (a, sfa), (b, sfb), d = operands()
    args = {"a": a, "sfa": sfa, "b": b, "sfb": sfb, "d": d, "c": None} | changes
    deep_gemm.fp8_gemm_nt((args["a"], args["sfa"]), (args["b"], args["sfb"]), args["d"], c=args["c"])


@pytest.mark.parametrize(
    "changes, error, message",
    [
        ({"a": torch.zeros((M, K), dtype=torch.bfloat16)}, TypeError,
         "a[0] must have dtype Float8_e4m3fn, got BFloat16"),
        ({"b": torch.zeros((N, K), dtype=torch.float8_e5m2)}, TypeError, "b[0] must have dtype Float8_e4m3fn"),
        ({"sfa": torch.ones((M, K // 128), dtype=torch.float16)}, TypeError,
         "a[1] must have dtype torch.float32, got torch.float16"),
        ({"sfb": torch.ones((2, 3), dtype=torch.int32)}, TypeError, "b[1] holds packed UE8M0 scales (torch.int32)"),
        ({"d": torch.empty((M, N), dtype=torch.float16)}, TypeError, "d must have dtype BFloat16 or Float"),
        ({"c": torch.zeros((M, N))}, TypeError, "accumulating into c needs d to be torch.float32"),
        ({"a": torch.zeros((1, M, K), dtype=torch.float8_e4m3fn)}, ValueError,
         "a[0] must be 2-D, got shape [1, 64, 384]"),
        ({"b": torch.zeros((N, 512), dtype=torch.float8_e4m3fn)}, ValueError, "K differs"),
        ({"a": torch.zeros((M, 200), dtype=torch.float8_e4m3fn), "b": torch.zeros((N, 200), dtype=torch.float8_e4m3fn)},
         ValueError, "K must be a positive multiple of 16 (rows of A and B 16-byte aligned for TMA), got K = 200"),
        ({"a": torch.zeros((K, M), dtype=torch.float8_e4m3fn).t()}, ValueError, "a[0] must be contiguous"),
        ({"d": torch.empty((M, N + 1), dtype=torch.bfloat16)}, ValueError,
         "d must have shape [M, N] = [64, 256], got [64, 257]"),
        ({"sfa": torch.ones((M, 2))}, ValueError, "a[1] must have shape [M, ceil(K / 128)] = [64, 3], got [64, 2]"),
        ({"sfb": torch.ones((2, 4))}, ValueError,
         "b[1] must have shape [ceil(N / 128), ceil(K / 128)] = [2, 3], got [2, 4]"),
    ],
)
def test_bad_argument_is_named(changes, error, message):
    with pytest.raises(error, match=re.escape(message)):
        call_with(**changes)


def test_fp32_output_with_wrong_shaped_c():
    with pytest.raises(ValueError, match=re.escape("c must have shape [M, N] = [64, 256], got [64, 255]")):
        call_with(d=torch.empty((M, N)), c=torch.zeros((M, N - 1)))


def test_cpu_tensors_are_refused():
    with pytest.raises(ValueError, match=re.escape("a[0] must be a CUDA tensor, got one on cpu")):
        call_with()


@pytest.mark.parametrize("m", [5, 64])
def test_a_scales_in_any_layout_reach_the_kernel_checks(m):
    # Row-major, unpadded MN-major and TMA-aligned A scales are all accepted (DeepGEMM
    # re-lays them out): each call gets as far as the device check.
    (a, sfa), (b, sfb), d = operands(m=m)
    for scales in (sfa, torch.ones((m, K // 128)), torch.ones((K // 128, m)).t()):
        with pytest.raises(ValueError, match=re.escape("a[0] must be a CUDA tensor")):
            deep_gemm.fp8_gemm_nt((a, scales), (b, sfb), d)
    # B's block scales transposed-contiguous are accepted too.
    with pytest.raises(ValueError, match=re.escape("a[0] must be a CUDA tensor")):
        deep_gemm.fp8_gemm_nt((a, sfa), (b, sfb.t().contiguous().t()), d)


def test_b_scales_in_another_layout_are_named():
    (a, sfa), (b, sfb), d = operands()
    strided = torch.ones((2, 6))[:, ::2]
    with pytest.raises(ValueError, match=re.escape("b[1] must be contiguous (row-major), got strides [6, 2]")):
        deep_gemm.fp8_gemm_nt((a, sfa), (b, strided), d)


def test_operands_must_be_pairs():
    (a, sfa), (b, sfb), d = operands()
    with pytest.raises(TypeError):
        deep_gemm.fp8_gemm_nt(a, (b, sfb), d)
