"""The strict zip reader: an archive is used only after it is proven unambiguous.

Every parser of a wheel (installers that trust the central directory, installers that walk
local headers, `zipfile`, this tool) must see the same members with the same bytes. So
`read_wheel` refuses, before any member is used:

- layout: anything before the first local header, between members, between the last member
  and the central directory, or after the end record (other than its own comment); member
  data that overlaps; a central directory whose size or entry count disagrees with the end
  record; more or less than one end-of-central-directory record (a second one in the
  comment, a ZIP64 record that does not sit right before its locator), split archives;
- every local header must repeat its central entry: name bytes, flags, method, and (or, with
  bit 3, its data descriptor) CRC and sizes; ZIP64 extra fields exactly as APPNOTE 4.5.3
  lays them out (one 8-byte field for each saturated value, nothing else);
- names: UTF-8 (flag bit 11) or plain ASCII, no second name (Info-ZIP Unicode Path field),
  safe relative paths, unique (and so are the directories they name) after NFC
  normalisation and case folding;
- modes: no links, devices, FIFOs or sockets, no setuid / setgid / sticky bits;
- methods stored and deflate only, no encryption, sizes and ratios within `Limits`.

Member bytes are never held in memory by the reader: `WheelArchive.chunks` streams one
member, checking its deflate stream ends exactly at the stated compressed size and that
size and CRC match. Callers that verify RECORD read every member once that way.
"""

from __future__ import annotations

import hashlib
import os
import stat
import struct
import unicodedata
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import BinaryIO

from .errors import UnsafeArchive

CHUNK = 1 << 20

_LOCAL = struct.Struct("<IHHHHHIIIHH")  # 30 bytes
_CENTRAL = struct.Struct("<IHHHHHHIIIHHHHHII")  # 46 bytes
_EOCD = struct.Struct("<IHHHHIIH")  # 22 bytes
_ZIP64_EOCD = struct.Struct("<IQHHIIQQQQ")  # 56 bytes
_ZIP64_LOCATOR = struct.Struct("<IIQI")  # 20 bytes
SIG_LOCAL = 0x04034B50
SIG_CENTRAL = 0x02014B50
SIG_EOCD = 0x06054B50
SIG_ZIP64_EOCD = 0x06064B50
SIG_ZIP64_LOCATOR = 0x07064B50
SIG_DESCRIPTOR = 0x08074B50
EOCD_BYTES = struct.pack("<I", SIG_EOCD)
ZIP64_EOCD_BYTES = struct.pack("<I", SIG_ZIP64_EOCD)
LOCATOR_BYTES = struct.pack("<I", SIG_ZIP64_LOCATOR)

STORED, DEFLATED = 0, 8
FLAG_ENCRYPTED = 0x0001
FLAG_DESCRIPTOR = 0x0008
FLAG_STRONG_ENCRYPTION = 0x0040
FLAG_UTF8 = 0x0800
# Bits 1-2 are deflate's speed hints; anything else changes how the member must be read.
ALLOWED_FLAGS = 0x0002 | 0x0004 | FLAG_DESCRIPTOR | FLAG_UTF8
EXTRA_ZIP64 = 0x0001
EXTRA_UNICODE_PATH = 0x7075
U16, U32 = 0xFFFF, 0xFFFFFFFF
UNIX = 3


@dataclass(frozen=True)
class Limits:
    """Sizes above which an archive is refused as a probable zip bomb."""

    max_member_size: int = 4 << 30
    max_total_size: int = 16 << 30
    # Deflate cannot do better than about 1032:1; real wheels stay far below 100:1.
    max_ratio: int = 200
    ratio_floor: int = 1 << 20  # small members may have any ratio
    max_entries: int = 1 << 20
    # What `read` (metadata files, binaries to inspect) may hold in memory at once.
    max_read_size: int = 4 << 30


DEFAULT_LIMITS = Limits()


@dataclass(frozen=True)
class Entry:
    """One regular-file member, its central entry and local header proven to agree."""

    name: str
    method: int
    crc: int
    compressed_size: int
    size: int
    data_offset: int
    executable: bool


def name_key(name: str) -> str:
    """The identity of a path on every file system an installer may write to: names equal
    under this key collide (NFC vs NFD forms, case)."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", name).casefold())


def first_collision(paths: Iterable[str]) -> tuple[str, str] | None:
    """Two different spellings, of paths or of directories on them, that one `name_key`
    covers (`Pkg/a.py` and `pkg/b.py` share a directory on macOS and Windows only)."""
    spelling: dict[str, str] = {}
    for path in paths:
        parts = path.removesuffix("/").split("/")
        for depth in range(1, len(parts) + 1):
            prefix = "/".join(parts[:depth])
            other = spelling.setdefault(name_key(prefix), prefix)
            if other != prefix:
                return other, prefix
    return None


def check_member_name(source: str, name: str) -> None:
    """Refuse names an installer could resolve outside its target directory."""
    if not name or "\x00" in name or "\\" in name:
        raise UnsafeArchive(
            source, "unsafe member name (empty, NUL or backslash)", repr(name), rule="name"
        )
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise UnsafeArchive(source, "absolute path in archive", name, rule="name")
    if any(part in ("", ".", "..") for part in name.removesuffix("/").split("/")):
        raise UnsafeArchive(source, "path with '..', '.' or an empty component", name, rule="name")


def _extra_fields(source: str, name: str, extra: bytes, where: str) -> dict[int, bytes]:
    fields: dict[int, bytes] = {}
    pos = 0
    while pos < len(extra):
        if pos + 4 > len(extra):
            raise UnsafeArchive(source, f"truncated extra field in the {where}", name, rule="extra")
        kind, length = struct.unpack_from("<HH", extra, pos)
        body = extra[pos + 4 : pos + 4 + length]
        if len(body) != length:
            raise UnsafeArchive(
                source, f"extra field 0x{kind:04x} overruns the {where}", name, rule="extra"
            )
        if kind in fields:
            raise UnsafeArchive(
                source, f"extra field 0x{kind:04x} twice in the {where}", name, rule="extra"
            )
        if kind == EXTRA_UNICODE_PATH:
            raise UnsafeArchive(
                source,
                f"Info-ZIP Unicode Path field in the {where} (a second name)",
                name,
                rule="name",
            )
        fields[kind] = body
        pos += 4 + length
    return fields


def _zip64_values(
    source: str, name: str, fields: dict[int, bytes], saturated: list[bool], where: str
) -> list[int]:
    """The 8-byte values the ZIP64 field holds, one per saturated field, in order."""
    body = fields.get(EXTRA_ZIP64)
    wanted = sum(saturated)
    if body is None:
        if wanted:
            raise UnsafeArchive(
                source,
                f"saturated sizes/offset in the {where} without a ZIP64 field",
                name,
                rule="zip64",
            )
        return []
    if len(body) != 8 * wanted:
        raise UnsafeArchive(
            source,
            f"ZIP64 field of {len(body)} bytes in the {where}, {8 * wanted} expected for"
            " its saturated fields",
            name,
            rule="zip64",
        )
    return list(struct.unpack(f"<{wanted}Q", body))


@dataclass(frozen=True)
class _Central:
    name: str
    raw_name: bytes
    flags: int
    method: int
    crc: int
    compressed_size: int
    size: int
    header_offset: int
    is_dir: bool
    executable: bool
    zip64: bool


def _decode_name(source: str, raw: bytes, flags: int) -> str:
    try:
        if flags & FLAG_UTF8:
            return raw.decode("utf-8")
        return raw.decode("ascii")
    except UnicodeDecodeError as exc:
        what = "not valid UTF-8" if flags & FLAG_UTF8 else "non-ASCII without the UTF-8 flag"
        raise UnsafeArchive(source, f"member name is {what}", repr(raw), rule="name") from exc


def _central_entry(source: str, cd: bytes, pos: int, limits: Limits) -> tuple[_Central, int]:
    if pos + _CENTRAL.size > len(cd):
        raise UnsafeArchive(source, "central directory ends inside an entry", rule="central")
    (
        sig,
        made_by,
        _needed,
        flags,
        method,
        _time,
        _date,
        crc,
        csize,
        usize,
        nlen,
        elen,
        clen,
        disk,
        _internal,
        external,
        offset,
    ) = _CENTRAL.unpack_from(cd, pos)
    if sig != SIG_CENTRAL:
        raise UnsafeArchive(
            source,
            f"no central entry signature at offset {pos} of the central directory",
            rule="central",
        )
    end = pos + _CENTRAL.size + nlen + elen + clen
    if end > len(cd):
        raise UnsafeArchive(source, "central directory ends inside an entry", rule="central")
    raw_name = cd[pos + _CENTRAL.size : pos + _CENTRAL.size + nlen]
    name = _decode_name(source, raw_name, flags)
    extra = cd[pos + _CENTRAL.size + nlen : pos + _CENTRAL.size + nlen + elen]
    fields = _extra_fields(source, name, extra, "central directory")
    saturated = [usize == U32, csize == U32, offset == U32, disk == U16]
    values = iter(_zip64_values(source, name, fields, saturated, "central directory"))
    usize = next(values) if saturated[0] else usize
    csize = next(values) if saturated[1] else csize
    offset = next(values) if saturated[2] else offset
    disk = next(values) if saturated[3] else disk
    if disk != 0:
        raise UnsafeArchive(source, "member on another disk (split archive)", name, rule="eocd")

    if flags & (FLAG_ENCRYPTED | FLAG_STRONG_ENCRYPTION):
        raise UnsafeArchive(source, "encrypted member", name, rule="flags")
    if flags & ~ALLOWED_FLAGS:
        raise UnsafeArchive(
            source, f"unsupported general-purpose flags 0x{flags:04x}", name, rule="flags"
        )
    if method not in (STORED, DEFLATED):
        raise UnsafeArchive(
            source, f"compression method {method} (only stored and deflate)", name, rule="method"
        )
    if method == STORED and csize != usize:
        raise UnsafeArchive(
            source,
            f"stored member with compressed size {csize} != size {usize}",
            name,
            rule="sizes",
        )

    check_member_name(source, name)
    is_dir = name.endswith("/")
    mode = external >> 16
    executable = False
    if made_by >> 8 == UNIX:
        if mode & 0o7000:
            raise UnsafeArchive(
                source, f"setuid/setgid/sticky bits in mode {mode:o}", name, rule="mode"
            )
        kind = stat.S_IFMT(mode)
        if stat.S_ISLNK(mode):
            raise UnsafeArchive(source, "symbolic link in archive", name, rule="mode")
        # A file type of 0 (as many zip writers leave it) means what the name says.
        if kind and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            raise UnsafeArchive(source, "special file (not regular) in archive", name, rule="mode")
        if kind and stat.S_ISDIR(mode) != is_dir:
            raise UnsafeArchive(
                source, f"mode {mode:o} disagrees with the name's file type", name, rule="mode"
            )
        executable = bool(mode & 0o111)
    if is_dir and usize:
        raise UnsafeArchive(
            source, f"directory entry with {usize} bytes of data", name, rule="sizes"
        )
    if usize > limits.max_member_size:
        raise UnsafeArchive(
            source, f"uncompressed size {usize} is absurd (zip bomb?)", name, rule="limits"
        )
    if usize > limits.ratio_floor and usize > limits.max_ratio * max(csize, 1):
        raise UnsafeArchive(
            source,
            f"compression ratio {usize // max(csize, 1)}:1 is absurd (zip bomb?)",
            name,
            rule="limits",
        )
    entry = _Central(
        name,
        raw_name,
        flags,
        method,
        crc,
        csize,
        usize,
        offset,
        is_dir,
        executable,
        zip64=EXTRA_ZIP64 in fields,
    )
    return entry, end


def _read_at(f: BinaryIO, offset: int, length: int) -> bytes:
    f.seek(offset)
    return f.read(length)


def _end_records(source: str, f: BinaryIO, size: int, limits: Limits) -> tuple[int, int, int]:
    """(central directory offset, its size, entry count), all records proven consistent."""
    tail_start = max(0, size - (_EOCD.size + U16 + _ZIP64_LOCATOR.size + _ZIP64_EOCD.size))
    tail = _read_at(f, tail_start, size - tail_start)
    # The end record is the one whose comment reaches exactly the end of the file.
    eocd = -1
    for pos in range(len(tail) - _EOCD.size, -1, -1):
        if tail[pos : pos + 4] == EOCD_BYTES:
            comment_len = struct.unpack_from("<H", tail, pos + 20)[0]
            if pos + _EOCD.size + comment_len == len(tail):
                eocd = pos
                break
    if eocd < 0:
        raise UnsafeArchive(
            source, "not a zip archive, or truncated, or bytes after its end record", rule="eocd"
        )
    _, disk, cd_disk, n_disk, n_total, cd_size, cd_offset, comment_len = _EOCD.unpack_from(
        tail, eocd
    )
    comment = tail[eocd + _EOCD.size :]
    if any(sig in comment for sig in (EOCD_BYTES, ZIP64_EOCD_BYTES, LOCATOR_BYTES)):
        raise UnsafeArchive(source, "a second end record hides in the archive comment", rule="eocd")
    eocd_offset = tail_start + eocd
    end_of_cd = eocd_offset
    loc = eocd - _ZIP64_LOCATOR.size
    has_locator = loc >= 0 and tail[loc : loc + 4] == LOCATOR_BYTES
    if has_locator:
        _, z64_disk, z64_offset, disks = _ZIP64_LOCATOR.unpack_from(tail, loc)
        if z64_disk != 0 or disks != 1:
            raise UnsafeArchive(
                source, "split archive (ZIP64 locator names several disks)", rule="eocd"
            )
        locator_offset = eocd_offset - _ZIP64_LOCATOR.size
        record = _read_at(f, z64_offset, _ZIP64_EOCD.size)
        if z64_offset + _ZIP64_EOCD.size != locator_offset or len(record) != _ZIP64_EOCD.size:
            raise UnsafeArchive(
                source, "the ZIP64 end record does not sit right before its locator", rule="zip64"
            )
        (
            sig,
            record_size,
            _made,
            _needed,
            z_disk,
            z_cd_disk,
            z_n_disk,
            z_n_total,
            z_cd_size,
            z_cd_offset,
        ) = _ZIP64_EOCD.unpack(record)
        if sig != SIG_ZIP64_EOCD or record_size != _ZIP64_EOCD.size - 12:
            raise UnsafeArchive(source, "malformed ZIP64 end record", rule="zip64")
        for name, short, long, full in (
            ("disk", disk, z_disk, U16),
            ("central directory disk", cd_disk, z_cd_disk, U16),
            ("entries on this disk", n_disk, z_n_disk, U16),
            ("entries", n_total, z_n_total, U16),
            ("central directory size", cd_size, z_cd_size, U32),
            ("central directory offset", cd_offset, z_cd_offset, U32),
        ):
            if short not in (full, long):
                raise UnsafeArchive(
                    source,
                    f"end record and ZIP64 end record disagree on the {name}",
                    rule="zip64",
                )
        disk, cd_disk, n_disk, n_total = z_disk, z_cd_disk, z_n_disk, z_n_total
        cd_size, cd_offset = z_cd_size, z_cd_offset
        end_of_cd = z64_offset
    elif U32 in (cd_size, cd_offset) or U16 in (n_total, n_disk):
        raise UnsafeArchive(source, "saturated end record without a ZIP64 locator", rule="zip64")
    if disk != 0 or cd_disk != 0 or n_disk != n_total:
        raise UnsafeArchive(source, "split archive (several disks)", rule="eocd")
    if n_total > limits.max_entries:
        raise UnsafeArchive(source, f"{n_total} entries (zip bomb?)", rule="limits")
    if cd_offset + cd_size != end_of_cd:
        between = _read_at(f, cd_offset + cd_size, max(0, end_of_cd - cd_offset - cd_size))
        if EOCD_BYTES in between:
            raise UnsafeArchive(
                source, "more than one end-of-central-directory record", rule="eocd"
            )
        raise UnsafeArchive(
            source,
            f"central directory at {cd_offset} + {cd_size} bytes does not end at the end"
            f" record (offset {end_of_cd})",
            rule="layout",
        )
    after = _read_at(f, end_of_cd, size - end_of_cd)
    if after.count(EOCD_BYTES) != 1:
        raise UnsafeArchive(source, "more than one end-of-central-directory record", rule="eocd")
    return cd_offset, cd_size, n_total


def _local_header(source: str, f: BinaryIO, c: _Central) -> tuple[int, int]:
    """(data offset, end of the member incl. its data descriptor), the header proven equal to
    its central entry."""
    header = _read_at(f, c.header_offset, _LOCAL.size)
    if len(header) != _LOCAL.size:
        raise UnsafeArchive(
            source, "local header past the end of the file", c.name, rule="local-header"
        )
    (sig, _needed, flags, method, _time, _date, crc, csize, usize, nlen, elen) = _LOCAL.unpack(
        header
    )
    if sig != SIG_LOCAL:
        raise UnsafeArchive(
            source, f"no local header at offset {c.header_offset}", c.name, rule="local-header"
        )
    variable = _read_at(f, c.header_offset + _LOCAL.size, nlen + elen)
    if len(variable) != nlen + elen:
        raise UnsafeArchive(
            source, "local header past the end of the file", c.name, rule="local-header"
        )
    if variable[:nlen] != c.raw_name:
        raise UnsafeArchive(
            source,
            f"local header names {variable[:nlen]!r}, the central directory {c.raw_name!r}",
            c.name,
            rule="local-header",
        )
    for what, local, central in (("flags", flags, c.flags), ("method", method, c.method)):
        if local != central:
            raise UnsafeArchive(
                source,
                f"local header {what} {local:#x} != central directory's {central:#x}",
                c.name,
                rule="local-header",
            )
    fields = _extra_fields(source, c.name, variable[nlen:], "local header")
    zip64 = EXTRA_ZIP64 in fields or c.zip64
    if usize == U32 or csize == U32:
        # A local ZIP64 field holds both sizes (APPNOTE 4.5.3).
        body = fields.get(EXTRA_ZIP64, b"")
        if len(body) != 16:
            raise UnsafeArchive(
                source, "local header's ZIP64 field must hold both sizes", c.name, rule="zip64"
            )
        usize, csize = struct.unpack("<QQ", body)
    elif EXTRA_ZIP64 in fields and len(fields[EXTRA_ZIP64]) not in (0, 16):
        raise UnsafeArchive(
            source, "malformed ZIP64 field in the local header", c.name, rule="zip64"
        )
    data_offset = c.header_offset + _LOCAL.size + nlen + elen
    end = data_offset + c.compressed_size
    stated = (crc, csize, usize)
    expected = (c.crc, c.compressed_size, c.size)
    if flags & FLAG_DESCRIPTOR:
        if stated not in ((0, 0, 0), expected):
            raise UnsafeArchive(
                source,
                "local header's CRC/sizes disagree with the central directory",
                c.name,
                rule="local-header",
            )
        width = 8 if zip64 else 4
        raw = _read_at(f, end, 4 + 4 + 2 * width)
        body_fmt = "<I" + ("QQ" if zip64 else "II")
        has_sig = len(raw) >= 4 and struct.unpack_from("<I", raw)[0] == SIG_DESCRIPTOR
        start = 4 if has_sig else 0
        length = struct.calcsize(body_fmt)
        if len(raw) < start + length:
            raise UnsafeArchive(
                source, "data descriptor past the end of the file", c.name, rule="descriptor"
            )
        if struct.unpack_from(body_fmt, raw, start) != expected:
            raise UnsafeArchive(
                source,
                "data descriptor disagrees with the central directory",
                c.name,
                rule="descriptor",
            )
        end += start + length
    elif stated != expected:
        raise UnsafeArchive(
            source,
            f"local header's CRC/sizes {stated} disagree with the central directory's {expected}",
            c.name,
            rule="local-header",
        )
    return data_offset, end


def _identity(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


@dataclass(frozen=True)
class WheelArchive:
    path: Path
    entries: Mapping[str, Entry]  # regular files, in archive order; directories are dropped
    identity: tuple[int, int, int, int]  # the file as it was proven (device, inode, size, mtime)

    @property
    def filename(self) -> str:
        return self.path.name

    def _open(self, name: str | None = None) -> BinaryIO:
        f = self.path.open("rb")
        if _identity(os.fstat(f.fileno())) != self.identity:
            f.close()
            raise UnsafeArchive(
                self.filename, "the file changed after it was checked", name, rule="changed"
            )
        return f

    @cached_property
    def sha256(self) -> str:
        """Of the whole file (for provenance); computed when first asked for."""
        digest = hashlib.sha256()
        with self._open() as f:
            while chunk := f.read(CHUNK):
                digest.update(chunk)
        return digest.hexdigest()

    def chunks(self, name: str) -> Iterator[bytes]:
        """Stream one member's bytes; its size, CRC and deflate framing are checked as it
        goes, and the last chunk is yielded only after they are proven."""
        entry = self.entries[name]
        source = self.filename
        with self._open(name) as f:
            f.seek(entry.data_offset)
            inflater = zlib.decompressobj(-15) if entry.method == DEFLATED else None
            left = entry.compressed_size
            produced = 0
            crc = 0
            pending = b""
            while True:
                if inflater is not None and inflater.unconsumed_tail:
                    data = inflater.unconsumed_tail  # inflate at most CHUNK bytes at a time
                elif left:
                    data = f.read(min(CHUNK, left))
                    if not data:
                        raise UnsafeArchive(source, "member data truncated", name, rule="data")
                    left -= len(data)
                else:
                    break
                if inflater is not None:
                    try:
                        data = inflater.decompress(data, CHUNK)
                    except zlib.error as exc:
                        raise UnsafeArchive(
                            source, f"corrupt deflate data ({exc})", name, rule="data"
                        ) from exc
                produced += len(data)
                if produced > entry.size:
                    raise UnsafeArchive(
                        source, f"more data than the stated size {entry.size}", name, rule="data"
                    )
                crc = zlib.crc32(data, crc)
                if pending:
                    yield pending
                pending = data
            if inflater is not None and (not inflater.eof or inflater.unused_data):
                raise UnsafeArchive(
                    source,
                    "deflate stream does not end exactly at the stated compressed size",
                    name,
                    rule="data",
                )
            if produced != entry.size:
                raise UnsafeArchive(
                    source, f"{produced} bytes, stated size {entry.size}", name, rule="data"
                )
            if crc != entry.crc:
                raise UnsafeArchive(source, "CRC-32 does not match", name, rule="data")
            if pending:
                yield pending

    def read(self, name: str, limits: Limits = DEFAULT_LIMITS) -> bytes:
        size = self.entries[name].size
        if size > limits.max_read_size:
            raise UnsafeArchive(
                self.filename, f"{size} bytes is too large to read", name, rule="limits"
            )
        return b"".join(self.chunks(name))


def read_wheel(path: Path, limits: Limits = DEFAULT_LIMITS) -> WheelArchive:
    """Prove the zip at `path` unambiguous (see the module docstring) and index its files.

    Member data is checked when it is streamed; RECORD verification streams every member."""
    source = path.name
    try:
        f = path.open("rb")
    except OSError as exc:
        raise UnsafeArchive(source, f"cannot read: {exc.strerror}", rule="io") from exc
    with f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise UnsafeArchive(source, "not a regular file", rule="io")
        cd_offset, cd_size, count = _end_records(source, f, st.st_size, limits)
        cd = _read_at(f, cd_offset, cd_size)
        centrals: list[_Central] = []
        pos = 0
        for _ in range(count):
            entry, pos = _central_entry(source, cd, pos, limits)
            centrals.append(entry)
        if pos != cd_size:
            raise UnsafeArchive(
                source,
                f"central directory holds {cd_size - pos} bytes beyond its {count} entries",
                rule="central",
            )

        names = [c.name for c in centrals]
        if len(set(names)) != len(names):
            duplicate = next(n for n in names if names.count(n) > 1)
            raise UnsafeArchive(source, "duplicate zip entry", duplicate, rule="name")
        collision = first_collision(names)
        if collision is not None:
            raise UnsafeArchive(
                source,
                f"collides with {collision[0]!r} after Unicode normalisation and case folding",
                collision[1],
                rule="name",
            )
        total = sum(c.size for c in centrals)
        if total > limits.max_total_size:
            raise UnsafeArchive(
                source, f"total uncompressed size {total} is absurd (zip bomb?)", rule="limits"
            )

        entries: dict[str, Entry] = {}
        expected = 0
        for c in sorted(centrals, key=lambda c: c.header_offset):
            if c.header_offset != expected:
                what = (
                    f"{c.header_offset} bytes before the first local header"
                    if expected == 0 and c.header_offset > 0
                    else f"a gap of {c.header_offset - expected} bytes before this member"
                    if c.header_offset > expected
                    else "member data overlaps the previous member"
                )
                raise UnsafeArchive(source, what, c.name, rule="layout")
            data_offset, expected = _local_header(source, f, c)
            if expected > cd_offset:
                raise UnsafeArchive(
                    source, "member data runs into the central directory", c.name, rule="layout"
                )
            if not c.is_dir:
                entries[c.name] = Entry(
                    c.name, c.method, c.crc, c.compressed_size, c.size, data_offset, c.executable
                )
        if expected != cd_offset:
            raise UnsafeArchive(
                source,
                f"{cd_offset - expected} bytes between the last member and the central directory",
                rule="layout",
            )
    ordered = {c.name: entries[c.name] for c in centrals if c.name in entries}
    return WheelArchive(path=path, entries=ordered, identity=_identity(st))


@dataclass(frozen=True)
class Member:
    """Bytes for an output: a member of a proven input (streamed, and checked, again when
    written) or generated bytes. `sha256` is the raw digest, known before anything is written."""

    size: int
    sha256: bytes
    executable: bool
    archive: WheelArchive | None = None
    name: str = ""
    data: bytes = b""

    @classmethod
    def generated(cls, data: bytes, executable: bool = False) -> Member:
        return cls(len(data), hashlib.sha256(data).digest(), executable, data=data)

    def chunks(self) -> Iterator[bytes]:
        if self.archive is None:
            yield self.data
        else:
            yield from self.archive.chunks(self.name)
