"""Operands and FP32 references for the grouped (MoE) GEMM tests and benchmarks."""
import torch

from deep_gemm import align, get_mk_alignment_for_contiguous_layout, per_block_cast_to_fp8, per_token_cast_to_fp8


def dequant_a(data: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    """Per (row, 128-K-block) scales; a partial last K-block's scale covers what exists."""
    return data.float() * scales.repeat_interleave(128, dim=-1)[..., :data.shape[-1]]


def dequant_b(data: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    n, k = data.shape[-2:]
    return data.float() * scales.repeat_interleave(128, dim=-2).repeat_interleave(128, dim=-1)[..., :n, :k]


def quant_rows(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """e4m3 copy of [MN, K] with one fp32 scale per (row, 128-K-block), K any size: the
    scales of recipe (1, 128) (A) and of 1D1D's B, computed here so the kernel tests do not
    depend on the package's casts."""
    mn, k = x.shape
    blocks = torch.nn.functional.pad(x.float(), (0, (-k) % 128)).view(mn, -1, 128)
    amax = blocks.abs().amax(dim=2).clamp(min=1e-4)
    data = (blocks * (448.0 / amax.unsqueeze(2))).to(torch.float8_e4m3fn).view(mn, -1)[:, :k].contiguous()
    return data, amax / 448.0


def cast_b(y: torch.Tensor):
    """Per-group 128x128 block cast of B [G, N, K]."""
    parts = [per_block_cast_to_fp8(y[g]) for g in range(y.shape[0])]
    return torch.stack([p[0] for p in parts]), torch.stack([p[1] for p in parts])


def contiguous_rows(num_groups: int, expected_m: int, gen: torch.Generator) -> tuple[list[int], torch.Tensor]:
    """Rows per expert (around expected_m) and m_indices with each segment aligned, padding -1."""
    alignment = get_mk_alignment_for_contiguous_layout()
    counts = [int(expected_m * (0.7 + 0.6 * torch.rand((), generator=gen).item())) for _ in range(num_groups)]
    counts[0] = max(counts[0], 1)
    m_indices = []
    for g, rows in enumerate(counts):
        m_indices += [g] * rows + [-1] * (align(rows, alignment) - rows)
    return counts, torch.tensor(m_indices, dtype=torch.int32, device="cuda")


def contiguous_reference(a_deq: torch.Tensor, b_deq: torch.Tensor, m_indices: torch.Tensor) -> torch.Tensor:
    """What the contiguous layout computes (upstream DeepGEMM's semantics): each 128-row
    tile with the expert of its first row, padding rows included; tiles that start with
    padding are not computed (NaN here)."""
    alignment = get_mk_alignment_for_contiguous_layout()
    tile_expert = m_indices.view(-1, alignment)[:, 0].repeat_interleave(alignment)
    return grouped_reference(a_deq, b_deq, tile_expert)


def grouped_reference(a_deq: torch.Tensor, b_deq: torch.Tensor, m_indices: torch.Tensor) -> torch.Tensor:
    """D[r] = A[r] @ B[m_indices[r]]^T for rows with an expert; padding rows are NaN."""
    out = torch.full((a_deq.shape[0], b_deq.shape[1]), float("nan"), device="cuda")
    for g in range(b_deq.shape[0]):
        rows = (m_indices == g).nonzero().squeeze(1)
        out[rows] = a_deq[rows] @ b_deq[g].T
    return out


__all__ = ["cast_b", "contiguous_reference", "contiguous_rows", "dequant_a", "dequant_b", "grouped_reference",
           "per_token_cast_to_fp8", "quant_rows"]


def per_column_fp8(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """e4m3 [K, MN] with one fp32 scale per 128 rows of each column ([K / 128, MN]): the
    per-channel scales of the K-grouped (weight-gradient) GEMMs, K a multiple of 128."""
    blocks = x.float().view(-1, 128, x.size(1))
    scale = blocks.abs().amax(dim=1).clamp(min=1e-4) / 448.0
    return (blocks / scale[:, None, :]).to(torch.float8_e4m3fn).view_as(x), scale


def dequant_columns(data: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    return (data.float().view(-1, 128, data.size(1)) * scales[:, None, :]).view(data.shape)


def k_grouped_fp8_operand(x: torch.Tensor, ks: list[int]):
    """(e4m3 data, scales) of [sum K, MN] as k_grouped_fp8_gemm_nt_contiguous takes it: each
    group's block K-major ([MN, k_g] flattened, one after another), scales [MN, sum K / 128]
    (transposed view); and the dequantised [sum K, MN] for references."""
    data, scales = per_column_fp8(x)
    blocks, start = [], 0
    for k in ks:
        blocks.append(data[start:start + k].T.flatten().view(torch.uint8))  # cat has no float8 kernel
        start += k
    flat = torch.cat(blocks).view(torch.float8_e4m3fn)
    return (flat, scales.T), dequant_columns(data, scales)
