"""glmmnb: negative-binomial generalized linear mixed models for statsmodels.

The main class is :class:`NegBinMixedGLM`, fitted by penalized
quasi-likelihood so that its numbers reproduce R's ``MASS::glmmPQL``.
"""

from .model import NegBinMixedGLM
from .results import NegBinMixedGLMResults, NegBinMixedGLMResultsWrapper

__version__ = "0.1.0"

__all__ = ["NegBinMixedGLM", "NegBinMixedGLMResults", "NegBinMixedGLMResultsWrapper",
           "__version__"]
