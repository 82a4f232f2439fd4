"""Smoke-test an INSTALLED deep_gemm (run from outside the checkout, on any CPU machine).

    python tools/fleet/smoke_wheel.py

Checks that `import deep_gemm` loads the `_C` built for this very CPython from the
installed package (not the source tree), that on a free-threaded build (3.14t, 3.15t) the GIL
stays off after the import, and that a call crosses into `_C`: an fp8_gemm_nt with a
wrong-dtype operand must come back as the binding's TypeError.
Exits non-zero, saying what is wrong, otherwise.
"""

from __future__ import annotations

import sys
import sysconfig
from pathlib import Path


def main() -> int:
    import deep_gemm
    import torch

    if sysconfig.get_config_var("Py_GIL_DISABLED") and sys._is_gil_enabled():
        print("smoke: importing deep_gemm (or torch) turned the GIL back on", file=sys.stderr)
        return 1
    c_file = Path(deep_gemm._C.__file__)
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    if not c_file.name.endswith(suffix):
        print(f"smoke: {c_file} is not the _C for this interpreter ({suffix})", file=sys.stderr)
        return 1
    if "site-packages" not in c_file.parts and "dist-packages" not in c_file.parts:
        print(f"smoke: deep_gemm came from {c_file.parent}, not an installed site-packages", file=sys.stderr)
        return 1
    a = torch.zeros((64, 128), dtype=torch.bfloat16)  # wrong dtype on purpose
    sfa = torch.ones((64, 1))
    b = torch.zeros((128, 128), dtype=torch.float8_e4m3fn)
    sfb = torch.ones((1, 1))
    d = torch.empty((64, 128), dtype=torch.bfloat16)
    try:
        deep_gemm.fp8_gemm_nt((a, sfa), (b, sfb), d)
    except TypeError as exc:
        if "a[0] must have dtype" not in str(exc):
            print(f"smoke: unexpected TypeError from _C: {exc}", file=sys.stderr)
            return 1
    else:
        print("smoke: fp8_gemm_nt accepted a bf16 operand; _C did not validate it", file=sys.stderr)
        return 1
    print(f"smoke: ok: Python {sys.version.split()[0]}, {c_file.name}, torch {torch.__version__}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
