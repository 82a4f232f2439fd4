#!/usr/bin/env bash
# Tuning sweep: time fp8_gemm_nt for forced BLOCK_N values (DG_GEMM_BLOCK_N)
# on a few shapes, one process per configuration. Run from the repo root on the GPU.
#   bash scripts/sweep_fp8_tiles.sh "32 64 128" "4096x7168x16384 128x7168x2048"
set -u
tiles=$1; shapes=$2
cd /tmp  # import the installed deep_gemm, not the source tree
for tile in $tiles; do
    DG_GEMM_BLOCK_N=$tile python3 - "$tile" $shapes <<'PY'
import sys, statistics, torch, deep_gemm
from deep_gemm import get_mn_major_tma_aligned_tensor as mn, per_block_cast_to_fp8, per_token_cast_to_fp8
flush = torch.empty(256 << 20, dtype=torch.uint8, device="cuda")
out = []
for shape in sys.argv[2:]:
    m, n, k = (int(v) for v in shape.split("x"))
    x, xs = per_token_cast_to_fp8(torch.randn((m, k), device="cuda", dtype=torch.bfloat16))
    y = per_block_cast_to_fp8(torch.randn((n, k), device="cuda", dtype=torch.bfloat16))
    d = torch.empty((m, n), device="cuda", dtype=torch.bfloat16)
    a = (x, mn(xs))
    deep_gemm.fp8_gemm_nt(a, y, d)
    times = []
    for _ in range(20):
        flush.zero_()
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record(); deep_gemm.fp8_gemm_nt(a, y, d); e.record(); e.synchronize()
        times.append(s.elapsed_time(e))
    out.append(f"{shape}:{2 * m * n * k / statistics.median(times) / 1e9:.0f}")
print(f"tile {sys.argv[1]:>6}  " + "  ".join(out))
PY
done
