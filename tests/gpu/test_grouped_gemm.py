"""MoE grouped GEMMs (contiguous and masked, FP8 and BF16) against FP32 references on the GPU."""
import re

import pytest
import torch

import deep_gemm
from deep_gemm import _C, calc_diff, per_token_cast_to_fp8
from deep_gemm import get_mn_major_tma_aligned_tensor as mn_major
from moe import cast_b, contiguous_reference, contiguous_rows, dequant_a, dequant_b
from sms import forced_block_n

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
        ref = contiguous_reference(dequant_a(*a), dequant_b(*b), m_indices)
        deep_gemm.m_grouped_fp8_gemm_nt_contiguous((a[0], mn_major(a[1])), b, d, m_indices)
    else:
        ref = contiguous_reference(x.float(), y.float(), m_indices)
        deep_gemm.m_grouped_bf16_gemm_nt_contiguous(x, y, d, m_indices)
    # Padding rows inside an expert's tiles are written (A_pad @ B^T, as upstream DeepGEMM does).
    computed = ~ref[:, 0].isnan()
    assert computed.sum() == m, "every tile of this layout starts with an expert row"
    assert not d.isnan().any(), "some rows were never written"
    assert calc_diff(d, ref) < 1e-3


def masked_gemm(dtype, x, y, d, masked_m, expected_m):
    """The masked GEMM of bf16 x [G, M, K] and y [G, N, K] (cast to FP8 for dtype 'fp8') into d;
    returns the FP32 operands it computes with."""
    if dtype == "bf16":
        deep_gemm.m_grouped_bf16_gemm_nt_masked(x, y, d, masked_m, expected_m)
        return x.float(), y.float()
    parts = [per_token_cast_to_fp8(x[i]) for i in range(x.shape[0])]
    a = (torch.stack([p[0] for p in parts]), torch.stack([p[1] for p in parts]))
    b = cast_b(y)
    deep_gemm.m_grouped_fp8_gemm_nt_masked((a[0], mn_major(a[1])), b, d, masked_m, expected_m)
    return dequant_a(*a), dequant_b(*b)


def check_masked(d, masked_m, a_deq, b_deq):
    """Each group's first masked_m rows against the reference; the rows past them still NaN."""
    for i, rows in enumerate(masked_m.tolist()):
        assert d[i, rows:].isnan().all(), f"group {i}: rows past masked_m = {rows} were written"
        if rows:
            assert not d[i, :rows].isnan().any(), f"group {i}: rows below masked_m = {rows} were not written"
            assert calc_diff(d[i, :rows], a_deq[i, :rows] @ b_deq[i].T) < 1e-3


# (2, 5400, 4096): groups of about 4096 rows take FP8 tiles of 256 columns. (4, 128, 96):
# each group's rows fit one tile-row, so B is read once (loaded evict-first).
@pytest.mark.parametrize("num_groups, max_m, expected_m",
                         [(4, 4096, 64), (8, 4096, 128), (4, 4096, 256), (2, 300, 100), (2, 5400, 4096), (4, 128, 96)])
@pytest.mark.parametrize("n, k", NK)
@pytest.mark.parametrize("dtype", ["fp8", "bf16"])
def test_masked(num_groups, max_m, expected_m, n, k, dtype):
    g = gen(num_groups + max_m + expected_m + n)
    masked_m = torch.randint(int(expected_m * 0.7), int(expected_m * 1.3) + 1, (num_groups,), generator=g,
                             device="cuda", dtype=torch.int32)
    masked_m[0] = 0  # an empty group
    x = torch.randn((num_groups, max_m, k), device="cuda", dtype=torch.bfloat16, generator=g)
    y = torch.randn((num_groups, n, k), device="cuda", dtype=torch.bfloat16, generator=g)
    d = torch.full((num_groups, max_m, n), float("nan"), device="cuda", dtype=torch.bfloat16)
    check_masked(d, masked_m, *masked_gemm(dtype, x, y, d, masked_m, expected_m))


# The TMA store writes a math warpgroup's 64 rows only where all of them lie inside the
# group's masked_m; a warpgroup that reaches past it stores from registers. Counts at and
# one off the warpgroup (64) and tile (128) edges, 0, and M (a multiple of 64 or not: 300's
# last warpgroup reaches past M). 64-row tiles (expected_m 32) and 128-row tiles (two
# warpgroups, 128); tiles of the heuristic's width, of 256 columns (FP8: chunks stored
# during the last K-block) and narrow ones whose last chunk is under 64 columns (TMA's
# second map); N = 2112 leaves a partial last tile.
@pytest.mark.parametrize("max_m, counts", [(256, [0, 1, 63, 64, 65, 128, 191, 256]),
                                           (300, [300, 299, 257, 0, 129, 192])])
@pytest.mark.parametrize("n, k", [(4096, 2048), (2112, 512)])
@pytest.mark.parametrize("expected_m", [32, 128])
@pytest.mark.parametrize("width", ["heuristic", "wide", "narrow"])
@pytest.mark.parametrize("dtype", ["fp8", "bf16"])
def test_masked_partial_warpgroups(max_m, counts, n, k, expected_m, width, dtype):
    num_groups = len(counts)
    block_n = {"heuristic": None, "wide": 256, "narrow": 32 if dtype == "fp8" else 176}[width]
    with forced_block_n(block_n):
        plan = _C.gemm_config(dtype, "masked", max_m, n, k, num_groups=num_groups, expected_m=expected_m,
                              num_sms=deep_gemm.get_num_sms())
        block_m = 64 if expected_m <= 64 else 128
        assert plan.startswith(f"{dtype}_gemm_nt[{block_m}x{block_n or ''}") and "tma-store" in plan, plan
        g = gen(max_m + n + expected_m)
        masked_m = torch.tensor(counts, device="cuda", dtype=torch.int32)
        x = torch.randn((num_groups, max_m, k), device="cuda", dtype=torch.bfloat16, generator=g)
        y = torch.randn((num_groups, n, k), device="cuda", dtype=torch.bfloat16, generator=g)
        d = torch.full((num_groups, max_m, n), float("nan"), device="cuda", dtype=torch.bfloat16)
        check_masked(d, masked_m, *masked_gemm(dtype, x, y, d, masked_m, expected_m))


def test_masked_rows_not_16_byte_aligned():
    """N = 4100: D's rows are not 16 bytes apart, so every tile is stored from registers."""
    num_groups, max_m, n, k = 3, 192, 4100, 256
    assert "tma-store" not in _C.gemm_config("bf16", "masked", max_m, n, k, num_groups=num_groups, expected_m=128)
    g = gen(4100)
    masked_m = torch.tensor([192, 65, 0], device="cuda", dtype=torch.int32)
    x = torch.randn((num_groups, max_m, k), device="cuda", dtype=torch.bfloat16, generator=g)
    y = torch.randn((num_groups, n, k), device="cuda", dtype=torch.bfloat16, generator=g)
    d = torch.full((num_groups, max_m, n), float("nan"), device="cuda", dtype=torch.bfloat16)
    check_masked(d, masked_m, *masked_gemm("bf16", x, y, d, masked_m, 128))


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


def contiguous_operands(m, num_groups=2, n=256, k=128):
    x = torch.randn((m, k), device="cuda", dtype=torch.bfloat16)
    y = torch.randn((num_groups, n, k), device="cuda", dtype=torch.bfloat16)
    return x, y, torch.full((m, n), float("nan"), device="cuda", dtype=torch.bfloat16)


def indices(*runs):
    """m_indices from (value, rows) runs."""
    return torch.tensor([v for v, rows in runs for _ in range(rows)], device="cuda", dtype=torch.int32)


@pytest.mark.parametrize("runs, message", [
    (((0, 130), (2, 1), (1, 125)),
     "m_indices[130] = 2, but values must be -1 (padding) or an expert index in [0, 2)"),
    (((0, 7), (-2, 1), (0, 248)),
     "m_indices[7] = -2, but values must be -1 (padding) or an expert index in [0, 2)"),
    (((0, 5), (1, 1), (0, 250)),
     "m_indices[5] = 1 but row 0 starts its 128-row block with expert 0; each block of 128 rows must hold one "
     "expert's rows, padding (-1) only after them: expert segments start at multiples of "
     "get_mk_alignment_for_contiguous_layout()"),
    (((0, 100), (1, 156)),  # expert 1's segment starts mid-block
     "m_indices[100] = 1 but row 0 starts its 128-row block with expert 0;"),
    (((0, 128), (-1, 2), (1, 126)),
     "m_indices[130] = 1 but row 128 starts its 128-row block with padding (-1);"),
    (((0, 100), (-1, 20), (0, 8), (1, 128)),
     "m_indices[120] = 0 follows padding (m_indices[119] = -1) in the 128-row block from row 0;"),
])
def test_bad_m_indices_name_the_first_offending_row(runs, message, monkeypatch):
    monkeypatch.setenv("DG_CHECK_GROUPING", "1")
    m_indices = indices(*runs)
    x, y, d = contiguous_operands(m_indices.numel())
    with pytest.raises(ValueError, match=re.escape("m_grouped_bf16_gemm_nt_contiguous: " + message)):
        deep_gemm.m_grouped_bf16_gemm_nt_contiguous(x, y, d, m_indices)
    assert d.isnan().all(), "a rejected call wrote d"


def test_first_of_many_bad_rows_is_named(monkeypatch):
    """Many rows per thread of the check: the smallest offending row wins, wherever it lies."""
    monkeypatch.setenv("DG_CHECK_GROUPING", "1")
    m = 128 * 40
    x, y, d = contiguous_operands(m, num_groups=8)
    m_indices = torch.arange(m, device="cuda", dtype=torch.int32) // 128 % 8
    m_indices[[4000, 2100, 1100 + 1024, 1100]] = torch.tensor([9, 9, 9, -5], device="cuda", dtype=torch.int32)
    with pytest.raises(ValueError, match=re.escape("m_indices[1100] = -5, but")):
        deep_gemm.m_grouped_bf16_gemm_nt_contiguous(x, y, d, m_indices)
    m_indices[1100] = m_indices[1099]
    with pytest.raises(ValueError, match=re.escape("m_indices[2100] = 9, but")):
        deep_gemm.m_grouped_bf16_gemm_nt_contiguous(x, y, d, m_indices)


def test_tiles_starting_with_padding_are_skipped(monkeypatch):
    """A tile is computed with the expert of its first row and stored whole; one that starts
    with padding is not computed, its rows left untouched (the full check accepts the layout)."""
    monkeypatch.setenv("DG_CHECK_GROUPING", "1")
    m_indices = indices((0, 100), (-1, 28), (-1, 128), (1, 128), (0, 1), (-1, 127))
    x, y, d = contiguous_operands(m_indices.numel())
    deep_gemm.m_grouped_bf16_gemm_nt_contiguous(x, y, d, m_indices)
    ref = contiguous_reference(x.float(), y.float(), m_indices)
    skipped = ref[:, 0].isnan()
    assert skipped.sum() == 128 and d[skipped].isnan().all()
    assert calc_diff(d[~skipped], ref[~skipped]) < 1e-3


@pytest.mark.parametrize("masked_m, message", [
    ([65, 1], "masked_m[0] = 65 exceeds M = 64 (values must lie in [0, M])"),
    ([64, -1], "masked_m[1] = -1 is negative (values must lie in [0, M = 64])"),
])
def test_bad_masked_m_names_the_group(masked_m, message, monkeypatch):
    monkeypatch.setenv("DG_CHECK_GROUPING", "1")
    num_groups, n, k = 2, 256, 128
    x = torch.randn((num_groups, 64, k), device="cuda", dtype=torch.bfloat16)
    y = torch.randn((num_groups, n, k), device="cuda", dtype=torch.bfloat16)
    d = torch.empty((num_groups, 64, n), device="cuda", dtype=torch.bfloat16)
    with pytest.raises(ValueError, match=re.escape("m_grouped_bf16_gemm_nt_masked: " + message)):
        deep_gemm.m_grouped_bf16_gemm_nt_masked(x, y, d, torch.tensor(masked_m, device="cuda", dtype=torch.int32), 64)


@pytest.mark.parametrize("check, syncs", [("0", 0), ("1", 1)])
@pytest.mark.parametrize("layout", ["contiguous", "masked"])
@pytest.mark.filterwarnings("ignore:Synchronization debug mode is a prototype")
def test_grouped_calls_sync_only_when_checking(layout, check, syncs, capfd, monkeypatch):
    """A grouped call does not synchronise with the host; the opt-in check of m_indices /
    masked_m (DG_CHECK_GROUPING=1) costs one sync."""
    monkeypatch.setenv("DG_CHECK_GROUPING", check)
    num_groups, n, k = 4, 256, 128
    y = torch.randn((num_groups, n, k), device="cuda", dtype=torch.bfloat16)
    if layout == "contiguous":
        _, m_indices = contiguous_rows(num_groups, 200, torch.Generator().manual_seed(0))
        x, _, d = contiguous_operands(m_indices.numel(), num_groups, n, k)
        call = lambda: deep_gemm.m_grouped_bf16_gemm_nt_contiguous(x, y, d, m_indices)  # noqa: E731
    else:
        x = torch.randn((num_groups, 256, k), device="cuda", dtype=torch.bfloat16)
        d = torch.empty((num_groups, 256, n), device="cuda", dtype=torch.bfloat16)
        masked_m = torch.tensor([0, 1, 255, 256], device="cuda", dtype=torch.int32)
        call = lambda: deep_gemm.m_grouped_bf16_gemm_nt_masked(x, y, d, masked_m, 128)  # noqa: E731
    call()  # compile and load outside the count
    torch.cuda.synchronize()
    capfd.readouterr()
    torch.cuda.set_sync_debug_mode("warn")
    try:
        call()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    # c10 warns on each sync; raised inside the runtime, the warning goes to stderr.
    assert capfd.readouterr().err.count("called a synchronizing CUDA operation") == syncs
