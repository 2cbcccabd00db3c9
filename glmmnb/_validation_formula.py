"""Checks of ``from_formula``'s arguments: the formula, the data and per-row inputs.

Everything that ``NegBinMixedGLM.from_formula`` is given is checked here
before a formula is evaluated, so that a wrong argument gets a message that
says how to write it, not a patsy traceback.  The checks of the arrays they
turn into live in :mod:`glmmnb._validation`.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from . import _formula
from ._validation import check_model_kwargs, describe_rows

__all__ = [
    "check_formula_args", "check_formula_call", "check_no_bars", "reject_crossed",
    "resolve_input", "subset_positions", "check_response_columns", "check_factor_levels",
]

_SUPPORTED = (
    "supported structures are one grouping factor with a random intercept or "
    "correlated random coefficients (re_formula, R: ~ x | g) and random "
    "intercepts nested in it (vc_formula={'b': '0 + C(b)'}, R: ~ 1 | g/b)")


def check_formula_args(formula, data, re_formula, vc_formula):
    """Types and shape of the formula arguments, before any formula is evaluated."""
    if not isinstance(formula, str):
        raise TypeError(f"formula must be a string such as 'counts ~ RNAi', got "
                        f"{type(formula).__name__} {formula!r}")
    if "~" not in formula or not formula.split("~", 1)[0].strip():
        raise ValueError(f"formula {formula!r} needs the response on the left of '~', "
                         "e.g. 'counts ~ RNAi'")
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"data must be a pandas DataFrame, got {type(data).__name__}; "
                        "convert it first, e.g. pandas.DataFrame(data)")
    if re_formula is not None and not isinstance(re_formula, str):
        raise TypeError(f"re_formula must be a string such as '~area', got {re_formula!r}")
    if vc_formula is not None and not (isinstance(vc_formula, dict) and all(
            isinstance(k, str) and isinstance(v, str) for k, v in vc_formula.items())):
        raise TypeError(f"vc_formula must be a dict of name -> formula, e.g. "
                        f"{{'field': '0 + C(field)'}}; got {vc_formula!r}")


_BAR = r"\(\s*([^()|]*?)\s*\|\s*([^()]*?)\s*\)"


def check_formula_call(formula, data, groups, re_formula, vc_formula, kwargs):
    """Every check of ``from_formula``'s arguments that needs no formula evaluated."""
    check_formula_args(formula, data, re_formula, vc_formula)
    check_no_bars(formula, re_formula, _formula.bar_terms(formula),
                  _formula.bar_terms(re_formula) if re_formula else [])
    check_model_kwargs(kwargs)
    reject_crossed(groups, data.columns)


def check_no_bars(formula, re_formula, bars, re_bars):
    """lme4's ``(x | g)`` syntax: say how to write it here instead of a patsy error.

    Parameters
    ----------
    formula, re_formula : str or None
        As passed to ``from_formula``.
    bars, re_bars : list of (str, str)
        The ``lhs | rhs`` factors found in each (:func:`glmmnb._formula.bar_terms`).
    """
    if re_bars:
        lhs, rhs = re_bars[0]
        raise ValueError(f"re_formula={re_formula!r} uses lme4's '|': re_formula takes only the "
                         f"random coefficients and the grouping goes in groups=; write "
                         f"re_formula='~{lhs}', groups={rhs!r}")
    if not bars:
        return
    written = re.findall(_BAR, formula)
    if not written:
        raise ValueError(f"formula {formula!r} uses '|', which has no meaning in the "
                         "fixed-effects formula; give the random part with groups= (and "
                         f"re_formula= for random slopes), e.g. groups={bars[0][1]!r}")
    fixed = re.sub(r"\+?\s*" + _BAR, "", formula).strip()
    fixed = re.sub(r"~\s*$", "~ 1", re.sub(r"\s*\+\s*$", "", fixed))
    lhs, rhs = written[0]
    outer, *nested = [p.strip() for p in rhs.split("/")]
    advice = f"from_formula({fixed!r}, data, groups={outer!r}"
    if lhs.strip() != "1":
        advice += f", re_formula='~{lhs.strip()}'"
    if nested:
        advice += ", vc_formula={" + ", ".join(f"{b!r}: '0 + C({b})'" for b in nested) + "}"
    advice += ")"
    extra = "; several (x | g) terms would be crossed random effects, which are not supported" \
        if len(written) > 1 else ""
    raise ValueError(f"formula {formula!r} uses lme4's (x | g) syntax, which the fixed-effects "
                     f"formula cannot hold: give the random part with groups=, re_formula= "
                     f"and vc_formula=, e.g. {advice}{extra}")


def reject_crossed(groups, columns):
    """Several grouping columns would be crossed random effects, which PQL here does not fit."""
    several = (isinstance(groups, pd.DataFrame) and groups.shape[1] > 1) or (
        isinstance(groups, (list, tuple)) and 1 < len(groups) < len(columns) + 1
        and all(isinstance(g, str) and g in columns for g in groups))
    if several:
        names = list(groups.columns) if isinstance(groups, pd.DataFrame) else list(groups)
        raise NotImplementedError(
            f"groups={names!r} asks for crossed random effects, which are not "
            f"supported; {_SUPPORTED}. For nested factors pass the outermost as groups "
            "and the others in vc_formula")


def resolve_input(data, value, what, numeric=False):
    """A per-row input of ``from_formula`` as a Series on ``data``'s index, or None.

    ``value`` is a column name, a pandas Series or one-column DataFrame
    (aligned on ``data``'s index, never used by position), or an array of
    one value per row (used in row order).
    """
    if value is None:
        return None
    if isinstance(value, (list, tuple)) and len(value) == 1 and isinstance(value[0], str) \
            and value[0] in data.columns:
        raise TypeError(f"{what}={list(value)!r} is a list; pass the column name itself, "
                        f"{what}={value[0]!r}")
    if np.ndim(value) == 0:
        out = _column(data, value, what)
    elif isinstance(value, (pd.Series, pd.DataFrame)):
        out = _aligned(value, data.index, what)
    else:
        out = pd.Series(_one_column(np.asarray(value), what, len(data)), index=data.index)
    if numeric and np.asarray(out).dtype.kind not in "biuf":
        name = f"column {value!r} has" if isinstance(value, str) else "values have"
        raise TypeError(f"{what} must be numeric, but the {name} dtype {out.dtype}; "
                        f"{what} is on the log scale (pass a numeric column)")
    return out


def _column(data, name, what):
    hashable = isinstance(name, (str, int, float, np.number)) and not isinstance(name, bool)
    if hashable and name in data.columns:
        col = data[name]
        if isinstance(col, pd.DataFrame):
            raise ValueError(f"{what} column {name!r} appears {col.shape[1]} times in the data")
        return col
    if isinstance(name, str):
        raise KeyError(f"{what} column {name!r} is not in the data; "
                       f"columns are {list(data.columns)}")
    raise TypeError(f"{what} must be a column name or one value per row, got the scalar "
                    f"{name!r}, which is not a column of the data")


def _aligned(values, index, what):
    """A Series (or one-column DataFrame) put in ``index`` order by its labels."""
    if isinstance(values, pd.DataFrame):
        if values.shape[1] != 1:
            raise ValueError(f"{what} must be one column, got a DataFrame with columns "
                             f"{list(values.columns)}")
        values = values.iloc[:, 0]
    if values.index.equals(index):
        return pd.Series(values.to_numpy(), index=index, name=values.name)
    if values.index.is_unique and index.is_unique and index.isin(values.index).all():
        return pd.Series(values.reindex(index).to_numpy(), index=index, name=values.name)
    missing = ~index.isin(values.index)
    why = (f"it has no value for {describe_rows(missing, index)} of the data" if missing.any()
           else "an index with duplicated labels cannot be matched to the rows")
    raise ValueError(f"{what} is a pandas Series whose index does not match the data's, and "
                     f"{why}; pass a Series indexed like the data, or .to_numpy() to use the "
                     "values in row order")


def _one_column(values, what, nobs):
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.ndim != 1:
        raise ValueError(f"{what} must be one value per row, got an array of shape "
                         f"{values.shape}" + ("; crossed grouping factors are not supported"
                                              if what == "groups" else ""))
    if values.shape[0] != nobs:
        raise ValueError(f"{what} has {values.shape[0]} rows but the data have {nobs}")
    return values


def subset_positions(data, subset):
    """Row positions of ``data`` that ``subset`` selects (a boolean mask or row labels).

    Positions, not labels, so that a duplicated index selects each row once.
    """
    if isinstance(subset, pd.Series) and subset.dtype == bool:
        if not subset.index.equals(data.index):
            subset = _aligned(subset, data.index, "subset")
        return np.flatnonzero(subset.to_numpy())
    mask = np.asarray(subset)
    if mask.dtype == bool:
        if mask.shape != (len(data),):
            raise ValueError(f"subset is a boolean mask of shape {mask.shape} but the data "
                             f"have {len(data)} rows")
        return np.flatnonzero(mask)
    positions = pd.Series(np.arange(len(data)), index=data.index)
    try:
        return np.asarray(positions.loc[subset]).reshape(-1)
    except KeyError:
        labels = pd.Index(np.atleast_1d(np.asarray(subset, dtype=object)))
        absent = labels[~labels.isin(data.index)].tolist()
        raise KeyError(f"subset has labels that are not in the data's index: {absent[:5]}; "
                       "pass row labels of the data or a boolean mask") from None


def check_response_columns(data, columns):
    """Columns on the left of ``~`` must be numeric (patsy would expand strings into dummies)."""
    for c in columns:
        kind = data[c].dtype.kind
        if kind == "b":
            raise ValueError(f"the response column {c!r} is boolean (True/False); counts must be "
                             f"numbers >= 0 (use data[{c!r}].astype(int) if they mean 1/0)")
        if kind not in "iuf":
            raise ValueError(f"the response column {c!r} is non-numeric (dtype "
                             f"{data[c].dtype}); counts must be numbers >= 0: convert it, "
                             f"e.g. pandas.to_numeric(data[{c!r}])")


def check_factor_levels(data, columns):
    """A factor of the fixed part needs two levels among the rows fitted, as in R.

    patsy would silently give a one-level factor no column; R stops with
    "contrasts can be applied only to factors with 2 or more levels".
    """
    for c in columns:
        values = data[c].dropna()
        if len(values) and not (values != values.iloc[0]).any():
            raise ValueError(f"column {c!r} has a single level ([{values.iloc[0]!r}]) in the rows "
                             "fitted, so it has no effect to estimate (R: contrasts can be "
                             "applied only to factors with 2 or more levels); remove it from "
                             "the formula or fit rows with more levels")
