"""The benchmark configurations: what is fitted, on which data.

Every configuration is a function ``fit(data) -> (params, theta)`` timed by
:mod:`benchmarks.timing`, plus, where R has the same model, the random part
to hand to :func:`benchmarks.r_runner.time_r`.

* ``ri``: random intercept, ``counts ~ treatment + area``, theta estimated,
  string labels (R: ``glm.nb`` then ``glmmPQL(random = ~ 1 | slide)``).
* ``ri_int``: the same data with integer labels (slide codes, treatment
  0/1), to show what the label type costs.
* ``rs``: random intercept and slope, ``re_formula="~area"`` (R: ``random =
  ~ area | slide``), theta estimated.
* ``nested``: slides nested in 100 experiments, ``groups="experiment"``,
  ``vc_formula={"slide": "0 + C(slide)"}`` (R: ``random = ~ 1 |
  experiment/slide``), theta estimated.
* ``subsample``: the seed tutorial's study on the shipped microscopy data:
  100 refits of 100 random rows of the 200, theta held at the full-data
  value 25.3326, on one core.

The timed call is the whole user-facing fit, ``from_formula(...).fit()``
(formula processing, theta, PQL, degrees of freedom and results), from a
DataFrame already in memory; R's timing likewise covers ``glm.nb`` and
``glmmPQL`` but not reading the CSV (R times its ``read.csv`` and
``factor()`` separately).
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass

import numpy as np

__all__ = ["Config", "CONFIGS", "FORMULA", "SUBSAMPLE_THETA", "plan"]

FORMULA = "counts ~ treatment + area"
ROWS_PER_GROUP = 100
N_EXPERIMENTS = 100
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
    r_random : str or None
        R's random formula (``"~ 1 | slide"``); ``None``: R is not timed.
    labels : {"str", "int"}
        Label type of the simulated data.
    groups : str
        glmmnb's grouping column.
    nested : bool
        Slides nested in experiments (``vc_formula``).
    simulated : bool
        Whether the data come from :func:`benchmarks.data.simulate`.
    one_core : bool
        Pin the worker to one CPU (and one BLAS thread).
    """

    name: str
    re_formula: str | None = None
    r_random: str | None = "~ 1 | slide"
    labels: str = "str"
    groups: str = "slide"
    nested: bool = False
    simulated: bool = True
    one_core: bool = False


CONFIGS = {
    "ri": Config("ri"),
    "ri_int": Config("ri_int", labels="int"),
    "rs": Config("rs", "~area", "~ area | slide"),
    "nested": Config("nested", None, "~ 1 | experiment/slide", groups="experiment",
                     nested=True),
    "subsample": Config("subsample", None, None, simulated=False, one_core=True),
}


def load_data(config, n_rows, n_groups):
    """The data frame of a configuration."""
    if config.simulated:
        from .data import simulate

        return simulate(n_rows, n_groups, labels=config.labels,
                        n_experiments=N_EXPERIMENTS if config.nested else None)
    from glmmnb.datasets import microscopy

    return microscopy.load_pandas().data


def make_fit(config, data):
    """A zero-argument callable running the timed work; returns (params, theta).

    Its ``phases`` list collects ``(from_formula, fit)`` seconds of each call.
    """
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

    vc = {"slide": "0 + C(slide)"} if config.nested else None

    def run():
        t0 = time.perf_counter()
        model = NegBinMixedGLM.from_formula(FORMULA, data, groups=config.groups,
                                            re_formula=config.re_formula, vc_formula=vc)
        t1 = time.perf_counter()
        res = model.fit()
        run.phases.append((t1 - t0, time.perf_counter() - t1))
        return np.asarray(res.params), float(res.theta)
    run.phases = []
    return run


def n_groups(config, n_rows):
    """Slides of a configuration: 100 rows each (at least 2 per experiment if nested)."""
    g = max(2, n_rows // ROWS_PER_GROUP)
    return max(g, 2 * N_EXPERIMENTS) if config.nested else g


def plan(sizes, quick=False):
    """``(config, n_rows, n_groups)`` triples to run, in order.

    ``ri`` runs at every size; ``ri_int``, ``rs`` and ``nested`` at the sizes
    up to 1e6 rows (1e4 for ``--quick``, and always the smallest size), and
    the subsampling study once (its data are the fixed 200 cells).
    """
    limit = max(10_000 if quick else 1_000_000, min(sizes))
    out = [(CONFIGS["ri"], n, n_groups(CONFIGS["ri"], n)) for n in sizes]
    for name in ("ri_int", "rs", "nested"):
        out += [(CONFIGS[name], n, n_groups(CONFIGS[name], n)) for n in sizes if n <= limit]
    out.append((CONFIGS["subsample"], 200, 4))
    return out
