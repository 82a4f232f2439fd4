"""Every refusal: exit 1, a message naming the input and the path or tag, nothing written."""

from __future__ import annotations

import struct
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from wheelfuse.archive import Limits, read_wheel
from wheelfuse.check_cli import main as check_main
from wheelfuse.errors import UnsafeArchive
from wheelfuse.merge_cli import main as merge_main

PLAT = "manylinux_2_17_x86_64"


def rewrite(
    path: Path,
    change: Callable[[list[tuple[zipfile.ZipInfo, bytes]]], list[tuple[zipfile.ZipInfo, bytes]]],
) -> Path:
    """Rebuild the zip at `path` with its members passed through `change` (no RECORD fix-up)."""
    with zipfile.ZipFile(path) as zf:
        members = [(info, zf.read(info)) for info in zf.infolist()]
    path.unlink()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for info, data in change(members):
            zf.writestr(info, data)
    return path


def good(kit, directory: Path, abi: str = "cp311", **kwargs) -> Path:
    files = kwargs.pop("files", None) or kit.synthetic_files(abi)
    return kit.make_wheel(directory, f"{abi}-{abi}-{kwargs.pop('platform', PLAT)}", files, **kwargs)


def refused(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    inputs: list[Path],
    *needles: str,
    extra: tuple[str, ...] = (),
) -> str:
    out = tmp_path / "out"
    code = merge_main([*map(str, inputs), "-o", str(out), *extra])
    err = capsys.readouterr().err
    assert code == 1, err
    assert err.startswith("merge-wheels: error: "), err
    for needle in needles:
        assert needle in err, (needle, err)
    assert not out.exists() or not any(out.iterdir()), "something was written on refusal"
    return err


# --- archive level -------------------------------------------------------------------


def test_not_a_zip(kit, tmp_path, capsys) -> None:
    bogus = tmp_path / "in" / "tinyext-1.0-cp311-cp311-manylinux_2_17_x86_64.whl"
    bogus.parent.mkdir()
    bogus.write_bytes(b"this is not a zip archive")
    refused(capsys, tmp_path, [bogus, good(kit, tmp_path / "in", "cp312")], bogus.name, "not a zip")


def test_truncated(kit, tmp_path, capsys) -> None:
    wheel = good(kit, tmp_path / "in")
    wheel.write_bytes(wheel.read_bytes()[:-40])
    refused(capsys, tmp_path, [wheel], wheel.name, "truncated")


def test_truncated_member_data(kit, tmp_path, capsys) -> None:
    wheel = good(
        kit,
        tmp_path / "in",
        files={"tinyext/big.bin": bytes(range(256)) * 400, "tinyext/__init__.py": b""},
    )
    raw = bytearray(wheel.read_bytes())
    offset = raw.index(b"tinyext/big.bin") + 100  # inside the deflated data of the first member
    raw[offset : offset + 200] = bytes(200)
    wheel.write_bytes(bytes(raw))
    refused(capsys, tmp_path, [wheel], wheel.name, "tinyext/big.bin", "[rule: data]")


def test_size_lie_is_caught(kit, tmp_path, capsys) -> None:
    wheel = good(kit, tmp_path / "in")
    raw = bytearray(wheel.read_bytes())
    central = raw.index(b"PK\x01\x02")  # first central directory header: tinyext/__init__.py
    struct.pack_into("<I", raw, central + 24, 3)  # uncompressed size: 3 instead of 26
    wheel.write_bytes(bytes(raw))
    refused(capsys, tmp_path, [wheel], wheel.name, "tinyext/__init__.py")


def test_duplicate_entries(kit, tmp_path, capsys) -> None:
    wheel = kit.write_zip(
        tmp_path / "in" / "tinyext-1.0-cp311-cp311-manylinux_2_17_x86_64.whl",
        [("tinyext/__init__.py", b"a", 0o644), ("tinyext/__init__.py", b"b", 0o644)],
    )
    refused(capsys, tmp_path, [wheel], wheel.name, "tinyext/__init__.py", "duplicate zip entry")


@pytest.mark.parametrize(
    ("name", "what"),
    [
        ("/etc/evil", "absolute path"),
        ("C:/evil", "absolute path"),
        ("tinyext/../../evil", "'..'"),
        ("tinyext/./evil", "'..', '.'"),
        ("tinyext//evil", "empty component"),
        ("tinyext\\..\\evil", "backslash"),
    ],
)
def test_unsafe_paths(kit, tmp_path, capsys, name: str, what: str) -> None:
    wheel = good(kit, tmp_path / "in", files=kit.synthetic_files("cp311") | {name: b"x"})
    refused(capsys, tmp_path, [wheel], wheel.name, what)


def test_symlink(kit, tmp_path, capsys) -> None:
    wheel = kit.write_zip(
        tmp_path / "in" / "tinyext-1.0-cp311-cp311-manylinux_2_17_x86_64.whl",
        [("tinyext/__init__.py", b"", 0o644), ("tinyext/link", b"/etc/passwd", 0o120777)],
    )
    refused(capsys, tmp_path, [wheel], wheel.name, "tinyext/link", "symbolic link")


def test_special_file(kit, tmp_path, capsys) -> None:
    wheel = kit.write_zip(
        tmp_path / "in" / "tinyext-1.0-cp311-cp311-manylinux_2_17_x86_64.whl",
        [("tinyext/fifo", b"", 0o010644)],
    )
    refused(capsys, tmp_path, [wheel], wheel.name, "tinyext/fifo", "special file")


def test_zip_bomb_ratio(kit, tmp_path, capsys) -> None:
    wheel = good(
        kit,
        tmp_path / "in",
        files=kit.synthetic_files("cp311") | {"tinyext/zeros.bin": bytes(8 << 20)},
    )
    refused(capsys, tmp_path, [wheel], wheel.name, "tinyext/zeros.bin", "zip bomb")


def test_absurd_stated_size(kit, tmp_path) -> None:
    wheel = good(
        kit, tmp_path / "in", files=kit.synthetic_files("cp311") | {"tinyext/blob": b"x" * 5000}
    )
    with pytest.raises(UnsafeArchive, match="uncompressed size 5000 is absurd"):
        read_wheel(wheel, Limits(max_member_size=4096))
    with pytest.raises(UnsafeArchive, match="total uncompressed size"):
        read_wheel(wheel, Limits(max_total_size=4096))


# --- RECORD --------------------------------------------------------------------------


def _replace(name: str, data: bytes):
    return lambda members: [(i, data if i.filename == name else d) for i, d in members]


def test_record_hash_mismatch(kit, tmp_path, capsys) -> None:
    wheel = rewrite(good(kit, tmp_path / "in"), _replace("tinyext/data.txt", b"shared payloaD\n"))
    refused(capsys, tmp_path, [wheel], wheel.name, "tinyext/data.txt", "hash does not match RECORD")


def test_record_size_mismatch(kit, tmp_path, capsys) -> None:
    wheel = good(kit, tmp_path / "in")
    with zipfile.ZipFile(wheel) as zf:
        record = zf.read("tinyext-1.0.dist-info/RECORD").decode()
    record = record.replace(",15\n", ",16\n")  # data.txt is 15 bytes
    wheel = rewrite(wheel, _replace("tinyext-1.0.dist-info/RECORD", record.encode()))
    refused(capsys, tmp_path, [wheel], wheel.name, "tinyext/data.txt", "does not match RECORD's 16")


def test_file_missing_from_archive(kit, tmp_path, capsys) -> None:
    wheel = rewrite(
        good(kit, tmp_path / "in"),
        lambda m: [(i, d) for i, d in m if i.filename != "tinyext/data.txt"],
    )
    refused(capsys, tmp_path, [wheel], wheel.name, "tinyext/data.txt", "missing from the archive")


def test_file_not_in_record(kit, tmp_path, capsys) -> None:
    extra = zipfile.ZipInfo("tinyext/smuggled.py")
    wheel = rewrite(good(kit, tmp_path / "in"), lambda m: [*m, (extra, b"import os\n")])
    refused(capsys, tmp_path, [wheel], wheel.name, "tinyext/smuggled.py", "not listed in RECORD")


def test_weak_record_hash(kit, tmp_path, capsys) -> None:
    wheel = good(kit, tmp_path / "in")
    with zipfile.ZipFile(wheel) as zf:
        lines = zf.read("tinyext-1.0.dist-info/RECORD").decode().splitlines()
    lines[0] = "tinyext/__init__.py,md5=AAAA,26"
    wheel = rewrite(
        wheel, _replace("tinyext-1.0.dist-info/RECORD", ("\n".join(lines) + "\n").encode())
    )
    refused(capsys, tmp_path, [wheel], wheel.name, "tinyext/__init__.py", "'md5' not allowed")


# --- wheel metadata ------------------------------------------------------------------


def test_wheel_tags_disagree_with_file_name(kit, tmp_path, capsys) -> None:
    wheel = good(kit, tmp_path / "in", wheel_tags=["cp312-cp312-manylinux_2_17_x86_64"])
    refused(capsys, tmp_path, [wheel], wheel.name, "WHEEL", "Tag lines disagree")


def test_two_dist_info_dirs(kit, tmp_path, capsys) -> None:
    wheel = good(
        kit,
        tmp_path / "in",
        files=kit.synthetic_files("cp311") | {"other-1.0.dist-info/METADATA": b""},
    )
    refused(capsys, tmp_path, [wheel], wheel.name, "exactly one .dist-info")


def test_unknown_wheel_major_version(kit, tmp_path, capsys) -> None:
    wheel = good(kit, tmp_path / "in")
    text = b"Wheel-Version: 2.0\nRoot-Is-Purelib: false\nTag: cp311-cp311-manylinux_2_17_x86_64\n"
    wheel.unlink()
    wheel = kit.make_wheel(tmp_path / "in", f"cp311-cp311-{PLAT}", kit.synthetic_files("cp311"))
    with zipfile.ZipFile(wheel) as zf:
        record = zf.read("tinyext-1.0.dist-info/RECORD").decode()
    old = next(
        line for line in record.splitlines() if line.startswith("tinyext-1.0.dist-info/WHEEL,")
    )
    record = record.replace(old, kit.record_line("tinyext-1.0.dist-info/WHEEL", text))
    wheel = rewrite(
        wheel,
        lambda m: [
            (
                i,
                text
                if i.filename.endswith("/WHEEL")
                else record.encode()
                if i.filename.endswith("/RECORD")
                else d,
            )
            for i, d in m
        ],
    )
    refused(capsys, tmp_path, [wheel], wheel.name, "Wheel-Version '2.0'")


def test_bad_file_name(kit, tmp_path, capsys) -> None:
    wheel = good(kit, tmp_path / "in")
    renamed = wheel.with_name("tinyext.whl")
    wheel.rename(renamed)
    refused(capsys, tmp_path, [renamed], "tinyext.whl", "not a valid wheel file name")


# --- merge rules ---------------------------------------------------------------------


def test_different_names(kit, tmp_path, capsys) -> None:
    a = good(kit, tmp_path / "in", "cp311")
    b = good(kit, tmp_path / "in", "cp312", name="otherext")
    refused(capsys, tmp_path, [a, b], b.name, "name otherext differs from tinyext")


def test_different_versions(kit, tmp_path, capsys) -> None:
    a = good(kit, tmp_path / "in", "cp311")
    b = good(kit, tmp_path / "in", "cp312", version="1.1")
    refused(capsys, tmp_path, [a, b], b.name, "version 1.1 differs from 1.0")


def test_different_metadata(kit, tmp_path, capsys) -> None:
    a = good(kit, tmp_path / "in", "cp311")
    b = good(kit, tmp_path / "in", "cp312", meta=kit.metadata() + b"Summary: other\n")
    refused(capsys, tmp_path, [a, b], b.name, "tinyext-1.0.dist-info/METADATA", "METADATA differs")


@pytest.mark.parametrize(
    "tag",
    [
        "cp312-abi3-manylinux_2_17_x86_64",
        "cp312-none-manylinux_2_17_x86_64",
        "py3-none-any",
        "py3-none-manylinux_2_17_x86_64",
        "pp310-pypy310_pp73-manylinux_2_17_x86_64",
    ],
)
def test_not_per_cpython(kit, tmp_path, capsys, tag: str) -> None:
    a = good(kit, tmp_path / "in", "cp311")
    b = kit.make_wheel(tmp_path / "in", tag, kit.synthetic_files("cp312"))
    refused(capsys, tmp_path, [a, b], b.name, "tag")


def test_same_cpython_tag_twice(kit, tmp_path, capsys) -> None:
    a = good(kit, tmp_path / "a", "cp312")
    b = good(kit, tmp_path / "b", "cp312", platform="manylinux_2_28_x86_64")
    refused(capsys, tmp_path, [a, b], "CPython tag cp312 is also in")


def test_already_merged_overlap(kit, tmp_path) -> None:
    inputs = [good(kit, tmp_path / "in", a) for a in ("cp311", "cp312")]
    assert merge_main([*map(str, inputs), "-o", str(tmp_path / "m")]) == 0
    (merged,) = (tmp_path / "m").glob("*.whl")
    assert merge_main([str(merged), str(inputs[0]), "-o", str(tmp_path / "again")]) == 1
    assert not (tmp_path / "again").exists()


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("manylinux_2_17_x86_64", "win_amd64"),
        ("manylinux_2_17_x86_64", "manylinux_2_17_aarch64"),
        ("manylinux_2_17_x86_64", "musllinux_1_2_x86_64"),
        ("win_amd64", "win32"),
    ],
)
def test_mixed_platforms(kit, tmp_path, capsys, first: str, second: str) -> None:
    a = good(kit, tmp_path / "in", "cp311", platform=first)
    b = good(kit, tmp_path / "in", "cp312", platform=second)
    refused(
        capsys, tmp_path, [a, b], b.name, f"platform {second} cannot share a wheel with {first}"
    )


def _config_wheels(kit, directory: Path) -> list[Path]:
    return [
        good(
            kit,
            directory,
            abi,
            files=kit.synthetic_files(abi) | {"tinyext/_config.py": f"ABI = {abi!r}\n".encode()},
        )
        for abi in ("cp311", "cp312")
    ]


def test_path_conflict_is_refused_naming_both_inputs(kit, tmp_path, capsys) -> None:
    inputs = _config_wheels(kit, tmp_path / "in")
    err = refused(capsys, tmp_path, inputs, "tinyext/_config.py", "bytes differ", "--take")
    assert inputs[0].name in err and inputs[1].name in err


def test_path_conflict_resolved_by_take(kit, tmp_path) -> None:
    inputs = _config_wheels(kit, tmp_path / "in")
    assert (
        merge_main(
            [*map(str, inputs), "-o", str(tmp_path / "out"), "--take", "tinyext/_config.py=cp311"]
        )
        == 0
    )
    (out,) = (tmp_path / "out").glob("*.whl")
    with zipfile.ZipFile(out) as zf:
        assert zf.read("tinyext/_config.py") == b"ABI = 'cp311'\n"


def test_take_naming_unknown_tag(kit, tmp_path, capsys) -> None:
    inputs = _config_wheels(kit, tmp_path / "in")
    refused(
        capsys,
        tmp_path,
        inputs,
        "--take tinyext/_config.py=cp39",
        "no input for cp39",
        extra=("--take", "tinyext/_config.py=cp39"),
    )


def test_take_naming_a_path_without_conflict(kit, tmp_path, capsys) -> None:
    inputs = _config_wheels(kit, tmp_path / "in")
    refused(
        capsys,
        tmp_path,
        inputs,
        "--take tinyext/data.txt=cp311",
        "does not differ",
        extra=("--take", "tinyext/_config.py=cp311", "--take", "tinyext/data.txt=cp311"),
    )


def test_take_syntax_is_a_usage_error(kit, tmp_path, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        merge_main(
            [
                str(good(kit, tmp_path / "in")),
                "-o",
                str(tmp_path / "out"),
                "--take",
                "no-equals-sign",
            ]
        )
    assert exc.value.code == 2


def test_case_only_collision(kit, tmp_path, capsys) -> None:
    a = good(
        kit, tmp_path / "in", "cp311", files=kit.synthetic_files("cp311") | {"tinyext/README": b"a"}
    )
    b = good(
        kit, tmp_path / "in", "cp312", files=kit.synthetic_files("cp312") | {"tinyext/readme": b"a"}
    )
    refused(
        capsys,
        tmp_path,
        [a, b],
        "tinyext/readme",
        "differs only in case or Unicode normalisation from tinyext/README",
    )


def test_file_and_directory_collision(kit, tmp_path, capsys) -> None:
    a = good(
        kit, tmp_path / "in", "cp311", files=kit.synthetic_files("cp311") | {"tinyext/sub": b"a"}
    )
    b = good(
        kit,
        tmp_path / "in",
        "cp312",
        files=kit.synthetic_files("cp312") | {"tinyext/sub/x.py": b"a"},
    )
    refused(capsys, tmp_path, [a, b], "tinyext/sub", "is a file here and a directory in")


def test_missing_input_file(tmp_path, capsys) -> None:
    refused(
        capsys,
        tmp_path,
        [tmp_path / "nope-1.0-cp311-cp311-linux_x86_64.whl"],
        "nope-1.0",
        "cannot read",
    )


# --- Windows wheels get the same rules ----------------------------------------------


def test_windows_pyd_conflict_and_record(kit, windows_wheels, tmp_path, capsys) -> None:
    a, b = windows_wheels["cp311"], windows_wheels["cp312"]
    assert merge_main([str(a), str(b), "-o", str(tmp_path / "ok")]) == 0
    (merged,) = (tmp_path / "ok").glob("*.whl")
    assert merged.name == "tinyext-1.0-cp311.cp312-cp311.cp312-win_amd64.whl"
    tampered = tmp_path / "bad" / a.name
    tampered.parent.mkdir()
    tampered.write_bytes(a.read_bytes())
    rewrite(tampered, _replace("tinyext/_spam.cp311-win_amd64.pyd", b"MZ not really"))
    refused(
        capsys,
        tmp_path,
        [tampered, b],
        tampered.name,
        "tinyext/_spam.cp311-win_amd64.pyd",
        "hash does not match",
    )


# --- check-wheel fails closed on hostile archives too ---------------------------------


@pytest.mark.parametrize("damage", ["not-zip", "symlink", "record"])
def test_check_wheel_refuses_hostile(kit, tmp_path, capsys, damage: str) -> None:
    wheel = good(kit, tmp_path / "in")
    if damage == "not-zip":
        wheel.write_bytes(b"nope")
    elif damage == "symlink":
        kit.write_zip(wheel, [("tinyext/link", b"/etc/passwd", 0o120777)])
    else:
        rewrite(wheel, _replace("tinyext/data.txt", b"changed"))
    assert check_main([str(wheel), "--json"]) == 1
    assert '"ok": false' in capsys.readouterr().out


def test_overlapping_entries(kit, tmp_path, capsys) -> None:
    """Two central-directory entries pointing at one local header (overlap zip bombs)."""
    wheel = good(kit, tmp_path / "in")
    raw = bytearray(wheel.read_bytes())
    first = raw.index(b"PK\x01\x02")
    second = raw.index(b"PK\x01\x02", first + 4)
    offset = struct.unpack_from("<I", raw, first + 42)[0]
    struct.pack_into("<I", raw, second + 42, offset)
    wheel.write_bytes(bytes(raw))
    refused(capsys, tmp_path, [wheel], wheel.name, "tinyext/data.txt", "overlaps", "[rule: layout]")


def test_bad_source_date_epoch(kit, tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    refused(capsys, tmp_path, [good(kit, tmp_path / "in")], "SOURCE_DATE_EPOCH", "not a valid time")
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "100")
    refused(capsys, tmp_path, [good(kit, tmp_path / "in2")], "outside what a zip can store")


def test_check_wheel_usage_errors(kit, tmp_path) -> None:
    with pytest.raises(SystemExit) as exc:
        check_main([str(good(kit, tmp_path / "in")), "--python-range", ">=three"])
    assert exc.value.code == 2
