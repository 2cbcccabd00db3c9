"""The Laplace objective for nested levels: the groups' coefficients and nested intercepts.

The random effects of one outermost group are its ``q`` coefficients and one
scalar intercept for every group nested in it, at every inner level.  Rows
load on the *path* of their innermost group: ``v_i = [L' z_i, s_1, ..., s_Q]``
(``s_l`` the SD of level ``l``), so ``H = sum_i W_i v_i v_i' + I`` couples a
node only with its ancestors and descendants.  Eliminating the innermost
nodes first (each a scalar pivot, its Schur complement summed into the
parent) never fills in anything else: the log-determinant, Newton steps
and the path blocks of ``H^{-1}`` (the leverages of the gradient) all come
from ``(n_groups, D, D)`` arrays per level with ``D <= q + Q``; the same
reduction as the nested linear mixed model.  The gradient is that of
:mod:`glmmnb.core.laplace` written for path vectors.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from .laplace import LaplaceObjective, _Rows

if TYPE_CHECKING:
    from .lmm import Level

__all__ = ["NestedObjective"]


class NestedObjective(LaplaceObjective):
    """:class:`LaplaceObjective` for one outer level and ``Q >= 1`` nested intercept levels.

    Parameters
    ----------
    y, X, offset : ndarray
        Counts, fixed-effects design, offset.
    Z : ndarray, shape (nobs, q)
        The outer groups' random-effects design.
    levels : sequence of glmmnb.core.lmm.Level
        Outermost first; the inner ones carry ``parent`` codes.
    theta : float or None
        ``None`` estimates it.
    """

    def __init__(self, y: np.ndarray, X: np.ndarray, offset: np.ndarray, Z: np.ndarray,
                 levels: Sequence[Level], theta: float | None) -> None:
        super().__init__(y, X, offset, Z, levels[0].codes, levels[0].n_groups, theta,
                         sort_by=levels[-1].codes)
        order = self.order
        self.levels = [lev if order is None else dataclasses.replace(lev, codes=lev.codes[order])
                       for lev in levels]
        self.Q = len(levels) - 1
        self.spec = type(self.spec)(X.shape[1], self.q, theta is None, self.Q)
        self.sizes = [lev.n_groups for lev in levels]
        self.leaf = self.levels[-1].codes
        # ancestor of every node at every outer level (anc[l][m]: level-m index of level-l nodes)
        self.anc = [[None] * (lev_i + 1) for lev_i in range(len(levels))]
        for li in range(len(levels)):
            self.anc[li][li] = np.arange(self.sizes[li])
            for m in range(li - 1, -1, -1):
                self.anc[li][m] = levels[m + 1].parent[self.anc[li][m + 1]]
        self.us = [np.zeros(n) for n in self.sizes[1:]]

    # helpers -------------------------------------------------------------
    def _scatter(self, codes: np.ndarray, n: int, A: np.ndarray) -> np.ndarray:
        """Sum the rows of ``A`` (any trailing shape) by ``codes`` into ``n`` bins."""
        flat = A.reshape(A.shape[0], -1)
        out = np.column_stack([np.bincount(codes, weights=flat[:, j], minlength=n)
                               for j in range(flat.shape[1])])
        return out.reshape((n,) + A.shape[1:])

    def _eta(self, eta0: np.ndarray, L: np.ndarray, s: np.ndarray, u0: np.ndarray,
             us: Sequence[np.ndarray]) -> np.ndarray:
        eta = eta0 + self.rowdot(u0 @ L.T)
        for lev, sl, ul in zip(self.levels[1:], s, us):
            eta = eta + sl * ul[lev.codes]
        return eta

    def _leaf_sums(self, w: np.ndarray, L: np.ndarray, s: np.ndarray) -> np.ndarray:
        """``sum_i w_i v_i v_i'`` per innermost group, ``(G_Q, D, D)``."""
        n = self.sizes[-1]
        m0 = np.bincount(self.leaf, weights=w, minlength=n)
        m1 = self._scatter(self.leaf, n, (w[:, None] * self.Z)) @ L
        m2 = np.einsum("ab,gbc,cd->gad", L.T,
                       self._scatter(self.leaf, n, w[:, None, None] * self.Z[:, :, None]
                                     * self.Z[:, None, :]), L)
        q, D = self.q, self.q + self.Q
        S = np.empty((n, D, D))
        S[:, :q, :q] = m2
        S[:, :q, q:] = m1[:, :, None] * s[None, None, :]
        S[:, q:, :q] = np.transpose(S[:, :q, q:], (0, 2, 1))
        S[:, q:, q:] = m0[:, None, None] * np.outer(s, s)[None]
        return S

    # factorisation -----------------------------------------------------
    def _factor(self, S: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray]:
        """Pivots, couplings and the top block of ``H`` by elimination from the leaves."""
        M = S.copy()
        M[:, -1, -1] += 1.0
        piv, cpl = [None] * (self.Q + 1), [None] * (self.Q + 1)
        for li in range(self.Q, 0, -1):
            p = M[:, -1, -1]
            m = M[:, :-1, -1]
            piv[li], cpl[li] = p, m
            schur = M[:, :-1, :-1] - m[:, :, None] * m[:, None, :] / p[:, None, None]
            M = self._scatter(self.levels[li].parent, self.sizes[li - 1], schur)
            if li > 1:
                M[:, -1, -1] += 1.0
            else:
                M += np.eye(self.q)
        return piv, cpl, M

    def _logdet(self, piv: Sequence[np.ndarray], top: np.ndarray) -> float:
        total = float(np.sum(np.linalg.slogdet(top)[1]))
        return total + sum(float(np.sum(np.log(p))) for p in piv[1:])

    def _solve(self, piv: Sequence[np.ndarray], cpl: Sequence[np.ndarray], top: np.ndarray,
               r0: np.ndarray, rs: Sequence[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
        """``H^{-1} rhs`` for a right-hand side given per node (top ``(G0, q)``, levels ``(G_l,)``)."""
        R = [None] * (self.Q + 1)
        red = None
        for li in range(self.Q, 0, -1):
            own = rs[li - 1] if red is None else rs[li - 1] + red[:, -1]
            Rl = np.zeros((self.sizes[li], self.q + li))
            if red is not None:
                Rl[:, :-1] = red[:, :-1]
            Rl[:, -1] = own
            R[li] = Rl
            rho = Rl[:, :-1] - cpl[li] * (Rl[:, -1] / piv[li])[:, None]
            red = self._scatter(self.levels[li].parent, self.sizes[li - 1], rho)
        rtop = r0 + red
        x0 = np.linalg.solve(top, rtop[:, :, None])[:, :, 0]
        path, xs = x0, []
        for li in range(1, self.Q + 1):
            a = path[self.levels[li].parent]
            x = (R[li][:, -1] - np.einsum("ga,ga->g", cpl[li], a)) / piv[li]
            xs.append(x)
            path = np.column_stack([a, x])
        return x0, xs

    def _inverse_paths(self, piv: Sequence[np.ndarray], cpl: Sequence[np.ndarray],
                       top: np.ndarray) -> np.ndarray:
        """The path blocks of ``H^{-1}`` for every innermost group, ``(G_Q, D, D)``."""
        B = np.linalg.inv(top)
        for li in range(1, self.Q + 1):
            Ba = B[self.levels[li].parent]
            k = -np.einsum("gab,gb->ga", Ba, cpl[li]) / piv[li][:, None]
            d = 1.0 / piv[li] - np.einsum("ga,ga->g", k, cpl[li]) / piv[li]
            n, D = Ba.shape[0], Ba.shape[1] + 1
            B = np.empty((n, D, D))
            B[:, :-1, :-1] = Ba
            B[:, :-1, -1] = B[:, -1, :-1] = k
            B[:, -1, -1] = d
        return B

    # modes ---------------------------------------------------------------
    def _state(self, eta0: np.ndarray, L: np.ndarray, s: np.ndarray, theta: float, u0: np.ndarray,
               us: Sequence[np.ndarray]) -> tuple[_Rows, np.ndarray]:
        rows = _Rows(self.y, self._eta(eta0, L, s, u0, us), theta)
        f = self.gsum(rows.nll) + 0.5 * np.einsum("ga,ga->g", u0, u0)
        for lev_i, ul in enumerate(us, start=1):
            f = f + np.bincount(self.anc[lev_i][0], weights=ul * ul, minlength=self.G) * 0.5
        return rows, f

    def _grad_u(self, rows: _Rows, L: np.ndarray, s: np.ndarray, u0: np.ndarray,
                us: Sequence[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
        g0 = self.gvec(rows.d1) @ L + u0
        gs = [sl * np.bincount(lev.codes, weights=rows.d1, minlength=lev.n_groups) + ul
              for lev, sl, ul in zip(self.levels[1:], s, us)]
        return g0, gs

    def nested_modes(self, eta0: np.ndarray, L: np.ndarray, s: np.ndarray, theta: float,
                     tol: float = 1e-10, maxiter: int = 100) -> tuple:
        """Newton's method for all nodes at once; halving per outermost group."""
        u0, us = self.u.copy(), [u.copy() for u in self.us]
        rows, f = self._state(eta0, L, s, theta, u0, us)
        for _ in range(maxiter):
            g0, gs = self._grad_u(rows, L, s, u0, us)
            fac = self._factor(self._leaf_sums(rows.w, L, s))
            d0, ds = self._solve(*fac, g0, gs)
            if max(np.max(np.abs(d0)), *(np.max(np.abs(d)) for d in ds)) < tol:
                break
            for _ in range(40):
                n0, ns = u0 - d0, [u - d for u, d in zip(us, ds)]
                rows_new, f_new = self._state(eta0, L, s, theta, n0, ns)
                worse = f_new > f + 1e-12 * np.abs(f)
                if not np.any(worse):
                    break
                d0 = np.where(worse[:, None], 0.5 * d0, d0)
                ds = [np.where(worse[self.anc[i][0]], 0.5 * d, d)
                      for i, d in enumerate(ds, start=1)]
            u0, us, rows, f = n0, ns, rows_new, f_new
        self.u, self.us = u0, us
        return u0, us, rows, self._factor(self._leaf_sums(rows.w, L, s)), f

    def _parts(self, phi: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        beta, L, theta = self.spec.split(phi, self.theta_fixed)
        return beta, L, self.spec.vc(phi), theta

    def value(self, phi: np.ndarray) -> float:
        """``F(phi)``."""
        beta, L, s, theta = self._parts(phi)
        *_, fac, f = self.nested_modes(self.X @ beta + self.offset, L, s, theta)
        return self.constant(theta) + float(np.sum(f)) + 0.5 * self._logdet(fac[0], fac[2])

    def value_and_grad(self, phi: np.ndarray) -> tuple[float, np.ndarray]:
        """``(F, grad F)``, the gradient exact with the implicit term of the modes."""
        beta, L, s, theta = self._parts(phi)
        u0, us, rows, fac, f = self.nested_modes(self.X @ beta + self.offset, L, s, theta)
        value = self.constant(theta) + float(np.sum(f)) + 0.5 * self._logdet(fac[0], fac[2])
        B = self._inverse_paths(*fac)[self.leaf]
        V = np.column_stack([self.Z @ L, np.broadcast_to(s, (self.y.shape[0], self.Q))])
        Bv = np.einsum("iab,ib->ia", B, V)
        h = np.einsum("ia,ia->i", V, Bv)
        t = rows.d3 * h
        a0 = 0.5 * self.gvec(t) @ L
        as_ = [0.5 * sl * np.bincount(lev.codes, weights=t, minlength=lev.n_groups)
               for lev, sl in zip(self.levels[1:], s)]
        c0, cs = self._solve(*fac, a0, as_)
        vc = self._eta(np.zeros_like(self.y), L, s, c0, cs)
        r = rows.d1 + 0.5 * t - rows.w * vc
        ZW = self.Z * rows.w[:, None]
        grad_L = (np.einsum("ga,gb->ab", self.gvec(r), u0) + ZW.T @ Bv[:, :self.q]
                  - np.einsum("ga,gb->ab", self.gvec(rows.d1), c0))
        grad_s = [np.dot(r, ul[lev.codes]) + np.dot(rows.w, Bv[:, self.q + k])
                  - np.dot(rows.d1, cl[lev.codes])
                  for k, (lev, ul, cl) in enumerate(zip(self.levels[1:], us, cs))]
        parts = [self.X.T @ r, grad_L[np.tril_indices(self.q)], grad_s]
        if self.spec.estimate_theta:
            dnll, dd1, dw = rows.theta_parts(self.y, self.table)
            parts.append([dnll + np.sum(0.5 * dw * h - dd1 * vc)])
        return value, np.concatenate(parts)

    def conditional(self, phi: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        """Means and the random effects per level (``L u`` outermost, ``s_l u_l`` inside)."""
        beta, L, s, theta = self._parts(phi)
        u0, us, rows, _, _ = self.nested_modes(self.X @ beta + self.offset, L, s, theta)
        return self.unsort(rows.mu), [u0 @ L.T] + [(sl * ul)[:, None] for sl, ul in zip(s, us)]

    def cov_re(self, phi: np.ndarray) -> list[np.ndarray]:
        """``[L L', [[s_1^2]], ...]``."""
        _, L, s, _ = self._parts(phi)
        return [L @ L.T] + [np.array([[sl * sl]]) for sl in s]
