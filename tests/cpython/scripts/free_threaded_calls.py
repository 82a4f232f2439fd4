"""Run by tests/cpython/test_free_threaded.py on a free-threaded CPython with deep_gemm installed.

Imports deep_gemm with the GIL off (an import that re-enables it warns; made an error here),
then 16 threads compile kernels and call into _C at once. Prints one JSON line.
"""
import json
import sys
import threading
import warnings

warnings.filterwarnings("error", message=".*global interpreter lock.*")
import torch  # noqa: E402

import deep_gemm  # noqa: E402
from deep_gemm import _C  # noqa: E402

gil_after_import = sys._is_gil_enabled()
sources = _C.kernel_sources()[:8]
errors, compiled = [], []


def cpu_call():
    """A full argument check in the runtime, refused only at the device check (CPU tensors)."""
    a = (torch.zeros(64, 128, dtype=torch.float8_e4m3fn), torch.ones(1, 64).t())
    b = (torch.zeros(64, 128, dtype=torch.float8_e4m3fn), torch.ones(1, 1))
    try:
        deep_gemm.fp8_gemm_nt(a, b, torch.empty(64, 64, dtype=torch.bfloat16))
    except ValueError as error:
        assert "must be a CUDA tensor" in str(error), error


def work(i):
    try:
        name, source = sources[i % len(sources)]
        compiled.append(_C.jit_compile(name, source)["size"])
        for _ in range(200):
            assert _C.get_mk_alignment_for_contiguous_layout() == 128
            cpu_call()
    except Exception as error:  # reported, not raised: the thread would swallow it
        errors.append(repr(error))


threads = [threading.Thread(target=work, args=(i,)) for i in range(16)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(json.dumps({"gil_after_import": gil_after_import, "gil_at_end": sys._is_gil_enabled(),
                  "threads": len(threads), "compiled": len(compiled), "errors": errors}))
