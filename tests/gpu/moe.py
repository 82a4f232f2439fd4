"""Operands and FP32 references for the grouped (MoE) GEMM tests and benchmarks."""
import torch

from deep_gemm import align, get_mk_alignment_for_contiguous_layout, per_block_cast_to_fp8, per_token_cast_to_fp8


def dequant_a(data: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    return data.float() * scales.repeat_interleave(128, dim=-1)


def dequant_b(data: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    n = data.shape[-2]
    return data.float() * scales.repeat_interleave(128, dim=-2).repeat_interleave(128, dim=-1)[..., :n, :]


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


def grouped_reference(a_deq: torch.Tensor, b_deq: torch.Tensor, m_indices: torch.Tensor) -> torch.Tensor:
    """D[r] = A[r] @ B[m_indices[r]]^T for rows with an expert; padding rows are NaN."""
    out = torch.full((a_deq.shape[0], b_deq.shape[1]), float("nan"), device="cuda")
    for g in range(b_deq.shape[0]):
        rows = (m_indices == g).nonzero().squeeze(1)
        out[rows] = a_deq[rows] @ b_deq[g].T
    return out


__all__ = ["cast_b", "contiguous_rows", "dequant_a", "dequant_b", "grouped_reference", "per_token_cast_to_fp8"]
