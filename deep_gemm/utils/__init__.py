"""DeepGEMM's `deep_gemm.utils`: the integer helpers, the casts and the scale layouts."""
from . import layout, math
from .layout import *  # noqa: F403
from .layout import __all__ as _layout_all
from .math import *  # noqa: F403
from .math import __all__ as _math_all

__all__ = ["layout", "math", *_layout_all, *_math_all]
