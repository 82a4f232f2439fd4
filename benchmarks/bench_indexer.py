"""The sparse-attention indexer (MQA logits, dense and paged), the mHC pre-norm GEMM
(tf32_hc_prenorm_gemm) and einsum / fp8_einsum on upstream DeepGEMM's benchmark
shapes: this project's
deep_gemm against the plain-torch computation and,
with --upstream PATH (a directory from which upstream DeepGEMM imports as
`deep_gemm`), against upstream in the same process, alternating run by run.

Each call is timed whole (CUDA events, L2 flushed before each run, median): what a
caller waits for, clean_logits included. Each library is checked against the torch
result first; a case whose outputs disagree fails the script (exit 1).

    python benchmarks/bench_indexer.py [--upstream /path/to/DeepGEMM] [--reps 20] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import upstream  # noqa: E402
from upstream import load_libraries  # noqa: E402

from timing import median_ms, median_ms_pair  # noqa: E402

E4M3 = torch.float8_e4m3fn

# Upstream's sampled cases (shared/reference/h200-upstream-indexer.json) and its H200 times (us).
DENSE_CASES = [  # (logits dtype, compressed, seq, seq_kv, heads, dim, context-parallel, upstream us)
    (torch.bfloat16, False, 2048, 8192, 32, 32, True, 58.0),
    (torch.bfloat16, False, 8192, 65536, 32, 64, True, 1750.0),
    (torch.bfloat16, True, 8192, 8192, 32, 128, True, 311.0),
    (torch.float32, False, 2048, 65536, 64, 32, False, 1332.0),
    (torch.float32, True, 2048, 8192, 64, 64, False, 183.0),
]
PAGED_CASES = [  # (logits dtype, batch, next_n, heads, dim, avg context, upstream us)
    (torch.bfloat16, 256, 1, 32, 128, 8192, 80.0),
    (torch.bfloat16, 256, 2, 32, 128, 8192, 79.0),
    (torch.bfloat16, 4096, 1, 64, 128, 8192, 1114.0),
    (torch.float32, 256, 1, 64, 128, 8192, 78.0),
    (torch.float32, 256, 2, 64, 128, 65536, 577.0),
]


def calc_diff(x: torch.Tensor, y: torch.Tensor) -> float:
    x, y = x.double(), y.double()
    denominator = (x * x + y * y).sum()
    return float(1 - 2 * (x * y).sum() / denominator) if denominator > 0 else 0.0


def per_key_fp8(x: torch.Tensor):
    scale = x.abs().float().amax(dim=-1).clamp(min=1e-4) / 448.0
    return (x.float() / scale.unsqueeze(-1)).to(E4M3), scale


def torch_head_sums(q, keys, scales, weights, out):
    """The plain-torch indexer: out[m, n] = sum_h weights[m, h] relu(q[m, h] . keys[n]) scales[n]."""
    step = max(1, (1 << 30) // max(1, q.shape[1] * keys.shape[0] * 4))
    for m0 in range(0, q.shape[0], step):
        s = torch.einsum("mhd,nd->mhn", q[m0:m0 + step].float(), keys.float())
        out[m0:m0 + step] = torch.einsum("mhn,mh->mn", s.relu_(), weights[m0:m0 + step]) * scales
    return out


def dense_ranges(seq, seq_kv, cp):
    if not cp:
        return (torch.zeros(seq, dtype=torch.int32, device="cuda"),
                (torch.arange(seq, device="cuda") + seq_kv - seq).int())
    half, ranks = seq // 2, seq_kv // seq
    rank = ranks // 3
    i = torch.arange(half, dtype=torch.int32, device="cuda")
    return (torch.zeros(seq, dtype=torch.int32, device="cuda"),
            torch.cat([rank * half + i, (2 * ranks - 1 - rank) * half + i]).int())


def bench_dense(libs, reps):
    return [dense_case(libs, reps, *case) for case in DENSE_CASES]


def dense_case(libs, reps, dtype, compressed, seq, seq_kv, heads, dim, cp, upstream_us):
    q = torch.randn(seq, heads, dim, device="cuda", dtype=torch.bfloat16).to(E4M3)
    kv = per_key_fp8(torch.randn(seq_kv, dim, device="cuda", dtype=torch.bfloat16))
    weights = torch.randn(seq, heads, device="cuda")
    ks, ke = dense_ranges(seq, seq_kv, cp)
    max_seqlen_k = int((ke - ks).max()) if compressed else 0
    args = ((q, None), kv, weights, ks, ke)
    kwargs = dict(clean_logits=not compressed, max_seqlen_k=max_seqlen_k, logits_dtype=dtype)
    cols = torch.arange(seq_kv, device="cuda")
    inside = (cols[None, :] >= ks[:, None]) & (cols[None, :] < ke[:, None])
    reference = torch.empty(seq, seq_kv, device="cuda")
    torch_ms = median_ms(lambda: torch_head_sums(q, kv[0], kv[1], weights, reference), max(3, reps // 5))
    reference.masked_fill_(~inside, 0)

    def expand(logits):
        if not compressed:
            return logits.float().masked_fill(~inside, 0)
        full = torch.zeros(seq, seq_kv, device="cuda")
        index = (ks[:, None] + torch.arange(logits.shape[1], device="cuda")[None, :]).long()
        keep = index < ke[:, None]
        rows = torch.arange(seq, device="cuda")[:, None].expand_as(index)
        full[rows[keep], index[keep]] = logits.float()[keep]
        return full

    name = (f"mqa_logits {str(dtype)[6:]:8} CMP={int(compressed)} SQ={seq} SK={seq_kv} H={heads} D={dim} "
            f"CP={int(cp)}")
    row = check_and_time(name, libs, "fp8_fp4_mqa_logits", args, kwargs, expand, reference, dtype, reps)
    row.update(torch_ms=torch_ms, upstream_recorded_us=upstream_us)
    return report(row)


def paged_inputs(batch, next_n, heads, dim, avg_len):
    lens = torch.randint(int(0.7 * avg_len), int(1.3 * avg_len), (batch,), device="cuda", dtype=torch.int32)
    blocks_per = (lens + 63) // 64
    total = int(blocks_per.sum())
    values, scales = per_key_fp8(torch.randn(total * 64, dim, device="cuda", dtype=torch.bfloat16))
    cache = torch.empty(total, 64 * (dim + 4), device="cuda", dtype=torch.uint8)
    cache[:, :64 * dim] = values.view(torch.uint8).view(total, 64 * dim)
    cache[:, 64 * dim:] = scales.view(total, 64).view(torch.uint8)
    table = torch.zeros(batch, int(blocks_per.max()), device="cuda", dtype=torch.int32)
    pool = torch.randperm(total, device="cuda").int()
    starts = torch.cat([torch.zeros(1, device="cuda", dtype=torch.long), blocks_per.cumsum(0)[:-1]])
    cols = torch.arange(table.shape[1], device="cuda")
    valid = cols[None, :] < blocks_per[:, None]
    table[valid] = pool[(starts[:, None] + cols[None, :])[valid]]
    ctx = ((lens[:, None] + 1) * torch.rand(batch, next_n, device="cuda")).int()
    ctx[:, -1] = lens
    q = torch.randn(batch, next_n, heads, dim, device="cuda", dtype=torch.bfloat16).to(E4M3)
    weights = torch.randn(batch * next_n, heads, device="cuda")
    return q, cache.view(total, 64, 1, dim + 4), values, scales, weights, ctx.contiguous(), table


def torch_paged(q, values, scales, weights, ctx, table, out):
    batch, next_n = q.shape[:2]
    for b in range(batch):
        n_blocks = int((ctx[b].max() + 63) // 64)
        rows = (table[b, :n_blocks].long()[:, None] * 64 + torch.arange(64, device="cuda")).flatten()
        torch_head_sums(q[b], values[rows], scales[rows], weights[b * next_n:(b + 1) * next_n],
                        out[b * next_n:(b + 1) * next_n, :rows.numel()])
    return out


def bench_paged(libs, reps):
    return [paged_case(libs, reps, *case) for case in PAGED_CASES]


def paged_case(libs, reps, dtype, batch, next_n, heads, dim, avg_len, upstream_us):
    q, cache, values, scales, weights, ctx, table = paged_inputs(batch, next_n, heads, dim, avg_len)
    max_len = table.shape[1] * 64
    inside = torch.arange(max_len, device="cuda")[None, :] < ctx.view(-1, 1)
    reference = torch.zeros(batch * next_n, max_len, device="cuda")
    torch_ms = median_ms(lambda: torch_paged(q, values, scales, weights, ctx, table, reference), 2)
    reference.masked_fill_(~inside, 0)
    name = f"paged_mqa_logits {str(dtype)[6:]:8} BSZ={batch} NextN={next_n} H={heads} D={dim} L={avg_len}"
    metas = [lib.get_paged_mqa_logits_metadata(ctx, 64, lib.get_num_sms()) if lib else None for lib in libs]
    row = check_and_time(name, libs, "fp8_fp4_paged_mqa_logits",
                         lambda i: ((q, None), cache, weights, ctx, table, metas[i], max_len),
                         dict(clean_logits=False, logits_dtype=dtype),
                         lambda logits: logits.float().masked_fill(~inside, 0), reference, dtype, reps)
    row.update(torch_ms=torch_ms, upstream_recorded_us=upstream_us)
    return report(row)


# (m, k, num_splits or 0) -> upstream's H200 time in us (n = 24).
HC_RECORDED = {
    (13, 28672, 0): 106.0, (13, 28672, 16): 10.0, (13, 7680, 0): 30.0, (13, 7680, 16): 6.0,
    (13, 7168, 0): 28.0, (13, 7168, 16): 4.0, (137, 28672, 0): 106.0, (137, 28672, 16): 10.0,
    (137, 7680, 0): 30.0, (137, 7680, 16): 7.0, (137, 7168, 0): 29.0, (137, 7168, 16): 5.0,
    (4096, 28672, 0): 108.0, (4096, 28672, 16): 80.0, (4096, 7680, 0): 32.0, (4096, 7680, 16): 45.0,
    (4096, 7168, 0): 30.0, (4096, 7168, 16): 34.0, (8192, 28672, 0): 123.0, (8192, 28672, 16): 147.0,
    (8192, 7680, 0): 42.0, (8192, 7680, 16): 83.0, (8192, 7168, 0): 40.0, (8192, 7168, 16): 61.0,
}
HC_CASES = [(m, 24, k, splits) for m in (13, 137, 4096, 8192) for k in (28672, 7680, 7168) for splits in (None, 16)]


def bench_hc(libs, reps):
    return [hc_case(libs, reps, *case) for case in HC_CASES]


def hc_case(libs, reps, m, n, k, splits):
    a = torch.randn(m, k, dtype=torch.bfloat16, device="cuda")
    b = torch.randn(n, k, device="cuda")
    d_shape = (m, n) if splits is None else (splits, m, n)
    s_shape = (m,) if splits is None else (splits, m)
    torch.backends.cuda.matmul.allow_tf32 = True
    try:
        reference = torch.cat([a.float() @ b.T, a.float().square().sum(-1, keepdim=True)], dim=1)
        torch_ms = median_ms(lambda: (a.float() @ b.T, a.float().square().sum(-1)), reps)
    finally:
        torch.backends.cuda.matmul.allow_tf32 = False
    outputs = [(torch.empty(d_shape, device="cuda"), torch.empty(s_shape, device="cuda")) for _ in libs]

    def expand_for(i):
        def expand(_):
            d, s = outputs[i]
            return torch.cat([d if splits is None else d.sum(0), (s if splits is None else s.sum(0))[:, None]], dim=1)
        return expand

    name = f"tf32_hc_prenorm_gemm m={m} n={n} k={k} num_splits={splits or 0}"
    row = dict(case=name)
    calls = []
    for i, (label, lib) in enumerate(zip(("ours", "upstream"), libs, strict=True)):
        if lib is None:
            continue
        d, s = outputs[i]
        call = (lambda lib=lib, d=d, s=s: lib.tf32_hc_prenorm_gemm(a, b, d, s, num_splits=splits))
        call()
        diff = calc_diff(expand_for(i)(None), reference)
        row[f"{label}_diff"] = diff
        if not diff < 1e-8:
            message = f"{name}: {label} differs from torch's TF32 result, calc_diff {diff:.3e} >= 1e-8"
            if label == "ours":
                sys.exit(message)
            print("WARNING: " + message, flush=True)
        calls.append(call)
    if len(calls) == 2:
        row["ours_ms"], row["upstream_ms"] = median_ms_pair(calls[0], calls[1], reps)
    else:
        row["ours_ms"] = median_ms(calls[0], reps)
    row.update(torch_ms=torch_ms, upstream_recorded_us=HC_RECORDED[(m, k, splits or 0)])
    return report(row)


# (expr, batch, m or h, n or r, k or d) -> upstream's H200 time in us (None: upstream's test
# shape without a recorded time, run against --upstream only).
EINSUM_RECORDED = {
    ("bmk,bnk->mn", 129, 128, 384, 128): 12.0, ("bmk,bnk->mn", 129, 256, 256, 256): 18.0,
    ("bmk,bnk->mn", 129, 384, 128, 384): 23.0, ("bmk,bnk->mn", 4096, 128, 384, 128): 139.0,
    ("bmk,bnk->mn", 4096, 256, 256, 256): 261.0, ("bmk,bnk->mn", 4096, 384, 128, 384): 399.0,
    ("bmk,bnk->mn", 8192, 128, 384, 128): 271.0, ("bmk,bnk->mn", 8192, 256, 256, 256): 507.0,
    ("bmk,bnk->mn", 8192, 384, 128, 384): 795.0,
    ("bhr,hdr->bhd", 4, 128, 512, 128): 9.0, ("bhr,hdr->bhd", 128, 128, 512, 128): 14.0,
    ("bhr,hdr->bhd", 8192, 128, 512, 128): 362.0, ("bhr,hdr->bhd", 4, 8, 4096, 1024): 25.0,
    ("bhr,hdr->bhd", 128, 8, 4096, 1024): 28.0, ("bhr,hdr->bhd", 8192, 8, 4096, 1024): 730.0,
    ("bhd,hdr->bhr", 4, 128, 512, 128): 9.0, ("bhd,hdr->bhr", 128, 128, 512, 128): 12.0,
    ("bhd,hdr->bhr", 8192, 128, 512, 128): 467.0, ("bhd,hdr->bhr", 4, 8, 4096, 1024): 25.0,
    ("bhd,hdr->bhr", 128, 8, 4096, 1024): 27.0, ("bhd,hdr->bhr", 8192, 8, 4096, 1024): 738.0,
    ("fp8 bhr,hdr->bhd", 4, 8, 4096, 1024): 15.0, ("fp8 bhr,hdr->bhd", 128, 8, 4096, 1024): 16.0,
    ("fp8 bhr,hdr->bhd", 8192, 8, 4096, 1024): 422.0,
    ("fp8 bhr,hdr->bhd", 32, 8, 4096, 1024): None, ("fp8 bhr,hdr->bhd", 4096, 8, 4096, 1024): None,
    ("fp8 bhr,hdr->bhd", 4, 128, 512, 128): None, ("fp8 bhr,hdr->bhd", 128, 128, 512, 128): None,
    ("fp8 bhr,hdr->bhd", 8192, 128, 512, 128): None,
}


def bench_einsum(libs, reps):
    return [einsum_case(libs, reps, *case) for case in EINSUM_RECORDED]


def einsum_case(libs, reps, expr, batch, x1, x2, x3):
    recorded = EINSUM_RECORDED[(expr, batch, x1, x2, x3)]
    fp8 = expr.startswith("fp8")
    if expr == "bmk,bnk->mn":
        m, n, k = x1, x2, x3
        a = torch.randn(batch, m, k, dtype=torch.bfloat16, device="cuda")
        b = torch.randn(batch, n, k, dtype=torch.bfloat16, device="cuda")
        reference = torch.bmm(a.float(), b.float().mT).sum(0)
        outputs = [torch.zeros(m, n, device="cuda") for _ in libs]
        make = [lambda lib=lib, d=d: lib.einsum(expr, a, b, d, c=d) for lib, d in zip(libs, outputs, strict=True)]
        torch_fn = lambda: torch.einsum("bmk,bnk->mn", a, b)  # noqa: E731

    else:
        h, r, dim = x1, x2, x3
        body = expr.removeprefix("fp8 ")
        x = torch.randn(batch, h, r if body.startswith("bhr") else dim, dtype=torch.bfloat16, device="cuda")
        y = torch.randn(h, dim, r + (0 if fp8 else 128), dtype=torch.bfloat16, device="cuda")[:, :, :r]
        reference = torch.einsum(body, x.float(), y.float())
        outputs = [torch.empty(reference.shape, dtype=torch.bfloat16, device="cuda") for _ in libs]
        if fp8:
            x_in = per_token_blocks(x)
            y_in = per_block_blocks(y)
            make = [lambda lib=lib, d=d: lib.fp8_einsum(body, x_in, y_in, d)
                    for lib, d in zip(libs, outputs, strict=True)]
        else:
            make = [lambda lib=lib, d=d: lib.einsum(body, x, y, d) for lib, d in zip(libs, outputs, strict=True)]
        torch_fn = lambda: torch.einsum(body, x, y)  # noqa: E731

    torch_ms = median_ms(torch_fn, reps)
    tolerance = 1e-3 if fp8 else 1e-5
    name = f"einsum {expr} b={batch} {x1}x{x2}x{x3}"
    row = dict(case=name)
    calls = []
    for i, (label, lib) in enumerate(zip(("ours", "upstream"), libs, strict=True)):
        if lib is None:
            continue
        make[i]()  # bmk accumulates into its zeroed d: one call leaves the sum
        diff = calc_diff(outputs[i], reference)
        row[f"{label}_diff"] = diff
        if not diff < tolerance:
            message = f"{name}: {label} differs from torch, calc_diff {diff:.3e} >= {tolerance:g}"
            if label == "ours":
                sys.exit(message)
            print("WARNING: " + message, flush=True)
        calls.append(make[i])
    if len(calls) == 2:
        row["ours_ms"], row["upstream_ms"] = median_ms_pair(calls[0], calls[1], reps)
    else:
        row["ours_ms"] = median_ms(calls[0], reps)
    row.update(torch_ms=torch_ms, upstream_recorded_us=recorded)
    return report(row)


def per_token_blocks(x):
    blocks = x.float().unflatten(-1, (-1, 128))
    scale = blocks.abs().amax(-1, keepdim=True).clamp(min=1e-4) / 448
    return (blocks / scale).to(E4M3).flatten(-2), scale.squeeze(-1)


def per_block_blocks(y):
    h, dim, r = y.shape
    blocks = y.float().reshape(h, dim // 128, 128, r // 128, 128)
    scale = blocks.abs().amax(dim=(2, 4), keepdim=True).clamp(min=1e-4) / 448
    return (blocks / scale).to(E4M3).view(h, dim, r), scale.view(h, dim // 128, r // 128)


def check_and_time(name, libs, function, args, kwargs, expand, reference, dtype, reps):
    """Each library's output against the torch reference, then the libraries timed in alternation."""
    tolerance = 2e-5 if dtype == torch.bfloat16 else 1e-6
    calls = []
    row = dict(case=name)
    for i, (label, lib) in enumerate(zip(("ours", "upstream"), libs, strict=True)):
        if lib is None:
            continue
        call_args = args(i) if callable(args) else args
        fn = getattr(lib, function)
        out = fn(*call_args, **kwargs)
        diff = calc_diff(expand(out), reference)
        row[f"{label}_diff"] = diff
        if not diff < tolerance:
            message = f"{name}: {label} differs from the torch reference, calc_diff {diff:.3e} >= {tolerance:g}"
            if label == "ours":
                sys.exit(message)
            print("WARNING: " + message, flush=True)
        calls.append(lambda fn=fn, call_args=call_args: fn(*call_args, **kwargs))
    if len(calls) == 2:
        row["ours_ms"], row["upstream_ms"] = median_ms_pair(calls[0], calls[1], reps)
    else:
        row["ours_ms"] = median_ms(calls[0], reps)
    return row


def report(row):
    line = f"{row['case']:70} ours {row['ours_ms'] * 1e3:8.1f} us"
    if "upstream_ms" in row:
        line += f" | upstream {row['upstream_ms'] * 1e3:8.1f} us ({row['upstream_ms'] / row['ours_ms']:5.2f}x)"
    line += f" | torch {row['torch_ms'] * 1e3:9.1f} us ({row['torch_ms'] / row['ours_ms']:6.1f}x)"
    if row["upstream_recorded_us"] is not None:
        line += f" | recorded upstream {row['upstream_recorded_us']:6.0f} us"
    print(line, flush=True)
    return row


FAMILIES = {"mqa": bench_dense, "paged": bench_paged, "hc": bench_hc, "einsum": bench_einsum}


def summarise(rows):
    """Geometric means of upstream / ours and torch / ours per function (above 1: ours faster)."""
    def geomean(values):
        return math.exp(sum(math.log(v) for v in values) / len(values)) if values else float("nan")

    def family(row):  # the function, and einsum's expression
        words = row["case"].split()
        return " ".join(words[:3] if words[1] == "fp8" else words[:2]) if words[0] == "einsum" else words[0]
    for name in sorted({family(row) for row in rows}):
        group = [row for row in rows if family(row) == name]
        versus_torch = geomean([r["torch_ms"] / r["ours_ms"] for r in group])
        line = f"{name:24} {len(group):2} cases: vs torch {versus_torch:6.2f}x"
        measured = [r["upstream_ms"] / r["ours_ms"] for r in group if "upstream_ms" in r]
        if measured:
            line += f", vs upstream {geomean(measured):5.2f}x (slowest {min(measured):4.2f}x)"
        recorded = geomean([r["upstream_recorded_us"] / (r["ours_ms"] * 1e3) for r in group
                            if r["upstream_recorded_us"] is not None])
        print(line + f", vs upstream's recorded times {recorded:5.2f}x", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    upstream.add_argument(parser)
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--json", help="write the rows here as JSON")
    parser.add_argument("--only", nargs="+", choices=sorted(FAMILIES), default=sorted(FAMILIES),
                        help="the function families to run (default: all)")
    args = parser.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.manual_seed(0)
    libs = load_libraries(args.upstream)
    print(f"ours: {libs[0].__path__[0]}" +
          (f"\nupstream: {libs[1].__path__[0]}" if libs[1] else "\nupstream: not given (--upstream)"))
    rows = [row for family in args.only for row in FAMILIES[family](libs, args.reps)]
    summarise(rows)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
