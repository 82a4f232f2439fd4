"""The sparse-attention indexer (fp8_fp4_mqa_logits, fp8_fp4_paged_mqa_logits) against a
plain-torch FP32 reference on the GPU: upstream DeepGEMM's test shapes and odd sizes.

The reference computes from the same e4m3 values and scales, so the kernel must agree
to FP32 rounding (bf16 logits: to bf16 rounding); it also meets upstream's own bounds
against the unquantised inputs. Entries the kernel must not write are poisoned first."""
import pytest
import torch

import deep_gemm
from deep_gemm.testing import calc_diff

E4M3 = torch.float8_e4m3fn


@pytest.fixture(autouse=True)
def exact_fp32_matmul():
    saved = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32 = saved


def per_key_fp8(x: torch.Tensor):
    """e4m3 values and one fp32 scale per row (amax / 448), as upstream's tests quantise keys."""
    scale = x.abs().float().amax(dim=-1).clamp(min=1e-4) / 448.0
    return (x.float() / scale.unsqueeze(-1)).to(E4M3), scale


def weighted_head_sums(q: torch.Tensor, keys: torch.Tensor, scales: torch.Tensor, weights: torch.Tensor):
    """sum_h weights[m, h] * relu(q[m, h] . keys[n]) * scales[n] for q [M, H, D], keys [N, D] (fp32)."""
    out = torch.empty(q.shape[0], keys.shape[0], device="cuda")
    step = max(1, (1 << 28) // max(1, q.shape[1] * keys.shape[0] * 4))
    for m0 in range(0, q.shape[0], step):
        s = torch.einsum("mhd,nd->mhn", q[m0:m0 + step].float(), keys.float())
        out[m0:m0 + step] = torch.einsum("mhn,mh->mn", s.relu(), weights[m0:m0 + step]) * scales
    return out


def check_close(out: torch.Tensor, ref: torch.Tensor, mask: torch.Tensor, bf16: bool, what: str):
    out = out.float().masked_fill(~mask, 0)
    ref = ref.masked_fill(~mask, 0)
    assert not out.isnan().any(), f"{what}: entries in range were never written"
    diff = calc_diff(out, ref)
    assert diff < (2e-5 if bf16 else 1e-7), f"{what}: calc_diff {diff:.3e} against the FP32 reference"
    return diff


# ---- prefill ----------------------------------------------------------------------

def causal_ranges(seq: int, seq_kv: int):
    ks = torch.zeros(seq, dtype=torch.int32, device="cuda")
    ke = torch.arange(seq, dtype=torch.int32, device="cuda") + (seq_kv - seq)
    return ks, ke


def context_parallel_ranges(seq: int, seq_kv: int):
    """Upstream's CP layout: two half-chunks of one rank among seq_kv / seq, starts all 0."""
    half, ranks = seq // 2, seq_kv // seq
    rank = ranks // 3
    i = torch.arange(half, dtype=torch.int32, device="cuda")
    ke = torch.cat([rank * half + i, (2 * ranks - 1 - rank) * half + i])
    return torch.zeros(seq, dtype=torch.int32, device="cuda"), ke.int()


def random_ranges(seq: int, seq_kv: int, seed: int):
    gen = torch.Generator(device="cuda").manual_seed(seed)
    a = torch.randint(-5, seq_kv + 5, (seq,), device="cuda", generator=gen, dtype=torch.int32)
    b = torch.randint(-5, seq_kv + 5, (seq,), device="cuda", generator=gen, dtype=torch.int32)
    return torch.minimum(a, b), torch.maximum(a, b)


def dense_inputs(seq, seq_kv, heads, dim, seed=0):
    gen = torch.Generator(device="cuda").manual_seed(seed)
    q = torch.randn(seq, heads, dim, device="cuda", dtype=torch.bfloat16, generator=gen)
    kv = torch.randn(seq_kv, dim, device="cuda", dtype=torch.bfloat16, generator=gen)
    weights = torch.randn(seq, heads, device="cuda", generator=gen)
    return q, kv, weights


def run_dense(seq, seq_kv, heads, dim, ranges, logits_dtype=torch.float32, compressed=False, seed=0):
    q, kv, weights = dense_inputs(seq, seq_kv, heads, dim, seed)
    ks, ke = ranges
    q_fp8 = q.to(E4M3)
    kv_fp8, kv_scale = per_key_fp8(kv)
    ref = weighted_head_sums(q_fp8, kv_fp8, kv_scale, weights)
    cols = torch.arange(seq_kv, device="cuda")
    inside = (cols[None, :] >= ks[:, None].long()) & (cols[None, :] < ke[:, None].long())
    bf16 = logits_dtype == torch.bfloat16
    what = f"seq={seq} seq_kv={seq_kv} H={heads} D={dim} {logits_dtype} compressed={compressed}"

    max_seqlen_k = int((ke.clamp(0, seq_kv) - ks.clamp(0, seq_kv)).clamp(min=0).max()) if compressed else 0
    call = dict(q=(q_fp8, None), kv=(kv_fp8, kv_scale), weights=weights, cu_seq_len_k_start=ks,
                cu_seq_len_k_end=ke, clean_logits=not compressed, max_seqlen_k=max_seqlen_k,
                logits_dtype=logits_dtype)
    logits = deep_gemm.fp8_fp4_mqa_logits(**call)
    assert logits.dtype == logits_dtype
    assert logits.stride(0) * logits.element_size() % 1024 == 0
    if compressed:
        assert logits.shape == (seq, max_seqlen_k)
        # Spread row i's columns back to keys ks[i] + c.
        full = torch.full((seq, seq_kv), float("-inf"), device="cuda")
        for i, (s, e) in enumerate(zip(ks.clamp(0, seq_kv).tolist(), ke.clamp(0, seq_kv).tolist(), strict=True)):
            if e > s:
                full[i, s:e] = logits[i, :e - s].float()
        logits_full = full
    else:
        assert logits.shape == (seq, seq_kv)
        logits_full = logits.float()
        assert torch.equal(logits_full == float("-inf"), ~inside), f"{what}: -inf exactly outside [ks, ke)"
    diff = check_close(logits_full, ref, inside, bf16, what)

    # Upstream's bounds: against the unquantised inputs, and bitwise repeatable.
    upstream = weighted_head_sums(q.float(), kv.float(), torch.ones(seq_kv, device="cuda"), weights)
    assert calc_diff(logits_full.masked_fill(~inside, 0), upstream.masked_fill(~inside, 0)) < 1e-3, what
    again = deep_gemm.fp8_fp4_mqa_logits(**call)
    if compressed:
        keep = torch.arange(max_seqlen_k, device="cuda")[None, :] < (ke.clamp(0, seq_kv) - ks.clamp(0, seq_kv))[:, None]
        assert torch.equal(again.masked_fill(~keep, 0), logits.masked_fill(~keep, 0)), what
    else:
        assert torch.equal(again, logits), f"{what}: not bitwise repeatable"
    return diff


UPSTREAM_DENSE = [(seq, seq_kv, heads, dim) for seq in (2048,) for seq_kv in (8192,) for heads in (32, 64)
                  for dim in (32, 64, 128)]


@pytest.mark.parametrize("seq, seq_kv, heads, dim", UPSTREAM_DENSE)
@pytest.mark.parametrize("logits_dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("layout", ["causal", "cp"])
def test_mqa_logits_upstream_shapes(seq, seq_kv, heads, dim, logits_dtype, layout):
    ranges = causal_ranges(seq, seq_kv) if layout == "causal" else context_parallel_ranges(seq, seq_kv)
    run_dense(seq, seq_kv, heads, dim, ranges, logits_dtype)


@pytest.mark.parametrize("heads, dim", [(32, 128), (64, 64)])
def test_mqa_logits_compressed(heads, dim):
    run_dense(2048, 8192, heads, dim, context_parallel_ranges(2048, 8192), compressed=True)
    run_dense(1000, 3000, heads, dim, random_ranges(1000, 3000, seed=3), torch.bfloat16, compressed=True)


@pytest.mark.parametrize("seq, seq_kv", [(1, 1), (3, 64), (37, 1000), (130, 129), (555, 4097)])
@pytest.mark.parametrize("heads, dim", [(32, 32), (64, 128)])
def test_mqa_logits_odd_sizes(seq, seq_kv, heads, dim):
    """Query blocks cut by seq_len, key tiles by seq_len_kv, ranges out of bounds or empty."""
    run_dense(seq, seq_kv, heads, dim, random_ranges(seq, seq_kv, seed=seq))


def test_mqa_logits_long_keys():
    """One of upstream's 65536-key shapes (the longest rows: 1000+ tiles per query block)."""
    run_dense(2048, 65536, 64, 32, causal_ranges(2048, 65536))


def test_fp8_mqa_logits_legacy_name():
    q, kv, weights = dense_inputs(64, 256, 32, 64)
    ks, ke = causal_ranges(64, 256)
    kv_in = per_key_fp8(kv)
    a = deep_gemm.fp8_mqa_logits(q.to(E4M3), kv_in, weights, ks, ke)
    b = deep_gemm.fp8_fp4_mqa_logits((q.to(E4M3), None), kv_in, weights, ks, ke)
    assert a.dtype == torch.float32 and torch.equal(a, b)


# ---- decode over a paged cache -----------------------------------------------------

def paged_inputs(batch, next_n, heads, dim, avg_len, seed=0, empty_every=0):
    gen = torch.Generator(device="cuda").manual_seed(seed)
    lens = torch.randint(int(0.7 * avg_len), int(1.3 * avg_len) + 1, (batch,), device="cuda", generator=gen,
                         dtype=torch.int32)
    blocks_per = (lens + 63) // 64
    width = int(blocks_per.max())
    total = int(blocks_per.sum())
    keys = torch.randn(total * 64, dim, device="cuda", dtype=torch.bfloat16, generator=gen)
    values, scales = per_key_fp8(keys)
    cache = torch.empty(total, 64 * (dim + 4), device="cuda", dtype=torch.uint8)
    cache[:, :64 * dim] = values.view(torch.uint8).view(total, 64 * dim)
    cache[:, 64 * dim:] = scales.view(total, 64).view(torch.uint8)
    cache = cache.view(total, 64, 1, dim + 4)
    table = torch.zeros(batch, width, device="cuda", dtype=torch.int32)
    pool = torch.randperm(total, device="cuda", generator=gen).int()
    start = 0
    for b, n in enumerate(blocks_per.tolist()):
        table[b, :n] = pool[start:start + n]
        start += n
    # Draft positions see growing prefixes; the last one the whole context.
    frac = torch.rand(batch, next_n, device="cuda", generator=gen)
    ctx = ((lens[:, None] + 1) * frac).int()
    ctx[:, -1] = lens
    if empty_every:
        ctx[::empty_every] = 0
    q = torch.randn(batch, next_n, heads, dim, device="cuda", dtype=torch.bfloat16, generator=gen)
    weights = torch.randn(batch * next_n, heads, device="cuda", generator=gen)
    return q.to(E4M3), cache, values, scales, weights, ctx.contiguous(), table, width * 64


def paged_reference(q, values, scales, weights, ctx, table, max_len):
    batch, next_n, heads, dim = q.shape
    ref = torch.zeros(batch * next_n, max_len, device="cuda")
    for b in range(batch):
        n_blocks = int((ctx[b].max() + 63) // 64)
        rows = (table[b, :n_blocks].long()[:, None] * 64 + torch.arange(64, device="cuda")).flatten()
        sums = weighted_head_sums(q[b], values[rows], scales[rows], weights[b * next_n:(b + 1) * next_n])
        ref[b * next_n:(b + 1) * next_n, :sums.shape[1]] = sums
    return ref


def run_paged(batch, next_n, heads, dim, avg_len, logits_dtype=torch.float32, clean=False, seed=0, empty_every=0):
    q, cache, values, scales, weights, ctx, table, max_len = paged_inputs(batch, next_n, heads, dim, avg_len, seed,
                                                                          empty_every)
    ref = paged_reference(q, values, scales, weights, ctx, table, max_len)
    inside = torch.arange(max_len, device="cuda")[None, :] < ctx.view(-1, 1)
    meta = deep_gemm.get_paged_mqa_logits_metadata(ctx, 64, deep_gemm.get_num_sms())
    assert meta.shape == (deep_gemm.get_num_sms() + 1, 2) and meta.dtype == torch.int32
    call = dict(q=(q, None), kv_cache=cache, weights=weights, context_lens=ctx, block_table=table,
                schedule_meta=meta, max_context_len=max_len, clean_logits=clean, logits_dtype=logits_dtype)
    logits = deep_gemm.fp8_fp4_paged_mqa_logits(**call)
    what = f"batch={batch} next_n={next_n} H={heads} D={dim} L={avg_len} {logits_dtype}"
    assert logits.shape == (batch * next_n, max_len) and logits.dtype == logits_dtype
    if clean:
        assert torch.equal(logits.float() == float("-inf"), ~inside), f"{what}: -inf exactly past each context"
    diff = check_close(logits, ref, inside, logits_dtype == torch.bfloat16, what)
    again = deep_gemm.fp8_fp4_paged_mqa_logits(**call)
    assert torch.equal(again.masked_fill(~inside, 0), logits.masked_fill(~inside, 0)), f"{what}: not repeatable"
    return diff


@pytest.mark.parametrize("batch, next_n, heads, avg_len", [
    (256, 1, 32, 8192), (256, 2, 32, 8192), (256, 1, 64, 8192), (256, 2, 64, 8192), (64, 2, 64, 65536)])
@pytest.mark.parametrize("logits_dtype", [torch.float32, torch.bfloat16])
def test_paged_mqa_logits_upstream_shapes(batch, next_n, heads, avg_len, logits_dtype):
    run_paged(batch, next_n, heads, 128, avg_len, logits_dtype)


@pytest.mark.parametrize("batch, next_n, heads, dim, avg_len", [
    (1, 1, 32, 128, 10), (3, 3, 32, 64, 300), (5, 4, 64, 128, 1000), (7, 8, 32, 32, 700), (2, 1, 64, 64, 64),
    (300, 1, 64, 128, 100)])
def test_paged_mqa_logits_odd_sizes(batch, next_n, heads, dim, avg_len):
    """Chunked columns (next_n x heads of 96, 256), short contexts, more parts than tiles, clean_logits."""
    run_paged(batch, next_n, heads, dim, avg_len, clean=True, seed=batch)


@pytest.mark.parametrize("next_n, heads, empty_every", [(1, 64, 3), (2, 64, 2), (3, 32, 5)])
def test_paged_mqa_logits_batches_shorter_than_a_cta(next_n, heads, empty_every):
    """Batches of one or two tiles and empty ones: a CTA's units take turns over batches shorter
    than the CTA, so each unit skips some, and parts hold many batches."""
    run_paged(700, next_n, heads, 64, 60, clean=True, seed=empty_every, empty_every=empty_every)


def test_paged_mqa_logits_schedule_covers_every_tile():
    """Parts start in batch order, each at a tile inside its batch, and end at (batch, 0)."""
    _, _, _, _, _, ctx, _, _ = paged_inputs(97, 2, 32, 64, 3000, seed=5)
    parts = 132
    meta = deep_gemm.get_paged_mqa_logits_metadata(ctx, 64, parts).cpu()
    tiles = ((ctx.max(dim=1).values + 63) // 64).cpu()
    starts = torch.cat([torch.zeros(1, dtype=torch.long), tiles.cumsum(0)])
    linear = [int(starts[b]) + int(t) if b < len(tiles) else int(starts[-1]) for b, t in meta.tolist()]
    total = int(tiles.sum())
    assert linear == [p * total // parts for p in range(parts)] + [total]
    assert meta[-1].tolist() == [97, 0]


def test_paged_mqa_logits_in_a_cuda_graph():
    q, cache, _, _, weights, ctx, table, max_len = paged_inputs(32, 2, 64, 128, 2000, seed=9)
    eager_meta = deep_gemm.get_paged_mqa_logits_metadata(ctx, 64, deep_gemm.get_num_sms())
    eager = deep_gemm.fp8_paged_mqa_logits(q, cache, weights, ctx, table, eager_meta, max_len)
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.stream(stream):
        deep_gemm.fp8_paged_mqa_logits(q, cache, weights, ctx, table, eager_meta, max_len)  # warm-up (JIT)
        with torch.cuda.graph(graph, stream=stream):
            meta = deep_gemm.get_paged_mqa_logits_metadata(ctx, 64, deep_gemm.get_num_sms())
            captured = deep_gemm.fp8_paged_mqa_logits(q, cache, weights, ctx, table, meta, max_len)
    graph.replay()
    torch.cuda.synchronize()
    inside = torch.arange(max_len, device="cuda")[None, :] < ctx.view(-1, 1)
    assert torch.equal(captured.masked_fill(~inside, 0), eager.masked_fill(~inside, 0))
    assert torch.equal(meta, eager_meta)
