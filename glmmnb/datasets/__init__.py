"""Data sets shipped with glmmnb (statsmodels' ``load_pandas()`` convention)."""

from . import microscopy

__all__ = ["microscopy"]
