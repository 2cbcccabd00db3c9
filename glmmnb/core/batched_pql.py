"""PQL with a random intercept per group for a block of responses that share one design.

The steps of :func:`glmmnb.core.pql.fit_pql` (working response and weights,
the weighted ML linear mixed model, the stopping rule on ``eta``) for every
row of ``Y`` at once.  With one grouping level and a random intercept, the
inner model of feature ``f`` is summed up by its group-wise statistics

    a_g = sum w,   h_g = sum w x,   k_g = sum w z   (rows of group g),

and its totals ``X'WX``, ``X'Wz``, ``z'Wz``: arrays of shape ``(F, G)``,
``(F, G, p)`` and ``(F, p, p)``.  The profiled ML deviance in the variance
ratio ``u = l^2`` (``l`` the random-intercept SD relative to the residual
SD, nlme's and lme4's parameter) is then

    D(u) = n log r2(u) + sum_g log(1 + u a_g)

with ``r2`` the generalised residual sum of squares; its first and second
derivatives are closed forms in the same statistics, so every feature's
optimum is found by Newton's method on ``log u`` from the best point of the
single fit's starting grid, without an upper bound.  Each feature keeps its
own PQL stopping rule and iteration count.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .batched_glm import CrossProducts, linear_predictor, solve_spd

__all__ = ["GroupDesign", "BatchPQL", "fit_pql_batch"]

_GRID = np.concatenate([[0.0], np.logspace(-4, 2, 25)])
"""Starting grid of the relative SD ``l``, that of the single fit's optimiser."""

LOG_U_MIN = np.log(1e-30)
"""Below this ``log(l^2)`` the random-intercept variance is taken as zero (the boundary)."""

LOG_U_MAX = np.log(1e16)
"""Above this ``log(l^2)`` (``l`` = 1e8 residual SDs, where ``1 + l^2 a_g`` has lost every
digit of the 1) the optimum cannot be told from infinity: the search stops, not converged."""


class GroupDesign:
    """The shared part: design, offset and groups, with the rows sorted by group.

    Parameters
    ----------
    X : ndarray, shape (nobs, p)
        Fixed-effects design.
    offset : ndarray, shape (nobs,) or None
        Offset on the log scale.
    codes : ndarray of int, shape (nobs,)
        Group index ``0 .. n_groups - 1`` of every row.
    n_groups : int
        Number of groups (each with at least one row).

    Notes
    -----
    Responses passed to :func:`fit_pql_batch` must have their columns in
    the sorted order: take them through :meth:`sort`.

    Examples
    --------
    >>> import numpy as np
    >>> d = GroupDesign(np.ones((3, 1)), None, np.array([1, 0, 1]), 2)
    >>> d.starts.tolist(), d.sort(np.array([[5.0, 6.0, 7.0]])).tolist()
    ([0, 1], [[6.0, 5.0, 7.0]])
    """

    def __init__(self, X: np.ndarray, offset: np.ndarray | None, codes: np.ndarray,
                 n_groups: int) -> None:
        codes = np.asarray(codes)
        self.order = np.argsort(codes, kind="stable")
        self.codes = codes[self.order]
        self.X = np.ascontiguousarray(X[self.order])
        self.offset = None if offset is None or not np.any(offset) else offset[self.order]
        self.n_groups = int(n_groups)
        self.starts = np.searchsorted(self.codes, np.arange(self.n_groups))
        self.cross = CrossProducts(self.X, self.starts)
        # columns constant within every group need no products per row
        self.const, self.Xg = self.cross.const, self.cross.first

    def sort(self, Y: np.ndarray) -> np.ndarray:
        """The columns of ``Y`` (features x rows) in the design's row order."""
        return Y[:, self.order]

    def group_sums(self, A: np.ndarray) -> np.ndarray:
        """Sums of the columns of ``A`` (F, nobs) within every group: (F, G)."""
        return self.cross.group_sums(A)


@dataclass
class BatchPQL:
    """Result of :func:`fit_pql_batch`; one row per feature.

    Attributes
    ----------
    params : ndarray, shape (F, p)
    cov_params : ndarray, shape (F, p, p)
        ML covariance of the fixed effects (R's ``vcov`` of the last ``lme``).
    scale : ndarray, shape (F,)
        Residual variance.
    cov_re : ndarray, shape (F,)
        Random-intercept variance ``scale * l^2``.
    random_effects : ndarray, shape (F, G)
        Predicted random intercepts.
    rel_sd : ndarray, shape (F,)
        ``l``, the random-intercept SD relative to the residual SD.
    n_iter : ndarray of int
    converged : ndarray of bool
        PQL's stopping rule held.
    lmm_converged : ndarray of bool
        The inner optimiser met its tolerance in the last PQL iteration.
    mu : ndarray, shape (F, nobs)
        Conditional means of the last iteration (rows in the design's order).
    """

    params: np.ndarray
    cov_params: np.ndarray
    scale: np.ndarray
    cov_re: np.ndarray
    random_effects: np.ndarray
    rel_sd: np.ndarray
    n_iter: np.ndarray
    converged: np.ndarray
    lmm_converged: np.ndarray
    mu: np.ndarray


class _Stats:
    """Group-wise statistics of the inner LMM of some features."""

    def __init__(self, design: GroupDesign, Y: np.ndarray, eta: np.ndarray, mu: np.ndarray,
                 theta: np.ndarray) -> None:
        X = design.X
        w = mu / theta[:, None]
        w += 1.0
        np.divide(mu, w, out=w)
        z = Y - mu
        z /= mu
        z += eta
        if design.offset is not None:
            z -= design.offset
        wz = w * z
        self.n = Y.shape[1]
        self.a = design.group_sums(w)
        self.k = design.group_sums(wz)
        p = X.shape[1]
        h = np.empty(self.a.shape + (p,))
        for j in range(p):
            h[:, :, j] = (self.a * design.Xg[:, j] if design.const[j]
                          else design.group_sums(w * X[:, j]))
        self.h = h
        self.xx, self.xz = design.cross(w, wz, self.a, self.k)
        self.zz = np.einsum("fi,fi->f", wz, z)

    def take(self, idx: np.ndarray) -> _Stats:
        out = object.__new__(_Stats)
        out.n = self.n
        for name in ("a", "k", "h", "xx", "xz", "zz"):
            setattr(out, name, getattr(self, name)[idx])
        return out

    def reduced(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``X'V^-1X``, ``X'V^-1z``, ``z'V^-1z`` (up to scale) at ``u`` of shape (F, K)."""
        c = u[:, :, None] / (1.0 + u[:, :, None] * self.a[:, None, :])        # (F, K, G)
        ch = c[..., None] * self.h[:, None]                                   # (F, K, G, p)
        xx = self.xx[:, None] - np.einsum("fkgi,fgj->fkij", ch, self.h)
        xz = self.xz[:, None] - np.einsum("fkgi,fg->fki", ch, self.k)
        zz = self.zz[:, None] - np.einsum("fkg,fg->fk", c, self.k ** 2)
        return xx, xz, zz

    def deviance(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Profiled ML deviance (up to a constant) at ``u`` (F, K); also beta and ``X'V^-1X``."""
        xx, xz, zz = self.reduced(u)
        F, K, p = xz.shape
        beta, ok = solve_spd(xx.reshape(F * K, p, p), xz.reshape(F * K, p))
        beta = beta.reshape(F, K, p)
        r2 = zz - np.einsum("fki,fki->fk", xz, beta)
        with np.errstate(divide="ignore", invalid="ignore"):
            dev = self.n * np.log(r2) + np.log1p(u[:, :, None] * self.a[:, None, :]).sum(axis=2)
        dev[~(r2 > 0) | ~ok.reshape(F, K)] = np.inf
        return dev, beta, r2, xx

    def derivatives(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """First and second derivatives of the deviance in ``s = log u`` at ``u`` (F,)."""
        dev, beta, r2, xx = self.deviance(u[:, None])
        beta, r2, xx, dev = beta[:, 0], r2[:, 0], xx[:, 0], dev[:, 0]
        c0 = 1.0 / (1.0 + u[:, None] * self.a)                                 # (F, G)
        e = self.k - np.einsum("fgi,fi->fg", self.h, beta)
        ce2 = c0 * c0 * e
        d1_r2 = -np.sum(ce2 * e, axis=1)
        g = -np.einsum("fg,fgi->fi", ce2, self.h)
        sol, _ = solve_spd(xx, g)
        d2_r2 = 2.0 * np.sum(self.a * c0 * ce2 * e, axis=1) - 2.0 * np.sum(g * sol, axis=1)
        ac = self.a * c0
        d1 = self.n * d1_r2 / r2 + ac.sum(axis=1)
        d2 = self.n * (d2_r2 / r2 - (d1_r2 / r2) ** 2) - np.sum(ac * ac, axis=1)
        return dev, u * d1, u * d1 + u * u * d2


def _optimize(st: _Stats, start: np.ndarray, tol: float = 1e-10,
              maxiter: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """The ML variance ratio ``u`` of every feature, and whether its Newton iteration converged.

    The grid of the single fit (and the warm start) picks each feature's
    basin; Newton's method on ``log u`` then finds its optimum without an
    upper bound, with step halving while the deviance grows.  An optimum on
    the boundary (``u = 0``) is recognised by the sign of the slope there.
    """
    F = st.a.shape[0]
    grid = np.broadcast_to(_GRID ** 2, (F, _GRID.size))
    if start is not None:
        grid = np.column_stack([grid, start ** 2])
    dev, *_ = st.deviance(grid)
    best = np.argmin(dev, axis=1)
    u = grid[np.arange(F), best]
    zero = u == 0.0
    if zero.any():
        # at u = 0 a negative slope means an interior optimum below the grid
        at0 = np.flatnonzero(zero)
        _, slope, _ = st.take(at0).derivatives(np.full(at0.size, 1e-300))
        inner = at0[slope < 0]
        u[inner] = _GRID[1] ** 2 / 4
    converged = np.zeros(F, dtype=bool)
    converged[zero] = True
    active = np.flatnonzero(u > 0)
    converged[active] = False
    s = np.log(np.where(u > 0, u, 1.0))
    for _ in range(maxiter):
        if active.size == 0:
            break
        sub = st.take(active)
        d0, g1, g2 = sub.derivatives(np.exp(s[active]))
        with np.errstate(divide="ignore", invalid="ignore"):
            step = np.where(g2 > 0, -g1 / g2, -np.sign(g1))
        step = np.clip(np.nan_to_num(step), -2.0, 2.0)
        step = _backtrack(sub, s[active], step, d0)
        s[active] += step
        low = s[active] < LOG_U_MIN
        high = s[active] > LOG_U_MAX
        done = (np.abs(step) < tol) | low
        s[active[low]] = -np.inf
        converged[active[done]] = True
        active = active[~(done | high)]
    return np.where(u > 0, np.exp(s), 0.0), converged


def _backtrack(st: _Stats, s: np.ndarray, step: np.ndarray, d0: np.ndarray,
               halvings: int = 30) -> np.ndarray:
    """Halve the steps whose deviance would grow (rounding-level growth allowed)."""
    todo = np.arange(s.size)
    for _ in range(halvings):
        dev, *_ = st.take(todo).deviance(np.exp(s[todo] + step[todo])[:, None])
        bad = ~(dev[:, 0] <= d0[todo] + 1e-10 * np.abs(d0[todo]))
        todo = todo[bad]
        if todo.size == 0:
            break
        step[todo] *= 0.5
    return step


def _assemble(st: _Stats, u: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Fixed effects, covariance, scale and random intercepts at the optima ``u`` (F,)."""
    _, beta, r2, xx = st.deviance(u[:, None])
    beta, r2, xx = beta[:, 0], r2[:, 0], xx[:, 0]
    scale = r2 / st.n
    inv, _ = solve_spd(xx, np.broadcast_to(np.eye(xx.shape[-1]), xx.shape))
    e = st.k - np.einsum("fgi,fi->fg", st.h, beta)
    b = u[:, None] * e / (1.0 + u[:, None] * st.a)
    return beta, scale[:, None, None] * inv, scale, b


def fit_pql_batch(design: GroupDesign, Y: np.ndarray, theta: np.ndarray, eta: np.ndarray,
                  mu: np.ndarray, maxiter: int = 10, tol: float = 1e-6) -> BatchPQL:
    """:func:`glmmnb.core.pql.fit_pql` with a random intercept, for every row of ``Y``.

    Parameters
    ----------
    design : GroupDesign
        Shared design, offset and groups.
    Y : ndarray, shape (F, nobs)
        Counts, columns in the design's row order (:meth:`GroupDesign.sort`).
    theta : ndarray, shape (F,)
        NB2 shape per feature, held fixed.
    eta, mu : ndarray, shape (F, nobs)
        The starting fixed-effects NB GLM's linear predictor and means.
    maxiter, tol : int, float
        PQL's iteration limit and stopping rule, per feature (R: 10, 1e-6).

    Returns
    -------
    BatchPQL

    See Also
    --------
    glmmnb.core.pql.fit_pql : the single-response fit this repeats.
    MASS::glmmPQL : the R function both reproduce.

    Examples
    --------
    >>> import numpy as np
    >>> from glmmnb.core.batched_glm import fit_nb_glm_batch
    >>> rng = np.random.default_rng(2)
    >>> g = np.repeat(np.arange(30), 20)
    >>> Y = rng.poisson(np.exp(1.0 + 0.3 * rng.normal(size=(2, 30))[:, g])).astype(float)
    >>> d = GroupDesign(np.ones((600, 1)), None, g, 30)
    >>> glm = fit_nb_glm_batch(Y, d.X, None, np.full(2, 50.0))
    >>> fit = fit_pql_batch(d, Y, np.full(2, 50.0), glm.eta, glm.mu)
    >>> fit.converged.tolist(), fit.params[:, 0].round(2).tolist()
    ([True, True], [0.95, 1.1])
    """
    F, n = Y.shape
    p, G = design.X.shape[1], design.n_groups
    out = BatchPQL(np.full((F, p), np.nan), np.full((F, p, p), np.nan), np.full(F, np.nan),
                   np.full(F, np.nan), np.full((F, G), np.nan), np.full(F, np.nan),
                   np.zeros(F, dtype=int), np.zeros(F, dtype=bool), np.zeros(F, dtype=bool),
                   None)
    eta, mu = eta.copy(), mu.copy()
    rel_sd = None
    active = np.arange(F)
    for it in range(1, maxiter + 1):
        st = _Stats(design, Y[active], eta[active], mu[active], theta[active])
        u, ok = _optimize(st, None if rel_sd is None else rel_sd[active])
        beta, cov, scale, b = _assemble(st, u)
        if rel_sd is None:
            rel_sd = np.full(F, np.nan)
        rel_sd[active] = np.sqrt(u)
        new = linear_predictor(beta, design.X, design.offset)
        new += b[:, design.codes]
        change = np.sum((new - eta[active]) ** 2, axis=1)
        size = np.sum(new * new, axis=1)
        eta[active] = new
        mu[active] = np.exp(new)
        out.params[active], out.cov_params[active], out.scale[active] = beta, cov, scale
        out.cov_re[active], out.random_effects[active] = scale * u, b
        out.n_iter[active], out.lmm_converged[active] = it, ok
        done = change < tol * size
        out.converged[active[done]] = True
        active = active[~done]
        if active.size == 0:
            break
    out.rel_sd, out.mu = rel_sd, mu
    return out
