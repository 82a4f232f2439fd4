"""FP8/BF16 GEMM kernels for NVIDIA Hopper with DeepGEMM 2.x's Python API.

Kernels are CUDA templates (deep_gemm/include) compiled at first use for the shapes
they meet; `_C` is the per-CPython binding to the C++ runtime. The public functions
live in Python modules, as DeepGEMM's names them: `gemm` (every GEMM), `config`
(process-wide settings), `utils` (casts and scale layouts) and `testing`.
"""
from . import config, gemm, testing, utils
from ._loader import _C
from .config import *  # noqa: F403
from .config import __all__ as _config_all
from .gemm import *  # noqa: F403
from .gemm import __all__ as _gemm_all
from .utils import *  # noqa: F403
from .utils import __all__ as _utils_all

# Not top-level in DeepGEMM (it is deep_gemm.testing.calc_diff); kept for this package's
# earlier users.
from .testing import calc_diff

# The DeepGEMM release whose API this package implements (its own distribution version
# is the one in pyproject.toml).
__version__ = "2.6.1"

__all__ = sorted({*_config_all, *_gemm_all, *_utils_all, "calc_diff", "config", "gemm", "testing", "utils"})

# The sparse-attention indexer.
from . import attention  # noqa: E402
from .attention import *  # noqa: E402,F403
from .attention import __all__ as _attention_all  # noqa: E402

__all__ = sorted({*__all__, *_attention_all, "attention"})
