"""Which CPythons the fleet builds for, derived from ONE place.

The single source of truth is ``project.requires-python`` in the root
``pyproject.toml``. It is resolved here with ``packaging`` exactly the way
cibuildwheel 4.x's build selector resolves it (a build identifier ``cpXY`` is
kept when ``X.Y.99`` satisfies the specifier set), against the CPython build
identifiers that cibuildwheel knows for ``manylinux_x86_64``.

Both the local build image (tools/image/build_image.py: which interpreters go
into /opt/python) and the fleet driver (tools/fleet: which wheels to expect)
use this module, so adding 3.14 / 3.14t (issue 7) is a one-line change to
Requires-Python, plus the interpreter on the host.
"""

from __future__ import annotations

import dataclasses
import os
import re
import sys
import tomllib
from pathlib import Path

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import Version

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cpython"))
import sid_python  # noqa: E402

# CPython build identifiers (without the platform part) that cibuildwheel 4.3
# builds for manylinux_x86_64 by default, oldest first. cp313t is left out on
# purpose: cibuildwheel only builds it with `enable = ["cpython-freethreading"]`
# (and cp316, a pre-release, with `enable = ["cpython-prerelease"]`).
# tests/fleet/test_cpythons.py checks this against cibuildwheel's own table.
CIBUILDWHEEL_CPYTHONS: tuple[str, ...] = (
    "cp39",
    "cp310",
    "cp311",
    "cp312",
    "cp313",
    "cp314",
    "cp314t",
    "cp315",
    "cp315t",
)

# cibuildwheel runs its own helpers with /opt/python/cp39-cp39/bin/python
# (OCIContainer.UTILITY_PYTHON and before-all's PATH), so the image carries
# 3.9 whatever Requires-Python says.
UTILITY_CPYTHON = "cp39"

DEFAULT_PYENV_ROOT = Path("/root/.pyenv")


class CPythonError(Exception):
    """A Requires-Python or host-interpreter problem, with a message that says what to do."""


@dataclasses.dataclass(frozen=True, order=True)
class CPython:
    """One CPython build target, e.g. ``cp312`` or ``cp314t``."""

    major: int
    minor: int
    free_threaded: bool = False

    @classmethod
    def from_tag(cls, tag: str) -> CPython:
        m = re.fullmatch(r"cp(\d)(\d+)(t?)", tag)
        if not m:
            raise CPythonError(f"not a CPython tag: {tag!r} (expected e.g. 'cp312' or 'cp314t')")
        return cls(int(m.group(1)), int(m.group(2)), m.group(3) == "t")

    @classmethod
    def from_version(cls, text: str) -> CPython:
        """'3.12' -> cp312, '3.14t' -> cp314t (the spelling of --pythons)."""
        m = re.fullmatch(r"(\d)\.(\d+)(t?)", text.strip())
        if not m:
            raise CPythonError(f"not a CPython version: {text!r} (expected e.g. '3.12' or '3.14t')")
        return cls(int(m.group(1)), int(m.group(2)), m.group(3) == "t")

    @property
    def tag(self) -> str:
        """The wheel's python tag: cp312 (free-threaded builds share it)."""
        return f"cp{self.major}{self.minor}"

    @property
    def abi(self) -> str:
        """The wheel's ABI tag: cp312, cp314t."""
        return f"{self.tag}{'t' if self.free_threaded else ''}"

    @property
    def version(self) -> str:
        return f"{self.major}.{self.minor}{'t' if self.free_threaded else ''}"

    @property
    def opt_dir(self) -> str:
        """The manylinux location: /opt/python/cp312-cp312, /opt/python/cp314-cp314t."""
        return f"/opt/python/{self.tag}-{self.abi}"

    @property
    def identifier(self) -> str:
        """cibuildwheel's build identifier for manylinux x86_64."""
        return f"{self.abi}-manylinux_x86_64"

    def __str__(self) -> str:
        return self.abi


def read_requires_python(pyproject: Path) -> SpecifierSet:
    """``project.requires-python`` of *pyproject*, parsed; fails closed when absent."""
    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CPythonError(
            f"{pyproject}: not found; the fleet reads the CPython list from its "
            "[project] requires-python"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise CPythonError(f"{pyproject}: invalid TOML: {exc}") from None
    text = data.get("project", {}).get("requires-python")
    if not text:
        raise CPythonError(
            f"{pyproject}: [project] requires-python is missing; the fleet builds one "
            "wheel per CPython it allows, so it must be set (e.g. '>=3.10,<3.14')"
        )
    return parse_requires_python(text, source=str(pyproject))


def parse_requires_python(text: str, source: str = "requires-python") -> SpecifierSet:
    try:
        return SpecifierSet(text)
    except InvalidSpecifier:
        raise CPythonError(f"{source}: invalid requires-python {text!r}") from None


def build_cpythons(spec: SpecifierSet) -> list[CPython]:
    """The CPythons cibuildwheel will build for *spec*, oldest first.

    Same rule as cibuildwheel's BuildSelector: keep ``cpXY`` when ``X.Y.99``
    is in *spec*.
    """
    out = []
    for tag in CIBUILDWHEEL_CPYTHONS:
        py = CPython.from_tag(tag)
        if spec.contains(Version(f"{py.major}.{py.minor}.99")):
            out.append(py)
    if not out:
        raise CPythonError(
            f"requires-python {str(spec)!r} selects none of the CPythons cibuildwheel builds "
            f"({', '.join(CIBUILDWHEEL_CPYTHONS)})"
        )
    return out


# Why the local image cannot have a CPython (None: it can). Debian has no free-threaded
# 3.14/3.15 binary and no 3.14+ source is reachable here (tools/cpython/README.md).
FREE_THREADED_NOT_LOCAL = (
    "no free-threaded CPython binary or source reachable on this machine: "
    ".github/workflows/wheels.yml builds it on the official manylinux image"
)


def not_local_reason(py: CPython) -> str | None:
    return FREE_THREADED_NOT_LOCAL if py.free_threaded else None


def image_cpythons(spec: SpecifierSet) -> list[CPython]:
    """The build CPythons the local image can have, plus cibuildwheel's utility CPython (3.9), sorted."""
    pys = {py for py in build_cpythons(spec) if not_local_reason(py) is None}
    pys.add(CPython.from_tag(UTILITY_CPYTHON))
    return sorted(pys)


def select_subset(all_pys: list[CPython], wanted: list[str]) -> list[CPython]:
    """Pick ``--pythons 3.12 3.13`` out of *all_pys*; refuse versions outside it."""
    chosen = []
    for text in wanted:
        py = CPython.from_version(text)
        if py not in all_pys:
            raise CPythonError(
                f"--pythons {text}: not allowed by requires-python "
                f"(it selects {', '.join(p.version for p in all_pys)})"
            )
        if py not in chosen:
            chosen.append(py)
    return sorted(chosen)


def pyenv_root() -> Path:
    return Path(os.environ.get("PYENV_ROOT") or DEFAULT_PYENV_ROOT)


def sid_provided(py: CPython) -> bool:
    """CPythons this machine runs from Debian sid's binaries (tools/cpython/sid_python.py)."""
    return not py.free_threaded and py.version in sid_python.DEBIAN_VERSIONS


def ensure_host_interpreters(pys: list[CPython]) -> None:
    """Make the sid-provided ones of *pys* that pyenv lacks (cached after the first time)."""
    for py in pys:
        if sid_provided(py) and not _pyenv_installs(py):
            try:
                sid_python.ensure(sid_python.make_plan(py.version))
            except sid_python.SidPythonError as exc:
                raise CPythonError(f"CPython {py.version} from Debian sid: {exc}") from None


def _pyenv_installs(py: CPython, root: Path | None = None) -> list[tuple[int, Path]]:
    versions = (root or pyenv_root()) / "versions"
    pattern = re.compile(rf"{py.major}\.{py.minor}\.(\d+){'t' if py.free_threaded else ''}")
    found = []
    if versions.is_dir():
        for child in versions.iterdir():
            m = pattern.fullmatch(child.name)
            if m and (child / "bin" / f"python{py.major}.{py.minor}").exists():
                found.append((int(m.group(1)), child))
    return found


def host_interpreter(py: CPython, root: Path | None = None, sid_root: Path | None = None) -> tuple[str, Path]:
    """The host's install for *py*: (full version, prefix). A pyenv install (newest patch)
    first, else Debian sid's binaries when made (ensure_host_interpreters makes them).

    Free-threaded installs are pyenv's ``3.14.0t``; the others must not end in 't'.
    """
    found = _pyenv_installs(py, root)
    if found:
        _, prefix = max(found)
        return prefix.name, prefix
    if sid_provided(py):
        plan = sid_python.make_plan(py.version, sid_root)
        if not sid_python.cached(plan):
            raise CPythonError(
                f"CPython {py.version} comes from Debian sid's binaries here and is not made yet: "
                f"`python tools/cpython/sid_python.py --version {py.version} --print-prefix` "
                "(make test-deps and the image stage run it)"
            )
        return plan.full_version, plan.prefix

    versions = (root or pyenv_root()) / "versions"
    raise CPythonError(
        f"CPython {py.version} is needed (requires-python, or cibuildwheel's own 3.9) but "
        f"there is no {versions}/{py.major}.{py.minor}.N{'t' if py.free_threaded else ''} "
        f"with bin/python{py.major}.{py.minor}; install it with "
        f"`pyenv install {py.major}.{py.minor}{'t' if py.free_threaded else ''}` "
        "or narrow requires-python"
    )
