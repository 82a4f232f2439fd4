"""tools/podman/containers.conf: runc, rlimits under the host's hard limits, no /etc; and the
podman settings pyproject gives plain cibuildwheel (no CONTAINERS_CONF) are the same."""

from __future__ import annotations

import resource
import tomllib

from fleetutil import REPO

CONF = REPO / "tools" / "podman" / "containers.conf"
STORAGE = REPO / "tools" / "podman" / "storage.conf"


def load(path):
    return tomllib.loads(path.read_text())


def ulimits():
    out = {}
    for item in load(CONF)["containers"]["default_ulimits"]:
        name, _, value = item.partition("=")
        soft, _, hard = value.partition(":")
        out[name] = (int(soft), int(hard or soft))
    return out


def test_runtime_is_runc():
    engine = load(CONF)["engine"]
    assert engine["runtime"] == "runc"  # crun fails on this kernel's hybrid cgroups
    assert engine["cgroup_manager"] == "cgroupfs"


def test_rlimits_within_known_good_bounds():
    limits = ulimits()
    assert limits["nofile"][1] <= 20000
    assert limits["nproc"][1] <= 32768  # 32768 works, 50000 failed
    for soft, hard in limits.values():
        assert soft <= hard


def test_rlimits_within_this_hosts_hard_limits():
    limits = ulimits()
    for name, rlim in (("nofile", resource.RLIMIT_NOFILE), ("nproc", resource.RLIMIT_NPROC)):
        host_hard = resource.getrlimit(rlim)[1]
        if host_hard != resource.RLIM_INFINITY:
            assert limits[name][1] <= host_hard, f"{name} above this host's hard limit {host_hard}"


def test_storage_conf_is_complete():
    storage = load(STORAGE)["storage"]
    assert storage["driver"] == "overlay"
    assert storage["graphroot"].startswith("/") and storage["runroot"].startswith("/")


def test_nothing_points_at_etc():
    for path in (CONF, STORAGE):
        body = "\n".join(line for line in path.read_text().splitlines() if not line.lstrip().startswith("#"))
        assert "/etc/" not in body


def test_plain_cibuildwheel_gets_the_same_container_settings():
    """pyproject's container-engine create-args carry what a container needs from containers.conf
    (rlimits, the host's network), so `cibuildwheel --platform linux` works without CONTAINERS_CONF
    (tests/packaging/test_plain_cibuildwheel.py runs it)."""
    engine = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["cibuildwheel"]["container-engine"]
    assert engine["name"] == "podman"
    args = engine["create-args"]
    given = {}
    for arg in args:
        if arg.startswith("--ulimit="):
            name, _, value = arg.removeprefix("--ulimit=").partition("=")
            soft, _, hard = value.partition(":")
            given[name] = (int(soft), int(hard or soft))
    assert given == ulimits(), f"{args} != containers.conf's default_ulimits"
    assert load(CONF)["containers"]["netns"] == "host" and "--network=host" in args
