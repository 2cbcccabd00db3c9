"""The ``glm.nb`` theta for a block of responses that share one design.

The digamma sums of the theta step are taken over each feature's distinct
counts (:class:`CountTables`).  :func:`theta_ml_batch` repeats
:func:`glmmnb.core.theta.theta_ml` row by row; :func:`estimate_theta_batch`
finds the joint maximum of ``glm.nb`` (coefficients and theta) that
:func:`glmmnb.core.theta.estimate_theta` finds by alternating IRLS fits and
theta steps.  Every feature keeps its own stopping rule.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special

from .batched_glm import (BatchGLM, CrossProducts, fit_nb_glm_batch, linear_predictor,
                          select, solve_spd, weights)
from .theta import POISSON_SIDE, THETA_MAX, poisson_side

QUAD_STOP = 1e-7
"""A Newton step in ``log(theta)`` below this ends the theta iteration (see theta_ml_batch)."""

NOISE_STOP = 1e-8
"""Below this, a relative change of theta that stops shrinking ends the glm.nb alternation."""

__all__ = ["BatchTheta", "CountTables", "theta_ml_batch", "estimate_theta_batch"]


@dataclass
class BatchTheta:
    """Result of :func:`estimate_theta_batch` (R: ``glm.nb`` per feature).

    Attributes
    ----------
    theta, se_theta : ndarray, shape (F,)
    glm : BatchGLM
        The NB GLMs at those thetas.
    n_iter : ndarray of int
        Outer alternations per feature.
    converged, at_limit : ndarray of bool
    """

    theta: np.ndarray
    se_theta: np.ndarray
    glm: BatchGLM
    n_iter: np.ndarray
    converged: np.ndarray
    at_limit: np.ndarray


class CountTables:
    """Distinct counts and their frequencies of every row of ``Y``, padded to one width.

    The digamma sums of the theta step depend on the counts only, so they
    are taken over each feature's distinct values (padding has frequency 0).

    Parameters
    ----------
    Y : ndarray, shape (F, nobs)

    Examples
    --------
    >>> import numpy as np
    >>> t = CountTables(np.array([[0.0, 2.0, 2.0], [1.0, 1.0, 1.0]]))
    >>> t.values.tolist(), t.counts.tolist()
    ([[0.0, 2.0], [1.0, 0.0]], [[1.0, 2.0], [3.0, 0.0]])
    """

    def __init__(self, Y: np.ndarray | None,
                 _parts: tuple[np.ndarray, np.ndarray, int] | None = None) -> None:
        if _parts is not None:
            self.values, self.counts, self.n = _parts
            return
        F, n = Y.shape
        s = np.sort(Y, axis=1)
        new = np.ones((F, n), dtype=bool)
        new[:, 1:] = s[:, 1:] != s[:, :-1]
        rows, cols = np.nonzero(new)
        flat = rows * n + cols
        # every row starts with a new value, so a row's last run ends where the next row starts
        counts = np.diff(np.append(flat, F * n))
        rank = np.arange(rows.size) - np.searchsorted(rows, rows)
        width = int(rank.max()) + 1 if rank.size else 1
        self.values = np.zeros((F, width))
        self.counts = np.zeros((F, width))
        self.values[rows, rank] = s[rows, cols]
        self.counts[rows, rank] = counts
        self.n = n

    def take(self, idx: np.ndarray) -> CountTables:
        """The tables of the features ``idx``."""
        return CountTables(None, (self.values[idx], self.counts[idx], self.n))

    def digamma_sum(self, theta: np.ndarray) -> np.ndarray:
        return (np.sum(self.counts * special.digamma(theta[:, None] + self.values), axis=1)
                - self.n * special.digamma(theta))

    def trigamma_sum(self, theta: np.ndarray) -> np.ndarray:
        return (np.sum(self.counts * special.polygamma(1, theta[:, None] + self.values), axis=1)
                - self.n * special.polygamma(1, theta))


def _score_info(theta: np.ndarray, Y: np.ndarray, mu: np.ndarray,
                table: CountTables) -> tuple[np.ndarray, np.ndarray]:
    """Score and observed information of every row's theta, as ``MASS::theta.ml``."""
    n = Y.shape[1]
    tm = mu + theta[:, None]
    inv = np.divide(1.0, tm)
    r = Y + theta[:, None]
    r *= inv
    s_r = r.sum(axis=1)
    s_inv = inv.sum(axis=1)
    r *= inv
    s_r_inv = r.sum(axis=1)
    np.log(tm, out=tm)
    s_log = tm.sum(axis=1)
    score = table.digamma_sum(theta) + n * (np.log(theta) + 1.0) - (s_log + s_r)
    info = -table.trigamma_sum(theta) - n / theta + (2.0 * s_inv - s_r_inv)
    return score, info


def theta_ml_batch(Y: np.ndarray, mu: np.ndarray, theta0: np.ndarray | None = None,
                   tol: float = 1e-12, maxiter: int = 200,
                   table: CountTables | None = None) -> tuple[np.ndarray, np.ndarray]:
    """:func:`glmmnb.core.theta.theta_ml` for every row of ``Y``: Newton on ``log(theta)``.

    Parameters
    ----------
    Y, mu : ndarray, shape (F, nobs)
        Counts and fitted means.
    theta0 : ndarray, shape (F,), optional
        Starts; by default the moment estimates of ``MASS::theta.ml``.
    tol, maxiter : float, int
        Per feature, as in :func:`~glmmnb.core.theta.theta_ml`.
    table : CountTables, optional
        The rows' count tables, if already built.

    Returns
    -------
    theta, info : ndarray, shape (F,)

    See Also
    --------
    glmmnb.core.theta.theta_ml : the single-response estimator this repeats.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(1)
    >>> Y = rng.negative_binomial(5, 5 / (5 + 4.0), size=(2, 5000)).astype(float)
    >>> theta, _ = theta_ml_batch(Y, np.repeat(Y.mean(axis=1)[:, None], 5000, axis=1))
    >>> bool(np.all((4 < theta) & (theta < 6)))
    True
    """
    table = CountTables(Y) if table is None else table
    n = Y.shape[1]
    if theta0 is None:
        theta0 = n / np.sum((Y / mu - 1.0) ** 2, axis=1)
    log_t = np.log(np.minimum(np.maximum(theta0, 1e-8), THETA_MAX))
    capped = np.zeros(Y.shape[0], dtype=bool)
    active = np.arange(Y.shape[0])
    last = np.zeros(Y.shape[0])
    for _ in range(maxiter):
        # beyond POISSON_SIDE the score is rounding noise; its sign is read
        # off the leading term, as in the single fit
        far = log_t[active] > np.log(POISSON_SIDE)
        if far.any():
            idx = active[far]
            pois = poisson_side(Y[idx], mu[idx], axis=1)
            capped[idx[pois]] = True
            log_t[idx[~pois]] -= 2.0
            active = np.setdiff1d(active, idx[pois], assume_unique=True)
            if active.size == 0:
                break
        a = select(active, Y.shape[0])
        t = np.exp(log_t[a])
        score, info = _score_info(t, Y[a], mu[a], table if isinstance(a, slice)
                                  else table.take(active))
        grad = t * score
        hess = -(t ** 2) * info + t * score
        with np.errstate(divide="ignore", invalid="ignore"):
            step = np.where(hess < 0, -grad / hess, np.sign(grad) * 1.0)
        step = np.clip(step, -2.0, 2.0)
        log_t[active] += step
        cap = log_t[active] >= np.log(THETA_MAX)
        capped[active[cap]] = True
        # Newton converges quadratically: after a Newton step below QUAD_STOP the
        # next is below the rounding noise of the score, where the single fit
        # keeps stepping (up to maxiter) without moving theta beyond that noise.
        quad = (hess < 0) & (np.abs(step) < QUAD_STOP)
        # Where the likelihood is flat (theta far beyond the counts' scale), the
        # unit steps of a non-negative curvature can swing between two values up
        # to maxiter; theta is then fixed only to that swing, and stops there.
        swing = (hess >= 0) & (step == -last[active]) & (step != 0)
        last[active] = np.where(hess >= 0, step, 0.0)
        active = active[~(cap | (np.abs(step) < tol) | quad | swing)]
        if active.size == 0:
            break
    theta = np.exp(log_t)
    theta[capped] = THETA_MAX
    return theta, _score_info(theta, Y, mu, table)[1]


def estimate_theta_batch(Y: np.ndarray, X: np.ndarray | CrossProducts, offset: np.ndarray | None,
                         tol: float = 1e-10, maxiter: int = 100) -> BatchTheta:
    """:func:`glmmnb.core.theta.estimate_theta` (R: ``glm.nb``) for every row of ``Y``.

    Parameters
    ----------
    Y : ndarray, shape (F, nobs)
        Counts, one feature per row.
    X : ndarray, shape (nobs, p), or CrossProducts
        Shared design.
    offset : ndarray or None
        Shared offset.
    tol, maxiter : float, int
        Per feature, as in :func:`~glmmnb.core.theta.estimate_theta`.

    Returns
    -------
    BatchTheta

    See Also
    --------
    glmmnb.core.theta.estimate_theta : the single-response estimator this repeats.

    Examples
    --------
    >>> from glmmnb.datasets import microscopy
    >>> import numpy as np
    >>> d = microscopy.load_pandas().data
    >>> X = np.column_stack([np.ones(len(d)), d["RNAi"] == "Target"])
    >>> fit = estimate_theta_batch(d["counts"].to_numpy(float)[None, :], X, None)
    >>> fit.theta.round(3).tolist()
    [25.333]
    """
    F = Y.shape[0]
    table = CountTables(Y)
    X = X if isinstance(X, CrossProducts) else CrossProducts(X)
    glm = fit_nb_glm_batch(Y, X, offset, np.full(F, np.inf))
    out = BatchTheta(np.full(F, np.nan), np.full(F, np.nan), glm, np.zeros(F, dtype=int),
                     np.zeros(F, dtype=bool), np.zeros(F, dtype=bool))
    start = np.flatnonzero(glm.ok)
    theta0, _ = theta_ml_batch(Y[start], glm.mu[start], table=table.take(start))
    done = _joint_newton(Y[start], X, offset, table.take(start), glm.params[start], theta0)
    fast = start[done.converged]
    if fast.size:
        _replace(glm, fast, done.glm, np.flatnonzero(done.converged))
        for name in ("theta", "se_theta", "n_iter", "converged", "at_limit"):
            getattr(out, name)[fast] = getattr(done, name)[done.converged]
    slow = start[~done.converged]
    if slow.size:
        part = _alternate(Y[slow], X, offset, table.take(slow), tol, maxiter)
        _replace(glm, slow, part.glm)
        for name in ("theta", "se_theta", "n_iter", "converged", "at_limit"):
            getattr(out, name)[slow] = getattr(part, name)
    return out


def _loglike_tau(Y: np.ndarray, eta: np.ndarray, mu: np.ndarray, theta: np.ndarray,
                 table: CountTables) -> np.ndarray:
    """NB2 log-likelihood of every row, without the ``lgamma(y + 1)`` terms."""
    n = Y.shape[1]
    tm = mu + theta[:, None]
    np.log(tm, out=tm)
    tm *= Y + theta[:, None]
    lg = (np.sum(table.counts * special.gammaln(theta[:, None] + table.values), axis=1)
          - n * special.gammaln(theta))
    return lg + n * theta * np.log(theta) + np.einsum("fn,fn->f", Y, eta) - tm.sum(axis=1)


def _joint_newton(Y: np.ndarray, X: CrossProducts, offset: np.ndarray | None, table: CountTables,
                  beta: np.ndarray, theta: np.ndarray, maxiter: int = 50) -> BatchTheta:
    """Newton steps on ``(beta, log theta)`` jointly, with the exact Hessian and step halving.

    From the Poisson fit and the theta of its means, the glm.nb maximum is a
    few steps away.  Features whose Hessian is not negative definite, whose
    theta runs off or which do not settle within ``maxiter`` steps are
    returned not converged, for the alternation of :func:`_alternate`.
    """
    F, n = Y.shape
    p = X.p
    tau = np.log(theta)
    beta = beta.copy()
    eta = linear_predictor(beta, X.X, offset)
    mu = np.exp(eta)
    ll = _loglike_tau(Y, eta, mu, np.exp(tau), table)
    ok = np.isfinite(ll) & (tau < np.log(THETA_MAX))
    converged = np.zeros(F, dtype=bool)
    n_iter = np.zeros(F, dtype=int)
    active = np.flatnonzero(ok)
    for it in range(1, maxiter + 1):
        if active.size == 0:
            break
        a = select(active, F)
        step, good = _newton_step(Y[a], X, eta[a], mu[a], np.exp(tau[a]), table.take(active)
                                  if not isinstance(a, slice) else table)
        ok[active[~good]] = False
        keep = good.copy()
        b_new, t_new, e_new, m_new, l_new = _halve(Y[a], X, offset, beta[a], tau[a],
                                                   step, ll[a], table.take(active)
                                                   if not isinstance(a, slice) else table)
        moved = np.isfinite(l_new) & keep
        ok[active[~moved]] = False
        sel = np.flatnonzero(moved)
        idx = active[sel]
        beta[idx], tau[idx], eta[idx], mu[idx], ll[idx] = (
            b_new[sel], t_new[sel], e_new[sel], m_new[sel], l_new[sel])
        n_iter[idx] = it
        small = np.max(np.abs(step[sel]), axis=1) < QUAD_STOP
        converged[idx[small]] = True
        runaway = tau[idx] >= np.log(THETA_MAX)
        ok[idx[runaway]] = False
        active = idx[~small & ~runaway]
    converged &= ok
    theta = np.exp(tau)
    info = _info(theta, Y, mu, table)
    W = weights(mu, theta)
    xtwx, _ = X(W, W)
    cov, good = solve_spd(xtwx, np.broadcast_to(np.eye(p), (F, p, p)))
    glm = BatchGLM(beta, cov, eta, mu, n_iter, converged, good)
    with np.errstate(divide="ignore", invalid="ignore"):
        se = np.where(info > 0, 1.0 / np.sqrt(info), np.inf)
    return BatchTheta(theta, se, glm, n_iter, converged & good, np.zeros(F, dtype=bool))


def _info(theta: np.ndarray, Y: np.ndarray, mu: np.ndarray, table: CountTables) -> np.ndarray:
    return _score_info(theta, Y, mu, table)[1]


def _newton_step(Y: np.ndarray, X: CrossProducts, eta: np.ndarray, mu: np.ndarray,
                 theta: np.ndarray, table: CountTables) -> tuple[np.ndarray, np.ndarray]:
    """The Newton step of ``(beta, log theta)`` of every row, and where the Hessian allowed one."""
    F, p = Y.shape[0], X.p
    t = theta[:, None]
    tm = mu + t
    inv = 1.0 / tm
    resid = Y - mu
    # d/dbeta: X' [theta (y - mu) / tm];  -d2/dbeta2: X' diag(theta mu (y + theta) / tm^2) X
    g_vec = resid * inv
    wbb = (Y + t) * inv
    wbb *= inv
    wbb *= mu
    wbb *= t
    hbb, gb = X(wbb, g_vec * t)
    # d2/dbeta dtheta: X' [(y - mu) mu / tm^2]
    _, hbt = X(wbb, g_vec * inv * mu)
    score, info = _score_info(theta, Y, mu, table)
    H = np.empty((F, p + 1, p + 1))
    H[:, :p, :p] = hbb
    H[:, :p, p] = H[:, p, :p] = -theta[:, None] * hbt
    H[:, p, p] = theta ** 2 * info - theta * score
    g = np.concatenate([gb, (theta * score)[:, None]], axis=1)
    step, good = solve_spd(H, g)
    return np.where(good[:, None], step, 0.0), good & np.all(np.isfinite(step), axis=1)


def _halve(Y: np.ndarray, X: CrossProducts, offset: np.ndarray | None, beta: np.ndarray,
           tau: np.ndarray, step: np.ndarray, ll: np.ndarray, table: CountTables,
           halvings: int = 20) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Take the steps, halved while the log-likelihood falls (rounding-level falls allowed)."""
    p = X.p
    b = beta + step[:, :p]
    t = tau + step[:, p]
    eta = linear_predictor(b, X.X, offset)
    mu = np.exp(eta)
    new = _loglike_tau(Y, eta, mu, np.exp(t), table)
    bad = np.flatnonzero(~(new >= ll - 1e-10 * np.abs(ll)))
    for _ in range(halvings):
        if bad.size == 0:
            break
        step[bad] *= 0.5
        b[bad] = beta[bad] + step[bad, :p]
        t[bad] = tau[bad] + step[bad, p]
        e = linear_predictor(b[bad], X.X, offset)
        m = np.exp(e)
        eta[bad], mu[bad] = e, m
        new[bad] = _loglike_tau(Y[bad], e, m, np.exp(t[bad]), table.take(bad))
        bad = bad[~(new[bad] >= ll[bad] - 1e-10 * np.abs(ll[bad]))]
    new[bad] = np.nan
    return b, t, eta, mu, new


def _alternate(Y: np.ndarray, X: CrossProducts, offset: np.ndarray | None, table: CountTables,
               tol: float, maxiter: int) -> BatchTheta:
    """glm.nb as :func:`glmmnb.core.theta.estimate_theta` runs it: IRLS and theta steps in turn."""
    F = Y.shape[0]
    glm = fit_nb_glm_batch(Y, X, offset, np.full(F, np.inf))
    theta = np.full(F, np.nan)
    info = np.full(F, np.nan)
    change = np.full(F, np.inf)
    n_iter = np.zeros(F, dtype=int)
    active = np.flatnonzero(glm.ok)
    for it in range(1, maxiter + 1):
        new, inf_a = theta_ml_batch(Y[active], glm.mu[active], None if it == 1 else
                                    theta[active], table=table.take(active))
        prev = change[active]
        if it > 1:
            change[active] = np.abs(new - theta[active]) / new
        theta[active], info[active], n_iter[active] = new, inf_a, it
        # theta moved by less than tol since the GLM was fitted at it: the pair
        # is the joint optimum, and refitting would change nothing.  A change
        # that has stopped shrinking below NOISE_STOP is the rounding noise of
        # theta: the pair is the optimum to that noise, and so it counts as met.
        ch = change[active]
        floor = (ch < NOISE_STOP) & (ch >= 0.5 * prev)
        change[active[floor]] = 0.0
        refit = active[~((ch < tol) | floor)]
        if refit.size:
            _replace(glm, refit, fit_nb_glm_batch(Y[refit], X, offset, theta[refit],
                                                  start=glm.params[refit]))
        active = refit[~(theta[refit] >= THETA_MAX)]
        if active.size == 0:
            break
    converged = ((change < tol) | (theta >= THETA_MAX)) & glm.converged
    redo = np.flatnonzero(~(change < tol) & glm.ok)
    if redo.size:
        theta[redo], info[redo] = theta_ml_batch(Y[redo], glm.mu[redo], theta[redo],
                                                 table=table.take(redo))
    at_limit = theta >= THETA_MAX
    with np.errstate(divide="ignore", invalid="ignore"):
        se = np.where((info > 0) & ~at_limit, 1.0 / np.sqrt(info), np.inf)
    return BatchTheta(theta, se, glm, n_iter, converged, at_limit)


def _replace(glm: BatchGLM, idx: np.ndarray, part: BatchGLM,
             rows: slice | np.ndarray = slice(None)) -> None:
    """Write the rows ``rows`` of the fit ``part`` into the features ``idx`` of ``glm``."""
    for name in ("params", "cov_params", "eta", "mu", "n_iter", "converged", "ok"):
        getattr(glm, name)[idx] = getattr(part, name)[rows]
