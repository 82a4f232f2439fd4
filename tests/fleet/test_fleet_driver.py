"""The fleet driver's CLI, environment and summary logic (tools/fleet/fleet.py), no builds."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from fleetutil import REPO  # noqa: I001  (puts tools/fleet on sys.path)
import fleet
from cpythons import CPython
from fleet import FleetError


def options(*argv: str) -> fleet.Options:
    _, args = fleet.parse_args(list(argv))
    return fleet.resolve_options(args)


def test_default_run_builds_every_cpython_of_requires_python():
    opts = options()
    assert [py.abi for py in opts.pythons] == ["cp310", "cp311", "cp312", "cp313"]
    assert not opts.subset
    assert opts.stages == fleet.STAGES


def test_pythons_subset_and_its_check_range():
    opts = options("--pythons", "3.12")
    assert [py.abi for py in opts.pythons] == ["cp312"] and opts.subset
    assert fleet.subset_range(opts.pythons) == "==3.12.*"
    assert fleet.subset_range([CPython(3, 11), CPython(3, 12)]) == ">=3.11,<3.13"
    with pytest.raises(FleetError, match="contiguous"):
        options("--pythons", "3.10", "3.13")


def test_pythons_outside_requires_python_refused():
    with pytest.raises(fleet.CPythonError, match="not allowed by requires-python"):
        options("--pythons", "3.9")


def test_official_image_drops_the_image_stage():
    opts = options("--official-image")
    assert "image" not in opts.stages and opts.official_image


def test_unknown_stage_refused():
    with pytest.raises(FleetError, match="unknown stage"):
        options("--stages", "fetch,bake")


def test_cibuildwheel_env_local_image(tmp_path):
    opts = options("--pythons", "3.12", "3.13")
    site = tmp_path / "torch-site-abc"
    env = fleet.cibuildwheel_env(opts, site, "localhost/deep-gemm-build:1234", base={})
    assert env["CIBW_BUILD"] == "cp312-manylinux_x86_64 cp313-manylinux_x86_64"
    assert env["CIBW_MANYLINUX_X86_64_IMAGE"] == "localhost/deep-gemm-build:1234"
    assert env["CIBW_CONTAINER_ENGINE"] == (
        f"podman; create_args: --volume={site}:/opt/torch-site:ro; disable_host_mount: true"
    )
    assert env["CONTAINERS_CONF"].endswith("tools/podman/containers.conf")
    assert env["SSL_CERT_FILE"]
    # before-all prebuilds _C for exactly the CPythons being built
    assert env["DG_PREBUILD_PYTHONS"] == "/opt/python/cp312-cp312/bin/python /opt/python/cp313-cp313/bin/python"


def test_cibuildwheel_env_official_image_docker(tmp_path):
    opts = options("--official-image", "--engine", "docker")
    env = fleet.cibuildwheel_env(opts, tmp_path, None, base={})
    assert env["CIBW_MANYLINUX_X86_64_IMAGE"] == "quay.io/pypa/manylinux_2_28_x86_64"
    assert env["CIBW_CONTAINER_ENGINE"].startswith("docker; ")


def test_container_engine_string_parses_as_cibuildwheel_reads_it(tmp_path):
    oci = pytest.importorskip("cibuildwheel.oci_container")
    opts = options()
    env = fleet.cibuildwheel_env(opts, tmp_path / "site", "img", base={})
    config = oci.OCIContainerEngineConfig.from_config_string(env["CIBW_CONTAINER_ENGINE"])
    assert config.name == "podman"
    assert config.create_args == (f"--volume={tmp_path / 'site'}:/opt/torch-site:ro",)
    assert config.disable_host_mount


def test_torch_lock_matches_the_one_pin():
    fleet.check_torch_lock()  # the repository's own files agree
    locked = fleet.locked_versions()
    assert set(locked) >= {"torch", "nvidia-cuda-runtime", "nvidia-cuda-nvrtc", "nvidia-cuda-crt"}
    assert "--hash=sha256:" in fleet.TORCH_SITE_LOCK.read_text()


def test_torch_lock_mismatch_fails_closed(tmp_path):
    pin = tmp_path / "torch.txt"
    pin.write_text("torch==2.12.0\n")
    with pytest.raises(FleetError, match="pins torch==2.12.0"):
        fleet.check_torch_lock(pin_file=pin)


def test_torch_site_key_follows_the_lock(tmp_path):
    lock = tmp_path / "torch-site.txt"
    lock.write_text("torch==2.11.0\n")
    key = fleet.torch_site_key(lock)
    assert key == fleet.torch_site_key(lock)
    lock.write_text("torch==2.11.1\n")
    assert key != fleet.torch_site_key(lock)


def test_point_default_link(tmp_path):
    site = tmp_path / "torch-site-aaaa"
    site.mkdir()
    fleet.point_default_link(tmp_path, site)
    other = tmp_path / "torch-site-bbbb"
    other.mkdir()
    fleet.point_default_link(tmp_path, other)
    assert (tmp_path / "torch-site").resolve() == other.resolve()


def test_staged_source_leaves_ignored_files_out(tmp_path):
    dest = fleet.staged_source(tmp_path / "src")
    assert (dest / "setup.py").is_file() and (dest / "pyproject.toml").is_file()
    assert not (dest / ".venv").exists()
    assert not (dest / "build").exists()


def test_per_python_times():
    events = [("cp310-manylinux_x86_64", 10.0), ("cp311-manylinux_x86_64", 25.5)]
    assert fleet.per_python_times(events, 40.0) == {"cp310-manylinux_x86_64": 15.5, "cp311-manylinux_x86_64": 14.5}
    assert fleet.BUILD_START.search("Building cp312-manylinux_x86_64 wheel").group(1) == "cp312-manylinux_x86_64"


def fake_wheel(path: Path, size: int) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("x.bin", b"\0" * size)
    return path


def test_summary(tmp_path, capsys):
    opts = options("--wheelhouse", str(tmp_path / "wh"), "--dist", str(tmp_path / "dist"))
    wh = tmp_path / "wh"
    wh.mkdir()
    wheels = [
        fake_wheel(wh / f"deep_gemm-0.1.0-{t}-{t}-manylinux_2_34_x86_64.whl", 1000 * (i + 1))
        for i, t in enumerate(["cp310", "cp311"])
    ]
    merged = fake_wheel(tmp_path / "deep_gemm-0.1.0-cp310.cp311-cp310.cp311-manylinux_2_34_x86_64.whl", 2500)
    summary = fleet.summarize({"fetch": 1.0, "build": 60.0}, wheels, merged, {"cp310-manylinux_x86_64": 30.0}, opts)
    assert [w["abi"] for w in summary["wheels"]] == ["cp310", "cp311"]
    assert summary["wheels_sum_bytes"] == sum(w.stat().st_size for w in wheels)
    assert summary["merged"]["tags"] == "cp310.cp311-cp310.cp311-manylinux_2_34_x86_64"
    assert summary["merged"]["abis"] == ["cp310", "cp311"]
    assert summary["merged"]["vs_largest_per_python"] == round(merged.stat().st_size / wheels[1].stat().st_size, 3)
    json.dumps(summary)  # serialisable
    fleet.print_summary(summary)
    out = capsys.readouterr().out
    assert "fleet summary" in out and "merged:" in out and "built in 30s" in out and "total 61.0s" in out


def test_pythons_command_prints_the_matrix(capsys):
    assert fleet.main(["pythons", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == ["3.10", "3.11", "3.12", "3.13"]


def test_errors_exit_nonzero_with_a_message(capsys):
    assert fleet.main(["--pythons", "3.8"]) == 1
    assert "fleet: error:" in capsys.readouterr().err


class FakeRun:
    def __init__(self):
        self.calls = []

    def __call__(self, cmd, **kw):
        self.calls.append(cmd)

        class R:
            returncode = 0

        return R()


def test_host_tools_installed_from_debian_when_missing(monkeypatch):
    monkeypatch.setattr(fleet.os, "geteuid", lambda: 0)
    run = FakeRun()
    have = {"apt-get", "tar", "runc"}
    installed = fleet.ensure_host_tools("podman", True, which=lambda t: t if t in have else None, runner=run)
    assert installed == ["debootstrap", "podman"]
    assert run.calls == [
        ["apt-get", "update"],
        ["apt-get", "install", "-y", "--no-install-recommends", "debootstrap", "podman"],
    ]


def test_host_tools_nothing_to_do():
    run = FakeRun()
    assert fleet.ensure_host_tools("podman", True, which=lambda t: t, runner=run) == []
    assert run.calls == []
