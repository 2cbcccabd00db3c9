"""The negative-binomial (NB2) family with a log link, in numpy.

``Var(y) = mu + mu^2 / theta``; ``theta = inf`` is the Poisson limit.  These
are the pieces of R's ``MASS::negative.binomial(theta)`` family that PQL and
the GLM fits need.
"""

from __future__ import annotations

import numpy as np
from scipy import special

__all__ = ["working_weights", "working_response", "loglike", "deviance", "degenerate_means",
           "separated_rows", "MEAN_RATIO_MIN", "unit_deviance"]

# A fitted mean below this fraction of its positive count: the working
# residual (y - mu) / mu exceeds 1e8 while log(y / mu) is ~18, so PQL's
# linearisation of log(y) is meaningless there and that one row carries the
# residual variance (an exposure of 1e-10 gives standard errors of ~1e3).
MEAN_RATIO_MIN = 1e-8


def working_weights(mu: np.ndarray, theta: float) -> np.ndarray:
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


def degenerate_means(y: np.ndarray, mu: np.ndarray) -> np.ndarray:
    """Rows whose fitted mean is numerically 0 against a positive count, or not finite.

    R's ``glm.fit`` warns "fitted rates numerically 0 occurred" for means
    below ``10 * .Machine$double.eps``, and ``glm.nb`` then stops ("no valid
    set of coefficients has been found"); a mean that is tiny only relative
    to its count breaks PQL in the same way.

    Parameters
    ----------
    y : ndarray
        Counts.
    mu : ndarray
        Fitted means.

    Returns
    -------
    ndarray of bool
        ``True`` where ``mu`` is not finite, or ``y > 0`` and
        ``mu < max(10 * eps, MEAN_RATIO_MIN * y)``.

    Examples
    --------
    >>> import numpy as np
    >>> degenerate_means(np.array([6.0, 0.0, 3.0]), np.array([5e-10, 1e-20, 2.0])).tolist()
    [True, False, False]
    """
    floor = np.maximum(10.0 * np.finfo(float).eps, MEAN_RATIO_MIN * y)
    return ~np.isfinite(mu) | ((y > 0) & (mu < floor))


def separated_rows(y: np.ndarray, mu: np.ndarray, axis: int | None = None) -> np.ndarray:
    """Rows with a zero count whose fitted mean the fit drives to 0 (separation).

    A mean below ``MEAN_RATIO_MIN`` times the average count means a linear
    predictor some 18 log-units below the data: the coefficients that get
    it there are running off to minus infinity (a factor level, or a side of
    a covariate, with only zero counts).

    Parameters
    ----------
    y : ndarray
        Counts.
    mu : ndarray
        Fitted means.
    axis : int, optional
        The axis of the rows when ``y`` holds a block of responses (features
        x rows: ``axis=1``); each feature's rows are then compared with its
        own average count.

    Returns
    -------
    ndarray of bool

    Examples
    --------
    >>> import numpy as np
    >>> y = np.array([0.0, 0.0, 2.0, 5.0])
    >>> separated_rows(y, np.array([4e-14, 4e-14, 3.5, 3.5])).tolist()
    [True, True, False, False]
    """
    return (y == 0) & (mu < MEAN_RATIO_MIN * y.mean(axis=axis, keepdims=axis is not None))


def working_response(eta: np.ndarray, y: np.ndarray, mu: np.ndarray,
                     offset: np.ndarray) -> np.ndarray:
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


def loglike(y: np.ndarray, mu: np.ndarray, theta: float) -> float:
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


def _count_table(y: np.ndarray,
                 max_value: int | None = None) -> tuple[np.ndarray, np.ndarray] | None:
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


def deviance(y: np.ndarray, mu: np.ndarray, theta: float) -> float:
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
    return float(np.sum(unit_deviance(y, mu, theta)))


def unit_deviance(y: np.ndarray, mu: np.ndarray, theta: float) -> np.ndarray:
    """Each row's contribution to :func:`deviance` (R: ``family$dev.resids``).

    Parameters
    ----------
    y, mu : ndarray
        Counts and means.
    theta : float
        NB2 shape (``inf``: Poisson).

    Returns
    -------
    ndarray

    Examples
    --------
    >>> import numpy as np
    >>> unit_deviance(np.array([0.0, 1.0]), np.array([1.0, 1.0]), np.inf).tolist()
    [2.0, 0.0]
    """
    ylogy = special.xlogy(y, y / mu)
    if np.isinf(theta):
        return 2.0 * (ylogy - (y - mu))
    return 2.0 * (ylogy - (y + theta) * np.log((y + theta) / (mu + theta)))
