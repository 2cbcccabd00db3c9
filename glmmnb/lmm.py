"""Maximum-likelihood fit of a weighted linear mixed model.

This is the inner problem of penalized quasi-likelihood: nlme's
``lme(z ~ X, random = ..., weights = varFixed(~1/w), method = "ML")``.
The model is

    z = X beta + sum_l Z_l b_l + e,   e_i ~ N(0, sigma^2 / w_i),
    b_lg ~ N(0, sigma^2 Psi_l)  independently for every group g of level l,

with the levels nested (each group of level l lies inside one group of level
l - 1).  ``Psi_l = L_l L_l'`` is parametrised by its lower Cholesky factor, as
in lme4; ``sigma^2`` and ``beta`` are profiled out.

Everything is computed from group-wise sufficient statistics: for every
innermost group the weighted cross-products of ``A = [Z, X, z]``.  One pass
over the rows builds them (per PQL iteration); every evaluation of the
profiled deviance afterwards costs O(groups * d^3) with d = A.shape[1], and
no N x N matrix is ever formed.  Integrating out the random effects of one
level is a Woodbury update of the children's statistics, summed into the
parent group, so nested levels reduce one after another.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import linalg, optimize, sparse

__all__ = ["Level", "LMMFit", "fit_lmm", "group_crossproducts"]


@dataclass(frozen=True)
class Level:
    """One grouping level of the random part, in numpy terms.

    Parameters
    ----------
    codes : ndarray of int, shape (nobs,)
        Index ``0 .. n_groups - 1`` of each row's group at this level.
    n_groups : int
        Number of groups at this level.
    zcols : tuple of int
        Columns of the random-effects design ``Z`` that carry this level's
        random coefficients (``(0,)`` for a random intercept in column 0).
    parent : ndarray of int or None
        For every group, the index of the enclosing group one level out;
        ``None`` for the outermost level.
    name : str
        Label used in messages and results.
    """

    codes: np.ndarray
    n_groups: int
    zcols: tuple
    parent: np.ndarray | None = None
    name: str = "group"

    @property
    def k_re(self) -> int:
        """Number of random coefficients per group."""
        return len(self.zcols)

    @property
    def n_theta(self) -> int:
        """Number of free parameters of this level's Cholesky factor."""
        return self.k_re * (self.k_re + 1) // 2


@dataclass
class LMMFit:
    """What the inner ML fit found (numpy only).

    Attributes
    ----------
    params : ndarray
        Fixed effects ``beta``.
    cov_params : ndarray
        ML covariance of ``beta`` (R's ``vcov(lme_fit)``).
    scale : float
        Residual variance ``sigma^2`` (ML, divisor ``nobs``).
    cov_re : list of ndarray
        Random-effects covariance ``sigma^2 L L'`` per level, outermost first.
    random_effects : list of ndarray
        Predicted random effects (BLUPs), ``(n_groups, k_re)`` per level.
    fitted : ndarray
        Conditional fitted values ``X beta + Z b`` (no offset).
    theta : ndarray
        Cholesky parameters at the optimum.
    deviance : float
        Minus twice the maximised log-likelihood.
    converged : bool
        Whether the optimiser reported success.
    """

    params: np.ndarray
    cov_params: np.ndarray
    scale: float
    cov_re: list
    random_effects: list
    fitted: np.ndarray
    theta: np.ndarray
    deviance: float
    converged: bool


def group_crossproducts(codes, n_groups, A, w):
    """Weighted cross-products ``sum_i w_i a_i a_i'`` within each group.

    Parameters
    ----------
    codes : ndarray of int, shape (nobs,)
        Group index of each row.
    n_groups : int
        Number of groups.
    A : ndarray, shape (nobs, d)
        Columns to cross.
    w : ndarray, shape (nobs,)
        Row weights.

    Returns
    -------
    ndarray, shape (n_groups, d, d)

    Examples
    --------
    >>> import numpy as np
    >>> A = np.array([[1.0, 2.0], [1.0, 3.0], [1.0, 4.0]])
    >>> group_crossproducts(np.array([0, 0, 1]), 2, A, np.ones(3))[0]
    array([[ 2.,  5.],
           [ 5., 13.]])
    """
    d = A.shape[1]
    out = np.empty((n_groups, d, d))
    for j in range(d):
        wa = w * A[:, j]
        for k in range(j, d):
            s = np.bincount(codes, weights=wa * A[:, k], minlength=n_groups)
            out[:, j, k] = s
            out[:, k, j] = s
    return out


def _theta_to_chol(theta, q):
    L = np.zeros((q, q))
    L[np.tril_indices(q)] = theta
    return L


def _split_theta(theta, levels):
    out, start = [], 0
    for lev in levels:
        out.append(_theta_to_chol(theta[start:start + lev.n_theta], lev.k_re))
        start += lev.n_theta
    return out


def _chol_solve(M, B):
    """Solve ``M X = B`` for a stack of small SPD ``M``; also log-determinants."""
    if M.shape[-1] == 1:
        m = M[:, 0, 0]
        return B / m[:, None, None], np.log(m)
    C = np.linalg.cholesky(M)
    logdet = 2.0 * np.log(np.diagonal(C, axis1=1, axis2=2)).sum(axis=1)
    return np.linalg.solve(M, B), logdet


class _Reducer:
    """Profiled ML deviance of the weighted LMM, from innermost statistics."""

    def __init__(self, T_inner, levels, nobs, p, sum_log_w):
        self.T_inner = T_inner
        self.levels = levels
        self.nobs = nobs
        self.p = p
        self.sum_log_w = sum_log_w
        self.d = T_inner.shape[1]
        self.xi = np.arange(self.d - p - 1, self.d - 1)
        self._sum_to_parent = [
            None if lev.parent is None else sparse.csr_matrix(
                (np.ones(lev.n_groups), (lev.parent, np.arange(lev.n_groups))),
                shape=(int(lev.parent.max()) + 1, lev.n_groups))
            for lev in levels
        ]

    def reduce(self, Ls, keep=False):
        """Integrate out every level, innermost first.

        Returns the root statistics ``A' V^{-1} A``, the summed log-determinant
        of ``I + L' Z' V_child^{-1} Z L`` and, if ``keep``, each level's input
        statistics and solver pieces for the BLUPs.
        """
        T = self.T_inner
        logdet = 0.0
        kept = []
        for i in range(len(self.levels) - 1, -1, -1):
            lev, L = self.levels[i], Ls[i]
            r = list(lev.zcols)
            K = T[:, :, r] @ L
            M = np.eye(lev.k_re) + L.T @ K[:, r, :]
            MinvKt, ld = _chol_solve(M, np.swapaxes(K, 1, 2))
            logdet += ld.sum()
            if keep:
                kept.append((T, L, MinvKt))
            S = T - K @ MinvKt
            P = self._sum_to_parent[i]
            if P is None:
                T = S.sum(axis=0, keepdims=True)
            else:
                T = (P @ S.reshape(S.shape[0], -1)).reshape(-1, self.d, self.d)
        kept.reverse()
        return T[0], logdet, kept

    def solve_fixed(self, S):
        xi, yi = self.xi, self.d - 1
        XtVX = S[np.ix_(xi, xi)]
        cf = linalg.cho_factor(XtVX, lower=True)
        beta = linalg.cho_solve(cf, S[xi, yi])
        r2 = S[yi, yi] - S[xi, yi] @ beta
        return beta, max(r2, 0.0), XtVX

    def deviance(self, theta):
        S, logdet, _ = self.reduce(_split_theta(theta, self.levels))
        _, r2, _ = self.solve_fixed(S)
        n = self.nobs
        if r2 <= 0.0:
            return np.inf
        return n * np.log(2.0 * np.pi * r2 / n) + n + logdet - self.sum_log_w


def _bounds(levels):
    bounds = []
    for lev in levels:
        q = lev.k_re
        rows, cols = np.tril_indices(q)
        bounds += [(0.0, None) if r == c else (None, None) for r, c in zip(rows, cols)]
    return bounds


def _default_theta(levels):
    return np.concatenate([np.eye(lev.k_re)[np.tril_indices(lev.k_re)] for lev in levels])


def _optimize(red, theta0, tol):
    levels = red.levels
    if len(levels) == 1 and levels[0].k_re == 1:
        return _optimize_scalar(red, float(theta0[0]), tol)
    res = optimize.minimize(
        red.deviance, theta0, method="L-BFGS-B", bounds=_bounds(levels),
        options={"ftol": tol, "gtol": 1e-9, "maxiter": 1000, "eps": 1e-7},
    )
    return res.x, bool(res.success)


def _optimize_scalar(red, start, tol):
    """One relative SD: bracket on the log scale, then Brent; check the boundary."""
    f = lambda t: red.deviance(np.array([t]))  # noqa: E731
    grid = np.concatenate([[0.0], np.logspace(-4, 2, 25)])
    if start > 0:
        grid = np.sort(np.append(grid, start))
    vals = np.array([f(t) for t in grid])
    k = int(np.argmin(vals))
    if k == 0:
        lo, hi = 0.0, grid[1]
    else:
        lo, hi = grid[k - 1], grid[min(k + 1, len(grid) - 1)]
    res = optimize.minimize_scalar(f, bounds=(lo, hi), method="bounded",
                                   options={"xatol": 1e-10 * max(hi, 1e-3), "maxiter": 500})
    best = res.x if res.fun <= vals[k] else grid[k]
    return np.array([best]), bool(res.success)


def fit_lmm(X, z, w, Z, levels, theta0=None, tol=1e-12):
    """Fit the weighted LMM by maximum likelihood.

    Parameters
    ----------
    X : ndarray, shape (nobs, p)
        Fixed-effects design.
    z : ndarray, shape (nobs,)
        Response (the PQL working response).
    w : ndarray, shape (nobs,)
        Positive weights; the residual variance of row i is ``sigma^2 / w_i``.
    Z : ndarray, shape (nobs, q)
        Random-effects design columns referenced by the levels.
    levels : sequence of Level
        Grouping levels, outermost first.
    theta0 : ndarray, optional
        Starting Cholesky parameters (warm start), e.g. from the previous
        PQL iteration.
    tol : float
        Relative tolerance of the deviance in the optimiser.

    Returns
    -------
    LMMFit

    See Also
    --------
    nlme::lme : R's fit of the same model with ``method = "ML"``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> g = np.repeat(np.arange(20), 10)
    >>> X = np.ones((200, 1))
    >>> z = 1.0 + rng.normal(size=20)[g] + rng.normal(size=200)
    >>> fit = fit_lmm(X, z, np.ones(200), np.ones((200, 1)),
    ...               [Level(g, 20, (0,))])
    >>> round(float(fit.params[0]), 3), fit.converged
    (0.861, True)
    """
    nobs, p = X.shape
    A = np.column_stack([Z, X, z])
    inner = levels[-1]
    T = group_crossproducts(inner.codes, inner.n_groups, A, w)
    red = _Reducer(T, list(levels), nobs, p, float(np.log(w).sum()))
    theta0 = _default_theta(levels) if theta0 is None else np.asarray(theta0, float)
    theta, converged = _optimize(red, theta0, tol)
    return _assemble(red, theta, X, Z, converged)


def _assemble(red, theta, X, Z, converged):
    Ls = _split_theta(theta, red.levels)
    S, logdet, kept = red.reduce(Ls, keep=True)
    beta, r2, XtVX = red.solve_fixed(S)
    n = red.nobs
    scale = r2 / n
    cov = scale * np.linalg.inv(XtVX)
    ranef = _blups(red, kept, beta)
    fitted = X @ beta
    for lev, b in zip(red.levels, ranef):
        fitted = fitted + np.einsum("ij,ij->i", Z[:, list(lev.zcols)], b[lev.codes])
    deviance = n * np.log(2.0 * np.pi * scale) + n + logdet - red.sum_log_w
    return LMMFit(
        params=beta, cov_params=cov, scale=scale,
        cov_re=[scale * L @ L.T for L in Ls], random_effects=ranef, fitted=fitted,
        theta=theta, deviance=float(deviance), converged=converged,
    )


def _blups(red, kept, beta):
    """Conditional means of the random effects, outermost level first.

    For a level with input statistics ``T = A' V_child^{-1} A`` and the
    residual ``r = A u`` (``u`` holds ``-beta``, minus the outer levels'
    predictions on their Z columns, and 1 on the response), the prediction is
    ``L M^{-1} L' T[zcols, :] u``.
    """
    d, p = red.d, red.p
    u0 = np.zeros(d)
    u0[red.xi] = -beta
    u0[d - 1] = 1.0
    U = u0[None, :]
    out = []
    for lev, (T, L, _) in zip(red.levels, kept):
        if lev.parent is not None:
            U = U[lev.parent]
        else:
            U = np.broadcast_to(U, (lev.n_groups, d))
        r = list(lev.zcols)
        v = np.einsum("gij,gj->gi", T[:, r, :], U) @ L
        M = np.eye(lev.k_re) + L.T @ (T[:, r][:, :, r] @ L)
        sol, _ = _chol_solve(M, v[:, :, None])
        b = sol[:, :, 0] @ L.T
        out.append(b)
        U = U.copy()
        U[:, r] -= b
    return out
