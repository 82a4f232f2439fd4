"""Every kernel instantiation the API can select compiles for sm_90a, without a GPU."""
import pytest

from deep_gemm import _C

SOURCES = _C.kernel_sources()


def test_every_configuration_is_listed():
    names = [name for name, _ in SOURCES]
    assert len(names) == len(set(names)), "two configurations generate the same kernel name"
    # Both output dtypes, one- and two-warpgroup tiles.
    assert any("bf16" in n for n in names) and any("fp32" in n for n in names)
    assert any(n.startswith("fp8_gemm_nt[64x") for n in names) and any(n.startswith("fp8_gemm_nt[128x") for n in names)


@pytest.mark.parametrize("name, source", SOURCES, ids=[name for name, _ in SOURCES])
def test_kernel_compiles_for_sm90a(name, source, jit):
    result = jit.compile(source, name)
    assert result["size"] > 0
    assert result["compiler"].startswith("nvrtc"), "CI must exercise NVRTC, the default compiler"
