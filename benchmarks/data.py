"""Deterministic simulated microscopy-like data for the benchmarks.

Cells (rows) on slides (groups).  ``treatment`` is constant on a slide (half
the slides are treated), ``area`` is a cell-level covariate, and the counts
are negative binomial around ``exp(1 + 0.4 treatment + 0.3 area + b0 + b1 area)``
with a random intercept (SD 0.3) and a small random slope (SD 0.1) per slide,
so that both the random-intercept and the random-slope model are well posed.

Everything is drawn from one ``numpy.random.Generator`` with a fixed seed, so
the same ``(n_rows, n_groups, seed)`` always gives the same frame, byte for
byte, on any machine with the same numpy.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["simulate", "TRUE_THETA", "DEFAULT_SEED"]

DEFAULT_SEED = 20240401
TRUE_THETA = 5.0
BETA = (1.0, 0.4, 0.3)
SD_INTERCEPT = 0.3
SD_SLOPE = 0.1


def simulate(n_rows, n_groups, seed=DEFAULT_SEED):
    """A data frame with columns ``counts``, ``treatment``, ``area``, ``slide``.

    Parameters
    ----------
    n_rows : int
        Number of cells; slides get ``n_rows // n_groups`` or one more.
    n_groups : int
        Number of slides (at least 2, so both treatment arms occur).
    seed : int
        Seed of ``numpy.random.default_rng``.

    Returns
    -------
    pandas.DataFrame
        ``slide`` holds integer labels ``0 .. n_groups - 1`` in row order
        (cells of one slide are contiguous), ``treatment`` is 0/1.

    Examples
    --------
    >>> d = simulate(1000, 10)
    >>> d.shape, d["slide"].nunique(), bool(d.equals(simulate(1000, 10)))
    ((1000, 4), 10, True)
    """
    if n_groups < 2 or n_rows < 2 * n_groups:
        raise ValueError("need at least 2 groups and 2 rows per group")
    rng = np.random.default_rng(seed)
    slide = (np.arange(n_rows, dtype=np.int64) * n_groups) // n_rows
    treated = (np.arange(n_groups) % 2).astype(np.int64)
    b0 = rng.normal(0.0, SD_INTERCEPT, n_groups)
    b1 = rng.normal(0.0, SD_SLOPE, n_groups)
    area = np.round(rng.normal(0.0, 1.0, n_rows), 6)
    treatment = treated[slide]
    eta = BETA[0] + BETA[1] * treatment + (BETA[2] + b1[slide]) * area + b0[slide]
    mu = np.exp(eta)
    # NB2 as a gamma-Poisson mixture: lambda ~ Gamma(theta, mu / theta).
    lam = rng.gamma(TRUE_THETA, 1.0, n_rows) * (mu / TRUE_THETA)
    counts = rng.poisson(lam)
    return pd.DataFrame({
        "counts": counts.astype(np.int64),
        "treatment": treatment,
        "area": area,
        "slide": slide,
    })
