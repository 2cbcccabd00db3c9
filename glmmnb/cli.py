"""Command line: ``python -m glmmnb demo``, ``fit DATA.csv ...`` and ``fit-many DATA.csv ...``."""

from __future__ import annotations

import argparse
import json
import re
import sys
import warnings
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from .results import NegBinMixedGLMResults

__all__ = ["main", "build_parser", "results_to_dict"]

DEMO_INTRO = """\
The seed tutorial's microscopy data: foci per cell, 200 cells on 4 slides.
R: glmmPQL(counts ~ RNAi, random = ~1|slide,
           family = negative.binomial(theta = glm.nb(counts ~ RNAi)$theta))
"""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (``python -m glmmnb --help``).

    Returns
    -------
    argparse.ArgumentParser

    Examples
    --------
    >>> build_parser().parse_args(["demo"]).command
    'demo'
    """
    parser = argparse.ArgumentParser(
        prog="python -m glmmnb",
        description="Negative-binomial GLMMs by PQL (R's MASS::glmmPQL) for statsmodels.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("demo", help="fit the shipped microscopy data and print the summary")
    fit = sub.add_parser("fit", help="fit a CSV file", description=(
        "Fit a negative-binomial GLMM to a CSV file, e.g. "
        "python -m glmmnb fit cells.csv --formula 'counts ~ RNAi' --groups slide"))
    fit.add_argument("data", help="path of a CSV file with a header row")
    fit.add_argument("--formula", required=True, help="fixed part, e.g. 'counts ~ RNAi'")
    fit.add_argument("--groups", required=True, help="column of group labels (e.g. slide)")
    fit.add_argument("--re-formula", help="random slopes, e.g. '~area' (default: intercept)")
    fit.add_argument("--vc-formula", action="append", default=[], metavar="NAME[=FORMULA]",
                     help="a factor nested in the groups with its own random intercept "
                          "(R: ~ 1 | groups/NAME): a column name, or NAME='0 + C(col)'; "
                          "repeat for several")
    fit.add_argument("--exposure", help="column whose log is the offset")
    fit.add_argument("--offset", help="column added to the linear predictor")
    fit.add_argument("--theta", type=float, help="fix theta (default: ML of glm.nb)")
    fit.add_argument("--missing", choices=["none", "drop", "raise"], default="none",
                     help="missing values: drop the rows (drop) or stop (default)")
    fit.add_argument("--format", choices=["text", "json"], default="text",
                     help="text summary (default) or JSON")
    _add_fit_many(sub)
    return parser


def _add_fit_many(sub: argparse._SubParsersAction) -> None:
    """The ``fit-many`` subcommand: one model per feature column (:func:`glmmnb.fit_many`)."""
    cmd = sub.add_parser("fit-many", help="fit every feature column of a CSV file", description=(
        "Fit one negative-binomial GLMM per feature column, e.g. python -m glmmnb fit-many "
        "cells.csv --formula '~ condition' --groups donor --out results.csv"))
    cmd.add_argument("data", help="CSV file, one row per cell: covariates and feature columns")
    cmd.add_argument("--formula", required=True, help="right-hand side, e.g. '~ condition'")
    cmd.add_argument("--groups", required=True, help="column of group labels (e.g. donor)")
    cmd.add_argument("--features-from-column", metavar="COLUMN",
                     help="the features are this column and every column after it "
                          "(default: every numeric column the model does not use)")
    cmd.add_argument("--exposure", help="column whose log is the offset")
    cmd.add_argument("--offset", help="column added to the linear predictor")
    cmd.add_argument("--theta", type=float, help="fix theta (default: ML of glm.nb per feature)")
    cmd.add_argument("--n-jobs", type=int, default=1, help="parallel workers (joblib)")
    cmd.add_argument("--out", help="write the result table to this CSV (default: stdout)")


def _fit_many_csv(args: argparse.Namespace) -> pd.DataFrame:
    """Run ``fit-many``; the result table."""
    from .workflows.many import fit_many

    try:
        data = pd.read_csv(args.data)
    except (OSError, pd.errors.ParserError, UnicodeDecodeError) as err:
        raise _UsageError(f"cannot read {args.data!r}: {err}") from None
    used = [c for c in (args.groups, args.exposure, args.offset) if c]
    for col in used + ([args.features_from_column] if args.features_from_column else []):
        if col not in data.columns:
            raise _UsageError(f"column {col!r} is not in {args.data!r}; "
                              f"columns are {', '.join(map(str, data.columns))}")
    if args.features_from_column:
        features = list(data.columns[data.columns.get_loc(args.features_from_column):])
    else:
        named = set(re.findall(r"[A-Za-z_][A-Za-z0-9_.]*", args.formula)) | set(used)
        features = [c for c in data.columns
                    if c not in named and pd.api.types.is_numeric_dtype(data[c])]
    if not features:
        raise _UsageError("no feature columns found; name the first with --features-from-column")
    covariates = data.drop(columns=features)
    try:
        return fit_many(data[features], args.formula, data=covariates, groups=args.groups,
                        exposure=args.exposure, offset=args.offset, theta=args.theta,
                        n_jobs=args.n_jobs)
    except Exception as err:  # formula and validation errors: one line for the user
        raise _UsageError(f"{type(err).__name__}: {err}".splitlines()[0]) from None


def results_to_dict(res: NegBinMixedGLMResults) -> dict[str, Any]:
    """The numbers of a fit as plain JSON-ready Python objects.

    Parameters
    ----------
    res : NegBinMixedGLMResultsWrapper
        A fit.

    Returns
    -------
    dict

    Examples
    --------
    >>> from glmmnb import NegBinMixedGLM
    >>> from glmmnb.datasets import microscopy
    >>> res = NegBinMixedGLM.from_formula(
    ...     "counts ~ RNAi", microscopy.load_pandas().data, groups="slide").fit()
    >>> results_to_dict(res)["ddf"]
    {'Intercept': 196, 'RNAi[T.Target]': 2}
    """
    names = list(res.model.exog_names)

    def named(values: Any, cast: Any = float) -> dict[str, Any]:
        return {n: cast(v) for n, v in zip(names, np.asarray(values))}

    return _json_safe({
        "params": named(res.params), "bse": named(res.bse), "ddf": named(res.ddf, int),
        "tvalues": named(res.tvalues), "pvalues": named(res.pvalues),
        "theta": res.theta, "theta_source": res.theta_source,
        "scale": float(res.scale), "resid_sd": float(np.sqrt(res.scale)),
        "cov_re": np.asarray(res.cov_re).tolist(), "cov_re_names": list(res.model.exog_re_names),
        "nobs": int(res.nobs), "n_groups": int(res.n_groups),
        "n_iter": int(res.n_iter), "converged": bool(res.converged),
    })


def _json_safe(value: Any) -> Any:
    """NaN and infinities as ``null``: JSON has no literal for them (``NaN`` is invalid)."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def _vc_formula(specs: Sequence[str]) -> dict[str, str] | None:
    """``--vc-formula`` values as from_formula's dict: ``col`` or ``name=formula``."""
    out = {}
    for spec in specs:
        name, sep, formula = spec.partition("=")
        name = name.strip()
        if not name:
            raise _UsageError(f"--vc-formula {spec!r} has no name; write NAME or NAME=FORMULA")
        out[name] = formula.strip() if sep else f"0 + C({name})"
    return out or None


def _fit_csv(args: argparse.Namespace) -> NegBinMixedGLMResults:
    from .model import NegBinMixedGLM

    try:
        data = pd.read_csv(args.data)
    except (OSError, pd.errors.ParserError, UnicodeDecodeError) as err:
        raise _UsageError(f"cannot read {args.data!r}: {err}") from None
    for col in filter(None, [args.groups, args.exposure, args.offset]):
        if col not in data.columns:
            raise _UsageError(f"column {col!r} is not in {args.data!r}; "
                              f"columns are {', '.join(map(str, data.columns))}")
    vc_formula = _vc_formula(args.vc_formula)
    try:
        model = NegBinMixedGLM.from_formula(
            args.formula, data, groups=args.groups, re_formula=args.re_formula,
            vc_formula=vc_formula, exposure=args.exposure, offset=args.offset,
            theta=args.theta, missing=args.missing)
        return model.fit()
    except Exception as err:  # formula, validation and fit errors: one line for the user
        raise _UsageError(f"{type(err).__name__}: {err}".splitlines()[0]) from None


class _UsageError(Exception):
    pass


def _print_warnings(caught: Sequence[warnings.WarningMessage]) -> None:
    """Each warning once, as one line on stderr (not Python's file:line format)."""
    for line in dict.fromkeys(f"{w.category.__name__}: {w.message}".splitlines()[0]
                              for w in caught):
        print(f"glmmnb: warning: {line}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (2 for bad input).

    Parameters
    ----------
    argv : list of str, optional
        Arguments (default ``sys.argv[1:]``).

    Returns
    -------
    int

    Examples
    --------
    >>> main(["fit", "no-such-file.csv", "--formula", "y ~ 1", "--groups", "g"])
    2
    """
    args = build_parser().parse_args(argv)
    if args.command == "demo":
        from .datasets import microscopy
        from .model import NegBinMixedGLM

        data = microscopy.load_pandas().data
        res = NegBinMixedGLM.from_formula("counts ~ RNAi", data, groups="slide").fit()
        print(DEMO_INTRO)
        print(res.summary())
        return 0
    if args.command == "fit-many":
        try:
            table = _fit_many_csv(args)
        except _UsageError as err:
            print(f"glmmnb: error: {err}", file=sys.stderr)
            return 2
        table.to_csv(args.out if args.out else sys.stdout)
        return 0
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("default")
            res = _fit_csv(args)
    except _UsageError as err:
        _print_warnings(caught)
        print(f"glmmnb: error: {err}", file=sys.stderr)
        return 2
    _print_warnings(caught)
    if args.format == "json":
        print(json.dumps(results_to_dict(res), indent=2, allow_nan=False))
    else:
        print(res.summary())
    return 0
