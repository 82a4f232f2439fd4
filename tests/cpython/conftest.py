"""tools/cpython goes on sys.path so the tests import build_cpython directly."""

from __future__ import annotations

import sys
from pathlib import Path

TOOLS = Path(__file__).resolve().parents[2] / "tools" / "cpython"
if str(TOOLS) not in sys.path:
    sys.path.insert(0, str(TOOLS))
