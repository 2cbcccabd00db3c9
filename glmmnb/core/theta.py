"""Maximum-likelihood theta of the fixed-effects negative-binomial GLM.

This is what ``MASS::glm.nb`` returns and what the seed tutorial plugs into
``glmmPQL``: the GLM coefficients and theta are maximised jointly by
alternating an IRLS fit for fixed theta with a Newton step for theta given
the means (``MASS::theta.ml``).  Because theta and the coefficients of a
log-link NB model are orthogonal, the alternation converges quickly; it is
run to a tolerance far below R's so that theta is the exact maximum.

The digamma sums that dominate the theta step depend on the counts only, so
they are taken over the distinct count values (a few dozen) instead of the
rows (millions).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special

from . import negbin
from ._blocks import BLOCK, blocks
from .nbglm import GLMFit, _eta_mu, fit_nb_glm

__all__ = ["ThetaFit", "theta_ml", "estimate_theta", "THETA_MAX"]

THETA_MAX = 1e8
"""Above this theta the data show no overdispersion; the estimate is capped."""


@dataclass
class ThetaFit:
    """Result of :func:`estimate_theta` (R: ``glm.nb``).

    Attributes
    ----------
    theta : float
        ML estimate of theta (``THETA_MAX`` if it ran away).
    se_theta : float
        Its standard error from the observed information.
    glm : GLMFit
        The NB GLM at that theta.
    loglike : float
        Maximised log-likelihood.
    n_iter : int
        Outer alternations.
    converged : bool
        Whether the alternation met its tolerance.
    at_limit : bool
        True when theta ran off towards infinity (no overdispersion).
    """

    theta: float
    se_theta: float
    glm: GLMFit
    loglike: float
    n_iter: int
    converged: bool
    at_limit: bool


class _CountTable:
    """Distinct counts and their frequencies, for the digamma sums."""

    def __init__(self, y: np.ndarray) -> None:
        table = negbin._count_table(y)
        if table is None:
            table = np.unique(y, return_counts=True)
        self.values, self.counts = table
        self.n = y.shape[0]

    def digamma_sum(self, theta: float) -> float:
        return self.counts @ special.digamma(theta + self.values) - self.n * special.digamma(theta)

    def lgamma_sum(self, theta: float) -> float:
        """``sum log(Gamma(y + theta) / (Gamma(theta) y!))`` over the rows."""
        return (self.counts @ (special.gammaln(theta + self.values)
                               - special.gammaln(self.values + 1.0))
                - self.n * special.gammaln(theta))

    def trigamma_sum(self, theta: float) -> float:
        return (self.counts @ special.polygamma(1, theta + self.values)
                - self.n * special.polygamma(1, theta))


def _score_info(theta: float, y: np.ndarray, mu: np.ndarray,
                table: _CountTable) -> tuple[float, float]:
    """Score and observed information of theta, as ``MASS::theta.ml``."""
    # Block by block, so that the temporaries stay in cache:
    # sum(log(tm) + (y + theta) / tm) and sum(2 / tm - (y + theta) / tm^2).
    s_log = s_r = s_inv = s_r_inv = 0.0
    for s in blocks(y.shape[0]):
        tm = mu[s] + theta
        inv = np.divide(1.0, tm)
        r = y[s] + theta
        r *= inv                                # (y + theta) / tm
        s_r += r.sum()
        s_inv += inv.sum()
        r *= inv                                # (y + theta) / tm^2
        s_r_inv += r.sum()
        np.log(tm, out=tm)
        s_log += tm.sum()
    score = table.digamma_sum(theta) + table.n * (np.log(theta) + 1.0) - (s_log + s_r)
    info = -table.trigamma_sum(theta) - table.n / theta + (2.0 * s_inv - s_r_inv)
    return score, info


def theta_ml(y: np.ndarray, mu: np.ndarray, theta0: float | None = None, tol: float = 1e-12,
             maxiter: int = 200, table: _CountTable | None = None) -> tuple[float, float]:
    """ML theta for known means, by Newton's method on ``log(theta)``.

    Parameters
    ----------
    y, mu : ndarray
        Counts and fitted means.
    theta0 : float, optional
        Start; by default the moment estimate ``n / sum((y / mu - 1)^2)``
        that ``MASS::theta.ml`` uses.
    tol : float
        Stop when the step in ``log(theta)`` is below this.
    maxiter : int
        Maximum Newton steps.
    table : optional
        Precomputed count table (internal, for repeated calls).

    Returns
    -------
    theta : float
        The estimate, capped at ``THETA_MAX``.
    info : float
        Observed information at the estimate.

    See Also
    --------
    MASS::theta.ml : the R function this mirrors.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(1)
    >>> y = rng.negative_binomial(5, 5 / (5 + 4.0), size=5000).astype(float)
    >>> theta, _ = theta_ml(y, np.full(5000, y.mean()))
    >>> bool(4 < theta < 6)
    True
    """
    table = _CountTable(y) if table is None else table
    if theta0 is None:
        theta0 = table.n / np.sum((y / mu - 1.0) ** 2)
    log_t = np.log(min(max(theta0, 1e-8), THETA_MAX))
    for _ in range(maxiter):
        t = np.exp(log_t)
        if t > POISSON_SIDE:
            if poisson_side(y, mu):
                return THETA_MAX, _score_info(THETA_MAX, y, mu, table)[1]
            # the score is negative there: come down at Newton's largest step
            log_t -= 2.0
            continue
        score, info = _score_info(t, y, mu, table)
        grad = t * score
        hess = -(t ** 2) * info + t * score
        step = -grad / hess if hess < 0 else np.sign(grad) * 1.0
        step = float(np.clip(step, -2.0, 2.0))
        # from t <= POISSON_SIDE a step of at most 2 cannot reach THETA_MAX: the
        # cap is met only through the Poisson-side check above
        log_t += step
        if abs(step) < tol:
            break
    t = float(np.exp(log_t))
    return t, _score_info(t, y, mu, table)[1]


POISSON_SIDE = 1e6
"""Theta beyond which the score's sign is read off its leading term.

The score is a difference of terms of size ``n log(theta)`` whose sum is
``sum(y - (y - mu)^2) / (2 theta^2)`` to leading order, so that beyond about
1e6 it is rounding noise (which way Newton then went depended on the
machine's arithmetic)."""


def poisson_side(y: np.ndarray, mu: np.ndarray, axis: int | None = None) -> np.ndarray:
    """Whether the variance about ``mu`` is at most the mean (score > 0 at large theta).

    ``axis`` sums per feature for a block of responses (the batched fit).

    Examples
    --------
    >>> import numpy as np
    >>> bool(poisson_side(np.array([4.0, 5.0, 6.0]), np.full(3, 5.0)))
    True
    """
    return np.sum(y - np.square(y - mu), axis=axis) >= 0.0


START_ROWS = 5_000
"""Rows of the subsample whose alternating fit starts the joint Newton steps.

Its estimate is off the full-data one by about ``1 / sqrt(START_ROWS)``,
well inside the region where Newton's steps converge quadratically: at 1e5
and 1e6 rows 5 000 rows take the same three passes as 10 000 did, and 2 000
take four."""

START_TOL = 1e-4
"""Relative theta change at which the subsample's alternation stops: a start
needs no more digits than the subsample's own sampling error gives it."""


def estimate_theta(y: np.ndarray, X: np.ndarray, offset: np.ndarray, tol: float = 1e-10,
                   maxiter: int = 100) -> ThetaFit:
    """Jointly estimate theta and the GLM coefficients (R: ``MASS::glm.nb``).

    Up to ``2 * START_ROWS`` rows this is ``glm.nb``'s alternation of an
    IRLS fit at fixed theta and a theta step.  On more rows the alternation
    runs on a random subsample of :data:`START_ROWS` rows only, and Newton
    steps on ``(beta, log theta)`` over all rows take that start to the joint
    maximum quadratically, so that a million rows cost three or four passes.
    Where a step cannot be taken (a Hessian that is not negative definite, a
    start that ran off to the Poisson limit), the alternation runs on all
    rows instead.

    Parameters
    ----------
    y : ndarray
        Counts.
    X : ndarray
        Fixed-effects design.
    offset : ndarray
        Offset on the log scale.
    tol : float
        Relative change in theta at which the alternation stops.
    maxiter : int
        Maximum alternations.

    Returns
    -------
    ThetaFit

    See Also
    --------
    MASS::glm.nb : the R function this reproduces.

    Examples
    --------
    >>> from glmmnb.datasets import microscopy
    >>> import numpy as np
    >>> d = microscopy.load_pandas().data
    >>> X = np.column_stack([np.ones(len(d)), d["RNAi"] == "Target"])
    >>> fit = estimate_theta(d["counts"].to_numpy(float), X, np.zeros(len(d)))
    >>> round(fit.theta, 3)
    25.333
    """
    table = _CountTable(y)
    if y.shape[0] <= 2 * START_ROWS:
        return _alternate(y, X, offset, tol, maxiter, table)
    start = _subsample_start(y, X, offset, tol, maxiter)
    if start is not None:
        fit = _joint_newton(y, X, offset, start[0], start[1], table)
        if fit is not None:
            return fit
    return _alternate(y, X, offset, tol, maxiter, table)


def _subsample_start(y: np.ndarray, X: np.ndarray, offset: np.ndarray, tol: float,
                     maxiter: int) -> tuple[np.ndarray, float] | None:
    """``(beta, theta)`` of the alternation on a random subsample of the rows, or None.

    The rows are drawn from a fixed seed (the same rows for the same data),
    at random rather than evenly spaced, because a stride can alias with the
    layout of the data (every other slide, all of one treatment).
    """
    n = y.shape[0]
    # the distinct draws in order: a mask, not np.unique's sort (1 ms at 1e5)
    drawn = np.zeros(n, dtype=bool)
    drawn[np.random.default_rng(0).integers(0, n, START_ROWS)] = True
    rows = np.flatnonzero(drawn)
    ys = y[rows]
    if not ys.any() or np.all(ys == ys[0]):
        return None
    try:
        fit = _alternate(ys, np.ascontiguousarray(X[rows]), offset[rows], max(tol, START_TOL),
                         maxiter, _CountTable(ys))
    except (np.linalg.LinAlgError, ValueError):
        return None
    if fit.at_limit or not np.isfinite(fit.theta):
        return None
    return fit.glm.params, fit.theta


def _alternate(y: np.ndarray, X: np.ndarray, offset: np.ndarray, tol: float, maxiter: int,
               table: _CountTable) -> ThetaFit:
    """``glm.nb``'s alternation of an IRLS fit at fixed theta and :func:`theta_ml`."""
    glm = fit_nb_glm(y, X, offset, np.inf)
    theta = None
    for it in range(1, maxiter + 1):
        new, info = theta_ml(y, glm.mu, theta0=theta, table=table)
        change = np.inf if theta is None else abs(new - theta) / new
        theta = new
        if change < tol:
            # theta moved by less than tol since the GLM was fitted at it: the
            # pair is the joint optimum, and refitting would change nothing.
            break
        glm = fit_nb_glm(y, X, offset, theta, start=glm.params)
        if theta >= THETA_MAX:
            break
    converged = (change < tol or theta >= THETA_MAX) and glm.converged
    if change >= tol:
        # the GLM moved after theta was last estimated: re-estimate at its means
        theta, info = theta_ml(y, glm.mu, theta0=theta, table=table)
    at_limit = theta >= THETA_MAX
    se = float(1.0 / np.sqrt(info)) if info > 0 and not at_limit else np.inf
    return ThetaFit(theta, se, glm, negbin.loglike(y, glm.mu, theta), it, converged, at_limit)


NEWTON_STEP_TOL = 1e-6
"""Largest Newton step (in the standardized coefficients and log theta) after
which no further pass is made: with quadratic convergence the point after
that step is within about its square of the maximum."""


def _joint_newton(y: np.ndarray, X: np.ndarray, offset: np.ndarray, beta: np.ndarray, theta: float,
                  table: _CountTable, maxiter: int = 20) -> ThetaFit | None:
    """Newton's method on ``(beta, log theta)`` from a close start; None if it cannot go on."""
    p = X.shape[1]
    off = offset if np.any(offset) else None
    XT = np.ascontiguousarray(X.T)
    cur = _JointPass(y, XT, off, beta, theta, table)
    for it in range(1, maxiter + 1):
        try:
            chol = np.linalg.cholesky(-cur.hess)
        except np.linalg.LinAlgError:
            return None
        step = np.linalg.solve(chol.T, np.linalg.solve(chol, cur.grad))
        if float(np.max(np.abs(step))) < NEWTON_STEP_TOL:
            beta, theta = beta + step[:p], float(theta * np.exp(step[p]))
            eta, mu = _eta_mu(X, beta, off)
            glm = GLMFit(beta, cur.cov_params(), mu, eta, it, True)
            se = float(1.0 / np.sqrt(cur.info_theta)) if cur.info_theta > 0 else np.inf
            return ThetaFit(theta, se, glm, cur.loglike, it, True, False)
        for _ in range(30):
            new_beta, new_theta = beta + step[:p], float(theta * np.exp(step[p]))
            if not new_theta < THETA_MAX:
                return None
            new = _JointPass(y, XT, off, new_beta, new_theta, table)
            # a step that lowers the likelihood (beyond rounding) is halved
            if new.loglike >= cur.loglike - 1e-12 * abs(cur.loglike):
                break
            step = 0.5 * step
        else:
            return None
        beta, theta, cur = new_beta, new_theta, new
    return None


class _JointPass:
    """Log-likelihood, gradient and Hessian in ``(beta, log theta)``: one pass over the rows.

    With ``eta = X beta + offset``, ``mu = exp(eta)`` and ``r = 1 / (mu +
    theta)``: ``dl/deta = theta (y - mu) r``, ``d2l/deta2 = -theta mu (y +
    theta) r^2`` and ``d2l/deta dtheta = (y - mu) mu r^2``; the theta
    derivatives are :func:`_score_info`'s.  ``X' W X`` with the IRLS weights
    ``theta mu r`` is accumulated too, for the coefficients' covariance.

    The design comes transposed, ``XT = X.T`` as a C-contiguous ``(p, n)``
    array: each weighted copy of a block's columns is then written row by
    row, 20 times faster than into the columns of an ``(n, 2p)`` buffer,
    which was half of the pass.
    """

    def __init__(self, y: np.ndarray, XT: np.ndarray, offset: np.ndarray | None,
                 beta: np.ndarray, theta: float, table: _CountTable) -> None:
        p = XT.shape[0]
        # per row: the two weight vectors of the p x p blocks stacked, and the
        # two of the gradient and the cross term, so that each block needs one
        # product for each pair
        gh = np.zeros((p, 2))
        hf = np.zeros((p, 2 * p))
        s_log = s_r = s_inv = s_r2 = s_ye = s_ylog = 0.0
        # the weighted columns of each block go into one buffer, reused
        buf = np.empty((2 * p, min(BLOCK, y.shape[0])))
        wts = np.empty((2, buf.shape[1]))
        for s in blocks(y.shape[0]):
            Xs, ys = XT[:, s], y[s]
            e = beta @ Xs
            if offset is not None:
                e += offset[s]
            m = np.exp(e)
            tm = m + theta
            r = 1.0 / tm
            ytr = (ys + theta) * r               # (y + theta) / tm
            s_r += ytr.sum()
            s_inv += r.sum()
            s_r2 += ytr @ r
            mr = m * r
            dr = (ys - m) * r
            k = ys.shape[0]
            wk, bk = wts[:, :k], buf[:, :k]
            wk[0] = dr
            np.multiply(dr, mr, out=wk[1])
            gh += Xs @ wk.T
            np.multiply(Xs, mr * ytr, out=bk[:p])
            np.multiply(Xs, mr, out=bk[p:])
            hf += Xs @ bk.T
            np.log(tm, out=tm)
            s_log += tm.sum()
            s_ylog += ys @ tm
            s_ye += ys @ e
        g, hc = gh[:, 0], gh[:, 1]
        h, fisher = hf[:, :p], hf[:, p:]
        n = table.n
        score = table.digamma_sum(theta) + n * (np.log(theta) + 1.0) - (s_log + s_r)
        info = -table.trigamma_sum(theta) - n / theta + (2.0 * s_inv - s_r2)
        self.info_theta = info
        self.grad = np.append(theta * g, theta * score)
        self.hess = np.empty((p + 1, p + 1))
        self.hess[:p, :p] = -theta * h
        self.hess[:p, p] = self.hess[p, :p] = theta * hc
        self.hess[p, p] = theta * theta * (-info) + theta * score
        self._fisher = theta * fisher
        self.loglike = float(table.lgamma_sum(theta) + n * theta * np.log(theta)
                             - theta * s_log + s_ye - s_ylog)

    def cov_params(self) -> np.ndarray:
        """Inverse Fisher information ``(X' W X)^{-1}`` of the coefficients."""
        return np.linalg.inv(self._fisher)
