"""A change of basis of the fixed effects that keeps the normal equations well conditioned.

The solver works with cross-products ``X' V^{-1} X``, which square the
condition number of ``X``.  A covariate measured far from zero or on a large
scale (time in seconds, area in pixels) would then cost digits that R, which
uses QR decompositions, keeps.  Fitting ``X T`` (non-constant columns
centred on the intercept and scaled to unit SD) and mapping back with
``beta = T beta_s``, ``cov = T cov_s T'`` gives the same model exactly, with
the conditioning of the standardised design.
"""

from __future__ import annotations

import numpy as np

from .ddf import is_constant

__all__ = ["standardizing_transform"]


def standardizing_transform(X: np.ndarray) -> np.ndarray:
    """Matrix ``T`` such that ``X @ T`` has centred, unit-SD non-constant columns.

    Columns are centred only when ``X`` has a constant column to absorb the
    shift; constant columns are left as they are.

    Parameters
    ----------
    X : ndarray, shape (nobs, p)
        Fixed-effects design.

    Returns
    -------
    ndarray, shape (p, p)
        Invertible; ``beta = T @ beta_s`` maps coefficients of ``X @ T``
        back to those of ``X``.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.column_stack([np.ones(4), [1000.0, 1001.0, 1002.0, 1003.0]])
    >>> Xs = X @ standardizing_transform(X)
    >>> round(float(Xs[:, 1].mean()), 12), round(float(Xs[:, 1].std()), 12)
    (0.0, 1.0)
    """
    p = X.shape[1]
    T = np.eye(p)
    constant = [j for j in range(p) if is_constant(X[:, j])]
    intercept = next((j for j in constant if X[0, j] != 0), None)
    for j in range(p):
        if j in constant:
            continue
        sd = X[:, j].std()
        if intercept is None:
            T[j, j] = 1.0 / sd
            continue
        mean = X[:, j].mean()
        T[j, j] = 1.0 / sd
        T[intercept, j] = -mean / (sd * X[0, intercept])
    return T
