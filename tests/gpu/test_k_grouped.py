"""K-grouped GEMMs (weight gradients of a MoE layer) against FP32 references on the GPU:
group g's D[g] = C[g] + A_g^T B_g over its own ks[g] rows of A [sum K, M] and B [sum K, N]."""
import pytest
import torch

import deep_gemm
from deep_gemm import calc_diff
from moe import k_grouped_fp8_operand

KS = [[256, 128, 384], [128], [512, 0, 256, 128]]  # with a group of K = 0


def operands(ks, m, n, seed):
    gen = torch.Generator(device="cuda").manual_seed(seed)
    a = torch.randn(sum(ks), m, device="cuda", dtype=torch.bfloat16, generator=gen)
    b = torch.randn(sum(ks), n, device="cuda", dtype=torch.bfloat16, generator=gen)
    c = torch.randn(len(ks), m, n, device="cuda", generator=gen) * 32
    return a, b, c


def group_slices(ks):
    start = 0
    for k in ks:
        yield slice(start, start + k)
        start += k


def test_empty_group_copies_c_into_a_separate_d():
    """d apart from c: a group of K = 0 gets c[g]; the others c[g] + A_g^T B_g."""
    ks, m, n = [256, 0, 128], 128, 256
    a, b, c = operands(ks, m, n, seed=5)
    ref = c.clone()
    for g, rows in enumerate(group_slices(ks)):
        ref[g] += a[rows].float().T @ b[rows].float()
    layout = torch.tensor(ks, dtype=torch.int32, device="cuda")
    d = torch.full_like(c, float("nan"))
    deep_gemm.k_grouped_bf16_gemm_tn_contiguous(a, b, d, ks, layout, c)
    assert torch.equal(d[1], c[1]) and calc_diff(d, ref) < 1e-5
    (a_in, a_ref), (b_in, b_ref) = k_grouped_fp8_operand(a, ks), k_grouped_fp8_operand(b, ks)
    ref = c.clone()
    for g, rows in enumerate(group_slices(ks)):
        ref[g] += a_ref[rows].T @ b_ref[rows]
    d = torch.full_like(c, float("nan"))
    deep_gemm.k_grouped_fp8_gemm_nt_contiguous(a_in, b_in, d, ks, layout, c)
    assert torch.equal(d[1], c[1]) and calc_diff(d, ref) < 1e-3


@pytest.mark.parametrize("ks", KS)
@pytest.mark.parametrize("m, n", [(256, 512), (130, 200)])
def test_k_grouped_bf16_gemm_tn_contiguous(ks, m, n):
    a, b, c = operands(ks, m, n, seed=sum(ks) + m)
    ref = c.clone()
    for g, rows in enumerate(group_slices(ks)):
        ref[g] += a[rows].float().T @ b[rows].float()
    d = c.clone()
    deep_gemm.k_grouped_bf16_gemm_tn_contiguous(a, b, d, ks, torch.tensor(ks, dtype=torch.int32, device="cuda"), d)
    assert calc_diff(d, ref) < 1e-5


@pytest.mark.parametrize("ks", KS)
@pytest.mark.parametrize("m, n", [(256, 512), (128, 384)])
def test_k_grouped_fp8_gemm_nt_contiguous(ks, m, n):
    a, b, c = operands(ks, m, n, seed=sum(ks) + n)
    a_in, a_ref = k_grouped_fp8_operand(a, ks)
    b_in, b_ref = k_grouped_fp8_operand(b, ks)
    ref = c.clone()
    for g, rows in enumerate(group_slices(ks)):
        ref[g] += a_ref[rows].T @ b_ref[rows]
    d = c.clone()
    deep_gemm.k_grouped_fp8_gemm_nt_contiguous(a_in, b_in, d, ks, torch.tensor(ks, dtype=torch.int32, device="cuda"),
                                               d)
    assert calc_diff(d, ref) < 1e-3
