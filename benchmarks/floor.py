"""The numpy floor: the data passes one PQL iteration cannot avoid.

One iteration of any PQL fit of ``counts ~ treatment + area`` with a random
intercept per slide has to form ``eta = X beta + b[g]``, ``mu = exp(eta)``,
the working weights ``w = mu / (1 + mu / theta)`` and response ``z = eta +
(y - mu) / mu``, the group sums of the weighted columns of ``[X, z]``
(``np.bincount``) and ``X' W X``.  Timed in the benchmark's own process on
the same data, it is the unit the fit times are divided by ("floor
iterations"), which is steadier than seconds on a shared machine.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

__all__ = ["floor_arrays", "floor_iteration", "time_floor"]


def floor_arrays(data, groups="slide"):
    """``y``, ``X`` (intercept, treatment, area), group codes and their count."""
    treatment = data["treatment"]
    if treatment.dtype.kind not in "iuf":
        treatment = treatment == "treated"
    X = np.column_stack([np.ones(len(data)), np.asarray(treatment, dtype=float),
                         data["area"].to_numpy(dtype=float)])
    codes, uniques = pd.factorize(data[groups])
    return data["counts"].to_numpy(dtype=float), X, codes, len(uniques)


def floor_iteration(y, X, g, n_groups, beta, b, theta):
    """One iteration's unavoidable passes; returns the group sums and ``X' W X``."""
    eta = X @ beta + b[g]
    mu = np.exp(eta)
    w = mu / (1.0 + mu / theta)
    z = eta + (y - mu) / mu
    sums = [np.bincount(g, weights=w * a, minlength=n_groups)
            for a in (*X.T, z)]
    xtwx = X.T @ (w[:, None] * X)
    return sums, xtwx


def time_floor(data, groups="slide", repeat=5):
    """Seconds of ``repeat`` timed :func:`floor_iteration` calls on ``data`` (one warm-up)."""
    y, X, g, n_groups = floor_arrays(data, groups)
    beta = np.array([1.0, 0.4, 0.3])
    b = np.zeros(n_groups)
    floor_iteration(y, X, g, n_groups, beta, b, 5.0)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        floor_iteration(y, X, g, n_groups, beta, b, 5.0)
        times.append(time.perf_counter() - t0)
    return times
