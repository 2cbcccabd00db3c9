"""Fixed-effects negative-binomial GLM with known theta, by IRLS.

PQL starts from this fit (R: ``glm(fixed, family = negative.binomial(theta))``
inside ``MASS::glmmPQL``), and the theta estimator alternates it with the
theta step, as ``MASS::glm.nb`` does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import linalg

from . import negbin

__all__ = ["GLMFit", "fit_nb_glm"]


@dataclass
class GLMFit:
    """Result of :func:`fit_nb_glm`.

    Attributes
    ----------
    params : ndarray
        Coefficients.
    cov_params : ndarray
        Inverse Fisher information ``(X' W X)^{-1}``.
    mu, eta : ndarray
        Fitted means and linear predictor (offset included).
    n_iter : int
        IRLS iterations.
    converged : bool
        Whether the relative change in deviance fell below the tolerance.
    """

    params: np.ndarray
    cov_params: np.ndarray
    mu: np.ndarray
    eta: np.ndarray
    n_iter: int
    converged: bool


def fit_nb_glm(y, X, offset, theta, start=None, tol=1e-12, maxiter=100):
    """Fit ``log E[y] = X beta + offset`` with NB2 variance by IRLS.

    Parameters
    ----------
    y : ndarray, shape (nobs,)
        Counts.
    X : ndarray, shape (nobs, p)
        Design matrix of full column rank.
    offset : ndarray, shape (nobs,)
        Offset on the log scale.
    theta : float
        Known NB2 shape (``inf`` for Poisson).
    start : ndarray, optional
        Starting coefficients (warm start); by default R's start
        ``mu = y + (y == 0) / 6``.
    tol : float
        Relative change in deviance at which to stop (R's ``glm`` uses 1e-8;
        tighter here so that the fit is the MLE to the last digits).
    maxiter : int
        Maximum IRLS iterations.

    Returns
    -------
    GLMFit

    See Also
    --------
    MASS::negative.binomial, stats::glm : the R fit this mirrors.

    Examples
    --------
    >>> import numpy as np
    >>> y = np.array([1.0, 3.0, 2.0, 6.0])
    >>> X = np.column_stack([np.ones(4), [0.0, 0.0, 1.0, 1.0]])
    >>> fit = fit_nb_glm(y, X, np.zeros(4), theta=10.0)
    >>> np.exp(fit.params).round(4).tolist()
    [2.0, 2.0]
    """
    if start is None:
        mu = y + (y == 0) / 6.0
        eta = np.log(mu)
    else:
        eta = X @ start + offset
        mu = np.exp(eta)
    dev_old = np.inf
    beta = start
    converged = False
    for it in range(1, maxiter + 1):
        w = negbin.working_weights(mu, theta)
        z = negbin.working_response(eta, y, mu, offset)
        beta_new = _weighted_lstsq(X, z, w)
        beta, eta, mu, dev = _halve_if_worse(y, X, offset, theta, beta, beta_new, dev_old)
        if abs(dev - dev_old) <= tol * (abs(dev) + 0.1):
            converged = True
            break
        dev_old = dev
    w = negbin.working_weights(mu, theta)
    cov = linalg.cho_solve(linalg.cho_factor(X.T @ (w[:, None] * X)), np.eye(X.shape[1]))
    return GLMFit(beta, cov, mu, eta, it, converged)


def _weighted_lstsq(X, z, w):
    xtwx = X.T @ (w[:, None] * X)
    return linalg.cho_solve(linalg.cho_factor(xtwx), X.T @ (w * z))


def _halve_if_worse(y, X, offset, theta, beta_old, beta, dev_old, max_halvings=30):
    """Step-halve towards the previous coefficients while the deviance grows."""
    for _ in range(max_halvings):
        eta = X @ beta + offset
        mu = np.exp(eta)
        dev = negbin.deviance(y, mu, theta) if np.all(np.isfinite(mu)) else np.inf
        if beta_old is None or dev <= dev_old * (1 + 1e-12) + 1e-12:
            return beta, eta, mu, dev
        beta = 0.5 * (beta + beta_old)
    return beta, eta, mu, dev
