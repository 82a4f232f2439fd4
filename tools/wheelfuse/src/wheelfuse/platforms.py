"""Platform tags: which ones can share a wheel, and which of them is most restrictive.

`packaging` parses tags but has no public API that splits a platform tag into family,
version and architecture, so the few shapes a merge meets are read here:
`manylinux_X_Y_arch` and `musllinux_X_Y_arch` (PEP 600 / 656), the legacy manylinux
aliases, `macosx_X_Y_arch`; any other tag (`win_amd64`, `linux_x86_64` ...) is its own
family with no level, so it only merges with exactly the same tag.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

# PEP 600: the legacy names are aliases for these glibc levels.
LEGACY_MANYLINUX = {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}

_VERSIONED = re.compile(
    r"^(?P<family>manylinux|musllinux|macosx)_(?P<major>\d+)_(?P<minor>\d+)_(?P<arch>.+)$"
)
_LEGACY = re.compile(r"^(?P<family>manylinux1|manylinux2010|manylinux2014)_(?P<arch>.+)$")


@dataclass(frozen=True)
class Platform:
    tag: str
    family: str  # "manylinux", "musllinux", "macosx", or the tag itself
    arch: str
    level: tuple[int, ...]  # higher = needs a newer system; () when the family has none

    @property
    def key(self) -> tuple[str, str]:
        """Platforms with equal keys may share a wheel."""
        return (self.family, self.arch)


def parse_platform(tag: str) -> Platform:
    if m := _VERSIONED.match(tag):
        return Platform(tag, m["family"], m["arch"], (int(m["major"]), int(m["minor"])))
    if m := _LEGACY.match(tag):
        return Platform(tag, "manylinux", m["arch"], LEGACY_MANYLINUX[m["family"]])
    return Platform(tag, tag, "", ())


def wheel_level(platforms: Iterable[Platform]) -> tuple[int, ...]:
    """A wheel tagged with several levels installs where the least demanding one holds."""
    return min(p.level for p in platforms)


def most_restrictive(per_wheel: list[frozenset[Platform]]) -> frozenset[Platform]:
    """Platform tags for a wheel holding all of these wheels' binaries.

    The result claims the highest of the wheels' levels, keeping every spelling of that
    level that an input used (e.g. both manylinux_2_17_x86_64 and manylinux2014_x86_64).
    """
    level = max(wheel_level(p) for p in per_wheel)
    return frozenset(p for group in per_wheel for p in group if p.level == level)
