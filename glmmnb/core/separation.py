"""Complete separation: a basis in which the runaway coefficients are their own columns.

When the rows with positive counts cannot see some direction ``v`` of the
coefficients (``X_P v = 0``, e.g. the contrast of a factor level whose counts
are all 0), the likelihood keeps rising along ``v`` and the means of the
zero-count rows it touches run to 0.  R's ``glm`` and ``glmmPQL`` then stop
where their iteration limits stop (intercept about -30, standard error about
1e6, p = 1) and everything the other rows determine is still estimated.

In the cross-product form our solvers use, those rows' weights (about 1e-14)
sit next to weights of order 1 in the same entries of ``X' W X`` and are lost
to rounding: the matrix turns numerically singular.  In the basis
``X V = [X R, X N]`` (``N`` spanning the null space of the positive-count
rows' design) the vanishing weights are alone in the ``N`` block, and every
solve keeps them.  The change of basis is orthogonal, so the model and every
identified quantity are the same.
"""

from __future__ import annotations

import numpy as np

__all__ = ["separation_transform", "separated_params"]


def separation_transform(X: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, int]:
    """Orthogonal ``V`` whose last columns span the null space of ``X[~rows]``.

    Parameters
    ----------
    X : ndarray, shape (nobs, p)
        Fixed-effects design.
    rows : ndarray of bool, shape (nobs,)
        The separated rows (zero counts whose fitted means ran to 0).

    Returns
    -------
    V : ndarray, shape (p, p)
        Orthogonal; ``X @ V`` has the directions the other rows see first.
    rank : int
        Rank of ``X[~rows]``: columns ``rank:`` of ``V`` are the separated
        directions (none if ``rank == p``).

    Examples
    --------
    >>> import numpy as np
    >>> X = np.column_stack([np.ones(4), [0.0, 0.0, 1.0, 1.0]])
    >>> V, rank = separation_transform(X, np.array([True, True, False, False]))
    >>> rank, np.allclose(X[2:] @ V[:, rank:], 0.0)
    (1, True)
    """
    rest = X[~rows]
    p = X.shape[1]
    if rest.shape[0] == 0:
        return np.eye(p), 0
    _, s, vt = np.linalg.svd(rest, full_matrices=True)
    # numpy's matrix_rank tolerance
    rank = int(np.sum(s > s[0] * max(rest.shape) * np.finfo(float).eps))
    return vt.T, rank


def separated_params(transform: np.ndarray, rank: int) -> np.ndarray:
    """Which coefficients of the original basis move along the separated directions.

    Parameters
    ----------
    transform : ndarray, shape (p, p)
        Map from the separated basis to the original coefficients
        (``beta = transform @ beta_v``).
    rank : int
        As returned by :func:`separation_transform`.

    Returns
    -------
    ndarray of bool, shape (p,)

    Examples
    --------
    >>> import numpy as np
    >>> separated_params(np.array([[0.0, 1.0], [1.0, 0.0]]), 1).tolist()
    [True, False]
    """
    null = np.abs(transform[:, rank:])
    if null.size == 0:
        return np.zeros(transform.shape[0], dtype=bool)
    return null.max(axis=1) > 1e-8 * null.max()
