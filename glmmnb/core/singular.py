"""Random effects at the boundary of their space, as lme4's ``isSingular``.

A fit is *singular* when a random-effects covariance is not positive
definite: a variance at zero, a correlation at +-1, or in general a
covariance of lower rank than its size.  lme4 tests the diagonal of the
relative Cholesky factor (the covariance divided by the residual variance)
against 1e-4; so do we, so that a variance counts as zero only relative to
the residual (the seed tutorial's slide SD 0.0097 against a residual SD of
0.99 is small, but not at the boundary).  A random-effects design whose
columns are collinear, or a nested factor with one group per enclosing
group, leaves a covariance unidentified whatever the fit: those are
reported too.  Designs that no fit can estimate (an all-zero column, more
coefficients per group than groups, where R's glmmPQL fails) are an error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .lmm import Level

__all__ = ["SINGULAR_TOL", "Boundary", "SingularFitWarning", "check_re_design",
           "find_boundaries", "relative_cholesky_diagonal"]

SINGULAR_TOL = 1e-4


class SingularFitWarning(UserWarning):
    """A random-effects covariance is at the boundary (singular) or not identified."""


@dataclass(frozen=True)
class Boundary:
    """One component at the boundary.

    Attributes
    ----------
    component : str
        What is at the boundary, e.g. ``"slide: (Intercept)"``.
    reason : str
        What happened and what it means, in words.
    """

    component: str
    reason: str

    def __str__(self) -> str:
        return f"{self.component}: {self.reason}"


def relative_cholesky_diagonal(cov: np.ndarray, scale: float) -> np.ndarray:
    """Diagonal of the lower Cholesky factor of ``cov / scale``.

    Computed from the Schur complements, so that a covariance that is only
    semi-definite gives zeros where the factor has them instead of failing.

    Parameters
    ----------
    cov : ndarray, shape (q, q)
        A random-effects covariance.
    scale : float
        Residual variance.

    Returns
    -------
    ndarray, shape (q,)

    Examples
    --------
    >>> import numpy as np
    >>> relative_cholesky_diagonal(np.array([[4.0, 2.0], [2.0, 1.0]]), 1.0)
    array([2., 0.])
    """
    P = np.asarray(cov, dtype=float) / scale
    q = P.shape[0]
    out = np.empty(q)
    for j in range(q):
        s = P[j, j]
        if j:
            head = P[:j, :j]
            s -= P[j, :j] @ np.linalg.pinv(head, rcond=1e-12, hermitian=True) @ P[:j, j]
        out[j] = np.sqrt(max(s, 0.0))
    return out


def _covariance_boundaries(cov: np.ndarray, scale: float, group: str, coefs: Sequence[str],
                           tol: float) -> list[Boundary]:
    diag = relative_cholesky_diagonal(cov, scale)
    rel_sd = np.sqrt(np.clip(np.diag(cov), 0.0, None) / scale)
    out = []
    for j in np.flatnonzero(diag < tol):
        if rel_sd[j] < tol:
            out.append(Boundary(
                f"{group}: {coefs[j]}",
                f"variance at 0 (SD {rel_sd[j]:.2g} times the residual SD): the data "
                "show no variation of this effect between groups; it could be dropped"))
            continue
        earlier = [k for k in range(j) if rel_sd[k] >= tol]
        if len(earlier) == 1:
            k = earlier[0]
            corr = cov[j, k] / np.sqrt(cov[j, j] * cov[k, k])
            out.append(Boundary(
                f"{group}: Corr({coefs[k]}, {coefs[j]})",
                f"correlation at {corr:+.4f}: the two effects are not separately "
                "identified (the covariance is singular); a model without the "
                "correlation or without one of them may fit as well"))
        else:
            out.append(Boundary(
                f"{group}: {coefs[j]}",
                "a linear combination of the other random coefficients (rank-deficient "
                "covariance); a simpler random-effects structure may fit as well"))
    return out


def _design_boundaries(Z: np.ndarray, levels: Sequence[Level], names: Sequence[str],
                       group_names: Sequence[str]) -> list[Boundary]:
    out = []
    lev = levels[0]
    cols = list(lev.zcols)
    if len(cols) > 1:
        zc = Z[:, cols]
        scale = np.sqrt((zc * zc).sum(axis=0))
        s = np.linalg.svd(zc / scale, compute_uv=False)
        if s[-1] < 1e-8 * s[0]:
            out.append(Boundary(
                f"{group_names[0]}: {', '.join(names)}",
                "the random-effects columns are collinear (a constant column beside the "
                "intercept?), so their covariance is not identified and its split is "
                "arbitrary; only their combination is estimated"))
    ones_in_parent = [bool(np.all(Z[:, c] == 1.0)) for c in cols]
    for i in range(1, len(levels)):
        lev, parent = levels[i], levels[i - 1]
        has_intercept = any(ones_in_parent) if i == 1 else True
        if np.all(np.bincount(lev.codes, minlength=lev.n_groups) == 1):
            out.append(Boundary(
                f"{group_names[i]} (in {group_names[i - 1]})",
                "has one row per group: its random intercept cannot be separated from the "
                "residual, so its variance is not identified; drop it"))
        elif has_intercept and lev.n_groups == parent.n_groups:
            out.append(Boundary(
                f"{group_names[i]} (in {group_names[i - 1]})",
                f"has one group per group of {group_names[i - 1]}: the two random "
                "intercepts are the same effect and only their sum is identified; "
                "drop one of them"))
    return out


def find_boundaries(cov_re: Sequence[np.ndarray], scale: float, Z: np.ndarray,
                    levels: Sequence[Level], coef_names: Sequence[str], group_names: Sequence[str],
                    tol: float = SINGULAR_TOL) -> list[Boundary]:
    """Every random-effects component at the boundary or not identified.

    Parameters
    ----------
    cov_re : sequence of ndarray
        Covariance of each level's random coefficients, outermost first.
    scale : float
        Residual variance.
    Z : ndarray, shape (nobs, q)
        Random-effects design.
    levels : sequence of glmmnb.core.lmm.Level
        Grouping levels, outermost first.
    coef_names : sequence of str
        Names of the outermost level's coefficients (nested levels have an
        intercept only).
    group_names : sequence of str
        Name of each level.
    tol : float
        Tolerance on the relative Cholesky diagonal (lme4's default 1e-4).

    Returns
    -------
    list of Boundary
        Empty if the fit is not singular.

    See Also
    --------
    lme4::isSingular : the rule for the covariances.

    Examples
    --------
    >>> import numpy as np
    >>> from glmmnb.core.lmm import Level
    >>> lev = [Level(np.array([0, 0, 1, 1]), 2, (0,))]
    >>> [str(b)[:30] for b in find_boundaries([np.array([[1e-12]])], 1.0, np.ones((4, 1)),
    ...                                       lev, ["(Intercept)"], ["slide"])]
    ['slide: (Intercept): variance a']
    """
    out = []
    for i, cov in enumerate(cov_re):
        coefs = list(coef_names) if i == 0 else ["(Intercept)"]
        out += _covariance_boundaries(np.asarray(cov, dtype=float), scale,
                                      group_names[i], coefs, tol)
    return out + _design_boundaries(Z, levels, list(coef_names), list(group_names))


def check_re_design(Z: np.ndarray, levels: Sequence[Level], names: Sequence[str]) -> None:
    """Reject random-effects designs that no fit can estimate.

    Parameters
    ----------
    Z : ndarray, shape (nobs, q)
        Random-effects design.
    levels : sequence of glmmnb.core.lmm.Level
        Grouping levels, outermost first.
    names : sequence of str
        Names of the outermost level's random coefficients.

    Raises
    ------
    ValueError
        If a column of the outermost level is zero in every row (R's glmmPQL
        stops with "leading minor not positive definite"), or if there are
        more random coefficients per group than groups (R's glmmPQL fails
        to converge; the covariance cannot be estimated).

    Examples
    --------
    >>> import numpy as np
    >>> from glmmnb.core.lmm import Level
    >>> lev = [Level(np.array([0, 0, 1, 1]), 2, (0,))]
    >>> check_re_design(np.zeros((4, 1)), lev, ["zero"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: exog_re column 'zero' is zero in every row: its random effect has no data...
    """
    lev = levels[0]
    cols = list(lev.zcols)
    for j, c in enumerate(cols):
        if not np.any(Z[:, c]):
            raise ValueError(
                f"exog_re column {names[j]!r} is zero in every row: its random effect has "
                "no data and its variance cannot be estimated; remove it from re_formula")
    if len(cols) > lev.n_groups:
        raise ValueError(
            f"{len(cols)} random coefficients per group ({', '.join(map(str, names))}) "
            f"cannot be estimated from {lev.n_groups} groups: their covariance has "
            f"{len(cols) * (len(cols) + 1) // 2} parameters; use fewer random slopes "
            "(re_formula) or more groups")
