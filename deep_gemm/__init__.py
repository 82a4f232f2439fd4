"""FP8/BF16 GEMM kernels for NVIDIA Hopper with DeepGEMM 2.x's Python API.

Kernels are CUDA templates (deep_gemm/include) compiled at first use for the shapes
they meet; `_C` is the per-CPython binding to the C++ runtime. The public functions
live in Python modules: `gemm` (every GEMM), `attention` (the sparse-attention
indexer), `hyperconnection` (the mHC pre-norm GEMM), `einsum` (its expressions),
`config` (process-wide settings), `utils` (casts and scale layouts) and `testing`.
"""
from . import attention, config, gemm, hyperconnection, testing, utils
from ._loader import _C as _C
from .attention import *  # noqa: F403
from .attention import __all__ as _attention_all
from .config import *  # noqa: F403
from .config import __all__ as _config_all
from .einsum import *  # noqa: F403  (deep_gemm.einsum is then the function, as upstream's)
from .einsum import __all__ as _einsum_all
from .gemm import *  # noqa: F403
from .gemm import __all__ as _gemm_all
from .hyperconnection import *  # noqa: F403
from .hyperconnection import __all__ as _hyperconnection_all
from .testing import calc_diff  # not top-level in DeepGEMM; kept for this package's earlier users
from .utils import *  # noqa: F403
from .utils import __all__ as _utils_all

# The DeepGEMM release whose API this package implements (its own distribution version
# is the one in pyproject.toml).
__version__ = "2.6.1"

# (deep_gemm.utils re-exports the alignment settings, as upstream's utils.layout does)
__all__ = ["attention", "calc_diff", "config", "gemm", "hyperconnection", "testing", "utils", *_attention_all,
           *sorted(set(_config_all) - set(_utils_all)), *_einsum_all, *_gemm_all, *_hyperconnection_all, *_utils_all]
