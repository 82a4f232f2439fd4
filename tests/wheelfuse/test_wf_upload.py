"""check-wheel's PyPI upload preflight: METADATA judged as `twine check --strict` judges it
(a differential against twine itself), WHEEL Tag lines expanded, the size limit warning."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from twine.commands.check import check as twine_check
from wheelfuse.check import check_wheel
from wheelfuse.check_cli import main as check_main
from wheelfuse.merge_cli import main as merge_main
from wheelfuse.upload import PYPI_DEFAULT_LIMIT, metadata_findings, upload_findings
from wheelfuse.wheelinfo import load_wheel

PLAT = "manylinux_2_17_x86_64"
HEAD = "Metadata-Version: 2.1\nName: tinyext\nVersion: 1.0\nSummary: s\n"

METADATA = {
    "markdown": HEAD + "Description-Content-Type: text/markdown\n\n# Title\n\ntext\n",
    "rst": HEAD + "Description-Content-Type: text/x-rst\n\nTitle\n=====\n\nSome *text*.\n",
    "plain": HEAD + "Description-Content-Type: text/plain\n\nanything `goes\n",
    "no-content-type": HEAD + "\nTitle\n=====\n",
    "no-description": HEAD + "Description-Content-Type: text/markdown\n\n",
    "unknown-description": HEAD + "Description-Content-Type: text/markdown\n\nUNKNOWN\n",
    "broken-rst": HEAD + "Description-Content-Type: text/x-rst\n\nTitle\n==\n\n`unclosed\n",
    "unknown-field": HEAD + "Frobnicate: yes\nDescription-Content-Type: text/markdown\n\nx\n",
    "bad-requirement": HEAD + "Requires-Dist: torch (>=)\nDescription-Content-Type: text/markdown\n\nx\n",
    "bad-version": HEAD.replace("Version: 1.0\n", "Version: one\n") + "Description-Content-Type: text/markdown\n\nx\n",
}


def wheel_with(kit, directory: Path, meta: str, abi: str = "cp312", **kwargs) -> Path:
    return kit.make_wheel(directory, f"{abi}-{abi}-{PLAT}", kit.synthetic_files(abi), meta=meta.encode(), **kwargs)


@pytest.mark.parametrize("case", sorted(METADATA))
def test_metadata_verdict_equals_twine_check_strict(kit, tmp_path, case: str) -> None:
    wheel = wheel_with(kit, tmp_path, METADATA[case])
    ours = metadata_findings(load_wheel(wheel))
    try:
        twine_fails = twine_check([str(wheel)], strict=True)
    except Exception as exc:  # twine refuses invalid metadata by raising InvalidDistribution
        assert type(exc).__name__ == "InvalidDistribution", exc
        twine_fails = True
    assert bool(ours) == twine_fails, (case, ours)
    if case in ("markdown", "rst", "plain"):
        assert ours == []


def test_metadata_problems_fail_check_wheel(kit, tmp_path, capsys) -> None:
    wheel = wheel_with(kit, tmp_path, METADATA["broken-rst"])
    assert check_main([str(wheel), "--python-range", "==3.12.*", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    messages = [p["message"] for p in report["problems"] if p["check"] == "metadata"]
    assert len(messages) == 1 and "does not render" in messages[0], report["problems"]


def test_compressed_tag_lines(kit, tmp_path) -> None:
    """maturin writes compressed Tag lines: merge-wheels takes such inputs (its WHEEL is
    regenerated expanded), check-wheel refuses them for upload."""
    platforms = "manylinux2014_x86_64.manylinux_2_17_x86_64"
    inputs = [
        kit.make_wheel(
            tmp_path / "in",
            f"{abi}-{abi}-{platforms}",
            kit.synthetic_files(abi),
            wheel_tags=[f"{abi}-{abi}-{platforms}"],
        )
        for abi in ("cp311", "cp312")
    ]
    problems, _ = upload_findings(load_wheel(inputs[0]), inputs[0].stat().st_size)
    assert [p.check for p in problems] == ["tags"]
    assert "not one expanded tag" in problems[0].message
    assert merge_main([*map(str, inputs), "-o", str(tmp_path / "out")]) == 0
    (merged,) = (tmp_path / "out").glob("*.whl")
    problems, _ = upload_findings(load_wheel(merged), merged.stat().st_size)
    assert problems == []


def test_repeated_tag_line(kit, tmp_path) -> None:
    tag = f"cp312-cp312-{PLAT}"
    wheel = kit.make_wheel(tmp_path, tag, kit.synthetic_files("cp312"), wheel_tags=[tag, tag])
    problems, _ = upload_findings(load_wheel(wheel), wheel.stat().st_size)
    assert [p.check for p in problems] == ["tags"]


def test_unsorted_compressed_tag_parts(kit, tmp_path) -> None:
    wheel = kit.make_wheel(tmp_path, f"cp312-cp312-{PLAT}.manylinux2014_x86_64", kit.synthetic_files("cp312"))
    problems, _ = upload_findings(load_wheel(wheel), wheel.stat().st_size)
    assert [p.check for p in problems] == ["tags"] and "sorted" in problems[0].message


def test_size_warning_names_the_number(kit, tmp_path, capsys) -> None:
    wheel = load_wheel(wheel_with(kit, tmp_path, METADATA["markdown"]))
    assert upload_findings(wheel, PYPI_DEFAULT_LIMIT) == ([], [])
    _, warnings = upload_findings(wheel, PYPI_DEFAULT_LIMIT + 1)
    assert len(warnings) == 1 and f"{PYPI_DEFAULT_LIMIT + 1} bytes" in warnings[0].message


def test_size_warning_in_report(native_wheels, tmp_path, monkeypatch) -> None:
    """A warning is reported and leaves ok true (the limit is PyPI's default, not a rule)."""
    monkeypatch.setattr("wheelfuse.upload.PYPI_DEFAULT_LIMIT", 1000)
    wheel = native_wheels["cp312"]
    report = check_wheel(wheel, python_range="==3.12.*")
    assert report.ok, report.problems
    assert [w.check for w in report.warnings] == ["size"]
    assert report.to_json()["warnings"][0]["message"].startswith(f"{wheel.stat().st_size} bytes")
