"""Turn group labels into the nested levels the inner solver works on.

Labels are coded like R factors (sorted unique values).  A nested level is
coded by the pair (enclosing group, own label), as nlme's ``~1 | a/b`` does, so
field ``"f1"`` on slide 1 and field ``"f1"`` on slide 2 are different groups.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from .lmm import Level

__all__ = ["factorize", "build_levels"]


def factorize(labels: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Sorted unique labels and the code of each row.

    Parameters
    ----------
    labels : array_like, shape (nobs,)
        Group labels (numbers or strings).

    Returns
    -------
    codes : ndarray of int
    uniques : ndarray

    Examples
    --------
    >>> factorize(["b", "a", "b"])
    (array([1, 0, 1]), array(['a', 'b'], dtype='<U1'))
    """
    labels = np.asarray(labels)
    fast = _factorize_fast(labels)
    if fast is not None:
        return fast
    uniques, codes = np.unique(labels, return_inverse=True)
    return codes.reshape(-1), uniques


def _factorize_fast(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """``np.unique(labels, return_inverse=True)`` without sorting all rows.

    Integer labels in a range not much wider than the number of rows are
    coded by a presence table (O(nobs), numpy only).  String labels go
    through :func:`pandas.factorize` (a hash table, O(nobs)), whose sorted
    uniques are those of ``np.unique`` for strings; pandas is used because
    numpy has no hashing factorizer and sorting millions of Python strings is
    the slowest step of a large fit.  Anything else (floats, mixed objects,
    missing values) returns ``None`` and takes the ``np.unique`` route.
    """
    if labels.ndim != 1 or labels.size == 0:
        return None
    kind = labels.dtype.kind
    if kind in "iu" or kind == "b":
        lab = labels.astype(np.int64) if kind == "b" else labels
        lo, hi = lab.min(), lab.max()
        span = int(hi) - int(lo) + 1
        if span > 4 * labels.size + 1024:
            return None
        shifted = lab.astype(np.intp, copy=False) if lo == 0 else (lab - lo).astype(np.intp)
        present = np.bincount(shifted, minlength=span) > 0
        uniques = (np.flatnonzero(present) + lo).astype(labels.dtype)
        if uniques.size == span:          # every value in the range occurs
            codes = shifted.copy() if shifted is labels else shifted
            return codes, uniques
        rank = np.cumsum(present, dtype=np.intp) - 1
        return rank[shifted], uniques
    if kind in "UO":
        if kind == "O" and not all(isinstance(x, str) for x in labels[:1000]):
            return None
        import pandas as pd

        try:
            codes, uniques = pd.factorize(labels, sort=True)
        except TypeError:
            return None
        if codes.size and codes.min() < 0:
            return None
        uniques = np.asarray(uniques)
        if kind == "U":
            uniques = uniques.astype(labels.dtype)
        elif not all(isinstance(x, str) for x in uniques):
            return None
        return codes.astype(np.intp, copy=False), uniques
    return None


def build_levels(groups: ArrayLike, nested: Sequence[tuple[str, ArrayLike]], k_re: int,
                 zcols_inner: int = 0,
                 coded: tuple[np.ndarray, np.ndarray] | None = None
                 ) -> tuple[list[Level], list[np.ndarray]]:
    """Levels for a random part: ``groups`` with ``k_re`` coefficients, then nested.

    Parameters
    ----------
    groups : array_like, shape (nobs,)
        Outermost grouping labels.
    nested : sequence of (str, array_like)
        Inner levels, outermost first, each with a random intercept; their
        labels need only be unique within the enclosing group.
    k_re : int
        Random coefficients of the outermost level (columns ``0 .. k_re - 1``
        of Z).
    zcols_inner : int
        Column of Z holding the ones that the nested intercepts use.
    coded : (ndarray of int, ndarray), optional
        ``factorize(groups)`` when the caller has it already (a pandas
        Categorical's codes and sorted categories), to skip hashing the
        labels again.

    Returns
    -------
    levels : list of Level
        Outermost first.
    labels : list of ndarray
        Each level's group labels; for nested levels the labels are tuples
        ``(outer label, ..., own label)`` joined with ``"/"`` like nlme.

    Examples
    --------
    >>> levels, labels = build_levels(["a", "a", "b"], [("cell", [1, 2, 1])], 1)
    >>> [lev.n_groups for lev in levels], labels[1].tolist()
    ([2, 3], ['a/1', 'a/2', 'b/1'])
    """
    codes, uniques = factorize(groups) if coded is None else coded
    levels = [Level(codes, len(uniques), tuple(range(k_re)), None, "groups")]
    names = [uniques]
    for name, lab in nested:
        inner_codes, inner_uniques = factorize(lab)
        key = codes.astype(np.int64) * len(inner_uniques) + inner_codes
        new_codes, keys = factorize(key)
        parent = keys // len(inner_uniques)
        labels = np.char.add(np.char.add(names[-1][parent].astype(str), "/"),
                             inner_uniques[keys % len(inner_uniques)].astype(str))
        levels.append(Level(new_codes.reshape(-1), len(keys), (zcols_inner,), parent, name))
        names.append(labels)
        codes = new_codes.reshape(-1)
    return levels, names
