"""The fleet driver's CLI, environment and summary logic (tools/fleet/fleet.py), no builds."""

from __future__ import annotations

import json
import tomllib
import zipfile
from pathlib import Path

import pytest
from fleetutil import REPO  # noqa: I001  (puts tools/fleet on sys.path)
import fleet
from cpythons import CPython
from fleet import FleetError
import torches
from torches import TorchError


def options(*argv: str) -> fleet.Options:
    _, args = fleet.parse_args(list(argv))
    return fleet.resolve_options(args)


def test_default_run_builds_every_cpython_of_requires_python():
    opts = options()
    assert opts.torch == torches.default_torch()
    # torch 2.11.0 has cp310-cp314 (and cp313t, cp314t): the range narrows to <3.15
    assert [py.abi for py in opts.pythons] == ["cp310", "cp311", "cp312", "cp313", "cp314"]
    assert opts.wheel_requires_python == ">=3.10,<3.15"
    assert set(opts.not_built) == {"cp314t", "cp315", "cp315t"}
    assert opts.not_built["cp315"] == f"torch {opts.torch} has no cp315 wheel on PyPI"
    assert opts.wheelhouse == REPO / "wheelhouse" and opts.dist == REPO / "dist"
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


def test_every_torch_lock_is_complete_and_names_its_torch():
    locks = sorted(torches.SITE_LOCKS.glob("torch-*.txt"))
    assert torches.site_lock(torches.default_torch()) in locks
    for lock in locks:
        version = lock.name.removeprefix("torch-").removesuffix(".txt")
        assert torches.require_lock(version) == lock
        locked = torches.pinned(lock.read_text())
        assert set(locked) == {"torch", "nvidia-cuda-runtime", "nvidia-cuda-nvrtc", "nvidia-cuda-crt"}, lock
        assert locked["nvidia-cuda-crt"] == locked["nvidia-cuda-nvrtc"], lock
        assert lock.read_text().count("--hash=sha256:") >= 4, lock


def test_torch_lock_missing_or_mismatched_fails_closed(tmp_path):
    with pytest.raises(TorchError, match="lock-torch 2.99.0"):
        torches.require_lock("2.99.0", tmp_path)
    torches.site_lock("2.12.0", tmp_path).write_text("torch==2.11.0 \\\n")
    with pytest.raises(TorchError, match="locks torch==2.11.0, not torch==2.12.0"):
        torches.require_lock("2.12.0", tmp_path)


@pytest.mark.parametrize("text", ["2.15", "2.15.0+cu130", "v2.15.0", "2.15.*", "latest"])
def test_torch_version_must_be_an_exact_release(text):
    with pytest.raises(TorchError, match="--torch"):
        torches.parse_torch_version(text)


TORCH_FILES = [
    "torch-2.15.0-cp311-cp311-manylinux_2_28_x86_64.whl",
    "torch-2.15.0-cp314-cp314t-manylinux_2_28_x86_64.whl",
    "torch-2.15.0-cp315-cp315-manylinux_2_28_aarch64.whl",  # other arch
    "torch-2.15.0-cp310-cp310-win_amd64.whl",  # other OS
    "torch-2.11.0-cp310-cp310-manylinux_2_28_x86_64.whl",  # other version
    "torch-2.15.0.tar.gz",
]


def test_published_abis_come_from_the_file_list_and_are_cached(tmp_path):
    calls = []

    def fetch():
        calls.append(1)
        return TORCH_FILES

    assert torches.published_abis("2.15.0", tmp_path, fetch) == {"cp311", "cp314t"}
    assert torches.published_abis("2.15.0", tmp_path, fetch) == {"cp311", "cp314t"}
    assert len(calls) == 1
    with pytest.raises(TorchError, match="no manylinux x86_64"):
        torches.published_abis("2.16.0", tmp_path, lambda: TORCH_FILES)


def seeded_cache(tmp_path: Path, version: str, abis: list[str]) -> Path:
    (tmp_path / f"torch-{version}-abis.json").write_text(json.dumps(abis))
    return tmp_path


def test_torch_cpythons_are_the_intersection(tmp_path, pyproject):
    cache = seeded_cache(tmp_path, "2.15.0", ["cp311", "cp312", "cp313", "cp314", "cp314t", "cp315", "cp315t"])
    spec = fleet.read_requires_python(pyproject(">=3.10,<3.15"))
    assert [py.abi for py in fleet.torch_cpythons(spec, "2.15.0", cache)] == ["cp311", "cp312", "cp313", "cp314", "cp314t"]
    with pytest.raises(FleetError, match="none of which"):
        fleet.torch_cpythons(fleet.read_requires_python(pyproject("<3.11")), "2.15.0", cache)


def test_another_torch_gets_its_own_outputs_range_and_label(tmp_path, pyproject):
    cache = seeded_cache(tmp_path, "2.15.0", ["cp311", "cp312", "cp313", "cp314", "cp314t", "cp315"])
    wide = str(pyproject(">=3.10,<3.16"))
    opts = options("--torch", "2.15.0", "--cache-dir", str(cache), "--pyproject", wide)
    assert [py.abi for py in opts.pythons] == ["cp311", "cp312", "cp313", "cp314", "cp315"]
    assert opts.wheel_requires_python == ">=3.11,<3.16"
    assert set(opts.not_built) == {"cp310", "cp314t", "cp315t"}
    assert "workflows/wheels.yml" in opts.not_built["cp314t"] and "no cp310 wheel" in opts.not_built["cp310"]
    assert opts.wheelhouse == REPO / "wheelhouse" / "torch-2.15.0"
    assert opts.dist == REPO / "dist" / "torch-2.15.0"
    official = options("--torch", "2.15.0", "--cache-dir", str(cache), "--pyproject", wide, "--official-image")
    assert set(official.not_built) == {"cp310", "cp315t"} and "cp314t" in [py.abi for py in official.pythons]


def test_staged_source_is_retargeted_to_the_runs_torch(tmp_path, pyproject):
    cache = seeded_cache(tmp_path, "2.15.0", ["cp311", "cp312", "cp313"])
    opts = options("--torch", "2.15.0", "--cache-dir", str(cache))
    dest = fleet.staged_source(tmp_path / "src", opts)
    assert torches.default_torch(dest / "requirements" / "torch.txt") == "2.15.0"
    project = tomllib.loads((dest / "pyproject.toml").read_text())["project"]
    assert project["requires-python"] == ">=3.11,<3.14"
    assert project["version"].endswith("+torch2.15.0")
    # the checkout itself is untouched, and the default torch gets no label
    assert torches.default_torch() != "2.15.0"
    default = fleet.staged_source(tmp_path / "src2", options())
    assert "+" not in tomllib.loads((default / "pyproject.toml").read_text())["project"]["version"]


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
    assert json.loads(capsys.readouterr().out) == ["3.10", "3.11", "3.12", "3.13", "3.14", "3.14t"]
    assert fleet.main(["pythons", "--torch", "2.15.0"]) == 0
    assert capsys.readouterr().out.split() == ["3.11", "3.12", "3.13", "3.14", "3.14t", "3.15", "3.15t"]


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
