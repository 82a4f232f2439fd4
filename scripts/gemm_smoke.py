#!/usr/bin/env python3
"""A few fp8_gemm_nt and bf16_gemm_nt calls over edge shapes, checked against FP32 references.

Small enough to run under compute-sanitizer:
    compute-sanitizer --tool memcheck python3 scripts/gemm_smoke.py
"""
import sys

import torch

import deep_gemm
from deep_gemm import calc_diff, get_mn_major_tma_aligned_tensor, per_block_cast_to_fp8, per_token_cast_to_fp8

# The last two give every CTA several tiles, down to one K-block per tile, so the
# kernel's cross-tile pipeline (next tile's MMAs during this one's stores) runs too.
SHAPES = [(1, 2112, 512), (65, 200, 256), (128, 7168, 1024), (300, 4097, 384), (1024, 4096, 128), (2048, 1536, 256)]
# BF16 tiles 256 and 192 wide: the TMA-store epilogue cycles chunks through its
# two-buffer ring within a tile.
BF16_SHAPES = [(4096, 4096, 128), (4096, 2112, 128), (300, 4097, 192)]


def main() -> int:
    failures = 0
    for m, n, k in SHAPES:
        x = torch.randn((m, k), device="cuda", dtype=torch.bfloat16)
        y = torch.randn((n, k), device="cuda", dtype=torch.bfloat16)
        (x_fp8, x_s), (y_fp8, y_s) = per_token_cast_to_fp8(x), per_block_cast_to_fp8(y)
        d = torch.full((m, n), float("nan"), device="cuda", dtype=torch.bfloat16)
        deep_gemm.fp8_gemm_nt((x_fp8, get_mn_major_tma_aligned_tensor(x_s)), (y_fp8, y_s), d)
        ref = (x_fp8.float() * x_s.repeat_interleave(128, 1)) @ (
            y_fp8.float() * y_s.repeat_interleave(128, 0).repeat_interleave(128, 1)[:n]).T
        diff = calc_diff(d, ref)
        ok = diff < 1e-3 and not d.isnan().any()
        failures += not ok
        print(f"fp8  m={m:5} n={n:6} k={k:6} calc_diff={diff:.2e} {'ok' if ok else 'FAIL'}")
    for m, n, k in BF16_SHAPES:
        x = torch.randn((m, k), device="cuda", dtype=torch.bfloat16)
        y = torch.randn((n, k), device="cuda", dtype=torch.bfloat16)
        d = torch.full((m, n), float("nan"), device="cuda", dtype=torch.bfloat16)
        deep_gemm.bf16_gemm_nt(x, y, d)
        diff = calc_diff(d, x.float() @ y.float().T)
        ok = diff < 1e-3 and not d.isnan().any()
        failures += not ok
        print(f"bf16 m={m:5} n={n:6} k={k:6} calc_diff={diff:.2e} {'ok' if ok else 'FAIL'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
