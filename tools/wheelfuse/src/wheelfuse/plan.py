"""The merge plan: decide, before anything is written, what the merged wheel holds.

Rules (each refusal names the input and the path or tag):
- same name, version, build tag, `.dist-info` name, Root-Is-Purelib and METADATA bytes;
- every input tag is `cpXY-cpXY[t]-<platform>` (or a merged product of such tags), and
  no CPython ABI is in two inputs;
- all platforms are one family and architecture; the output claims the highest level;
- a path in several inputs has the same bytes everywhere, unless an override names it;
- WHEEL, RECORD and the provenance file are regenerated. The provenance lists the
  original per-CPython inputs (an already merged input contributes its own list), so
  merging in any grouping gives the same bytes.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from packaging.tags import Tag, parse_tag
from packaging.utils import parse_wheel_filename

from . import __version__
from .archive import Member, first_collision
from .errors import IncompatibleInputs, InvalidWheel, PathConflict, WheelError
from .platforms import Platform, most_restrictive, parse_platform
from .wheelinfo import LoadedWheel

PROVENANCE = "wheelfuse.json"
_REGENERATED = frozenset({"WHEEL", "RECORD", PROVENANCE})
_CPYTHON_INTERPRETER = re.compile(r"^cp3\d+$")
_CPYTHON_ABI = re.compile(r"^cp3\d+t?$")


@dataclass(frozen=True, order=True)
class Override:
    path: str
    abi: str  # the CPython ABI tag of the input to take the path from, e.g. "cp312"


@dataclass(frozen=True)
class MergePlan:
    filename: str
    dist_info: str
    tags: frozenset[Tag]
    files: dict[str, Member]  # everything except RECORD, which the writer renders

    @property
    def record_path(self) -> str:
        return f"{self.dist_info}/RECORD"


def cpython_abis(wheel: LoadedWheel) -> frozenset[str]:
    """The CPython ABIs a per-CPython (or merged) wheel is for; refuse any other kind."""
    for tag in sorted(wheel.tags, key=str):
        if tag.abi in ("abi3", "none") or tag.platform == "any":
            raise IncompatibleInputs(
                wheel.source,
                f"tag {tag} is not tied to one CPython (abi3, none and pure wheels cannot"
                " be merged)",
            )
        if not (_CPYTHON_INTERPRETER.match(tag.interpreter) and _CPYTHON_ABI.match(tag.abi)):
            raise IncompatibleInputs(wheel.source, f"tag {tag} is not a CPython-specific tag")
    interpreters = {t.interpreter for t in wheel.tags}
    abis = frozenset(t.abi for t in wheel.tags)
    if {a.removesuffix("t") for a in abis} != interpreters:
        raise IncompatibleInputs(
            wheel.source,
            f"interpreters {sorted(interpreters)} and ABIs {sorted(abis)} do not pair up",
        )
    return abis


def _require_same(inputs: Sequence[LoadedWheel], what: str, value: Any) -> None:
    reference = inputs[0]
    for wheel in inputs[1:]:
        if value(wheel) != value(reference):
            raise IncompatibleInputs(
                wheel.source,
                f"{what} {value(wheel)!s} differs from {value(reference)!s} in {reference.source}",
            )


def _root_is_purelib(wheel: LoadedWheel) -> str:
    return (wheel.wheel.get("Root-Is-Purelib") or "").strip().lower()


def _provenance_of(wheel: LoadedWheel) -> tuple[list[dict[str, str]], set[Override]]:
    """The original inputs behind `wheel`: itself, or the list its provenance file holds."""
    path = wheel.dist_info_path(PROVENANCE)
    if path not in wheel.archive.entries:
        return [{"filename": wheel.source, "sha256": wheel.archive.sha256}], set()
    try:
        data = json.loads(wheel.archive.read(path))
        inputs = [
            {"filename": str(i["filename"]), "sha256": str(i["sha256"])} for i in data["inputs"]
        ]
        overrides = {Override(str(o["path"]), str(o["abi"])) for o in data["overrides"]}
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidWheel(wheel.source, f"malformed provenance file ({exc!r})", path) from exc
    return inputs, overrides


def _platforms(inputs: Sequence[LoadedWheel]) -> frozenset[Platform]:
    per_wheel = [frozenset(parse_platform(t.platform) for t in w.tags) for w in inputs]
    reference = inputs[0].source, min(per_wheel[0], key=lambda p: p.tag)
    for wheel, platforms in zip(inputs, per_wheel, strict=True):
        for platform in sorted(platforms, key=lambda p: p.tag):
            if platform.key != reference[1].key:
                raise IncompatibleInputs(
                    wheel.source,
                    f"platform {platform.tag} cannot share a wheel with {reference[1].tag}"
                    f" of {reference[0]}",
                )
    return most_restrictive(per_wheel)


def _choose_files(
    inputs: Sequence[LoadedWheel],
    abis: dict[str, frozenset[str]],
    overrides: Sequence[Override],
) -> dict[str, Member]:
    by_path: dict[str, list[LoadedWheel]] = defaultdict(list)
    for wheel in inputs:
        for path in wheel.archive.entries:
            if path.removeprefix(wheel.dist_info + "/") not in _REGENERATED:
                by_path[path].append(wheel)

    take = {o.path: o for o in overrides}
    used: set[str] = set()
    files: dict[str, Member] = {}
    for path in sorted(by_path):
        providers = by_path[path]
        members = [w.member(path) for w in providers]
        if all(m.sha256 == members[0].sha256 for m in members):
            executable = any(m.executable for m in members)
            files[path] = replace(members[0], executable=executable)
            continue
        override = take.get(path)
        if override is None:
            raise PathConflict(
                _describe_versions(providers, abis, path),
                "bytes differ between inputs; to accept one, pass --take PATH=TAG naming"
                " the CPython tag of the input to take it from",
                path,
            )
        chosen = [w for w in providers if override.abi in abis[w.source]]
        if not chosen:
            raise WheelError(
                f"--take {path}={override.abi}",
                f"no input for {override.abi} holds this path",
            )
        files[path] = chosen[0].member(path)
        used.add(path)
    for override in overrides:
        if override.path not in used:
            raise WheelError(
                f"--take {override.path}={override.abi}",
                "this path does not differ between the inputs; drop the override",
            )
    return files


def _describe_versions(
    providers: Sequence[LoadedWheel], abis: dict[str, frozenset[str]], path: str
) -> str:
    """'sha256 1a2b3c4d5e6f in a.whl (cp310), b.whl (cp311); sha256 ... in c.whl (cp312)'"""
    groups: dict[str, list[str]] = defaultdict(list)
    for wheel in providers:
        digest = wheel.digests[path].hex()[:12]
        groups[digest].append(f"{wheel.source} ({'.'.join(sorted(abis[wheel.source]))})")
    return "; ".join(f"sha256 {d} in {', '.join(names)}" for d, names in groups.items())


def _check_paths_portable(files: dict[str, Member], inputs: Sequence[LoadedWheel]) -> None:
    """Refuse names that collide on case-insensitive or normalising file systems, or as
    file and directory."""

    def owners(path: str) -> str:
        """The inputs holding `path`, as a file or as a directory."""
        return ", ".join(
            w.source
            for w in inputs
            if path in w.archive.entries or any(p.startswith(path + "/") for p in w.archive.entries)
        )

    collision = first_collision(sorted(files))
    if collision is not None:
        other, path = collision
        raise PathConflict(
            owners(path),
            f"differs only in case or Unicode normalisation from {other} (in {owners(other)})",
            path,
        )
    directories = {path.rsplit("/", i)[0] for path in files for i in range(1, path.count("/") + 1)}
    for path in sorted(files):
        if path in directories:
            inside = next(p for p in sorted(files) if p.startswith(path + "/"))
            raise PathConflict(
                owners(path),
                f"is a file here and a directory in {owners(inside)} ({inside})",
                path,
            )


def _wheel_file(tags: frozenset[Tag], root_is_purelib: str, build: str) -> bytes:
    lines = [
        "Wheel-Version: 1.0",
        f"Generator: wheelfuse {__version__}",
        f"Root-Is-Purelib: {root_is_purelib}",
    ]
    if build:
        lines.append(f"Build: {build}")
    lines += [f"Tag: {tag}" for tag in sorted(map(str, tags))]
    return ("\n".join(lines) + "\n\n").encode()


def compressed_tag(tags: frozenset[Tag]) -> str:
    """PEP 425 compressed tag set, each dot-part sorted as text (cp310 < cp39)."""
    parts = ({t.interpreter for t in tags}, {t.abi for t in tags}, {t.platform for t in tags})
    return "-".join(".".join(sorted(part)) for part in parts)


def plan_merge(wheels: Sequence[LoadedWheel], overrides: Sequence[Override] = ()) -> MergePlan:
    if not wheels:
        raise WheelError("merge-wheels", "no input wheels")
    abis = {w.source: cpython_abis(w) for w in wheels}
    # A fixed order makes messages, and the chosen `executable` bits, independent of argv.
    inputs = sorted(wheels, key=lambda w: sorted(abis[w.source]))

    _require_same(inputs, "name", lambda w: w.name)
    _require_same(inputs, "version", lambda w: w.version)
    _require_same(inputs, "build tag", lambda w: w.build)
    _require_same(inputs, ".dist-info directory", lambda w: w.dist_info)
    _require_same(inputs, "Root-Is-Purelib", _root_is_purelib)
    reference = inputs[0]
    for wheel in inputs[1:]:
        if wheel.metadata != reference.metadata:
            raise IncompatibleInputs(
                wheel.source,
                f"METADATA differs from {reference.source}'s",
                wheel.dist_info_path("METADATA"),
            )
    owner: dict[str, str] = {}
    for wheel in inputs:
        for abi in sorted(abis[wheel.source]):
            if abi in owner:
                raise IncompatibleInputs(wheel.source, f"CPython tag {abi} is also in {owner[abi]}")
            owner[abi] = wheel.source

    platforms = _platforms(inputs)
    all_abis = set(owner)
    tags = frozenset(
        Tag(abi.removesuffix("t"), abi, platform.tag) for abi in all_abis for platform in platforms
    )
    # The file name can only express the product of its parts; WHEEL lists that product.
    tags = parse_tag(compressed_tag(tags), validate_order=True)

    files = _choose_files(inputs, abis, overrides)
    _check_paths_portable(files, inputs)

    leaves: list[dict[str, str]] = []
    recorded: set[Override] = set(overrides)
    for wheel in inputs:
        wheel_leaves, wheel_overrides = _provenance_of(wheel)
        leaves += wheel_leaves
        recorded |= wheel_overrides
    provenance = {
        "tool": "wheelfuse",
        "version": __version__,
        "inputs": sorted(leaves, key=lambda i: (i["filename"], i["sha256"])),
        "overrides": [{"path": o.path, "abi": o.abi} for o in sorted(recorded)],
    }
    build = "".join(map(str, reference.build))
    dist_info = reference.dist_info
    files[f"{dist_info}/WHEEL"] = Member.generated(
        _wheel_file(tags, _root_is_purelib(reference), build)
    )
    files[f"{dist_info}/{PROVENANCE}"] = Member.generated(
        (json.dumps(provenance, indent=2, sort_keys=True) + "\n").encode()
    )

    name = reference.name.replace("-", "_")
    build_part = f"-{build}" if build else ""
    filename = f"{name}-{reference.version}{build_part}-{compressed_tag(tags)}.whl"
    assert parse_wheel_filename(filename, validate_order=True)[3] == tags
    return MergePlan(filename=filename, dist_info=dist_info, tags=tags, files=files)
