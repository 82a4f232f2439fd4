"""K-grouped GEMMs (weight gradients of a MoE layer) against FP32 references on the GPU:
group g's D[g] = C[g] + A_g^T B_g over its own ks[g] rows of A [sum K, M] and B [sum K, N]."""
import pytest
import torch

import deep_gemm
from deep_gemm import calc_diff

E4M3 = torch.float8_e4m3fn
KS = [[256, 128, 384], [128], [512, 0, 256, 128]]  # a group of K = 0 leaves D[g] = C[g]


def operands(ks, m, n, seed):
    gen = torch.Generator(device="cuda").manual_seed(seed)
    a = torch.randn(sum(ks), m, device="cuda", dtype=torch.bfloat16, generator=gen)
    b = torch.randn(sum(ks), n, device="cuda", dtype=torch.bfloat16, generator=gen)
    c = torch.randn(len(ks), m, n, device="cuda", generator=gen) * 32
    return a, b, c


def per_column_fp8(x: torch.Tensor):
    """e4m3 [K, MN] with one fp32 scale per 128 rows of each column: [K / 128, MN]."""
    blocks = x.float().view(-1, 128, x.size(1))
    scale = blocks.abs().amax(dim=1).clamp(min=1e-4) / 448.0
    return (blocks / scale[:, None, :]).to(E4M3).view_as(x), scale


def group_slices(ks):
    start = 0
    for k in ks:
        yield slice(start, start + k)
        start += k


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
    a_fp8, sfa = per_column_fp8(a)
    b_fp8, sfb = per_column_fp8(b)
    ref = c.clone()
    flat_a, flat_b = [], []
    for g, rows in enumerate(group_slices(ks)):
        scale_rows = slice(rows.start // 128, rows.stop // 128)
        deq_a = (a_fp8[rows].float().view(-1, 128, m) * sfa[scale_rows][:, None, :]).view(-1, m)
        deq_b = (b_fp8[rows].float().view(-1, 128, n) * sfb[scale_rows][:, None, :]).view(-1, n)
        ref[g] += deq_a.T @ deq_b
        flat_a.append(a_fp8[rows].T.flatten().view(torch.uint8))  # each group's block K-major: [M, k_g]
        flat_b.append(b_fp8[rows].T.flatten().view(torch.uint8))
    d = c.clone()
    deep_gemm.k_grouped_fp8_gemm_nt_contiguous((torch.cat(flat_a).view(E4M3), sfa.T),
                                               (torch.cat(flat_b).view(E4M3), sfb.T), d, ks,
                                               torch.tensor(ks, dtype=torch.int32, device="cuda"), d)
    assert calc_diff(d, ref) < 1e-3
