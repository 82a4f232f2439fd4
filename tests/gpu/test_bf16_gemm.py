"""bf16_gemm_nt against an FP32 reference on the GPU."""
import pytest
import torch

import deep_gemm
from deep_gemm import _C, calc_diff
from profiling import launched_kernels
from sms import forced_plan, num_sms

NK = [(2112, 7168), (24576, 1536), (32768, 512), (7168, 16384), (4096, 7168), (7168, 2048)]
ODD = [(1, 16, 64), (65, 130, 192), (129, 1000, 512), (300, 4097, 1024), (4095, 2048, 640), (77, 256, 64)]


def run(m, n, k, out_dtype=torch.bfloat16, with_c=False, seed=0, in_place=False):
    g = torch.Generator(device="cuda").manual_seed(seed)
    a = torch.randn((m, k), device="cuda", dtype=torch.bfloat16, generator=g)
    b = torch.randn((n, k), device="cuda", dtype=torch.bfloat16, generator=g)
    ref = a.float() @ b.float().T
    d = torch.full((m, n), float("nan"), device="cuda", dtype=out_dtype)
    c = None
    if with_c:
        c = torch.randn((m, n), device="cuda", generator=g)
        ref = ref + c
        if in_place:  # D = D + A B^T: a tile computed twice would add its product twice
            d = c
    deep_gemm.bf16_gemm_nt(a, b, d, c=c)
    assert not d.isnan().any(), "some outputs were never written"
    assert calc_diff(d, ref) < 1e-3


@pytest.mark.parametrize("m", [1, 128, 4096])
@pytest.mark.parametrize("n, k", NK)
def test_deepgemm_shapes(m, n, k):
    run(m, n, k)


@pytest.mark.parametrize("m, n, k", ODD)
def test_odd_shapes(m, n, k):
    run(m, n, k, seed=m + n)


def test_fp32_output_and_accumulate():
    run(256, 512, 1024, out_dtype=torch.float32)
    run(256, 512, 1024, out_dtype=torch.float32, with_c=True)


# Tiles whose width is not a multiple of 64: the TMA store's last chunk is narrower,
# packed for a second tensor map; M and N edges clip it. Planned for 66 SMs, which
# every Hopper part has. (m, n, k, the plan, forced)
NARROW_LAST_CHUNK = [
    (2000, 2104, 256, "128x176 s5 bf16 tma-store]"),  # 48-column last chunk; the last tile holds 168 columns
    (1000, 2104, 256, "128x160 s5 bf16 tma-store]"),  # 32 columns
    (4095, 2104, 640, "128x224 s4 bf16 tma-store]"),  # 32 columns, a ring of two buffers over four chunks
]


def run_planned(sms: int, m: int, n: int, k: int, kernel: str, out_dtype=torch.bfloat16, **kw):
    """Under an SM budget and the plan ending in `kernel`, forced (sms.forced_plan): run."""
    forced_plan("bf16", sms, m, n, k, kernel, "fp32" if out_dtype == torch.float32 else "bf16")
    with num_sms(sms):
        run(m, n, k, out_dtype=out_dtype, **kw)


@pytest.mark.parametrize("m, n, k, kernel", NARROW_LAST_CHUNK)
def test_tma_store_of_a_narrow_last_chunk(m, n, k, kernel):
    run_planned(66, m, n, k, kernel, seed=m + n)


def test_row_halves_of_256_column_tiles():
    # 160 tiles of 128x256 on 13 SMs: the last 4 in row halves, a warpgroup's rows per CTA.
    run_planned(13, 4096, 1280, 1024, "128x256 s4 bf16 tma-store] split-m 2x4", seed=5)


def test_every_tile_once_over_raster_groups():
    # 65 tile-rows of 128: groups of 32, 32 and 1 in the tile order, computed in place.
    run_planned(66, 8300, 520, 256, "128x176 s5 fp32 tma-store]", out_dtype=torch.float32, with_c=True, in_place=True,
                seed=6)


# K not a multiple of 64: the last 128-byte K-block is partial (TMA reads zeros past K).
@pytest.mark.parametrize("m, n, k", [(4096, 7168, 2112), (128, 2048, 96), (65, 300, 8), (300, 130, 1000)])
def test_partial_last_k_block(m, n, k):
    run(m, n, k, seed=k)
    run(m, n, k, out_dtype=torch.float32, with_c=True, seed=k)


# Upstream's layouts: MN-major operands (views with stride 1 along M / N) and bf16 D + bf16 C.
@pytest.mark.parametrize("m, n, k", [(4096, 2112, 7168), (129, 300, 512), (1, 64, 128)])
@pytest.mark.parametrize("a_mn_major, b_mn_major", [(False, True), (True, False), (True, True)])
def test_mn_major_operands(m, n, k, a_mn_major, b_mn_major):
    g = torch.Generator(device="cuda").manual_seed(m + n + k)
    a = torch.randn((m, k), device="cuda", dtype=torch.bfloat16, generator=g)
    b = torch.randn((n, k), device="cuda", dtype=torch.bfloat16, generator=g)
    ref = a.float() @ b.float().T
    a_view = a.T.contiguous().T if a_mn_major else a
    b_view = b.T.contiguous().T if b_mn_major else b
    d = torch.full((m, n), float("nan"), device="cuda", dtype=torch.bfloat16)
    _C.bf16_gemm_nt(a_view, b_view, d, None)
    assert calc_diff(d, ref) < 1e-3


def mn_major_view(rows: int, k: int, row_stride: int, gen) -> torch.Tensor:
    """An [rows, k] bf16 view with stride 1 along its rows: the first `rows` columns of a
    [k, row_stride] tensor, transposed."""
    return torch.randn((k, row_stride), device="cuda", dtype=torch.bfloat16, generator=gen)[:, :rows].T


# MN-major views are read in place (one kernel, nothing copied) where their [K, MN] rows are
# 16-byte aligned and D goes through the TMA store; elsewhere copied K-major first. Edges of
# M, N (B's last 64-column atom partly past N) and K (a partial last K-block) are clipped by
# TMA. (a MN-major, b MN-major, m, n, k, a's and b's row strides, D's dtype, in place)
MN_MAJOR_VIEWS = [
    (True, False, 256, 1000, 512, 256, None, torch.bfloat16, True),
    (False, True, 300, 1000, 520, None, 1000, torch.bfloat16, True),
    (True, True, 200, 136, 2056, 208, 144, torch.bfloat16, True),  # padded rows
    (True, True, 4096, 2112, 7168, 4096, 2112, torch.float32, True),
    (True, False, 256, 300, 512, 256, None, torch.bfloat16, False),  # bf16 D of 300 columns: no TMA store
    (True, False, 129, 256, 512, 129, None, torch.bfloat16, False),  # rows 258 bytes apart
    (False, True, 256, 130, 512, None, 130, torch.float32, False),  # fp32 D of 130 columns
]


@pytest.mark.parametrize("a_mn, b_mn, m, n, k, a_stride, b_stride, out_dtype, in_place", MN_MAJOR_VIEWS)
def test_mn_major_views_read_in_place(a_mn, b_mn, m, n, k, a_stride, b_stride, out_dtype, in_place):
    gen = torch.Generator(device="cuda").manual_seed(m + n + k)
    a = mn_major_view(m, k, a_stride, gen) if a_mn else torch.randn((m, k), device="cuda", dtype=torch.bfloat16,
                                                                     generator=gen)
    b = mn_major_view(n, k, b_stride, gen) if b_mn else torch.randn((n, k), device="cuda", dtype=torch.bfloat16,
                                                                     generator=gen)
    d = torch.full((m, n), float("nan"), device="cuda", dtype=out_dtype)
    kernels = launched_kernels(lambda: deep_gemm.bf16_gemm_nt(a, b, d))
    assert calc_diff(d, a.float() @ b.float().T) < 1e-3
    assert any(name.startswith("bf16_gemm_nt_kernel") for name in kernels), kernels
    assert (len(kernels) == 1) == in_place, kernels


# bf16 D + bf16 C: in place (as upstream's tests accumulate) the TMA store adds each chunk
# to D where D's rows are 16-byte aligned (rounding twice, as upstream), else C is loaded;
# apart from D, C is loaded and left as it was.
@pytest.mark.parametrize("m, n, k", [(4096, 2112, 7168), (65, 130, 192), (129, 257, 64), (300, 136, 520)])
@pytest.mark.parametrize("in_place", [True, False])
def test_bf16_output_accumulates_bf16_c(m, n, k, in_place):
    g = torch.Generator(device="cuda").manual_seed(k)
    a = torch.randn((m, k), device="cuda", dtype=torch.bfloat16, generator=g)
    b = torch.randn((n, k), device="cuda", dtype=torch.bfloat16, generator=g)
    c = torch.randn((m, n), device="cuda", dtype=torch.bfloat16, generator=g) * 32
    c_before = c.clone()
    ref = a.float() @ b.float().T + c.float()
    d = c if in_place else torch.full_like(c, float("nan"))
    _C.bf16_gemm_nt(a, b, d, c)
    assert calc_diff(d, ref) < 1e-5  # upstream's bound for bf16 accumulation
    if not in_place:
        assert torch.equal(c, c_before), "c was written"


def test_k_must_keep_rows_16_byte_aligned():
    a = torch.randn((64, 100), device="cuda", dtype=torch.bfloat16)
    with pytest.raises(ValueError, match=r"K must be a positive multiple of 8 \(rows of A and B 16-byte aligned for "
                                         r"TMA\), got K = 100"):
        deep_gemm.bf16_gemm_nt(a, a, torch.empty((64, 64), device="cuda", dtype=torch.bfloat16))


def test_cached_tensor_maps_follow_each_calls_views():
    """Tensor maps are reused across calls with equal encode inputs: views of one buffer
    that share a base address but differ in rows, K or row stride get maps of their own,
    and a reused buffer with new contents reads the new contents."""
    g = torch.Generator(device="cuda").manual_seed(7)
    a_buf = torch.randn((512, 1024), device="cuda", dtype=torch.bfloat16, generator=g)
    b = torch.randn((256, 1024), device="cuda", dtype=torch.bfloat16, generator=g)
    d_buf = torch.full((512, 256), float("nan"), device="cuda", dtype=torch.bfloat16)
    for rows, k in [(512, 1024), (128, 1024), (512, 1024), (512, 512), (128, 512)]:
        a = a_buf[:rows, :k] if k == 1024 else a_buf.view(-1)[:rows * k].view(rows, k)  # same base address
        bk = b[:, :k].contiguous()
        d = d_buf[:rows]
        d.fill_(float("nan"))
        deep_gemm.bf16_gemm_nt(a, bk, d)
        assert calc_diff(d, a.float() @ bk.float().T) < 1e-5, (rows, k)
    a_buf.copy_(torch.randn(a_buf.shape, device="cuda", dtype=torch.bfloat16, generator=g))
    deep_gemm.bf16_gemm_nt(a_buf, b, d_buf)
    assert calc_diff(d_buf, a_buf.float() @ b.float().T) < 1e-5
