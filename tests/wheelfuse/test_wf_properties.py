"""Property tests: any input order and any grouping (merging merged wheels) gives the same
bytes, and no file is lost."""

from __future__ import annotations

import tempfile
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from wheelfuse.merge_cli import main as merge_main

PLATFORMS = {
    "cp39": "manylinux2014_x86_64.manylinux_2_17_x86_64",
    "cp310": "manylinux_2_17_x86_64",
    "cp311": "manylinux_2_28_x86_64",
    "cp312": "manylinux_2_17_x86_64",
    "cp313": "manylinux2014_x86_64",
    "cp314t": "manylinux_2_28_x86_64",
}
SETTINGS = settings(
    max_examples=25, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)


@pytest.fixture(scope="session")
def inputs(kit, tmp_path_factory) -> list[Path]:
    directory = tmp_path_factory.mktemp("prop")
    wheels = []
    for abi, platform in PLATFORMS.items():
        interpreter = abi.removesuffix("t")
        files = kit.synthetic_files(abi) | {
            "tinyext/sub/shared.py": b"VALUE = 1\n",
            f"tinyext-1.0.data/scripts/tool-{abi}": b"#!python\n",
        }
        wheels.append(
            kit.make_wheel(
                directory,
                f"{interpreter}-{abi}-{platform}",
                files,
                executable=[f"tinyext-1.0.data/scripts/tool-{abi}"],
            )
        )
    return wheels


@pytest.fixture(scope="session")
def reference(inputs, tmp_path_factory) -> bytes:
    return merge(inputs, tmp_path_factory.mktemp("ref")).read_bytes()


def merge(paths: list[Path], out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    before = set(out.glob("*.whl"))
    assert merge_main([*map(str, paths), "-o", str(out)]) == 0
    (result,) = set(out.glob("*.whl")) - before
    return result


def members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def test_no_file_is_lost(inputs, reference, tmp_path) -> None:
    merged = tmp_path / "m.whl"
    merged.write_bytes(reference)
    out = members(merged)
    for wheel in inputs:
        for name, data in members(wheel).items():
            if name.startswith("tinyext-1.0.dist-info/") and not name.endswith("METADATA"):
                continue  # WHEEL and RECORD are regenerated
            assert out[name] == data, name
    assert "tinyext-1.0.dist-info/wheelfuse.json" in out


@SETTINGS
@given(order=st.permutations(range(len(PLATFORMS))))
def test_any_order_same_bytes(inputs, reference, order) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        assert merge([inputs[i] for i in order], Path(tmp)).read_bytes() == reference


# A grouping: each input gets a group number; groups are merged first (a group of one is
# passed through as is, or merged on its own), then the groups' results are merged.
groupings = st.tuples(
    st.lists(st.integers(0, 3), min_size=len(PLATFORMS), max_size=len(PLATFORMS)),
    st.booleans(),
    st.permutations(range(4)),
)


@SETTINGS
@given(grouping=groupings)
def test_any_grouping_same_bytes(inputs, reference, grouping) -> None:
    assignment, merge_singletons, group_order = grouping
    with tempfile.TemporaryDirectory() as tmp:
        stage: list[Path] = []
        for group in group_order:
            paths = [inputs[i] for i, g in enumerate(assignment) if g == group]
            if len(paths) > 1 or (paths and merge_singletons):
                stage.append(merge(paths, Path(tmp) / f"g{group}"))
            else:
                stage.extend(paths)
        assert merge(stage, Path(tmp) / "final").read_bytes() == reference


@SETTINGS
@given(split=st.integers(1, len(PLATFORMS) - 1), order=st.permutations(range(len(PLATFORMS))))
def test_nested_merges_same_bytes(inputs, reference, split, order) -> None:
    """((a, b), (c, (d, e)))-style trees: merge a prefix, then nest the rest one by one."""
    with tempfile.TemporaryDirectory() as tmp:
        shuffled = [inputs[i] for i in order]
        acc = merge(shuffled[:split], Path(tmp) / "head")
        for n, wheel in enumerate(shuffled[split:]):
            acc = merge([wheel, acc], Path(tmp) / f"step{n}")
        assert acc.read_bytes() == reference
