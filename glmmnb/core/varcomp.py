"""Approximate covariance of the variance parameters of the working LMM (nlme's ``apVar``).

nlme approximates the sampling covariance of the variance components by the
inverse Hessian of the ML log-likelihood, fixed effects profiled out, on its
"natural" scale: for each level the log standard deviations, then
``logit((1 + rho) / 2)`` of each correlation, and ``log(sigma)`` last.  The
Hessian here is taken by central differences on that scale, as nlme's
``fdHess`` does, from the same group-wise statistics as the fit, so no
N x N matrix appears.
"""

from __future__ import annotations

import numpy as np

from ._blocks import sum_log
from .lmm import _Reducer, _row_structure

__all__ = ["natural_parameters", "natural_covariance", "variance_jacobian",
           "conditional_blocks"]


def natural_parameters(covs: list, scale: float) -> np.ndarray:
    """nlme's natural parameters of the covariances ``covs`` (outermost first) and ``scale``.

    Examples
    --------
    >>> natural_parameters([np.array([[4.0]])], 1.0).tolist()
    [0.6931471805599453, 0.0]
    """
    out = []
    for G in covs:
        sd = np.sqrt(np.diag(G))
        out.extend(np.log(sd))
        for j, k in zip(*np.triu_indices(len(sd), 1)):
            rho = G[j, k] / (sd[j] * sd[k])
            out.append(np.log((1.0 + rho) / (1.0 - rho)))
    out.append(0.5 * np.log(scale))
    return np.asarray(out, dtype=float)


def _interior(G):
    """Whether ``G`` is strictly inside the parameter space (SDs > 0, |correlations| < 1)."""
    sd = np.sqrt(np.clip(np.diag(G), 0.0, None))
    if np.any(sd <= 0):
        return False
    R = G / np.outer(sd, sd)
    return bool(np.all(np.abs(R[np.triu_indices(len(sd), 1)]) < 1.0))


def _covariances(phi, sizes):
    """Inverse of :func:`natural_parameters`: the covariance matrices and ``sigma^2``."""
    covs, i = [], 0
    for q in sizes:
        sd = np.exp(phi[i:i + q])
        i += q
        R = np.eye(q)
        for j, k in zip(*np.triu_indices(q, 1)):
            R[j, k] = R[k, j] = 2.0 / (1.0 + np.exp(-phi[i])) - 1.0
            i += 1
        covs.append(R * np.outer(sd, sd))
    return covs, float(np.exp(2.0 * phi[i]))


def _reducer(X, z, w, Z, levels):
    return _Reducer(_row_structure(X, Z, levels).crossproducts(z, w), list(levels),
                    X.shape[0], X.shape[1], float(sum_log(w)))


def conditional_blocks(X: np.ndarray, z: np.ndarray, w: np.ndarray, Z: np.ndarray,
                       levels: list, covs: list, scale: float):
    """Henderson's blocks for the outermost groups' random effects.

    With ``T_g = A_g' V_g^-1 A_g`` the group's statistics after the nested
    levels are integrated out (``A = [Z, X, z]``, ``V`` in units of
    ``sigma^2``), ``S_g = T_g[r, r] / sigma^2`` and ``K_g = T_g[r, x] /
    sigma^2``: ``A_g = (S_g + G^-1)^-1 = G (I + S_g G)^-1`` is the conditional
    covariance of ``b_g`` at the estimated fixed effects (lme4's
    ``condVar``), and ``B_g = A_g K_g`` carries the fixed effects' error into
    the BLUP, so that the prediction error variance of ``x'beta + z'b_g`` is
    ``(x - B_g' z)' C (x - B_g' z) + z' A_g z``.

    Parameters
    ----------
    X, z, w, Z, levels
        The working LMM, as for :func:`glmmnb.core.lmm.fit_lmm`.
    covs : list of ndarray
        Random-effects covariance of each level, outermost first.
    scale : float
        Residual variance.

    Returns
    -------
    A : ndarray, shape (n_groups, q, q)
    B : ndarray, shape (n_groups, q, p)

    Examples
    --------
    >>> from glmmnb.core.lmm import Level
    >>> g = np.repeat(np.arange(3), 4)
    >>> A, B = conditional_blocks(np.ones((12, 1)), np.zeros(12), np.ones(12),
    ...                           np.ones((12, 1)), [Level(g, 3, (0,))], [np.eye(1)], 1.0)
    >>> float(A[0, 0, 0]), float(B[0, 0, 0])
    (0.2, 0.8)
    """
    red = _reducer(X, z, w, Z, levels)
    # any square root of G / sigma^2 will do, also a singular one
    Ls = []
    for G in covs:
        lam, V = np.linalg.eigh(np.asarray(G, dtype=float) / scale)
        Ls.append(V * np.sqrt(np.clip(lam, 0.0, None)))
    _, _, kept = red.reduce(Ls, keep=True)
    T = kept[0][0]
    r = list(levels[0].zcols)
    S = T[:, r][:, :, r] / scale
    K = T[:, r][:, :, red.xi] / scale
    G = np.asarray(covs[0], dtype=float)
    A = G @ np.linalg.inv(np.eye(len(r)) + S @ G)
    A = 0.5 * (A + np.swapaxes(A, 1, 2))
    return A, A @ K


def _deviance(red, phi, sizes):
    """-2 log-likelihood at the natural parameters, fixed effects profiled out."""
    covs, s2 = _covariances(phi, sizes)
    try:
        Ls = [np.linalg.cholesky(G / s2) for G in covs]
    except np.linalg.LinAlgError:
        return np.nan
    S, logdet, _ = red.reduce(Ls)
    _, r2, _ = red.solve_fixed(S)
    n = red.nobs
    return n * np.log(2.0 * np.pi * s2) + r2 / s2 + logdet - red.sum_log_w


def natural_covariance(X: np.ndarray, z: np.ndarray, w: np.ndarray, Z: np.ndarray,
                       levels: list, covs: list, scale: float,
                       step: float = 1e-3) -> np.ndarray:
    """Inverse Hessian of minus the log-likelihood on nlme's natural scale (R: ``fit$apVar``).

    Parameters
    ----------
    X, z, w, Z, levels
        The working LMM, as for :func:`glmmnb.core.lmm.fit_lmm`.
    covs : list of ndarray
        Random-effects covariance of each level at the optimum, outermost first.
    scale : float
        Residual variance at the optimum.
    step : float
        Central-difference step on the natural scale.

    Returns
    -------
    ndarray
        Covariance of :func:`natural_parameters`; NaN where the Hessian is
        not positive definite (a variance at its boundary, where nlme
        reports "Non-positive definite approximate variance-covariance").

    Examples
    --------
    >>> from glmmnb.core.lmm import Level, fit_lmm
    >>> rng = np.random.default_rng(0)
    >>> g = np.repeat(np.arange(20), 10)
    >>> X, Z, w = np.ones((200, 1)), np.ones((200, 1)), np.ones(200)
    >>> z = 1.0 + rng.normal(size=20)[g] + rng.normal(size=200)
    >>> levels = [Level(g, 20, (0,))]
    >>> fit = fit_lmm(X, z, w, Z, levels)
    >>> natural_covariance(X, z, w, Z, levels, fit.cov_re, fit.scale).shape
    (2, 2)
    """
    sizes = [G.shape[0] for G in covs]
    k = sum(q * (q + 1) // 2 for q in sizes) + 1
    if not all(_interior(G) for G in covs):
        # log(0) or a correlation of +-1: the natural scale has no point there
        return np.full((k, k), np.nan)
    red = _reducer(X, z, w, Z, levels)
    phi = natural_parameters(covs, scale)
    H = np.empty((k, k))
    E = np.eye(k) * step
    for i in range(k):
        for j in range(i, k):
            H[i, j] = H[j, i] = (
                _deviance(red, phi + E[i] + E[j], sizes) - _deviance(red, phi + E[i] - E[j], sizes)
                - _deviance(red, phi - E[i] + E[j], sizes)
                + _deviance(red, phi - E[i] - E[j], sizes)) / (4.0 * step * step)
    H *= 0.5  # deviance = -2 log-likelihood
    if not np.all(np.isfinite(H)) or np.any(np.linalg.eigvalsh(H) <= 0):
        return np.full((k, k), np.nan)
    return np.linalg.inv(H)


def variance_jacobian(covs: list, scale: float) -> np.ndarray:
    """Jacobian of the variances and covariances (each level's upper triangle, row by row)
    with respect to :func:`natural_parameters`, for the delta method.

    Examples
    --------
    >>> variance_jacobian([np.array([[4.0]])], 1.0).tolist()
    [[8.0, 0.0]]
    """
    sizes = [G.shape[0] for G in covs]
    phi = natural_parameters(covs, scale)

    def flat(p):
        out, _ = _covariances(p, sizes)
        return np.concatenate([G[np.triu_indices(len(G))] for G in out])

    h = 1e-6
    E = np.eye(phi.size) * h
    return np.column_stack([(flat(phi + e) - flat(phi - e)) / (2.0 * h) for e in E])
