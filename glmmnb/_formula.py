"""The one place that touches formulas beyond statsmodels' public ``from_formula``.

statsmodels keeps its formula engine switch (patsy or formulaic) in the
private ``statsmodels.formula._manager``; we reach it only through this shim so
that a change there is a change here alone (the tested range of statsmodels
is pinned in ``pyproject.toml``).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
from statsmodels.formula._manager import FormulaManager

__all__ = ["referenced_columns", "re_design", "nested_labels", "constraint_matrix"]

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
_INDICATOR = re.compile(r"^\s*0\s*\+\s*C\(\s*([A-Za-z_][A-Za-z0-9_.]*)\s*\)\s*$")


def referenced_columns(data, *formulas):
    """Columns of ``data`` named in any of the formulas (for missing-value checks)."""
    names = set()
    for f in formulas:
        if f:
            names.update(_IDENT.findall(f))
    return [c for c in data.columns if isinstance(c, str) and c in names]


def re_design(re_formula, data, group_name, eval_env=None):
    """Random-effects design from ``re_formula`` (statsmodels' MixedLM convention).

    Returns the matrix and its column names, with ``Intercept`` renamed to the
    grouping column's name as MixedLM does.
    """
    mgr = FormulaManager()
    env = {} if eval_env is None else eval_env
    mat = mgr.get_matrices(re_formula, data, eval_env=env, pandas=True)
    names = [str(c).replace("Intercept", group_name) for c in mat.columns]
    return np.asarray(mat, dtype=float), names


def nested_labels(name, vc, data, eval_env=None):
    """Group labels of one nested variance component.

    Only random intercepts of a factor nested in the groups are supported,
    written ``"0 + C(col)"`` as in MixedLM (R: ``~ 1 | groups/col``).  The
    common form is read straight from the column so that thousands of slides
    never become thousands of indicator columns.
    """
    match = _INDICATOR.match(vc)
    if match and match.group(1) in data.columns:
        return np.asarray(data[match.group(1)])
    mgr = FormulaManager()
    env = {} if eval_env is None else eval_env
    mat = np.asarray(mgr.get_matrices(vc, data, eval_env=env, pandas=True), dtype=float)
    if not (np.isin(mat, (0.0, 1.0)).all() and (mat.sum(axis=1) == 1).all()):
        raise NotImplementedError(
            f"vc_formula[{name!r}] = {vc!r} is not supported: each variance component "
            "must be a random intercept of a factor nested in the groups, written "
            "'0 + C(column)' (R: ~ 1 | groups/column). Random slopes are supported "
            "for the groups through re_formula; crossed random effects are not supported")
    return np.asarray(pd.Index(mat.argmax(axis=1)))


def constraint_matrix(hypothesis, names):
    """Rows of the linear hypotheses, parsed as statsmodels' ``t_test`` parses them."""
    return np.atleast_2d(FormulaManager().get_linear_constraints(hypothesis, names).constraint_matrix)
