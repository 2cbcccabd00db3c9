"""The NB GLM for a block of responses that share one design.

Many count features measured on the same cells (genes, foci per channel)
share ``X`` and the offset; only ``y`` differs.  These functions take the
responses as the rows of ``Y`` (shape ``(n_features, nobs)``) and run the
steps of :func:`glmmnb.core.nbglm.fit_nb_glm` on all of them at once
(:mod:`glmmnb.core.batched_theta` does the same for theta): every
elementwise pass is one array operation over the block, and the ``p x p``
normal equations of all features are one stacked solve.

Each feature keeps its own stopping rule and iteration count: a feature
that has met its rule drops out of the active set and is not touched again,
so its numbers are those of fitting it alone (up to the order of
floating-point sums).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special


__all__ = ["BatchGLM", "fit_nb_glm_batch", "solve_spd", "CrossProducts",
           "linear_predictor", "weights", "select"]


@dataclass
class BatchGLM:
    """Result of :func:`fit_nb_glm_batch`; the arrays have one row per feature.

    Attributes
    ----------
    params : ndarray, shape (F, p)
    cov_params : ndarray, shape (F, p, p)
        ``(X' W X)^{-1}`` at the final means.
    eta, mu : ndarray, shape (F, nobs)
    n_iter : ndarray of int, shape (F,)
    converged : ndarray of bool, shape (F,)
    ok : ndarray of bool, shape (F,)
        False where the normal equations were not positive definite (the
        single fit raises ``LinAlgError`` there).
    """

    params: np.ndarray
    cov_params: np.ndarray
    eta: np.ndarray
    mu: np.ndarray
    n_iter: np.ndarray
    converged: np.ndarray
    ok: np.ndarray


def solve_spd(A: np.ndarray, B: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Solve the stacked systems ``A[f] x = B[f]``; also which ``A[f]`` are positive definite.

    Parameters
    ----------
    A : ndarray, shape (F, p, p)
    B : ndarray, shape (F, p) or (F, p, k)

    Returns
    -------
    x : ndarray
        NaN where ``A[f]`` is not positive definite.
    ok : ndarray of bool, shape (F,)

    Examples
    --------
    >>> import numpy as np
    >>> A = np.array([np.eye(2) * 2.0, [[1.0, 2.0], [2.0, 1.0]]])
    >>> x, ok = solve_spd(A, np.ones((2, 2)))
    >>> x[0].tolist(), ok.tolist()
    ([0.5, 0.5], [True, False])
    """
    vec = B.ndim == A.ndim - 1
    Bm = B[..., None] if vec else B
    try:
        np.linalg.cholesky(A)
        ok = np.ones(A.shape[0], dtype=bool)
    except np.linalg.LinAlgError:
        ok = np.array([_is_pd(a) for a in A], dtype=bool)
    x = np.full(Bm.shape, np.nan)
    try:
        if ok.all():
            x = np.linalg.solve(A, Bm)
        elif ok.any():
            x[ok] = np.linalg.solve(A[ok], Bm[ok])
    except np.linalg.LinAlgError:
        # positive definite to Cholesky but singular to LU: numerically singular
        for f in np.flatnonzero(ok):
            try:
                x[f] = np.linalg.solve(A[f], Bm[f])
            except np.linalg.LinAlgError:
                ok[f] = False
    return (x[..., 0] if vec else x), ok


def select(idx: np.ndarray, F: int) -> slice | np.ndarray:
    """``idx`` as an index: the whole axis (a view, no copy) when it holds every row."""
    return slice(None) if idx.size == F else idx


def _is_pd(a: np.ndarray) -> bool:
    try:
        np.linalg.cholesky(a)
    except np.linalg.LinAlgError:
        return False
    return bool(np.all(np.isfinite(a)))


class CrossProducts:
    """``X' W X`` and ``X' W z`` of many rows of weights, for one shared design.

    With the rows sorted by group (``starts``: the first row of every
    group), the entries of the columns that are constant within every group
    (an intercept, a treatment applied per slide or donor) come from the
    group sums of the weights: one pass over the rows instead of one per
    entry.  Every sum depends on its feature's row only.

    Parameters
    ----------
    X : ndarray, shape (nobs, p)
        Shared design.
    starts : ndarray of int, optional
        First row of every group, rows sorted by group.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.column_stack([np.ones(4), [0.0, 0.0, 1.0, 1.0]])
    >>> xtwx, xtwz = CrossProducts(X, np.array([0, 2]))(np.ones((1, 4)), np.ones((1, 4)))
    >>> xtwx[0].tolist(), xtwz[0].tolist()
    ([[4.0, 2.0], [2.0, 2.0]], [4.0, 2.0])
    """

    def __init__(self, X: np.ndarray, starts: np.ndarray | None = None) -> None:
        self.X = np.ascontiguousarray(X, dtype=float)
        n, p = self.X.shape
        self.p = p
        self.starts = starts
        if starts is None:
            self.const = np.zeros(p, dtype=bool)
        else:
            lengths = np.diff(np.append(starts, n))
            self.first = self.X[starts]
            self.const = np.all(self.X == np.repeat(self.first, lengths, axis=0), axis=0)
        self.pairs = [(j, k) for j in range(p) for k in range(j, p)]
        self.XX = {(j, k): np.ascontiguousarray(self.X[:, j] * self.X[:, k])
                   for j, k in self.pairs if not (self.const[j] and self.const[k])}
        self.FF = {(j, k): self.first[:, j] * self.first[:, k]
                   for j, k in self.pairs if self.const[j] and self.const[k]}

    def group_sums(self, A: np.ndarray) -> np.ndarray:
        """Sums of the rows of ``A`` (F, nobs) within every group: (F, G)."""
        return np.add.reduceat(A, self.starts, axis=1)

    def __call__(self, W: np.ndarray, WZ: np.ndarray, Wg: np.ndarray | None = None,
                 WZg: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Stacked ``X' W X`` (F, p, p) and ``X' W z`` (F, p) from ``W`` and ``W * z``.

        ``Wg`` and ``WZg``, their group sums, are used if given.
        """
        F, p = W.shape[0], self.p
        if self.const.any():
            Wg = self.group_sums(W) if Wg is None else Wg
            WZg = self.group_sums(WZ) if WZg is None else WZg
        xtwx = np.empty((F, p, p))
        for j, k in self.pairs:
            if (j, k) in self.FF:
                v = np.einsum("fg,g->f", Wg, self.FF[j, k])
            else:
                v = np.einsum("fn,n->f", W, self.XX[j, k])
            xtwx[:, j, k] = xtwx[:, k, j] = v
        xtwz = np.empty((F, p))
        for j in range(p):
            xtwz[:, j] = (np.einsum("fg,g->f", WZg, self.first[:, j]) if self.const[j]
                          else np.einsum("fn,n->f", WZ, self.X[:, j]))
        return xtwx, xtwz


def linear_predictor(beta: np.ndarray, X: np.ndarray, offset: np.ndarray | None) -> np.ndarray:
    """``beta @ X.T + offset`` (F, nobs), each element summed over the columns in order."""
    eta = beta[:, 0, None] * X[:, 0]
    for j in range(1, X.shape[1]):
        eta += beta[:, j, None] * X[:, j]
    if offset is not None:
        eta += offset
    return eta


def _normal_equations(Y: np.ndarray, cross: CrossProducts, eta: np.ndarray, mu: np.ndarray,
                      offset: np.ndarray | None,
                      theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Stacked ``X' W X`` (F, p, p) and ``X' W z`` (F, p) at the means ``mu``."""
    W = weights(mu, theta)
    Z = Y - mu
    Z /= mu
    Z += eta
    if offset is not None:
        Z -= offset
    Z *= W
    return cross(W, Z)


def weights(mu: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """``mu / (1 + mu / theta)`` with one theta per row (``inf``: Poisson)."""
    W = mu / theta[:, None]
    W += 1.0
    np.divide(mu, W, out=W)
    return W


def _deviance(Y: np.ndarray, eta: np.ndarray, mu: np.ndarray, theta: np.ndarray,
              ylogy0: np.ndarray) -> np.ndarray:
    """NB2 (or Poisson, where ``theta`` is inf) deviance of every row; inf if ``mu`` is not finite.

    ``y log(y / mu)`` is taken as ``xlogy(y, y) - y eta`` (``ylogy0`` the first
    term): the same number to rounding, without a division and a logarithm.
    """
    ylogy = Y * eta
    np.subtract(ylogy0, ylogy, out=ylogy)
    out = np.empty(Y.shape[0])
    pois = np.isinf(theta)
    if pois.any():
        p = select(np.flatnonzero(pois), Y.shape[0])
        out[p] = np.sum(ylogy[p] - (Y[p] - mu[p]), axis=1)
    if not pois.all():
        nb = select(np.flatnonzero(~pois), Y.shape[0])
        t = theta[nb][:, None]
        ypt = Y[nb] + t
        r = mu[nb] + t
        np.divide(ypt, r, out=r)
        np.log(r, out=r)
        r *= ypt
        np.subtract(ylogy[nb], r, out=r)
        out[nb] = np.sum(r, axis=1)
    out *= 2.0
    out[~np.isfinite(mu.max(axis=1))] = np.inf
    return out


def _eta_mu(X: np.ndarray, beta: np.ndarray,
            offset: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    eta = linear_predictor(beta, X, offset)
    return eta, np.exp(eta)


def fit_nb_glm_batch(Y: np.ndarray, X: np.ndarray | CrossProducts, offset: np.ndarray | None,
                     theta: np.ndarray, start: np.ndarray | None = None, tol: float = 1e-12,
                     maxiter: int = 100) -> BatchGLM:
    """:func:`glmmnb.core.nbglm.fit_nb_glm` for every row of ``Y`` at once.

    Parameters
    ----------
    Y : ndarray, shape (F, nobs)
        Counts, one feature per row.
    X : ndarray, shape (nobs, p), or CrossProducts
        Shared design (a :class:`CrossProducts` of it to reuse its group structure).
    offset : ndarray, shape (nobs,) or None
        Shared offset (None for zero).
    theta : ndarray, shape (F,)
        NB2 shape per feature (``inf`` for Poisson).
    start : ndarray, shape (F, p), optional
        Warm starts; by default R's start ``mu = y + (y == 0) / 6``.
    tol, maxiter : float, int
        As in :func:`~glmmnb.core.nbglm.fit_nb_glm`, per feature.

    Returns
    -------
    BatchGLM

    See Also
    --------
    glmmnb.core.nbglm.fit_nb_glm : the single-response fit this repeats.

    Examples
    --------
    >>> import numpy as np
    >>> Y = np.array([[1.0, 3.0, 2.0, 6.0], [2.0, 2.0, 4.0, 4.0]])
    >>> X = np.column_stack([np.ones(4), [0.0, 0.0, 1.0, 1.0]])
    >>> fit = fit_nb_glm_batch(Y, X, None, np.full(2, 10.0))
    >>> np.exp(fit.params).round(4).tolist()
    [[2.0, 2.0], [2.0, 2.0]]
    """
    F, n = Y.shape
    cross = X if isinstance(X, CrossProducts) else CrossProducts(X)
    X = cross.X
    p = X.shape[1]
    ylogy0 = special.xlogy(Y, Y)
    if start is None:
        mu = Y + (Y == 0) / 6.0
        eta = np.log(mu)
        beta = np.zeros((F, p))
    else:
        beta = np.array(start, dtype=float)
        eta, mu = _eta_mu(X, beta, offset)
    xtwx, xtwz = _normal_equations(Y, cross, eta, mu, offset, theta)
    dev_old = np.full(F, np.inf)
    n_iter = np.zeros(F, dtype=int)
    converged = np.zeros(F, dtype=bool)
    ok = np.ones(F, dtype=bool)
    active = np.arange(F)
    for it in range(1, maxiter + 1):
        a = select(active, F)
        new, good = solve_spd(xtwx[a], xtwz[a])
        ok[active[~good]] = False
        if not good.all():
            active, new = active[good], new[good]
            a = select(active, F)
        if active.size == 0:
            break
        # the first step from R's start has no old coefficients to halve towards
        old = None if (start is None and it == 1) else beta[a]
        Ya, ta = Y[a], theta[a]
        b, e, m, dev = _step(Ya, X, offset, ta, old, new, dev_old[a], ylogy0[a])
        beta[a], eta[a], mu[a] = b, e, m
        xtwx[a], xtwz[a] = _normal_equations(Ya, cross, e, m, offset, ta)
        n_iter[a] = it
        done = np.abs(dev - dev_old[a]) <= tol * (np.abs(dev) + 0.1)
        converged[active[done]] = True
        dev_old[active] = dev
        active = active[~done]
        if active.size == 0:
            break
    cov, good = solve_spd(xtwx, np.broadcast_to(np.eye(p), (F, p, p)))
    return BatchGLM(beta, cov, eta, mu, n_iter, converged, ok & good)


def _step(Y: np.ndarray, X: CrossProducts, offset: np.ndarray | None, theta: np.ndarray,
          beta_old: np.ndarray, beta: np.ndarray, dev_old: np.ndarray, ylogy0: np.ndarray,
          max_halvings: int = 30) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """IRLS steps, each halved towards its old coefficients while its deviance grows."""
    beta = beta.copy()
    eta, mu = _eta_mu(X, beta, offset)
    dev = _deviance(Y, eta, mu, theta, ylogy0)
    if beta_old is None:
        return beta, eta, mu, dev
    bad = np.flatnonzero(~(dev <= dev_old * (1 + 1e-12) + 1e-12))
    for _ in range(max_halvings - 1):
        if bad.size == 0:
            break
        beta[bad] = 0.5 * (beta[bad] + beta_old[bad])
        e, m = _eta_mu(X, beta[bad], offset)
        d = _deviance(Y[bad], e, m, theta[bad], ylogy0[bad])
        eta[bad], mu[bad], dev[bad] = e, m, d
        bad = bad[~(d <= dev_old[bad] * (1 + 1e-12) + 1e-12)]
    # the single fit halves once more after its last trial (and keeps that trial's means)
    beta[bad] = 0.5 * (beta[bad] + beta_old[bad])
    return beta, eta, mu, dev
