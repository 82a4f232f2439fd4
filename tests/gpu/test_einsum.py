"""einsum and fp8_einsum against torch on the GPU: upstream DeepGEMM's shapes and bounds."""
import pytest
import torch

import deep_gemm
from deep_gemm.testing import calc_diff
from profiling import launched_kernels

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


@pytest.mark.parametrize("n", [384, 9])
def test_bmk_bnk_mn_d_off_8_bytes(n):
    """An fp32 d 4 bytes off an 8-byte boundary (its column pairs added one by one), beside
    the vector atomics of an aligned one; n odd: each row's pairs alternate in alignment."""
    s, m, k = 40, 128, 128
    a = torch.randn(s, m, k, dtype=BF16, device="cuda")
    b = torch.randn(s, n, k, dtype=BF16, device="cuda")
    ref = torch.bmm(a.float(), b.float().mT).sum(0)
    for offset in (0, 1):
        d = torch.zeros(m * n + offset, device="cuda")[offset:].view(m, n)
        deep_gemm.einsum("bmk,bnk->mn", a, b, d, c=d)
        assert calc_diff(d, ref) < 1e-5, offset


@pytest.mark.parametrize("h, r, dim", [(128, 512, 128), (8, 4096, 1024), (3, 200, 64), (5, 192, 136),
                                     (2, 320, 192)])
@pytest.mark.parametrize("batch", [4, 32, 128, 129, 4096, 8192])
@pytest.mark.parametrize("expr", ["bhr,hdr->bhd", "bhd,hdr->bhr"])
@pytest.mark.parametrize("use_cublaslt", [False, True])
def test_per_head(h, r, dim, batch, expr, use_cublaslt):
    """Upstream's shapes, batches and sliced b; contracted dims off 64 (cuBLAS), tiles cut
    by b, d and r (r = 320: the last 128-column tile of 'bhd,hdr->bhr' has one 64-column box)."""
    x = torch.randn(batch, h, r if expr.startswith("bhr") else dim, dtype=BF16, device="cuda")
    y = torch.randn(h, dim, r + 128, dtype=BF16, device="cuda")[:, :, :r]
    ref = torch.einsum(expr, x, y)
    z = torch.full_like(ref, float("nan"))
    deep_gemm.einsum(expr, x, y, z, use_cublaslt=use_cublaslt)
    assert calc_diff(z, ref) < 1e-10


@pytest.mark.parametrize("h, r, dim, width", [(3, 99, 64, 104), (1, 64, 128, 64), (4, 1000, 256, 1024),
                                              (2, 130, 64, 136)])
@pytest.mark.parametrize("batch", [1, 200])
def test_bhd_hdr_bhr_kernel_edges(h, r, dim, width, batch):
    """The per-head kernel's MN-major b: odd r (bf16 stores one by one), r of one box, b's
    rows `width` apart, exactly against an fp32 product (the kernel accumulates in fp32)."""
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
    z = torch.empty(torch.einsum(expr, x, y).shape, dtype=BF16, device="cuda")  # contiguous, unlike einsum's result
    deep_gemm.einsum(expr, x, y, z)
    torch.cuda.synchronize()
    kernels = launched_kernels(lambda: deep_gemm.einsum(expr, x, y, z))
    assert len(kernels) == 1 and "gemm" in kernels[0] and "nvjet" not in kernels[0], kernels


@pytest.mark.parametrize("expr, h, r, dim", [("bhd,hdr->bhr", 3, 200, 64), ("bhd,hdr->bhr", 2, 72, 128),
                                             ("bhd,hdr->bhr", 4, 8, 64), ("bhr,hdr->bhd", 3, 64, 136),
                                             ("bhr,hdr->bhd", 2, 128, 200), ("bhr,hdr->bhd", 5, 192, 24)])
@pytest.mark.parametrize("batch", [1, 129, 200])
@pytest.mark.parametrize("layout", ["packed", "padded columns", "padded heads"])
def test_per_head_tma_store_edges(expr, h, r, dim, batch, layout):
    """The TMA stores of both expressions (the GEMM kernel grouped by heads; 'bhd,hdr->bhr'
    reads y MN-major): output widths off 64 (a head's last column tile partial, its boxes
    clipped at the head's end), batches off 64, and d a view into a nan-filled buffer (rows
    or heads padded), nothing outside d written; exact against an fp32 product, through the
    kernel alone."""
    x = torch.randn(batch, h, r if expr.startswith("bhr") else dim, dtype=BF16, device="cuda")
    y = torch.randn(h, dim, r + 128, dtype=BF16, device="cuda")[:, :, :r]
    ref = torch.einsum(expr, x.float(), y.float())
    n = ref.shape[2]
    if layout == "packed":
        base = torch.full((batch, h, n), float("nan"), dtype=BF16, device="cuda")
        z = base
    elif layout == "padded columns":
        base = torch.full((batch, h, n + 24), float("nan"), dtype=BF16, device="cuda")
        z = base[:, :, :n]
    else:
        base = torch.full((batch, h + 1, n), float("nan"), dtype=BF16, device="cuda")
        z = base[:, 1:]
    kernels = launched_kernels(lambda: deep_gemm.einsum(expr, x, y, z))
    assert len(kernels) == 1 and "bf16_gemm_nt_kernel" in kernels[0], kernels
    assert base.isnan().sum().item() == base.numel() - z.numel(), "elements outside d were written"
    assert calc_diff(z, ref) < 1e-5
    assert ((z.float() - ref).abs() <= ref.abs() * 2 ** -7 + 1e-3).all()


@pytest.mark.parametrize("expr", ["bhr,hdr->bhd", "bhd,hdr->bhr"])
@pytest.mark.parametrize("width, kernel", [(136, "bf16_gemm_nt_kernel"), (100, "deep_gemm_bf16_per_head_gemm")])
@pytest.mark.parametrize("batch", [3, 130])
def test_kernel_choice(expr, width, kernel, batch):
    """Both expressions run the GEMM kernel grouped by heads where d's rows suit a TMA store
    (16-byte strides), else the per-head kernel storing from registers; both exact. `width`
    is d's last dimension (d for 'bhr,hdr->bhd', r for 'bhd,hdr->bhr'); y's rows are 256
    elements apart."""
    h, k = 3, 192 if expr.startswith("bhr") else 128
    dim, r = (width, k) if expr.startswith("bhr") else (k, width)
    x = torch.randn(batch, h, k, dtype=BF16, device="cuda")
    y = torch.randn(h, dim, 256, dtype=BF16, device="cuda")[:, :, :r]
    ref = torch.einsum(expr, x.float(), y.float())
    z = torch.full(ref.shape, float("nan"), dtype=BF16, device="cuda")
    kernels = launched_kernels(lambda: deep_gemm.einsum(expr, x, y, z))
    assert len(kernels) == 1 and kernel in kernels[0], kernels
    assert ((z.float() - ref).abs() <= ref.abs() * 2 ** -7 + 1e-3).all()


def per_token(x):
    """e4m3 and one fp32 scale per 128 elements of the last dimension (the last block may be partial)."""
    r = x.shape[-1]
    padded = torch.nn.functional.pad(x.float(), (0, -r % 128))
    blocks = padded.unflatten(-1, (-1, 128))
    scale = blocks.abs().amax(-1, keepdim=True).clamp(min=1e-4) / 448
    return (blocks / scale).to(E4M3).flatten(-2)[..., :r].contiguous(), scale.squeeze(-1)


def per_block(y):
    """e4m3 and one fp32 scale per 128x128 block of y [h, d, r] (edge blocks may be partial)."""
    h, dim, r = y.shape
    padded = torch.nn.functional.pad(y.float(), (0, -r % 128, 0, -dim % 128))
    blocks = padded.view(h, padded.shape[1] // 128, 128, padded.shape[2] // 128, 128)
    scale = blocks.abs().amax(dim=(2, 4), keepdim=True).clamp(min=1e-4) / 448
    q = (blocks / scale).to(E4M3).view(padded.shape)[:, :dim, :r].contiguous()
    return q, scale.view(h, padded.shape[1] // 128, padded.shape[2] // 128)


def dequantized(q, scale, rows_per_scale):
    """q's values times their block scales, in fp32."""
    s = scale.repeat_interleave(128, -1)[..., :q.shape[-1]]
    if rows_per_scale > 1:
        s = s.repeat_interleave(rows_per_scale, -2)[..., :q.shape[-2], :]
    return q.float() * s


def fp8_operands(batch, h, r, dim):
    x = torch.randn(batch, h, r, dtype=BF16, device="cuda")
    y = torch.randn(h, dim, r, dtype=BF16, device="cuda")
    xq, yq = per_token(x), per_block(y)
    exact = torch.einsum("bhr,hdr->bhd", dequantized(*xq, 1), dequantized(*yq, 128))
    return x, y, xq, yq, exact


@pytest.mark.parametrize("h, r, dim", [(8, 4096, 1024), (128, 512, 128)])
@pytest.mark.parametrize("batch", [4, 32, 128, 4096, 8192])
@pytest.mark.parametrize("with_c", [False, True])
def test_fp8_bhr_hdr_bhd(h, r, dim, batch, with_c):
    """Upstream's shapes, bf16 d, or fp32 d with c added; one GEMM over all heads."""
    x, y, xq, yq, exact = fp8_operands(batch, h, r, dim)
    ref = torch.einsum("bhr,hdr->bhd", x, y).float()
    c = None
    if with_c:
        c = torch.randn(batch, h, dim, device="cuda")
        ref, exact = ref + c, exact + c
    z = torch.full((batch, h, dim), float("nan"), device="cuda", dtype=torch.float if with_c else BF16)
    deep_gemm.fp8_einsum("bhr,hdr->bhd", xq, yq, z, c=c)
    assert calc_diff(z, ref) < 1e-3  # upstream's bound, against the bf16 operands
    assert calc_diff(z, exact) < 2e-5  # against the quantized operands: only accumulation and rounding


def sentinel_view(shape, dtype, layout):
    """An output of `shape` [b, h, d] in `layout`, with the buffer around it filled with nan."""
    batch, h, dim = shape
    if layout == "contiguous":
        base = torch.full(shape, float("nan"), dtype=dtype, device="cuda")
        return base, base
    if layout == "sliced":  # a head's d columns of a wider row: heads further apart than d
        base = torch.full((batch, h, dim + 40), float("nan"), dtype=dtype, device="cuda")
        return base, base[:, :, :dim]
    if layout == "heads-outer":  # [h, b, d] storage: heads b * d apart (fp32 in place, bf16 through a copy)
        base = torch.full((h, batch, dim), float("nan"), dtype=dtype, device="cuda")
        return base, base.transpose(0, 1)
    assert layout == "misaligned"  # an element off 16 bytes: written through a copy
    base = torch.full((batch * h * dim + 1,), float("nan"), dtype=dtype, device="cuda")
    return base, base[1:].view(shape)


@pytest.mark.parametrize("h, r, dim", [(3, 208, 72), (5, 4096, 136), (2, 144, 100), (4, 256, 8)])
@pytest.mark.parametrize("batch", [1, 65, 300])
@pytest.mark.parametrize("out", [BF16, torch.float])
@pytest.mark.parametrize("layout", ["contiguous", "sliced", "heads-outer", "misaligned"])
def test_fp8_bhr_hdr_bhd_edges(h, r, dim, batch, out, layout):
    """r off 128 (each head's last K-block clipped to zeros by the 3D map), d off the tile
    width and off 8 (a bf16 d through a padded copy), tiles cut by b, strided and misaligned
    d; nothing outside d is written."""
    _, _, xq, yq, exact = fp8_operands(batch, h, r, dim)
    base, z = sentinel_view((batch, h, dim), out, layout)
    deep_gemm.fp8_einsum("bhr,hdr->bhd", xq, yq, z)
    assert calc_diff(z, exact) < 2e-5
    assert base.isnan().sum().item() == base.numel() - z.numel(), "elements outside d were written"


@pytest.mark.parametrize("c_kind", ["alias", "separate", "strided"])
@pytest.mark.parametrize("layout", ["contiguous", "heads-outer", "misaligned"])
def test_fp8_bhr_hdr_bhd_c(c_kind, layout):
    """fp32 d = x @ y^T + c per head: c = d (accumulate in place), a c of d's layout, a c of another."""
    batch, h, r, dim = 130, 6, 384, 192
    _, _, xq, yq, exact = fp8_operands(batch, h, r, dim)
    base, z = sentinel_view((batch, h, dim), torch.float, layout)
    start = torch.randn(batch, h, dim, device="cuda")
    if c_kind == "alias":
        z.copy_(start)
        c = z
    elif c_kind == "separate":
        c = torch.empty_like(z).copy_(start)
    else:
        c = torch.empty(dim, batch, h, device="cuda").permute(1, 2, 0).copy_(start)
    deep_gemm.fp8_einsum("bhr,hdr->bhd", xq, yq, z, c=c)
    assert calc_diff(z, exact + start) < 2e-5
    if c_kind != "alias":
        assert torch.equal(c, start), "c was written"


@pytest.mark.parametrize("x_layout", ["sliced", "misaligned", "heads-outer"])
def test_fp8_bhr_hdr_bhd_strided_x(x_layout):
    """x a view, TMA-aligned (read in place by the 3D map) or not (copied: misaligned, or heads
    outside rows); any sx strides."""
    batch, h, r, dim = 200, 4, 640, 256
    _, _, (xq, sx), yq, exact = fp8_operands(batch, h, r, dim)
    if x_layout != "heads-outer":
        wide = torch.zeros(batch, h, r + 48, dtype=E4M3, device="cuda")
        offset = 16 if x_layout == "sliced" else 8
        x_view = wide[:, :, offset:offset + r]
    else:
        x_view = torch.empty(h, batch, r, dtype=E4M3, device="cuda").transpose(0, 1)
    x_view.copy_(xq)
    sx_view = torch.empty(h, sx.shape[2], batch, device="cuda").permute(2, 0, 1).copy_(sx)
    z = torch.full((batch, h, dim), float("nan"), dtype=BF16, device="cuda")
    deep_gemm.fp8_einsum("bhr,hdr->bhd", (x_view, sx_view), yq, z)
    assert calc_diff(z, exact) < 2e-5
