"""The tile heuristic's choices (csrc/jit_kernels/gemm.cpp), checked without a GPU.

The expected tiles are the ones measured best on an H100, or on an H200 where a test says so
(benchmarks/NOTES.md); a change to the cost model that moves them should come with new
measurements.
"""
import itertools
import os
import re
import subprocess
import sys

import pytest

from deep_gemm import _C

H100_SMS = 132
COMPILED = {name for name, _ in _C.kernel_sources()}


def tile(name: str) -> str:
    """'fp8_gemm_nt[128x64 s8 bf16 tma-store]' -> '128x64'."""
    return re.search(r"\[(\d+x\d+) ", name).group(1)


def kernel(name: str) -> str:
    """'fp8_gemm_nt[128x128 s5 bf16 tma-store] split-k 8x16 b-read-once' -> the kernel's name alone."""
    return name[:name.index("]") + 1]


@pytest.mark.parametrize("n, k", [(24576, 1536), (32768, 512), (7168, 16384), (4096, 7168), (7168, 2048)])
def test_large_m_fp8_uses_128x256_tiles_with_tma_store(n, k):
    # Measured on H200 at M = 4096: 256 columns +2-8% over 128, which beats every
    # narrower BLOCK_N (16, which pure wave counting would pick, falls under 250 TFLOPS).
    name = _C.gemm_config("fp8", "dense", 4096, n, k)
    assert tile(name) == "128x256" and "tma-store" in name, name


@pytest.mark.parametrize("kind, m, expected_m", [
    ("dense", 128, 128), ("dense", 1024, 1024), ("dense", 4095, 4095),  # 256 columns lost at M = 128
    ("contiguous", 2048, 2048), ("masked", 65536, 256),                  # masked: rows per group
])
def test_256_column_fp8_tiles_only_from_4096_rows(kind, m, expected_m):
    for n, k in [(24576, 1536), (32768, 512), (7168, 16384), (4096, 7168)]:
        name = _C.gemm_config("fp8", kind, m, n, k, num_groups=16, expected_m=expected_m)
        assert "x256 " not in name, name


@pytest.mark.parametrize("op", ["fp8", "bf16"])
@pytest.mark.parametrize("kind, m, expected_m, read_once", [
    ("dense", 1, 1, True), ("dense", 64, 64, True), ("dense", 128, 128, True),  # one tile-row
    ("dense", 129, 129, False), ("dense", 4096, 4096, False),
    ("masked", 128, 96, True),       # every group's rows (at most m) fit one tile-row
    ("masked", 4096, 96, False),     # expected_m is a hint; a group may hold all 4096
    ("contiguous", 128, 128, False), # the segments' sizes are on the GPU only
])
def test_b_read_once_when_one_tile_row_holds_the_rows(op, kind, m, expected_m, read_once):
    # Measured on H200 at M = 128 (benchmarks/NOTES.md, v31): streaming B evict-first
    # +4-7% on four of DeepGEMM's six FP8 shapes, BF16 up to +17%.
    for n, k in [(2112, 7168), (24576, 1536), (7168, 2048)]:
        name = _C.gemm_config(op, kind, m, n, k, num_groups=4, expected_m=expected_m)
        assert name.endswith(" b-read-once") == read_once, name


@pytest.mark.slow  # a process per override (read at the first GEMM of a process)
def test_256_column_fp8_tiles_never_with_192_rows():
    # Three math warpgroups have registers for 128 FP8 columns at most.
    result = config_under_env({"DG_GEMM_BLOCK_N": "256"}, "fp8", "dense", 4096, 2112, 7168)
    assert result.stdout.startswith("fp8_gemm_nt[128x256 "), (result.stdout, result.stderr)
    result = config_under_env({"DG_GEMM_BLOCK_M": "192", "DG_GEMM_BLOCK_N": "256"}, "fp8", "dense", 4096, 7168, 7168)
    assert result.returncode != 0, result.stdout
    assert "DG_GEMM_BLOCK_M=192 with DG_GEMM_BLOCK_N=256: three math warpgroups" in result.stderr


@pytest.mark.slow  # a process per override (read at the first GEMM of a process)
def test_block_n_override_reaches_256_columns_below_4096_rows():
    result = config_under_env({"DG_GEMM_BLOCK_N": "256", "DG_GEMM_SPLIT_K": "1"}, "fp8", "dense", 128, 24576, 1536)
    assert result.stdout.strip() == "fp8_gemm_nt[128x256 s4 bf16 tma-store] b-read-once", result.stderr


def test_fp8_192_row_tiles_where_they_fill_the_waves():
    # 374 tiles of 192x128 are 2.8 waves where 544 of 128x128 are 4.1 (the last in
    # K-slices): 1199-1208 against 1087-1106 TFLOPS on H100.
    name = _C.gemm_config("fp8", "dense", 4096, 2112, 7168)
    assert name == "fp8_gemm_nt[192x128 s4 bf16 tma-store]", name


@pytest.mark.parametrize("op, kind, rows", [
    ("fp8", "dense", [65, 128]),                  # one 128-row tile already holds every row
    ("bf16", "dense", [200, 300, 1000, 4096]),    # BF16 keeps 128 rows (192 measured 7-12% slower per tile)
    ("fp8", "contiguous", [200, 300, 1000, 4096]),  # grouped tiles divide the 128-row segment alignment
    ("fp8", "masked", [200, 300, 1000, 4096]),
])
def test_192_row_tiles_only_for_fp8_dense_with_more_than_128_rows(op, kind, rows):
    for m, n in itertools.product(rows, (2112, 7168, 24576)):
        name = _C.gemm_config(op, kind, m, n, 7168, num_groups=4, expected_m=m)
        assert not name.split("[")[1].startswith("192x"), name


def test_exact_cost_ties_go_to_128_rows():
    # M = 192: 112 tiles of 192x64 or of 128x128 (the second tile-row a third full), one
    # wave either way; the measured 128-row kernel keeps the tie.
    assert tile(_C.gemm_config("fp8", "dense", 192, 7168, 16384)) == "128x128"


@pytest.mark.parametrize("n, expected", [
    (2112, "128x16"),   # 132 tiles: exactly one wave
    (4096, "128x32"),   # 128 tiles: one wave
    (7168, "128x64"),   # 112 tiles: one wave
    (24576, "128x64"),  # ties with 128 in the cost model; 2.9 waves beat 1.45 (395 vs 364 TFLOPS)
])
def test_decode_sized_fp8_fills_the_sms(n, expected):
    assert tile(_C.gemm_config("fp8", "dense", 128, n, 7168)) == expected


def stages(name: str) -> int:
    """'fp8_gemm_nt[128x64 s8 bf16 tma-store]' -> 8."""
    return int(re.search(r"\[\d+x\d+ s(\d+) ", name).group(1))


@pytest.mark.parametrize("op, m, n, expected", [
    ("fp8", 128, 2112, 11),  # 128x16: as many as fit (NOTES v24: +4% over 8)
    ("fp8", 128, 4096, 10),  # 128x32: +5%
    ("fp8", 1, 2112, 16),    # 64x16: the narrow-tile cap (+8%)
    ("fp8", 1, 4096, 16),    # 64x32: +6%
    ("fp8", 1, 7168, 8),     # 64x64 fits 13, measured 1-3% slower than 8
    ("fp8", 128, 7168, 8),   # 128x64
    ("bf16", 1, 2112, 8),    # BF16 keeps the general cap
])
def test_narrow_fp8_tiles_take_more_pipeline_stages(op, m, n, expected):
    assert stages(_C.gemm_config(op, "dense", m, n, 7168)) == expected


def test_fewer_sms_change_the_wave_arithmetic():
    # With half the SMs, 132 tiles of 16 columns are two waves; 66 tiles of 32 are one.
    assert tile(_C.gemm_config("fp8", "dense", 128, 2112, 7168, num_sms=H100_SMS // 2)) == "128x32"


@pytest.mark.parametrize("rows, block_m", [(1, 64), (64, 64), (65, 128), (4096, 128)])
def test_block_m_follows_the_rows(rows, block_m):
    assert tile(_C.gemm_config("fp8", "dense", rows, 7168, 7168)).startswith(f"{block_m}x")


@pytest.mark.parametrize("expected_m, block_m", [(32, 64), (64, 64), (128, 128), (256, 128)])
def test_masked_tiles_follow_expected_m_and_store_with_tma(expected_m, block_m):
    name = _C.gemm_config("fp8", "masked", 4096, 7168, 7168, num_groups=4, expected_m=expected_m)
    assert tile(name).startswith(f"{block_m}x") and "tma-store" in name, name


@pytest.mark.parametrize("op", ["fp8", "bf16"])
def test_masked_tma_store_needs_16_byte_rows(op):
    assert "tma-store" in _C.gemm_config(op, "masked", 256, 4096, 2048, num_groups=4, expected_m=128)
    assert "tma-store" not in _C.gemm_config(op, "masked", 256, 4100, 2048, num_groups=4, expected_m=128)


@pytest.mark.parametrize("n, expected", [
    (2112, "128x176"),  # 384 tiles fill 2.9 waves (128x192: 2.7): 747-752 against 718 TFLOPS
    (7168, "128x256"),
    (24576, "128x256"),
])
def test_bf16_tiles(n, expected):
    assert tile(_C.gemm_config("bf16", "dense", 4096, n, 7168)) == expected


@pytest.mark.parametrize("output, n, stored", [("bf16", 7168, True), ("bf16", 4097, False), ("fp32", 7168, True),
                                               ("fp32", 4098, False)])
def test_dense_tma_store_needs_16_byte_rows(output, n, stored):
    assert ("tma-store" in _C.gemm_config("fp8", "dense", 4096, n, 7168, output=output)) == stored


@pytest.mark.parametrize("op", ["fp8", "bf16"])
def test_grouped_fp32_output_is_stored_from_registers(op):
    assert "tma-store" not in _C.gemm_config(op, "contiguous", 4096, 4096, 2048, num_groups=4, output="fp32")
    assert "tma-store" not in _C.gemm_config(op, "masked", 256, 4096, 2048, num_groups=4, expected_m=128,
                                             output="fp32")


@pytest.mark.parametrize("op, m, n, expected", [
    ("fp8", 128, 2112, "128x16"),   # one chunk of 16 columns
    ("fp8", 128, 4096, "128x32"),
    ("bf16", 4096, 2112, "128x176"),  # two 64-column chunks and one of 48
])
def test_tiles_of_any_width_store_with_tma(op, m, n, expected):
    name = _C.gemm_config(op, "dense", m, n, 7168)
    assert tile(name) == expected and "tma-store" in name, name


def test_every_choice_is_a_compiled_kernel():
    """Whatever the heuristic returns is among kernel_sources(), which CI compiles."""
    for op, kind, out, m, n in itertools.product(
            ("fp8", "bf16"), ("dense", "contiguous", "masked"), ("bf16", "fp32"),
            (1, 63, 64, 65, 128, 1000, 4096, 65536), (8, 200, 2112, 4097, 24576)):
        name = _C.gemm_config(op, kind, m, n, 7168, num_groups=8, expected_m=m, output=out)
        assert kernel(name) in COMPILED, f"{(op, kind, out, m, n)} -> {name} is not compiled in CI"


def test_fp8_einsum_heads_plan_compiled_kernels():
    """fp8_einsum's heads (grouped by columns): every plan is compiled in CI, a bf16 d always goes
    out through the TMA store (3D map, clipped per head), and all heads count toward the waves."""
    for (h, r, dim), batch, out in itertools.product(
            [(8, 4096, 1024), (128, 512, 128), (3, 200, 72)], (1, 4, 32, 128, 129, 4096, 8192), ("bf16", "fp32")):
        name = _C.gemm_config("fp8", "columns", batch, dim, r, num_groups=h, expected_m=batch, output=out)
        assert kernel(name) in COMPILED and " columns" in name, name
        assert ("tma-store" in name) == (out == "bf16"), name
        assert name.endswith(" b-read-once") == (batch <= int(tile(name).split("x")[0])), name
    # h = 8, d = 1024, b = 4: 8 heads x 16 tiles of 64 columns fill one wave of 132 SMs.
    assert tile(_C.gemm_config("fp8", "columns", 4, 1024, 4096, num_groups=8, expected_m=4)) == "64x64"


@pytest.mark.parametrize("args, message", [
    (("fp4", "dense", 1, 1, 128), "input must be 'fp8' or 'bf16'"),
    (("fp8", "sparse", 1, 1, 128), "type must be 'dense', 'contiguous', 'masked' or 'columns'"),
    (("bf16", "columns", 1, 1, 128), "type 'columns' is FP8 only"),
    (("fp8", "dense", 0, 1, 128), "must be positive"),
    (("fp8", "dense", 1, 1, 0), "must be positive"),
])
def test_bad_arguments(args, message):
    with pytest.raises(ValueError, match=message):
        _C.gemm_config(*args)


# Split K (measured on H100, benchmarks/NOTES.md v11): only the last partial wave of the
# tiling chosen first is cut into K-slices, and only where that wave is nearly empty.
@pytest.mark.slow  # a process per override (read at the first GEMM of a process)
def test_split_k_cuts_a_nearly_empty_last_wave():
    # 544 tiles of 128x128 = 4 waves + 16 tiles: 975 -> 1070-1090 TFLOPS with those 16
    # in 8 slices (192-row tiles, the heuristic's own choice now, need no split).
    result = config_under_env({"DG_GEMM_BLOCK_M": "128"}, "fp8", "dense", 4096, 2112, 7168)
    assert result.stdout.strip() == "fp8_gemm_nt[128x128 s5 bf16 tma-store] split-k 8x16", result.stderr


@pytest.mark.parametrize("op, m, n, k", [
    ("fp8", 4096, 7168, 16384),  # 13.6 waves: a split measured no faster
    ("fp8", 4096, 4096, 7168),   # 7.8 waves: 2 slices measured 1158 against 1219
    ("bf16", 4096, 2112, 7168),  # 2.9 waves of 128x176 (128x192's 2.7 in 3 slices: 700 against 715)
    ("fp8", 128, 2112, 7168),    # one wave of whole 128x16 tiles beat 128x128 in slices
    ("fp8", 4096, 2112, 512),    # 4 K-blocks: too short to slice
])
def test_split_k_stays_off_where_it_measured_slower(op, m, n, k):
    assert "split-k" not in _C.gemm_config(op, "dense", m, n, k)


# Row halves (H200, benchmarks/NOTES.md v40): the last partial wave of 128x256 tiles goes in
# its tiles' 64-row halves, each on its own CTA, where that beats the wave and K-slices.
@pytest.mark.parametrize("op", ["fp8", "bf16"])
def test_row_halves_cut_the_last_wave_of_256_column_tiles(op):
    # 3072 tiles: 23 waves + 36 tiles, the 72 halves in one wave of half a tile's time.
    assert _C.gemm_config(op, "dense", 4096, 24576, 1536).endswith("128x256 s4 bf16 tma-store] split-m 2x36")
    # 896 tiles: 6 waves + 104, whose 208 halves would take two waves: no gain.
    assert "split" not in _C.gemm_config(op, "dense", 4096, 7168, 16384)


def test_row_halves_give_way_to_k_slices_on_a_long_k():
    # 96 tiles on 5 SMs, one left over: 5 K-slices of 26 K-blocks beat halves of 128.
    assert _C.gemm_config("fp8", "dense", 4096, 768, 16384, num_sms=5).endswith("split-k 5x1")


@pytest.mark.slow  # a process per override (read at the first GEMM of a process)
def test_row_halves_follow_the_split_override():
    result = config_under_env({"DG_GEMM_SPLIT_K": "1"}, "fp8", "dense", 4096, 24576, 1536)
    assert "split" not in result.stdout and result.returncode == 0, result.stderr
    result = config_under_env({"DG_GEMM_SPLIT_K": "3"}, "fp8", "dense", 4096, 24576, 1536)
    assert result.stdout.strip().endswith("split-k 3x36"), result.stderr


@pytest.mark.parametrize("kind", ["contiguous", "masked"])
def test_grouped_gemms_never_split(kind):
    assert "split" not in _C.gemm_config("fp8", kind, 4096, 2112, 7168, num_groups=1, expected_m=4096)


def config_under_env(env: dict, *args) -> subprocess.CompletedProcess:
    """gemm_config in a fresh interpreter, whose first GEMM plan reads the overrides."""
    code = f"from deep_gemm import _C; print(_C.gemm_config(*{args!r}))"
    return subprocess.run([sys.executable, "-c", code], env={**os.environ, **env}, capture_output=True, text=True)


@pytest.mark.slow  # a process per override (read at the first GEMM of a process)
def test_split_override_forces_the_slice_count():
    # 374 tiles of 192x128: the 110 of the last wave are cut.
    result = config_under_env({"DG_GEMM_SPLIT_K": "3"}, "fp8", "dense", 4096, 2112, 7168)
    assert result.stdout.strip().endswith("split-k 3x110"), result.stderr
    result = config_under_env({"DG_GEMM_SPLIT_K": "1"}, "fp8", "dense", 4096, 2112, 7168)
    assert "split-k" not in result.stdout and result.returncode == 0, result.stderr


@pytest.mark.slow  # a process per override (read at the first GEMM of a process)
def test_block_m_override_forces_the_rows_where_the_shape_may_use_them():
    result = config_under_env({"DG_GEMM_BLOCK_M": "192"}, "fp8", "dense", 4096, 7168, 7168)
    assert result.stdout.startswith("fp8_gemm_nt[192x"), result.stderr
    # 128 rows fit one 128-row tile; BF16 has no 192-row tiles: the override does not apply.
    for args in (("fp8", "dense", 128, 7168, 7168), ("bf16", "dense", 4096, 7168, 7168)):
        result = config_under_env({"DG_GEMM_BLOCK_M": "192"}, *args)
        assert "[128x" in result.stdout, (args, result.stdout, result.stderr)


@pytest.mark.slow  # a process per override (read at the first GEMM of a process)
@pytest.mark.parametrize("value", ["96", "64"])
def test_block_m_override_of_a_height_one_cannot_choose_is_refused(value):
    # 64 rows are used exactly where they fit, with nothing to choose from.
    result = config_under_env({"DG_GEMM_BLOCK_M": value}, "fp8", "dense", 4096, 2112, 7168)
    assert result.returncode != 0, result.stdout
    assert f"DG_GEMM_BLOCK_M={value} is not a BLOCK_M one can choose (128 or 192)" in result.stderr


@pytest.mark.slow  # a process per override (read at the first GEMM of a process)
def test_split_override_out_of_range_is_refused():
    result = config_under_env({"DG_GEMM_SPLIT_K": "99"}, "fp8", "dense", 4096, 2112, 7168)
    assert result.returncode != 0 and "DG_GEMM_SPLIT_K=99 is outside 1..16" in result.stderr


def test_overrides_reloaded_in_process(monkeypatch):
    """reload_gemm_plan_overrides re-reads DG_GEMM_*: tests/gpu force plans in one process."""
    shape = ("fp8", "dense", 4096, 2112, 7168)
    heuristic = _C.gemm_config(*shape)
    monkeypatch.setenv("DG_GEMM_BLOCK_N", "64")
    monkeypatch.setenv("DG_GEMM_SPLIT_K", "1")
    assert _C.gemm_config(*shape) == heuristic, "the overrides are read once, not per call"
    try:
        _C.reload_gemm_plan_overrides()
        assert _C.gemm_config(*shape).startswith("fp8_gemm_nt[128x64 "), _C.gemm_config(*shape)
        monkeypatch.setenv("DG_GEMM_BLOCK_N", "48")
        _C.reload_gemm_plan_overrides()
        with pytest.raises(ValueError, match="DG_GEMM_BLOCK_N=48 is not a BLOCK_N this kernel supports"):
            _C.gemm_config(*shape)
    finally:
        monkeypatch.undo()  # the environment as it was, then the overrides read from it
        _C.reload_gemm_plan_overrides()
    assert _C.gemm_config(*shape) == heuristic
