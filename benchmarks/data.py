"""Deterministic simulated microscopy-like data for the benchmarks.

Cells (rows) on slides (groups).  ``treatment`` is constant on a slide (half
the slides are treated), ``area`` is a cell-level covariate, and the counts
are negative binomial around ``exp(1 + 0.4 treatment + 0.3 area + b0 + b1 area)``
with a random intercept (SD 0.3) and a small random slope (SD 0.1) per slide,
so that both the random-intercept and the random-slope model are well posed.

Labels are strings by default, as users' data read from a file have them
(``slide`` = ``"s000001"``, ``treatment`` = ``"control"``/``"treated"``);
``labels="int"`` gives the integer codes instead (the same numbers), to show
what the label type costs.  ``n_experiments`` adds an ``experiment`` column
grouping consecutive slides, for the nested configuration.

Everything is drawn from one ``numpy.random.Generator`` with a fixed seed, so
the same arguments always give the same frame, byte for byte, on any machine
with the same numpy.
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


def simulate(n_rows, n_groups, seed=DEFAULT_SEED, labels="str", n_experiments=None):
    """A data frame with columns ``counts``, ``treatment``, ``area``, ``slide``.

    Parameters
    ----------
    n_rows : int
        Number of cells; slides get ``n_rows // n_groups`` or one more.
    n_groups : int
        Number of slides (at least 2, so both treatment arms occur).
    seed : int
        Seed of ``numpy.random.default_rng``.
    labels : {"str", "int"}
        String labels (pandas' default string dtype) or integer codes.
    n_experiments : int, optional
        Add an ``experiment`` column: slide ``k`` belongs to experiment
        ``k * n_experiments // n_groups``.

    Returns
    -------
    pandas.DataFrame
        Slides in row order (cells of one slide are contiguous); ``slide``
        is ``"s000000" ..`` (``0 ..`` for integer labels) and ``treatment``
        is ``"control"``/``"treated"`` (0/1).

    Examples
    --------
    >>> d = simulate(1000, 10)
    >>> d.shape, d["slide"].nunique(), bool(d.equals(simulate(1000, 10)))
    ((1000, 4), 10, True)
    >>> d["slide"].iloc[-1], d["treatment"].iloc[-1], simulate(1000, 10, labels="int")["slide"].iloc[-1]
    ('s000009', 'treated', np.int64(9))
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
    frame = {"counts": counts.astype(np.int64), "treatment": treatment, "area": area,
             "slide": slide}
    if n_experiments is not None:
        frame["experiment"] = (slide * n_experiments) // n_groups
    if labels == "str":
        frame["treatment"] = np.array(["control", "treated"])[treatment]
        frame["slide"] = _labels("s", slide, n_groups)
        if n_experiments is not None:
            frame["experiment"] = _labels("e", frame["experiment"], n_experiments)
    elif labels != "int":
        raise ValueError(f"labels must be 'str' or 'int', got {labels!r}")
    return pd.DataFrame(frame)


def _labels(prefix, codes, n):
    """Zero-padded string labels, made from the distinct codes only."""
    width = max(6, len(str(n)))
    names = np.array([f"{prefix}{k:0{width}d}" for k in range(n)], dtype=object)
    return pd.array(names[codes], dtype="str")
