"""Data sets shipped with glmmnb (statsmodels' ``load_pandas()`` convention)."""

from . import microscopy, singlecell

__all__ = ["microscopy", "singlecell"]
