"""Importing deep_gemm leaves CUDA uninitialised, so processes forked after the import can each
pick their GPU (upstream DeepGEMM's test_lazy_init.py, which forks one per GPU of 8)."""
import subprocess
import sys

import torch

CHILD = r"""
import multiprocessing as mp
import sys
import torch
import deep_gemm

def work(rank, results):
    torch.cuda.set_device(rank)
    a = torch.randn(128, 256, device="cuda", dtype=torch.bfloat16)
    d = torch.empty(128, 128, device="cuda", dtype=torch.bfloat16)
    deep_gemm.bf16_gemm_nt(a, a[:128], d)
    results.put((rank, deep_gemm.calc_diff(d, a.float() @ a[:128].float().T)))

if __name__ == "__main__":
    assert not torch.cuda.is_initialized(), "import deep_gemm initialised CUDA"
    ctx = mp.get_context("fork")
    results = ctx.Queue()
    procs = [ctx.Process(target=work, args=(rank, results)) for rank in range(int(sys.argv[1]))]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    assert all(p.exitcode == 0 for p in procs), [p.exitcode for p in procs]
    diffs = [results.get() for _ in procs]
    assert all(diff < 1e-3 for _, diff in diffs), diffs
    print("forked", len(procs))
"""


def test_forked_processes_each_use_their_gpu():
    # The GPU count comes from here: the child must not touch CUDA before it forks.
    run = subprocess.run([sys.executable, "-c", CHILD, str(torch.cuda.device_count())], capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "forked" in run.stdout
