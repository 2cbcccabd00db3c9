"""The numerical core: NB GLM, theta, the inner LMM, PQL and the df rule.

numpy and scipy only: no pandas, no formulas.  The user-facing layer
(:mod:`glmmnb.model`, :mod:`glmmnb.results`) turns data frames into the arrays
these functions take, and the workflows (:mod:`glmmnb.workflows`) build on both.
"""
