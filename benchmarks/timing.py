"""GPU timing shared by the benchmark scripts: median of CUDA-event times, L2 flushed before each."""
import statistics

import torch

L2_FLUSH_BYTES = 256 << 20  # well above the H100's 50 MB L2
_flush = None


def median_ms(fn, reps: int) -> float:
    """Median milliseconds of `fn` over `reps` runs, after one warm-up (JIT compile, cuBLASLt heuristics)."""
    global _flush
    if _flush is None:
        _flush = torch.empty(L2_FLUSH_BYTES, dtype=torch.uint8, device="cuda")
    fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        _flush.zero_()
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)
