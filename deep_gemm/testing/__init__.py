"""DeepGEMM's `deep_gemm.testing`: numeric comparisons, timing and test decorators."""
from . import bench, numeric, utils
from .bench import *  # noqa: F403  (as in DeepGEMM, the function bench then shadows the module)
from .bench import __all__ as _bench_all
from .numeric import *  # noqa: F403
from .numeric import __all__ as _numeric_all
from .utils import *  # noqa: F403
from .utils import __all__ as _utils_all

__all__ = ["bench", "numeric", "utils", *_bench_all, *_numeric_all, *_utils_all]
