"""Kernel timing as DeepGEMM's tests and benchmarks do it (CUDA only)."""
from __future__ import annotations

import os
import sys
from collections.abc import Callable

import torch

__all__ = ["bench", "bench_kineto", "empty_suppress", "suppress_stdout_stderr"]

# bench() flushes L2 with 256 MB; bench_kineto() with an 8 GB memset before each call,
# which also gives the GPU a pause between calls (DeepGEMM's sizes).
_BENCH_FLUSH_BYTES = 256_000_000
_KINETO_FLUSH_BYTES = 8_000_000_000


def bench(fn: Callable[[], object], num_warmups: int = 5, num_tests: int = 10,
          high_precision: bool = False) -> float:
    """Mean seconds per call of fn() between two CUDA events, after num_warmups calls.

    `high_precision` queues a large matmul first so that the timed calls do not wait
    on the host.
    """
    torch.cuda.synchronize()
    torch.empty(_BENCH_FLUSH_BYTES // 4, dtype=torch.int32, device="cuda").zero_()
    for _ in range(num_warmups):
        fn()
    if high_precision:
        x = torch.randn((8192, 8192), dtype=torch.float32, device="cuda")
        x @ x
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(num_tests):
        fn()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / num_tests / 1e3


class empty_suppress:
    """A context manager that does nothing (bench_kineto's default)."""

    def __enter__(self):
        return self

    def __exit__(self, *_):
        return None


class suppress_stdout_stderr:
    """Redirect file descriptors 1 and 2 (and sys.stdout / sys.stderr) to /dev/null, e.g. for profiler noise."""

    def __enter__(self):
        self._null = open(os.devnull, "w")
        self._saved_files = sys.stdout, sys.stderr
        self._saved_fds = [(fd, os.dup(fd)) for fd in (sys.stdout.fileno(), sys.stderr.fileno())]
        for fd, _ in self._saved_fds:
            os.dup2(self._null.fileno(), fd)
        sys.stdout = sys.stderr = self._null
        return self

    def __exit__(self, *_):
        sys.stdout, sys.stderr = self._saved_files
        for fd, saved in self._saved_fds:
            os.dup2(saved, fd)
            os.close(saved)
        self._null.close()


def bench_kineto(fn: Callable[[], object], kernel_names: str | tuple[str, ...], num_tests: int = 30,
                 suppress_kineto_output: bool = False, trace_path: str | None = None, flush_l2: bool = True,
                 with_multiple_kernels: bool = False, barrier: Callable[[], object] | None = None):
    """Mean GPU seconds per launch of the kernels whose names contain each of `kernel_names`.

    fn() runs once, then num_tests times unprofiled and num_tests times under the torch
    profiler (CUDA activity); each entry of `kernel_names` matches the kernels whose
    name contains it. Returns a float for a str, a tuple for a tuple. Unless
    `with_multiple_kernels`, a name matching more than one distinct kernel is an
    AssertionError. DG_USE_NVIDIA_TOOLS=1 (profiling under Nsight or compute-sanitizer,
    which conflict with the profiler) skips everything and returns 1 per name.
    """
    if not isinstance(kernel_names, (str, tuple)):
        raise TypeError(f"bench_kineto: kernel_names must be a str or a tuple of str, "
                        f"got {type(kernel_names).__name__}")
    names = (kernel_names,) if isinstance(kernel_names, str) else kernel_names
    if int(os.environ.get("DG_USE_NVIDIA_TOOLS", 0)):
        return 1 if isinstance(kernel_names, str) else (1,) * len(names)

    fn()  # compiles, and lets auto-tuning kernels print outside the profile
    schedule = torch.profiler.schedule(wait=0, warmup=1, active=1, repeat=1)
    with suppress_stdout_stderr() if suppress_kineto_output else empty_suppress():
        profiler = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA], schedule=schedule,
                                          acc_events=True)
        with profiler:
            for _ in range(2):  # the warm-up round, then the recorded one
                for _ in range(num_tests):
                    if flush_l2:
                        torch.empty(_KINETO_FLUSH_BYTES // 4, dtype=torch.int32, device="cuda").zero_()
                    if barrier is not None:
                        torch.cuda._sleep(int(2e7))  # ~10 ms, so that ranks start together after the barrier
                        barrier()
                    fn()
                torch.cuda.synchronize()
                profiler.step()

    kernels = [event for event in profiler.key_averages() if event.device_time_total > 0]
    times = []
    for name in names:
        matches = [event for event in kernels if name in event.key]
        if not with_multiple_kernels and len(matches) > 1:
            raise AssertionError(f"bench_kineto: {name!r} matches several kernels: {[e.key for e in matches]}")
        launches = sum(event.count for event in matches)
        total_us = sum(event.device_time_total for event in matches)
        times.append(total_us / 1e6 / launches if launches else 0.0)
    if trace_path is not None:
        profiler.export_chrome_trace(trace_path)
    return times[0] if isinstance(kernel_names, str) else tuple(times)
