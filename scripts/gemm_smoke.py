#!/usr/bin/env python3
"""A few fp8_gemm_nt and bf16_gemm_nt calls over edge shapes, the drop-in API's kernel paths and
masked grouped GEMMs, checked against FP32 references.

Small enough to run under compute-sanitizer (--masked / --einsum / --drop-in: only the masked
GEMMs / only the einsum kernels, the per-head bf16 ones and fp8_einsum's grouping by columns /
only the drop-in API's paths: 1D1D, FP32 D through TMA, MN-major BF16, K-grouped):
    compute-sanitizer --tool memcheck python3 scripts/gemm_smoke.py [--masked] [--einsum] [--drop-in]
"""
import sys
from pathlib import Path

import torch

import deep_gemm
from deep_gemm import calc_diff, get_mn_major_tma_aligned_tensor, per_block_cast_to_fp8, per_token_cast_to_fp8

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "gpu"))
from moe import cast_b, dequant_a, dequant_b, k_grouped_fp8_operand, quant_rows  # noqa: E402
from sms import forced_block_n, num_sms  # noqa: E402

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


# Masked grouped GEMMs, M = 300: counts at and off the 64-row warpgroups' edges, 0 and M.
# The TMA store takes a warpgroup whose rows all lie inside its group's count, registers the
# others (rows past masked_m must stay NaN); 64- and 128-row tiles (expected_m), BF16 N =
# 2112 in tiles with a narrower last chunk, FP8 256-column tiles (chunks stored during the
# last K-block), N = 4100 (rows not 16-byte aligned: registers only).
MASKED_COUNTS = [300, 0, 65, 64, 257, 191]
MASKED_CASES = [("fp8", 32, 4096, 512), ("fp8", 128, 4096, 512), ("bf16", 32, 2112, 256), ("bf16", 128, 2112, 256),
                ("bf16", 128, 4100, 256)]
MASKED_WIDE_CASES = [("fp8", 32, 1024, 384), ("fp8", 128, 1024, 384)]


def report(what: str, d: torch.Tensor, ref: torch.Tensor, bound: float = 1e-3) -> bool:
    diff = calc_diff(d, ref)
    ok = diff < bound and not d.isnan().any()
    print(f"{what} sms={deep_gemm.get_num_sms():3} calc_diff={diff:.2e} {'ok' if ok else 'FAIL'}")
    return ok


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
    return report(f"{op:4} m={m:5} n={n:6} k={k:6}", d, ref)


def check_masked(op: str, expected_m: int, n: int, k: int) -> bool:
    groups, max_m = len(MASKED_COUNTS), 300
    x = torch.randn((groups, max_m, k), device="cuda", dtype=torch.bfloat16)
    y = torch.randn((groups, n, k), device="cuda", dtype=torch.bfloat16)
    d = torch.full((groups, max_m, n), float("nan"), device="cuda", dtype=torch.bfloat16)
    masked_m = torch.tensor(MASKED_COUNTS, device="cuda", dtype=torch.int32)
    if op == "fp8":
        parts = [per_token_cast_to_fp8(x[g]) for g in range(groups)]
        a = (torch.stack([p[0] for p in parts]), torch.stack([p[1] for p in parts]))
        b = cast_b(y)
        deep_gemm.m_grouped_fp8_gemm_nt_masked((a[0], get_mn_major_tma_aligned_tensor(a[1])), b, d, masked_m,
                                               expected_m)
        a_deq, b_deq = dequant_a(*a), dequant_b(*b)
    else:
        deep_gemm.m_grouped_bf16_gemm_nt_masked(x, y, d, masked_m, expected_m)
        a_deq, b_deq = x.float(), y.float()
    rows = [d[g, :count] for g, count in enumerate(MASKED_COUNTS)]
    refs = [a_deq[g, :count] @ b_deq[g].T for g, count in enumerate(MASKED_COUNTS)]
    untouched = all(d[g, count:].isnan().all() for g, count in enumerate(MASKED_COUNTS))
    ok = report(f"{op:4} masked m={MASKED_COUNTS} expected_m={expected_m} n={n} k={k}", torch.cat(rows),
                torch.cat(refs))
    if not untouched:
        print("  FAIL: rows past masked_m were written")
    return ok and untouched


# The drop-in API's kernel paths: recipe (1, 1, 128) with FP32 D accumulated into C in place
# (K with a partial last block too; the TMA store adds to D), a partial last K-block, BF16 D +
# BF16 C, MN-major BF16 operands (copied K-major, and read in place with padded rows into an
# fp32 D += C), and both K-grouped GEMMs (a group of K = 0 among them).
def check_drop_in_paths() -> list[bool]:
    results = []
    for m, n, k in [(129, 200, 384), (300, 1000, 2112)]:
        a = quant_rows(torch.randn((m, k), device="cuda", dtype=torch.bfloat16))
        b = quant_rows(torch.randn((n, k), device="cuda", dtype=torch.bfloat16))
        d = torch.randn((m, n), device="cuda")
        ref = d + dequant_a(*a) @ dequant_a(*b).T
        deep_gemm.fp8_gemm_nt((a[0], get_mn_major_tma_aligned_tensor(a[1])), b, d, c=d, recipe=(1, 1, 128))
        results.append(report(f"fp8 1d1d m={m} n={n} k={k} d += c", d, ref))
    m, n, k = 65, 300, 144
    a = quant_rows(torch.randn((m, k), device="cuda", dtype=torch.bfloat16))
    b = per_block_cast_to_fp8(torch.randn((n, k), device="cuda", dtype=torch.bfloat16))
    d = torch.full((m, n), float("nan"), device="cuda", dtype=torch.bfloat16)
    deep_gemm.fp8_gemm_nt(a, b, d)
    results.append(report(f"fp8 partial K m={m} n={n} k={k}", d, dequant_a(*a) @ dequant_b(*b).T))
    m, n, k = 129, 257, 64
    x = torch.randn((m, k), device="cuda", dtype=torch.bfloat16)
    y = torch.randn((n, k), device="cuda", dtype=torch.bfloat16)
    c = torch.randn((m, n), device="cuda", dtype=torch.bfloat16)
    d = torch.empty_like(c)
    deep_gemm.bf16_gemm_nt(x, y, d, c=c)
    results.append(report(f"bf16 d + c m={m} n={n} k={k}", d, x.float() @ y.float().T + c.float()))
    deep_gemm.bf16_gemm_nt(x.T.contiguous().T, y.T.contiguous().T, d)
    results.append(report(f"bf16 MN-major m={m} n={n} k={k}", d, x.float() @ y.float().T))
    m, n, k = 200, 136, 520
    x = torch.randn((k, 208), device="cuda", dtype=torch.bfloat16)[:, :m].T
    y = torch.randn((k, 144), device="cuda", dtype=torch.bfloat16)[:, :n].T
    d = torch.randn((m, n), device="cuda")
    ref = d + x.float() @ y.float().T
    deep_gemm.bf16_gemm_nt(x, y, d, c=d)
    results.append(report(f"bf16 MN-major in place m={m} n={n} k={k} fp32 d += c", d, ref))
    ks, m, n = [256, 0, 384], 128, 384
    x = torch.randn((sum(ks), m), device="cuda", dtype=torch.bfloat16)
    y = torch.randn((sum(ks), n), device="cuda", dtype=torch.bfloat16)
    layout = torch.tensor(ks, dtype=torch.int32, device="cuda")
    (a, x_ref), (b, y_ref) = k_grouped_fp8_operand(x, ks), k_grouped_fp8_operand(y, ks)
    cases = [("fp8", deep_gemm.k_grouped_fp8_gemm_nt_contiguous, (a, b), (x_ref, y_ref)),
             ("bf16", deep_gemm.k_grouped_bf16_gemm_tn_contiguous, (x, y), (x.float(), y.float()))]
    for name, gemm, operands, refs in cases:
        c = torch.randn((len(ks), m, n), device="cuda")
        ref = c + torch.stack([p.T @ q for p, q in zip(refs[0].split(ks), refs[1].split(ks), strict=True)])
        gemm(*operands, c, ks, layout, c)
        results.append(report(f"{name} k-grouped ks={ks} m={m} n={n}", c, ref))
    return results


# 'bmk,bnk->mn' into fp32 d (vector atomics; one by one where d is 4 bytes off 8), then per
# head h (a few heads, batches cut by the 64- / 128-row tiles, widths off 64): both bf16
# expressions (the second reads y MN-major) and fp8_einsum with bf16 d and with fp32 d + c.
def check_einsum_paths() -> list[bool]:
    results = []
    sa = torch.randn((40, 130, 128), device="cuda", dtype=torch.bfloat16)
    sb = torch.randn((40, 200, 128), device="cuda", dtype=torch.bfloat16)
    summed = torch.bmm(sa.float(), sb.float().mT).sum(0)
    for offset in (0, 1):
        acc = torch.zeros(130 * 200 + offset, device="cuda")[offset:].view(130, 200)
        deep_gemm.einsum("bmk,bnk->mn", sa, sb, acc, c=acc)
        results.append(report(f"einsum bmk,bnk->mn d offset {offset}", acc, summed))
    batch, heads, r, dim = 65, 3, 192, 136
    x = torch.randn((batch, heads, r), device="cuda", dtype=torch.bfloat16)
    y = torch.randn((heads, dim, r + 64), device="cuda", dtype=torch.bfloat16)[:, :, :r]
    z = torch.full((batch, heads, dim), float("nan"), device="cuda", dtype=torch.bfloat16)
    deep_gemm.einsum("bhr,hdr->bhd", x, y, z)
    results.append(report("einsum bhr,hdr->bhd", z, torch.einsum("bhr,hdr->bhd", x.float(), y.float())))
    w = torch.randn((batch, heads, 128), device="cuda", dtype=torch.bfloat16)  # its K: whole 64-blocks
    v = torch.randn((heads, 128, r + 64), device="cuda", dtype=torch.bfloat16)[:, :, :r]
    out = torch.full((batch, heads, r), float("nan"), device="cuda", dtype=torch.bfloat16)
    deep_gemm.einsum("bhd,hdr->bhr", w, v, out)
    results.append(report("einsum bhd,hdr->bhr", out, torch.einsum("bhd,hdr->bhr", w.float(), v.float())))
    xq, xs = per_token_cast_to_fp8(x.view(-1, r))
    yq = [per_block_cast_to_fp8(y[h]) for h in range(heads)]
    a = (xq.view(batch, heads, r), xs.view(batch, heads, -1))
    b = (torch.stack([q for q, _ in yq]), torch.stack([s for _, s in yq]))
    ref = torch.einsum("bhr,hdr->bhd", dequant_a(xq, xs).view(batch, heads, r),
                       torch.stack([dequant_b(q, s) for q, s in yq]))
    deep_gemm.fp8_einsum("bhr,hdr->bhd", a, b, z)
    results.append(report("fp8_einsum bhr,hdr->bhd bf16 d", z, ref))
    c = torch.randn((batch, heads, dim), device="cuda")
    d = torch.empty_like(c)
    deep_gemm.fp8_einsum("bhr,hdr->bhd", a, b, d, c)
    results.append(report("fp8_einsum bhr,hdr->bhd fp32 d + c", d, ref + c))
    return results


def main() -> int:
    chosen = {flag for flag in ("--masked", "--einsum", "--drop-in") if flag in sys.argv[1:]}
    results = []
    if not chosen:
        results += [check("fp8", *shape) for shape in SHAPES] + [check("bf16", *shape) for shape in BF16_SHAPES]
        for op, sms, m, n, k in SPLIT_CASES + WIDE_CASES + WIDE_N_CASES:
            with num_sms(sms):
                results.append(check(op, m, n, k))
    if not chosen or "--drop-in" in chosen:
        results += check_drop_in_paths()
    if not chosen or "--masked" in chosen:
        results += [check_masked(*case) for case in MASKED_CASES]
        with forced_block_n(256):
            results += [check_masked(*case) for case in MASKED_WIDE_CASES]
    if not chosen or "--einsum" in chosen:
        results += check_einsum_paths()
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
