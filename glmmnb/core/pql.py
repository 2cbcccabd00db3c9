"""Penalized quasi-likelihood for the negative-binomial GLMM.

The loop is that of ``MASS::glmmPQL``: start from the fixed-effects GLM with
the given theta; form the working response ``z = eta + (y - mu) / mu - offset``
and weights ``w = mu / (1 + mu / theta)``; fit the weighted linear mixed
model by ML (:func:`glmmnb.core.lmm.fit_lmm`); take ``eta`` from its conditional
fitted values; stop when ``sum((eta - etaold)^2) < tol * sum(eta^2)`` or
after ``maxiter`` inner fits.  R compares each new ``eta`` with the previous
one, the first with the GLM's, and so do we: with R's defaults the numbers
agree with ``glmmPQL``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ._blocks import blocks
from .lmm import Level, LMMFit, _fit_lmm, _GroupRows, _row_structure
from .nbglm import GLMFit, fit_nb_glm

__all__ = ["PQLFit", "fit_pql"]


@dataclass
class PQLFit:
    """Result of :func:`fit_pql`.

    Attributes
    ----------
    lmm : LMMFit
        The last inner fit (fixed effects, scale, random effects).
    eta : ndarray
        Conditional linear predictor, offset included.
    mu : ndarray
        Conditional means ``exp(eta)``.
    weights : ndarray
        Working weights of the last inner fit (R's ``1 / invwt``).
    working_response : ndarray
        Working response of the last inner fit, offset removed (R's ``zz``).
    glm : GLMFit
        The starting fixed-effects GLM.
    n_iter : int
        Number of inner fits (R's iteration count).
    converged : bool
        Whether the stopping rule held within ``maxiter`` fits.
    """

    lmm: LMMFit
    eta: np.ndarray
    mu: np.ndarray
    weights: np.ndarray
    working_response: np.ndarray
    glm: GLMFit
    n_iter: int
    converged: bool


def fit_pql(y: np.ndarray, X: np.ndarray, offset: np.ndarray, theta: float, Z: np.ndarray,
            levels: Sequence[Level], maxiter: int = 10, tol: float = 1e-6,
            glm: GLMFit | None = None, rows: _GroupRows | None = None) -> PQLFit:
    """Fit the NB GLMM by PQL.

    Parameters
    ----------
    y : ndarray
        Counts.
    X : ndarray
        Fixed-effects design.
    offset : ndarray
        Offset on the log scale (zeros for none).
    theta : float
        NB2 shape, held fixed.
    Z : ndarray
        Random-effects design columns used by ``levels``.
    levels : sequence of glmmnb.core.lmm.Level
        Grouping levels, outermost first.
    maxiter : int
        Maximum number of inner LMM fits (R's ``niter``).
    tol : float
        Relative tolerance of the stopping rule (R: 1e-6).
    glm : GLMFit, optional
        A converged NB GLM at this theta, to skip refitting it.
    rows : optional
        The row structure of ``X``, ``Z`` and ``levels`` from an earlier fit
        of the same design (internal: refits reuse it).

    Returns
    -------
    PQLFit

    See Also
    --------
    MASS::glmmPQL : the R function this reproduces.

    Examples
    --------
    >>> import numpy as np
    >>> from glmmnb.core.lmm import Level
    >>> y = np.array([2, 4, 3, 5, 1, 6, 8, 7, 9, 5, 3, 2, 4, 1, 2,
    ...               7, 5, 9, 6, 8, 4, 3, 5, 6, 2, 1, 0, 2, 3, 1], dtype=float)
    >>> g = np.repeat(np.arange(6), 5)
    >>> fit = fit_pql(y, np.ones((30, 1)), np.zeros(30), 50.0,
    ...               np.ones((30, 1)), [Level(g, 6, (0,))])

    R's ``glmmPQL(y ~ 1, random = ~ 1 | g, family = negative.binomial(50))``
    on these counts gives the intercept 1.297040 and sigma 0.735018 after
    4 iterations:

    >>> fit.converged, fit.n_iter
    (True, 4)
    >>> round(float(fit.lmm.params[0]), 6), round(float(np.sqrt(fit.lmm.scale)), 6)
    (1.29704, 0.735018)
    """
    if glm is None:
        glm = fit_nb_glm(y, X, offset, theta)
    eta, mu = glm.eta, glm.mu
    rows = _row_structure(X, Z, levels) if rows is None else rows
    theta_re = None
    converged = False
    n = y.shape[0]
    # Zero offsets change nothing (x + 0 == x); skip them.
    off = offset if np.any(offset) else None
    w = np.empty(n)
    z = np.empty(n)
    for n_iter in range(1, maxiter + 1):
        _working(y, eta, mu, off, theta, w, z)
        lmm = _fit_lmm(rows, X, z, w, Z, levels, theta0=theta_re)
        theta_re = lmm.theta
        eta, mu, change, size = _update(lmm.fitted, off, eta)
        if not np.isfinite(mu).all():
            # exp overflowed: the caller reports the rows; another inner fit
            # on infinite weights would only fail inside the solver
            break
        if change < tol * size:
            converged = True
            break
    return PQLFit(lmm, eta, mu, w, z, glm, n_iter, converged)


_MU_MIN = np.finfo(float).eps


def _working(y: np.ndarray, eta: np.ndarray, mu: np.ndarray, offset: np.ndarray, theta: float,
             w: np.ndarray, z: np.ndarray) -> None:
    """Working weights and response into ``w`` and ``z``, block by block.

    The same operations as :func:`negbin.working_weights` and
    :func:`negbin.working_response`, at means floored as R floors them.
    """
    for s in blocks(y.shape[0]):
        m = mu[s]
        if m.min() < _MU_MIN:
            # R's log link floors the mean (pmax(exp(eta), .Machine$double.eps)):
            # under separation the runaway rows keep a weight instead of 0
            m = np.maximum(m, _MU_MIN)
        ws = w[s]
        np.divide(m, theta, out=ws)
        ws += 1.0
        np.divide(m, ws, out=ws)
        zs = z[s]
        np.subtract(y[s], m, out=zs)
        zs /= m
        zs += eta[s]
        if offset is not None:
            zs -= offset[s]


def _update(fitted: np.ndarray, offset: np.ndarray,
            eta_old: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, float]:
    """``eta = fitted + offset``, ``mu = exp(eta)`` and the two sums of the stopping rule."""
    n = fitted.shape[0]
    eta = np.empty(n)
    mu = np.empty(n)
    change = size = 0.0
    for s in blocks(n):
        e = eta[s]
        if offset is None:
            e[:] = fitted[s]
        else:
            np.add(fitted[s], offset[s], out=e)
        np.exp(e, out=mu[s])
        d = e - eta_old[s]
        change += np.dot(d, d)
        size += np.dot(e, e)
    return eta, mu, change, size
