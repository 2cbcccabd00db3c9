"""Tests and intervals of a fit whose denominator df respect the grouping.

Every test a results object offers goes through here: each hypothesis is
tested on the df of the parameters it involves, by the rule the fit was asked
for (``fit(ddf=...)``):

``"nlme"`` (default, R's ``glmmPQL``)
    nlme's between/within df (:func:`glmmnb.core.ddf.nlme_ddf`); a contrast
    gets the smallest df of the columns it involves, a model term the df
    ``anova.lme`` gives it (:func:`glmmnb.core.ddf.nlme_term_ddf`).
``"satterthwaite"``
    lmerTest's Satterthwaite df of the contrast, on the final working LMM
    (:mod:`glmmnb.core.satterthwaite`).
``"residual"``
    ``N - p`` for everything: this ignores the grouping, and every table
    says so.

The results class only delegates to these functions.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import stats
from statsmodels.base import model as base
from statsmodels.stats.contrast import ContrastResults, WaldTestResults

from . import _validation
from ._formula import constraint_matrix, term_columns
from .core.apvar import approximate_cov
from .core.ddf import nlme_ddf, nlme_term_ddf
from .core.satterthwaite import (VarianceSensitivity, WorkingLMM, contrast_ddf, ftest_ddf,
                                 variance_sensitivity)

if TYPE_CHECKING:
    from .core.lmm import LMMFit
    from .model import NegBinMixedGLM
    from .results import NegBinMixedGLMResults

__all__ = ["ddf_for_fit", "fixed_ddf", "hypothesis_ddf", "joint_ddf", "wald_test",
           "anova", "model_terms", "wald_test_terms", "intervals", "Intervals",
           "sensitivity", "DDF_NOTES"]

DDF_NOTES = {
    "nlme": ("DF: denominator degrees of freedom by nlme's between/within rule "
             "(Pinheiro & Bates 2000, sec. 2.4.2), as R's glmmPQL reports them."),
    "satterthwaite": ("DF: Satterthwaite denominator degrees of freedom on the final "
                      "working linear mixed model (R: lmerTest on glmmPQL's working data)."),
    "residual": ("WARNING: DF are the N - p residual degrees of freedom asked for with "
                 "ddf='residual'; they ignore the grouping, so p-values and intervals of "
                 "effects that vary between groups are far too optimistic "
                 "(pseudo-replication)."),
}

CHI2_WARNING = ("use_f=False gives a chi-square test, which treats the covariance of the "
                "fixed effects as known (infinite denominator df) and so ignores the "
                "grouping: with few groups its p-values are far too small. Leave use_f "
                "unset for the F test on the df of the fit's ddf rule.")


def ddf_for_fit(method: str, model: NegBinMixedGLM, lmm: LMMFit,
                transform: np.ndarray) -> tuple[np.ndarray, WorkingLMM, VarianceSensitivity | None]:
    """The denominator df of a new fit, with the working LMM they rest on.

    Parameters
    ----------
    method : {"nlme", "satterthwaite", "residual"}
        Checked by :func:`glmmnb._validation.check_ddf_method`.
    model : NegBinMixedGLM
        The model being fitted.
    lmm : glmmnb.core.lmm.LMMFit
        The last inner fit.
    transform : ndarray
        Map from the inner fit's fixed effects to the model's.

    Returns
    -------
    ddf : ndarray
    working : glmmnb.core.satterthwaite.WorkingLMM
    sensitivity : glmmnb.core.satterthwaite.VarianceSensitivity or None
        Computed for ``"satterthwaite"`` only.

    Warns
    -----
    UserWarning
        nlme: a fixed effect with 0 df.
    ConvergenceWarning
        Satterthwaite: the variance parameters are not at a minimum.

    Examples
    --------
    >>> from glmmnb import NegBinMixedGLM
    >>> from glmmnb.datasets import microscopy
    >>> res = NegBinMixedGLM.from_formula(
    ...     "counts ~ RNAi", microscopy.load_pandas().data, groups="slide").fit()
    >>> res.working_lmm.nobs
    200
    """
    X = model.exog
    nlme_df = nlme_ddf(X, [lev.codes for lev in model.levels], model._nlme_strata())
    if method == "nlme":
        _validation.check_ddf(nlme_df, model.exog_names)
    working = WorkingLMM.from_fit(lmm, model.levels, transform)
    sens = None
    if method == "satterthwaite":
        sens = variance_sensitivity(working)
        _validation.check_variance_hessian(sens.hessian_eigenvalues)
    return fixed_ddf(method, X, nlme_df, sens), working, sens


def fixed_ddf(method: str, X: np.ndarray, nlme_df: np.ndarray,
              sensitivity: VarianceSensitivity | None) -> np.ndarray:
    """Denominator df of each fixed effect under ``method``.

    Parameters
    ----------
    method : {"nlme", "satterthwaite", "residual"}
    X : ndarray
        Fixed-effects design.
    nlme_df : ndarray
        nlme's df of each column.
    sensitivity : glmmnb.core.satterthwaite.VarianceSensitivity or None
        Needed for ``"satterthwaite"``.

    Returns
    -------
    ndarray

    Examples
    --------
    >>> import numpy as np
    >>> fixed_ddf("residual", np.ones((10, 2)), np.array([9, 3]), None)
    array([8., 8.])
    """
    if method == "nlme":
        return np.asarray(nlme_df)
    if method == "residual":
        return np.full(X.shape[1], float(X.shape[0] - X.shape[1]))
    return contrast_ddf(sensitivity, np.eye(X.shape[1]))


def hypothesis_ddf(res: NegBinMixedGLMResults, R: ArrayLike) -> np.ndarray:
    """Denominator df of each row of the contrast matrix ``R`` (one-df t tests).

    Parameters
    ----------
    res : NegBinMixedGLMResults
        A fit.
    R : array_like, shape (m, p)
        Contrast rows.

    Returns
    -------
    ndarray, shape (m,)
        nlme: the smallest ``ddf`` of the parameters a row involves;
        Satterthwaite: the row's own df; residual: ``N - p``.

    Examples
    --------
    >>> from glmmnb import NegBinMixedGLM
    >>> from glmmnb.datasets import microscopy
    >>> res = NegBinMixedGLM.from_formula(
    ...     "counts ~ RNAi", microscopy.load_pandas().data, groups="slide").fit()
    >>> hypothesis_ddf(res, [[1.0, 1.0], [1.0, 0.0]]).tolist()
    [2.0, 196.0]
    """
    R = np.atleast_2d(np.asarray(R, dtype=float))
    if res.ddf_method == "satterthwaite":
        return contrast_ddf(res.variance_sensitivity, R)
    ddf = np.asarray(res.ddf, dtype=float)
    return np.array([ddf[row != 0].min() if np.any(row != 0) else ddf.max() for row in R])


def joint_ddf(res: NegBinMixedGLMResults, R: ArrayLike) -> float:
    """Denominator df of the joint F test of all rows of ``R``.

    Parameters
    ----------
    res : NegBinMixedGLMResults
        A fit.
    R : array_like, shape (m, p)
        Constraint rows.

    Returns
    -------
    float

    Examples
    --------
    >>> from glmmnb import NegBinMixedGLM
    >>> from glmmnb.datasets import microscopy
    >>> res = NegBinMixedGLM.from_formula(
    ...     "counts ~ RNAi", microscopy.load_pandas().data, groups="slide").fit()
    >>> joint_ddf(res, [[1.0, 0.0], [0.0, 1.0]])
    2.0
    """
    R = np.atleast_2d(np.asarray(R, dtype=float))
    if res.ddf_method == "satterthwaite":
        return ftest_ddf(res.variance_sensitivity, R)
    ddf = np.asarray(res.ddf, dtype=float)
    used = np.any(R != 0, axis=0)
    return float(ddf[used].min() if used.any() else ddf.max())


def wald_test(res: NegBinMixedGLMResults, r_matrix: str | ArrayLike | tuple,
              cov_p: np.ndarray | None = None, invcov: np.ndarray | None = None,
              use_f: bool | None = None, df_constraints: int | None = None,
              scalar: bool = True) -> ContrastResults:
    """statsmodels' ``wald_test`` with the F test on the hypothesis' own df.

    See :meth:`glmmnb.results.NegBinMixedGLMResults.wald_test` for the
    parameters.

    Returns
    -------
    statsmodels.stats.contrast.ContrastResults

    Examples
    --------
    >>> from glmmnb import NegBinMixedGLM
    >>> from glmmnb.datasets import microscopy
    >>> res = NegBinMixedGLM.from_formula(
    ...     "counts ~ RNAi", microscopy.load_pandas().data, groups="slide").fit()
    >>> int(wald_test(res, "RNAi[T.Target] = 0").df_denom)
    2
    """
    res = getattr(res, "_results", res)     # statsmodels' code wants ndarray params
    if use_f is not None and not use_f:
        warnings.warn(CHI2_WARNING, UserWarning, stacklevel=3)
        return base.LikelihoodModelResults.wald_test(
            res, r_matrix, cov_p=cov_p, invcov=invcov, use_f=False,
            df_constraints=df_constraints, scalar=scalar)
    plain = base.LikelihoodModelResults.wald_test(
        res, r_matrix, cov_p=cov_p, invcov=invcov, use_f=True,
        df_constraints=df_constraints, scalar=scalar)
    R = constraint_matrix(r_matrix, res.model.data.cov_names)
    return ContrastResults(F=plain.fvalue, df_num=plain.df_num, df_denom=joint_ddf(res, R))


def model_terms(model: NegBinMixedGLM) -> list[tuple[str, list[int], float]]:
    """The model's terms: name, columns and nlme's term df (R's ``fixDF$terms``).

    Computed once when the results are made, so that ``anova`` works after
    ``remove_data()``.

    Parameters
    ----------
    model : NegBinMixedGLM
        The model (with its data).

    Returns
    -------
    list of (str, list of int, float)

    Examples
    --------
    >>> from glmmnb import NegBinMixedGLM
    >>> from glmmnb.datasets import microscopy
    >>> mod = NegBinMixedGLM.from_formula(
    ...     "counts ~ RNAi", microscopy.load_pandas().data, groups="slide")
    >>> model_terms(mod)
    [('Intercept', [0], 196.0), ('RNAi', [1], 2.0)]
    """
    X = model.exog
    names = list(model.exog_names)
    terms = [(name if name is not None else names[cols[0]], cols)
             for name, cols in term_columns(getattr(model.data, "model_spec", None), X.shape[1])]
    df = nlme_term_ddf(X, [lev.codes for lev in model.levels], [cols for _, cols in terms],
                       model._nlme_strata())
    return [(name, cols, float(d)) for (name, cols), d in zip(terms, df)]


def _terms(res: NegBinMixedGLMResults) -> list[tuple[str, list[int]]]:
    return [(name, cols) for name, cols, _ in res.model_terms]


def _term_ddf(res: NegBinMixedGLMResults, terms: Sequence[tuple[str, list[int]]],
              Ls: Sequence[np.ndarray]) -> np.ndarray:
    """The denominator df of each term's hypothesis ``Ls[i]``."""
    if res.ddf_method == "satterthwaite":
        return np.array([ftest_ddf(res.variance_sensitivity, L) for L in Ls])
    if res.ddf_method == "residual":
        return np.full(len(terms), float(res.nobs - len(res.params)))
    df = np.array([d for _, _, d in res.model_terms])
    _warn_mixed_terms(res, terms, df)
    return df


def _warn_mixed_terms(res: NegBinMixedGLMResults, terms: Sequence[tuple[str, list[int]]],
                      term_df: np.ndarray) -> None:
    """nlme tests a term whose columns sit at different levels on the innermost one."""
    col_df = np.asarray(res.ddf, dtype=float)
    for (name, cols), d in zip(terms, term_df):
        levels = np.unique(col_df[cols])
        if levels.size > 1:
            warnings.warn(
                f"term {name!r} mixes columns estimated at different levels (their df: "
                f"{', '.join(str(int(x)) for x in levels)}): nlme's anova.lme, reproduced "
                f"here, tests all of it on {int(d)} df, although part of it is a contrast "
                f"worth only {int(levels[0])} df; f_test on those columns tests them on "
                "their own df", UserWarning, stacklevel=4)


def _sequential_factor(res: NegBinMixedGLMResults) -> np.ndarray:
    """Upper-triangular ``U`` with ``U' U = cov_params()^-1`` (nlme's ``c0 = U beta``)."""
    cov = np.asarray(res.cov_params())
    return np.linalg.cholesky(np.linalg.inv(cov)).T


def anova(res: NegBinMixedGLMResults, type: str = "sequential") -> pd.DataFrame:
    """F test of every model term, laid out like R's ``anova.lme``.

    See :meth:`glmmnb.results.NegBinMixedGLMResults.anova`.

    Parameters
    ----------
    res : NegBinMixedGLMResults
        A fit.
    type : {"sequential", "marginal"}
        As ``anova.lme``.

    Returns
    -------
    pandas.DataFrame
        ``numDF``, ``denDF``, ``F-value``, ``p-value``; ``attrs["note"]``
        says which df rule was used.

    Examples
    --------
    >>> from glmmnb import NegBinMixedGLM
    >>> from glmmnb.datasets import microscopy
    >>> res = NegBinMixedGLM.from_formula(
    ...     "counts ~ RNAi", microscopy.load_pandas().data, groups="slide").fit()
    >>> anova(res).index.tolist()
    ['Intercept', 'RNAi']
    """
    _validation.check_choice(type, ("sequential", "marginal"), "type", "as anova.lme")
    terms = _terms(res)
    p = len(res.params)
    basis = np.eye(p) if type == "marginal" else _sequential_factor(res)
    Ls = [basis[cols] for _, cols in terms]
    beta = np.asarray(res.params)
    cov = np.asarray(res.cov_params())
    F = np.array([float(L @ beta @ np.linalg.solve(L @ cov @ L.T, L @ beta)) / L.shape[0]
                  for L in Ls])
    num = np.array([L.shape[0] for L in Ls])
    den = _term_ddf(res, terms, Ls)
    with np.errstate(invalid="ignore"):
        pval = stats.f.sf(F, num, den)
    table = pd.DataFrame({"numDF": num, "denDF": den, "F-value": F, "p-value": pval},
                         index=[name for name, _ in terms])
    table.attrs["ddf"] = res.ddf_method
    table.attrs["note"] = DDF_NOTES[res.ddf_method]
    return table


def wald_test_terms(res: NegBinMixedGLMResults, skip_single: bool = False,
                    extra_constraints: Sequence[tuple[str, ArrayLike]] | None = None,
                    combine_terms: Sequence[str] | None = None,
                    scalar: bool = True) -> WaldTestResults:
    """statsmodels' ``wald_test_terms`` with each term on its own df.

    See :meth:`glmmnb.results.NegBinMixedGLMResults.wald_test_terms` for
    the parameters.  Model terms get the marginal anova's df; combined terms
    and extra constraints the df of :func:`joint_ddf`.

    Returns
    -------
    statsmodels.stats.contrast.WaldTestResults

    Examples
    --------
    >>> from glmmnb import NegBinMixedGLM
    >>> from glmmnb.datasets import microscopy
    >>> res = NegBinMixedGLM.from_formula(
    ...     "counts ~ RNAi", microscopy.load_pandas().data, groups="slide").fit()
    >>> wald_test_terms(res, skip_single=True).table.shape[0]
    0
    """
    table = anova(res, "marginal")
    rows = [(name, row["F-value"], row["p-value"], int(row["numDF"]), row["denDF"])
            for name, row in table.iterrows()
            if not (skip_single and row["numDF"] == 1)]
    eye = np.eye(len(res.params))
    extra = []
    for cname in combine_terms or []:
        cols = sorted({c for name, cs in _terms(res) if cname in name for c in cs})
        if not cols:
            raise ValueError(f"combine_terms: {cname!r} matches no term")
        extra.append((cname, eye[cols]))
    extra += list(extra_constraints or [])
    for name, L in extra:
        wt = wald_test(res, np.atleast_2d(L), scalar=scalar)
        rows.append((name, float(np.squeeze(wt.fvalue)), float(wt.pvalue), int(wt.df_num),
                     float(wt.df_denom)))
    frame = pd.DataFrame(rows, columns=["name", "statistic", "pvalue", "df_constraint",
                                        "df_denom"]).set_index("name")
    frame.index.name = None
    out = WaldTestResults(None, "F", None, table=frame)
    out.ddf_note = DDF_NOTES[res.ddf_method]
    return out


@dataclass
class Intervals:
    """What R's ``intervals(fit)`` gives: fixed effects, random effects, sigma.

    Attributes
    ----------
    fixed : pandas.DataFrame
        ``lower``, ``est.``, ``upper`` per fixed effect (t on the fit's df,
        with nlme's unadjusted ML covariance, as ``intervals.lme``).
    random : dict of str -> pandas.DataFrame
        Per grouping level (outermost first) the SDs and correlations of its
        random coefficients; empty if only ``which="fixed"`` was asked for.
    sigma : pandas.Series or None
        Residual SD of the working model.
    level : float
        Confidence level.
    note : str
        A warning about the df, if the fit asked for ``ddf="residual"``.

    Examples
    --------
    >>> from glmmnb import NegBinMixedGLM
    >>> from glmmnb.datasets import microscopy
    >>> res = NegBinMixedGLM.from_formula(
    ...     "counts ~ RNAi", microscopy.load_pandas().data, groups="slide").fit()
    >>> iv = res.intervals()
    >>> list(iv.random), iv.fixed.columns.tolist()
    (['slide'], ['lower', 'est.', 'upper'])
    """

    fixed: pd.DataFrame | None
    random: dict
    sigma: pd.Series | None
    level: float
    note: str = ""

    def __str__(self) -> str:
        parts = [f"Approximate {self.level:.0%} confidence intervals"]
        if self.fixed is not None:
            parts += ["", " Fixed effects:", self.fixed.to_string()]
        if self.random:
            parts += ["", " Random Effects:"]
            for name, frame in self.random.items():
                parts += [f"  Level: {name}", frame.to_string()]
        if self.sigma is not None:
            parts += ["", " Within-group standard error:", self.sigma.to_frame().T.to_string()]
        if self.note:
            parts += ["", self.note]
        return "\n".join(parts)

    __repr__ = __str__


_COLS = ["lower", "est.", "upper"]


def _fixed_intervals(res: NegBinMixedGLMResults, alpha: float) -> pd.DataFrame:
    n, p = res.nobs, len(res.params)
    # intervals.lme uses vcov(fit), not summary's N / (N - p) inflated one
    se = np.sqrt(np.diag(np.asarray(res.cov_params())) * (n - p) / n)
    q = stats.t.ppf(1.0 - alpha / 2.0, np.asarray(res.ddf, dtype=float))
    est = np.asarray(res.params)
    return pd.DataFrame(np.column_stack([est - q * se, est, est + q * se]),
                        index=list(res.model.exog_names), columns=_COLS)


def _random_intervals(res: NegBinMixedGLMResults,
                      alpha: float) -> tuple[dict[str, pd.DataFrame], pd.Series]:
    if res.working_lmm is None:
        raise ValueError("this fit keeps no working linear mixed model, so its variance "
                         "parameters have no intervals; use which='fixed'")
    try:
        nat, cov = approximate_cov(res.working_lmm)
    except ValueError as err:
        raise ValueError(f"cannot get confidence intervals on the variance components: "
                         f"{err} (R's intervals() refuses too); use which='fixed'") from err
    half = stats.norm.ppf(1.0 - alpha / 2.0) * np.sqrt(np.diag(cov))
    inf = np.isinf(half)     # flat directions: limits 0 and infinity (or -1 and 1)
    with np.errstate(invalid="ignore"):     # -inf + inf for an SD of exactly zero
        bounds = [np.where(inf, -np.inf, nat.values - half), nat.values,
                  np.where(inf, np.inf, nat.values + half)]
    split = [nat.split(b) for b in bounds]
    group = getattr(res.model, "group_name", "Group")
    coef = [["(Intercept)" if c == group else c for c in res.exog_re_names]]
    coef += [["(Intercept)"] for _ in res.vc_names]
    random = {}
    for i, name in enumerate([group] + list(res.vc_names)):
        q = len(coef[i])
        labels = [f"sd({c})" for c in coef[i]]
        labels += [f"cor({coef[i][j]},{coef[i][k]})" for j in range(q) for k in range(j + 1, q)]
        cols = []
        for levels, _ in split:
            log_sd, z = levels[i]
            cols.append(np.concatenate([np.exp(log_sd), np.tanh(z / 2.0)]))
        random[name] = pd.DataFrame(np.column_stack(cols), index=labels, columns=_COLS)
    sigma = pd.Series([float(np.exp(s[1])) for s in split], index=_COLS, name="sigma")
    return random, sigma


def intervals(res: NegBinMixedGLMResults, alpha: float = 0.05, which: str = "all") -> Intervals:
    """R's ``intervals(fit)``; see :meth:`glmmnb.results.NegBinMixedGLMResults.intervals`.

    Parameters
    ----------
    res : NegBinMixedGLMResults
        A fit.
    alpha : float
        1 - confidence level.
    which : {"all", "fixed", "var-cov"}
        As R.

    Returns
    -------
    Intervals

    Examples
    --------
    >>> from glmmnb import NegBinMixedGLM
    >>> from glmmnb.datasets import microscopy
    >>> res = NegBinMixedGLM.from_formula(
    ...     "counts ~ RNAi", microscopy.load_pandas().data, groups="slide").fit()
    >>> intervals(res).sigma.round(3).tolist()
    [0.9, 0.994, 1.097]
    """
    _validation.check_choice(which, ("all", "fixed", "var-cov"), "which", "as R's intervals")
    alpha = _validation.check_alpha(alpha)
    fixed = None if which == "var-cov" else _fixed_intervals(res, alpha)
    random, sigma = ({}, None) if which == "fixed" else _random_intervals(res, alpha)
    note = DDF_NOTES["residual"] if res.ddf_method == "residual" and fixed is not None else ""
    return Intervals(fixed, random, sigma, 1.0 - alpha, note)


def sensitivity(res: NegBinMixedGLMResults) -> VarianceSensitivity:
    """:func:`glmmnb.core.satterthwaite.variance_sensitivity` of a fit's working LMM.

    Parameters
    ----------
    res : NegBinMixedGLMResults
        A fit.

    Returns
    -------
    glmmnb.core.satterthwaite.VarianceSensitivity

    Examples
    --------
    >>> from glmmnb import NegBinMixedGLM
    >>> from glmmnb.datasets import microscopy
    >>> res = NegBinMixedGLM.from_formula(
    ...     "counts ~ RNAi", microscopy.load_pandas().data, groups="slide").fit()
    >>> sensitivity(res).cov_varpar.shape
    (2, 2)
    """
    if res.working_lmm is None:
        raise ValueError("Satterthwaite df need the fit's working linear mixed model")
    return variance_sensitivity(res.working_lmm)
