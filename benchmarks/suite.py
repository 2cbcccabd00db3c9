"""The benchmark configurations: what is fitted, on which data.

Every configuration is a function ``fit(data) -> (params, theta)`` timed by
:mod:`benchmarks.timing`, plus, where R has the same model, what to hand to
:func:`benchmarks.r_runner.time_r`.

* ``ri``: random intercept, ``counts ~ treatment + area``, theta estimated
  (R: ``glm.nb`` then ``glmmPQL(random = ~ 1 | slide)``).
* ``rs``: random intercept and slope, ``re_formula="~area"`` (R: ``random =
  ~ area | slide``), theta estimated.
* ``subsample``: the seed tutorial's study on the shipped microscopy data:
  100 refits of 100 random rows of the 200, theta held at the full-data
  value 25.3326, on one core.

The timed call is the whole user-facing fit, ``from_formula(...).fit()``
(formula processing, theta, PQL, degrees of freedom and results), from a
DataFrame already in memory; R's timing likewise covers ``glm.nb`` and
``glmmPQL`` but not reading the CSV.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

__all__ = ["Config", "CONFIGS", "FORMULA", "SUBSAMPLE_THETA", "plan"]

FORMULA = "counts ~ treatment + area"
ROWS_PER_GROUP = 100
SUBSAMPLE_THETA = 25.3326


@dataclass
class Config:
    """One benchmark configuration.

    Attributes
    ----------
    name : str
        Short name printed in the table.
    re_formula : str or None
        glmmnb's random part beyond the intercept.
    r_lhs : str or None
        Left side of R's random formula (``"1"``, ``"area"``); ``None``: R
        is not timed for this configuration.
    simulated : bool
        Whether the data come from :func:`benchmarks.data.simulate`.
    one_core : bool
        Pin the worker to one CPU (and one BLAS thread).
    """

    name: str
    re_formula: str | None = None
    r_lhs: str | None = "1"
    simulated: bool = True
    one_core: bool = False
    extra: dict = field(default_factory=dict)


CONFIGS = {
    "ri": Config("ri", None, "1"),
    "rs": Config("rs", "~area", "area"),
    "subsample": Config("subsample", None, None, simulated=False, one_core=True),
}


def load_data(config, n_rows, n_groups):
    """The data frame of a configuration."""
    if config.simulated:
        from .data import simulate

        return simulate(n_rows, n_groups)
    from glmmnb.datasets import microscopy

    return microscopy.load_pandas().data


def make_fit(config, data):
    """A zero-argument callable running the timed work; returns (params, theta)."""
    from glmmnb import NegBinMixedGLM

    if config.name == "subsample":
        full = NegBinMixedGLM.from_formula("counts ~ RNAi", data, groups="slide",
                                           theta=SUBSAMPLE_THETA).fit()

        def run():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                study = full.subsample(size=100, n_rep=100, random_state=2024)
            return np.asarray(study.params.median()), SUBSAMPLE_THETA
        return run

    def run():
        res = NegBinMixedGLM.from_formula(FORMULA, data, groups="slide",
                                          re_formula=config.re_formula).fit()
        return np.asarray(res.params), float(res.theta)
    return run


def plan(sizes, quick=False):
    """``(config, n_rows, n_groups)`` triples to run, in order.

    ``ri`` runs at every size, ``rs`` at the sizes up to 1e6 rows, and the
    subsampling study once (its data are the fixed 200 cells).
    """
    out = []
    for n in sizes:
        out.append((CONFIGS["ri"], n, max(2, n // ROWS_PER_GROUP)))
    for n in sizes:
        if n <= (10_000 if quick else 1_000_000):
            out.append((CONFIGS["rs"], n, max(2, n // ROWS_PER_GROUP)))
    out.append((CONFIGS["subsample"], 200, 4))
    return out
