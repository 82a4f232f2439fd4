"""FP8/BF16 GEMM kernels for NVIDIA Hopper with DeepGEMM 2.x's Python API.

Kernels are CUDA templates (deep_gemm/include) compiled at first use for the shapes
they meet; `_C` is the per-CPython binding to the C++ runtime. The public functions
live in Python modules, as DeepGEMM's names them: `gemm` (every GEMM), `attention`
(the sparse-attention indexer), `config` (process-wide settings), `utils` (casts and
scale layouts) and `testing`.
"""
from . import attention, config, gemm, testing, utils
from ._loader import _C as _C
from .attention import *  # noqa: F403
from .attention import __all__ as _attention_all
from .config import *  # noqa: F403
from .config import __all__ as _config_all
from .gemm import *  # noqa: F403
from .gemm import __all__ as _gemm_all
from .testing import calc_diff  # not top-level in DeepGEMM; kept for this package's earlier users
from .utils import *  # noqa: F403
from .utils import __all__ as _utils_all

# The DeepGEMM release whose API this package implements (its own distribution version
# is the one in pyproject.toml).
__version__ = "2.6.1"

__all__ = ["attention", "calc_diff", "config", "gemm", "testing", "utils", *_attention_all, *_config_all, *_gemm_all,
           *_utils_all]

# DeepSeek's mHC pre-norm GEMM.
from . import hyperconnection  # noqa: E402
from .hyperconnection import *  # noqa: E402,F403
from .hyperconnection import __all__ as _hyperconnection_all  # noqa: E402

__all__ = sorted({*__all__, *_hyperconnection_all, "hyperconnection"})

# DeepGEMM's einsum expressions (deep_gemm.einsum is the function, as upstream's).
from .einsum import *  # noqa: E402,F403
from .einsum import __all__ as _einsum_all  # noqa: E402

__all__ = sorted({*__all__, *_einsum_all})
