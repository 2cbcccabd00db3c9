"""The random effects' conditional distribution, and variances from nlme's natural scale.

:func:`conditional_blocks` gives Henderson's per-group blocks of the final
working LMM (for conditional predictions and ``random_effects_cov``), from the
same group-wise statistics as the fit, so no N x N matrix appears.
:func:`variance_jacobian` carries nlme's natural-scale parameters (log SDs,
``log((1 + r) / (1 - r))`` of each correlation, ``log(sigma)``; see
:mod:`glmmnb.core.apvar`) to variances and covariances for the delta method.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ._blocks import sum_log
from .lmm import Level, _Reducer, _row_structure

__all__ = ["variance_jacobian", "conditional_blocks"]


def _covariances(phi: np.ndarray, sizes: Sequence[int]) -> tuple[list[np.ndarray], float]:
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


def _reducer(X: np.ndarray, z: np.ndarray, w: np.ndarray, Z: np.ndarray,
             levels: Sequence[Level]) -> _Reducer:
    return _Reducer(_row_structure(X, Z, levels).crossproducts(z, w), list(levels),
                    X.shape[0], X.shape[1], float(sum_log(w)))


def conditional_blocks(X: np.ndarray, z: np.ndarray, w: np.ndarray, Z: np.ndarray,
                       levels: Sequence[Level], covs: Sequence[np.ndarray],
                       scale: float) -> tuple[np.ndarray, np.ndarray]:
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


def variance_jacobian(phi: np.ndarray, sizes: Sequence[int]) -> np.ndarray:
    """Jacobian of the variances and covariances with respect to the natural parameters.

    Parameters
    ----------
    phi : ndarray
        Natural-scale parameters (:func:`glmmnb.core.apvar.natural_parameters`);
        a log-SD of ``-inf`` (a variance at zero) gives zero derivatives.
    sizes : sequence of int
        Random coefficients per level.

    Returns
    -------
    ndarray
        One row per variance or covariance (each level's upper triangle, row
        by row), one column per natural parameter.

    Examples
    --------
    >>> variance_jacobian(np.array([np.log(2.0), 0.0]), [1]).round(6).tolist()
    [[8.0, 0.0]]
    """
    phi = np.asarray(phi, dtype=float)

    def flat(p: np.ndarray) -> np.ndarray:
        out, _ = _covariances(p, list(sizes))
        return np.concatenate([G[np.triu_indices(len(G))] for G in out])

    h = 1e-6
    E = np.eye(phi.size) * h
    return np.column_stack([(flat(phi + e) - flat(phi - e)) / (2.0 * h) for e in E])
