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
    "check_offset", "check_theta", "check_groups", "check_exog_re",
    "check_fit_options", "check_grouping", "theta_ran_away", "check_ddf",
    "check_fit_finite", "check_fit_kwargs",
]

THETA_RUNAWAY = 1e-4
"""Largest ``max(mu) / theta`` (extra-Poisson share of the variance) that
counts as "no overdispersion": below it the NB and Poisson variances agree to
0.01 %, so a finite ML theta there is the numerical trace of a likelihood
that keeps rising towards the Poisson limit."""

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
    if values.size == 0:
        return np.zeros(len(values), dtype=bool)
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
        Every per-row input, by the name the user knows it by; the first is
        the response and sets the number of rows.
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

    Raises
    ------
    ValueError
        If there are no rows, the inputs differ in length, or dropping
        leaves no row.
    MissingDataError
        If a value is missing and ``missing`` is not ``"drop"``.
    """
    if missing not in _MISSING_OPTIONS:
        raise ValueError(f"missing must be one of {_MISSING_OPTIONS}, got {missing!r}")
    present = {k: v for k, v in arrays.items() if v is not None}
    nobs = _check_lengths(present)
    bad = np.zeros(nobs, dtype=bool)
    for name, values in present.items():
        null = _isnull(values)
        if null.any() and missing != "drop":
            raise MissingDataError(
                f"{name} has missing values in {describe_rows(null, index)}; "
                'fill or remove them, or pass missing="drop" to drop those rows')
        bad |= null
    if bad.all():
        raise ValueError(f"every one of the {nobs} rows has a missing value in at least one "
                         f"of {', '.join(present)}; no row is left to fit")
    return ~bad if bad.any() else None


def _check_lengths(arrays):
    """All per-row inputs must have the response's length (checked before masking)."""
    for name, v in arrays.items():
        if np.ndim(v) == 0:
            raise ValueError(f"{name} must have one value per row, got the scalar {v!r}")
    lengths = {name: len(v) for name, v in arrays.items()}
    names = list(lengths)
    nobs = lengths[names[0]] if names else 0
    if nobs <= 0:
        raise ValueError("there are no observations to fit (the data have 0 rows)")
    for name in names[1:]:
        if lengths[name] != nobs:
            raise ValueError(f"{name} has {lengths[name]} rows but {names[0]} has {nobs}; "
                             "every per-row input must have one value per observation")
    return nobs


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
    if np.all(y == y[0]):
        # Nothing varies: the working residuals are all zero and the variance
        # components are undefined (R's lme stops with "false convergence").
        raise ValueError(f"{name} is {y[0]:g} in every row; a constant response has no "
                         "variation for a count model to explain")
    return y


def check_design(X, names):
    """Fixed effects must be finite and of full column rank."""
    X = _finite_columns(X, names, "exog", "(inf or NaN, e.g. from a transform such as "
                        "log(0)) ", "remove those rows or change the transform")
    if X.shape[1] == 0:
        raise ValueError("the fixed-effects design has no columns; include an intercept "
                         "(e.g. 'counts ~ 1') or covariates")
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
            raise ValueError(f"{name} has infinite values in {describe_rows(bad, index)}; "
                             f"{name} must be finite (remove or correct those rows)")
        if name == "exposure":
            bad = values <= 0
            if bad.any():
                raise ValueError(f"exposure must be > 0 (it enters as log(exposure)); it is "
                                 f"not in {describe_rows(bad, index)}. Remove those rows")
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
    kinds = sorted({_label_kind(g) for g in groups}) if groups.dtype == object else []
    if len(kinds) > 1:
        # Mixed labels (e.g. 1 and "1") cannot be sorted like an R factor and
        # could silently merge or split groups; make the caller choose.
        raise TypeError(f"{name} mixes label types ({', '.join(kinds)}); convert the labels "
                        "to one type, e.g. .astype(str)")
    return groups


def _label_kind(label):
    if isinstance(label, str):
        return "str"
    if isinstance(label, (int, float, np.number)):
        return "number"
    return type(label).__name__


def check_exog_re(Z, names):
    """The random-effects design must be finite (a NaN would poison every group)."""
    return _finite_columns(Z, names, "exog_re", "", "remove or correct those rows")


def _finite_columns(A, names, what, detail, advice):
    """``A`` as floats, or an error naming its first non-finite column and the rows."""
    A = np.asarray(A, dtype=float)
    bad = ~np.isfinite(A)
    if bad.any():
        col = names[int(np.flatnonzero(bad.any(axis=0))[0])]
        raise ValueError(f"{what} column {col!r} has non-finite values {detail}in "
                         f"{describe_rows(bad.any(axis=1))}; {advice}")
    return A


def check_fit_options(maxiter, tol):
    """``maxiter`` a positive integer, ``tol`` a positive finite number."""
    if isinstance(maxiter, (bool, np.bool_)) or not float(maxiter).is_integer() or maxiter < 1:
        raise ValueError(f"maxiter must be an integer >= 1 (the number of PQL iterations), "
                         f"got {maxiter!r}")
    if not (np.isfinite(tol) and tol > 0):
        raise ValueError(f"tol must be a positive finite number (R uses 1e-6), got {tol!r}")
    return int(maxiter), float(tol)


def check_fit_kwargs(kwargs):
    """Warn about keywords ``fit`` does not use, so a misspelt option is not lost."""
    if kwargs:
        warnings.warn(f"fit() ignores the keyword(s) {', '.join(map(repr, kwargs))}; "
                      "it uses maxiter and tol only", UserWarning, stacklevel=3)


def check_grouping(y, codes, labels):
    """Warn about groupings that PQL can fit but not identify well.

    Parameters
    ----------
    y : ndarray
        Counts.
    codes : ndarray of int
        Group code of each row (outermost level).
    labels : ndarray
        Group label of each code.
    """
    n_groups = len(labels)
    sizes = np.bincount(codes, minlength=n_groups)
    if n_groups == 1:
        warnings.warn(f"groups has a single level ('{labels[0]}'): the between-group "
                      "variance cannot be estimated from one group and the random intercept "
                      "is confounded with the fixed intercept; use a GLM, or more groups",
                      UserWarning, stacklevel=4)
    elif np.all(sizes == 1):
        warnings.warn("every group has a single observation: the random intercept cannot be "
                      "separated from the residual, so its variance and the fit are not "
                      "identified; use groups with several rows each", UserWarning, stacklevel=4)
    totals = np.bincount(codes, weights=y, minlength=n_groups)
    zero = totals == 0
    if zero.any():
        shown = ", ".join(f"'{x}'" for x in labels[zero][:5])
        more = f" and {zero.sum() - 5} more" if zero.sum() > 5 else ""
        warnings.warn(f"{zero.sum()} group(s) ({shown}{more}) have a zero count in every row "
                      "(quasi-separation): their random effects are driven towards -inf and "
                      "PQL may converge slowly or not at all; check those groups, or drop "
                      "them if they carry no information", UserWarning, stacklevel=4)


def theta_ran_away(theta, mu):
    """Whether an ML theta says "no overdispersion" (the Poisson limit).

    Parameters
    ----------
    theta : float
        The ML estimate.
    mu : ndarray
        Fitted means of the GLM at that theta.

    Returns
    -------
    bool
        True when ``max(mu) / theta`` is below :data:`THETA_RUNAWAY`: the NB
        variance ``mu + mu^2 / theta`` is then Poisson's to 0.01 %, and the
        finite estimate only marks where the optimiser stopped climbing a
        likelihood that rises towards ``theta = inf`` (R's ``glm.nb`` warns
        "iteration limit reached" there).
    """
    return bool(np.isinf(theta) or np.max(mu) / theta < THETA_RUNAWAY)


def check_ddf(ddf, names):
    """Warn when a fixed effect has no denominator df (its p-value is NaN, as in R)."""
    zero = [str(n) for n, d in zip(names, np.asarray(ddf)) if d <= 0]
    if zero:
        warnings.warn(f"fixed effect(s) {', '.join(map(repr, zero))} have 0 denominator df: "
                      "they vary only between groups and there are no more groups than "
                      "between-group effects, so their p-values and confidence intervals "
                      "are NaN (as in R); more groups are needed to test them",
                      UserWarning, stacklevel=3)
    return zero


def check_fit_finite(params, bse, scale, names):
    """Stop rather than return NaN or infinite estimates from a broken-down fit."""
    bad = [str(n) for n, b, s in zip(names, np.asarray(params), np.asarray(bse))
           if not (np.isfinite(b) and np.isfinite(s))]
    if bad or not (np.isfinite(scale) and scale > 0):
        raise FloatingPointError(
            f"the fit broke down: residual variance {scale!r}, non-finite estimates or "
            f"standard errors for {bad or 'none'}. The fixed effects probably reproduce the "
            "response exactly (no residual variation) or the counts are too extreme; check "
            "the response and simplify the model")
