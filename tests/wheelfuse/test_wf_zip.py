"""The strict reader: ZIP-confusion archives built from real wheels (the gcc-built tinyext
wheels), each refused by merge-wheels and by check-wheel with its rule named, nothing
written. A ZIP64 archive with a member over 4 GiB (written sparsely) reads correctly."""

from __future__ import annotations

import functools
import io
import json
import struct
import unicodedata
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
from wheelfuse.archive import Limits, read_wheel
from wheelfuse.check_cli import main as check_main
from wheelfuse.errors import UnsafeArchive
from wheelfuse.merge_cli import main as merge_main
from wheelfuse.plan import plan_merge
from wheelfuse.wheelinfo import load_wheel
from wheelfuse.writer import ZIP_EPOCH, write_wheel


def central_entries(raw: bytes) -> list[tuple[int, str, int]]:
    """(offset of the central entry, name, local header offset) for a plain (non-ZIP64) zip."""
    eocd = raw.rindex(b"PK\x05\x06")
    count, _size, offset = struct.unpack_from("<HII", raw, eocd + 10)
    entries = []
    for _ in range(count):
        nlen, elen, clen = struct.unpack_from("<HHH", raw, offset + 28)
        name = raw[offset + 46 : offset + 46 + nlen].decode()
        entries.append((offset, name, struct.unpack_from("<I", raw, offset + 42)[0]))
        offset += 46 + nlen + elen + clen
    return entries


def shift_offsets(raw: bytearray, delta: int) -> None:
    """Add `delta` to every local-header offset and to the central directory's offset."""
    for central, _, local in central_entries(bytes(raw)):
        struct.pack_into("<I", raw, central + 42, local + delta)
    eocd = raw.rindex(b"PK\x05\x06")
    struct.pack_into("<I", raw, eocd + 16, struct.unpack_from("<I", raw, eocd + 16)[0] + delta)


def entry(raw: bytes, name: str) -> tuple[int, int]:
    return next((c, local) for c, n, local in central_entries(raw) if n == name)


@pytest.fixture
def victim(native_wheels: dict[str, Path], tmp_path: Path) -> Path:
    """A copy of the real cp312 wheel, to damage."""
    source = native_wheels["cp312"]
    copy = tmp_path / "in" / source.name
    copy.parent.mkdir()
    copy.write_bytes(source.read_bytes())
    return copy


def damage(path: Path, change: Callable[[bytearray], None]) -> Path:
    raw = bytearray(path.read_bytes())
    change(raw)
    path.write_bytes(bytes(raw))
    return path


def assert_refused(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    wheel: Path,
    others: list[Path],
    rule: str,
    *needles: str,
) -> None:
    with pytest.raises(UnsafeArchive) as exc:
        load_wheel(wheel)
    assert exc.value.rule == rule, exc.value
    out = tmp_path / "out"
    code = merge_main([*map(str, [*others, wheel]), "-o", str(out)])
    err = capsys.readouterr().err
    assert code == 1, err
    assert err.startswith(f"merge-wheels: error: {wheel.name}: "), err
    for needle in (f"[rule: {rule}]", *needles):
        assert needle in err, (needle, err)
    assert not out.exists() or not any(out.iterdir()), "something was written on refusal"
    assert check_main([str(wheel), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert [p["check"] for p in report["problems"]] == ["UnsafeArchive"]
    assert f"[rule: {rule}]" in report["problems"][0]["message"]


@pytest.fixture
def others(native_wheels: dict[str, Path]) -> list[Path]:
    return [native_wheels[a] for a in ("cp310", "cp311") if a in native_wheels]


# --- the attacks the issue lists -------------------------------------------------------


def test_prepended_bytes(victim, others, tmp_path, capsys) -> None:
    damage(victim, lambda raw: raw.__setitem__(slice(0, 0), b"#!/bin/sh\nexit 0\n"))
    assert_refused(capsys, tmp_path, victim, others, "layout", "does not end at the end record")


def test_prepended_bytes_with_offsets_adjusted(victim, others, tmp_path, capsys) -> None:
    """A self-consistent archive after a prefix (what zipfile accepts silently)."""

    def change(raw: bytearray) -> None:
        shift_offsets(raw, 16)
        raw[0:0] = b"\0" * 16

    damage(victim, change)
    assert_refused(capsys, tmp_path, victim, others, "layout", "16 bytes before the first local")


def test_trailing_bytes(victim, others, tmp_path, capsys) -> None:
    damage(victim, lambda raw: raw.extend(b"trailing"))
    assert_refused(capsys, tmp_path, victim, others, "eocd", "bytes after its end record")


def test_local_header_crc_disagrees(victim, others, tmp_path, capsys) -> None:
    def change(raw: bytearray) -> None:
        _, local = entry(bytes(raw), "tinyext/data.txt")
        struct.pack_into("<I", raw, local + 14, 0xDEADBEEF)

    damage(victim, change)
    assert_refused(capsys, tmp_path, victim, others, "local-header", "tinyext/data.txt", "CRC")


def test_local_header_size_disagrees(victim, others, tmp_path, capsys) -> None:
    def change(raw: bytearray) -> None:
        _, local = entry(bytes(raw), "tinyext/data.txt")
        struct.pack_into("<I", raw, local + 22, 999)  # uncompressed size

    damage(victim, change)
    assert_refused(capsys, tmp_path, victim, others, "local-header", "tinyext/data.txt")


def test_local_header_name_disagrees(victim, others, tmp_path, capsys) -> None:
    def change(raw: bytearray) -> None:
        _, local = entry(bytes(raw), "tinyext/data.txt")
        raw[local + 30 : local + 30 + 8] = b"tinyexT/"

    damage(victim, change)
    assert_refused(capsys, tmp_path, victim, others, "local-header", "local header names")


def test_second_end_record_appended(victim, others, tmp_path, capsys) -> None:
    """One parser reads the first end record, another the last."""

    def change(raw: bytearray) -> None:
        eocd = raw.rindex(b"PK\x05\x06")
        second = bytearray(raw[eocd : eocd + 22])
        struct.pack_into("<HH", second, 8, 1, 1)  # claims one entry
        raw.extend(second)

    damage(victim, change)
    assert_refused(capsys, tmp_path, victim, others, "eocd", "more than one end")


def test_second_end_record_covered_by_a_comment(victim, others, tmp_path, capsys) -> None:
    def change(raw: bytearray) -> None:
        eocd = raw.rindex(b"PK\x05\x06")
        copy = bytes(raw[eocd : eocd + 22])
        struct.pack_into("<H", raw, eocd + 20, 22)
        raw.extend(copy)

    damage(victim, change)
    assert_refused(capsys, tmp_path, victim, others, "eocd", "more than one end")


def test_second_end_record_inside_the_comment(victim, others, tmp_path, capsys) -> None:
    """A scanner that takes the last signature without checking its comment length sees
    the fake record."""

    def change(raw: bytearray) -> None:
        eocd = raw.rindex(b"PK\x05\x06")
        fake = bytearray(raw[eocd : eocd + 22])
        struct.pack_into("<HH", fake, 8, 0, 0)  # no entries
        struct.pack_into("<H", fake, 20, 9)  # and a comment running past the end
        struct.pack_into("<H", raw, eocd + 20, len(fake) + 3)
        raw.extend(fake + b"abc")

    damage(victim, change)
    assert_refused(capsys, tmp_path, victim, others, "eocd", "hides in the archive comment")


def test_offset_into_another_members_data(victim, others, tmp_path, capsys) -> None:
    def change(raw: bytearray) -> None:
        entries = central_entries(bytes(raw))
        (_, _, first_local), (second_central, _, _) = entries[0], entries[1]
        struct.pack_into("<I", raw, second_central + 42, first_local + 30)

    damage(victim, change)
    assert_refused(capsys, tmp_path, victim, others, "layout", "overlaps")


def test_nfc_and_nfd_names(kit, tmp_path, capsys) -> None:
    nfc = unicodedata.normalize("NFC", "tinyext/caf\u00e9.txt")
    nfd = unicodedata.normalize("NFD", nfc)
    wheel = kit.make_wheel(
        tmp_path / "in",
        "cp312-cp312-manylinux_2_17_x86_64",
        kit.synthetic_files("cp312") | {nfc: b"one", nfd: b"two"},
    )
    assert_refused(capsys, tmp_path, wheel, [], "name", "Unicode normalisation")


def test_nfc_and_nfd_names_across_inputs(kit, tmp_path, capsys) -> None:
    nfc = unicodedata.normalize("NFC", "tinyext/caf\u00e9.txt")
    nfd = unicodedata.normalize("NFD", nfc)
    inputs = [
        kit.make_wheel(tmp_path / "in", f"{a}-{a}-manylinux_2_17_x86_64", kit.synthetic_files(a) | {name: b"same"})
        for a, name in (("cp311", nfc), ("cp312", nfd))
    ]
    assert merge_main([*map(str, inputs), "-o", str(tmp_path / "out")]) == 1
    assert "Unicode normalisation" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_case_folded_names(kit, tmp_path, capsys) -> None:
    wheel = kit.make_wheel(
        tmp_path / "in",
        "cp312-cp312-manylinux_2_17_x86_64",
        kit.synthetic_files("cp312") | {"tinyext/STRASSE.py": b"", "tinyext/stra\u00dfe.py": b""},
    )
    assert_refused(capsys, tmp_path, wheel, [], "name", "case folding")


@pytest.mark.parametrize("bits", [0o4000, 0o2000, 0o1000])
def test_setuid_setgid_sticky(kit, tmp_path, capsys, bits: int) -> None:
    wheel = kit.make_wheel(tmp_path / "in", "cp312-cp312-manylinux_2_17_x86_64", kit.synthetic_files("cp312"))
    raw = wheel.read_bytes()
    wheel.unlink()
    with zipfile.ZipFile(io.BytesIO(raw)) as zf:
        members = [(i, zf.read(i)) for i in zf.infolist()]
    for info, _ in members:
        if info.filename == "tinyext/__init__.py":
            info.external_attr = (0o100755 | bits) << 16
    kit.write_zip(wheel, [(info, data, info.external_attr >> 16) for info, data in members])
    assert_refused(capsys, tmp_path, wheel, [], "mode", "tinyext/__init__.py", "setuid")


# --- further rules ----------------------------------------------------------------------


def test_gap_between_members(victim, others, tmp_path, capsys) -> None:
    def change(raw: bytearray) -> None:
        entries = central_entries(bytes(raw))
        second_local = entries[1][2]
        for central, _, local in entries[1:]:
            struct.pack_into("<I", raw, central + 42, local + 4)
        eocd = raw.rindex(b"PK\x05\x06")
        cd = struct.unpack_from("<I", raw, eocd + 16)[0]
        struct.pack_into("<I", raw, eocd + 16, cd + 4)
        raw[second_local:second_local] = b"GAP!"

    damage(victim, change)
    assert_refused(capsys, tmp_path, victim, others, "layout", "a gap of 4 bytes")


def test_bytes_before_central_directory(victim, others, tmp_path, capsys) -> None:
    def change(raw: bytearray) -> None:
        eocd = raw.rindex(b"PK\x05\x06")
        cd = struct.unpack_from("<I", raw, eocd + 16)[0]
        struct.pack_into("<I", raw, eocd + 16, cd + 5)
        raw[cd:cd] = b"hello"

    damage(victim, change)
    assert_refused(capsys, tmp_path, victim, others, "layout", "5 bytes between the last member")


def test_flags_disagree(victim, others, tmp_path, capsys) -> None:
    def change(raw: bytearray) -> None:
        _, local = entry(bytes(raw), "tinyext/data.txt")
        struct.pack_into("<H", raw, local + 6, 0x0800)

    damage(victim, change)
    assert_refused(capsys, tmp_path, victim, others, "local-header", "flags")


@pytest.mark.parametrize(("flag", "rule"), [(0x0001, "flags"), (0x2000, "flags")])
def test_encrypted_or_unknown_flags(victim, others, tmp_path, capsys, flag: int, rule) -> None:
    def change(raw: bytearray) -> None:
        central, local = entry(bytes(raw), "tinyext/data.txt")
        struct.pack_into("<H", raw, central + 8, flag)
        struct.pack_into("<H", raw, local + 6, flag)

    damage(victim, change)
    assert_refused(capsys, tmp_path, victim, others, rule, "tinyext/data.txt")


def test_unsupported_method(victim, others, tmp_path, capsys) -> None:
    def change(raw: bytearray) -> None:
        central, local = entry(bytes(raw), "tinyext/data.txt")
        struct.pack_into("<H", raw, central + 10, 12)  # bzip2
        struct.pack_into("<H", raw, local + 8, 12)

    damage(victim, change)
    assert_refused(capsys, tmp_path, victim, others, "method", "compression method 12")


def test_non_ascii_name_without_utf8_flag(kit, tmp_path, capsys) -> None:
    wheel = kit.make_wheel(
        tmp_path / "in",
        "cp312-cp312-manylinux_2_17_x86_64",
        kit.synthetic_files("cp312") | {"tinyext/\u00e9.txt": b"x"},
    )

    def change(raw: bytearray) -> None:
        central, local = entry(bytes(raw), "tinyext/\u00e9.txt")
        for at in (central + 8, local + 6):
            flags = struct.unpack_from("<H", raw, at)[0]
            struct.pack_into("<H", raw, at, flags & ~0x0800)

    damage(wheel, change)
    assert_refused(capsys, tmp_path, wheel, [], "name", "non-ASCII without the UTF-8 flag")


def test_unicode_path_extra_field(kit, tmp_path, capsys) -> None:
    info = zipfile.ZipInfo("tinyext/a.txt", (2020, 1, 1, 0, 0, 0))
    body = b"\x01" + struct.pack("<I", zlib.crc32(b"tinyext/a.txt")) + b"tinyext/b.txt"
    info.extra = struct.pack("<HH", 0x7075, len(body)) + body
    wheel = kit.write_zip(
        tmp_path / "in" / "tinyext-1.0-cp312-cp312-manylinux_2_17_x86_64.whl",
        [(info, b"x", 0o644)],
    )
    assert_refused(capsys, tmp_path, wheel, [], "name", "Unicode Path")


def test_deflate_stream_shorter_than_stated(victim, others, tmp_path, capsys) -> None:
    """Extra bytes after the end of the deflate stream, inside the stated compressed size."""
    with zipfile.ZipFile(victim) as zf:
        info = zf.getinfo("tinyext/data.txt")
        data = zf.read(info)
    body = zlib.compressobj(6, zlib.DEFLATED, -15)
    stream = body.compress(data) + body.flush() + b"JUNK"
    with zipfile.ZipFile(victim) as zf:
        members = [(i, zf.read(i)) for i in zf.infolist()]
    raw = bytearray()
    centrals = []
    for i, d in members:
        payload = stream if i.filename == "tinyext/data.txt" else zlib.compress(d, 6)[2:-4]
        name = i.filename.encode()
        centrals.append((name, zlib.crc32(d), len(payload), len(d), len(raw)))
        raw += (
            struct.pack(
                "<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0x21, zlib.crc32(d), len(payload), len(d), len(name), 0
            )
            + name
            + payload
        )
    cd = len(raw)
    for name, crc, csize, size, offset in centrals:
        raw += (
            struct.pack(
                "<IHHHHHHIIIHHHHHII",
                0x02014B50,
                0x0314,
                20,
                0,
                8,
                0,
                0x21,
                crc,
                csize,
                size,
                len(name),
                0,
                0,
                0,
                0,
                0o100644 << 16,
                offset,
            )
            + name
        )
    raw += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(centrals), len(centrals), len(raw) - cd, cd, 0)
    victim.write_bytes(bytes(raw))
    assert_refused(capsys, tmp_path, victim, others, "data", "tinyext/data.txt", "does not end exactly")


def test_real_wheels_pass(native_wheels: dict[str, Path]) -> None:
    """The rules refuse nothing that zipfile writes (the inputs and a merged wheel)."""
    for wheel in native_wheels.values():
        archive = read_wheel(wheel)
        with zipfile.ZipFile(wheel) as zf:
            files = {i.filename: i for i in zf.infolist() if not i.is_dir()}
            assert list(archive.entries) == list(files)
            for name, e in archive.entries.items():
                assert (e.size, e.crc) == (files[name].file_size, files[name].CRC)
                assert b"".join(archive.chunks(name)) == zf.read(name)


# --- ZIP64 -----------------------------------------------------------------------------

BIG = (4 << 30) + 4097  # over 4 GiB: ZIP64 sizes, and the next member's offset is ZIP64 too


@functools.cache
def _zeros_crc(size: int) -> int:
    block = bytes(1 << 20)
    crc = 0
    full, rest = divmod(size, len(block))
    for _ in range(full):
        crc = zlib.crc32(block, crc)
    return zlib.crc32(block[:rest], crc)


def write_sparse_zip64(path: Path, tail: bytes) -> None:
    """Stored `big.bin` of BIG zero bytes (a hole in the file), then `tail.txt`, with ZIP64
    extra fields, a ZIP64 end record and locator, laid out as APPNOTE 4.5.3 says."""
    big_name, tail_name = b"pkg/big.bin", b"pkg/tail.txt"
    crc_big, crc_tail = _zeros_crc(BIG), zlib.crc32(tail)
    with path.open("wb") as f:
        local_extra = struct.pack("<HHQQ", 1, 16, BIG, BIG)
        f.write(
            struct.pack(
                "<IHHHHHIIIHH",
                0x04034B50,
                45,
                0,
                0,
                0,
                0x21,
                crc_big,
                0xFFFFFFFF,
                0xFFFFFFFF,
                len(big_name),
                len(local_extra),
            )
        )
        f.write(big_name + local_extra)
        f.seek(BIG, 1)  # sparse: the data is a hole of zeros
        tail_offset = f.tell()
        f.write(
            struct.pack(
                "<IHHHHHIIIHH", 0x04034B50, 20, 0, 0, 0, 0x21, crc_tail, len(tail), len(tail), len(tail_name), 0
            )
            + tail_name
            + tail
        )
        cd = f.tell()
        big_extra = struct.pack("<HHQQ", 1, 16, BIG, BIG)
        f.write(
            struct.pack(
                "<IHHHHHHIIIHHHHHII",
                0x02014B50,
                0x032D,
                45,
                0,
                0,
                0,
                0x21,
                crc_big,
                0xFFFFFFFF,
                0xFFFFFFFF,
                len(big_name),
                len(big_extra),
                0,
                0,
                0,
                0o100644 << 16,
                0,
            )
            + big_name
            + big_extra
        )
        tail_extra = struct.pack("<HHQ", 1, 8, tail_offset)
        f.write(
            struct.pack(
                "<IHHHHHHIIIHHHHHII",
                0x02014B50,
                0x032D,
                45,
                0,
                0,
                0,
                0x21,
                crc_tail,
                len(tail),
                len(tail),
                len(tail_name),
                len(tail_extra),
                0,
                0,
                0,
                0o100644 << 16,
                0xFFFFFFFF,
            )
            + tail_name
            + tail_extra
        )
        z64 = f.tell()
        f.write(struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, 2, 2, z64 - cd, cd))
        f.write(struct.pack("<IIQI", 0x07064B50, 0, z64, 1))
        f.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 2, 2, 0xFFFFFFFF, 0xFFFFFFFF, 0))


@pytest.mark.slow  # writes and reads 4 GiB: ~15 s
def test_zip64_member_over_4_gib(tmp_path: Path) -> None:
    path = tmp_path / "big.zip"
    write_sparse_zip64(path, b"after the hole\n")
    assert path.stat().st_blocks * 512 < (1 << 20), "the file should be sparse"
    with pytest.raises(UnsafeArchive) as exc:
        read_wheel(path)  # the default limit: 4 GiB per member
    assert exc.value.rule == "limits" and exc.value.path == "pkg/big.bin"

    archive = read_wheel(path, Limits(max_member_size=BIG, max_total_size=2 * BIG))
    big, tail = archive.entries["pkg/big.bin"], archive.entries["pkg/tail.txt"]
    assert big.size == big.compressed_size == BIG
    assert tail.data_offset > 1 << 32
    assert b"".join(archive.chunks("pkg/tail.txt")) == b"after the hole\n"
    # zipfile reads the same archive the same way.
    with zipfile.ZipFile(path) as zf:
        assert [(i.filename, i.file_size, i.CRC) for i in zf.infolist()] == [
            (n, e.size, e.crc) for n, e in archive.entries.items()
        ]
    # Streaming checks the CRC over all 4 GiB.
    assert sum(len(chunk) for chunk in archive.chunks("pkg/big.bin")) == BIG


def test_zip64_end_record_must_precede_its_locator(tmp_path: Path) -> None:
    path = tmp_path / "big.zip"
    write_sparse_zip64(path, b"x")
    with path.open("r+b") as f:
        f.seek(-22 - 20 + 8, 2)  # the locator's offset of the ZIP64 end record
        (z64,) = struct.unpack("<Q", f.read(8))
        f.seek(-22 - 20 + 8, 2)
        f.write(struct.pack("<Q", z64 - 1))
    with pytest.raises(UnsafeArchive) as exc:
        read_wheel(path, Limits(max_member_size=BIG, max_total_size=2 * BIG))
    assert exc.value.rule == "zip64"


def test_saturated_end_record_without_locator(victim, others, tmp_path, capsys) -> None:
    def change(raw: bytearray) -> None:
        eocd = raw.rindex(b"PK\x05\x06")
        struct.pack_into("<I", raw, eocd + 16, 0xFFFFFFFF)

    damage(victim, change)
    assert_refused(capsys, tmp_path, victim, others, "zip64", "without a ZIP64 locator")


class _Unseekable(io.RawIOBase):
    """A write-only stream: zipfile then writes data descriptors (flag bit 3)."""

    def __init__(self) -> None:
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:  # type: ignore[override]
        self.data += b
        return len(b)


def streamed_copy(source: Path, target: Path) -> Path:
    stream = _Unseekable()
    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(stream, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            zout.writestr(info, zin.read(info))
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(bytes(stream.data))
    return target


def test_data_descriptors_are_read(native_wheels, others, tmp_path) -> None:
    wheel = streamed_copy(native_wheels["cp312"], tmp_path / "in" / native_wheels["cp312"].name)
    with zipfile.ZipFile(wheel) as zf:
        assert all(i.flag_bits & 0x08 for i in zf.infolist())
    assert load_wheel(wheel).digests == load_wheel(native_wheels["cp312"]).digests
    assert merge_main([*map(str, others), str(wheel), "-o", str(tmp_path / "out")]) == 0


def test_data_descriptor_disagrees(native_wheels, others, tmp_path, capsys) -> None:
    wheel = streamed_copy(native_wheels["cp312"], tmp_path / "in" / native_wheels["cp312"].name)

    def change(raw: bytearray) -> None:
        central, _ = entry(bytes(raw), "tinyext/data.txt")
        (csize,) = struct.unpack_from("<I", raw, central + 20)
        _, local = entry(bytes(raw), "tinyext/data.txt")
        nlen, elen = struct.unpack_from("<HH", raw, local + 26)
        descriptor = local + 30 + nlen + elen + csize
        assert raw[descriptor : descriptor + 4] == b"PK\x07\x08"
        struct.pack_into("<I", raw, descriptor + 4, 0x12345678)  # its CRC

    damage(wheel, change)
    assert_refused(capsys, tmp_path, wheel, others, "descriptor", "tinyext/data.txt")


def test_directories_differing_in_case(kit, tmp_path, capsys) -> None:
    """`Pkg/a.py` and `pkg/b.py`: one directory on macOS and Windows, two on Linux."""
    wheel = kit.make_wheel(
        tmp_path / "in",
        "cp312-cp312-manylinux_2_17_x86_64",
        kit.synthetic_files("cp312") | {"tinyext/Sub/a.py": b"", "tinyext/sub/b.py": b""},
    )
    assert_refused(capsys, tmp_path, wheel, [], "name", "tinyext/sub", "case folding")


def test_directories_differing_in_case_across_inputs(kit, tmp_path, capsys) -> None:
    inputs = [
        kit.make_wheel(tmp_path / "in", f"{a}-{a}-manylinux_2_17_x86_64", kit.synthetic_files(a) | {name: b""})
        for a, name in (("cp311", "tinyext/Sub/a.py"), ("cp312", "tinyext/sub/b.py"))
    ]
    assert merge_main([*map(str, inputs), "-o", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "tinyext/sub: differs only in case or Unicode normalisation from tinyext/Sub" in err
    assert inputs[0].name in err and inputs[1].name in err
    assert not (tmp_path / "out").exists()


def test_input_changed_between_check_and_write(native_wheels, tmp_path) -> None:
    """The writer streams members from the inputs again: an input replaced after it was
    proven is refused (rule changed) and the half-written output removed."""
    copies = []
    for abi in ("cp311", "cp312"):
        copy = tmp_path / "in" / native_wheels[abi].name
        copy.parent.mkdir(exist_ok=True)
        copy.write_bytes(native_wheels[abi].read_bytes())
        copies.append(copy)
    plan = plan_merge([load_wheel(p) for p in copies])
    replacement = copies[1].with_suffix(".new")
    replacement.write_bytes(copies[1].read_bytes())
    replacement.replace(copies[1])  # same bytes, another file
    out = tmp_path / "out"
    with pytest.raises(UnsafeArchive) as exc:
        write_wheel(plan, out, ZIP_EPOCH)
    assert exc.value.rule == "changed" and exc.value.source == copies[1].name
    assert list(out.iterdir()) == []
