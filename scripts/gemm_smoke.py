#!/usr/bin/env python3
"""A few fp8_gemm_nt and bf16_gemm_nt calls over edge shapes, checked against FP32 references.

Small enough to run under compute-sanitizer:
    compute-sanitizer --tool memcheck python3 scripts/gemm_smoke.py
"""
import sys
from pathlib import Path

import torch

import deep_gemm
from deep_gemm import calc_diff, get_mn_major_tma_aligned_tensor, per_block_cast_to_fp8, per_token_cast_to_fp8

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "gpu"))
from moe import dequant_a, dequant_b  # noqa: E402
from sms import num_sms  # noqa: E402

# (1024, 4096, 128) and (2048, 1536, 256) give every CTA several tiles, down to one
# K-block per tile, so the producer runs ahead across tiles; 8300 rows are three
# groups of the tile order (32, 32 and 1 tile-rows of 128).
SHAPES = [(1, 2112, 512), (65, 200, 256), (128, 7168, 1024), (300, 4097, 384), (1024, 4096, 128), (2048, 1536, 256),
          (8300, 1024, 256)]
# BF16 tiles 256 and 192 wide: the TMA-store epilogue cycles chunks through its
# two-buffer ring within a tile.
BF16_SHAPES = [(4096, 4096, 128), (4096, 2112, 128), (300, 4097, 192), (8300, 520, 256)]
# Split K: with this few SMs the heuristic cuts the last partial wave's tiles into
# K-slices summed through a workspace (see tests/gpu/test_split_k.py): with and
# without the TMA store, M and N edges, slices of unequal length.
SPLIT_CASES = [("fp8", 8, 200, 520, 7168), ("fp8", 8, 65, 1100, 7168), ("fp8", 3, 200, 640, 7168),
               ("bf16", 2, 300, 130, 5120), ("bf16", 2, 300, 520, 5120)]
# FP8 tiles of 192 rows (three math warpgroups), picked under these SM budgets: M
# clipped by the TMA store, and in K-slices.
WIDE_CASES = [("fp8", 2, 300, 128, 2048), ("fp8", 5, 576, 2112, 7168)]
# Tiles of 256 columns (FP8: four sub-tiles over two B scale blocks), the last wave's
# in row halves (a warpgroup's rows per CTA): the last tile's second block past N, M
# and N edges stored from registers, BF16; one K-block per tile and K-slices ending at
# the row's last scale (B's scales are loaded two K-blocks ahead without predication).
WIDE_N_CASES = [("fp8", 66, 4096, 4160, 256), ("fp8", 66, 4097, 4100, 384), ("bf16", 13, 4096, 1280, 256),
                ("fp8", 66, 4096, 512, 128), ("fp8", 5, 4096, 768, 16384)]


def check(op: str, m: int, n: int, k: int) -> bool:
    x = torch.randn((m, k), device="cuda", dtype=torch.bfloat16)
    y = torch.randn((n, k), device="cuda", dtype=torch.bfloat16)
    d = torch.full((m, n), float("nan"), device="cuda", dtype=torch.bfloat16)
    if op == "fp8":
        (x_fp8, x_s), (y_fp8, y_s) = per_token_cast_to_fp8(x), per_block_cast_to_fp8(y)
        deep_gemm.fp8_gemm_nt((x_fp8, get_mn_major_tma_aligned_tensor(x_s)), (y_fp8, y_s), d)
        ref = dequant_a(x_fp8, x_s) @ dequant_b(y_fp8, y_s).T
    else:
        deep_gemm.bf16_gemm_nt(x, y, d)
        ref = x.float() @ y.float().T
    diff = calc_diff(d, ref)
    ok = diff < 1e-3 and not d.isnan().any()
    print(f"{op:4} m={m:5} n={n:6} k={k:6} sms={deep_gemm.get_num_sms():3} calc_diff={diff:.2e} "
          f"{'ok' if ok else 'FAIL'}")
    return ok


def main() -> int:
    results = [check("fp8", *shape) for shape in SHAPES] + [check("bf16", *shape) for shape in BF16_SHAPES]
    for op, sms, m, n, k in SPLIT_CASES + WIDE_CASES + WIDE_N_CASES:
        with num_sms(sms):
            results.append(check(op, m, n, k))
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
