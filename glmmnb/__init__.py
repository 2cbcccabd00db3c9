"""glmmnb: negative-binomial generalized linear mixed models for statsmodels.

The main class is :class:`NegBinMixedGLM`, fitted by penalized
quasi-likelihood so that its numbers reproduce R's ``MASS::glmmPQL``.
"""

from .model import NegBinMixedGLM
from .results import NegBinMixedGLMResults, NegBinMixedGLMResultsWrapper
from .workflows.many import fit_many

__version__ = "0.1.0"

__all__ = ["NegBinMixedGLM", "NegBinMixedGLMResults", "NegBinMixedGLMResultsWrapper",
           "fit_many", "__version__"]
