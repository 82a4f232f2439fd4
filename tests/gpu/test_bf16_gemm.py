"""bf16_gemm_nt against an FP32 reference on the GPU."""
import pytest
import torch

import deep_gemm
from deep_gemm import _C, calc_diff
from sms import num_sms

NK = [(2112, 7168), (24576, 1536), (32768, 512), (7168, 16384), (4096, 7168), (7168, 2048)]
ODD = [(1, 16, 64), (65, 130, 192), (129, 1000, 512), (300, 4097, 1024), (4095, 2048, 640), (77, 256, 64)]


def run(m, n, k, out_dtype=torch.bfloat16, with_c=False, seed=0):
    g = torch.Generator(device="cuda").manual_seed(seed)
    a = torch.randn((m, k), device="cuda", dtype=torch.bfloat16, generator=g)
    b = torch.randn((n, k), device="cuda", dtype=torch.bfloat16, generator=g)
    ref = a.float() @ b.float().T
    d = torch.full((m, n), float("nan"), device="cuda", dtype=out_dtype)
    c = None
    if with_c:
        c = torch.randn((m, n), device="cuda", generator=g)
        ref = ref + c
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


# 192-row tiles (three math warpgroups): the heuristic's pick for N = 2112 at M = 4096,
# and for smaller problems on fewer SMs. (m, n, k, SMs, the kernel the heuristic must pick)
WIDE_TILES = [
    (4096, 2112, 7168, 132, "192x176 s4 bf16]"),
    (300, 4097, 1024, 16, "192x176 s4 bf16]"),            # M and N edges, stores from registers
    (129, 1000, 512, 16, "192x64 s6 bf16 tma-store]"),    # the TMA store clips 63 of 192 rows
    (129, 1000, 512, 8, "192x128 s4 bf16 tma-store]"),
    (4001, 2111, 512, 8, "192x192 s4 bf16]"),
]


@pytest.mark.parametrize("m, n, k, sms, kernel", WIDE_TILES)
def test_192_row_tiles(m, n, k, sms, kernel):
    if sms > deep_gemm.get_num_sms():
        pytest.skip(f"the plan is for {sms} SMs, this GPU has {deep_gemm.get_num_sms()}")
    assert _C.gemm_config("bf16", "dense", m, n, k, num_sms=sms).endswith(kernel)
    with num_sms(sms):
        run(m, n, k, seed=m + n)


def test_192_row_tiles_fp32_output_and_accumulate():
    assert _C.gemm_config("bf16", "dense", 300, 4097, 1024, output="fp32", num_sms=16).endswith("192x176 s4 fp32]")
    with num_sms(16):
        run(300, 4097, 1024, out_dtype=torch.float32, with_c=True)


def test_k_must_fill_a_128_byte_block():
    a = torch.randn((64, 96), device="cuda", dtype=torch.bfloat16)
    with pytest.raises(ValueError, match=r"K must be a positive multiple of 64 \(one 128-byte K-block\), got K = 96"):
        deep_gemm.bf16_gemm_nt(a, a, torch.empty((64, 64), device="cuda", dtype=torch.bfloat16))
