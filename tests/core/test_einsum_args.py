"""einsum and fp8_einsum (deep_gemm.einsum) validate every argument before any GPU work:
CPU tensors of the wrong dtype, shape or layout raise a TypeError or ValueError naming
the argument and, when well-formed, fail the device check."""
import inspect

import pytest
import torch

import deep_gemm

BF16, E4M3 = torch.bfloat16, torch.float8_e4m3fn


def test_signatures_are_upstreams():
    def params(fn):
        return [(p.name, p.default) for p in inspect.signature(fn).parameters.values()]
    empty = inspect.Parameter.empty
    assert params(deep_gemm.einsum) == [("expr", empty), ("a", empty), ("b", empty), ("d", empty), ("c", None),
                                        ("use_cublaslt", False)]
    assert params(deep_gemm.fp8_einsum) == [("expr", empty), ("a", empty), ("b", empty), ("d", empty), ("c", None),
                                            ("recipe", (1, 128, 128))]
    assert callable(deep_gemm.einsum), "deep_gemm.einsum is the function, as upstream's"


def bmk(s=4, m=128, n=384, k=128, out=torch.float):
    d = torch.zeros(m, n, dtype=out)
    return dict(expr="bmk,bnk->mn", a=torch.zeros(s, m, k, dtype=BF16), b=torch.zeros(s, n, k, dtype=BF16), d=d,
                c=d if out == torch.float else None)


def bhr(batch=4, h=8, r=256, dim=128):
    return dict(expr="bhr,hdr->bhd", a=torch.zeros(batch, h, r, dtype=BF16),
                b=torch.zeros(h, dim, r + 128, dtype=BF16)[:, :, :r], d=torch.zeros(batch, h, dim, dtype=BF16))


def bhd(batch=4, h=8, r=256, dim=128):
    return dict(expr="bhd,hdr->bhr", a=torch.zeros(batch, h, dim, dtype=BF16),
                b=torch.zeros(h, dim, r + 128, dtype=BF16)[:, :, :r], d=torch.zeros(batch, h, r, dtype=BF16))


@pytest.mark.parametrize("call, error, words", [
    (dict(bmk(), expr="bmk,bnk->nm"), ValueError, "unsupported expression"),
    (dict(bmk(), a=torch.zeros(4, 128, 128)), TypeError, "a must have dtype"),
    (dict(bmk(), b=torch.zeros(4, 384, 64, dtype=BF16)), ValueError, "the batch or k differs"),
    (dict(bmk(), b=torch.zeros(3, 384, 128, dtype=BF16)), ValueError, "the batch or k differs"),
    (dict(bmk(), c=None), ValueError, "pass c=d"),
    (dict(bmk(), c=torch.zeros(128, 384)), ValueError, "pass c=d"),
    (dict(bmk(out=BF16), c=torch.zeros(128, 384, dtype=BF16)), ValueError, "c must be None"),
    (dict(bmk(), use_cublaslt=True), ValueError, "no cuBLASLt path"),
    (dict(bmk(), d=torch.zeros(128, 383), c=None), ValueError, "d must have shape"),
    (dict(bmk()), ValueError, "must be a CUDA tensor"),
    (dict(bmk(out=BF16)), ValueError, "must be a CUDA tensor"),
    (dict(bhr(), d=torch.zeros(4, 8, 128)), TypeError, "needs a bf16 d"),
    (dict(bhr(), c=torch.zeros(4, 8, 128, dtype=BF16)), ValueError, "takes no c"),
    (dict(bhr(), b=torch.zeros(8, 128, 200, dtype=BF16)), ValueError, "a must have shape"),
    (dict(bhr(), b=torch.zeros(8, 256, 128, dtype=BF16).transpose(1, 2)), ValueError, "unit stride"),
    (dict(bhr(), d=torch.zeros(4, 8, 64, dtype=BF16)), ValueError, "d must have shape"),
    (dict(bhr()), ValueError, "must be a CUDA tensor"),
    (dict(bhr(), use_cublaslt=True), ValueError, "must be a CUDA tensor"),
    (dict(bhd(), d=torch.zeros(4, 8, 128, dtype=BF16)), ValueError, "d must have shape"),
    (dict(bhd()), ValueError, "must be a CUDA tensor"),
])
def test_einsum_rejects(call, error, words):
    with pytest.raises(error) as info:
        deep_gemm.einsum(**call)
    assert words in str(info.value)


def fp8(batch=4, h=8, r=512, dim=256):
    r_blocks = (r + 127) // 128
    return dict(expr="bhr,hdr->bhd",
                a=(torch.zeros(batch, h, r).to(E4M3), torch.ones(batch, h, r_blocks)),
                b=(torch.zeros(h, dim, r).to(E4M3), torch.ones(h, dim // 128, r_blocks)),
                d=torch.zeros(batch, h, dim, dtype=BF16))


@pytest.mark.parametrize("call, error, words", [
    (dict(fp8(), expr="bhd,hdr->bhr"), ValueError, "unsupported expression"),
    (dict(fp8(), recipe=(1, 1, 128)), ValueError, "recipe (1, 128, 128)"),
    (dict(fp8(), recipe=(1, 128)), ValueError, "recipe must be 3 ints"),
    (dict(fp8(), a=(torch.zeros(4, 8, 512, dtype=BF16), torch.ones(4, 8, 4))), TypeError, "a[0] must have dtype"),
    (dict(fp8(), a=(torch.zeros(4, 8, 512).to(E4M3), torch.ones(4, 8, 3))), ValueError, "a[1] must have shape"),
    (dict(fp8(), b=(torch.zeros(8, 256, 512).to(E4M3), torch.ones(8, 1, 4))), ValueError, "b[1] must have shape"),
    (dict(fp8(), c=torch.zeros(4, 8, 256)), TypeError, "needs an fp32 d"),
    (dict(fp8(), d=torch.zeros(4, 8, 128, dtype=BF16)), ValueError, "d must have shape"),
    (fp8(r=200), ValueError, "r must be a positive multiple of 16"),
    (dict(fp8(), a=(torch.zeros(4, 512, 8).to(E4M3).mT, torch.ones(4, 8, 4))), ValueError,
     "a[0] must have unit stride"),
    (dict(fp8(), b=(torch.zeros(8, 256, 1024).to(E4M3)[:, :, :512], torch.ones(8, 2, 4))), ValueError,
     "b[0] must be contiguous"),
    (dict(fp8(), d=torch.zeros(4, 8, 256, dtype=BF16).mT.contiguous().mT), ValueError, "d must have unit stride"),
    (dict(fp8(), d=torch.zeros(4, 8, 256), c=torch.zeros(4, 8, 256, dtype=BF16)), TypeError, "c must have dtype"),
    (dict(fp8(), d=torch.zeros(4, 8, 256), c=torch.zeros(4, 8, 128)), ValueError, "c must have shape"),
    (dict(fp8(), d=torch.zeros(4, 8, 256), c=torch.zeros(4, 8, 256)), ValueError, "must be a CUDA tensor"),
    (dict(fp8()), ValueError, "must be a CUDA tensor"),
])
def test_fp8_einsum_rejects(call, error, words):
    with pytest.raises(error) as info:
        deep_gemm.fp8_einsum(**call)
    assert words in str(info.value)
