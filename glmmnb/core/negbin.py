"""The negative-binomial (NB2) family with a log link, in numpy.

``Var(y) = mu + mu^2 / theta``; ``theta = inf`` is the Poisson limit.  These
are the pieces of R's ``MASS::negative.binomial(theta)`` family that PQL and
the GLM fits need.
"""

from __future__ import annotations

import numpy as np
from scipy import special

__all__ = ["working_weights", "working_response", "loglike", "deviance"]


def working_weights(mu, theta):
    """IRLS weights ``mu.eta^2 / V(mu) = mu / (1 + mu / theta)`` of the log link.

    Parameters
    ----------
    mu : ndarray
        Means.
    theta : float
        NB2 shape (``inf`` for Poisson).

    Returns
    -------
    ndarray

    Examples
    --------
    >>> import numpy as np
    >>> working_weights(np.array([2.0]), 2.0)
    array([1.])
    """
    return mu / (1.0 + mu / theta)


def working_response(eta, y, mu, offset):
    """Working response ``eta + (y - mu) / mu.eta - offset`` of the log link.

    Parameters
    ----------
    eta, y, mu, offset : ndarray
        Linear predictor (offset included), counts, means and offset.

    Returns
    -------
    ndarray

    Examples
    --------
    >>> import numpy as np
    >>> working_response(np.zeros(1), np.array([2.0]), np.ones(1), np.zeros(1))
    array([1.])
    """
    return eta + (y - mu) / mu - offset


def loglike(y, mu, theta):
    """Negative-binomial log-likelihood ``sum log P(y | mu, theta)``.

    Parameters
    ----------
    y, mu : ndarray
        Counts and means.
    theta : float
        NB2 shape; ``inf`` gives the Poisson log-likelihood.

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> round(loglike(np.array([0.0]), np.array([1.0]), np.inf), 6)
    -1.0
    """
    table = _count_table(y)
    if np.isinf(theta):
        if table is None:
            return float(np.sum(special.xlogy(y, mu) - mu - special.gammaln(y + 1.0)))
        values, counts = table
        return float(np.sum(special.xlogy(y, mu) - mu)
                     - counts @ special.gammaln(values + 1.0))
    if table is None:
        return float(np.sum(
            special.gammaln(theta + y) - special.gammaln(theta) - special.gammaln(y + 1.0)
            + theta * np.log(theta / (theta + mu)) + special.xlogy(y, mu / (theta + mu))
        ))
    # The gamma-function terms depend on y only: one value per distinct count.
    values, counts = table
    per_count = (special.gammaln(theta + values) - special.gammaln(theta)
                 - special.gammaln(values + 1.0))
    return float(counts @ per_count + np.sum(
        theta * np.log(theta / (theta + mu)) + special.xlogy(y, mu / (theta + mu))))


def _count_table(y, max_value=None):
    """Distinct values of integer counts and their frequencies, in O(nobs).

    Parameters
    ----------
    y : ndarray
        Non-negative counts.
    max_value : int, optional
        Largest count for which the table is built (default ``max(2 * nobs,
        1000)``), so that the work stays linear in the rows.

    Returns
    -------
    (values, counts) or None
        Sorted distinct values (dtype of ``y``) and how often each occurs,
        the same as ``np.unique(y, return_counts=True)``; ``None`` if ``y`` is not made
        of small non-negative integers.

    Examples
    --------
    >>> import numpy as np
    >>> _count_table(np.array([3.0, 0.0, 3.0]))
    (array([0., 3.]), array([1, 2]))
    """
    y = np.asarray(y)
    n = y.shape[0] if y.ndim == 1 else -1
    if n <= 0 or y.dtype.kind not in "fiu":
        return None
    top = y.max()
    limit = max(2 * n, 1000) if max_value is None else max_value
    if not (np.isfinite(top) and 0 <= top <= limit) or y.min() < 0:
        return None
    yi = y.astype(np.intp)
    if y.dtype.kind == "f" and not np.array_equal(yi, y):
        return None
    freq = np.bincount(yi)
    values = np.flatnonzero(freq)
    return values.astype(y.dtype), freq[values]


def deviance(y, mu, theta):
    """Residual deviance of the NB2 model, as R's ``negative.binomial``.

    Parameters
    ----------
    y, mu : ndarray
        Counts and means.
    theta : float
        NB2 shape.

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> deviance(np.array([1.0]), np.array([1.0]), 5.0)
    0.0
    """
    ylogy = special.xlogy(y, y / mu)
    if np.isinf(theta):
        return float(2.0 * np.sum(ylogy - (y - mu)))
    return float(2.0 * np.sum(ylogy - (y + theta) * np.log((y + theta) / (mu + theta))))
