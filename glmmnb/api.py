"""statsmodels-style entry points (``import glmmnb.api as gnb``)."""

from .model import NegBinMixedGLM

__all__ = ["NegBinMixedGLM", "negbinmixedglm"]

negbinmixedglm = NegBinMixedGLM.from_formula
"""Lower-case formula constructor, like ``statsmodels.formula.api.mixedlm``.

Examples
--------
>>> from glmmnb.api import negbinmixedglm
>>> from glmmnb.datasets import microscopy
>>> res = negbinmixedglm("counts ~ RNAi", microscopy.load_pandas().data,
...                      groups="slide").fit()
>>> res.ddf.tolist()
[196, 2]
"""
