"""Maximum likelihood for the NB2 GLMM by the Laplace approximation (glmmTMB's).

With spherical random effects ``b_g = L u_g``, ``u_g ~ N(0, I)``, the
negative log-likelihood of group ``g`` is approximated by

    F_g = f_g(u_g^) + 0.5 log det H_g,   f_g(u) = -sum_i log P(y_i | eta_i) + |u|^2 / 2,

where ``u_g^`` is the mode of ``f_g`` and ``H_g = L' Z_g' W Z_g L + I`` its
Hessian with the *observed* weights ``W = mu theta (y + theta) / (mu +
theta)^2`` (glmmTMB's ``nbinom2``, the textbook Laplace approximation).
lme4's ``glmer`` puts the expected (Fisher) weights ``mu theta / (mu +
theta)`` in ``H`` instead: a different objective for this non-canonical
link, whose optimum has a log-likelihood up to about 0.3 lower or higher.

The modes of all groups are found at once by Newton's method on ``(G, q)``
arrays (group sums by ``np.bincount``), and the gradient of ``F`` in
``(beta, L, log theta)`` is exact: the partial derivatives plus the implicit
term ``-c' d^2 f / du dphi`` with ``c = H^{-1} d(0.5 log det H)/du`` (the
mode moves with the parameters).  That needs the third derivative of the
log-likelihood in ``eta`` and per-row leverages ``z_i' L H^{-1} L' z_i``,
all O(nobs q^2).  An exact gradient keeps the outer optimiser at a few dozen
evaluations; a derivative-free search would need hundreds on large data.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from scipy import special

from .mlfit import MLFit, Params, minimize_nll, start_cholesky
from ._blocks import blocks
from .negbin import _count_table

if TYPE_CHECKING:
    from .lmm import Level

__all__ = ["fit_laplace", "make_objective", "LaplaceObjective", "THETA_MAX"]

# theta is searched in [THETA_MIN, THETA_MAX]; at the top the NB model is the
# Poisson GLMM to well within the llf tolerance, and the fit says so
THETA_MIN, THETA_MAX = 1e-4, 1e8


class _Rows:
    """Derivatives of ``-log P(y | eta)`` in ``eta`` (and log theta) at the current rows.

    ``nll`` omits the ``eta``-free terms (:func:`_nll_constant`); ``d3`` is
    computed on first use (only the gradient needs it).
    """

    def __init__(self, y: np.ndarray, eta: np.ndarray, theta: float) -> None:
        self.theta = theta
        if np.isinf(theta):
            mu = np.exp(eta)
            self.mu, self.d1, self.w, self.nll = mu, mu - y, mu, mu - y * eta
            return
        n = y.shape[0]
        self.mu, self.t, self.lp, self.d1, self.w, self.nll = (np.empty(n) for _ in range(6))
        log_theta = np.log(theta)
        # block by block, so that the temporaries stay in cache (see _blocks)
        for s in blocks(n):
            ys, mu, t = y[s], self.mu[s], self.t[s]
            np.exp(eta[s], out=mu)
            np.add(mu, theta, out=t)
            # log(mu + theta) = log(theta) + log1p(mu / theta) keeps the digits
            # of theta * log1p(mu / theta) for large theta at the cost of one log
            lp = np.log1p(mu / theta, out=self.lp[s])
            np.divide(theta * (mu - ys), t, out=self.d1[s])
            yt = ys + theta
            np.divide(mu * theta * yt, t * t, out=self.w[s])
            np.add(yt * lp, ys * (log_theta - eta[s]), out=self.nll[s])

    @property
    def d3(self) -> np.ndarray:
        """Third derivative of ``-log P`` in ``eta``."""
        if np.isinf(self.theta):
            return self.mu
        return self.w * (self.theta - self.mu) / self.t

    def theta_parts(self, y: np.ndarray, table: tuple[np.ndarray, np.ndarray] | None,
                    ) -> tuple[float, np.ndarray, np.ndarray]:
        """``theta`` times: the summed derivative of ``-log P`` in theta, ``d d1``, ``d w``."""
        theta, mu, t = self.theta, self.mu, self.t
        n = y.shape[0]
        if table is None:
            psi = float(np.sum(special.digamma(y + theta))) - n * special.digamma(theta)
        else:
            # psi(v + theta) - psi(theta) = sum_{k < v} 1 / (theta + k): no
            # cancellation when theta is large
            steps = np.concatenate([[0.0], np.cumsum(1.0 / (theta + np.arange(table[0][-1])))])
            psi = float(table[1] @ steps[table[0].astype(np.intp)])
        # (mu - y) / (mu + theta) summed is sum(d1) / theta
        dnll = -(psi - np.sum(self.lp) + np.sum(self.d1) / theta)
        dd1, dw = np.empty(n), np.empty(n)
        for s in blocks(n):
            m, ts, ys = mu[s], t[s], y[s]
            t2 = ts * ts
            np.divide((m - ys) * m, t2, out=dd1[s])
            np.divide(m * ((ys + 2.0 * theta) * m - ys * theta), t2 * ts, out=dw[s])
        return theta * dnll, theta * dd1, theta * dw


def _nll_constant(y: np.ndarray, theta: float,
                  table: tuple[np.ndarray, np.ndarray] | None = None) -> float:
    """The part of ``-sum log P(y | eta)`` that :attr:`_Rows.nll` leaves out."""
    if table is None:
        values, counts = y, np.ones(y.shape[0])
    else:
        values, counts = table
    log_fact = counts @ special.gammaln(values + 1.0)
    if np.isinf(theta):
        return float(log_fact)
    if table is None:
        ratio = special.gammaln(values + theta) - special.gammaln(theta)
    else:
        # log Gamma(v + theta) / Gamma(theta) = sum_{k < v} log(theta + k) for
        # integer counts, without the cancellation of two huge gammaln values
        steps = np.concatenate([[0.0], np.cumsum(np.log(theta + np.arange(values[-1])))])
        ratio = steps[values.astype(np.intp)]
    return float(log_fact - counts @ ratio)


class LaplaceObjective:
    """The structure of one fit, built once, and ``F`` with its exact gradient.

    Parameters
    ----------
    y, X, offset : ndarray
        Counts, fixed-effects design, offset.
    Z : ndarray, shape (nobs, q)
        Random-effects design of the groups.
    codes : ndarray of int
        Group of each row.
    n_groups : int
        Number of groups.
    theta : float or None
        ``None`` estimates it (the last entry of ``phi`` is log theta).
    """

    def __init__(self, y: np.ndarray, X: np.ndarray, offset: np.ndarray, Z: np.ndarray,
                 codes: np.ndarray, n_groups: int, theta: float | None,
                 sort_by: np.ndarray | None = None) -> None:
        # rows in group order make every group sum one np.add.reduceat over
        # contiguous segments (several times faster than a weighted bincount)
        key = codes if sort_by is None else sort_by
        self.order = None
        if key.size > 1 and np.any(key[1:] < key[:-1]):
            self.order = np.argsort(key, kind="stable")
            y, X, offset, Z, codes = (np.asarray(a)[self.order] for a in (y, X, offset, Z, codes))
        self.y, self.X, self.offset = y, X, offset
        self.Z = np.asarray(Z, float)
        self.codes, self.G = codes, int(n_groups)
        self.starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
        self.q = self.Z.shape[1]
        self.ones = self.q == 1 and bool(np.all(self.Z == 1.0))
        self.spec = Params(X.shape[1], self.q, theta is None)
        self.theta_fixed = theta
        self.u = np.zeros((self.G, self.q))
        self._const = {}
        # the gamma-function terms depend on y only through its distinct values
        self.table = _count_table(y)

    def unsort(self, rowvalues: np.ndarray) -> np.ndarray:
        """Per-row values back in the caller's row order."""
        if self.order is None:
            return rowvalues
        out = np.empty_like(rowvalues)
        out[self.order] = rowvalues
        return out

    # group sums -------------------------------------------------------
    def gsum(self, w: np.ndarray) -> np.ndarray:
        """``sum_i w_i`` per group (every group has rows: codes come from factorize)."""
        return np.add.reduceat(w, self.starts)

    def gvec(self, w: np.ndarray) -> np.ndarray:
        """``sum_i w_i z_i`` per group, ``(G, q)``."""
        if self.ones:
            return self.gsum(w)[:, None]
        return np.column_stack([self.gsum(w * self.Z[:, a]) for a in range(self.q)])

    def gmat(self, w: np.ndarray) -> np.ndarray:
        """``sum_i w_i z_i z_i'`` per group, ``(G, q, q)``."""
        if self.ones:
            return self.gsum(w)[:, None, None]
        M = np.empty((self.G, self.q, self.q))
        for a in range(self.q):
            for b in range(a + 1):
                M[:, a, b] = M[:, b, a] = self.gsum(w * self.Z[:, a] * self.Z[:, b])
        return M

    def rowdot(self, B: np.ndarray) -> np.ndarray:
        """``z_i' B[g(i)]`` for a ``(G, q)`` array ``B``."""
        if self.ones:
            return B[self.codes, 0]
        return np.einsum("ij,ij->i", self.Z, B[self.codes])

    def rowquad(self, P: np.ndarray) -> np.ndarray:
        """``z_i' P[g(i)] z_i`` for a ``(G, q, q)`` array ``P``."""
        if self.ones:
            return P[self.codes, 0, 0]
        out = np.zeros(self.y.shape[0])
        for a in range(self.q):
            for b in range(self.q):
                out += self.Z[:, a] * self.Z[:, b] * P[self.codes, a, b]
        return out

    # the modes ----------------------------------------------------------
    def modes(self, eta0: np.ndarray, L: np.ndarray, theta: float, tol: float = 1e-10,
              maxiter: int = 100) -> tuple[np.ndarray, _Rows, np.ndarray, np.ndarray]:
        """Newton's method for every group's mode at once (warm-started).

        Returns the rows at the mode, ``H`` per group and the per-group ``f``.
        """
        u = self.u.copy()
        rows, f = self._at(eta0, L, theta, u)
        for _ in range(maxiter):
            g = self.gvec(rows.d1) @ L + u
            H = self._hessian(rows, L)
            step = g / H[:, :, 0] if self.q == 1 else np.linalg.solve(H, g[:, :, None])[:, :, 0]
            if np.max(np.abs(step)) < tol:
                break
            u, rows, f = self._descend(eta0, L, theta, u, step, f)
        self.u = u
        return u, rows, H, f

    def _at(self, eta0: np.ndarray, L: np.ndarray, theta: float,
            u: np.ndarray) -> tuple[_Rows, np.ndarray]:
        rows = _Rows(self.y, eta0 + self.rowdot(u @ L.T), theta)
        return rows, self.gsum(rows.nll) + 0.5 * np.einsum("ga,ga->g", u, u)

    def _hessian(self, rows: _Rows, L: np.ndarray) -> np.ndarray:
        M = self.gmat(rows.w)
        return np.einsum("ab,gbc,cd->gad", L.T, M, L) + np.eye(self.q)

    def _descend(self, eta0: np.ndarray, L: np.ndarray, theta: float, u: np.ndarray,
                 step: np.ndarray, f: np.ndarray) -> tuple[np.ndarray, _Rows, np.ndarray]:
        """Take the Newton step, halving it in the groups where ``f`` went up."""
        for _ in range(40):
            new = u - step
            rows, f_new = self._at(eta0, L, theta, new)
            worse = f_new > f + 1e-12 * np.abs(f)
            if not np.any(worse):
                return new, rows, f_new
            step = np.where(worse[:, None], 0.5 * step, step)
        return new, rows, f_new

    # objective and gradient ---------------------------------------------
    def constant(self, theta: float) -> float:
        """Cached ``eta``-free part of the NB log-likelihood."""
        if theta not in self._const:
            self._const = {theta: _nll_constant(self.y, theta, self.table)}
        return self._const[theta]

    def value(self, phi: np.ndarray) -> float:
        """``F(phi)``."""
        beta, L, theta = self.spec.split(phi, self.theta_fixed)
        u, rows, H, f = self.modes(self.X @ beta + self.offset, L, theta)
        return self.constant(theta) + float(np.sum(f)) + 0.5 * _logdet(H)

    def value_and_grad(self, phi: np.ndarray) -> tuple[float, np.ndarray]:
        """``(F(phi), grad F(phi))`` with the implicit dependence of the modes."""
        beta, L, theta = self.spec.split(phi, self.theta_fixed)
        u, rows, H, f = self.modes(self.X @ beta + self.offset, L, theta)
        value = self.constant(theta) + float(np.sum(f)) + 0.5 * _logdet(H)
        Hinv = np.linalg.inv(H)
        h = self.rowquad(np.einsum("ab,gbc,dc->gad", L, Hinv, L))
        d3h = rows.d3 * h
        a = 0.5 * self.gvec(d3h) @ L
        c = np.einsum("gab,gb->ga", Hinv, a)
        vc = self.rowdot(c @ L.T)
        r = rows.d1 + 0.5 * d3h - rows.w * vc
        grad_L = (np.einsum("ga,gb->ab", self.gvec(r), u)
                  + np.einsum("gab,bc,gcd->ad", self.gmat(rows.w), L, Hinv)
                  - np.einsum("ga,gb->ab", self.gvec(rows.d1), c))
        parts = [self.X.T @ r, grad_L[np.tril_indices(self.q)]]
        if self.spec.estimate_theta:
            dnll, dd1, dw = rows.theta_parts(self.y, self.table)
            parts.append([dnll + np.sum(0.5 * dw * h - dd1 * vc)])
        return value, np.concatenate(parts)

    def conditional(self, phi: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        """Means and the random effects ``[b = L u]`` at the modes for ``phi``."""
        beta, L, theta = self.spec.split(phi, self.theta_fixed)
        u, rows, _, _ = self.modes(self.X @ beta + self.offset, L, theta)
        return self.unsort(rows.mu), [u @ L.T]

    def cov_re(self, phi: np.ndarray) -> list[np.ndarray]:
        """``[L L']``."""
        L = self.spec.split(phi, self.theta_fixed)[1]
        return [L @ L.T]


def _logdet(H: np.ndarray) -> float:
    if H.shape[1] == 1:
        return float(np.sum(np.log(H[:, 0, 0])))
    return float(np.sum(np.linalg.slogdet(H)[1]))


def fit_laplace(y: np.ndarray, X: np.ndarray, offset: np.ndarray, Z: np.ndarray,
                levels: Sequence[Level], theta: float | None = None,
                start: tuple | None = None) -> MLFit:
    """Fit the NB2 GLMM by maximum likelihood with the Laplace approximation.

    Parameters
    ----------
    y : ndarray
        Counts.
    X : ndarray
        Fixed-effects design.
    offset : ndarray
        Offset on the log scale.
    Z : ndarray
        Random-effects design columns used by ``levels``.
    levels : sequence of glmmnb.core.lmm.Level
        Grouping levels, outermost first; inner levels are nested random
        intercepts (:mod:`glmmnb.core.nested`).
    theta : float or None
        ``None`` estimates theta jointly (glmmTMB's ``nbinom2``); a number
        holds it fixed; ``inf`` is the Poisson GLMM.
    start : tuple (beta, cov_re, theta[, vcomp]), optional
        Start values, e.g. a PQL fit (``vcomp``: the nested levels'
        variances); default ``beta = 0`` with SDs of 0.5.

    Returns
    -------
    glmmnb.core.mlfit.MLFit

    See Also
    --------
    glmmTMB::glmmTMB : with ``family = nbinom2``, the objective maximised here.
    lme4::glmer.nb : the same model with lme4's (Fisher-weight) Laplace.

    Examples
    --------
    >>> import numpy as np
    >>> from glmmnb.core.lmm import Level
    >>> rng = np.random.default_rng(2)
    >>> g = np.repeat(np.arange(30), 20)
    >>> mu = np.exp(1.0 + 0.3 * rng.normal(size=30)[g])
    >>> y = rng.negative_binomial(5.0, 5.0 / (5.0 + mu)).astype(float)
    >>> fit = fit_laplace(y, np.ones((600, 1)), np.zeros(600), np.ones((600, 1)),
    ...                   [Level(g, 30, (0,))])
    >>> fit.converged, round(float(fit.params[0]), 2), round(fit.theta, 1)
    (True, 0.99, 4.2)
    """
    obj = make_objective(y, X, offset, Z, levels, theta)
    return run_ml(obj, _start_phi(obj, start), theta, "laplace", 1)


def make_objective(y: np.ndarray, X: np.ndarray, offset: np.ndarray, Z: np.ndarray,
                   levels: Sequence[Level], theta: float | None) -> LaplaceObjective:
    """The Laplace objective of a structure: one level, or nested levels.

    Parameters are those of :func:`fit_laplace`.

    Returns
    -------
    LaplaceObjective
        ``value(phi)`` and ``value_and_grad(phi)`` of ``-loglik``.
    """
    top = levels[0]
    Zq = Z[:, list(top.zcols)]
    if len(levels) == 1:
        return LaplaceObjective(y, X, offset, Zq, top.codes, top.n_groups, theta)
    from .nested import NestedObjective

    return NestedObjective(y, X, offset, Zq, levels, theta)


def _start_phi(obj: LaplaceObjective, start: tuple | None) -> np.ndarray:
    spec = obj.spec
    if start is None:
        start = (np.zeros(spec.p), 0.25 * np.eye(spec.q), 1.0)
    beta, cov, theta0 = start[:3]
    vc = np.asarray(start[3] if len(start) > 3 else np.full(spec.n_vc, 0.25), float)
    if not (np.isfinite(theta0) and theta0 > 0):
        theta0 = 1e4
    # nested SDs kept off zero for the same reason as the Cholesky factor
    return spec.join(beta, start_cholesky(cov), theta0, np.sqrt(np.maximum(vc, 0.05 ** 2)))


def run_ml(obj: LaplaceObjective, phi0: np.ndarray, theta: float | None, method: str,
           nagq: int) -> MLFit:
    """Optimise ``obj`` from ``phi0`` and package an :class:`MLFit`.

    ``obj`` provides ``spec``, ``theta_fixed``, ``value_and_grad(phi)`` and
    ``conditional(phi)``; the fit never ends below its start.
    """
    start_value = obj.value_and_grad(phi0)[0]
    spec = obj.spec
    bounds = [(None, None)] * spec.size
    if spec.estimate_theta:
        bounds[-1] = (np.log(THETA_MIN), np.log(THETA_MAX))
        phi0[-1] = np.clip(phi0[-1], *bounds[-1])
    phi, value, hess, n_eval, converged = minimize_nll(obj.value_and_grad, phi0.copy(),
                                                       bounds=bounds)
    if value > start_value:
        phi, value = phi0, start_value
    beta, _, th = spec.split(phi, obj.theta_fixed)
    cov = _invert(hess)
    mu, b = obj.conditional(phi)
    cov_re = obj.cov_re(phi)
    se_theta = th * np.sqrt(cov[-1, -1]) if spec.estimate_theta else np.nan
    return MLFit(params=beta.copy(), cov_params=cov[:spec.p, :spec.p], cov_joint=cov,
                 theta=float(th), se_theta=float(se_theta),
                 theta_estimated=spec.estimate_theta, cov_re=cov_re,
                 random_effects=b, mu=mu, llf=-float(value), llf_start=-float(start_value),
                 n_iter=int(n_eval), converged=converged, method=method, nagq=nagq, phi=phi,
                 theta_at_limit=bool(spec.estimate_theta and th >= 0.999 * THETA_MAX))


def _invert(hess: np.ndarray) -> np.ndarray:
    """Inverse of the joint Hessian; a singular one (flat direction) by pseudo-inverse."""
    try:
        cov = np.linalg.inv(hess)
    except np.linalg.LinAlgError:
        cov = np.linalg.pinv(hess)
    return cov
