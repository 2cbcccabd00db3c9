"""Fixed-effects negative-binomial GLM with known theta, by IRLS.

PQL starts from this fit (R: ``glm(fixed, family = negative.binomial(theta))``
inside ``MASS::glmmPQL``), and the theta estimator alternates it with the
theta step, as ``MASS::glm.nb`` does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import negbin
from ._blocks import blocks
from .lmm import _cho_solve

__all__ = ["GLMFit", "SeparationError", "fit_nb_glm"]


class SeparationError(ValueError):
    """The fit drives the means of zero counts to 0: a coefficient runs off to -inf.

    Attributes
    ----------
    rows : ndarray of bool
        The rows whose fitted means vanished (all with count 0).
    mu : ndarray
        The fitted means when the fit stopped.
    """

    def __init__(self, rows: np.ndarray, mu: np.ndarray) -> None:
        super().__init__(f"complete separation in {int(rows.sum())} row(s) with count 0")
        self.rows = rows
        self.mu = mu


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


def fit_nb_glm(y: np.ndarray, X: np.ndarray, offset: np.ndarray, theta: float,
               start: np.ndarray | None = None, tol: float = 1e-12, maxiter: int = 100) -> GLMFit:
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
    dev_fn = _Deviance(y, theta)
    # A zero offset changes nothing (x + 0 == x): skip adding and subtracting it.
    off = offset if np.any(offset) else None
    if start is None:
        mu = y + (y == 0) / 6.0
        eta = np.log(mu)
    else:
        eta, mu = _eta_mu(X, start, off)
    dev_old = np.inf
    beta = start
    converged = False
    # X' W X and X' W z at the current means; every step returns those of its
    # new means (computed in the same pass), and the last serve the covariance.
    ne = _normal_equations(X, y, eta, mu, off, theta)
    # Trial eta and mu go into a spare pair of arrays, which swaps with the
    # current pair when the step is taken: no fresh nobs-sized arrays per step.
    spare = (np.empty_like(eta), np.empty_like(mu))
    for it in range(1, maxiter + 1):
        beta_new = _solve(ne[0], ne[1], theta, y, mu)
        current = (eta, mu)
        beta, eta, mu, dev, ne = _step(y, X, off, theta, beta, beta_new, dev_old, dev_fn,
                                       out=spare)
        spare = current
        if abs(dev - dev_old) <= tol * (abs(dev) + 0.1):
            converged = True
            break
        dev_old = dev
    cov = _solve(ne[0], np.eye(X.shape[1]), theta, y, mu)
    return GLMFit(beta, cov, mu, eta, it, converged)


def _solve(xtwx: np.ndarray, b: np.ndarray, theta: float, y: np.ndarray,
           mu: np.ndarray) -> np.ndarray:
    """``xtwx^{-1} b``, or an error that says why ``X' W X`` is not positive definite."""
    try:
        return _cho_solve(xtwx, b, lower=False)
    except np.linalg.LinAlgError:
        separated = negbin.separated_rows(y, mu)
        if separated.any():
            raise SeparationError(separated, mu) from None
        raise FloatingPointError(
            f"the NB GLM's information matrix X'WX is not positive definite: the working "
            f"weights mu / (1 + mu / theta) vanished or overflowed (theta = {theta:.3g}; "
            "fitted means at 0 or beyond 1e308). Check for covariates on an extreme scale "
            "or a theta too small to compute with") from None


def _normal_equations(X: np.ndarray, y: np.ndarray, eta: np.ndarray, mu: np.ndarray,
                      offset: np.ndarray, theta: float) -> tuple[np.ndarray, np.ndarray]:
    """``X' W X`` and ``X' W z`` of one IRLS step, block by block.

    ``W`` and ``z`` are :func:`negbin.working_weights` and
    :func:`negbin.working_response` (``offset=None`` meaning zero).
    """
    acc = _NormalEquations(X)
    for s in blocks(X.shape[0]):
        acc.add(s, X[s], y[s], eta[s], mu[s], offset, theta)
    return acc.result()


class _NormalEquations:
    """Block-wise accumulation of ``X' W X`` and ``X' W z``."""

    def __init__(self, X: np.ndarray) -> None:
        p = X.shape[1]
        self.p = p
        self.by_column = X.flags.f_contiguous and p <= 8
        self.xtwx = np.zeros((p, p))
        self.xtwz = np.zeros(p)

    def add(self, s: slice, Xs: np.ndarray, ys: np.ndarray, es: np.ndarray, ms: np.ndarray,
            offset: np.ndarray, theta: float) -> None:
        w = negbin.working_weights(ms, theta)
        z = ys - ms
        z /= ms
        z += es
        if offset is not None:
            z -= offset[s]
        if self.by_column:
            xtwx, xtwz = self.xtwx, self.xtwz
            for j in range(self.p):
                wx = w * Xs[:, j]
                for k in range(j, self.p):
                    xtwx[j, k] += wx @ Xs[:, k]
                xtwz[j] += wx @ z
        else:
            wX = w[:, None] * Xs
            self.xtwx += Xs.T @ wX
            self.xtwz += wX.T @ z

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        xtwx = self.xtwx
        if self.by_column:
            il = np.tril_indices(self.p, -1)
            xtwx[il] = xtwx.T[il]
        return xtwx, self.xtwz


def _step(y: np.ndarray, X: np.ndarray, offset: np.ndarray, theta: float, beta_old: np.ndarray,
          beta: np.ndarray, dev_old: float, dev_fn: _Deviance, max_halvings: int = 30,
          out: tuple[np.ndarray, np.ndarray] | None = None) -> tuple:
    """IRLS step, halved towards the old coefficients while the deviance grows.

    Also returns the normal equations at the new means: one pass over the
    rows per trial coefficients computes ``eta``, ``mu``, the deviance and
    the next step's ``X' W X`` and ``X' W z`` (``eta`` and ``mu`` written
    into the arrays ``out``, if given).
    """
    for _ in range(max_halvings):
        eta, mu, dev, ne = _eta_mu(X, beta, offset, dev_fn, y=y, theta=theta, out=out)
        if beta_old is None and not np.isfinite(dev):
            raise FloatingPointError(
                "the first IRLS step of the NB GLM gives fitted means beyond 1e308 "
                "(exp overflows): a covariate on an extreme scale, or counts too large; "
                "rescale the covariates")
        if beta_old is None or dev <= dev_old * (1 + 1e-12) + 1e-12:
            return beta, eta, mu, dev, ne
        beta = 0.5 * (beta + beta_old)
    if not np.isfinite(dev):
        raise FloatingPointError("the NB GLM's step-halving could not bring the fitted means "
                                 "below 1e308; rescale the covariates")
    return beta, eta, mu, dev, ne


def _eta_mu(X: np.ndarray, beta: np.ndarray, offset: np.ndarray, dev_fn: _Deviance | None = None,
            y: np.ndarray | None = None, theta: float | None = None,
            out: tuple[np.ndarray, np.ndarray] | None = None) -> tuple:
    """``eta = X beta + offset`` and ``mu = exp(eta)``, block by block.

    With ``dev_fn`` also the deviance at ``mu`` (``inf`` if some ``mu`` is
    not finite, as the step-halving has always treated it), and with
    ``y`` and ``theta`` also the normal equations at ``mu``.
    """
    n = X.shape[0]
    eta, mu = (np.empty(n), np.empty(n)) if out is None else out
    dev = 0.0
    finite = True
    acc = None if y is None else _NormalEquations(X)
    for s in blocks(n):
        e = eta[s]
        Xs = X[s]
        np.matmul(Xs, beta, out=e)
        if offset is not None:
            e += offset[s]
        with np.errstate(over="ignore"):      # an overflow is an infinite deviance
            m = np.exp(e, out=mu[s])
        if dev_fn is not None and finite:
            # mu = exp(eta) >= 0 is all finite exactly when its max is (NaN
            # propagates through max)
            if np.isfinite(m.max()):
                dev += dev_fn.block(m, s)
            else:
                finite = False
        if acc is not None and finite:
            # means that overflowed make the step rejected: its weights are not needed
            acc.add(s, Xs, y[s], e, m, offset, theta)
    if dev_fn is None:
        return eta, mu
    dev = float(2.0 * dev) if finite else np.inf
    if acc is None:
        return eta, mu, dev
    return eta, mu, dev, acc.result()


class _Deviance:
    """``negbin.deviance(y, mu, theta)`` for one ``y`` and ``theta`` and many ``mu``.

    The terms that depend on ``y`` and ``theta`` only (``y + theta``, where
    ``y`` is zero) are formed once; every element is computed by the same
    operations as :func:`glmmnb.core.negbin.deviance`.
    """

    def __init__(self, y: np.ndarray, theta: float) -> None:
        self.y = y
        self.theta = theta
        zero = y == 0
        # 1.0 where y == 0, else 0.0: added to y / mu (which is 0 exactly
        # there) it makes the log 0, as xlogy does, and changes nothing else
        self.zero = zero.astype(float) if zero.any() else None
        self.ypt = None if np.isinf(theta) else y + theta

    def __call__(self, mu: np.ndarray) -> float:
        return float(2.0 * self.block(mu, slice(None)))

    def block(self, mu: np.ndarray, s: slice) -> float:
        """Half the deviance of the rows ``s`` (``mu`` holds just those rows)."""
        y = self.y[s]
        # xlogy(y, y / mu): y * log(y / mu), and 0 where y == 0
        ylogy = np.divide(y, mu)
        if self.zero is not None:
            ylogy += self.zero[s]
        np.log(ylogy, out=ylogy)
        ylogy *= y
        if self.ypt is None:
            return np.sum(ylogy - (y - mu))
        ypt = self.ypt[s]
        t = mu + self.theta
        np.divide(ypt, t, out=t)
        np.log(t, out=t)
        t *= ypt
        np.subtract(ylogy, t, out=t)
        return np.sum(t)
