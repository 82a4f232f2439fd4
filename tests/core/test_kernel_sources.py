"""Every kernel the API can launch (GEMM instantiations, grouping checks) compiles for sm_90a, without a GPU."""
import re

import pytest

from deep_gemm import _C

SOURCES = _C.kernel_sources()


def test_every_configuration_is_listed():
    names = [name for name, _ in SOURCES]
    assert len(names) == len(set(names)), "two configurations generate the same kernel name"
    for op in ("fp8_gemm_nt", "bf16_gemm_nt"):
        for variant in ("", " contiguous", " masked"):
            for block_m in (64, 128):
                for out in ("bf16", "fp32"):
                    assert any(n.startswith(f"{op}[{block_m}x") and f" {out}{variant}" in n for n in names), (
                        f"no {op} {block_m}-row {out}{variant} kernel")
    # FP8 dense also has tiles of 192 rows (three math warpgroups).
    for out in ("bf16", "fp32"):
        assert any(re.match(rf"fp8_gemm_nt\[192x\d+ s\d+ {out}( tma-store)?\]$", n) for n in names), out
    assert not any(re.search(r"\[192x.* (contiguous|masked)", n) or n.startswith("bf16_gemm_nt[192x") for n in names)
    assert any("tma-store" in n for n in names)
    # Masked bf16 D: TMA stores the warpgroups inside their group's rows (the kernel falls back
    # to registers for the others). FP32 D: with TMA where dense (rows 16-byte aligned, or
    # from registers), from registers where grouped.
    for op in ("fp8_gemm_nt", "bf16_gemm_nt"):
        for block_m in (64, 128):
            assert any(n.startswith(f"{op}[{block_m}x") and n.endswith(" bf16 masked tma-store]") for n in names), (
                f"no {op} {block_m}-row masked tma-store kernel")
    for op in ("fp8_gemm_nt", "fp8_gemm_nt_1d1d", "bf16_gemm_nt"):
        for block_m in (64, 128):
            for store in ("", " tma-store"):
                assert any(re.match(rf"{re.escape(op)}\[{block_m}x\d+ s\d+ fp32{store}\]$", n) for n in names), (
                    f"no dense {op} {block_m}-row fp32{store} kernel")
    assert not any(re.search(r"fp32 (contiguous|masked|columns) tma-store", n) for n in names)
    # BF16 dense with MN-major operands (nn / tn / tt views read in place), and by columns with
    # MN-major B ('bhd,hdr->bhr'): D always stored with TMA, MN-major B in whole 64-column atoms.
    mn_major = [n for n in names if re.search(r" mn-[ab]\b", n)]
    for tags in (" mn-a]", " mn-b]", " mn-a mn-b]"):
        for out in ("bf16", "fp32"):
            assert any(n.endswith(f" {out} tma-store{tags}") for n in mn_major), (out, tags)
    assert any(n.endswith(" bf16 columns tma-store mn-b]") for n in mn_major)
    for n in mn_major:
        tile = re.match(r"bf16_gemm_nt\[\d+x(\d+) s\d+ (bf16|fp32)( columns)? tma-store mn-", n)
        assert tile is not None, n
        assert " mn-b" not in n or int(tile.group(1)) % 64 == 0, n


def test_grouping_checks_are_listed():
    """The one-pass checks of m_indices and masked_m are compiled below with the GEMMs."""
    names = [name for name, _ in SOURCES]
    assert "grouping_check[contiguous]" in names and "grouping_check[masked]" in names


def test_einsum_heads_are_listed():
    """Heads grouped by columns: fp8_einsum (FP8, bf16 or fp32 D) and einsum 'bhr,hdr->bhd' (BF16,
    bf16 D), 64 / 128 rows, a bf16 D always stored with TMA."""
    columns = [name for name, _ in SOURCES if " columns" in name]
    for block_m in (64, 128):
        assert any(re.match(rf"fp8_gemm_nt\[{block_m}x\d+ s\d+ fp32 columns\]$", n) for n in columns), block_m
        for op in ("fp8_gemm_nt", "bf16_gemm_nt"):
            assert any(re.match(rf"{op}\[{block_m}x\d+ s\d+ bf16 columns tma-store\]$", n) for n in columns)
    assert not any("bf16 columns" in n and "tma-store" not in n for n in columns)
    assert not any(n.startswith("bf16_gemm_nt[") and "fp32 columns" in n for n in columns)
    assert not any(n.startswith("fp8_gemm_nt_1d1d[") for n in columns)


@pytest.mark.slow  # NVRTC compiles of every instantiation: minutes, not make test-fast's seconds
@pytest.mark.parametrize("name, source", SOURCES, ids=[name for name, _ in SOURCES])
def test_kernel_compiles_for_sm90a(name, source, jit):
    result = jit.compile(source, name)
    assert result["size"] > 0
    assert result["compiler"].startswith("nvrtc"), "CI must exercise NVRTC, the default compiler"
