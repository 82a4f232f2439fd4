"""RECORD: parse, verify against the archive, and render.

Hashes are `<algorithm>=<urlsafe base64 digest without padding>`; md5 and sha1 are refused
as the wheel specification requires. Only RECORD itself may be listed without a hash.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
from collections.abc import Iterable
from dataclasses import dataclass

from .archive import Member, WheelArchive
from .errors import RecordMismatch

_WEAK = {"md5", "sha1"}
ALLOWED_HASHES = frozenset(
    a for a in hashlib.algorithms_guaranteed if a not in _WEAK and not a.startswith("shake_")
)


@dataclass(frozen=True)
class RecordEntry:
    path: str
    algorithm: str | None
    digest: str | None
    size: int | None


def b64(digest: bytes) -> str:
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def parse_record(source: str, record_path: str, text: bytes) -> dict[str, RecordEntry]:
    try:
        rows = list(csv.reader(io.StringIO(text.decode("utf-8"), newline="")))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise RecordMismatch(source, f"unreadable RECORD ({exc})", record_path) from exc
    entries: dict[str, RecordEntry] = {}
    for number, row in enumerate(rows, start=1):
        if not row:
            continue
        where = f"{record_path} line {number}"
        if len(row) != 3:
            raise RecordMismatch(source, f"expected 3 fields, got {len(row)}", where)
        path, hash_field, size_field = row
        if path in entries:
            raise RecordMismatch(source, "path listed twice in RECORD", path)
        algorithm = digest = None
        if hash_field:
            algorithm, sep, digest = hash_field.partition("=")
            if not sep or not digest:
                raise RecordMismatch(source, f"malformed hash {hash_field!r} in {where}", path)
            if algorithm not in ALLOWED_HASHES:
                raise RecordMismatch(source, f"hash algorithm {algorithm!r} not allowed", path)
        size = None
        if size_field:
            if not (size_field.isascii() and size_field.isdigit()):
                raise RecordMismatch(source, f"malformed size {size_field!r} in {where}", path)
            size = int(size_field)
        entries[path] = RecordEntry(path, algorithm, digest, size)
    return entries


def verify_record(
    source: str, record_path: str, record: bytes, archive: WheelArchive
) -> dict[str, bytes]:
    """Every member is listed with the right hash and size, and every listed file exists.

    Streams every member once (which also proves its CRC and framing); returns each
    member's raw SHA-256 digest."""
    entries = parse_record(source, record_path, record)
    missing = sorted(set(entries) - set(archive.entries))
    if missing:
        raise RecordMismatch(source, "listed in RECORD but missing from the archive", missing[0])
    digests: dict[str, bytes] = {}
    for path in sorted(archive.entries):
        entry = entries.get(path)
        if entry is None:
            raise RecordMismatch(source, "file in the archive is not listed in RECORD", path)
        if path == record_path:
            continue
        if entry.algorithm is None or entry.digest is None:
            raise RecordMismatch(source, "RECORD lists no hash for this file", path)
        sha256 = hashlib.sha256()
        listed = hashlib.new(entry.algorithm) if entry.algorithm != "sha256" else sha256
        size = 0
        for chunk in archive.chunks(path):
            sha256.update(chunk)
            if listed is not sha256:
                listed.update(chunk)
            size += len(chunk)
        if b64(listed.digest()) != entry.digest:
            raise RecordMismatch(source, f"{entry.algorithm} hash does not match RECORD", path)
        if entry.size is not None and entry.size != size:
            raise RecordMismatch(source, f"size {size} does not match RECORD's {entry.size}", path)
        digests[path] = sha256.digest()
    return digests


def render_record(record_path: str, files: Iterable[tuple[str, Member]]) -> bytes:
    """RECORD for `files` (in the given order), ending with RECORD's own unhashed line."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for path, member in files:
        writer.writerow([path, f"sha256={b64(member.sha256)}", member.size])
    writer.writerow([record_path, "", ""])
    return out.getvalue().encode("utf-8")
