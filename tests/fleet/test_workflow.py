"""The GitHub workflow: actionlint passes; it installs deep_gemm only from dist/ (the name is
upstream DeepGEMM's on PyPI), runs the CPU suite against the installed merged wheel rather than
the checkout, and builds and installs the sdist.

GitHub cannot be reached from here, so these read the steps' shell: a small reader of the
`run:` blocks (the dev env has no YAML parser; test_the_reader_sees_every_step guards it).
"""
import re
import shutil
import sys
from pathlib import Path

import pytest

from fleetutil import REPO

WORKFLOW = REPO / ".github" / "workflows" / "wheels.yml"


def run_blocks() -> list[str]:
    """The shell of each step's `run:` (inline, `|` block or `>-` folded), in order."""
    lines = WORKFLOW.read_text().splitlines()
    blocks = []
    for i, line in enumerate(lines):
        m = re.match(r"^(\s*)(?:- )?run:\s*(.*)$", line)
        if not m:
            continue
        indent, rest = len(m.group(1)), m.group(2)
        if rest and rest[0] not in "|>":
            blocks.append(rest)
            continue
        body = []
        for follow in lines[i + 1:]:
            if follow.strip() and len(follow) - len(follow.lstrip()) <= indent:
                break
            body.append(follow.strip())
        blocks.append(("\n" if rest.startswith("|") else " ").join(body))
    return blocks


def commands() -> list[str]:
    return [cmd.strip() for block in run_blocks() for cmd in block.splitlines()]


def test_actionlint_passes():
    actionlint = shutil.which("actionlint", path=str(Path(sys.executable).parent))
    if actionlint is None:
        pytest.skip("actionlint is not installed in this environment (make dev installs it)")
    import subprocess

    result = subprocess.run([actionlint, str(WORKFLOW)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_reader_sees_every_step():
    assert len(run_blocks()) == WORKFLOW.read_text().count("run:")


def test_deep_gemm_is_installed_from_dist_only():
    """Every install of deep_gemm BY NAME (a requirement, which an index could answer) is --no-index."""
    installs = [c for c in commands()
                if "pip install" in c and any(re.fullmatch(r"deep_gemm([=<>!~\[].*)?", t) for t in c.split())]
    assert installs, f"{WORKFLOW.name} never installs deep_gemm by name"
    for cmd in installs:
        assert "--no-index" in cmd and "--find-links dist" in cmd, f"may install upstream DeepGEMM from PyPI: {cmd}"


def test_cpu_suite_runs_against_the_installed_wheel():
    cmds = commands()
    pytest_at = next(i for i, c in enumerate(cmds) if re.search(r"-m pytest\b.*\btests/core\b", c))
    install_at = max(i for i, c in enumerate(cmds[:pytest_at]) if "--find-links dist deep_gemm" in c)
    between = cmds[install_at:pytest_at]
    assert any(re.match(r"rm -rf deep_gemm\b", c) for c in between), (
        "pytest would import the checkout's deep_gemm/ (no _C) instead of the installed wheel")
    assert cmds[pytest_at].startswith("/tmp/venv/bin/python"), "pytest must run in the venv the wheel went into"


def test_sdist_is_built_and_installed_from_source():
    cmds = commands()
    build = next(i for i, c in enumerate(cmds) if "-m build --sdist" in c)
    install = next(i for i, c in enumerate(cmds) if re.search(r"pip install --no-build-isolation .*\.tar\.gz", c))
    smoke = [i for i, c in enumerate(cmds) if "smoke_wheel.py" in c]
    assert build < install < max(smoke), "the sdist job must build, install, then smoke-test"


def test_workflow_uses_the_fleet_tools():
    text = WORKFLOW.read_text()
    for entry in ("python tools/fleet", "--stages fetch,build", "--stages merge", "--stages check"):
        assert entry in text, f"{entry} is not used by {WORKFLOW.name}"
