"""The search over the Cholesky parameters of the inner linear mixed model.

:mod:`glmmnb.core.lmm` profiles ``beta`` and ``sigma^2`` out of the deviance;
what is left is a function of the relative Cholesky factors ``L_l`` (their
lower triangles stacked into ``theta``).  This module holds that
parametrisation, the exact gradients (one grouping level, and nested levels
by reverse accumulation through the reduction), and the
optimisers: a bracketed Brent search for one relative SD, L-BFGS-B with
bounds (diagonals >= 0, as lme4) otherwise.  The optimisers take the reducer
of :mod:`glmmnb.core.lmm` and call only its deviance methods.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np
from scipy import optimize

from ._threads import one_blas_thread

if TYPE_CHECKING:
    from .lmm import Level, _Reducer

_TRIL: dict[int, tuple[np.ndarray, np.ndarray]] = {}


def _tril(q: int) -> tuple[np.ndarray, np.ndarray]:
    idx = _TRIL.get(q)
    if idx is None:
        idx = _TRIL[q] = np.tril_indices(q)
    return idx


def _theta_to_chol(theta: np.ndarray, q: int) -> np.ndarray:
    L = np.zeros((q, q))
    L[_tril(q)] = theta
    return L


def _split_theta(theta: np.ndarray, levels: Sequence[Level]) -> list[np.ndarray]:
    out, start = [], 0
    for lev in levels:
        out.append(_theta_to_chol(theta[start:start + lev.n_theta], lev.k_re))
        start += lev.n_theta
    return out


def _single_level_gradient(red: _Reducer,
                           theta: np.ndarray) -> tuple[float, np.ndarray] | None:
    """Deviance and its exact gradient in the Cholesky parameters, one level with q >= 2.

    With ``P_g = T_g[r, r]``, ``M_g = I + L' P_g L``, ``K_g = M_g^{-1} L'`` and
    ``W_g = L K_g``: ``dW_g = E_g dL K_g + (E_g dL K_g)'`` with ``E_g = I - W_g
    P_g``, so for the residual sum ``r^2 = u' S u`` (``u = (-beta, 1)``, beta
    optimal, hence no term in ``d beta``) the derivative in ``L[i, j]`` is
    ``-2 sum_g (E_g' v_g)_i (K_g v_g)_j`` with ``v_g = T_g[r, :] u``, and that
    of ``sum_g log det M_g`` is ``2 sum_g (P_g K_g')_{ij}``.  Returns
    ``None`` where some ``M_g`` is not positive definite (the caller then
    differences the deviance numerically).
    """
    sg = red._single
    q, d = sg["q"], red.d
    if q == 2:
        return _pair_gradient(red, theta)
    L = _theta_to_chol(theta, q)
    P = sg["Trr"]
    M = np.eye(q) + L.T @ P @ L
    try:
        C = np.linalg.cholesky(M)
    except np.linalg.LinAlgError:
        return None
    logdet = 2.0 * np.log(np.diagonal(C, axis1=1, axis2=2)).sum()
    K = np.linalg.solve(M, np.broadcast_to(L.T, M.shape))       # M^-1 L'
    W = L @ K
    t = sg["Tr"].reshape(-1, q, d)
    S = sg["Tsum"] - t.reshape(-1, d).T @ (W @ t).reshape(-1, d)
    root = red.root_deviance(S, logdet)
    if root is None:
        return None
    dev, u, r2 = root
    n = red.nobs
    v = t @ u                                                    # (G, q)
    Kv = np.einsum("gij,gj->gi", K, v)
    Ev = v - np.einsum("gji,gj->gi", W @ P, v)                   # E' v = v - P W v
    PK = P @ np.swapaxes(K, 1, 2)
    rows, cols = _tril(q)
    d_r2 = -2.0 * np.einsum("gk,gk->k", Ev[:, rows], Kv[:, cols])
    d_logdet = 2.0 * PK[:, rows, cols].sum(axis=0)
    return float(dev), n / r2 * d_r2 + d_logdet


def _pair_gradient(red: _Reducer, theta: np.ndarray) -> tuple[float, np.ndarray] | None:
    """:func:`_single_level_gradient` for two coefficients, written out over the groups.

    ``L = [[a, 0], [b, c]]`` and ``P_g = [[p, q], [q, s]]`` as in
    :meth:`_Reducer._reduce_pair`, whose root statistics it uses; arrays over
    the groups instead of stacks of 2 x 2 matrices.
    """
    out = red._reduce_pair(_theta_to_chol(theta, 2))
    if out is None:
        return None
    S, logdet = out
    root = red.root_deviance(S, logdet)
    if root is None:
        return None
    dev, u, r2 = root
    n, d = red.nobs, red.d
    a, b, c = theta
    Trr = red._single["Trr"]
    p, q, s = Trr[:, 0, 0], Trr[:, 0, 1], Trr[:, 1, 1]
    m00 = 1.0 + (a * a) * p + (2.0 * a * b) * q + (b * b) * s
    m01 = c * (a * q + b * s)
    m11 = 1.0 + (c * c) * s
    det = m00 * m11 - m01 * m01
    i00, i01, i11 = m11 / det, -m01 / det, m00 / det
    k00, k01, k10, k11 = i00 * a, i00 * b + i01 * c, i01 * a, i01 * b + i11 * c
    w00, w01, w11 = a * k00, a * k01, b * k01 + c * k11
    t = red._single["Tr"].reshape(-1, 2, d)
    v0, v1 = t[:, 0, :] @ u, t[:, 1, :] @ u
    kv0, kv1 = k00 * v0 + k01 * v1, k10 * v0 + k11 * v1
    wv0, wv1 = w00 * v0 + w01 * v1, w01 * v0 + w11 * v1
    ev0, ev1 = v0 - (p * wv0 + q * wv1), v1 - (q * wv0 + s * wv1)
    d_r2 = -2.0 * np.array([ev0 @ kv0, ev1 @ kv0, ev1 @ kv1])
    d_logdet = 2.0 * np.array([(p * k00 + q * k01).sum(), (q * k00 + s * k01).sum(),
                               (q * k10 + s * k11).sum()])
    return float(dev), n / r2 * d_r2 + d_logdet


def _nested_gradient(red: _Reducer, theta: np.ndarray) -> tuple[float, np.ndarray] | None:
    """Deviance and its exact gradient for several (nested) levels, by reverse accumulation.

    Each level maps its groups' statistics ``T_g`` to ``S_g = T_g - K_g
    M_g^{-1} K_g'`` with ``K_g = T_g[:, r] L`` and ``M_g = I + L' T_g[r, r]
    L``, summed into the parent groups, and adds ``log det M_g``.  With
    ``Gbar_g`` the adjoint of ``S_g`` (the parent's adjoint of ``T``; at the
    root ``n / r^2 u u'``, ``u = (-beta, 1)`` with beta optimal, so no term in
    ``d beta``), ``N_g = K_g M_g^{-1}``, ``A_g = Gbar_g N_g`` and ``Mbar_g =
    N_g' Gbar_g N_g + M_g^{-1}``: the derivative in ``L`` is ``sum_g 2 (T_g[r,
    r] L Mbar_g - T_g[:, r]' A_g)`` and the adjoint of the symmetric ``T_g``
    is ``Gbar_g - (E_g + E_g') + L Mbar_g L'`` on ``[r, r]`` with ``E_g[:, r]
    = A_g L'``.  Returns ``None`` where some ``M_g`` is not positive definite.
    """
    levels = red.levels
    Ls = _split_theta(theta, levels)
    T, logdet, tape = red.T_inner, 0.0, []
    for i in range(len(levels) - 1, -1, -1):
        lev, L = levels[i], Ls[i]
        r = list(lev.zcols)
        Tr = T[:, :, r]
        K = Tr @ L
        M = np.eye(lev.k_re) + L.T @ K[:, r, :]
        try:
            C = np.linalg.cholesky(M)
        except np.linalg.LinAlgError:
            return None
        logdet += 2.0 * np.log(np.diagonal(C, axis1=1, axis2=2)).sum()
        Minv = np.linalg.inv(M)
        N = K @ Minv                                                 # (G, d, q)
        tape.append((Tr, Minv, N))
        S = T - N @ np.swapaxes(K, 1, 2)
        P = red._sum_to_parent[i]
        T = (S.sum(axis=0, keepdims=True) if P is None
             else (P @ S.reshape(S.shape[0], -1)).reshape(-1, red.d, red.d))
    root = red.root_deviance(T[0], logdet)
    if root is None:
        return None
    dev, u, r2 = root
    n, d = red.nobs, red.d
    Gbar = (n / r2) * np.outer(u, u)[None]
    grads = []
    for i, (Tr, Minv, N) in zip(range(len(levels)), reversed(tape)):
        lev, L = levels[i], Ls[i]
        if lev.parent is not None:
            Gbar = Gbar[lev.parent]
        r = list(lev.zcols)
        A = Gbar @ N                                                 # (G, d, q)
        Mbar = np.swapaxes(N, 1, 2) @ A + Minv
        dL = 2.0 * (Tr[:, r, :] @ L @ Mbar - np.swapaxes(Tr, 1, 2) @ A).sum(axis=0)
        grads.append(dL[_tril(lev.k_re)])
        if i + 1 < len(levels):
            E = np.zeros((A.shape[0], d, d))
            E[:, :, r] = A @ L.T
            Tbar = Gbar - E - np.swapaxes(E, 1, 2)
            rr = np.asarray(r)
            Tbar[:, rr[:, None], rr[None, :]] += L @ Mbar @ L.T
            Gbar = Tbar
    return float(dev), np.concatenate(grads)


def _deviance_and_gradient(
        red: _Reducer, step: float = 1e-7) -> Callable[[np.ndarray], tuple[float, np.ndarray]]:
    """``fun(theta) -> (deviance, gradient)`` for L-BFGS-B.

    The gradient is :func:`_single_level_gradient`'s for one level and
    :func:`_nested_gradient`'s for several; at a trial point where the
    closed form does not apply it is the forward difference with the step
    L-BFGS-B itself takes.
    """
    exact = _single_level_gradient if red._single is not None else _nested_gradient

    def fun(theta: np.ndarray) -> tuple[float, np.ndarray]:
        out = exact(red, theta)
        if out is not None:
            return out
        f = red.deviance(theta)
        if not np.isfinite(f):
            return f, np.zeros_like(theta)
        return f, np.array([(red.deviance(theta + e) - f) / step
                            for e in np.eye(theta.size) * step])
    return fun


def _bounds(levels: Sequence[Level]) -> list[tuple[float | None, float | None]]:
    bounds: list[tuple[float | None, float | None]] = []
    for lev in levels:
        q = lev.k_re
        rows, cols = np.tril_indices(q)
        bounds += [(0.0, None) if r == c else (None, None) for r, c in zip(rows, cols)]
    return bounds


def _default_theta(levels: Sequence[Level]) -> np.ndarray:
    return np.concatenate([np.eye(lev.k_re)[np.tril_indices(lev.k_re)] for lev in levels])


def _optimize(red: _Reducer, theta0: np.ndarray, tol: float) -> tuple[np.ndarray, bool]:
    levels = red.levels
    if len(levels) == 1 and levels[0].k_re == 1:
        # its (K, G) @ (G, d^2) products woke OpenBLAS's second thread ~20
        # times a fit: 0.35 ms each on a busy machine, 0.01 ms on one thread
        with one_blas_thread():
            return _optimize_scalar(red, float(theta0[0]))
    bounds = _bounds(levels)
    options = {"ftol": tol, "gtol": 1e-9, "maxiter": 1000}
    # the exact gradient: one deviance evaluation per step instead of
    # 1 + len(theta) for finite differences
    fun, jac = _deviance_and_gradient(red), True
    with one_blas_thread():
        res = optimize.minimize(fun, theta0, jac=jac, method="L-BFGS-B", bounds=bounds,
                                options=options)
    # A Cholesky diagonal at zero is a stationary point of the parametrisation
    # whatever the data say (Psi depends on its square, so the derivative
    # vanishes there), and L-BFGS-B can stall on it: which way it goes then
    # hinges on rounding (reordering the rows flips it).  Restart once from
    # the point with those diagonals moved off zero, and keep the better fit.
    diag = np.array([lo == 0.0 for lo, _ in bounds])
    stuck = diag & (res.x < 1e-3)
    if stuck.any():
        start = res.x.copy()
        start[stuck] = 0.1
        with one_blas_thread():
            alt = optimize.minimize(fun, start, jac=jac, method="L-BFGS-B", bounds=bounds,
                                    options=options)
        if alt.fun < res.fun:
            res = alt
    return res.x, bool(res.success)


# Largest relative SD the search goes to: there ``1 + l^2 T_rr`` has lost
# every digit of the 1, the group effects are free parameters to the last bit,
# and a larger optimum cannot be told from infinity.
_SCALAR_MAX = 1e8


def _optimize_scalar(red: _Reducer, start: float) -> tuple[np.ndarray, bool]:
    """One relative SD: bracket on the log scale, then Newton or Brent; check the boundary.

    The grid covers 1e-4 to 100 residual SDs and is extended a decade at a
    time while its largest point is the best (large counts or a tiny theta
    make the working residual SD small against the groups' SD), so the
    bracket always holds the optimum.  The warm start joins the grid once;
    a repeat of a grid point would give an empty bracket.

    Newton's steps from the best grid point (the warm start, in later PQL
    iterations) find the optimum in 3-6 evaluations where Brent takes 15-20
    and then needs the same steps to resolve its last digits.  Brent runs
    where they cannot finish inside the bracket: a flat or concave
    deviance, an uphill step, a singular solve.  Its precision is Newton's
    (:data:`_NEWTON_DONE`), not the relative deviance tolerance L-BFGS-B
    takes for several SDs.
    """
    grid = np.concatenate([[0.0], np.logspace(-4, 2, 25)])
    if start > 0:
        grid = np.unique(np.append(grid, start))
    vals = red.deviance_scalar(grid)
    k = int(np.argmin(vals))
    while k == len(grid) - 1 and grid[-1] < _SCALAR_MAX:
        more = grid[-1] * np.logspace(0.25, 1.0, 4)
        grid = np.append(grid, more)
        vals = np.append(vals, red.deviance_scalar(more))
        k = int(np.argmin(vals))
    if k == len(grid) - 1:
        # still falling at the largest SD the arithmetic can tell apart
        return np.array([grid[k]]), False
    lo, hi = (0.0, grid[1]) if k == 0 else (grid[k - 1], grid[k + 1])
    if 0.0 < grid[k] < _POLISH_MAX:
        found, done = _newton_polish(red, grid[k], vals[k], steps=_NEWTON_STEPS,
                                     bracket=(lo, hi))
        if done:
            return np.array([found]), True
    f = lambda t: red.deviance(np.array([t]))  # noqa: E731
    # An infinite deviance (a residual sum of 0: one row per group) makes
    # Brent's parabola NaN; it then takes golden-section steps, as it should.
    with np.errstate(invalid="ignore"):
        res = optimize.minimize_scalar(f, bounds=(lo, hi), method="bounded",
                                       options={"xatol": 1e-10 * max(hi, 1e-3), "maxiter": 500})
    best, fbest = (res.x, res.fun) if res.fun <= vals[k] else (grid[k], vals[k])
    if 0.0 < best < _POLISH_MAX:
        best = _newton_polish(red, best, fbest)[0]
    return np.array([best]), bool(res.success)


# Largest relative SD that Brent's point is polished from: beyond it the
# deviance is flat to its rounding over the last digits Newton would fix.
_POLISH_MAX = 1e4

# Curvature of the deviance in log(l^2) below which the variance is not
# identified: a factor e in l^2 then moves the deviance by under 5e-4.
_FLAT = 1e-3

# Newton steps allowed from a grid point: 0.25 decades from the optimum, the
# 0.5 step limit and quadratic convergence need 4-6.
_NEWTON_STEPS = 12

# A step in log(l^2) below which Newton has converged: its square, the error
# left, is far below the deviance's rounding.
_NEWTON_DONE = 1e-10


def _newton_polish(red: _Reducer, l: float, dev: float, steps: int = 4,
                   bracket: tuple[float, float] | None = None) -> tuple[float, bool]:
    """Newton steps on ``log(l^2)`` with the exact derivatives; the point and whether it converged.

    Brent on a function flat to second order stops within about the square
    root of its rounding of the optimum (relative 1e-6 in the variance); the
    derivatives find the root of the slope to ~1e-12, so the fit agrees with
    any other route to the same optimum (the batched many-responses path).
    A step that raises the deviance beyond rounding is not taken, and a
    deviance whose curvature is below ``_FLAT`` is left alone: the data do
    not locate that optimum (one row per group), PQL then wanders, and where
    it ends after ``maxiter`` iterations should not hinge on digits that
    Brent's point does not resolve.  With a ``bracket``, a step out of it
    ends the search unconverged.
    """
    try:
        d0, g1, g2 = red.derivatives_scalar(l)
        for _ in range(steps):
            if not (np.isfinite(d0) and g2 > _FLAT):
                break
            step = float(np.clip(-g1 / g2, -0.5, 0.5))
            new = l * np.exp(0.5 * step)
            if bracket is not None and not bracket[0] < new < bracket[1]:
                break
            # the trial point's derivatives are the next step's
            d1, h1, h2 = red.derivatives_scalar(new)
            if not d1 <= min(dev, d0) + 1e-12 * abs(d0):
                break
            l, dev = new, d1
            d0, g1, g2 = d1, h1, h2
            if abs(step) < _NEWTON_DONE:
                return l, True
    except np.linalg.LinAlgError:
        pass
    return l, False
