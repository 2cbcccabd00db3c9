"""The one place that touches formulas beyond statsmodels' public ``from_formula``.

statsmodels keeps its formula engine switch (patsy or formulaic) in the
private ``statsmodels.formula._manager``; we reach it only through this shim so
that a change there is a change here alone (the tested range of statsmodels
is pinned in ``pyproject.toml``).
"""

from __future__ import annotations

import ast
import re
import sys

import numpy as np
import pandas as pd
from patsy import EvalEnvironment, ModelDesc, PatsyError
from statsmodels.formula._manager import FormulaManager

__all__ = ["referenced_columns", "response_columns", "factor_columns", "bar_terms",
           "drop_unused_levels", "caller_env", "strings_as_categorical", "string_categorical",
           "re_design", "nested_labels", "constraint_matrix", "term_columns", "new_design",
           "categorical_levels"]

_INDICATOR = re.compile(r"^\s*0\s*\+\s*C\(\s*([A-Za-z_][A-Za-z0-9_.]*)\s*\)\s*$")


def _factor_codes(formula):
    """The Python expression of every factor of ``formula``, as patsy splits it."""
    try:
        desc = ModelDesc.from_formula(formula)
    except PatsyError as err:
        raise ValueError(f"cannot parse the formula {formula!r}: {err}".splitlines()[0]) from None
    return [f.code for t in desc.lhs_termlist + desc.rhs_termlist for f in t.factors]


def _names_in(code):
    """Variables an expression reads: its names, and the quoted names of ``Q("...")``."""
    try:
        tree = ast.parse(code, mode="eval")
    except SyntaxError:
        return set()
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            names.add(node.id)
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
              and node.func.id == "Q" and node.args
              and isinstance(node.args[0], ast.Constant)):
            names.add(node.args[0].value)
    return names


def referenced_columns(data, *formulas):
    """Columns of ``data`` that any of the formulas reads (for missing-value checks).

    The formulas are split into factors by patsy and each factor is read as
    the Python expression patsy evaluates, so ``Q("cell area")`` and
    non-ASCII names count as the columns they are.
    """
    names = set()
    for f in formulas:
        if f:
            for code in _factor_codes(f):
                names.update(_names_in(code))
    return [c for c in data.columns if c in names]


def response_columns(data, formula):
    """Columns of ``data`` read on the left of ``~``."""
    desc = ModelDesc.from_formula(formula)
    names = set()
    for term in desc.lhs_termlist:
        for factor in term.factors:
            names.update(_names_in(factor.code))
    return [c for c in data.columns if c in names]


def factor_columns(data, formula):
    """Non-numeric columns that the right of ``formula`` uses as factors: ``x``, ``C(x, ...)``."""
    desc = ModelDesc.from_formula(formula)
    names = set()
    for term in desc.rhs_termlist:
        for factor in term.factors:
            node = ast.parse(factor.code, mode="eval").body
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id == "C" and node.args):
                node = node.args[0]
            if isinstance(node, ast.Name):
                names.add(node.id)
    return [c for c in data.columns if c in names and data[c].dtype.kind not in "iufc"]


def bar_terms(formula):
    """Factors written ``a | b`` (lme4's random-effects syntax, which patsy cannot read)."""
    out = []
    for code in _factor_codes(formula):
        try:
            node = ast.parse(code, mode="eval").body
        except SyntaxError:
            continue
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
            out.append((ast.unparse(node.left), ast.unparse(node.right)))
    return out


def drop_unused_levels(data, columns):
    """``data`` with the categories that no row uses removed from its Categoricals.

    R's ``model.frame`` drops unused factor levels; patsy keeps every
    category, which would give an all-zero, aliased design column.  The
    frame is copied only when a column changes, so the caller's is untouched.
    """
    changed = {}
    for c in columns:
        col = data[c]
        if not isinstance(col.dtype, pd.CategoricalDtype):
            continue
        codes = col.cat.codes.to_numpy()
        used = np.bincount(codes[codes >= 0], minlength=len(col.cat.categories))
        if not used.all():
            changed[c] = col.cat.remove_unused_categories()
    if not changed:
        return data
    out = data.copy(deep=False)
    for c, col in changed.items():
        out[c] = col
    return out


def caller_env(eval_env, depth):
    """The namespace every formula of one model is evaluated in (fixed, re and vc parts).

    ``eval_env`` follows statsmodels: ``None`` or ``0`` for the caller's
    namespace (``depth`` frames above this function's caller), a positive
    int for that many frames further up, ``-1`` for an empty namespace, or
    a mapping / patsy ``EvalEnvironment`` used as it is.
    """
    if isinstance(eval_env, (EvalEnvironment, dict)):
        return eval_env
    if eval_env == -1:
        return {}
    frame = sys._getframe(depth + 1 + int(eval_env or 0))
    return {**frame.f_globals, **frame.f_locals}


def strings_as_categorical(data, columns):
    """A shallow copy of ``data`` with its string ``columns`` as pandas Categoricals.

    patsy codes a string column one value at a time in Python (a type sniff
    and a missing-value check per row, seconds at a million rows) but a
    Categorical in one vectorised step, and the missing-value checks read a
    Categorical's codes instead of a million Python strings.  The
    categories are the sorted distinct strings, which are the levels patsy
    picks for the strings themselves, so the design, its column names and
    the stored levels (used to predict on new data) are the same.  Only
    columns holding nothing but strings and missing values are converted (a
    missing value becomes a missing category code); the caller's frame is
    not modified.

    Examples
    --------
    >>> import pandas as pd
    >>> d = pd.DataFrame({"g": ["b", "a", None], "x": [1.0, 2.0, 3.0]})
    >>> out = strings_as_categorical(d, ["g", "x"])
    >>> out["g"].cat.categories.tolist(), out["g"].isna().tolist(), d["g"].dtype.kind
    (['a', 'b'], [False, False, True], 'O')
    """
    convert = [c for c in columns if _all_strings(data[c])]
    if not convert:
        return data
    out = data.copy(deep=False)
    for c in convert:
        out[c] = string_categorical(data[c])
    return out


def string_categorical(column):
    """``column`` (a Series) as a Categorical of its sorted strings, or unchanged.

    Examples
    --------
    >>> import pandas as pd
    >>> string_categorical(pd.Series(["s2", "s1", "s2"])).cat.codes.tolist()
    [1, 0, 1]
    """
    if column is None or not _all_strings(column):
        return column
    codes, uniques = factorize_strings(np.asarray(column, dtype=object))
    return pd.Series(pd.Categorical.from_codes(codes, categories=uniques),
                     index=column.index, name=column.name)


def factorize_strings(values):
    """Codes and sorted uniques of an object array of strings and missing values (code -1).

    pandas' string hash table reads the characters directly: 2.5 ms at 1e5
    rows against 6 ms for ``pd.factorize(values, sort=True)``, which hashes
    Python objects; the uniques are then sorted and the codes renumbered.
    The table is private to pandas, so without it (another pandas) this
    falls back to ``pd.factorize``, which gives the same codes.

    Examples
    --------
    >>> import numpy as np
    >>> codes, uniques = factorize_strings(np.array(["b", None, "a", "b"], dtype=object))
    >>> codes.tolist(), uniques.tolist()
    ([1, -1, 0, 1], ['a', 'b'])
    """
    try:
        from pandas._libs.hashtable import StringHashTable

        uniques, codes = StringHashTable(len(values)).factorize(values)
    except (ImportError, AttributeError, TypeError, ValueError):
        return pd.factorize(values, sort=True)
    order = np.argsort(uniques, kind="stable")
    rank = np.empty(len(order), dtype=np.intp)
    rank[order] = np.arange(len(order))
    return np.where(codes >= 0, rank[codes], -1), uniques[order]


def _all_strings(column):
    if isinstance(column.dtype, pd.CategoricalDtype) or column.dtype.kind not in "OTU":
        return False
    return pd.api.types.infer_dtype(column, skipna=True) == "string"


def re_design(re_formula, data, group_name, eval_env=None):
    """Random-effects design from ``re_formula`` (statsmodels' MixedLM convention).

    Returns the matrix and its column names, with ``Intercept`` renamed to the
    grouping column's name as MixedLM does.
    """
    mat = _evaluate(f"re_formula={re_formula!r}", re_formula, data, eval_env)
    if mat.shape[1] == 0:
        raise ValueError(f"re_formula={re_formula!r} has no columns, so the groups would have "
                         "no random effect; leave re_formula out for a random intercept, or "
                         "name the random coefficients, e.g. '~area'")
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
    mat = np.asarray(_evaluate(f"vc_formula[{name!r}]={vc!r}", vc, data, eval_env), dtype=float)
    if not (np.isin(mat, (0.0, 1.0)).all() and (mat.sum(axis=1) == 1).all()):
        raise NotImplementedError(
            f"vc_formula[{name!r}] = {vc!r} is not supported: each variance component "
            "must be a random intercept of a factor nested in the groups, written "
            "'0 + C(column)' (R: ~ 1 | groups/column). Random slopes are supported "
            "for the groups through re_formula; crossed random effects are not supported")
    return np.asarray(pd.Index(mat.argmax(axis=1)))


def _evaluate(what, formula, data, eval_env):
    """A one-sided formula's design, with patsy's errors reported against ``what``."""
    try:
        return FormulaManager().get_matrices(formula, data, eval_env=eval_env or {}, pandas=True)
    except PatsyError as err:
        raise ValueError(f"cannot evaluate {what}: {err}".splitlines()[0]) from None


def constraint_matrix(hypothesis, names):
    """Rows of the linear hypotheses, parsed as statsmodels' ``t_test`` parses them."""
    return np.atleast_2d(FormulaManager().get_linear_constraints(hypothesis, names).constraint_matrix)


def term_columns(model_spec, n_columns):
    """Each model term's name and column indices (one unnamed term per column without
    a formula)."""
    if model_spec is None:
        return [(None, [j]) for j in range(n_columns)]
    mgr = FormulaManager()
    out = []
    for term in model_spec.terms:
        cols = mgr.get_slice(model_spec, term)
        out.append((mgr.get_term_name(term), list(range(n_columns))[cols]))
    return out


def new_design(spec, data):
    """Fixed-effects design of new rows through a fitted formula's spec.

    Rows the formula engine drops for missing values come back as NaN rows,
    so the result has one row per row of ``data``, in its order.
    """
    mat = FormulaManager().get_matrices(spec, data, pandas=True, prediction=True)
    return mat.reindex(data.index)


def categorical_levels(spec):
    """Levels of each categorical factor that is a plain column, by column name.

    Only patsy records them on the spec; with another engine the mapping is
    empty and unknown levels are reported by the engine itself.
    """
    infos = getattr(spec, "factor_infos", None) or {}
    return {factor.name(): list(info.categories) for factor, info in infos.items()
            if info.type == "categorical" and factor.name().isidentifier()}
