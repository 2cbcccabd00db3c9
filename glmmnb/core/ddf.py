"""Denominator degrees of freedom of the fixed effects: nlme's rule.

Pinheiro & Bates (2000), section 2.4.2; ``nlme:::getFixDF`` is the code this
follows line for line.  Levels run from the outermost grouping factor (1) to
the innermost (Q); Q + 1 is the residual.  A column of X is *inner* to a
factor if it takes more than one value inside at least one of its groups.  It
is estimated at level 1 + (the innermost factor it is inner to), and the df of
level i is ``m_i - m_{i-1} - p_i`` (m groups, p the columns estimated there,
the intercept taking one from level 1).  The intercept reports the largest
level df, as nlme does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

__all__ = ["nlme_ddf", "nlme_term_ddf", "nlme_strata", "Strata", "is_constant"]


def is_constant(x: np.ndarray, tolerance: float = np.sqrt(np.finfo(float).eps)) -> bool:
    """nlme's test for an intercept-like column (constant up to rounding).

    Parameters
    ----------
    x : ndarray
        A column.
    tolerance : float
        Relative tolerance, R's ``sqrt(.Machine$double.eps)``.

    Returns
    -------
    bool

    Examples
    --------
    >>> import numpy as np
    >>> is_constant(np.ones(3)), is_constant(np.arange(3.0))
    (True, False)
    """
    x = np.asarray(x, dtype=float)
    if x.size == 0:
        return False
    rel = x if x[0] == 0 else x / x[0] - 1.0
    return bool(np.all(np.abs(rel) < tolerance))


def _varies_within(x: np.ndarray, codes: np.ndarray, n_groups: int) -> bool:
    """Whether ``x`` takes more than one value inside any group."""
    first = np.empty(n_groups)
    first[codes[::-1]] = x[::-1]
    return bool(np.any(x != first[codes]))


class Strata(NamedTuple):
    """Where nlme's rule places the columns of a design (:func:`nlme_strata`).

    Attributes
    ----------
    df_level : ndarray of int
        Each level's group-count df, outermost first, the residual last.
    not_int : ndarray of bool
        Which columns are not intercept-like.
    stratum : ndarray of int
        Each column's level: 1 + the innermost factor it varies within (0
        for the outermost level, the number of factors for the residual).
    """

    df_level: np.ndarray
    not_int: np.ndarray
    stratum: np.ndarray


def nlme_strata(X: np.ndarray, level_codes: Sequence[np.ndarray]) -> Strata:
    """The levels nlme's rule puts the columns of ``X`` at; the design-only part of the df.

    Computed once per design, it serves both :func:`nlme_ddf` and
    :func:`nlme_term_ddf` (pass it as ``strata``).

    Parameters
    ----------
    X : ndarray, shape (nobs, p)
        Fixed-effects design.
    level_codes : sequence of ndarray of int
        Group codes per level, outermost first (as for :func:`nlme_ddf`).

    Returns
    -------
    Strata

    Examples
    --------
    >>> import numpy as np
    >>> slide = np.repeat(np.arange(4), 50)
    >>> X = np.column_stack([np.ones(200), slide >= 2])
    >>> nlme_strata(X, [slide]).stratum
    array([0, 0])
    """
    X = np.asarray(X, dtype=float)
    N, p = X.shape
    m = [int(c.max()) + 1 if c.size else 0 for c in level_codes]
    df_level = np.array(m + [N]) - np.array([0] + m)
    not_int = np.array([not is_constant(X[:, j]) for j in range(p)], dtype=bool)
    stratum = np.zeros(p, dtype=int)
    for j in np.flatnonzero(not_int):
        stratum[j] = max((k + 1 for k, c in enumerate(level_codes)
                          if _varies_within(X[:, j], c, m[k])), default=0)
    return Strata(df_level, not_int, stratum)


def nlme_ddf(X: np.ndarray, level_codes: Sequence[np.ndarray],
             strata: Strata | None = None) -> np.ndarray:
    """Denominator df of each column of ``X`` by nlme's between/within rule.

    Parameters
    ----------
    X : ndarray, shape (nobs, p)
        Fixed-effects design.
    level_codes : sequence of ndarray of int
        Group codes per level, outermost first; inner levels' codes index
        the nested groups (e.g. slide within experiment), ``0 .. m_i - 1``.
    strata : Strata, optional
        :func:`nlme_strata` of ``X`` and ``level_codes``, if already known.

    Returns
    -------
    ndarray of int, shape (p,)

    See Also
    --------
    nlme:::getFixDF : the R function this follows.

    Examples
    --------
    The seed design: 4 slides of 50 cells, the treatment constant on a slide.

    >>> import numpy as np
    >>> slide = np.repeat(np.arange(4), 50)
    >>> X = np.column_stack([np.ones(200), slide >= 2])
    >>> nlme_ddf(X, [slide])
    array([196,   2])
    """
    df_level, not_int, stratum = strata if strata is not None else nlme_strata(X, level_codes)
    df_level = df_level.copy()
    p = not_int.shape[0]
    out = np.zeros(p, dtype=int)
    if not_int.any():
        np.subtract.at(df_level, stratum[not_int], 1)
        if not not_int.all():
            df_level[0] -= 1
        else:
            df_level[1:] += 1
        out[not_int] = df_level[stratum[not_int]]
    if not not_int.all():
        out[~not_int] = df_level.max()
    return out


def nlme_term_ddf(X: np.ndarray, level_codes: Sequence[np.ndarray],
                  assign: Sequence[Sequence[int]], strata: Strata | None = None) -> np.ndarray:
    """Denominator df of each model term by nlme's rule (``fixDF$terms``).

    A term sits at the innermost level of its columns and all its columns
    are counted there, so a term whose columns lie at different levels gets
    the df of the innermost one (the df ``anova.lme`` tests it on).

    Parameters
    ----------
    X : ndarray, shape (nobs, p)
        Fixed-effects design.
    level_codes : sequence of ndarray of int
        Group codes per level, outermost first (as for :func:`nlme_ddf`).
    assign : sequence of sequence of int
        The columns of each term.
    strata : Strata, optional
        :func:`nlme_strata` of ``X`` and ``level_codes``, if already known.

    Returns
    -------
    ndarray of int, shape (n_terms,)

    See Also
    --------
    nlme:::getFixDF : the R function this follows.

    Examples
    --------
    >>> import numpy as np
    >>> slide = np.repeat(np.arange(6), 10)
    >>> trt = np.repeat(np.arange(6) % 3, 10)
    >>> X = np.column_stack([np.ones(60), trt == 1, trt == 2])
    >>> nlme_term_ddf(X, [slide], [[0], [1, 2]])
    array([54,  3])
    """
    df_level, not_int, stratum = strata if strata is not None else nlme_strata(X, level_codes)
    df_level = df_level.copy()
    assign = [np.asarray(a, dtype=int) for a in assign]
    term_not_int = np.array([bool(not_int[a].any()) for a in assign])
    term_stratum = np.array([int(stratum[a].max()) if a.size else 0 for a in assign])
    out = np.zeros(len(assign), dtype=int)
    if term_not_int.any():
        for a, s in zip(assign, term_stratum):
            if not_int[a].any():
                df_level[s] -= a.size
        if not term_not_int.all():
            df_level[0] -= 1
        else:
            df_level[1:] += 1
        out[term_not_int] = df_level[term_stratum[term_not_int]]
    if not term_not_int.all():
        out[~term_not_int] = df_level.max()
    return out
