"""Process-wide settings, with DeepGEMM's names: what each one does in this package.

DeepGEMM keeps these in its C++ runtime; here the SM count lives in `_C` (the kernels'
launch code reads it) and everything else in this module, the one place it is set
and read. Settings DeepGEMM uses for kernels this package does not have are kept and
returned, so code that sets them runs unchanged, and are documented as such.
"""
from __future__ import annotations

from ._loader import _C

__all__ = [
    "get_k_alignment_for_contiguous_layout",
    "get_m_alignment_for_contiguous_layout",
    "get_mk_alignment_for_contiguous_layout",
    "get_num_sms",
    "get_pdl",
    "get_tc_util",
    "get_theoretical_mk_alignment_for_contiguous_layout",
    "set_block_size_multiple_of",
    "set_ignore_compile_dims",
    "set_mk_alignment_for_contiguous_layout",
    "set_num_sms",
    "set_pdl",
    "set_tc_util",
]

# The SM90 kernels tile M (and the k-grouped kernels K) in 128-row blocks, and the
# contiguous layout's blocks may not mix experts: a segment alignment must be a
# multiple of this. DeepGEMM's SM90 default and theoretical alignment are 128 as well.
_SM90_BLOCK = 128

_mk_alignment = _SM90_BLOCK
_pdl = False
_tc_util = 0
_ignore_compile_dims = False
_block_size_multiple_of = (1, 1)


def _require_int(function: str, name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{function}: {name} must be an int, got {type(value).__name__}")
    return value


def get_num_sms() -> int:
    """SMs the kernels may use on the current device (all of them unless set_num_sms lowered it)."""
    return _C.get_num_sms()


def set_num_sms(num_sms: int) -> None:
    """Limit the SMs the kernels use (persistent grids are sized from it)."""
    _C.set_num_sms(num_sms)


def get_mk_alignment_for_contiguous_layout() -> int:
    """Rows (M-grouped) or K (K-grouped) of each group's segment are aligned to this (default 128)."""
    return _mk_alignment


def set_mk_alignment_for_contiguous_layout(new_value: int) -> None:
    """Set the segment alignment that the PSUM layout and the K-grouped GEMMs assume.

    Only positive multiples of 128 are accepted: the SM90 kernels here work on
    128-row blocks that may not straddle two groups (DeepGEMM's SM90 kernels need
    the same; its smaller values are for SM100).
    """
    global _mk_alignment
    value = _require_int("set_mk_alignment_for_contiguous_layout", "new_value", new_value)
    if value <= 0 or value % _SM90_BLOCK != 0:
        raise ValueError(f"set_mk_alignment_for_contiguous_layout: the SM90 kernels need a positive multiple of "
                         f"{_SM90_BLOCK}, got {value}")
    _mk_alignment = value


def get_theoretical_mk_alignment_for_contiguous_layout(expected_m: int | None = None) -> int:
    """The best alignment for `expected_m` rows per group: 128 on SM90, whatever `expected_m` is."""
    if expected_m is not None:
        _require_int("get_theoretical_mk_alignment_for_contiguous_layout", "expected_m", expected_m)
    return _SM90_BLOCK


# DeepGEMM's aliases of the same setting.
get_m_alignment_for_contiguous_layout = get_mk_alignment_for_contiguous_layout
get_k_alignment_for_contiguous_layout = get_mk_alignment_for_contiguous_layout


def set_pdl(new_enable_pdl: bool) -> None:
    """Record whether kernels may use programmatic dependent launch.

    Kept for compatibility: this package's kernels launch without PDL either way.
    """
    global _pdl
    _pdl = bool(new_enable_pdl)


def get_pdl() -> bool:
    """The value set_pdl recorded (False by default)."""
    return _pdl


def set_tc_util(new_tc_util: int) -> None:
    """Record a tensor-core utilisation target in percent (0 means 100), as DeepGEMM takes it.

    Kept for compatibility: this package's kernels do not throttle to it.
    """
    global _tc_util
    value = _require_int("set_tc_util", "new_tc_util", new_tc_util)
    if not 0 <= value <= 100:
        raise ValueError(f"set_tc_util: new_tc_util must lie in [0, 100], got {value}")
    _tc_util = value


def get_tc_util() -> int:
    """The utilisation target in percent: 100 unless set_tc_util set another."""
    return _tc_util or 100


def set_ignore_compile_dims(new_value: bool) -> None:
    """Record DeepGEMM's switch that stops compiling problem dims into kernels.

    Kept for compatibility: this package's `compiled_dims` arguments have no effect either
    (its kernels take every problem dimension at run time).
    """
    global _ignore_compile_dims
    _ignore_compile_dims = bool(new_value)


def set_block_size_multiple_of(new_value: int | tuple[int, int]) -> None:
    """Record DeepGEMM's constraint on the tile sizes its heuristic may pick (one int or (m, n)).

    Kept for compatibility: this package's tile heuristic does not read it.
    """
    global _block_size_multiple_of
    pair = (new_value, new_value) if isinstance(new_value, int) else tuple(new_value)
    if len(pair) != 2 or any(isinstance(v, bool) or not isinstance(v, int) or v <= 0 for v in pair):
        raise ValueError(f"set_block_size_multiple_of: expected a positive int or a pair of them, got {new_value!r}")
    _block_size_multiple_of = pair
