"""check-wheel: what passes, and each way a wheel fails."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from wheelfuse.check import check_wheel
from wheelfuse.check_cli import main as check_main
from wheelfuse.merge_cli import main as merge_main

PLAT = "manylinux_2_17_x86_64"
ABIS = ("cp310", "cp311", "cp312", "cp313")


@pytest.fixture(scope="session")
def elf(built_extensions: dict[str, tuple[str, bytes]]) -> bytes:
    """A real x86-64 extension module exporting PyInit__spam (which CPython built it does
    not matter to the checks that use it: they look at names, tags and exports)."""
    return next(iter(built_extensions.values()))[1]


def linux_wheel(
    kit,
    directory: Path,
    abis: tuple[str, ...],
    elf: bytes,
    *,
    platform: str = PLAT,
    extra: dict[str, bytes] | None = None,
    skip: tuple[str, ...] = (),
    meta: bytes | None = None,
) -> Path:
    files = {"tinyext/__init__.py": kit.INIT_PY}
    for abi in abis:
        if abi not in skip:
            files[f"tinyext/_spam.cpython-{abi[2:]}-x86_64-linux-gnu.so"] = elf
    files |= extra or {}
    joined = ".".join(sorted(abis))
    interpreters = ".".join(sorted({a.removesuffix("t") for a in abis}))
    return kit.make_wheel(directory, f"{interpreters}-{joined}-{platform}", files, meta=meta)


def problems(report) -> list[str]:
    return [f"{p.check}: {p.message}" for p in report.problems]


def test_merged_native_wheel_passes(native_wheels: dict[str, Path], tmp_path: Path, capsys) -> None:
    inputs = [native_wheels[a] for a in ABIS if a in native_wheels]
    if len(inputs) != 4:
        pytest.skip("needs CPython 3.10, 3.11, 3.12 and 3.13 under /root/.pyenv/versions")
    assert merge_main([*map(str, inputs), "-o", str(tmp_path)]) == 0
    (merged,) = tmp_path.glob("*.whl")
    capsys.readouterr()
    assert check_main([str(merged)]) == 0
    table = capsys.readouterr().out
    assert "known CPython minors: 3.8 3.9 3.10 3.11 3.12 3.13 3.14 3.15" in table
    assert table.rstrip().endswith("OK")
    assert check_main([str(merged), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["schema"] == 1 and report["ok"] is True and report["problems"] == []
    assert report["python"]["required_abis"] == list(ABIS)
    assert report["python"]["open_ended"] is False
    assert [row["abi"] for row in report["abis"]] == list(ABIS)
    assert all(
        m["module"] == "tinyext._spam" and m["ok"] for row in report["abis"] for m in row["modules"]
    )
    assert report["policy"]["claimed"] == [PLAT]
    assert report["policy"]["external_libs"] == []


def test_missing_cpython(kit, elf, tmp_path) -> None:
    wheel = linux_wheel(kit, tmp_path, ("cp310", "cp311", "cp313"), elf)
    report = check_wheel(wheel)
    assert not report.ok
    assert any("admits cp312 but no cp312 tag" in p for p in problems(report))
    assert any("no extension module for cp312" in p for p in problems(report))


def test_open_ended_range_is_resolved_against_known_minors(kit, elf, tmp_path, capsys) -> None:
    wheel = linux_wheel(kit, tmp_path, ABIS, elf)
    assert check_main([str(wheel), "--python-range", ">=3.10", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["python"]["open_ended"] is True
    assert report["python"]["source"] == "--python-range"
    assert report["python"]["required_abis"] == [
        "cp310",
        "cp311",
        "cp312",
        "cp313",
        "cp314",
        "cp315",
    ]
    assert {p["abi"] for p in report["problems"]} == {"cp314", "cp315"}


def test_free_threaded_is_a_separate_abi(kit, elf, tmp_path) -> None:
    meta = kit.metadata(">=3.14,<3.15")
    plain = linux_wheel(kit, tmp_path / "a", ("cp314",), elf, meta=meta)
    assert check_wheel(plain).ok
    report = check_wheel(plain, free_threaded=True)
    assert any("admits cp314t" in p for p in problems(report))
    both = linux_wheel(kit, tmp_path / "b", ("cp314", "cp314t"), elf, meta=meta)
    assert check_wheel(both, free_threaded=True).ok, problems(check_wheel(both, free_threaded=True))


def test_tag_without_binary(kit, elf, tmp_path) -> None:
    report = check_wheel(linux_wheel(kit, tmp_path, ABIS, elf, skip=("cp311",)))
    assert any("no extension module for cp311" in p for p in problems(report))
    assert any("layout" in p and "cp311" in p for p in problems(report)) is False


def test_binary_without_tag(kit, elf, tmp_path) -> None:
    stray = {"tinyext/_spam.cpython-39-x86_64-linux-gnu.so": elf}
    report = check_wheel(linux_wheel(kit, tmp_path, ABIS, elf, extra=stray))
    assert any("module(s) for cp39, which the wheel has no tag for" in p for p in problems(report))


def test_tag_outside_requires_python(kit, elf, tmp_path) -> None:
    report = check_wheel(linux_wheel(kit, tmp_path, ("cp39", *ABIS), elf))
    assert any("tag cp39 is outside Requires-Python" in p for p in problems(report))


def test_layout_differs_between_pythons(kit, elf, tmp_path) -> None:
    extra = {
        f"tinyext/ops/_eggs.cpython-{a[2:]}-x86_64-linux-gnu.so": elf
        for a in ("cp310", "cp311", "cp313")
    }
    report = check_wheel(linux_wheel(kit, tmp_path, ABIS, elf, extra=extra))
    assert any(
        "cp312 lacks module(s) the other CPythons have: tinyext.ops._eggs" in p
        for p in problems(report)
    )
    # ... and the _eggs binaries export PyInit__spam, not PyInit__eggs:
    assert any("does not export PyInit__eggs" in p for p in problems(report))


def test_invalid_binaries(kit, elf, tmp_path, windows_wheels) -> None:
    import zipfile

    with zipfile.ZipFile(windows_wheels["cp312"]) as zf:
        pe = zf.read("tinyext/_spam.cp312-win_amd64.pyd")
    extra = {
        "tinyext/_spam.cpython-311-x86_64-linux-gnu.so": b"\x7fELF garbage",
        "tinyext/_spam.cpython-312-x86_64-linux-gnu.so": pe,
        "tinyext/_spam.cpython-313-aarch64-linux-gnu.so": elf,
    }
    report = check_wheel(
        linux_wheel(kit, tmp_path, ABIS, elf, extra=extra, skip=("cp311", "cp312"))
    )
    found = problems(report)
    assert any("cp311" not in p and "not a valid ELF" in p for p in found)
    assert any("built for aarch64-linux-gnu" in p for p in found)


def test_unsorted_file_name_tags(kit, elf, tmp_path) -> None:
    files = {"tinyext/__init__.py": kit.INIT_PY}
    files |= {f"tinyext/_spam.cpython-{a[2:]}-x86_64-linux-gnu.so": elf for a in ("cp310", "cp39")}
    wheel = kit.make_wheel(
        tmp_path, f"cp39.cp310-cp39.cp310-{PLAT}", files, meta=kit.metadata(">=3.9,<3.11")
    )
    report = check_wheel(wheel)
    assert any("sorted order" in p for p in problems(report)), problems(report)


def test_no_requires_python(kit, elf, tmp_path) -> None:
    meta = kit.metadata().replace(b"Requires-Python: >=3.10,<3.14\n", b"")
    wheel = linux_wheel(kit, tmp_path, ABIS, elf, meta=meta)
    assert any("no Requires-Python" in p for p in problems(check_wheel(wheel)))
    assert check_wheel(wheel, python_range=">=3.10,<3.14").ok


def _compile(tmp_path: Path, name: str, source: str, *flags: str) -> bytes:
    (tmp_path / f"{name}.c").write_text(source)
    out = tmp_path / f"{name}.so"
    subprocess.run(
        ["gcc", "-shared", "-fPIC", str(tmp_path / f"{name}.c"), "-o", str(out), *flags], check=True
    )
    return out.read_bytes()


def test_policy_must_be_at_least_as_permissive_as_the_claim(kit, tmp_path) -> None:
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed")
    # pthread_create@GLIBC_2.34: binaries built on glibc >= 2.34 need manylinux_2_34.
    source = (
        "#include <pthread.h>\nstatic void *f(void *a) { return a; }\n"
        "int PyInit__spam(void) { pthread_t t; return pthread_create(&t, 0, f, 0); }\n"
    )
    binary = _compile(tmp_path, "pt", source, "-pthread")
    claims_too_much = linux_wheel(
        kit, tmp_path / "a", ("cp312",), binary, meta=kit.metadata(">=3.12,<3.13")
    )
    report = check_wheel(claims_too_much)
    assert any(
        f"claims {PLAT} but auditwheel finds the binaries consistent only with manylinux_2_34" in p
        for p in problems(report)
    ), problems(report)
    honest = linux_wheel(
        kit,
        tmp_path / "b",
        ("cp312",),
        binary,
        meta=kit.metadata(">=3.12,<3.13"),
        platform="manylinux_2_34_x86_64",
    )
    assert check_wheel(honest).ok, problems(check_wheel(honest))


def test_only_allowed_external_libraries(kit, tmp_path) -> None:
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed")
    lib_dir = tmp_path / "lib"
    lib_dir.mkdir()
    (lib_dir / "foo.c").write_text("int foo(void) { return 1; }\n")
    subprocess.run(
        [
            "gcc",
            "-shared",
            "-fPIC",
            "-Wl,-soname,libtorch_fake.so",
            str(lib_dir / "foo.c"),
            "-o",
            str(lib_dir / "libtorch_fake.so"),
        ],
        check=True,
    )
    source = "int foo(void);\nint PyInit__spam(void) { return foo(); }\n"
    binary = _compile(tmp_path, "uses_foo", source, f"-L{lib_dir}", "-ltorch_fake")
    wheel = linux_wheel(kit, tmp_path / "w", ("cp312",), binary, meta=kit.metadata(">=3.12,<3.13"))
    # libtorch*.so is on the default allow list ...
    assert check_wheel(wheel).ok, problems(check_wheel(wheel))
    # ... and with a list that does not allow it, the library must have been grafted.
    report = check_wheel(wheel, allowed_external=("libcudart.so.*",))
    assert any(
        "un-grafted libraries outside the allow list: libtorch_fake.so" in p
        for p in problems(report)
    ), problems(report)


def test_windows_wheel(windows_wheels, tmp_path, capsys) -> None:
    assert merge_main([*map(str, windows_wheels.values()), "-o", str(tmp_path)]) == 0
    (merged,) = tmp_path.glob("*.whl")
    capsys.readouterr()
    assert check_main([str(merged), "--json"]) == 0, capsys.readouterr().out
    report = json.loads(capsys.readouterr().out)
    assert [m["path"] for row in report["abis"] for m in row["modules"]] == [
        f"tinyext/_spam.{abi}-win_amd64.pyd" for abi in ABIS
    ]
    assert "auditwheel covers Linux only" in report["policy"]["note"]


def test_windows_pyd_must_be_pe(kit, elf, windows_wheels, tmp_path) -> None:
    files = {"tinyext/__init__.py": kit.INIT_PY, "tinyext/_spam.cp312-win_amd64.pyd": elf}
    wheel = kit.make_wheel(
        tmp_path, "cp312-cp312-win_amd64", files, meta=kit.metadata(">=3.12,<3.13")
    )
    assert any("not a valid PE" in p for p in problems(check_wheel(wheel)))
