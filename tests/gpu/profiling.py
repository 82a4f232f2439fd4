"""Which CUDA kernels a call launches, for tests that assert a kernel choice (or that nothing
is copied before it)."""
import torch


def launched_kernels(call) -> list[str]:
    """The names of the CUDA kernels `call` launches (it is run once, under the profiler)."""
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        call()
        torch.cuda.synchronize()
    return [e.name for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA]
