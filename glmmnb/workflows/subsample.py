"""The seed tutorial's subsampling study: refit on random subsets of the cells.

How much does the conclusion depend on the number of cells?  The tutorial
refits ``glmmPQL`` on 100 random subsets of 100 of its 200 cells, with theta
held at the full-data value, and summarises the p-values.  Here the subsets
are drawn up front from one seed, so the numbers do not depend on how the
refits are spread over workers (``n_jobs``, or a Dask cluster through
joblib's ``dask`` backend).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

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
    """

    def __init__(self, params, pvalues, rows, failures):
        self.params = params
        self.pvalues = pvalues
        self.rows = rows
        self.failures = failures

    def summary(self, column=None):
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

    def __repr__(self):
        return (f"SubsampleResults({len(self.params)} replicates, "
                f"{len(self.failures)} failed)\n{self.summary()}")


def _model_arrays(model):
    return {
        "endog": model.endog, "exog": model.exog, "groups": model.groups,
        "exog_re": None if model.exog_re is None else np.asarray(model.exog_re, float),
        "vc_groups": {k: np.asarray(v) for k, v in model.vc_groups.items()},
        "offset": model._offset,
    }


def _refit_chunk(arrays, theta, rows_chunk, fit_kwargs):
    from ..model import NegBinMixedGLM

    out = []
    for rows in rows_chunk:
        part = {k: (None if v is None else v[rows]) for k, v in arrays.items()
                if k != "vc_groups"}
        vc = {k: v[rows] for k, v in arrays["vc_groups"].items()}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = NegBinMixedGLM(part["endog"], part["exog"], part["groups"],
                                     exog_re=part["exog_re"], vc_groups=vc,
                                     offset=part["offset"], theta=theta).fit(**fit_kwargs)
            out.append((np.asarray(res.params), np.asarray(res.pvalues), None))
        except (ValueError, np.linalg.LinAlgError) as err:
            out.append((None, None, f"{type(err).__name__}: {err}"))
    return out


def _progress(iterable, total, progress):
    if not progress:
        return iterable
    try:
        from tqdm.auto import tqdm
    except ImportError:
        raise ImportError('progress=True needs tqdm: pip install "glmmnb[parallel]"') from None
    return tqdm(iterable, total=total, desc="refits")


def subsample(results, size, n_rep, random_state=None, n_jobs=1, progress=False, **fit_kwargs):
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
    n_jobs : int
        Parallel workers (joblib); inside ``joblib.parallel_config(backend=
        "dask")`` the refits run on a Dask cluster.
    progress : bool
        Show a tqdm progress bar.
    **fit_kwargs
        Passed to each ``fit`` (e.g. ``maxiter``).

    Returns
    -------
    SubsampleResults

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
    if not 0 < size <= nobs:
        raise ValueError(f"size must be between 1 and the {nobs} rows of the data, got {size}")
    if n_rep < 1:
        raise ValueError(f"n_rep must be at least 1, got {n_rep}")
    rng = np.random.default_rng(random_state)
    rows = np.array([rng.choice(nobs, size=size, replace=False) for _ in range(n_rep)])
    arrays = _model_arrays(model)
    chunks = np.array_split(np.arange(n_rep), min(n_rep, max(1, abs(n_jobs)) * 4))
    if n_jobs == 1:
        parts = (_refit_chunk(arrays, results.theta, rows[c], fit_kwargs) for c in chunks)
    else:
        try:
            from joblib import Parallel, delayed
        except ImportError:
            raise ImportError('n_jobs != 1 needs joblib: pip install "glmmnb[parallel]"') from None

        parts = Parallel(n_jobs=n_jobs, return_as="generator")(
            delayed(_refit_chunk)(arrays, results.theta, rows[c], fit_kwargs) for c in chunks)
    outcomes = []
    for part in _progress(parts, len(chunks), progress):
        outcomes.extend(part)
    return _collect(outcomes, rows, list(model.exog_names))


def _collect(outcomes, rows, names):
    k = len(names)
    params = np.full((len(outcomes), k), np.nan)
    pvalues = np.full((len(outcomes), k), np.nan)
    failures = {}
    for i, (par, pv, err) in enumerate(outcomes):
        if err is None:
            params[i], pvalues[i] = par, pv
        else:
            failures[i] = err
    if failures:
        warnings.warn(f"{len(failures)} of {len(outcomes)} refits failed (their rows are "
                      "NaN; see .failures), e.g. " + next(iter(failures.values())),
                      UserWarning, stacklevel=3)
    index = pd.RangeIndex(len(outcomes), name="replicate")
    return SubsampleResults(pd.DataFrame(params, index=index, columns=names),
                            pd.DataFrame(pvalues, index=index, columns=names), rows, failures)
