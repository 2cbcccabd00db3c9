"""The seed tutorial's subsampling study: refit on random subsets of the cells.

How much does the conclusion depend on the number of cells?  The tutorial
refits ``glmmPQL`` on 100 random subsets of 100 of its 200 cells, with theta
held at the full-data value, and summarises the p-values.  Here the subsets
are drawn up front from one seed, so the numbers do not depend on how the
refits are spread over workers (``n_jobs``, or a Dask cluster through
joblib's ``dask`` backend).
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .. import _validation

if TYPE_CHECKING:
    from ..model import NegBinMixedGLM
    from ..results import NegBinMixedGLMResults

__all__ = ["SubsampleResults", "subsample"]

_QUANTILES = {"Min.": 0.0, "1st Qu.": 0.25, "Median": 0.5, "3rd Qu.": 0.75, "Max.": 1.0}


class SubsampleResults:
    """Estimates and p-values of every refit (one row per replicate).

    Parameters
    ----------
    params, pvalues : pandas.DataFrame
        One row per replicate, one column per fixed effect; a failed refit
        is a row of NaN.
    rows : ndarray, shape (n_rep, size)
        The row positions each replicate used.
    failures : dict of int -> str
        Replicates whose refit failed, with the reason.
    refit_warnings : dict of int -> list of str, optional
        Replicates whose refit warned (e.g. did not converge, or a NaN
        p-value from 0 denominator df), with each warning as one line.
    """

    def __init__(self, params: pd.DataFrame, pvalues: pd.DataFrame, rows: np.ndarray,
                 failures: dict[int, str],
                 refit_warnings: dict[int, list[str]] | None = None) -> None:
        self.params = params
        self.pvalues = pvalues
        self.rows = rows
        self.failures = failures
        self.refit_warnings = dict(refit_warnings or {})

    def summary(self, column: str | None = None) -> pd.DataFrame | pd.Series:
        """Quantiles of the p-values, like R's ``summary(pvals)``.

        Parameters
        ----------
        column : str, optional
            One fixed effect; default all of them.

        Returns
        -------
        pandas.DataFrame or pandas.Series
            Min., 1st Qu., Median, Mean, 3rd Qu., Max. per effect.

        Examples
        --------
        >>> import pandas as pd
        >>> p = pd.DataFrame({"x": [0.01, 0.02, 0.03, 0.04]})
        >>> float(SubsampleResults(p, p, None, {}).summary("x")["Median"])
        0.025
        """
        p = self.pvalues
        table = pd.DataFrame({k: p.quantile(q) for k, q in _QUANTILES.items()})
        table.insert(3, "Mean", p.mean())
        return table if column is None else table.loc[column]

    def __repr__(self) -> str:
        return (f"SubsampleResults({len(self.params)} replicates, {len(self.failures)} "
                f"failed, {len(self.refit_warnings)} warned)\n{self.summary()}")


def _model_arrays(model: NegBinMixedGLM) -> dict:
    return {
        "endog": model.endog, "exog": model.exog, "groups": model.groups,
        "exog_re": None if model.exog_re is None else np.asarray(model.exog_re, float),
        "vc_groups": {k: np.asarray(v) for k, v in model.vc_groups.items()},
        "offset": model._offset,
    }


# What a refit on a subset can fail with (input checks, singular or overflowing
# numerics): recorded as that replicate's failure.  Anything else is a bug and
# propagates.
_NUMERICAL_FAILURES = (ValueError, ArithmeticError, np.linalg.LinAlgError, RuntimeError)


def _refit_chunk(arrays: dict, theta: float | None, rows_chunk: Sequence[np.ndarray],
                 fit_kwargs: dict) -> list[tuple]:
    from ..model import NegBinMixedGLM

    out = []
    for rows in rows_chunk:
        part = {k: (None if v is None else v[rows]) for k, v in arrays.items()
                if k != "vc_groups"}
        vc = {k: v[rows] for k, v in arrays["vc_groups"].items()}
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                res = NegBinMixedGLM(part["endog"], part["exog"], part["groups"],
                                     exog_re=part["exog_re"], vc_groups=vc,
                                     offset=part["offset"], theta=theta).fit(**fit_kwargs)
                fitted, err = (np.asarray(res.params), np.asarray(res.pvalues)), None
            except _NUMERICAL_FAILURES as exc:
                fitted, err = (None, None), f"{type(exc).__name__}: {exc}"
        notes = list(dict.fromkeys(f"{w.category.__name__}: {w.message}" for w in caught))
        out.append((*fitted, err, notes))
    return out


def _progress(total: int, progress: bool) -> Any:
    """A tqdm bar over ``total`` refits, or None."""
    if not progress:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        raise ImportError('progress=True needs tqdm: pip install "glmmnb[parallel]"') from None
    return tqdm(total=total, desc="refits")


def _check_study(nobs: int, size: int, n_rep: int, random_state: int | np.random.Generator | None,
                 fit_kwargs: dict) -> np.random.Generator:
    """Every argument checked before the first refit, so a typo fails at once."""
    for name, value in (("size", size), ("n_rep", n_rep)):
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
            raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    if not 0 < size <= nobs:
        raise ValueError(f"size must be between 1 and the {nobs} rows of the data, got {size}")
    if n_rep < 1:
        raise ValueError(f"n_rep must be at least 1, got {n_rep}")
    try:
        rng = np.random.default_rng(random_state)
    except (TypeError, ValueError):
        raise TypeError(f"random_state must be None, an integer seed or a "
                        f"numpy.random.Generator, got {random_state!r}") from None
    options = dict(fit_kwargs)
    _validation.check_fit_options(options.pop("maxiter", 10), options.pop("tol", 1e-6))
    _validation.check_fit_kwargs(options)
    return rng


def _run(tasks: Sequence[tuple[Callable, tuple]], n_jobs: int | None) -> Iterator:
    """Run the chunks here (``n_jobs=1``) or through joblib, honouring ``parallel_config``."""
    if n_jobs == 1:
        return (f(*a) for f, a in tasks)
    try:
        from joblib import Parallel, delayed
    except ImportError:
        if n_jobs is None:
            return (f(*a) for f, a in tasks)
        raise ImportError('n_jobs != 1 needs joblib: pip install "glmmnb[parallel]"') from None
    return Parallel(n_jobs=n_jobs, return_as="generator")(delayed(f)(*a) for f, a in tasks)


def _n_chunks(n_rep: int, n_jobs: int | None) -> int:
    """About four chunks per worker, so that slow refits even out."""
    if n_jobs is None:
        try:
            from joblib import effective_n_jobs
        except ImportError:
            return 1
        n_jobs = effective_n_jobs(None)
    return min(n_rep, max(1, abs(n_jobs)) * 4)


def subsample(results: NegBinMixedGLMResults, size: int, n_rep: int,
              random_state: int | np.random.Generator | None = None, n_jobs: int | None = None,
              progress: bool = False, **fit_kwargs: Any) -> SubsampleResults:
    """Refit ``results.model`` on ``n_rep`` random subsets of ``size`` rows.

    Theta is held at the full-data value, as the tutorial does.

    Parameters
    ----------
    results : NegBinMixedGLMResults
        The full-data fit.
    size : int
        Rows per subset (drawn without replacement).
    n_rep : int
        Number of subsets.
    random_state : int, numpy.random.Generator or None
        Seed; the same seed gives the same numbers whatever ``n_jobs``.
    n_jobs : int, optional
        Parallel workers (joblib).  The default ``None`` follows joblib: one
        worker here unless an active ``joblib.parallel_config`` says
        otherwise, e.g. ``parallel_config(backend="dask")`` runs the refits
        on a Dask cluster.  ``1`` always runs them in this process.
    progress : bool
        Show a tqdm progress bar.
    **fit_kwargs
        Passed to each ``fit`` (e.g. ``maxiter``).

    Returns
    -------
    SubsampleResults
        A refit that fails numerically is a row of NaN, with its reason in
        ``failures``; the warnings of each refit are in ``refit_warnings``.

    Raises
    ------
    TypeError, ValueError
        If ``size``, ``n_rep``, ``random_state`` or a fit option is invalid
        (checked before any refit).

    See Also
    --------
    NegBinMixedGLMResults.subsample : the method that calls this.

    Examples
    --------
    >>> from glmmnb import NegBinMixedGLM
    >>> from glmmnb.datasets import microscopy
    >>> res = NegBinMixedGLM.from_formula(
    ...     "counts ~ RNAi", microscopy.load_pandas().data, groups="slide").fit()
    >>> study = subsample(res, size=100, n_rep=5, random_state=1)
    >>> study.pvalues.shape
    (5, 2)
    """
    model = results.model
    nobs = int(model.nobs)
    rng = _check_study(nobs, size, n_rep, random_state, fit_kwargs)
    rows = np.array([rng.choice(nobs, size=size, replace=False) for _ in range(n_rep)])
    arrays = _model_arrays(model)
    chunks = np.array_split(np.arange(n_rep), _n_chunks(n_rep, n_jobs))
    tasks = [(_refit_chunk, (arrays, results.theta, rows[c], fit_kwargs)) for c in chunks]
    bar = _progress(n_rep, progress)
    outcomes = []
    for part in _run(tasks, n_jobs):
        outcomes.extend(part)
        if bar is not None:
            bar.update(len(part))
    if bar is not None:
        bar.close()
    return _collect(outcomes, rows, list(model.exog_names))


def _collect(outcomes: Sequence, rows: np.ndarray, names: Sequence[str]) -> SubsampleResults:
    k = len(names)
    params = np.full((len(outcomes), k), np.nan)
    pvalues = np.full((len(outcomes), k), np.nan)
    failures, warned = {}, {}
    for i, (par, pv, err, notes) in enumerate(outcomes):
        if err is None:
            params[i], pvalues[i] = par, pv
        else:
            failures[i] = err
        if notes:
            warned[i] = notes
    if failures:
        warnings.warn(f"{len(failures)} of {len(outcomes)} refits failed (their rows are "
                      "NaN; see .failures), e.g. " + next(iter(failures.values())),
                      UserWarning, stacklevel=3)
    nan_rows = int(np.isnan(pvalues).any(axis=1).sum()) - len(failures)
    if warned:
        first = next(iter(warned.values()))[0]
        warnings.warn(f"{len(warned)} of {len(outcomes)} refits warned ({nan_rows} more gave "
                      f"NaN p-values; see .refit_warnings), e.g. {first}",
                      UserWarning, stacklevel=3)
    index = pd.RangeIndex(len(outcomes), name="replicate")
    return SubsampleResults(pd.DataFrame(params, index=index, columns=names),
                            pd.DataFrame(pvalues, index=index, columns=names), rows, failures,
                            warned)
