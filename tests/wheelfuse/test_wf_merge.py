"""merge-wheels on well-formed inputs: output name, WHEEL, RECORD, order, reproducibility."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from packaging.utils import parse_wheel_filename
from wheelfuse.merge_cli import main as merge_main
from wheelfuse.wheelinfo import load_wheel


def merge(inputs: list[Path], out: Path, *extra: str) -> Path:
    assert merge_main([*map(str, inputs), "-o", str(out), *extra]) == 0
    (result,) = out.glob("*.whl")
    return result


def test_merges_native_wheels(native_wheels: dict[str, Path], tmp_path: Path) -> None:
    inputs = [native_wheels[a] for a in ("cp310", "cp311", "cp312", "cp313") if a in native_wheels]
    if len(inputs) < 2:
        pytest.skip("needs at least two local CPythons between 3.10 and 3.13")
    out = merge(inputs, tmp_path)
    abis = sorted(p.name.split("-")[2] for p in inputs)
    joined = ".".join(sorted(abis))
    assert out.name == f"tinyext-1.0-{joined}-{joined}-manylinux_2_17_x86_64.whl"

    with zipfile.ZipFile(out) as zf:
        names = zf.namelist()
        infos = zf.infolist()
        wheel_text = zf.read("tinyext-1.0.dist-info/WHEEL").decode()
    # Entries sorted, .dist-info last, RECORD the very last.
    body = [n for n in names if not n.startswith("tinyext-1.0.dist-info/")]
    assert names[: len(body)] == sorted(body)
    assert names[-1] == "tinyext-1.0.dist-info/RECORD"
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
    # WHEEL: one Tag line per expanded tag, nothing compressed.
    tag_lines = [line[5:] for line in wheel_text.splitlines() if line.startswith("Tag: ")]
    assert len(tag_lines) == len(abis) ** 2
    assert "." not in "".join(tag_lines)
    # Every per-CPython module survived, RECORD verifies, the name parses with sorted parts.
    loaded = load_wheel(out)
    for abi in abis:
        assert any(f"cpython-{abi[2:]}-" in n for n in names)
    assert set(loaded.digests) == set(names) - {"tinyext-1.0.dist-info/RECORD"}
    parse_wheel_filename(out.name, validate_order=True)


def test_cp39_sorts_after_cp310_as_text(kit, tmp_path: Path) -> None:
    inputs = [
        kit.make_wheel(tmp_path / "in", f"{a}-{a}-manylinux_2_17_x86_64", kit.synthetic_files(a))
        for a in ("cp39", "cp310")
    ]
    out = merge(inputs, tmp_path / "out")
    assert out.name == "tinyext-1.0-cp310.cp39-cp310.cp39-manylinux_2_17_x86_64.whl"


def test_provenance_lists_inputs_and_overrides(kit, tmp_path: Path) -> None:
    inputs = []
    for abi in ("cp311", "cp312"):
        files = kit.synthetic_files(abi) | {
            "tinyext/_build_config.py": f"CC='gcc for {abi}'\n".encode()
        }
        inputs.append(kit.make_wheel(tmp_path / "in", f"{abi}-{abi}-manylinux_2_28_x86_64", files))
    out = merge(inputs, tmp_path / "out", "--take", "tinyext/_build_config.py=cp312")
    with zipfile.ZipFile(out) as zf:
        provenance = json.loads(zf.read("tinyext-1.0.dist-info/wheelfuse.json"))
        assert zf.read("tinyext/_build_config.py") == b"CC='gcc for cp312'\n"
        assert (
            "tinyext-1.0.dist-info/wheelfuse.json,"
            in zf.read("tinyext-1.0.dist-info/RECORD").decode()
        )
    import hashlib

    assert provenance["inputs"] == [
        {"filename": p.name, "sha256": hashlib.sha256(p.read_bytes()).hexdigest()}
        for p in sorted(inputs)
    ]
    assert provenance["overrides"] == [{"path": "tinyext/_build_config.py", "abi": "cp312"}]
    assert provenance["tool"] == "wheelfuse" and provenance["version"]


@pytest.mark.parametrize(
    ("platforms", "expected"),
    [
        (["manylinux_2_28_x86_64", "manylinux_2_34_x86_64"], "manylinux_2_34_x86_64"),
        (["manylinux2014_x86_64", "manylinux_2_28_x86_64"], "manylinux_2_28_x86_64"),
        (
            ["manylinux_2_17_x86_64.manylinux2014_x86_64", "manylinux2014_x86_64"],
            "manylinux2014_x86_64.manylinux_2_17_x86_64",
        ),
        (["manylinux1_x86_64", "manylinux2010_x86_64"], "manylinux2010_x86_64"),
        (["musllinux_1_1_x86_64", "musllinux_1_2_x86_64"], "musllinux_1_2_x86_64"),
        (["win_amd64", "win_amd64"], "win_amd64"),
    ],
)
def test_platform_is_most_restrictive(
    kit, tmp_path: Path, platforms: list[str], expected: str
) -> None:
    inputs = [
        kit.make_wheel(tmp_path / "in", f"{abi}-{abi}-{platform}", kit.synthetic_files(abi))
        for abi, platform in zip(("cp311", "cp312"), platforms, strict=True)
    ]
    out = merge(inputs, tmp_path / "out")
    assert out.name.endswith(f"-{expected}.whl")


def test_same_bytes_whatever_the_order_and_honours_source_date_epoch(
    kit, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inputs = [
        kit.make_wheel(tmp_path / "in", f"{a}-{a}-manylinux_2_17_x86_64", kit.synthetic_files(a))
        for a in ("cp310", "cp311", "cp312")
    ]
    first = merge(inputs, tmp_path / "a").read_bytes()
    assert merge(inputs[::-1], tmp_path / "b").read_bytes() == first
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    stamped = merge(inputs, tmp_path / "c")
    with zipfile.ZipFile(stamped) as zf:
        assert {i.date_time for i in zf.infolist()} == {(2023, 11, 14, 22, 13, 20)}


def test_executable_bits_and_fixed_modes(kit, tmp_path: Path) -> None:
    files = {"tinyext/__init__.py": b"", "tinyext-1.0.data/scripts/run": b"#!python\n"}
    inputs = [
        kit.make_wheel(
            tmp_path / "in",
            f"{a}-{a}-linux_x86_64",
            files | kit.synthetic_files(a),
            executable=["tinyext-1.0.data/scripts/run"],
        )
        for a in ("cp312", "cp313")
    ]
    with zipfile.ZipFile(merge(inputs, tmp_path / "out")) as zf:
        modes = {i.filename: i.external_attr >> 16 for i in zf.infolist()}
    assert modes["tinyext-1.0.data/scripts/run"] == 0o100755
    assert modes["tinyext/__init__.py"] == 0o100644


def test_free_threaded_abi_is_its_own_input(kit, tmp_path: Path) -> None:
    inputs = [
        kit.make_wheel(
            tmp_path / "in", "cp314-cp314-manylinux_2_28_x86_64", kit.synthetic_files("cp314")
        ),
        kit.make_wheel(
            tmp_path / "in",
            "cp314-cp314t-manylinux_2_28_x86_64",
            {
                "tinyext/_spam.cpython-314t-x86_64-linux-gnu.so": b"ft",
                "tinyext/__init__.py": kit.INIT_PY,
                "tinyext/data.txt": b"shared payload\n",
            },
        ),
    ]
    out = merge(inputs, tmp_path / "out")
    assert out.name == "tinyext-1.0-cp314-cp314.cp314t-manylinux_2_28_x86_64.whl"


def test_vendor_dir_writes_import_package(native_wheels: dict[str, Path], tmp_path: Path) -> None:
    inputs = list(native_wheels.values())[:2]
    vendor = tmp_path / "third_party"
    merge(inputs, tmp_path / "out", "--vendor-dir", str(vendor))
    assert sorted(p.name for p in vendor.iterdir()) == ["tinyext"]
    assert (vendor / "tinyext" / "__init__.py").read_bytes() == b"from ._spam import hello\n"
    assert len(list((vendor / "tinyext").glob("_spam.cpython-*.so"))) == 2
    # A second run refuses rather than overwrite, and writes no wheel.
    code = merge_main(
        [*map(str, inputs), "-o", str(tmp_path / "out2"), "--vendor-dir", str(vendor)]
    )
    assert code == 1 and not (tmp_path / "out2").exists()


def test_vendor_dir_maps_data_purelib_and_platlib(kit, tmp_path: Path) -> None:
    extra = {
        "tinyext-1.0.data/platlib/tinyext_plugins/__init__.py": b"",
        "tinyext-1.0.data/purelib/tinyext_pure.py": b"X = 1\n",
        "tinyext-1.0.data/scripts/tinyext-tool": b"#!python\n",
        "tinyext-1.0.data/headers/spam.h": b"/* header */\n",
    }
    inputs = [
        kit.make_wheel(tmp_path / "in", f"{a}-{a}-linux_x86_64", kit.synthetic_files(a) | extra)
        for a in ("cp312", "cp313")
    ]
    vendor = tmp_path / "vendor"
    merge(inputs, tmp_path / "out", "--vendor-dir", str(vendor))
    found = sorted(str(p.relative_to(vendor)) for p in vendor.rglob("*") if p.is_file())
    assert found == [
        "tinyext/__init__.py",
        "tinyext/_spam.cpython-312-x86_64-linux-gnu.so",
        "tinyext/_spam.cpython-313-x86_64-linux-gnu.so",
        "tinyext/data.txt",
        "tinyext_plugins/__init__.py",
        "tinyext_pure.py",
    ]
    assert not [p for p in vendor.iterdir() if p.name.startswith(".")], "staging left behind"


def test_console_scripts_are_wired() -> None:
    from importlib.metadata import entry_points

    from wheelfuse import check_cli, merge_cli

    scripts = {ep.name: ep for ep in entry_points(group="console_scripts")}
    assert scripts["merge-wheels"].load() is merge_cli.main
    assert scripts["check-wheel"].load() is check_cli.main


def test_cli_runs_as_a_module(kit, tmp_path: Path) -> None:
    import subprocess
    import sys

    wheel = kit.make_wheel(
        tmp_path / "in", "cp312-cp312-linux_x86_64", kit.synthetic_files("cp312")
    )
    done = subprocess.run(
        [sys.executable, "-m", "wheelfuse.merge_cli", str(wheel), "-o", str(tmp_path / "out")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("tinyext-1.0-cp312-cp312-linux_x86_64.whl")
