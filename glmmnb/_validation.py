"""Input checks: every bad input ends here in a clear message.

The numerical modules assume clean arrays; the model calls these functions
once, before any fitting, so that the checks live in one place and every
message names the offending input, the rows, and what to do.  The checks of
``from_formula``'s own arguments (formula, data, per-row inputs) are in
:mod:`glmmnb._validation_formula`.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from statsmodels.tools.sm_exceptions import ConvergenceWarning, MissingDataError

__all__ = [
    "describe_rows", "missing_mask", "check_counts", "check_design",
    "check_offset", "check_theta", "check_groups", "check_exog_re",
    "check_fit_options", "check_grouping", "theta_ran_away", "check_ddf",
    "check_fit_finite", "check_fit_kwargs", "check_model_kwargs",
    "check_alpha", "check_level", "check_array_inputs", "exog_re_matrix",
    "check_ddf_method", "DDF_METHODS", "check_variance_hessian", "check_choice",
    "count_problems", "check_new_data", "check_new_design", "categorical_of",
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
    if isinstance(values, (pd.Series, pd.Index)) and not isinstance(
            values, pd.MultiIndex) and values.dtype.kind not in "fc":
        # pandas' own mask: a Categorical's codes or a string array's mask,
        # without converting a million labels to Python objects first
        return np.asarray(values.isna(), dtype=bool)
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
    kind = np.asarray(y).dtype.kind
    if kind == "b":
        raise ValueError(f"{name} is boolean (True/False); a count response must be numbers "
                         ">= 0 (convert it with .astype(int) if True/False mean 1/0)")
    if kind not in "iuf":
        raise ValueError(f"{name} is non-numeric (dtype {np.asarray(y).dtype}); a count "
                         "response must be numbers >= 0: convert it, e.g. with pd.to_numeric")
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
    if _clearly_full_rank(X):
        return X
    _, r, piv = _qr_pivot(X)
    tol = np.abs(r[0, 0]) * max(X.shape) * np.finfo(float).eps if r.size else 0.0
    rank = int(np.sum(np.abs(np.diag(r)) > tol))
    if rank < X.shape[1]:
        raise ValueError(_collinear_message(X, names, piv[rank:], rank))
    return X


GRAM_RCOND = 1e-8
"""Smallest ratio of the Gram matrix's eigenvalues taken as full rank without a QR."""


def _clearly_full_rank(X):
    """Whether the pivoted QR's rank rule would certainly find ``X`` of full column rank.

    Every diagonal element of QR's triangle is at least the smallest singular
    value of ``X`` and the first at most the largest, so a condition number
    below ``1 / sqrt(GRAM_RCOND)`` (read off ``X'X``, a p x p matrix: 0.1 ms
    at 1e5 rows against 0.6 ms for the QR) is far inside QR's tolerance of
    ``max(n, p) * eps``.  Anything less clear goes to the QR, which names
    the aliased columns.
    """
    eig = np.linalg.eigvalsh(X.T @ X)
    return bool(eig[-1] > 0 and eig[0] > GRAM_RCOND * eig[-1])


def _collinear_message(X, names, aliased, rank):
    """Say which columns are aliased and why, in the terms the user wrote them in."""
    shown = ", ".join(repr(names[j]) for j in aliased)
    if all(not X[:, j].any() for j in aliased):
        why = ("zero in every row: a level, or combination of levels, that no row has (an "
               "interaction cell without data, or levels= naming an absent level); remove "
               "the term or that level")
    else:
        kept = [j for j in range(X.shape[1]) if j not in set(aliased)]
        coef = np.linalg.lstsq(X[:, kept], X[:, aliased[0]], rcond=None)[0]
        used = [repr(names[kept[i]]) for i in np.flatnonzero(
            np.abs(coef) > 1e-8 * max(np.abs(coef).max(), 1e-300))]
        why = (f"{names[aliased[0]]!r} being a linear combination of {', '.join(used)} (a "
               "covariate that is constant, duplicates another or is determined by a factor "
               "in the model); remove one of the terms involved (R's glmmPQL cannot fit "
               "this design either)")
    return (f"the fixed effects are collinear (rank {rank} < {X.shape[1]} columns); "
            f"aliased column(s): {shown}, {why}")


def _qr_pivot(X):
    from scipy.linalg import qr

    return qr(X, mode="economic", pivoting=True)


def check_offset(offset, exposure, nobs, index=None):
    """Combine ``offset`` and ``log(exposure)``; both must be finite and exposure > 0."""
    total = np.zeros(nobs)
    for name, values in (("offset", offset), ("exposure", exposure)):
        if values is None:
            continue
        values = np.asarray(values)
        if values.dtype.kind not in "biuf":
            raise TypeError(f"{name} must be numeric, got dtype {values.dtype}")
        if values.ndim > 1 and values.shape[1:] != (1,):
            raise ValueError(f"{name} must be one value per row, got shape {values.shape}")
        values = values.astype(float).reshape(-1)
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
    if isinstance(theta, (bool, np.bool_, str, bytes)):
        raise TypeError(f"theta must be None or a positive number, got "
                        f"{type(theta).__name__} {theta!r}")
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
    labels, groups = groups, np.asarray(groups)
    if groups.ndim != 1:
        groups = groups.reshape(len(groups), -1)
        if groups.shape[1] != 1:
            raise ValueError(f"{name} must be one column of labels, got shape "
                             f"{np.shape(groups)}; crossed grouping factors are not supported")
        groups = groups[:, 0]
    if groups.shape[0] != nobs:
        raise ValueError(f"{name} has {groups.shape[0]} labels but the data have {nobs} rows")
    kinds = _label_kinds(_used_labels(labels, groups)) if groups.dtype == object else []
    if len(kinds) > 1:
        # Mixed labels (e.g. 1 and "1") cannot be sorted like an R factor and
        # could silently merge or split groups; make the caller choose.
        raise TypeError(f"{name} mixes label types ({', '.join(kinds)}); convert the labels "
                        "to one type, e.g. .astype(str)")
    return groups


def categorical_of(values):
    """``values`` as a pandas Categorical if it holds one (a Series or an array), else None."""
    if not isinstance(getattr(values, "dtype", None), pd.CategoricalDtype):
        return None
    return values.array if isinstance(values, pd.Series) else pd.Categorical(values)


def _used_labels(given, labels):
    """The labels whose kinds are checked: a Categorical's used categories, else every label.

    A Categorical holds each distinct label once, so its kinds are read from
    a few thousand categories instead of a million rows.
    """
    cat = categorical_of(given)
    if cat is None:
        return labels
    codes = np.asarray(cat.codes)
    used = np.bincount(codes[codes >= 0], minlength=len(cat.categories)) > 0
    return np.asarray(cat.categories, dtype=object)[used]


_ONE_KIND = {"string": ["str"], "empty": [], "integer": ["number"], "floating": ["number"],
             "mixed-integer-float": ["number"], "boolean": ["number"], "decimal": ["number"]}


def _label_kinds(labels):
    """Sorted kinds of the labels in an object array, without a Python loop over rows.

    pandas' C type inference settles the common one-kind arrays; the rest
    are rare mixtures, whose kinds are read from their distinct values.
    """
    kinds = _ONE_KIND.get(pd.api.types.infer_dtype(labels, skipna=False))
    if kinds is not None:
        return kinds
    try:
        values = pd.unique(labels)
    except TypeError:
        values = labels
    return sorted({_label_kind(g) for g in values})


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
    for name, value in (("maxiter", maxiter), ("tol", tol)):
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
            raise TypeError(f"{name} must be a number, got {type(value).__name__} {value!r}")
    if not float(maxiter).is_integer() or maxiter < 1:
        raise ValueError(f"maxiter must be an integer >= 1 (the number of PQL iterations), "
                         f"got {maxiter!r}")
    if not (np.isfinite(tol) and tol > 0):
        raise ValueError(f"tol must be a positive finite number (R uses 1e-6), got {tol!r}")
    return int(maxiter), float(tol)


DDF_METHODS = ("nlme", "satterthwaite", "residual")


def check_ddf_method(ddf):
    """``ddf`` one of :data:`DDF_METHODS` (case-insensitive)."""
    method = ddf.lower() if isinstance(ddf, str) else ddf
    if method not in DDF_METHODS:
        raise ValueError(f"ddf must be one of {', '.join(map(repr, DDF_METHODS))} "
                         f"(R: glmmPQL's nlme rule, lmerTest's Satterthwaite, N - p), "
                         f"got {ddf!r}")
    return method


def check_choice(value, choices, name, hint):
    """``value`` one of ``choices`` (an option spelt as R spells it)."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))} ({hint}), "
                         f"got {value!r}")
    return value


def check_variance_hessian(eigenvalues, tol=1e-8):
    """Warn, as lmerTest does, when the deviance Hessian of the variance parameters
    has a negative eigenvalue: Satterthwaite's df then leave that direction out."""
    neg = np.asarray(eigenvalues)[np.asarray(eigenvalues) < -tol]
    if neg.size:
        warnings.warn(f"Satterthwaite df: the Hessian of the deviance in the variance "
                      f"parameters has {neg.size} negative eigenvalue(s) "
                      f"({', '.join(f'{v:.1e}' for v in neg)}), so they are not at a "
                      "minimum; the df leave that direction out and may be off",
                      ConvergenceWarning, stacklevel=3)


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


# --- arguments of the model, from_formula and fit ----------------------------

_UNSUPPORTED = {
    "weights": "prior weights are not supported (R's glmmPQL takes weights=; glmmnb fits "
               "every row with weight 1, so it would give an unweighted answer)",
    "freq_weights": "frequency weights are not supported; repeat the rows instead",
    "var_weights": "variance weights are not supported",
    "family": "the family is fixed: negative binomial with a log link (theta= sets or "
              "estimates its shape; theta=numpy.inf is the Poisson limit)",
    "link": "the link is fixed: log",
}

_FIT_UNSUPPORTED = {
    "cov_type": "robust (sandwich) covariances are not supported; the standard errors "
                "are model-based, as in R's glmmPQL",
    "cov_kwds": "robust (sandwich) covariances are not supported",
    "reml": "PQL fits the working model by ML, as glmmPQL does; REML is not an option",
    "method": "the only fitting method is PQL (R's glmmPQL)",
}


MODEL_KWARGS = ("missing_idx", "formula", "model_spec", "hasconst")
"""Keywords statsmodels' ``from_formula`` passes on to the model constructor."""


def check_model_kwargs(kwargs, allowed=MODEL_KWARGS):
    """Refuse keywords the model would otherwise ignore (e.g. ``weights=``).

    A silently unweighted fit of weighted data is a wrong answer, so these
    are errors, not statsmodels' "unknown kwargs" warning.
    """
    for key in kwargs:
        if key in _UNSUPPORTED:
            raise NotImplementedError(f"{key}= is not supported: {_UNSUPPORTED[key]}")
    unknown = [k for k in kwargs if k not in allowed]
    if unknown:
        raise TypeError(f"unexpected keyword argument(s) {', '.join(map(repr, unknown))}; the "
                        "model takes endog, exog, groups, exog_re, vc_groups, offset, "
                        "exposure, theta and missing")


def check_fit_kwargs(kwargs):
    """Refuse ``fit`` keywords that would change the answer if they were honoured."""
    for key in kwargs:
        if key in _FIT_UNSUPPORTED:
            raise NotImplementedError(f"fit({key}=...) is not supported: {_FIT_UNSUPPORTED[key]}")
    if kwargs:
        raise TypeError(f"fit() got unexpected keyword argument(s) "
                        f"{', '.join(map(repr, kwargs))}; it takes maxiter, tol and ddf")


def check_alpha(alpha):
    """``alpha`` of a confidence interval: a number strictly between 0 and 1."""
    if isinstance(alpha, (bool, np.bool_)) or not isinstance(alpha, (int, float, np.number)):
        raise TypeError(f"alpha must be a number between 0 and 1 (0.05 for 95% intervals), "
                        f"got {alpha!r}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be between 0 and 1 (0.05 for 95% intervals), got {alpha!r}")
    return float(alpha)


def check_level(level, vc_names):
    """``level`` of ``ranef``: ``None`` (the groups) or one of the nested components."""
    if level is not None and level not in vc_names:
        raise ValueError(f"level must be None (the groups) or one of the nested components "
                         f"{list(vc_names)}, got {level!r}")
    return level


def check_array_inputs(endog, exog, vc_groups=None):
    """The response and design of the array interface: one column of counts, numeric exog."""
    if vc_groups is not None and not isinstance(vc_groups, dict):
        raise TypeError(f"vc_groups must be a dict of name -> group labels, got "
                        f"{type(vc_groups).__name__}")
    if exog is None:
        raise ValueError("exog is required: the fixed-effects design, e.g. "
                         "numpy.ones((nobs, 1)) for an intercept only")
    if np.ndim(endog) > 1 and np.shape(endog)[1:] != (1,):
        raise ValueError(f"endog must be one column of counts, got shape {np.shape(endog)}; "
                         "fit one response at a time")
    if np.ndim(exog) > 2:
        raise ValueError(f"exog must be an (nobs, p) matrix, got shape {np.shape(exog)}")
    kind = np.asarray(exog).dtype.kind
    if kind not in "biuf":
        raise TypeError(f"exog must be numeric, got dtype {np.asarray(exog).dtype}; encode "
                        "categorical variables (or use from_formula, which does)")
    names = list(exog.columns) if isinstance(exog, pd.DataFrame) else None
    X = np.asarray(exog, dtype=float)
    X = X.reshape(len(X), -1)
    names = names or list(range(X.shape[1]))
    index = getattr(exog, "index", None)
    inf = np.isinf(X)
    if inf.any():
        col = names[int(np.flatnonzero(inf.any(axis=0))[0])]
        raise ValueError(f"exog column {col!r} has non-finite values (inf, e.g. from log(0)) "
                         f"in {describe_rows(inf.any(axis=1), index)}; remove those rows or "
                         "change the transform")


def exog_re_matrix(exog_re, nobs):
    """``exog_re`` as an (nobs, q) matrix: a vector is one column; more than 2-D is an error."""
    Z = np.asarray(exog_re)
    if Z.ndim > 2:
        raise ValueError(f"exog_re must be a vector or an (nobs, q) matrix, got shape "
                         f"{Z.shape}; give one column per random coefficient")
    if Z.dtype.kind not in "biuf":
        raise TypeError(f"exog_re must be numeric, got dtype {Z.dtype}")
    return Z.astype(float).reshape(nobs, -1)


def count_problems(Y, codes, n_groups):
    """The checks of :func:`check_counts` and :func:`check_grouping` for many responses.

    Parameters
    ----------
    Y : ndarray, shape (F, nobs)
        Counts, one feature per row.
    codes : ndarray of int, shape (nobs,)
        Group of every row.
    n_groups : int
        Number of groups.

    Returns
    -------
    errors : list of str or None
        Why a feature cannot be fitted (``None`` if it can).
    warnings : list of list of str
        What deserves care in each feature that can.

    Examples
    --------
    >>> import numpy as np
    >>> err, warn = count_problems(np.array([[0.0, 0.0], [1.0, 2.5]]), np.array([0, 1]), 2)
    >>> err[0]
    'the counts are zero in every row; there is nothing to model'
    >>> err[1], len(warn[1])
    (None, 1)
    """
    F = Y.shape[0]
    errors, warns = [None] * F, [[] for _ in range(F)]
    finite = np.isfinite(Y)
    # the common case, every value finite, skips the NaN/inf masks and the copy
    if finite.all():
        clean, masks = Y, []
    else:
        clean = np.where(finite, Y, 0.0)
        masks = [(np.isnan(Y), "missing (NaN)"), (np.isinf(Y), "infinite")]
    masks.append((clean < 0, "negative"))
    flagged = [(m.any(axis=1), m, what) for m, what in masks]
    frac = (clean != np.trunc(clean)).sum(axis=1)
    nz = clean != 0
    nonzero = nz.any(axis=1)
    constant = np.all(clean == clean[:, :1], axis=1)
    # a group's total is 0 iff none of its counts is non-zero (negative counts are errors)
    hit = np.logical_or.reduceat(nz[:, np.argsort(codes, kind="stable")],
                                 np.searchsorted(np.sort(codes), np.arange(n_groups)), axis=1)
    zero_groups = n_groups - hit.sum(axis=1)
    for f in range(F):
        for any_row, mask, what in flagged:
            if any_row[f]:
                errors[f] = (f"the counts have {what} values in {describe_rows(mask[f])}; "
                             "counts must be finite and >= 0")
                break
        else:
            if not nonzero[f]:
                errors[f] = "the counts are zero in every row; there is nothing to model"
            elif constant[f]:
                errors[f] = (f"the counts are {clean[f, 0]:g} in every row; a constant "
                             "response has no variation for a count model to explain")
        if errors[f] is None:
            if frac[f]:
                warns[f].append(f"the counts have non-integer values in {frac[f]} row(s); the "
                                "fit treats them as quasi-likelihood counts, as R's glm does")
            if zero_groups[f]:
                warns[f].append(f"{zero_groups[f]} group(s) have a zero count in every row "
                                "(quasi-separation): their random effects are driven towards "
                                "-inf and PQL may converge slowly or not at all")
    return errors, warns


def check_new_data(data, columns, levels, missing="none"):
    """New rows for prediction: every column present, known levels, no missing values.

    Parameters
    ----------
    data : pandas.DataFrame
        The new rows.
    columns : list of str
        Columns the prediction needs (the fixed part's, plus offset,
        exposure or groups where they are used).
    levels : dict of str -> list
        Levels seen in the fit for each categorical column.
    missing : {"none", "drop", "raise"}
        The model's policy: ``"drop"`` returns the rows with a missing value
        (their predictions are NaN); otherwise they raise.

    Returns
    -------
    ndarray of bool or None
        Rows with a missing value (``missing="drop"`` only), or ``None``.
    """
    absent = [c for c in columns if c not in data.columns]
    if absent:
        raise ValueError(f"the new data lack the column(s) {absent} that the model uses; "
                         f"they have {list(data.columns)}")
    for col, known in levels.items():
        if col not in data.columns:
            continue
        values = data[col]
        unknown = pd.unique(values[values.notna() & ~values.isin(known)])
        if len(unknown):
            raise ValueError(f"column {col!r} of the new data has level(s) "
                             f"{[str(u) for u in unknown[:5]]} not seen in the fit; the fit "
                             f"knows {[str(k) for k in known]}")
    bad = np.zeros(len(data), dtype=bool)
    for col in columns:
        bad |= _isnull(data[col].to_numpy())
    if not bad.any():
        return None
    named = [c for c in columns if _isnull(data[c].to_numpy()).any()]
    where = f"{named} in {describe_rows(bad, data.index)}"
    if missing != "drop":
        raise MissingDataError(
            f"the new data have missing values in {where}; fill or remove those rows "
            "(or fit with missing=\"drop\" to get NaN for them)")
    warnings.warn(f"the new data have missing values in {where}; their predictions are NaN "
                  "(the model was fitted with missing=\"drop\")", UserWarning, stacklevel=4)
    return bad


def check_new_design(X, names, skip=None, index=None):
    """Design rows of new data must be finite (rows in ``skip`` are already known missing)."""
    bad = ~np.isfinite(X)
    if skip is not None:
        bad[skip] = False
    if bad.any():
        col = names[int(np.flatnonzero(bad.any(axis=0))[0])]
        raise ValueError(f"the design of the new data has non-finite values in column {col!r} "
                         f"(inf, or a transform such as log(0)) in "
                         f"{describe_rows(bad.any(axis=1), index)}; fix or remove those rows")
    return X
