#!/usr/bin/env bash
# Tuning sweep: time fp8_gemm_nt or bf16_gemm_nt under forced tile plans, one process
# per plan (the overrides are read at a process's first GEMM). A plan is BLOCK_N:SPLITS, with
# "auto" for the heuristic's own choice in either place (DG_GEMM_BLOCK_N /
# DG_GEMM_SPLIT_K; SPLITS 1 turns split K off). Run from the repo root on the GPU.
#   bash scripts/sweep_gemm_plans.sh fp8 "auto:auto 128:1 128:4 64:4" "128x4096x7168 4096x2112x7168"
set -u
input=$1; plans=$2; shapes=$3
benchmarks=$(cd "$(dirname "$0")/../benchmarks" && pwd)  # for timing.py
cd /tmp  # import the installed deep_gemm, not the source tree
for plan in $plans; do
    block_n=${plan%%:*}; splits=${plan##*:}
    env $([ "$block_n" != auto ] && echo DG_GEMM_BLOCK_N=$block_n) \
        $([ "$splits" != auto ] && echo DG_GEMM_SPLIT_K=$splits) \
        python3 - "$benchmarks" "$input" "$plan" $shapes <<'PY'
import sys, torch, deep_gemm
from deep_gemm import _C, get_mn_major_tma_aligned_tensor as mn, per_block_cast_to_fp8, per_token_cast_to_fp8
sys.path.insert(0, sys.argv[1])
from timing import median_ms
input_type, plan = sys.argv[2], sys.argv[3]
out = []
for shape in sys.argv[4:]:
    m, n, k = (int(v) for v in shape.split("x"))
    x = torch.randn((m, k), device="cuda", dtype=torch.bfloat16)
    y = torch.randn((n, k), device="cuda", dtype=torch.bfloat16)
    if input_type == "fp8":
        xq, xs = per_token_cast_to_fp8(x)
        a, b, gemm = (xq, mn(xs)), per_block_cast_to_fp8(y), deep_gemm.fp8_gemm_nt
    else:
        a, b, gemm = x, y, deep_gemm.bf16_gemm_nt
    d = torch.empty((m, n), device="cuda", dtype=torch.bfloat16)
    ms = median_ms(lambda: gemm(a, b, d), 20)
    chosen = _C.gemm_config(input_type, "dense", m, n, k, num_sms=deep_gemm.get_num_sms())
    split = chosen.split("] ")[1] if "] " in chosen else "whole"
    out.append(f"{shape}:{2 * m * n * k / ms / 1e9:.0f}({chosen.split('[')[1].split(' ')[0]} {split})")
print(f"{plan:>10}  " + "  ".join(out), flush=True)
PY
done
