"""Run deep_gemm under a smaller SM budget, which changes the tile plan of small problems."""
import contextlib

import deep_gemm


@contextlib.contextmanager
def num_sms(count: int):
    full = deep_gemm.get_num_sms()
    deep_gemm.set_num_sms(count)
    try:
        yield
    finally:
        deep_gemm.set_num_sms(full)
