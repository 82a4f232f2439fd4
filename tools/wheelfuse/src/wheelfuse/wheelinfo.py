"""What a wheel says about itself: file name, `.dist-info`, WHEEL, METADATA, RECORD.

`load_wheel` reads an archive safely, verifies its RECORD and checks that the file name,
the `.dist-info` directory and the WHEEL `Tag:` lines agree. Merging and checking both
start from its result, so neither trusts an input that fails these rules.
"""

from __future__ import annotations

import email.parser
from collections.abc import Iterable
from dataclasses import dataclass
from email.message import Message
from pathlib import Path

from packaging.tags import InvalidTag, Tag, parse_tag
from packaging.utils import (
    BuildTag,
    InvalidWheelFilename,
    NormalizedName,
    canonicalize_name,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from .archive import DEFAULT_LIMITS, Limits, Member, WheelArchive, read_wheel
from .errors import InvalidWheel
from .record import verify_record


@dataclass(frozen=True)
class LoadedWheel:
    archive: WheelArchive
    name: NormalizedName
    version: Version
    build: BuildTag
    tags: frozenset[Tag]
    dist_info: str  # e.g. "deep_gemm-1.0.dist-info"
    wheel: Message  # parsed WHEEL file
    metadata: bytes  # METADATA
    digests: dict[str, bytes]  # path -> raw SHA-256 of its bytes, for every file but RECORD

    @property
    def source(self) -> str:
        return self.archive.filename

    def dist_info_path(self, name: str) -> str:
        return f"{self.dist_info}/{name}"

    def member(self, path: str) -> Member:
        entry = self.archive.entries[path]
        return Member(entry.size, self.digests[path], entry.executable, self.archive, path)


def _find_dist_info(source: str, paths: list[str]) -> str:
    tops = {p.split("/", 1)[0] for p in paths if "/" in p}
    found = sorted(t for t in tops if t.endswith(".dist-info"))
    if len(found) != 1:
        raise InvalidWheel(source, f"expected exactly one .dist-info directory, found {found}")
    return found[0]


def _tags_from_wheel_file(source: str, path: str, wheel: Message) -> frozenset[Tag]:
    tags: set[Tag] = set()
    for line in wheel.get_all("Tag") or []:
        try:
            tags |= parse_tag(line.strip())
        except (InvalidTag, ValueError) as exc:
            raise InvalidWheel(source, f"bad Tag line {line!r} ({exc})", path) from exc
    if not tags:
        raise InvalidWheel(source, "WHEEL has no Tag lines", path)
    return frozenset(tags)


def unexpanded_tag_lines(wheel: Message) -> list[str]:
    """WHEEL Tag lines that are not one tag each (a compressed set, or a repeat): the wheel
    specification lists tags expanded. Inputs may have them (maturin writes compressed
    lines); a wheel to publish may not."""
    seen: set[str] = set()
    bad = []
    for line in wheel.get_all("Tag") or []:
        tag = line.strip()
        if "." in tag or tag in seen:
            bad.append(tag)
        seen.add(tag)
    return bad


def inspect_archive(archive: WheelArchive) -> LoadedWheel:
    source = archive.filename
    try:
        name, version, build, tags = parse_wheel_filename(source)
    except InvalidWheelFilename as exc:
        raise InvalidWheel(source, f"not a valid wheel file name ({exc})") from exc

    dist_info = _find_dist_info(source, list(archive.entries))
    stem = dist_info.removesuffix(".dist-info")
    dist_name, _, dist_version = stem.rpartition("-")
    try:
        same = canonicalize_name(dist_name) == name and Version(dist_version) == version
    except InvalidVersion:
        same = False
    if not same:
        raise InvalidWheel(source, f"does not match the file name's {name} {version}", dist_info)

    for required in ("METADATA", "WHEEL", "RECORD"):
        if f"{dist_info}/{required}" not in archive.entries:
            raise InvalidWheel(source, "missing", f"{dist_info}/{required}")
    record_path = f"{dist_info}/RECORD"
    digests = verify_record(source, record_path, archive.read(record_path), archive)

    wheel_path = f"{dist_info}/WHEEL"
    try:
        wheel = email.parser.BytesParser().parsebytes(archive.read(wheel_path))
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidWheel(source, f"unreadable ({exc})", wheel_path) from exc
    wheel_version = (wheel.get("Wheel-Version") or "").strip()
    if wheel_version.split(".")[0] != "1":
        raise InvalidWheel(source, f"unsupported Wheel-Version {wheel_version!r}", wheel_path)
    declared = _tags_from_wheel_file(source, wheel_path, wheel)
    if declared != tags:
        only_name = sorted(map(str, tags - declared))
        only_wheel = sorted(map(str, declared - tags))
        raise InvalidWheel(
            source,
            f"Tag lines disagree with the file name (only in file name: {only_name};"
            f" only in WHEEL: {only_wheel})",
            wheel_path,
        )
    metadata = archive.read(f"{dist_info}/METADATA")
    return LoadedWheel(archive, name, version, build, tags, dist_info, wheel, metadata, digests)


def load_wheel(path: Path, limits: Limits = DEFAULT_LIMITS) -> LoadedWheel:
    return inspect_archive(read_wheel(path, limits))


def installed_paths(dist_info: str, paths: Iterable[str]) -> dict[str, str]:
    """Map site-packages-relative paths to archive paths for what lands in the import tree:
    the archive root (minus `.dist-info`) plus `<name>.data/purelib|platlib/`."""
    data_dir = dist_info.removesuffix(".dist-info") + ".data/"
    tree: dict[str, str] = {}
    for path in paths:
        if path.startswith(dist_info + "/"):
            continue
        installed = path
        if path.startswith(data_dir):
            scheme, _, installed = path.removeprefix(data_dir).partition("/")
            if scheme not in ("purelib", "platlib"):
                continue
        tree[installed] = path
    return tree
