"""Test decorators and the device query DeepGEMM's tests use."""
from __future__ import annotations

import functools
import os
from collections.abc import Callable

import torch

__all__ = ["get_arch_major", "ignore_env", "test_filter"]


def get_arch_major() -> int:
    """Compute-capability major of the current CUDA device (9 on Hopper)."""
    return torch.cuda.get_device_capability()[0]


def test_filter(condition: Callable[[], bool]):
    """Run the decorated function only when condition() is true; otherwise print that it was filtered."""
    def decorator(func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            if condition():
                return func(*args, **kwargs)
            print(f"{func.__name__}:\n > Filtered by {condition}\n")
            return None
        return wrapper
    return decorator


test_filter.__test__ = False  # a decorator factory, not a pytest test


def ignore_env(name: str, condition: Callable[[], bool]):
    """Run the decorated function without environment variable `name` when condition() is true (restored after)."""
    def decorator(func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            if not condition() or name not in os.environ:
                return func(*args, **kwargs)
            saved = os.environ.pop(name)
            try:
                return func(*args, **kwargs)
            finally:
                os.environ[name] = saved
        return wrapper
    return decorator
