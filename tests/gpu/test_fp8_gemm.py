"""fp8_gemm_nt against an FP32 reference on the GPU (DeepGEMM's shape list and odd sizes)."""
import pytest
import torch

import deep_gemm
from deep_gemm import _C, calc_diff, get_mn_major_tma_aligned_tensor, per_block_cast_to_fp8, per_token_cast_to_fp8
from moe import dequant_a, dequant_b, quant_rows
from sms import forced_plan, num_sms

# DeepGEMM's dense test shapes: (n, k) pairs of DeepSeek-V3's layers.
NK = [(2112, 7168), (24576, 1536), (32768, 512), (7168, 16384), (4096, 7168), (7168, 2048)]
MS = [1, 128, 4096]
# Sizes that are not tile multiples in M and/or N, a single K-block, and tiny problems.
ODD = [(1, 16, 128), (7, 200, 256), (65, 130, 384), (129, 1000, 512), (300, 4097, 1024), (1000, 333, 128),
       (4095, 2049, 640), (64, 64, 128), (2, 4100, 7168),
       # N a multiple of 8: the TMA-store epilogue, with M and N edges it must clip.
       (65, 256, 384), (129, 192, 256), (4095, 2048, 640), (1, 64, 128)]


def make_operands(m: int, n: int, k: int, seed: int):
    gen = torch.Generator(device="cuda").manual_seed(seed)
    x = torch.randn((m, k), device="cuda", dtype=torch.bfloat16, generator=gen)
    y = torch.randn((n, k), device="cuda", dtype=torch.bfloat16, generator=gen)
    x_fp8, x_scales = per_token_cast_to_fp8(x)
    y_fp8, y_scales = per_block_cast_to_fp8(y)
    return (x_fp8, x_scales), (y_fp8, y_scales)


def reference(a, b) -> torch.Tensor:
    """FP32 product of the dequantised operands: exactly what the kernel should compute."""
    return dequant_a(*a) @ dequant_b(*b).T


def run(m: int, n: int, k: int, out_dtype=torch.bfloat16, with_c: bool = False, seed: int = 0,
        in_place: bool = False):
    a, b = make_operands(m, n, k, seed)
    ref = reference(a, b)
    # Poisoned output: an element the kernel fails to write stays NaN.
    d = torch.full((m, n), float("nan"), device="cuda", dtype=out_dtype)
    c = None
    if with_c:
        c = torch.randn((m, n), device="cuda", dtype=torch.float32)
        ref = ref + c
        if in_place:  # D = D + A B^T: a tile computed twice would add its product twice
            d = c
    deep_gemm.fp8_gemm_nt((a[0], get_mn_major_tma_aligned_tensor(a[1])), b, d, c=c)
    torch.cuda.synchronize()
    assert not d.isnan().any(), "some outputs were never written"
    diff = calc_diff(d, ref)
    assert diff < 1e-3, f"m={m} n={n} k={k}: calc_diff {diff:.3e}"
    return diff


@pytest.mark.parametrize("m", MS)
@pytest.mark.parametrize("n,k", NK)
def test_deepgemm_shapes(m, n, k):
    run(m, n, k)


@pytest.mark.parametrize("m,n,k", ODD)
def test_odd_shapes(m, n, k):
    run(m, n, k, seed=m + n + k)


# K not a multiple of 128: the last K-block is partial (TMA reads zeros past K, its scales
# cover what exists). DeepGEMM's dgrad shapes have K = 2112 and 576.
@pytest.mark.parametrize("m,n,k", [(4096, 7168, 2112), (128, 7168, 576), (65, 300, 144), (1, 64, 16),
                                   (4096, 2048, 1040)])
def test_partial_last_k_block(m, n, k):
    x = torch.randn((m, k), device="cuda", dtype=torch.bfloat16, generator=torch.Generator("cuda").manual_seed(k))
    a, b = quant_rows(x), per_block_cast_to_fp8(torch.randn((n, k), device="cuda", dtype=torch.bfloat16))
    d = torch.full((m, n), float("nan"), device="cuda", dtype=torch.bfloat16)
    _C.fp8_gemm_nt((a[0], get_mn_major_tma_aligned_tensor(a[1])), b, d, None)
    assert calc_diff(d, reference(a, b)) < 1e-3


# Recipe (1, 1, 128), upstream's weight-gradient kernel: B scaled per (column, K-block) like
# A; FP32 D, accumulated into C in place (the TMA store adds each chunk to D), or apart from
# it (C loaded), or without C. DeepGEMM's wgrad shapes (M = its N, N = 4096); N = 130 is
# stored from registers (rows not 16-byte aligned).
@pytest.mark.parametrize("m,n,k", [(2112, 4096, 7168), (576, 4096, 7168), (24576, 4096, 1536), (7168, 2048, 4096),
                                   (129, 200, 384), (64, 64, 128), (300, 1000, 2112), (1, 16, 16), (129, 130, 384)])
@pytest.mark.parametrize("c_mode", ["none", "in place", "apart"])
def test_1d1d(m, n, k, c_mode):
    gen = torch.Generator(device="cuda").manual_seed(m + n + k)
    a = quant_rows(torch.randn((m, k), device="cuda", dtype=torch.bfloat16, generator=gen))
    b = quant_rows(torch.randn((n, k), device="cuda", dtype=torch.bfloat16, generator=gen))
    ref = dequant_a(*a) @ dequant_a(*b).T
    d = torch.full((m, n), float("nan"), device="cuda", dtype=torch.float32)
    c = None
    if c_mode != "none":
        c = torch.randn((m, n), device="cuda", dtype=torch.float32, generator=gen) * 32
        ref += c
        d = c if c_mode == "in place" else d
    c_before = None if c is None else c.clone()
    mn = get_mn_major_tma_aligned_tensor
    _C.fp8_gemm_nt_1d1d((a[0], mn(a[1])), (b[0], mn(b[1])), d, c)
    assert not d.isnan().any()
    assert calc_diff(d, ref) < 1e-3
    if c_mode == "apart":
        assert torch.equal(c, c_before), "c was written"


@pytest.mark.parametrize("m,n,k", [(128, 2112, 7168), (77, 300, 512)])
def test_fp32_output_and_accumulate(m, n, k):
    run(m, n, k, out_dtype=torch.float32)
    run(m, n, k, out_dtype=torch.float32, with_c=True)


def test_accumulate_in_place():
    m, n, k = 256, 512, 1024
    a, b = make_operands(m, n, k, seed=3)
    d = torch.randn((m, n), device="cuda", dtype=torch.float32)
    expected = d + reference(a, b)
    deep_gemm.fp8_gemm_nt((a[0], get_mn_major_tma_aligned_tensor(a[1])), b, d, c=d)
    assert calc_diff(d, expected) < 1e-3


def test_every_sm_count_gives_the_same_result():
    m, n, k = 512, 1024, 512
    a, b = make_operands(m, n, k, seed=4)
    a = (a[0], get_mn_major_tma_aligned_tensor(a[1]))
    outputs = []
    for sms in (deep_gemm.get_num_sms(), 1, 7):
        with num_sms(sms):
            d = torch.empty((m, n), device="cuda", dtype=torch.bfloat16)
            deep_gemm.fp8_gemm_nt(a, b, d)
            outputs.append(d)
    # The SM budget changes the tile shape, not the per-element summation order (K = 512
    # is too short to split).
    assert all(calc_diff(outputs[0], o) < 1e-5 for o in outputs[1:])


# Tiles narrower than 64 columns store through TMA too, as one narrow chunk for a
# second tensor map; M and N edges clip it. Planned for 66 SMs, which every Hopper
# part has. (m, n, k, the plan, forced)
NARROW_CHUNK = [
    (65, 1000, 512, "128x16 s11 bf16 tma-store] b-read-once"),  # the last tile holds 8 columns
    (200, 1000, 512, "128x32 s10 bf16 tma-store]"),
    (1, 2112, 512, "64x32 s16 bf16 tma-store] b-read-once"),
]


@pytest.mark.parametrize("m, n, k, kernel", NARROW_CHUNK)
def test_tma_store_of_a_narrow_chunk(m, n, k, kernel):
    run_planned(66, m, n, k, kernel, seed=m + n)


# Tiles of 192 rows (FP8 dense, three math warpgroups with one temporary accumulator
# each): at full size, and under SM budgets that make small problems pick them.
# (SMs, m, n, k, the plan, forced)
WIDE_TILES = [
    (132, 4096, 2112, 7168, "192x128 s4 bf16 tma-store]"),  # 4096 rows: the last tile-row is a third full
    (2, 300, 128, 2048, "192x128 s4 bf16 tma-store]"),      # the TMA store clips M
    (2, 300, 128, 128, "192x128 s4 bf16 tma-store]"),       # one K-block: the loop's tail alone
    (2, 300, 7170, 2048, "192x128 s5 bf16]"),               # N % 8 != 0: stores from registers
    (66, 576, 1002, 2048, "192x64 s6 bf16]"),
]


def run_planned(sms: int, m: int, n: int, k: int, kernel: str, out_dtype=torch.bfloat16, **kw):
    """Under an SM budget and the plan ending in `kernel`, forced (sms.forced_plan): run."""
    forced_plan("fp8", sms, m, n, k, kernel, "fp32" if out_dtype == torch.float32 else "bf16")
    with num_sms(sms):
        run(m, n, k, out_dtype=out_dtype, **kw)


@pytest.mark.parametrize("sms, m, n, k, kernel", WIDE_TILES)
def test_192_row_tiles(sms, m, n, k, kernel):
    run_planned(sms, m, n, k, kernel, seed=m + n)


def test_192_row_tiles_fp32_output_and_accumulate():
    run_planned(2, 300, 128, 2048, "192x128 s4 fp32 tma-store]", out_dtype=torch.float32, with_c=True, seed=9)


# Tiles of 256 columns: four 64-column sub-tiles spanning two of B's scale blocks,
# each promoted with its own scale, and stored chunk by chunk during the last K-block
# (with TMA, whole tiles); SM budgets make the smaller problems pick them.
# (SMs, m, n, k, the plan, forced)
WIDE_N_TILES = [
    (132, 4096, 7168, 2048, "128x256 s4 bf16 tma-store]"),
    # The last partial wave in row halves: each of a tile's two CTAs computes one
    # warpgroup's 64 rows (stored during the last K-block); its other warpgroup skips it.
    (13, 4096, 1280, 7168, "128x256 s4 bf16 tma-store] split-m 2x4"),
    (66, 4096, 4160, 512, "128x256 s4 bf16 tma-store] split-m 2x16"),  # the last tile's second scale block lies past N
    # M and N edges, stores from registers; a loop step + tail; the last tile-row's
    # second halves lie wholly past M.
    (66, 4097, 4100, 384, "128x256 s4 bf16] split-m 2x33"),
    (66, 4096, 512, 128, "128x256 s4 bf16 tma-store]"),   # one K-block: the loop's tail alone
    (5, 4096, 768, 16384, "128x256 s4 bf16 tma-store] split-k 5x1"),  # long K: K-slices, stored after the sum
]


@pytest.mark.parametrize("sms, m, n, k, kernel", WIDE_N_TILES)
def test_256_column_tiles(sms, m, n, k, kernel):
    run_planned(sms, m, n, k, kernel, seed=m + n + k)


def test_256_column_tiles_fp32_output_and_accumulate():
    run_planned(66, 4096, 1000, 384, "128x256 s4 fp32 tma-store]", out_dtype=torch.float32, with_c=True, seed=10)


@pytest.mark.parametrize("sms, m, n, k, kernel", [
    (13, 4096, 1280, 7168, "128x256 s4 fp32 tma-store] split-m 2x4"),
    (5, 4096, 768, 16384, "128x256 s4 fp32 tma-store] split-k 5x1"),
])
def test_256_column_split_tiles_add_c_once(sms, m, n, k, kernel):
    run_planned(sms, m, n, k, kernel, out_dtype=torch.float32, with_c=True, seed=11)


# The tile order walks groups of 32 tile-rows, the last group maybe fewer, with
# divisors from the host: over several groups and a partial last one, for each
# tile height, every tile is computed once (in place, so twice would add twice).
# (SMs, m, n, k, the plan, forced)
RASTER_GROUPS = [
    (132, 8300, 1024, 256, "128x256 s4 fp32 tma-store]"),             # 65 tile-rows: groups of 32, 32 and 1
    (132, 8300, 520, 256, "192x64 s5 fp32 tma-store]"),               # 44 of 192 rows: 32 and 12
    (132, 12345, 640, 128, "128x128 s5 fp32 tma-store]"),             # 97: 32, 32, 32 and 1
    (16, 8300, 1024, 256, "128x256 s4 fp32 tma-store] split-m 2x4"),  # the last wave in row halves
]


@pytest.mark.parametrize("sms, m, n, k, kernel", RASTER_GROUPS)
def test_every_tile_once_over_raster_groups(sms, m, n, k, kernel):
    run_planned(sms, m, n, k, kernel, out_dtype=torch.float32, with_c=True, in_place=True, seed=m + n)


def test_every_tile_stored_over_raster_groups():
    # bf16 D through the TMA store (chunks stored during the last K-block): a tile
    # never visited stays NaN.
    run_planned(132, 8300, 1024, 256, "128x256 s4 bf16 tma-store]", seed=12)


# B read by one tile-row: loaded evict-first, with every tile width the
# heuristic gives M <= 128, split K's slices among them. (SMs, m, n, k, the plan, forced)
READ_B_ONCE = [
    (132, 128, 24576, 1536, "128x64 s8 bf16 tma-store] b-read-once"),
    (132, 128, 2112, 7168, "128x16 s11 bf16 tma-store] b-read-once"),
    (132, 128, 32768, 512, "128x128 s5 bf16 tma-store] b-read-once"),
    (132, 64, 4096, 7168, "64x32 s16 bf16 tma-store] b-read-once"),
    (8, 65, 1100, 7168, "128x64 s8 bf16] split-k 4x2 b-read-once"),
]


@pytest.mark.parametrize("sms, m, n, k, kernel", READ_B_ONCE)
def test_b_read_once(sms, m, n, k, kernel):
    run_planned(sms, m, n, k, kernel, seed=m + n + k)


def test_errors_on_the_gpu():
    a, b = make_operands(128, 256, 256, seed=5)
    d = torch.empty((128, 256), device="cuda", dtype=torch.bfloat16)
    misaligned = torch.empty(128 * 256 + 1, device="cuda", dtype=torch.bfloat16)[1:].view(128, 256)
    with pytest.raises(ValueError, match=r"d must start at a 16-byte aligned address"):
        deep_gemm.fp8_gemm_nt((a[0], get_mn_major_tma_aligned_tensor(a[1])), b, misaligned)
    with pytest.raises(ValueError, match=r"must be a CUDA tensor"):
        deep_gemm.fp8_gemm_nt((a[0], get_mn_major_tma_aligned_tensor(a[1])), (b[0], b[1].cpu()), d)
    with pytest.raises(ValueError, match=r"MN-major TMA-aligned"):
        _C.fp8_gemm_nt(a, b, d, None)  # the kernel's entry point takes a[1] only in the TMA layout
    deep_gemm.fp8_gemm_nt(a, b, d)  # ... the API re-lays row-major A scales out, as upstream does
    assert calc_diff(d, reference(a, b)) < 1e-3
    with pytest.raises(ValueError, match=r"num_sms must be in \[1, "):
        deep_gemm.set_num_sms(0)


@pytest.mark.parametrize("m, n, head_splits", [(128, 8192, (128, 64, 128)), (77, 768, (128, 64, 128)),
                                               (64, 960, (32, 16, 48)), (5, 512, (128, 0, 128))])
def test_skip_head_mid(m, n, head_splits):
    """DeepSeek V3.2's indexer projection: each head's middle columns of D stay as they were."""
    left, mid, right = head_splits
    heads = n // (left + right)
    a, b = make_operands(m, n, 512, seed=m + n)
    ref = reference(a, b).view(m, heads, left + right)
    d = torch.full((m, heads, left + mid + right), 7.0, device="cuda", dtype=torch.bfloat16)
    deep_gemm.fp8_gemm_nt_skip_head_mid(a, b, d.view(m, -1), head_splits)
    assert calc_diff(d[:, :, :left], ref[:, :, :left]) < 1e-3
    assert calc_diff(d[:, :, left + mid:], ref[:, :, left:]) < 1e-3
    assert (d[:, :, left:left + mid] == 7.0).all(), "the middle columns were written"
