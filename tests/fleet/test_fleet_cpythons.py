"""Requires-Python -> the CPythons the fleet builds (tools/image/cpythons.py)."""

from __future__ import annotations

import pytest
from fleetutil import REPO, make_pyenv  # noqa: I001  (puts tools/image on sys.path)
from cpythons import (
    CIBUILDWHEEL_CPYTHONS,
    CPython,
    CPythonError,
    build_cpythons,
    host_interpreter,
    image_cpythons,
    not_local_reason,
    parse_requires_python,
    read_requires_python,
    select_subset,
)



def abis(pys):
    return [p.abi for p in pys]


def test_project_range_is_310_to_315():
    spec = read_requires_python(REPO / "pyproject.toml")
    assert abis(build_cpythons(spec)) == ["cp310", "cp311", "cp312", "cp313", "cp314", "cp314t", "cp315", "cp315t"]
    # no free-threaded binary here: the local image has the rest (and cibuildwheel's 3.9)
    assert abis(image_cpythons(spec)) == ["cp39", "cp310", "cp311", "cp312", "cp313", "cp314", "cp315"]
    assert not_local_reason(CPython(3, 14, True)) and not_local_reason(CPython(3, 14)) is None


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (">=3.10,<3.14", ["cp310", "cp311", "cp312", "cp313"]),
        (">=3.10,<3.15", ["cp310", "cp311", "cp312", "cp313", "cp314", "cp314t"]),  # issue 7
        (">=3.10", ["cp310", "cp311", "cp312", "cp313", "cp314", "cp314t", "cp315", "cp315t"]),
        ("~=3.12", ["cp312", "cp313", "cp314", "cp314t", "cp315", "cp315t"]),
        (">=3.10.2,<3.11", ["cp310"]),  # X.Y.99 rule, as cibuildwheel
        ("==3.12.*", ["cp312"]),
    ],
)
def test_build_cpythons(spec, expected):
    assert abis(build_cpythons(parse_requires_python(spec))) == expected


def test_image_always_has_cibuildwheels_39():
    assert abis(image_cpythons(parse_requires_python(">=3.12,<3.14"))) == ["cp39", "cp312", "cp313"]


def test_nothing_selected_fails_closed():
    with pytest.raises(CPythonError, match="selects none"):
        build_cpythons(parse_requires_python("<3.0"))


def test_missing_requires_python_fails_closed(pyproject):
    with pytest.raises(CPythonError, match="requires-python is missing"):
        read_requires_python(pyproject(None))
    with pytest.raises(CPythonError, match="invalid requires-python"):
        read_requires_python(pyproject("=>3.10"))


def test_names():
    py = CPython.from_version("3.14t")
    assert (py.tag, py.abi, py.opt_dir, py.identifier) == (
        "cp314",
        "cp314t",
        "/opt/python/cp314-cp314t",
        "cp314t-manylinux_x86_64",
    )
    assert CPython.from_tag("cp312").opt_dir == "/opt/python/cp312-cp312"
    with pytest.raises(CPythonError):
        CPython.from_version("3")


def test_subset():
    all_pys = build_cpythons(parse_requires_python(">=3.10,<3.14"))
    assert abis(select_subset(all_pys, ["3.13", "3.12", "3.12"])) == ["cp312", "cp313"]
    with pytest.raises(CPythonError, match="not allowed by requires-python"):
        select_subset(all_pys, ["3.9"])


def test_host_interpreter_picks_newest_patch(tmp_path):
    root = make_pyenv(tmp_path, ["3.12.1", "3.12.10", "3.12.9", "3.13.0t", "3.13.0"])
    assert host_interpreter(CPython.from_tag("cp312"), root)[0] == "3.12.10"
    assert host_interpreter(CPython.from_tag("cp313"), root)[0] == "3.13.0"  # not the 't' build
    assert host_interpreter(CPython(3, 13, True), root)[0] == "3.13.0t"
    with pytest.raises(CPythonError, match="pyenv install 3.11"):
        host_interpreter(CPython.from_tag("cp311"), root)
    # 3.14 without pyenv: Debian sid's binaries, once made (here an empty cache)
    with pytest.raises(CPythonError, match="sid_python.py --version 3.14 --print-prefix"):
        host_interpreter(CPython.from_tag("cp314"), root, tmp_path / "no-sid")
    with pytest.raises(CPythonError, match="pyenv install 3.14t"):
        host_interpreter(CPython(3, 14, True), root, tmp_path / "no-sid")


def test_table_matches_cibuildwheel():
    """CIBUILDWHEEL_CPYTHONS must be cibuildwheel's own default CPython list."""
    linux = pytest.importorskip("cibuildwheel.platforms.linux")
    from cibuildwheel.selector import BuildSelector

    selector = BuildSelector(build_config="cp3*-manylinux_x86_64", skip_config="")
    theirs = [
        c.identifier.split("-")[0]
        for c in linux.all_python_configurations()
        if c.identifier.endswith("-manylinux_x86_64") and selector(c.identifier)
    ]
    assert tuple(theirs) == CIBUILDWHEEL_CPYTHONS
