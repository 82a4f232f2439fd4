"""GPU timing shared by the benchmark scripts: median of CUDA-event times, L2 flushed before each."""
import statistics

import torch

L2_FLUSH_BYTES = 256 << 20  # well above the H100's 50 MB L2
_flush = None


def median_ms(fn, reps: int, graph: bool = False) -> float:
    """Median milliseconds of `fn` over `reps` runs, after one warm-up (JIT compile, cuBLASLt heuristics).

    graph=True captures `fn` once in a CUDA graph and times its replays: the GPU work
    alone, without the host's launch overhead (which moves with the machine's load).
    """
    global _flush
    if _flush is None:
        _flush = torch.empty(L2_FLUSH_BYTES, dtype=torch.uint8, device="cuda")
    fn()
    torch.cuda.synchronize()
    run = fn
    if graph:
        captured = torch.cuda.CUDAGraph()
        with torch.cuda.graph(captured):
            fn()
        run = captured.replay
    times = []
    for _ in range(reps):
        _flush.zero_()
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        run()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)
