#!/usr/bin/env python3
"""Run fp8_gemm_nt once per given shape, for profilers (ncu -k regex:gemm_nt ...).

    python3 scripts/profile_fp8_gemm.py 4096x7168x16384 128x7168x2048
"""
import sys

import torch

import deep_gemm
from deep_gemm import get_mn_major_tma_aligned_tensor, per_block_cast_to_fp8, per_token_cast_to_fp8

for shape in sys.argv[1:]:
    m, n, k = (int(v) for v in shape.split("x"))
    x_fp8, x_s = per_token_cast_to_fp8(torch.randn((m, k), device="cuda", dtype=torch.bfloat16))
    y = per_block_cast_to_fp8(torch.randn((n, k), device="cuda", dtype=torch.bfloat16))
    d = torch.empty((m, n), device="cuda", dtype=torch.bfloat16)
    deep_gemm.fp8_gemm_nt((x_fp8, get_mn_major_tma_aligned_tensor(x_s)), y, d)
torch.cuda.synchronize()
