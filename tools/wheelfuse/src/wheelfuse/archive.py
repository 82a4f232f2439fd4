"""Reading a wheel archive safely: every member is checked before its bytes are trusted.

Every member's bytes are held in memory (a merge needs them all to compare and rewrite);
wheels of a few hundred MB are fine.
"""

from __future__ import annotations

import hashlib
import stat
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .errors import UnsafeArchive


@dataclass(frozen=True)
class Limits:
    """Sizes above which an archive is refused as a probable zip bomb."""

    max_member_size: int = 4 << 30
    max_total_size: int = 16 << 30
    # Deflate cannot do better than about 1032:1; real wheels stay far below 100:1.
    max_ratio: int = 200
    ratio_floor: int = 1 << 20  # small members may have any ratio


DEFAULT_LIMITS = Limits()


@dataclass(frozen=True)
class Member:
    data: bytes
    executable: bool


@dataclass(frozen=True)
class WheelArchive:
    path: Path
    sha256: str
    members: Mapping[str, Member]

    @property
    def filename(self) -> str:
        return self.path.name


def check_member_name(source: str, name: str) -> None:
    """Refuse names an installer could resolve outside its target directory."""
    if not name or "\x00" in name or "\\" in name:
        raise UnsafeArchive(source, "unsafe member name (empty, NUL or backslash)", repr(name))
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise UnsafeArchive(source, "absolute path in archive", name)
    if any(part in ("", ".", "..") for part in name.rstrip("/").split("/")):
        raise UnsafeArchive(source, "path with '..', '.' or an empty component", name)


def _check_info(source: str, info: zipfile.ZipInfo, limits: Limits) -> None:
    check_member_name(source, info.filename)
    mode = info.external_attr >> 16
    # Unix attributes; a file type of 0 (as many zip writers leave it) means a plain file.
    if info.create_system == 3 and stat.S_IFMT(mode):
        if stat.S_ISLNK(mode):
            raise UnsafeArchive(source, "symbolic link in archive", info.filename)
        if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            raise UnsafeArchive(source, "special file (not regular) in archive", info.filename)
    if info.flag_bits & 0x1:
        raise UnsafeArchive(source, "encrypted member", info.filename)
    if info.file_size > limits.max_member_size:
        raise UnsafeArchive(
            source, f"uncompressed size {info.file_size} is absurd (zip bomb?)", info.filename
        )
    if info.file_size > limits.ratio_floor and info.file_size > limits.max_ratio * max(
        info.compress_size, 1
    ):
        raise UnsafeArchive(
            source,
            f"compression ratio {info.file_size // max(info.compress_size, 1)}:1 is absurd"
            " (zip bomb?)",
            info.filename,
        )


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def read_wheel(path: Path, limits: Limits = DEFAULT_LIMITS) -> WheelArchive:
    """Read and validate every member of the zip at `path`; directories are dropped."""
    source = path.name
    try:
        sha256 = _file_sha256(path)
        zf = zipfile.ZipFile(path)
    except OSError as exc:
        raise UnsafeArchive(source, f"cannot read: {exc.strerror}") from exc
    except (zipfile.BadZipFile, EOFError, ValueError) as exc:
        raise UnsafeArchive(source, f"not a zip archive, or truncated ({exc})") from exc

    members: dict[str, Member] = {}
    seen: set[str] = set()
    total = 0
    with zf:
        infos = zf.infolist()
        for info in infos:
            if info.filename in seen:
                raise UnsafeArchive(source, "duplicate zip entry", info.filename)
            seen.add(info.filename)
            _check_info(source, info, limits)
            total += info.file_size
            if total > limits.max_total_size:
                raise UnsafeArchive(source, f"total uncompressed size over {total} (zip bomb?)")
        for info in infos:
            if info.is_dir():
                continue
            try:
                # ZipExtFile stops at the stated size and checks the CRC, so a member
                # that lies about its size fails here rather than filling memory.
                data = zf.read(info)
            except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as exc:
                raise UnsafeArchive(
                    source, f"corrupt or truncated member ({exc})", info.filename
                ) from exc
            mode = info.external_attr >> 16
            members[info.filename] = Member(data, executable=bool(mode & 0o111))
    return WheelArchive(path=path, sha256=sha256, members=members)
