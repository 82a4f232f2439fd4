"""GPU tests run only on a Hopper GPU (compute capability 9.0); elsewhere they skip."""
import pytest
import torch


def _hopper_reason() -> str | None:
    if not torch.cuda.is_available():
        return "no CUDA GPU on this machine"
    major, minor = torch.cuda.get_device_capability()
    if (major, minor) != (9, 0):
        return f"needs a Hopper GPU (sm_90), found sm_{major}{minor}"
    return None


def pytest_collection_modifyitems(config, items):
    reason = _hopper_reason()
    if reason is None:
        return
    here = str(config.rootpath / "tests" / "gpu")
    for item in items:
        if str(item.path).startswith(here):
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(autouse=True)
def heuristic_plans():
    """Each test starts with the tile heuristic's own plans: a forced plan ends with its test."""
    yield
    from sms import restore_heuristic  # here: a broken deep_gemm build fails tests/gpu's tests, not collection

    restore_heuristic()
