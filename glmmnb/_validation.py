"""Input checks: every bad input ends here in a clear message.

The numerical modules assume clean arrays; the model calls these functions
once, before any fitting, so that the checks live in one place and every
message names the offending input, the rows, and what to do.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from statsmodels.tools.sm_exceptions import MissingDataError

__all__ = [
    "describe_rows", "missing_mask", "check_counts", "check_design",
    "check_offset", "check_theta", "check_groups",
]

_MISSING_OPTIONS = ("none", "drop", "raise")


def describe_rows(mask, index=None, limit=5):
    """Human-readable list of the first offending rows (labels if known)."""
    rows = np.flatnonzero(mask)
    labels = rows if index is None else np.asarray(index)[rows]
    shown = ", ".join(str(x) for x in labels[:limit])
    more = f" and {len(rows) - limit} more" if len(rows) > limit else ""
    return f"{len(rows)} row(s) ({shown}{more})"


def _isnull(values):
    values = np.asarray(values)
    if values.dtype.kind in "fc":
        out = np.isnan(values)
    else:
        out = pd.isnull(values)
    return out.reshape(len(values), -1).any(axis=1) if values.ndim > 1 else out


def missing_mask(arrays, missing, index=None):
    """Rows to keep after applying the ``missing`` policy.

    Parameters
    ----------
    arrays : dict of str -> array_like or None
        Every per-row input, by the name the user knows it by.
    missing : {"none", "drop", "raise"}
        ``"drop"`` drops rows with a missing value anywhere; ``"none"`` and
        ``"raise"`` raise :class:`MissingDataError` (a NaN is never silently
        carried into the fit).
    index : array_like, optional
        Row labels for the message.

    Returns
    -------
    ndarray of bool or None
        ``None`` when nothing is missing.
    """
    if missing not in _MISSING_OPTIONS:
        raise ValueError(f"missing must be one of {_MISSING_OPTIONS}, got {missing!r}")
    bad = None
    for name, values in arrays.items():
        if values is None:
            continue
        null = _isnull(values)
        if not null.any():
            continue
        if missing != "drop":
            raise MissingDataError(
                f"{name} has missing values in {describe_rows(null, index)}; "
                'fill or remove them, or pass missing="drop" to drop those rows')
        bad = null if bad is None else bad | null
    return None if bad is None else ~bad


def check_counts(y, name="endog", index=None):
    """Counts must be finite and non-negative, and not all zero.

    Non-integer values are allowed (quasi-likelihood is defined for them, as
    in R's ``glm``) but raise a warning, since count data should not have them.
    """
    y = np.asarray(y, dtype=float)
    if y.size == 0:
        raise ValueError("there are no observations to fit (the data are empty)")
    bad = ~np.isfinite(y)
    if bad.any():
        raise ValueError(f"{name} has infinite values in {describe_rows(bad, index)}; "
                         "counts must be finite")
    neg = y < 0
    if neg.any():
        raise ValueError(f"{name} has negative values in {describe_rows(neg, index)}; "
                         "a negative-binomial response must be counts >= 0")
    frac = y != np.round(y)
    if frac.any():
        warnings.warn(f"{name} has non-integer values in {describe_rows(frac, index)}; "
                      "the fit treats them as quasi-likelihood counts, as R's glm does",
                      UserWarning, stacklevel=3)
    if not y.any():
        raise ValueError(f"{name} is zero in every row; there is nothing to model")
    return y


def check_design(X, names):
    """Fixed effects must be finite and of full column rank."""
    X = np.asarray(X, dtype=float)
    bad = ~np.isfinite(X)
    if bad.any():
        col = names[int(np.flatnonzero(bad.any(axis=0))[0])]
        raise ValueError(f"exog column {col!r} has infinite values in "
                         f"{describe_rows(bad.any(axis=1))}")
    if X.shape[1] == 0:
        return X
    _, r, piv = _qr_pivot(X)
    tol = np.abs(r[0, 0]) * max(X.shape) * np.finfo(float).eps if r.size else 0.0
    rank = int(np.sum(np.abs(np.diag(r)) > tol))
    if rank < X.shape[1]:
        aliased = [names[j] for j in piv[rank:]]
        raise ValueError(
            f"the fixed effects are collinear (rank {rank} < {X.shape[1]} columns); "
            f"aliased column(s): {', '.join(map(repr, aliased))}. Drop them from the formula")
    return X


def _qr_pivot(X):
    from scipy.linalg import qr

    return qr(X, mode="economic", pivoting=True)


def check_offset(offset, exposure, nobs, index=None):
    """Combine ``offset`` and ``log(exposure)``; both must be finite and exposure > 0."""
    total = np.zeros(nobs)
    for name, values in (("offset", offset), ("exposure", exposure)):
        if values is None:
            continue
        values = np.asarray(values, dtype=float).reshape(-1)
        if values.shape[0] != nobs:
            raise ValueError(f"{name} has {values.shape[0]} rows but the data have {nobs}")
        bad = ~np.isfinite(values)
        if bad.any():
            raise ValueError(f"{name} has infinite values in {describe_rows(bad, index)}")
        if name == "exposure":
            bad = values <= 0
            if bad.any():
                raise ValueError(f"exposure must be > 0; it is not in {describe_rows(bad, index)}")
            values = np.log(values)
        total += values
    return total


def check_theta(theta):
    """``None`` (estimate), a positive float, or ``inf`` (the Poisson limit)."""
    if theta is None:
        return None
    try:
        theta = float(theta)
    except (TypeError, ValueError):
        raise TypeError(f"theta must be None or a positive number, got {theta!r}") from None
    if not theta > 0:
        raise ValueError(f"theta must be > 0 (or None to estimate it), got {theta!r}; "
                         "theta = inf gives the Poisson limit")
    return theta


def check_groups(groups, nobs, name="groups"):
    """Group labels: one per row."""
    if groups is None:
        raise ValueError(f"{name} is required: the column or array of group labels")
    groups = np.asarray(groups)
    if groups.ndim != 1:
        groups = groups.reshape(len(groups), -1)
        if groups.shape[1] != 1:
            raise ValueError(f"{name} must be one column of labels")
        groups = groups[:, 0]
    if groups.shape[0] != nobs:
        raise ValueError(f"{name} has {groups.shape[0]} labels but the data have {nobs} rows")
    return groups
