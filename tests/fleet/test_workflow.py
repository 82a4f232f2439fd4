"""The GitHub workflow passes actionlint and runs the same fleet entry points as `make wheels`."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / ".github" / "workflows" / "wheels.yml"


def test_actionlint_passes():
    actionlint = shutil.which("actionlint", path=str(Path(sys.executable).parent))
    if actionlint is None:
        pytest.skip("actionlint is not installed in this environment (make dev installs it)")
    result = subprocess.run([actionlint, str(WORKFLOW)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_workflow_uses_the_fleet_tools():
    text = WORKFLOW.read_text()
    for entry in ("tools/fleet", "merge-wheels", "check-wheel"):
        assert entry in text, f"{entry} is not used by {WORKFLOW.name}"
