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
parent group, so nested levels reduce one after another.  The search over
the Cholesky parameters is in :mod:`glmmnb.core.lmm_optimize`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.linalg import lapack

from ._blocks import blocks, sum_log
from .lmm_optimize import _default_theta, _optimize, _split_theta

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
    crossproducts : ndarray or None
        The innermost groups' weighted cross-products of ``[Z, X, z]`` the
        fit worked from; inference on the variance parameters (Satterthwaite
        df, ``intervals``) re-evaluates the deviance from them.
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
    crossproducts: np.ndarray | None = None


def group_crossproducts(codes: np.ndarray, n_groups: int, A: np.ndarray,
                        w: np.ndarray) -> np.ndarray:
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
    A = np.asarray(A, dtype=float)
    rows = _GroupRows(codes, n_groups, [A[:, j] for j in range(A.shape[1] - 1)])
    return rows.crossproducts(A[:, -1], np.asarray(w, dtype=float))


class _GroupRows:
    """Rows arranged by group, and the columns' structure, for fast group sums.

    Built once per PQL fit from the innermost codes and the fixed columns
    ``F`` (the columns of ``Z`` then of ``X``, as a list), it turns every
    later cross-product pass into a few contiguous ``np.add.reduceat`` calls
    instead of one ``np.bincount`` per column pair:

    * the rows are visited in group order (a stable argsort, skipped when the
      codes are already sorted, as for data stored group by group), so each
      group is one contiguous segment;
    * columns that repeat an earlier one (the intercept of ``Z`` and of
      ``X``, a slope that is also a fixed effect) are crossed once;
    * columns constant within every group (an all-ones intercept, a
      treatment applied per slide) need no products at all: their
      cross-products are the group value times the sums against the
      weights alone.

    Only the remaining varying columns and the response are multiplied row
    by row, block by block.  The arithmetic is that of the plain sums,
    reordered.
    """

    def __init__(self, codes: np.ndarray, n_groups: int, F: Sequence[np.ndarray]) -> None:
        codes = np.asarray(codes)
        n = codes.shape[0]
        self.n_groups = int(n_groups)
        if n > 1 and np.any(codes[1:] < codes[:-1]):
            self.order = np.argsort(codes, kind="stable")
            sorted_codes = codes[self.order]
        else:
            self.order = None
            sorted_codes = codes
        if n:
            brk = np.flatnonzero(sorted_codes[1:] != sorted_codes[:-1]) + 1
            self.starts = np.concatenate([[0], brk]).astype(np.intp)
            self.seg_groups = sorted_codes[self.starts]
            self.seg_len = np.diff(np.append(self.starts, n))
        else:
            self.starts = np.zeros(0, dtype=np.intp)
            self.seg_groups = np.zeros(0, dtype=np.intp)
            self.seg_len = np.zeros(0, dtype=np.intp)
        # For every block of rows (in group order): the block-local segment
        # starts and their groups (a group cut by a block edge gets two parts).
        self.blocks = []
        for s in blocks(n):
            lo = np.searchsorted(self.starts, s.start, side="right") - 1
            hi = np.searchsorted(self.starts, s.stop, side="left")
            local = self.starts[lo:hi] - s.start
            local[0] = 0
            self.blocks.append((s, local, self.seg_groups[lo:hi]))
        # kinds[j]: ("var", index) or ("const", per-group values); a repeat of
        # an earlier column shares its entry.  ones[j]: the column is all ones.
        self.kinds = []
        self.ones = []
        self.varying = []
        seen = []
        for j, col in enumerate(F):
            col = np.asarray(col, dtype=float)
            alias = next((k for k, prev in seen if np.array_equal(prev, col)), None)
            if alias is not None:
                self.kinds.append(self.kinds[alias])
                self.ones.append(self.ones[alias])
                continue
            seen.append((j, col))
            cs = col if self.order is None else col[self.order]
            first = cs[self.starts]
            if n and np.array_equal(cs, np.repeat(first, self.seg_len)):
                vals = np.zeros(self.n_groups)
                vals[self.seg_groups] = first
                self.kinds.append(("const", vals))
                self.ones.append(bool(np.all(first == 1.0)))
            else:
                self.kinds.append(("var", len(self.varying)))
                self.ones.append(False)
                self.varying.append(np.ascontiguousarray(cs))

    def crossproducts(self, z: np.ndarray, w: np.ndarray) -> np.ndarray:
        """Group-wise ``A' W A`` for ``A = [F, z]``, shape (n_groups, d, d)."""
        m = len(self.varying) + 1
        G = self.n_groups
        # S[a][b]: sums of w * u_a * u_b, u_0 = 1 and u_{1..m} the varying
        # columns then z; accumulated block by block
        acc = np.zeros(((m + 1) * (m + 2) // 2, G))
        pair = {}
        for a in range(m + 1):
            for b in range(a, m + 1):
                pair[a, b] = len(pair)
        for s, local, gid in self.blocks:
            if self.order is None:
                ws, zs = w[s], z[s]
            else:
                o = self.order[s]
                ws, zs = w[o], z[o]
            cols = [v[s] for v in self.varying] + [zs]
            acc[pair[0, 0], gid] += np.add.reduceat(ws, local)
            for a in range(m):
                wa = ws * cols[a]
                acc[pair[0, a + 1], gid] += np.add.reduceat(wa, local)
                for b in range(a, m):
                    acc[pair[a + 1, b + 1], gid] += np.add.reduceat(wa * cols[b], local)
        S = [[None] * (m + 1) for _ in range(m + 1)]
        for (a, b), i in pair.items():
            S[a][b] = S[b][a] = acc[i]
        kinds = self.kinds + [("var", m - 1)]
        d = len(kinds)
        out = np.empty((self.n_groups, d, d))
        for j in range(d):
            kj, vj = kinds[j]
            for k in range(j, d):
                kk, vk = kinds[k]
                if kj == "var" and kk == "var":
                    s = S[vj + 1][vk + 1]
                elif kj == "var":
                    s = vk * S[vj + 1][0]
                elif kk == "var":
                    s = vj * S[0][vk + 1]
                else:
                    s = vj * vk * S[0][0]
                out[:, j, k] = s
                out[:, k, j] = s
        return out


def _chol_solve(M: np.ndarray, B: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Solve ``M X = B`` for a stack of small SPD ``M``; also log-determinants."""
    if M.shape[-1] == 1:
        m = M[:, 0, 0]
        return B / m[:, None, None], np.log(m)
    if M.shape[-1] == 2:
        inv, logdet = _inv2(M)
        if inv is not None:
            return inv @ B, logdet
    C = np.linalg.cholesky(M)
    logdet = 2.0 * np.log(np.diagonal(C, axis1=1, axis2=2)).sum(axis=1)
    return np.linalg.solve(M, B), logdet


def _inv2(M: np.ndarray) -> tuple[np.ndarray, np.ndarray] | tuple[None, None]:
    """Closed-form inverse and log-determinant of a stack of SPD 2 x 2 matrices.

    Returns ``(None, None)`` if any matrix is not numerically positive
    definite, so that the caller takes the Cholesky route (and its error).
    """
    a, b, c = M[:, 0, 0], M[:, 0, 1], M[:, 1, 1]
    det = a * c - b * b
    if not (np.all(a > 0) and np.all(det > 0)):
        return None, None
    inv = np.empty_like(M)
    inv[:, 0, 0] = c / det
    inv[:, 1, 1] = a / det
    inv[:, 0, 1] = inv[:, 1, 0] = -b / det
    return inv, np.log(det)


def _cho_solve(A: np.ndarray, b: np.ndarray, lower: bool = True) -> np.ndarray:
    """``scipy.linalg.cho_solve(cho_factor(A, lower=lower), b)`` without the wrappers.

    The same LAPACK calls (``potrf`` then ``potrs``) and the same errors; the
    wrappers' argument checks cost more than the solve for the 2 x 2 to
    10 x 10 systems solved hundreds of times per fit.
    """
    c, info = lapack.dpotrf(A, lower=int(lower), clean=0)
    if info > 0:
        raise np.linalg.LinAlgError(
            f"{info}-th leading minor of the array is not positive definite")
    if info < 0:
        raise ValueError(f'LAPACK reported an illegal value in {-info}-th argument '
                         'on entry to "POTRF".')
    x, info = lapack.dpotrs(c, b, lower=int(lower))
    if info != 0:
        raise ValueError(f"illegal value in {-info}th argument of internal potrs")
    return x


# Smallest ``l^2 T_g[r, r]`` from which the scalar reduction starts from the
# limit ``S_inf``: below it the direct form has lost fewer than 4 digits.
_FAR = 1e4


class _Reducer:
    """Profiled ML deviance of the weighted LMM, from innermost statistics."""

    def __init__(self, T_inner: np.ndarray, levels: Sequence[Level], nobs: int, p: int,
                 sum_log_w: float) -> None:
        self.T_inner = T_inner
        self.levels = levels
        self.nobs = nobs
        self.sum_log_w = sum_log_w
        self.d = T_inner.shape[1]
        self.xi = np.arange(self.d - p - 1, self.d - 1)
        self._xs = slice(self.d - p - 1, self.d - 1)
        self._sum_to_parent = [
            None if lev.parent is None else sparse.csr_matrix(
                (np.ones(lev.n_groups), (lev.parent, np.arange(lev.n_groups))),
                shape=(int(lev.parent.max()) + 1, lev.n_groups))
            for lev in levels
        ]
        # One level: the deviance needs only sums over the groups, so the
        # group-wise pieces that do not depend on theta are formed once.
        self._single = None
        if len(levels) == 1:
            r = list(levels[0].zcols)
            q = len(r)
            Tr = T_inner[:, :, r]                                 # (G, d, q)
            self._single = {
                "q": q, "Tsum": T_inner.sum(axis=0),
                # columns of Tr side by side: (G, q * d), column (a, i) = T[:, i, r[a]]
                "Tr": np.ascontiguousarray(np.swapaxes(Tr, 1, 2)).reshape(-1, q * self.d),
                "Trr": T_inner[:, r][:, :, r],
            }
            if q == 1:
                t = self._single["Tr"]
                # t_g t_g' of every group, flattened: (G, d * d)
                outer = (t[:, :, None] * t[:, None, :]).reshape(t.shape[0], -1)
                self._single["outer"] = outer
                trr = self._single["Trr"][:, 0, 0]
                # the limit of S as l grows (group effects as fixed effects),
                # formed once; see _reduce_scalar
                self._single["S_inf"] = (None if not np.all(trr > 0) else
                                         self._single["Tsum"] - ((1.0 / trr) @ outer).reshape(
                                             self.d, self.d))

    def _reduce_scalar(self, ls: np.ndarray) -> tuple[np.ndarray, np.ndarray] | tuple[None, None]:
        """Root statistics and log-determinants for several scalar factors ``ls``.

        One level with one random coefficient: ``M_g = 1 + l^2 T_g[r, r]`` and
        ``S = sum_g T_g - sum_g (l^2 / M_g) t_g t_g'`` with ``t_g = T_g[:, r]``;
        all ``ls`` at once are one matrix product.

        Once every ``l^2 T_g[r, r]`` exceeds ``_FAR``, ``S`` is written as its limit
        ``S_inf = sum_g T_g - sum_g t_g t_g' / T_g[r, r]`` plus
        ``sum_g t_g t_g' / (T_g[r, r] M_g)``: the subtraction in the first form
        cancels more digits the larger ``l`` is, and its rounding differs from
        one ``l`` to the next, while ``S_inf`` is rounded once.  At SD ratios
        of 1e4 and 1e5 the deviance's second differences over steps of 1e-4
        are then 4 times less noisy, and at 1e5 the optimum no longer moves
        with the machine's rounding (tests/test_boundary.py).
        """
        sg = self._single
        l2 = ls * ls
        trr = sg["Trr"][None, :, 0, 0]
        m = 1.0 + l2[:, None] * trr                             # (K, G)
        if not np.all(m > 0):
            return None, None
        far = (l2 * trr.min() > _FAR) & (sg["S_inf"] is not None)
        S = np.empty((len(ls), self.d * self.d))
        S[~far] = sg["Tsum"].ravel() - (l2[~far, None] / m[~far]) @ sg["outer"]
        if far.any():
            S[far] = sg["S_inf"].ravel() + (1.0 / (trr * m[far])) @ sg["outer"]
        return S.reshape(-1, self.d, self.d), np.log(m).sum(axis=1)

    def deviance_scalar(self, ls: np.ndarray) -> np.ndarray:
        """:meth:`deviance` at every scalar factor in ``ls`` (one level, one coefficient)."""
        ls = np.asarray(ls, dtype=float)
        S, logdet = self._reduce_scalar(ls)
        if S is None:
            return np.array([self.deviance(np.array([t])) for t in ls])
        n = self.nobs
        out = np.empty(len(ls))
        for i in range(len(ls)):
            _, r2, _ = self.solve_fixed(S[i])
            out[i] = np.inf if r2 <= 0.0 else (
                n * np.log(2.0 * np.pi * r2 / n) + n + logdet[i] - self.sum_log_w)
        return out

    def derivatives_scalar(self, l: float) -> tuple[float, float, float]:
        """Deviance and its first two derivatives in ``s = log(l^2)``, one level and coefficient.

        With ``u = l^2``, ``c_g = 1 / (1 + u T_g[r, r])``, ``v = (-beta, 1)``
        and ``e_g = t_g' v``: ``d r2/du = -sum c_g^2 e_g^2`` (beta drops out,
        being optimal), ``d2 r2/du2 = 2 sum T_g[r, r] c_g^3 e_g^2 - 2 g' (X'V^-1X)^-1 g``
        with ``g = -sum c_g^2 e_g t_g[x]``, and the log-determinant's
        derivatives are ``sum T_g[r, r] c_g`` and ``-sum (T_g[r, r] c_g)^2``.
        """
        sg = self._single
        u = float(l) * float(l)
        S, logdet = self._reduce_scalar(np.array([float(l)]))
        if S is None:
            return np.inf, 0.0, 0.0
        root = self.root_deviance(S[0], float(logdet[0]))
        if root is None:
            return np.inf, 0.0, 0.0
        dev, v, r2 = root
        XtVX = S[0][self._xs, self._xs]
        t, a = sg["Tr"], sg["Trr"][:, 0, 0]
        c = 1.0 / (1.0 + u * a)
        e = t @ v
        ce2 = c * c * e
        d1_r2 = -float(ce2 @ e)
        g = -(ce2 @ t[:, self.xi])
        d2_r2 = 2.0 * float((a * c * ce2) @ e) - 2.0 * float(g @ _cho_solve(XtVX, g))
        ac = a * c
        n = self.nobs
        d1 = n * d1_r2 / r2 + ac.sum()
        d2 = n * (d2_r2 / r2 - (d1_r2 / r2) ** 2) - float(ac @ ac)
        return dev, u * d1, u * d1 + u * u * d2

    def _reduce_pair(self, L: np.ndarray) -> tuple[np.ndarray, float] | None:
        """:meth:`_reduce_single` for two coefficients, written out elementwise.

        With ``L = [[a, 0], [b, c]]`` and ``T_g[r, r] = [[p, q], [q, s]]``:
        ``M_g = I + L' T_g[r, r] L``, ``W_g = L M_g^{-1} L'`` and
        ``S = sum_g T_g - sum_g t_g' W_g t_g`` with ``t_g`` the two rows
        ``T_g[r, :]``.  Arrays over the groups instead of stacks of 2 x 2
        matrices; ``None`` if some ``M_g`` is not numerically positive definite.
        """
        sg = self._single
        a, b, c = L[0, 0], L[1, 0], L[1, 1]
        Trr = sg["Trr"]
        p, q, s = Trr[:, 0, 0], Trr[:, 0, 1], Trr[:, 1, 1]
        m00 = 1.0 + (a * a) * p + (2.0 * a * b) * q + (b * b) * s
        m01 = c * (a * q + b * s)
        m11 = 1.0 + (c * c) * s
        det = m00 * m11 - m01 * m01
        if not (np.all(m00 > 0) and np.all(det > 0)):
            return None
        i00, i01, i11 = m11 / det, -m01 / det, m00 / det
        w00 = (a * a) * i00
        w01 = a * (b * i00 + c * i01)
        w11 = (b * b) * i00 + (2.0 * b * c) * i01 + (c * c) * i11
        t = sg["Tr"].reshape(-1, 2, self.d)
        t0, t1 = t[:, 0, :], t[:, 1, :]
        cross = (t0 * w01[:, None]).T @ t1
        S = sg["Tsum"] - ((t0 * w00[:, None]).T @ t0 + cross + cross.T
                          + (t1 * w11[:, None]).T @ t1)
        return S, np.log(det).sum()

    def _reduce_single(self, L: np.ndarray) -> tuple[np.ndarray, float] | None:
        """Root statistics and log-determinant of a single level, summed directly.

        ``S = sum_g T_g - sum_g K_g M_g^{-1} K_g'`` with ``K_g = T_g[:, r] L``
        and ``M_g = I + L' T_g[r, r] L``, the same quantities as
        :meth:`reduce`, without forming the per-group ``S_g``.
        """
        sg = self._single
        q, d = sg["q"], self.d
        if q == 1:
            S, logdet = self._reduce_scalar(np.array([L[0, 0]]))
            if S is None:
                return None
            return S[0], logdet[0]
        if q == 2:
            out = self._reduce_pair(L)
            if out is not None:
                return out
        # K_g = T_g[:, r] L: per group (d, q); M_g = I + L' Trr_g L
        M = np.eye(q) + L.T @ sg["Trr"] @ L
        try:
            C = np.linalg.cholesky(M)
        except np.linalg.LinAlgError:
            return None
        logdet = 2.0 * np.log(np.diagonal(C, axis1=1, axis2=2)).sum(axis=1)
        inv = np.linalg.inv(M)
        # sum_g K_g inv_g K_g' = sum_g Tr_g (L inv_g L') Tr_g'
        W = L @ inv @ L.T                                         # (G, q, q)
        t = sg["Tr"].reshape(-1, q, d)                            # (G, q, d)
        Wt = W @ t                                                # (G, q, d)
        S = sg["Tsum"] - t.reshape(-1, d).T @ Wt.reshape(-1, d)
        return S, logdet.sum()

    def reduce(self, Ls: Sequence[np.ndarray],
               keep: bool = False) -> tuple[np.ndarray, float, list[tuple]]:
        """Integrate out every level, innermost first.

        Returns the root statistics ``A' V^{-1} A``, the summed log-determinant
        of ``I + L' Z' V_child^{-1} Z L`` and, if ``keep``, each level's input
        statistics and solver pieces for the BLUPs.
        """
        if self._single is not None and not keep:
            out = self._reduce_single(Ls[0])
            if out is not None:
                return out[0], out[1], []
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

    def solve_fixed(self, S: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
        xs, yi = self._xs, self.d - 1
        XtVX = S[xs, xs]
        if not np.isfinite(S).all():
            raise ValueError("the working LMM's cross-products are not finite: the working "
                             "weights or response overflowed (fitted means at 0 or beyond "
                             "1e308)")
        Xty = S[xs, yi]
        try:
            beta = _cho_solve(XtVX, Xty)
        except np.linalg.LinAlgError:
            # A trial covariance so large that it absorbs a fixed effect leaves
            # X' V^-1 X numerically singular; a least-squares solve keeps the
            # deviance finite and continuous so the optimiser can step back.
            beta = np.linalg.lstsq(XtVX, Xty, rcond=None)[0]
        r2 = S[yi, yi] - Xty @ beta
        return beta, max(r2, 0.0), XtVX

    def deviance(self, theta: np.ndarray) -> float:
        S, logdet, _ = self.reduce(_split_theta(theta, self.levels))
        root = self.root_deviance(S, logdet)
        return np.inf if root is None else root[0]

    def root_deviance(self, S: np.ndarray,
                      logdet: float) -> tuple[float, np.ndarray, float] | None:
        """Profiled deviance from the root statistics ``S``, with ``u = (-beta, 1)`` and ``r^2``.

        ``r^2 = u' S u`` at the optimal beta, which the exact gradients
        differentiate; ``None`` where the residual sum is not positive.
        """
        beta, r2, _ = self.solve_fixed(S)
        n = self.nobs
        if r2 <= 0.0:
            return None
        u = np.zeros(self.d)
        u[self.xi] = -beta
        u[self.d - 1] = 1.0
        return n * np.log(2.0 * np.pi * r2 / n) + n + logdet - self.sum_log_w, u, r2


def fit_lmm(X: np.ndarray, z: np.ndarray, w: np.ndarray, Z: np.ndarray, levels: Sequence[Level],
            theta0: np.ndarray | None = None, tol: float = 1e-12) -> LMMFit:
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
    >>> fit.converged
    True

    A balanced one-way design has closed-form ML estimates: the grand mean,
    the within-group mean square, and the variance of the group means less
    its within-group share.

    >>> means = z.reshape(20, 10).mean(axis=1)
    >>> msw = ((z.reshape(20, 10) - means[:, None]) ** 2).sum() / (200 - 20)
    >>> bool(np.isclose(fit.params[0], z.mean())), bool(np.isclose(fit.scale, msw))
    (True, True)
    >>> bool(np.isclose(fit.cov_re[0][0, 0], means.var() - msw / 10))
    True
    """
    return _fit_lmm(_row_structure(X, Z, levels), X, z, w, Z, levels, theta0, tol)


def _row_structure(X: np.ndarray, Z: np.ndarray, levels: Sequence[Level]) -> _GroupRows:
    """The innermost groups' row structure for the cross-products of ``[Z, X]``.

    It depends on X, Z and the codes only, so PQL prepares it once for all
    its inner fits.
    """
    inner = levels[-1]
    return _GroupRows(inner.codes, inner.n_groups,
                      [Z[:, j] for j in range(Z.shape[1])] + [X[:, j] for j in range(X.shape[1])])


def _fit_lmm(rows: _GroupRows, X: np.ndarray, z: np.ndarray, w: np.ndarray, Z: np.ndarray,
             levels: Sequence[Level], theta0: np.ndarray | None = None,
             tol: float = 1e-12) -> LMMFit:
    """:func:`fit_lmm` with the row structure prepared (reused across PQL iterations)."""
    nobs, p = X.shape
    T = rows.crossproducts(z, w)
    red = _Reducer(T, list(levels), nobs, p, float(sum_log(w)))
    theta0 = _default_theta(levels) if theta0 is None else np.asarray(theta0, float)
    theta, converged = _optimize(red, theta0, tol)
    return _assemble(red, theta, X, Z, converged, rows)


def _assemble(red: _Reducer, theta: np.ndarray, X: np.ndarray, Z: np.ndarray, converged: bool,
              rows: _GroupRows | None = None) -> LMMFit:
    Ls = _split_theta(theta, red.levels)
    S, logdet, kept = red.reduce(Ls, keep=True)
    beta, r2, XtVX = red.solve_fixed(S)
    n = red.nobs
    scale = r2 / n
    cov = scale * np.linalg.inv(XtVX)
    ranef = _blups(red, kept, beta)
    fitted = X @ beta
    for lev, b in zip(red.levels, ranef):
        zcols = list(lev.zcols)
        if rows is not None and len(zcols) == 1 and rows.ones[zcols[0]]:
            b0 = b[:, 0]
            for s in blocks(fitted.shape[0]):
                fitted[s] += b0[lev.codes[s]]
        else:
            fitted += np.einsum("ij,ij->i", Z[:, zcols], b[lev.codes])
    # an exact fit (scale 0, one row per group) has deviance -inf; the model
    # checks the scale of the final fit and says so
    with np.errstate(divide="ignore"):
        deviance = n * np.log(2.0 * np.pi * scale) + n + logdet - red.sum_log_w
    return LMMFit(
        params=beta, cov_params=cov, scale=scale,
        cov_re=[scale * L @ L.T for L in Ls], random_effects=ranef, fitted=fitted,
        theta=theta, deviance=float(deviance), converged=converged,
        crossproducts=red.T_inner,
    )


def _blups(red: _Reducer, kept: list[tuple], beta: np.ndarray) -> list[np.ndarray]:
    """Conditional means of the random effects, outermost level first.

    For a level with input statistics ``T = A' V_child^{-1} A`` and the
    residual ``r = A u`` (``u`` holds ``-beta``, minus the outer levels'
    predictions on their Z columns, and 1 on the response), the prediction is
    ``L M^{-1} L' T[zcols, :] u``.
    """
    d = red.d
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
