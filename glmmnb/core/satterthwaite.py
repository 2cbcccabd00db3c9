"""Satterthwaite denominator df on the final working linear mixed model.

The df of a contrast ``L beta`` is ``2 v^2 / (g' A g)`` with ``v = L C L'``,
``C`` the ML covariance of ``beta``, ``g`` the gradient of ``v`` with respect
to the variance parameters ``varpar = (theta, sigma)`` (``theta`` the
relative Cholesky factors, ``sigma`` the residual SD) and ``A = 2 H^-1`` their
asymptotic covariance, ``H`` the Hessian of the ML deviance in ``varpar``
with ``beta`` at its conditional optimum.  This is lmerTest's construction
(Kuznetsova, Brockhoff & Christensen 2017), applied to the weighted LMM of
the last PQL iteration; multi-row contrasts get its F-test df.

Everything is evaluated from the innermost groups' cross-products that the
inner fit worked from (:attr:`glmmnb.core.lmm.LMMFit.crossproducts`), so a
deviance costs O(groups * d^3) and no N x N matrix is formed.  ``H`` and the
Jacobian of ``C`` are central finite differences with one Richardson
extrapolation (error of order ``h^4``); the sigma part is analytic.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from .lmm import Level, LMMFit, _Reducer
from .lmm_optimize import _split_theta

__all__ = ["WorkingLMM", "VarianceSensitivity", "variance_sensitivity",
           "contrast_ddf", "ftest_ddf", "deviance_varpar", "hessian", "jacobian"]


@dataclass(frozen=True)
class WorkingLMM:
    """The final working LMM of a PQL fit, reduced to what inference needs.

    Attributes
    ----------
    crossproducts : ndarray, shape (G, d, d)
        Innermost groups' weighted cross-products of ``[Z, Xs, z]``.
    levels : tuple of Level
        The grouping levels, without their per-row codes.
    nobs : int
        Number of observations.
    theta : ndarray
        Relative Cholesky parameters at the optimum.
    scale : float
        ML residual variance ``sigma^2``.
    transform : ndarray, shape (p, p)
        ``beta = transform @ beta_s`` for the standardised design ``Xs``.

    Examples
    --------
    >>> import numpy as np
    >>> from glmmnb.core.lmm import Level, fit_lmm
    >>> rng = np.random.default_rng(0)
    >>> g = np.repeat(np.arange(20), 10)
    >>> X = np.column_stack([np.ones(200), g % 2])
    >>> z = X @ [1.0, 0.5] + rng.normal(size=20)[g] + rng.normal(size=200)
    >>> levels = [Level(g, 20, (0,))]
    >>> fit = fit_lmm(X, z, np.ones(200), np.ones((200, 1)), levels)
    >>> work = WorkingLMM.from_fit(fit, levels, np.eye(2))
    >>> work.varpar.round(3)
    array([0.91 , 0.981])
    """

    crossproducts: np.ndarray
    levels: tuple
    nobs: int
    theta: np.ndarray
    scale: float
    transform: np.ndarray

    @classmethod
    def from_fit(cls, lmm: LMMFit, levels: Sequence[Level], transform: np.ndarray) -> WorkingLMM:
        """Keep the pieces of an inner fit (``lmm.crossproducts`` must be set).

        Parameters
        ----------
        lmm : LMMFit
            The inner fit (the last PQL iteration's).
        levels : sequence of Level
            Its grouping levels.
        transform : ndarray
            Map from the fit's (standardised) fixed effects to the reported ones.

        Returns
        -------
        WorkingLMM

        Raises
        ------
        ValueError
            If ``lmm.crossproducts`` is ``None``.
        """
        if lmm.crossproducts is None:
            raise ValueError("the inner fit kept no group cross-products; the working "
                             "LMM cannot be re-evaluated")
        light = tuple(Level(np.zeros(0, dtype=np.intp), lev.n_groups, lev.zcols,
                            lev.parent, lev.name) for lev in levels)
        n = int(round(lmm.fitted.shape[0]))
        return cls(lmm.crossproducts, light, n, np.asarray(lmm.theta, float),
                   float(lmm.scale), np.asarray(transform, float))

    @property
    def varpar(self) -> np.ndarray:
        """``(theta, sigma)`` at the optimum."""
        return np.append(self.theta, np.sqrt(self.scale))

    def reducer(self) -> _Reducer:
        """The profiled-deviance machinery of :mod:`glmmnb.core.lmm` on these statistics."""
        p = self.transform.shape[0]
        return _Reducer(self.crossproducts, list(self.levels), self.nobs, p, 0.0)


def _pieces(red: _Reducer, theta: np.ndarray) -> tuple[float, float, np.ndarray]:
    """``log det(I + L'Z'WZL)``, the penalised RSS and ``X' V^-1 X`` at ``theta``."""
    S, logdet, _ = red.reduce(_split_theta(np.asarray(theta, float), red.levels))
    _, r2, XtVX = red.solve_fixed(S)
    return float(logdet), float(r2), XtVX


def deviance_varpar(red: _Reducer, varpar: np.ndarray) -> float:
    """ML deviance at ``varpar = (theta, sigma)`` with ``beta`` at its optimum.

    The constant ``-sum(log w)`` is left out (it does not move derivatives).

    Parameters
    ----------
    red : glmmnb.core.lmm._Reducer
        From :meth:`WorkingLMM.reducer`.
    varpar : ndarray
        Relative Cholesky parameters, then sigma.

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> from glmmnb.core.lmm import Level, fit_lmm
    >>> rng = np.random.default_rng(0)
    >>> g = np.repeat(np.arange(20), 10)
    >>> X = np.column_stack([np.ones(200), g % 2])
    >>> z = X @ [1.0, 0.5] + rng.normal(size=20)[g] + rng.normal(size=200)
    >>> levels = [Level(g, 20, (0,))]
    >>> fit = fit_lmm(X, z, np.ones(200), np.ones((200, 1)), levels)
    >>> work = WorkingLMM.from_fit(fit, levels, np.eye(2))
    >>> red = work.reducer()
    >>> bool(deviance_varpar(red, work.varpar) < deviance_varpar(red, 1.1 * work.varpar))
    True
    """
    logdet, r2, _ = _pieces(red, varpar[:-1])
    s2 = varpar[-1] ** 2
    return logdet + r2 / s2 + red.nobs * np.log(2.0 * np.pi * s2)


def _steps(x: np.ndarray) -> np.ndarray:
    # Relative steps, floored at 1e-4 so that a variance at (or near) zero
    # still moves: the deviance is a sum over all rows whose rounding error
    # swamps second differences at smaller steps (checked against lmerTest).
    return 1e-3 * np.maximum(np.abs(x), 0.1)


def _richardson(f: Callable[[float], np.ndarray], h: float) -> np.ndarray:
    """``(4 f(h / 2) - f(h)) / 3``: removes the ``h^2`` error of a central difference."""
    return (4.0 * f(h / 2.0) - f(h)) / 3.0


def hessian(fun: Callable[[np.ndarray], float], x: np.ndarray) -> np.ndarray:
    """Hessian of a scalar function by Richardson-extrapolated central differences.

    Parameters
    ----------
    fun : callable
        ``fun(x) -> float``.
    x : ndarray
        Point.

    Returns
    -------
    ndarray, shape (k, k)

    Examples
    --------
    >>> import numpy as np
    >>> hessian(lambda v: v[0] ** 2 * v[1], np.array([1.0, 2.0])).round(6)
    array([[4., 2.],
           [2., 0.]])
    """
    x = np.asarray(x, float)
    k = x.size
    base = _steps(x)

    def central(scale: float) -> np.ndarray:
        h = base * scale
        H = np.empty((k, k))
        f0 = fun(x)
        for i in range(k):
            ei = np.zeros(k)
            ei[i] = h[i]
            H[i, i] = (fun(x + ei) - 2.0 * f0 + fun(x - ei)) / h[i] ** 2
            for j in range(i):
                ej = np.zeros(k)
                ej[j] = h[j]
                H[i, j] = H[j, i] = (fun(x + ei + ej) - fun(x + ei - ej)
                                     - fun(x - ei + ej) + fun(x - ei - ej)) / (4 * h[i] * h[j])
        return H

    return _richardson(central, 1.0)


def jacobian(fun: Callable[[np.ndarray], np.ndarray], x: np.ndarray) -> np.ndarray:
    """Jacobian of an array-valued function, stacked on the first axis.

    Parameters
    ----------
    fun : callable
        ``fun(x) -> ndarray``.
    x : ndarray
        Point.

    Returns
    -------
    ndarray, shape (k, *fun(x).shape)

    Examples
    --------
    >>> import numpy as np
    >>> jacobian(lambda v: np.array([v[0] * v[1], v[1] ** 2]), np.array([1.0, 3.0])).round(6)
    array([[3., 0.],
           [1., 6.]])
    """
    x = np.asarray(x, float)
    base = _steps(x)

    def central(scale: float) -> np.ndarray:
        out = []
        for i in range(x.size):
            e = np.zeros(x.size)
            e[i] = base[i] * scale
            out.append((np.asarray(fun(x + e)) - np.asarray(fun(x - e))) / (2.0 * e[i]))
        return np.stack(out)

    return _richardson(central, 1.0)


@dataclass(frozen=True)
class VarianceSensitivity:
    """How the fixed-effects covariance moves with the variance parameters.

    Attributes
    ----------
    cov_params : ndarray, shape (p, p)
        ML covariance ``C`` of the fixed effects (original scale).
    jacobian : ndarray, shape (k, p, p)
        ``dC / d varpar_k``.
    cov_varpar : ndarray, shape (k, k)
        ``2 H^-1``, the asymptotic covariance of ``varpar`` (a pseudo-inverse
        over the positive eigenvalues of ``H``, as lmerTest).
    hessian_eigenvalues : ndarray, shape (k,)
        Eigenvalues of ``H``; a negative one means the variance parameters
        are not at a minimum of the deviance (lmerTest warns then).
    """

    cov_params: np.ndarray
    jacobian: np.ndarray
    cov_varpar: np.ndarray
    hessian_eigenvalues: np.ndarray


def variance_sensitivity(work: WorkingLMM) -> VarianceSensitivity:
    """The pieces of Satterthwaite's df for a working LMM.

    Parameters
    ----------
    work : WorkingLMM
        The final working LMM of a fit.

    Returns
    -------
    VarianceSensitivity

    See Also
    --------
    lmerTest:::as_lmerModLT : the R code computing the same pieces.

    Examples
    --------
    >>> import numpy as np
    >>> from glmmnb.core.lmm import Level, fit_lmm
    >>> rng = np.random.default_rng(0)
    >>> g = np.repeat(np.arange(20), 10)
    >>> X = np.column_stack([np.ones(200), g % 2])
    >>> z = X @ [1.0, 0.5] + rng.normal(size=20)[g] + rng.normal(size=200)
    >>> levels = [Level(g, 20, (0,))]
    >>> fit = fit_lmm(X, z, np.ones(200), np.ones((200, 1)), levels)
    >>> work = WorkingLMM.from_fit(fit, levels, np.eye(2))
    >>> sens = variance_sensitivity(work)
    >>> sens.jacobian.shape, bool(np.all(sens.hessian_eigenvalues > 0))
    ((2, 2, 2), True)
    """
    red = work.reducer()
    T = work.transform
    vp = work.varpar

    def cov_beta(v: np.ndarray) -> np.ndarray:
        _, _, XtVX = _pieces(red, v[:-1])
        return v[-1] ** 2 * (T @ np.linalg.inv(XtVX) @ T.T)

    H = hessian(lambda v: deviance_varpar(red, v), vp)
    vals, vecs = np.linalg.eigh(H)
    pos = vals > 1e-8
    h_inv = (vecs[:, pos] / vals[pos]) @ vecs[:, pos].T
    return VarianceSensitivity(cov_beta(vp), jacobian(cov_beta, vp), 2.0 * h_inv, vals)


def contrast_ddf(sens: VarianceSensitivity, L: np.ndarray) -> np.ndarray:
    """Satterthwaite df of each row of ``L`` (one-df t tests).

    Parameters
    ----------
    sens : VarianceSensitivity
    L : ndarray, shape (m, p)

    Returns
    -------
    ndarray, shape (m,)

    See Also
    --------
    lmerTest:::contest1D.lmerModLmerTest

    Examples
    --------
    >>> import numpy as np
    >>> from glmmnb.core.lmm import Level, fit_lmm
    >>> rng = np.random.default_rng(0)
    >>> g = np.repeat(np.arange(20), 10)
    >>> X = np.column_stack([np.ones(200), g % 2])
    >>> z = X @ [1.0, 0.5] + rng.normal(size=20)[g] + rng.normal(size=200)
    >>> levels = [Level(g, 20, (0,))]
    >>> fit = fit_lmm(X, z, np.ones(200), np.ones((200, 1)), levels)
    >>> work = WorkingLMM.from_fit(fit, levels, np.eye(2))
    >>> contrast_ddf(variance_sensitivity(work), np.eye(2)).round(1)
    array([20., 20.])
    """
    L = np.atleast_2d(np.asarray(L, float))
    var = np.einsum("ij,jk,ik->i", L, sens.cov_params, L)
    grad = np.einsum("ij,ajk,ik->ia", L, sens.jacobian, L)
    denom = np.einsum("ia,ab,ib->i", grad, sens.cov_varpar, grad)
    with np.errstate(divide="ignore", invalid="ignore"):
        return 2.0 * var ** 2 / denom


def ftest_ddf(sens: VarianceSensitivity, L: np.ndarray, eps: float = np.sqrt(np.finfo(float).eps)
              ) -> float:
    """Satterthwaite denominator df of the joint F test of ``L beta = 0``.

    ``L C L'`` is diagonalised; each eigen-direction gets its own t df
    ``nu_m`` and they are combined as ``2 E / (E - q)`` with
    ``E = sum nu_m / (nu_m - 2)`` (2 if any ``nu_m <= 2``), lmerTest's rule.

    Parameters
    ----------
    sens : VarianceSensitivity
    L : ndarray, shape (m, p)
    eps : float
        Relative size below which an eigenvalue of ``L C L'`` counts as zero.

    Returns
    -------
    float

    See Also
    --------
    lmerTest:::contestMD.lmerModLmerTest, lmerTest:::get_Fstat_ddf

    Examples
    --------
    >>> import numpy as np
    >>> from glmmnb.core.lmm import Level, fit_lmm
    >>> rng = np.random.default_rng(0)
    >>> g = np.repeat(np.arange(20), 10)
    >>> X = np.column_stack([np.ones(200), g % 2])
    >>> z = X @ [1.0, 0.5] + rng.normal(size=20)[g] + rng.normal(size=200)
    >>> levels = [Level(g, 20, (0,))]
    >>> fit = fit_lmm(X, z, np.ones(200), np.ones((200, 1)), levels)
    >>> work = WorkingLMM.from_fit(fit, levels, np.eye(2))
    >>> round(ftest_ddf(variance_sensitivity(work), np.eye(2)), 1)
    20.0
    """
    L = np.atleast_2d(np.asarray(L, float))
    M = L @ sens.cov_params @ L.T
    M = 0.5 * (M + M.T)
    diag = np.diag(M)
    if np.all(np.abs(M - np.diag(diag)) <= 1e-12 * np.sqrt(np.abs(np.outer(diag, diag)))):
        # Already diagonal (sequential contrasts are built so): the rows of L
        # are the directions.  eigh would return an arbitrary rotation of any
        # tied eigenvalues' space, chosen by the last bits of the arithmetic,
        # and each rotation gives other per-direction df.
        d, P = diag, np.eye(len(diag))
    else:
        d, P = np.linalg.eigh(M)
    order = np.argsort(d)[::-1]
    d, P = d[order], P[:, order]
    keep = d > max(eps * d[0], 0.0)
    nu = contrast_ddf(sens, (P[:, keep].T @ L))
    if nu.size == 1:
        return float(nu[0])
    if np.all(np.abs(np.diff(nu)) < 1e-8):
        return float(nu.mean())
    if np.any(nu <= 2):
        return 2.0
    E = float(np.sum(nu / (nu - 2.0)))
    return 2.0 * E / (E - nu.size)
