"""Which CPython ABIs a wheel must carry, from a Requires-Python specifier.

An open-ended range (no upper bound, e.g. ">=3.10") is resolved against RELEASED_MINORS,
data kept here and printed in every report, so the answer never depends on the machine.
CPython before 3.8 used the "m" ABI flag (cp37m); ranges reaching below 3.8 are refused.
Free-threaded builds are a separate ABI (cp314t, EXT_SUFFIX .cpython-314t-...): they are
required only when asked for, for minors from FREE_THREADED_SINCE on (PEP 779 made the
free-threaded build supported in 3.14; 3.13t was experimental).
"""

from __future__ import annotations

from dataclasses import dataclass

from packaging.specifiers import SpecifierSet

# Final releases of CPython minors, oldest first. Update when a new minor is released.
RELEASED_MINORS: tuple[tuple[int, int], ...] = (
    (3, 8),  # 2019-10-14
    (3, 9),  # 2020-10-05
    (3, 10),  # 2021-10-04
    (3, 11),  # 2022-10-24
    (3, 12),  # 2023-10-02
    (3, 13),  # 2024-10-07
    (3, 14),  # 2025-10-07
    (3, 15),  # 2026-10 (scheduled 2026-10-01 in PEP 790)
)
OLDEST_SUPPORTED = RELEASED_MINORS[0]
FREE_THREADED_SINCE = (3, 14)


@dataclass(frozen=True)
class PythonRange:
    spec: str
    minors: tuple[tuple[int, int], ...]
    open_ended: bool  # admits versions newer than the newest minor known here
    abis: tuple[str, ...]  # e.g. ("cp310", "cp311", "cp314", "cp314t")


def _minor_range(minor: tuple[int, int]) -> SpecifierSet:
    return SpecifierSet(f"=={minor[0]}.{minor[1]}.*")


def resolve(spec: SpecifierSet, *, free_threaded: bool = False) -> PythonRange:
    """Raise ValueError when the range is empty or reaches below OLDEST_SUPPORTED."""
    admitted = spec.to_range()
    below = SpecifierSet(f"<{OLDEST_SUPPORTED[0]}.{OLDEST_SUPPORTED[1]}").to_range()
    if not admitted.is_disjoint(below):
        raise ValueError(
            f"{spec} admits CPython older than {OLDEST_SUPPORTED[0]}.{OLDEST_SUPPORTED[1]},"
            " which this tool does not check"
        )
    minors = tuple(
        m for m in RELEASED_MINORS if not admitted.is_disjoint(_minor_range(m).to_range())
    )
    if not minors:
        raise ValueError(f"{spec} admits no released CPython minor")
    newest = RELEASED_MINORS[-1]
    open_ended = not admitted.is_disjoint(SpecifierSet(f">={newest[0]}.{newest[1] + 1}").to_range())
    abis: list[str] = []
    for major, minor in minors:
        abis.append(f"cp{major}{minor}")
        if free_threaded and (major, minor) >= FREE_THREADED_SINCE:
            abis.append(f"cp{major}{minor}t")
    return PythonRange(str(spec), minors, open_ended, tuple(abis))
