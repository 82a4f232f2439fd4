"""MoE grouped GEMMs (contiguous and masked, FP8 and BF16) against FP32 references on the GPU."""
import pytest
import torch

import deep_gemm
from deep_gemm import calc_diff, get_mn_major_tma_aligned_tensor as mn_major, per_token_cast_to_fp8

from moe import cast_b, contiguous_rows, dequant_a, dequant_b, grouped_reference

# DeepGEMM's MoE (n, k) pairs.
NK = [(4096, 7168), (7168, 2048), (6144, 7168), (7168, 3072)]


def gen(seed):
    return torch.Generator(device="cuda").manual_seed(seed)


@pytest.mark.parametrize("num_groups, expected_m", [(4, 256), (8, 512), (4, 4096)])
@pytest.mark.parametrize("n, k", NK)
@pytest.mark.parametrize("dtype", ["fp8", "bf16"])
def test_contiguous(num_groups, expected_m, n, k, dtype):
    g = gen(num_groups * expected_m + n)
    _, m_indices = contiguous_rows(num_groups, expected_m, torch.Generator().manual_seed(n + k))
    m = m_indices.numel()
    x = torch.randn((m, k), device="cuda", dtype=torch.bfloat16, generator=g)
    y = torch.randn((num_groups, n, k), device="cuda", dtype=torch.bfloat16, generator=g)
    d = torch.full((m, n), float("nan"), device="cuda", dtype=torch.bfloat16)
    if dtype == "fp8":
        a, b = per_token_cast_to_fp8(x), cast_b(y)
        ref = grouped_reference(dequant_a(*a), dequant_b(*b), m_indices)
        deep_gemm.m_grouped_fp8_gemm_nt_contiguous((a[0], mn_major(a[1])), b, d, m_indices)
    else:
        ref = grouped_reference(x.float(), y.float(), m_indices)
        deep_gemm.m_grouped_bf16_gemm_nt_contiguous(x, y, d, m_indices)
    valid = m_indices >= 0
    assert d[~valid].isnan().all(), "padding rows of d were written"
    assert not d[valid].isnan().any(), "some expert rows were never written"
    assert calc_diff(d[valid], ref[valid]) < 1e-3


@pytest.mark.parametrize("num_groups, max_m, expected_m", [(4, 4096, 64), (8, 4096, 128), (4, 4096, 256), (2, 300, 100)])
@pytest.mark.parametrize("n, k", NK[:2])
@pytest.mark.parametrize("dtype", ["fp8", "bf16"])
def test_masked(num_groups, max_m, expected_m, n, k, dtype):
    g = gen(num_groups + max_m + expected_m + n)
    masked_m = torch.randint(int(expected_m * 0.7), int(expected_m * 1.3) + 1, (num_groups,), generator=g,
                             device="cuda", dtype=torch.int32)
    masked_m[0] = 0  # an empty group
    x = torch.randn((num_groups, max_m, k), device="cuda", dtype=torch.bfloat16, generator=g)
    y = torch.randn((num_groups, n, k), device="cuda", dtype=torch.bfloat16, generator=g)
    d = torch.full((num_groups, max_m, n), float("nan"), device="cuda", dtype=torch.bfloat16)
    if dtype == "fp8":
        parts = [per_token_cast_to_fp8(x[i]) for i in range(num_groups)]
        a = (torch.stack([p[0] for p in parts]), torch.stack([p[1] for p in parts]))
        b = cast_b(y)
        a_deq, b_deq = dequant_a(*a), dequant_b(*b)
        deep_gemm.m_grouped_fp8_gemm_nt_masked((a[0], mn_major(a[1])), b, d, masked_m, expected_m)
    else:
        a_deq, b_deq = x.float(), y.float()
        deep_gemm.m_grouped_bf16_gemm_nt_masked(x, y, d, masked_m, expected_m)
    for i, rows in enumerate(masked_m.tolist()):
        assert d[i, rows:].isnan().all(), f"group {i}: rows past masked_m were written"
        if rows:
            assert calc_diff(d[i, :rows], a_deq[i, :rows] @ b_deq[i].T) < 1e-3


def test_masked_under_cuda_graph():
    """masked_m is read on the GPU: a captured call follows the values at replay time."""
    num_groups, max_m, n, k = 4, 512, 1024, 512
    g = gen(7)
    x = torch.randn((num_groups, max_m, k), device="cuda", dtype=torch.bfloat16, generator=g)
    y = torch.randn((num_groups, n, k), device="cuda", dtype=torch.bfloat16, generator=g)
    parts = [per_token_cast_to_fp8(x[i]) for i in range(num_groups)]
    a = (torch.stack([p[0] for p in parts]), mn_major(torch.stack([p[1] for p in parts])))
    b = cast_b(y)
    masked_m = torch.tensor([100, 0, 512, 37], device="cuda", dtype=torch.int32)
    d = torch.empty((num_groups, max_m, n), device="cuda", dtype=torch.bfloat16)
    deep_gemm.m_grouped_fp8_gemm_nt_masked(a, b, d, masked_m, 128)  # compile outside the capture
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        deep_gemm.m_grouped_fp8_gemm_nt_masked(a, b, d, masked_m, 128)
    masked_m.copy_(torch.tensor([1, 256, 3, 512], dtype=torch.int32))
    d.fill_(float("nan"))
    graph.replay()
    torch.cuda.synchronize()
    a_deq = dequant_a(torch.stack([p[0] for p in parts]), torch.stack([p[1] for p in parts]))
    b_deq = dequant_b(*b)
    for i, rows in enumerate([1, 256, 3, 512]):
        assert calc_diff(d[i, :rows], a_deq[i, :rows] @ b_deq[i].T) < 1e-3
        assert d[i, rows:].isnan().all()


def test_bad_indices_raise():
    num_groups, n, k = 2, 256, 128
    x = torch.randn((256, k), device="cuda", dtype=torch.bfloat16)
    y = torch.randn((num_groups, n, k), device="cuda", dtype=torch.bfloat16)
    d = torch.empty((256, n), device="cuda", dtype=torch.bfloat16)
    bad = torch.full((256,), 2, device="cuda", dtype=torch.int32)
    with pytest.raises(ValueError, match=r"m_indices values must be -1 \(padding\) or an expert index in \[0, 2\)"):
        deep_gemm.m_grouped_bf16_gemm_nt_contiguous(x, y, d, bad)
    mixed = torch.zeros(256, device="cuda", dtype=torch.int32)
    mixed[5] = 1
    with pytest.raises(ValueError, match="must hold one expert's rows"):
        deep_gemm.m_grouped_bf16_gemm_nt_contiguous(x, y, d, mixed)
    xm = torch.randn((num_groups, 64, k), device="cuda", dtype=torch.bfloat16)
    dm = torch.empty((num_groups, 64, n), device="cuda", dtype=torch.bfloat16)
    with pytest.raises(ValueError, match=r"masked_m values must lie in \[0, M = 64\]"):
        deep_gemm.m_grouped_bf16_gemm_nt_masked(xm, y, dm, torch.tensor([65, 1], device="cuda", dtype=torch.int32), 64)
