"""Maximum-likelihood theta of the fixed-effects negative-binomial GLM.

This is what ``MASS::glm.nb`` returns and what the seed tutorial plugs into
``glmmPQL``: the GLM coefficients and theta are maximised jointly by
alternating an IRLS fit for fixed theta with a Newton step for theta given
the means (``MASS::theta.ml``).  Because theta and the coefficients of a
log-link NB model are orthogonal, the alternation converges quickly; it is
run to a tolerance far below R's so that theta is the exact maximum.

The digamma sums that dominate the theta step depend on the counts only, so
they are taken over the distinct count values (a few dozen) instead of the
rows (millions).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special

from . import negbin
from ._blocks import blocks
from .nbglm import GLMFit, fit_nb_glm

__all__ = ["ThetaFit", "theta_ml", "estimate_theta", "THETA_MAX"]

THETA_MAX = 1e8
"""Above this theta the data show no overdispersion; the estimate is capped."""


@dataclass
class ThetaFit:
    """Result of :func:`estimate_theta` (R: ``glm.nb``).

    Attributes
    ----------
    theta : float
        ML estimate of theta (``THETA_MAX`` if it ran away).
    se_theta : float
        Its standard error from the observed information.
    glm : GLMFit
        The NB GLM at that theta.
    loglike : float
        Maximised log-likelihood.
    n_iter : int
        Outer alternations.
    converged : bool
        Whether the alternation met its tolerance.
    at_limit : bool
        True when theta ran off towards infinity (no overdispersion).
    """

    theta: float
    se_theta: float
    glm: GLMFit
    loglike: float
    n_iter: int
    converged: bool
    at_limit: bool


class _CountTable:
    """Distinct counts and their frequencies, for the digamma sums."""

    def __init__(self, y):
        table = negbin._count_table(y)
        if table is None:
            table = np.unique(y, return_counts=True)
        self.values, self.counts = table
        self.n = y.shape[0]

    def digamma_sum(self, theta):
        return self.counts @ special.digamma(theta + self.values) - self.n * special.digamma(theta)

    def trigamma_sum(self, theta):
        return (self.counts @ special.polygamma(1, theta + self.values)
                - self.n * special.polygamma(1, theta))


def _score_info(theta, y, mu, table):
    """Score and observed information of theta, as ``MASS::theta.ml``."""
    # Block by block, so that the temporaries stay in cache:
    # sum(log(tm) + (y + theta) / tm) and sum(2 / tm - (y + theta) / tm^2).
    s_log = s_r = s_inv = s_r_inv = 0.0
    for s in blocks(y.shape[0]):
        tm = mu[s] + theta
        inv = np.divide(1.0, tm)
        r = y[s] + theta
        r *= inv                                # (y + theta) / tm
        s_r += r.sum()
        s_inv += inv.sum()
        r *= inv                                # (y + theta) / tm^2
        s_r_inv += r.sum()
        np.log(tm, out=tm)
        s_log += tm.sum()
    score = table.digamma_sum(theta) + table.n * (np.log(theta) + 1.0) - (s_log + s_r)
    info = -table.trigamma_sum(theta) - table.n / theta + (2.0 * s_inv - s_r_inv)
    return score, info


def theta_ml(y, mu, theta0=None, tol=1e-12, maxiter=200, table=None):
    """ML theta for known means, by Newton's method on ``log(theta)``.

    Parameters
    ----------
    y, mu : ndarray
        Counts and fitted means.
    theta0 : float, optional
        Start; by default the moment estimate ``n / sum((y / mu - 1)^2)``
        that ``MASS::theta.ml`` uses.
    tol : float
        Stop when the step in ``log(theta)`` is below this.
    maxiter : int
        Maximum Newton steps.
    table : optional
        Precomputed count table (internal, for repeated calls).

    Returns
    -------
    theta : float
        The estimate, capped at ``THETA_MAX``.
    info : float
        Observed information at the estimate.

    See Also
    --------
    MASS::theta.ml : the R function this mirrors.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(1)
    >>> y = rng.negative_binomial(5, 5 / (5 + 4.0), size=5000).astype(float)
    >>> theta, _ = theta_ml(y, np.full(5000, y.mean()))
    >>> bool(4 < theta < 6)
    True
    """
    table = _CountTable(y) if table is None else table
    if theta0 is None:
        theta0 = table.n / np.sum((y / mu - 1.0) ** 2)
    log_t = np.log(min(max(theta0, 1e-8), THETA_MAX))
    for _ in range(maxiter):
        t = np.exp(log_t)
        score, info = _score_info(t, y, mu, table)
        grad = t * score
        hess = -(t ** 2) * info + t * score
        step = -grad / hess if hess < 0 else np.sign(grad) * 1.0
        step = float(np.clip(step, -2.0, 2.0))
        log_t += step
        if log_t >= np.log(THETA_MAX):
            return THETA_MAX, _score_info(THETA_MAX, y, mu, table)[1]
        if abs(step) < tol:
            break
    t = float(np.exp(log_t))
    return t, _score_info(t, y, mu, table)[1]


def estimate_theta(y, X, offset, tol=1e-10, maxiter=100):
    """Jointly estimate theta and the GLM coefficients (R: ``MASS::glm.nb``).

    Parameters
    ----------
    y : ndarray
        Counts.
    X : ndarray
        Fixed-effects design.
    offset : ndarray
        Offset on the log scale.
    tol : float
        Relative change in theta at which the alternation stops.
    maxiter : int
        Maximum alternations.

    Returns
    -------
    ThetaFit

    See Also
    --------
    MASS::glm.nb : the R function this reproduces.

    Examples
    --------
    >>> from glmmnb.datasets import microscopy
    >>> import numpy as np
    >>> d = microscopy.load_pandas().data
    >>> X = np.column_stack([np.ones(len(d)), d["RNAi"] == "Target"])
    >>> fit = estimate_theta(d["counts"].to_numpy(float), X, np.zeros(len(d)))
    >>> round(fit.theta, 3)
    25.333
    """
    table = _CountTable(y)
    glm = fit_nb_glm(y, X, offset, np.inf)
    theta = None
    for it in range(1, maxiter + 1):
        new, info = theta_ml(y, glm.mu, theta0=theta, table=table)
        change = np.inf if theta is None else abs(new - theta) / new
        theta = new
        if change < tol:
            # theta moved by less than tol since the GLM was fitted at it: the
            # pair is the joint optimum, and refitting would change nothing.
            break
        glm = fit_nb_glm(y, X, offset, theta, start=glm.params)
        if theta >= THETA_MAX:
            break
    converged = (change < tol or theta >= THETA_MAX) and glm.converged
    if change >= tol:
        # the GLM moved after theta was last estimated: re-estimate at its means
        theta, info = theta_ml(y, glm.mu, theta0=theta, table=table)
    at_limit = theta >= THETA_MAX
    se = float(1.0 / np.sqrt(info)) if info > 0 and not at_limit else np.inf
    return ThetaFit(theta, se, glm, negbin.loglike(y, glm.mu, theta), it, converged, at_limit)
