"""GPU timing shared by the benchmark scripts: medians of CUDA-event times, L2 flushed before each run."""
import statistics

import torch

L2_FLUSH_BYTES = 256 << 20  # well above the H100's 50 MB L2
_flush = None


def _runner(fn, graph: bool):
    """`fn` after one warm-up (JIT compile, cuBLASLt heuristics); with graph=True, a CUDA
    graph of it is captured and its replay returned: the GPU work alone, without the
    host's launch overhead (which moves with the machine's load)."""
    fn()
    torch.cuda.synchronize()
    if not graph:
        return fn
    captured = torch.cuda.CUDAGraph()
    with torch.cuda.graph(captured):
        fn()
    return captured.replay


def _time_once(run) -> float:
    global _flush
    if _flush is None:
        _flush = torch.empty(L2_FLUSH_BYTES, dtype=torch.uint8, device="cuda")
    _flush.zero_()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    run()
    end.record()
    end.synchronize()
    return start.elapsed_time(end)


def median_ms(fn, reps: int, graph: bool = False) -> float:
    """Median milliseconds of `fn` over `reps` runs."""
    run = _runner(fn, graph)
    return statistics.median(_time_once(run) for _ in range(reps))


def median_ms_each(fns, reps: int, graph: bool = False) -> list[float]:
    """Median milliseconds of each of `fns` over `reps` runs each, in turn, so that a drift
    of the GPU's clocks or of the machine's load weighs on all of them alike."""
    runs = [_runner(fn, graph) for fn in fns]
    times: list[list[float]] = [[] for _ in runs]
    for _ in range(reps):
        for run, samples in zip(runs, times, strict=True):
            samples.append(_time_once(run))
    return [statistics.median(samples) for samples in times]


def median_ms_pair(ours, theirs, reps: int, graph: bool = False) -> tuple[float, float]:
    """median_ms_each of two."""
    t_ours, t_theirs = median_ms_each([ours, theirs], reps, graph)
    return t_ours, t_theirs
