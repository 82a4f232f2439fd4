"""Comparisons for tests: DeepGEMM's similarity error, byte counts, bitwise equality."""
from __future__ import annotations

import torch

__all__ = ["assert_bitwise_equal", "calc_diff", "count_bytes"]


def calc_diff(x: torch.Tensor, y: torch.Tensor) -> float:
    """DeepGEMM's similarity error: 1 - 2<x, y> / (|x|^2 + |y|^2), in float64.

    0 for identical tensors (and for two all-zero ones); kernels pass at < 1e-3
    against an FP32 reference.
    """
    x, y = x.double(), y.double()
    denominator = (x * x + y * y).sum()
    if denominator == 0:
        return 0.0
    return float(1 - 2 * (x * y).sum() / denominator)


def count_bytes(*tensors) -> int:
    """Bytes held by the tensors, recursing into tuples and lists and skipping None."""
    total = 0
    for t in tensors:
        if isinstance(t, (tuple, list)):
            total += count_bytes(*t)
        elif t is not None:
            total += t.numel() * t.element_size()
    return total


def assert_bitwise_equal(x: torch.Tensor, y: torch.Tensor, label: str = "") -> None:
    """AssertionError unless x and y have the same shape, dtype and bytes; it names the first differing element."""
    where = f" ({label})" if label else ""
    if x.shape != y.shape or x.dtype != y.dtype:
        raise AssertionError(f"bitwise mismatch{where}: {tuple(x.shape)} {x.dtype} against {tuple(y.shape)} {y.dtype}")
    x_bytes = x.contiguous().view(-1).view(torch.uint8)
    y_bytes = y.contiguous().view(-1).view(torch.uint8)
    differs = x_bytes != y_bytes
    if not bool(differs.any()):
        return
    first = int(differs.nonzero()[0].item())
    element, byte = divmod(first, x.element_size())
    coord = tuple(int(i) for i in torch.unravel_index(torch.tensor(element), tuple(x.shape)))
    raise AssertionError(
        f"bitwise mismatch{where}: {int(differs.sum().item())} of {differs.numel()} bytes differ; first at byte "
        f"{first} (element {element}, index {coord}, byte {byte}): {x_bytes[first].item()} against "
        f"{y_bytes[first].item()}, values {x.reshape(-1)[element].item()} against {y.reshape(-1)[element].item()}"
    )
