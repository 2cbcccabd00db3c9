"""Predictions with t intervals, and marginal means (R: ``predict``, ``emmeans``).

Every interval is formed on the link scale with a t quantile on the df of the
linear function it estimates and mapped through ``exp``.  The df are
emmeans' "containment" df for lme fits: the smallest nlme denominator df of
the parameters with a nonzero coefficient (the rule ``t_test`` uses), with
the intercept counted at the number of outermost groups - 1 rather than
nlme's residual df.  The covariance is ``cov_params()``, the one behind the
summary table (nlme's ML covariance inflated by ``N / (N - p)``, as
``summary.lme`` prints it, and as emmeans inflates it for ML fits), so an
interval here and ``t_test`` of the same contrast agree unless only the
intercept is involved.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import stats

from . import _formula, _validation, inference
from .core.varcomp import conditional_blocks

if TYPE_CHECKING:
    from .model import NegBinMixedGLM
    from .results import NegBinMixedGLMResults

__all__ = ["PredictionResults", "MarginalMeans", "PredictionMixin", "get_prediction",
           "predict", "marginal_means", "conditional_covariances"]

_WHICH = ("mean", "linear")


class PredictionResults:
    """Predicted means (or linear predictors) with t-based intervals.

    Parameters
    ----------
    linpred, se_linpred, df : ndarray
        Linear predictor, its standard error and the t df of each row.
    which : {"mean", "linear"}
        Scale of :attr:`predicted`.
    alpha : float
        Default 1 - confidence level.
    index : pandas.Index, optional
        Row labels (pandas input).

    Attributes
    ----------
    predicted : ndarray
        ``exp(linpred)`` for ``which="mean"``, else ``linpred``.
    se : ndarray
        Standard error on that scale (delta method for the mean, as
        statsmodels' GLM does).
    df : ndarray
        Denominator df of each row's t interval.

    See Also
    --------
    statsmodels.genmod.generalized_linear_model.GLMResults.get_prediction

    Examples
    --------
    >>> import pandas as pd
    >>> from glmmnb import NegBinMixedGLM
    >>> from glmmnb.datasets import microscopy
    >>> res = NegBinMixedGLM.from_formula(
    ...     "counts ~ RNAi", microscopy.load_pandas().data, groups="slide").fit()
    >>> pred = res.get_prediction(pd.DataFrame({"RNAi": ["Target"]}))
    >>> pred.summary_frame().round(2).values.tolist()
    [[7.51, 0.32, 6.27, 9.0, 2.0]]
    """

    def __init__(self, linpred: np.ndarray, se_linpred: np.ndarray, df: np.ndarray,
                 which: str = "mean", alpha: float = 0.05, index: pd.Index | None = None) -> None:
        self.linpred = np.asarray(linpred, dtype=float)
        self.se_linpred = np.asarray(se_linpred, dtype=float)
        self.df = np.asarray(df, dtype=float)
        self.which = which
        self.alpha = alpha
        self.index = index
        self.predicted = np.exp(self.linpred) if which == "mean" else self.linpred
        self.se = self.predicted * self.se_linpred if which == "mean" else self.se_linpred

    @property
    def predicted_mean(self) -> np.ndarray:
        """statsmodels' name for :attr:`predicted`."""
        return self.predicted

    @property
    def se_mean(self) -> np.ndarray:
        """statsmodels' name for :attr:`se`."""
        return self.se

    def conf_int(self, alpha: float | None = None) -> np.ndarray:
        """t intervals, formed on the link scale and mapped to :attr:`which`.

        Parameters
        ----------
        alpha : float, optional
            1 - confidence level; default the one given to ``get_prediction``.

        Returns
        -------
        ndarray, shape (n, 2)
        """
        alpha = self.alpha if alpha is None else _validation.check_alpha(alpha)
        with np.errstate(invalid="ignore"):
            q = stats.t.ppf(1.0 - alpha / 2.0, self.df)
        ci = self.linpred[:, None] + np.outer(q * self.se_linpred, [-1.0, 1.0])
        return np.exp(ci) if self.which == "mean" else ci

    def summary_frame(self, alpha: float | None = None) -> pd.DataFrame:
        """``mean``, ``mean_se``, ``mean_ci_lower``, ``mean_ci_upper`` and ``df``.

        Parameters
        ----------
        alpha : float, optional
            1 - confidence level.

        Returns
        -------
        pandas.DataFrame
            statsmodels' columns (``mean`` is the linear predictor when
            ``which="linear"``), plus the t df of each row.
        """
        ci = self.conf_int(alpha)
        return pd.DataFrame({"mean": self.predicted, "mean_se": self.se,
                             "mean_ci_lower": ci[:, 0], "mean_ci_upper": ci[:, 1],
                             "df": self.df}, index=self.index)


@dataclass
class _Rows:
    """Design rows of a prediction, with their groups when conditional."""

    X: np.ndarray
    offset: np.ndarray
    index: object = None
    codes: np.ndarray | None = None
    Z: np.ndarray | None = None


def _model_offset(model: NegBinMixedGLM, data: pd.DataFrame | None,
                  offset: ArrayLike | float | None, exposure: ArrayLike | float | None,
                  n: int) -> np.ndarray:
    """Offset of new rows: given, or the columns the fit was given by name."""
    named = {"offset": getattr(model, "offset_column", None),
             "exposure": getattr(model, "exposure_column", None)}
    if offset is None and exposure is None and data is not None:
        offset = None if named["offset"] is None else data[named["offset"]]
        exposure = None if named["exposure"] is None else data[named["exposure"]]
    fitted_with = getattr(model, "offset", None) is not None or \
        getattr(model, "exposure", None) is not None
    if offset is None and exposure is None and fitted_with:
        raise ValueError("the model was fitted with an offset or exposure that was not a "
                         "column of the data; pass offset= or exposure= for the new rows "
                         "(offset=0 predicts per unit of exposure)")
    if np.ndim(offset) == 0 and offset is not None:
        offset = np.full(n, float(offset))
    return _validation.check_offset(offset, exposure, n)


def _rows_from_frame(res: NegBinMixedGLMResults, data: pd.DataFrame | dict,
                     offset: ArrayLike | float | None, exposure: ArrayLike | float | None,
                     conditional: bool, groups: ArrayLike | None) -> _Rows:
    model = res.model
    spec = model.data.model_spec
    levels = _formula.categorical_levels(spec)
    rhs = model.formula.split("~", 1)[1]
    columns = _formula.referenced_columns(model.data.frame, rhs)
    for name in ("offset_column", "exposure_column"):
        col = getattr(model, name, None)
        if col is not None and offset is None and exposure is None:
            columns.append(col)
    if conditional and groups is None:
        columns.append(_groups_column(model))
    if conditional and getattr(model, "re_formula", None):
        columns += _formula.referenced_columns(model.data.frame, model.re_formula)
    bad = _validation.check_new_data(data, list(dict.fromkeys(columns)), levels,
                                     getattr(model, "missing", "none"))
    try:
        # a transform such as log(0) is reported by check_new_design, by row
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            X = np.array(_formula.new_design(spec, data), dtype=float)
    except Exception as err:  # the engine's own message, with ours in front
        raise ValueError(f"could not build the fixed-effects design for the new data: "
                         f"{str(err).splitlines()[0]}") from err
    _validation.check_new_design(X, list(model.exog_names), bad, data.index)
    rows = _Rows(X, _model_offset(model, data, offset, exposure, len(data)), data.index)
    if bad is not None:
        rows.X[bad] = np.nan
    if conditional:
        labels = data[_groups_column(model)] if groups is None else groups
        rows.codes = _group_codes(res, labels)
        rows.Z = _new_exog_re(model, data)
    return rows


def _groups_column(model: NegBinMixedGLM) -> str:
    col = getattr(model, "groups_column", None)
    if col is None:
        raise ValueError("conditional predictions for new rows need their groups: the model's "
                         "groups were not a column, so pass groups= with one label per row")
    return col


def _new_exog_re(model: NegBinMixedGLM, data: pd.DataFrame) -> np.ndarray:
    if getattr(model, "re_formula", None) is None:
        return np.ones((len(data), 1))
    # the caller's namespace of the fit is not kept (it would not pickle): numpy
    # is there, as in the fixed part's formula after unpickling
    return _formula.re_design(model.re_formula, data, model.group_name,
                              {"np": np, "numpy": np})[0]


def _group_codes(res: NegBinMixedGLMResults, labels: ArrayLike) -> np.ndarray:
    """Positions of the labels among the fitted groups; an unseen group is an error."""
    known = pd.Index(res._level_labels[0])
    labels = np.asarray(labels)
    codes = known.get_indexer(labels)
    if (codes < 0).any():
        unseen = pd.unique(labels[codes < 0])
        raise ValueError(f"group(s) {[str(u) for u in unseen[:5]]} were not in the fit, so they "
                         "have no predicted random effect; use conditional=False for "
                         "population-level predictions")
    return codes


def _rows(res: NegBinMixedGLMResults, exog: pd.DataFrame | dict | ArrayLike | None,
          offset: ArrayLike | float | None, exposure: ArrayLike | float | None, transform: bool,
          conditional: bool, groups: ArrayLike | None, exog_re: ArrayLike | None) -> _Rows:
    model = res.model
    if exog is None:
        if model.exog is None:
            raise ValueError("the fitted rows were removed by remove_data(); pass exog= "
                             "with the rows to predict")
        index = getattr(model.data, "row_labels", None)
        Z = model._Z[:, :model.k_re]
        return _Rows(model.exog, model._offset, index, model.levels[0].codes, Z)
    if isinstance(exog, dict):
        # a dict of scalars is one row
        scalars = all(np.ndim(v) == 0 for v in exog.values())
        exog = pd.DataFrame([exog] if scalars else exog)
    # a DataFrame goes through the formula; an array is taken as design rows
    if transform and getattr(model, "formula", None) is not None \
            and isinstance(exog, pd.DataFrame):
        return _rows_from_frame(res, exog, offset, exposure, conditional, groups)
    index = exog.index if isinstance(exog, pd.DataFrame) else None
    X = _design_rows(exog, model)
    rows = _Rows(X, _model_offset(model, None, offset, exposure, X.shape[0]), index)
    if conditional:
        if groups is None:
            raise ValueError("conditional predictions for new rows need groups= (one label "
                             "per row)")
        rows.codes = _group_codes(res, groups)
        rows.Z = np.ones((X.shape[0], 1)) if exog_re is None else \
            np.asarray(exog_re, dtype=float).reshape(X.shape[0], -1)
        if rows.Z.shape[1] != model.k_re:
            raise ValueError(f"exog_re must have {model.k_re} column(s) "
                             f"({res.exog_re_names})")
    return rows


def _design_rows(exog: ArrayLike, model: NegBinMixedGLM) -> np.ndarray:
    """Numeric design rows with the model's columns (the array interface)."""
    p = len(model.exog_names)
    if isinstance(exog, pd.Series) or np.ndim(exog) not in (1, 2):
        raise TypeError("exog must be a DataFrame (or dict) of the formula's columns, or "
                        f"numeric design rows with the model's {p} columns; got "
                        f"{type(exog).__name__}")
    try:
        X = np.asarray(exog, dtype=float)
    except (TypeError, ValueError) as err:
        raise TypeError(f"exog must be numeric design rows ({p} columns: "
                        f"{list(model.exog_names)}) or a DataFrame for a formula "
                        "model") from err
    X = X.reshape(1, -1) if X.ndim == 1 else X
    if X.shape[1] != p:
        raise ValueError(f"exog has {X.shape[1]} columns but the model has {p} "
                         f"({list(model.exog_names)})")
    return _validation.check_new_design(X, list(model.exog_names))


_INTERCEPT_NAMES = ("Intercept", "const", "(Intercept)")


def _row_df(res: NegBinMixedGLMResults, X: np.ndarray) -> np.ndarray:
    """Per-row t df: emmeans' "containment" df for lme fits.

    The smallest nlme ddf of the parameters the row involves, except that the
    intercept counts with the outermost groups (their number - 1) instead of
    the residual df nlme gives it: a mean that involves only the intercept
    is then judged against the number of slides, not of cells.  A fit with
    ``ddf="satterthwaite"`` gives each row its own Satterthwaite df.
    """
    if getattr(res, "ddf_method", "nlme") == "satterthwaite":
        # each row's own Satterthwaite df, as t_test of the same contrast
        return inference.hypothesis_ddf(res, np.nan_to_num(X))
    ddf = np.array(res.ddf, dtype=float)
    # the correction is to nlme's counting rule; the residual rule stands as it is
    if getattr(res, "ddf_method", "nlme") == "nlme":
        for k, name in enumerate(res.model.exog_names):
            if name in _INTERCEPT_NAMES:
                ddf[k] = res.n_groups - 1
    df = np.where(X != 0, ddf, np.inf).min(axis=1)
    return np.where(np.isinf(df), res.df_resid, df)


def conditional_covariances(res: NegBinMixedGLMResults) -> tuple[np.ndarray, np.ndarray]:
    """Per-group blocks of the outermost random effects' conditional distribution.

    See :func:`glmmnb.core.varcomp.conditional_blocks`; nested components
    are integrated out, as in the fit.

    Parameters
    ----------
    res : NegBinMixedGLMResults
        A fit (with its data).

    Returns
    -------
    A : ndarray, shape (n_groups, q, q)
        Conditional covariance of each group's random effects.
    B : ndarray, shape (n_groups, q, p)
        Their dependence on the error of the fixed effects.
    """
    model = res.model
    if model.exog is None:
        raise ValueError("conditional variances need the fit's data, removed by remove_data()")
    if getattr(res, "_working_weights", None) is None:
        raise NotImplementedError("conditional variances are those of PQL's final working "
                                  f"model; this fit (method={res.method!r}) has none")
    return conditional_blocks(model.exog, res._working_response, res._working_weights,
                              model._Z, model.levels, res._level_covs(), res.scale)


def _linear(res: NegBinMixedGLMResults, rows: _Rows, conditional: bool) -> np.ndarray:
    eta = rows.X @ np.asarray(res.params) + rows.offset
    if conditional:
        b = res._ranef[0][rows.codes]
        eta = eta + np.einsum("ij,ij->i", rows.Z, b)
    return eta


def _se_linear(res: NegBinMixedGLMResults, rows: _Rows, conditional: bool) -> np.ndarray:
    """Standard error of each row's linear predictor.

    Conditional rows estimate ``x'beta + z'b_g``; its prediction error
    variance from Henderson's equations is ``c' C c + z' A_g z`` with
    ``c = x - B_g' z`` (see :func:`conditional_covariances`).
    """
    C = np.asarray(res.cov_params(), dtype=float)
    c = rows.X
    extra = 0.0
    if conditional:
        A, B = conditional_covariances(res)
        c = c - np.einsum("iqp,iq->ip", B[rows.codes], rows.Z)
        extra = np.einsum("iq,iqr,ir->i", rows.Z, A[rows.codes], rows.Z)
    return np.sqrt(np.einsum("ij,jk,ik->i", c, C, c) + extra)


def _check_which(which: str, conditional: bool) -> None:
    if which not in _WHICH:
        raise ValueError(f"which must be one of {_WHICH}, got {which!r}")
    if not isinstance(conditional, (bool, np.bool_)):
        raise TypeError(f"conditional must be True or False, got {conditional!r}")


def predict(res: NegBinMixedGLMResults, exog: pd.DataFrame | dict | ArrayLike | None = None,
            transform: bool = True, which: str = "mean", conditional: bool = False,
            offset: ArrayLike | float | None = None, exposure: ArrayLike | float | None = None,
            groups: ArrayLike | None = None,
            exog_re: ArrayLike | None = None) -> pd.Series | np.ndarray:
    """Predicted means or linear predictors; see ``NegBinMixedGLMResults.predict``."""
    _check_which(which, conditional)
    rows = _rows(res, exog, offset, exposure, transform, conditional, groups, exog_re)
    eta = _linear(res, rows, conditional)
    out = np.exp(eta) if which == "mean" else eta
    return out if rows.index is None else pd.Series(out, index=rows.index)


def get_prediction(res: NegBinMixedGLMResults, exog: pd.DataFrame | dict | ArrayLike | None = None,
                   which: str = "mean", conditional: bool = False, alpha: float = 0.05,
                   transform: bool = True, offset: ArrayLike | float | None = None,
                   exposure: ArrayLike | float | None = None, groups: ArrayLike | None = None,
                   exog_re: ArrayLike | None = None) -> PredictionResults:
    """Predictions with intervals; see ``NegBinMixedGLMResults.get_prediction``."""
    _check_which(which, conditional)
    alpha = _validation.check_alpha(alpha)
    rows = _rows(res, exog, offset, exposure, transform, conditional, groups, exog_re)
    eta = _linear(res, rows, conditional)
    se = _se_linear(res, rows, conditional)
    return PredictionResults(eta, se, _row_df(res, rows.X), which, alpha, rows.index)


@dataclass
class MarginalMeans:
    """Estimated marginal means of one factor and their pairwise ratios (R: ``emmeans``).

    Attributes
    ----------
    factor : str
        The factor.
    means : pandas.DataFrame
        One row per level: ``mean``, ``mean_se``, ``mean_ci_lower``,
        ``mean_ci_upper``, ``df``.
    ratios : pandas.DataFrame
        One row per pair ``"later / earlier"`` (emmeans' ``revpairwise``):
        ``ratio``, ``ci_lower``, ``ci_upper``, ``t``, ``df``, ``p`` (not
        adjusted for multiplicity).
    linfct : pandas.DataFrame
        The rows of the reference grid averaged per level (emmeans'
        ``linfct``), on the fixed effects.
    alpha : float
        1 - confidence level.
    """

    factor: str
    means: pd.DataFrame
    ratios: pd.DataFrame
    linfct: pd.DataFrame
    alpha: float

    def __repr__(self) -> str:
        return (f"Marginal means of {self.factor} (intervals at {1 - self.alpha:.0%}):\n"
                f"{self.means.to_string()}\n\nRatios:\n{self.ratios.to_string()}")


def _reference_grid(res: NegBinMixedGLMResults, factor: str) -> pd.DataFrame:
    """emmeans' reference grid: every level combination, numeric columns at their means."""
    model = res.model
    if getattr(model, "formula", None) is None or model.data.frame is None:
        raise ValueError("marginal means need a model made by from_formula, with its data")
    frame = model.data.frame
    rhs = model.formula.split("~", 1)[1]
    columns = _formula.referenced_columns(frame, rhs)
    known = _formula.categorical_levels(model.data.model_spec)
    factors = {c: known.get(c, sorted(pd.unique(frame[c].dropna())))
               for c in columns if c in known or not pd.api.types.is_numeric_dtype(frame[c])}
    if factor not in factors:
        raise ValueError(f"{factor!r} is not a factor of the fixed part {rhs.strip()!r}; "
                         f"its factors are {list(factors)}")
    grid = pd.DataFrame(list(itertools.product(*factors.values())), columns=list(factors))
    for c in columns:
        if c not in factors:
            grid[c] = frame[c].astype(float).mean()
    X = _formula.new_design(model.data.model_spec, grid).to_numpy(dtype=float)
    levels = factors[factor]
    L = np.vstack([X[(grid[factor] == lev).to_numpy()].mean(axis=0) for lev in levels])
    return pd.DataFrame(L, index=pd.Index([str(v) for v in levels], name=factor),
                        columns=list(model.exog_names))


def _contrast_table(res: NegBinMixedGLMResults, L: ArrayLike, alpha: float,
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Estimate, SE, df and t interval of each row of ``L`` on the link scale."""
    L = np.asarray(L, dtype=float)
    est = L @ np.asarray(res.params)
    se = np.sqrt(np.einsum("ij,jk,ik->i", L, np.asarray(res.cov_params()), L))
    df = _row_df(res, np.where(np.abs(L) > 1e-12, L, 0.0))
    q = stats.t.ppf(1.0 - alpha / 2.0, df)
    return est, se, df, est - q * se, est + q * se


def marginal_means(res: NegBinMixedGLMResults, factor: str, alpha: float = 0.05,
                   offset: float = 0.0) -> MarginalMeans:
    """Marginal means of ``factor``; see ``NegBinMixedGLMResults.marginal_means``."""
    alpha = _validation.check_alpha(alpha)
    L = _reference_grid(res, factor)
    est, se, df, lo, hi = _contrast_table(res, L, alpha)
    est, lo, hi = est + offset, lo + offset, hi + offset
    means = pd.DataFrame({"mean": np.exp(est), "mean_se": np.exp(est) * se,
                          "mean_ci_lower": np.exp(lo), "mean_ci_upper": np.exp(hi),
                          "df": df}, index=L.index)
    pairs = list(itertools.combinations(range(len(L)), 2))
    D = np.array([L.iloc[j].to_numpy() - L.iloc[i].to_numpy() for i, j in pairs]).reshape(
        len(pairs), L.shape[1])
    est, se, df, lo, hi = _contrast_table(res, D, alpha)
    t = est / se
    names = [f"{L.index[j]} / {L.index[i]}" for i, j in pairs]
    ratios = pd.DataFrame({"ratio": np.exp(est), "ci_lower": np.exp(lo), "ci_upper": np.exp(hi),
                           "t": t, "df": df, "p": 2.0 * stats.t.sf(np.abs(t), df)},
                          index=pd.Index(names, name="contrast"))
    return MarginalMeans(factor, means, ratios, L, alpha)


class PredictionMixin:
    """``predict``, ``get_prediction`` and ``marginal_means`` of ``NegBinMixedGLMResults``."""

    def predict(self, exog: pd.DataFrame | dict | ArrayLike | None = None, transform: bool = True,
                which: str = "mean", conditional: bool = False, *,
                offset: ArrayLike | float | None = None, exposure: ArrayLike | float | None = None,
                groups: ArrayLike | None = None,
                exog_re: ArrayLike | None = None) -> pd.Series | np.ndarray:
        """Predicted means (or linear predictors), population-level by default.

        One rule for the fitted rows and for new rows: ``conditional=False``
        sets the random effects to zero (statsmodels' ``MixedLM.predict``, R's
        ``predict(fit, level = 0)``); ``conditional=True`` adds the predicted
        random effects of each row's group (R's ``predict(fit, level = 1)``;
        nested components are not added, see :attr:`fittedvalues` for all
        levels).  A pandas model or pandas ``exog`` gives a Series.

        Parameters
        ----------
        exog : DataFrame, dict or array_like, optional
            New rows (through the formula for formula models); ``None``
            predicts the fitted rows.
        transform : bool
            Whether to pass ``exog`` through the formula.
        which : {"mean", "linear"}
            The mean ``exp(eta)`` or the linear predictor ``eta``.
        conditional : bool
            Include the groups' predicted random effects.
        offset, exposure : array_like or float, optional
            For new rows.  By default an ``offset``/``exposure`` that the
            fit took as a column name is read from the same column of
            ``exog``; a model fitted with an offset array needs one here.
        groups : array_like, optional
            Group labels of new rows for ``conditional=True``; by default
            the ``groups`` column of ``exog``.  An unseen group is an error.
        exog_re : array_like, optional
            Random-effects design of new array rows (``conditional=True``).

        Returns
        -------
        pandas.Series or ndarray

        Raises
        ------
        ValueError
            If a column is missing, a level or group was not in the fit,
            or the offset of new rows is unknown.
        statsmodels.tools.sm_exceptions.MissingDataError
            If a used column has missing values (the rows are named); with
            a model fitted with ``missing="drop"`` those rows predict NaN, with
            a warning.

        Examples
        --------
        >>> import pandas as pd
        >>> from glmmnb import NegBinMixedGLM
        >>> from glmmnb.datasets import microscopy
        >>> res = NegBinMixedGLM.from_formula(
        ...     "counts ~ RNAi", microscopy.load_pandas().data, groups="slide").fit()
        >>> res.predict(pd.DataFrame({"RNAi": ["Control", "Target"]})).round(2).tolist()
        [5.04, 7.51]
        """
        return predict(self, exog, transform, which, conditional, offset=offset,
                       exposure=exposure, groups=groups, exog_re=exog_re)

    def get_prediction(self, exog: pd.DataFrame | dict | ArrayLike | None = None,
                       which: str = "mean", conditional: bool = False, alpha: float = 0.05, *,
                       transform: bool = True, offset: ArrayLike | float | None = None,
                       exposure: ArrayLike | float | None = None, groups: ArrayLike | None = None,
                       exog_re: ArrayLike | None = None) -> PredictionResults:
        """Predictions with t-based confidence intervals.

        The interval of each row is formed on the link scale with a t
        quantile on the df of the linear function it estimates and mapped
        through ``exp``; standard errors come from :meth:`cov_params` (see
        Notes).  The df are emmeans' "containment" df for lme fits: the
        smallest ``ddf`` of the parameters the row involves (as
        :meth:`t_test`), except that the intercept counts with the number of
        groups - 1 instead of nlme's residual df; a ``fit(ddf="satterthwaite")``
        gives each row its own Satterthwaite df, as :meth:`t_test` of that
        row.  Rows and options are those of :meth:`predict`.

        Parameters
        ----------
        exog : DataFrame, dict or array_like, optional
            New rows; ``None`` for the fitted rows.
        which : {"mean", "linear"}
            Scale of the predictions.
        conditional : bool
            Condition on the groups' predicted random effects; the variance
            then includes the prediction error of the BLUP and its
            covariance with the fixed effects (Henderson's equations).
        alpha : float
            1 - confidence level.
        transform, offset, exposure, groups, exog_re
            As for :meth:`predict`.

        Returns
        -------
        glmmnb.prediction.PredictionResults
            ``summary_frame()`` has ``mean``, ``mean_se``,
            ``mean_ci_lower``, ``mean_ci_upper`` and ``df``.

        Notes
        -----
        ``cov_params()`` carries ``summary.lme``'s ``N / (N - p)``
        inflation, as emmeans does for ML ``lme`` fits, so a population
        interval equals emmeans' and, unless only the intercept is involved,
        the interval of the same contrast by :meth:`t_test`.  From R's
        ``vcov(fit)`` (not inflated) the standard errors are smaller by
        ``sqrt((N - p) / N)``.

        See Also
        --------
        nlme::predict.lme, emmeans::emmeans : R's point predictions and intervals.

        Examples
        --------
        >>> import pandas as pd
        >>> from glmmnb import NegBinMixedGLM
        >>> from glmmnb.datasets import microscopy
        >>> res = NegBinMixedGLM.from_formula(
        ...     "counts ~ RNAi", microscopy.load_pandas().data, groups="slide").fit()
        >>> frame = res.get_prediction(pd.DataFrame({"RNAi": ["Target"]})).summary_frame()
        >>> frame[["mean_ci_lower", "mean_ci_upper"]].round(2).values.tolist()
        [[6.27, 9.0]]
        """
        return get_prediction(self, exog, which, conditional, alpha, transform=transform,
                              offset=offset, exposure=exposure, groups=groups,
                              exog_re=exog_re)

    def marginal_means(self, factor: str, alpha: float = 0.05,
                       offset: float = 0.0) -> MarginalMeans:
        """Estimated marginal means of a factor and their ratios (R: ``emmeans``).

        Each level's mean is predicted on emmeans' reference grid: the other
        factors' levels averaged with equal weights and numeric covariates
        at their means, on the link scale, then mapped through ``exp``;
        intervals and tests use emmeans' covariance and containment df (see
        :meth:`get_prediction`).

        Parameters
        ----------
        factor : str
            A categorical column of the fixed part.
        alpha : float
            1 - confidence level.
        offset : float
            Log-scale offset of the grid; 0 gives rates per unit of exposure
            (emmeans' ``offset = 0``; emmeans' default is the offset at the
            mean exposure).

        Returns
        -------
        glmmnb.prediction.MarginalMeans
            ``.means`` (one row per level) and ``.ratios`` (every pair,
            ``"later / earlier"``, with t intervals and unadjusted p-values).

        See Also
        --------
        emmeans::emmeans, emmeans::pairs : the R functions mirrored.

        Examples
        --------
        >>> from glmmnb import NegBinMixedGLM
        >>> from glmmnb.datasets import microscopy
        >>> res = NegBinMixedGLM.from_formula(
        ...     "counts ~ RNAi", microscopy.load_pandas().data, groups="slide").fit()
        >>> res.marginal_means("RNAi").ratios["ratio"].round(3).tolist()
        [1.49]
        """
        return marginal_means(self, factor, alpha, offset)
