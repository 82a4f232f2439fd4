"""einsum and fp8_einsum against torch on the GPU: upstream DeepGEMM's shapes and bounds."""
import pytest
import torch

import deep_gemm
from deep_gemm.testing import calc_diff

BF16, E4M3 = torch.bfloat16, torch.float8_e4m3fn


@pytest.mark.parametrize("s", [1, 129, 4096])
@pytest.mark.parametrize("m, n, k", [(128, 384, 128), (256, 256, 256), (384, 128, 384), (7, 9, 24), (130, 200, 72),
                                     (5, 6, 12)])
@pytest.mark.parametrize("out", [torch.float, BF16])
def test_bmk_bnk_mn(s, m, n, k, out):
    """Upstream's shapes; tiles cut by m and n, a partial last K-block, k not a multiple of 8 (cuBLAS)."""
    a = torch.randn(s, m, k, dtype=BF16, device="cuda")
    b = torch.randn(s, n, k, dtype=BF16, device="cuda")
    d = torch.randn(m, n, dtype=out, device="cuda")
    c = d if out == torch.float else None
    ref = (d.clone() if out == torch.float else 0) + torch.bmm(a.float(), b.float().mT).sum(0)
    deep_gemm.einsum("bmk,bnk->mn", a, b, d, c=c)
    assert calc_diff(d, ref) < 1e-5


@pytest.mark.parametrize("h, r, dim", [(128, 512, 128), (8, 4096, 1024), (3, 200, 64), (5, 192, 136),
                                     (2, 320, 192)])
@pytest.mark.parametrize("batch", [4, 32, 128, 129, 4096, 8192])
@pytest.mark.parametrize("expr", ["bhr,hdr->bhd", "bhd,hdr->bhr"])
@pytest.mark.parametrize("use_cublaslt", [False, True])
def test_per_head(h, r, dim, batch, expr, use_cublaslt):
    """Upstream's shapes, batches and sliced b; contracted dims off 64 (cuBLAS), tiles cut
    by b, d and r (r = 320: the last 128-column tile of 'bhd,hdr->bhr' has one 64-column box);
    small b runs 64-column tiles."""
    x = torch.randn(batch, h, r if expr.startswith("bhr") else dim, dtype=BF16, device="cuda")
    y = torch.randn(h, dim, r + 128, dtype=BF16, device="cuda")[:, :, :r]
    ref = torch.einsum(expr, x, y)
    z = torch.full_like(ref, float("nan"))
    deep_gemm.einsum(expr, x, y, z, use_cublaslt=use_cublaslt)
    assert calc_diff(z, ref) < 1e-10


@pytest.mark.parametrize("h, r, dim, width", [(16, 99, 64, 104), (1, 64, 128, 64), (4, 1000, 256, 1024),
                                              (2, 130, 64, 136)])
@pytest.mark.parametrize("batch", [1, 200, 4096])
def test_bhd_hdr_bhr_kernel_edges(h, r, dim, width, batch):
    """The per-head kernel's MN-major b: odd r (bf16 stores one by one), r of one box, b's
    rows `width` apart, in 64- and 128-column tiles (few tiles: 64), against an fp32
    product (the kernel accumulates in fp32)."""
    x = torch.randn(batch, h, dim, dtype=BF16, device="cuda")
    y = torch.randn(h, dim, width, dtype=BF16, device="cuda")[:, :, :r]
    ref = torch.einsum("bhd,hdr->bhr", x.float(), y.float())
    z = torch.full((batch, h, r), float("nan"), dtype=BF16, device="cuda")
    deep_gemm.einsum("bhd,hdr->bhr", x, y, z)
    assert calc_diff(z, ref) < 1e-5
    assert ((z.float() - ref).abs() <= ref.abs() * 2 ** -7 + 1e-3).all()


@pytest.mark.parametrize("expr", ["bhr,hdr->bhd", "bhd,hdr->bhr"])
def test_per_head_is_one_gemm_kernel(expr):
    """Upstream's test times both expressions by a kernel whose name contains 'gemm'
    (bench_kineto(..., 'gemm')): one launch, no copies, no cuBLAS."""
    h, r, dim, batch = 8, 4096, 1024, 32
    x = torch.randn(batch, h, r if expr.startswith("bhr") else dim, dtype=BF16, device="cuda")
    y = torch.randn(h, dim, r + 128, dtype=BF16, device="cuda")[:, :, :r]
    z = torch.empty_like(torch.einsum(expr, x, y))
    deep_gemm.einsum(expr, x, y, z)
    torch.cuda.synchronize()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        deep_gemm.einsum(expr, x, y, z)
        torch.cuda.synchronize()
    kernels = [e.name for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA]
    assert len(kernels) == 1 and "gemm" in kernels[0] and "nvjet" not in kernels[0], kernels


def per_token(x):
    """e4m3 and one fp32 scale per 128 elements of the last dimension."""
    blocks = x.float().unflatten(-1, (-1, 128))
    scale = blocks.abs().amax(-1, keepdim=True).clamp(min=1e-4) / 448
    return (blocks / scale).to(E4M3).flatten(-2), scale.squeeze(-1)


def per_block(y):
    """e4m3 and one fp32 scale per 128x128 block of y [h, d, r]."""
    h, dim, r = y.shape
    blocks = y.float().view(h, dim // 128, 128, r // 128, 128)
    scale = blocks.abs().amax(dim=(2, 4), keepdim=True).clamp(min=1e-4) / 448
    return (blocks / scale).to(E4M3).view(h, dim, r), scale.view(h, dim // 128, r // 128)


@pytest.mark.parametrize("batch", [4, 128, 4096])
@pytest.mark.parametrize("with_c", [False, True])
def test_fp8_bhr_hdr_bhd(batch, with_c):
    h, r, dim = 8, 4096, 1024
    x = torch.randn(batch, h, r, dtype=BF16, device="cuda")
    y = torch.randn(h, dim, r, dtype=BF16, device="cuda")
    ref = torch.einsum("bhr,hdr->bhd", x, y).float()
    c = None
    if with_c:
        c = torch.randn(batch, h, dim, device="cuda")
        ref = ref + c
    z = torch.full((batch, h, dim), float("nan"), device="cuda", dtype=torch.float if with_c else BF16)
    deep_gemm.fp8_einsum("bhr,hdr->bhd", per_token(x), per_block(y), z, c=c)
    assert calc_diff(z, ref) < 1e-3
