"""Results of a PQL fit: the results class, its pandas wrapper and the summary."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.base import model as base
from statsmodels.base import wrapper as wrap
from statsmodels.base.data import PandasData
from statsmodels.stats.contrast import ContrastResults

from . import inference
from ._formula import constraint_matrix
from ._ml import core_view
from ._validation import check_alpha, check_level
from .core.singular import find_boundaries
from .diagnostics import DiagnosticsMixin
from .prediction import PredictionMixin
from .random_effects import RandomEffects, _outermost_groups

if TYPE_CHECKING:
    from statsmodels.iolib.summary2 import Summary
    from statsmodels.stats.contrast import WaldTestResults

    from .core.satterthwaite import VarianceSensitivity
    from .workflows.subsample import SubsampleResults

__all__ = ["NegBinMixedGLMResults", "NegBinMixedGLMResultsWrapper"]


class NegBinMixedGLMResults(PredictionMixin, DiagnosticsMixin,
                            base.LikelihoodModelResults):
    """What a PQL fit of :class:`glmmnb.NegBinMixedGLM` found.

    Standard errors, t and p-values are those R's ``summary(glmmPQL_fit)``
    prints: nlme's ML covariance inflated by ``N / (N - p)``, with t tests on
    nlme's between/within denominator df (``ddf``).  ``cov_params()`` is
    that inflated covariance, so ``bse``, ``t_test`` and ``wald_test`` agree
    with the table; R's ``vcov(fit)`` is ``cov_params() * (N - p) / N``.

    Parameters
    ----------
    model : NegBinMixedGLM
        The model.
    params : ndarray
        Fixed effects.
    normalized_cov_params : ndarray
        ``cov_params() / scale``.
    scale : float
        Working residual variance (R's ``sigma^2``).
    pql : glmmnb.core.pql.PQLFit
        The numerical fit.
    theta : float
        NB2 shape used.
    theta_fit : glmmnb.core.theta.ThetaFit or None
        The ``glm.nb`` fit that estimated theta (``None`` if theta was given).
    ddf : ndarray
        Denominator df of each fixed effect.
    fit_options : dict
        The arguments of ``fit``.
    ddf_method : {"nlme", "satterthwaite", "residual"}
        The rule behind ``ddf`` and every test (``fit(ddf=...)``).
    working_lmm : glmmnb.core.satterthwaite.WorkingLMM, optional
        The final working LMM (for Satterthwaite df and :meth:`intervals`).
    sensitivity : glmmnb.core.satterthwaite.VarianceSensitivity, optional
        Its Satterthwaite pieces, if already computed.

    Attributes
    ----------
    theta, theta_source, se_theta : float, str, float
        NB2 shape, ``"glm.nb"`` or ``"fixed"``, and its standard error.
    ddf : ndarray
        Denominator df (a Series for pandas input).
    ddf_method : str
        ``"nlme"``, ``"satterthwaite"`` or ``"residual"``.
    model_terms : list of (str, list of int, float)
        The model's terms: name, columns and nlme's term df (R's
        ``fit$fixDF$terms``).
    cov_re : pandas.DataFrame
        Covariance of the groups' random coefficients, labelled by
        ``exog_re_names`` (an ndarray for array input).
    vcomp : ndarray
        Variances of the nested components, in ``model.vc_names`` order.
    n_iter, converged : int, bool
        Inner fits run (R's iteration count) and whether PQL converged.
    is_singular : bool
        Whether a random-effects component is at the boundary (a variance at
        0 relative to the residual, a correlation at +-1, a rank-deficient or
        unidentified covariance), by lme4's ``isSingular`` rule.
    singular_components : list of str
        Each such component and what it means.
    separation : dict or None
        Under complete separation (zero counts whose fitted means ran to 0),
        ``{"rows": row labels, "params": names of the fixed effects running
        off to minus infinity}``; their estimates are not meaningful.
    fittedvalues : ndarray
        Conditional means ``exp(X beta + Z b + offset)``.
    resid : ndarray
        Response residuals ``endog - fittedvalues``.
    resid_pearson, resid_deviance, resid_working : ndarray
        Pearson, deviance and working residuals (see their docstrings).
    fe_params, bse_fe : pandas.Series
        statsmodels' MixedLM names for ``params`` and ``bse``.
    bse_re : pandas.Series
        Standard errors of the random-effect variances (nlme's ``apVar``).
    random_effects_cov : dict
        Conditional covariance of each group's random effects.
    df_model : float
        Fixed effects other than the intercept (statsmodels' convention).

    See Also
    --------
    MASS::glmmPQL, nlme::summary.lme : the R output this mirrors.

    Examples
    --------
    >>> from glmmnb import NegBinMixedGLM
    >>> from glmmnb.datasets import microscopy
    >>> res = NegBinMixedGLM.from_formula(
    ...     "counts ~ RNAi", microscopy.load_pandas().data, groups="slide").fit()
    >>> res.pvalues.round(4).tolist()
    [0.0, 0.0253]
    """

    def __init__(self, model, params, normalized_cov_params, scale, *, pql, theta,
                 theta_fit, ddf, fit_options, ddf_method="nlme", working_lmm=None,
                 sensitivity=None, separation=None, use_t=True):
        super().__init__(model, params, normalized_cov_params, scale, use_t=use_t)
        core = core_view(pql, theta_fit)
        self.method, self.nagq = core["method"], core["nagq"]
        self.ddf_method = ddf_method
        self.working_lmm = working_lmm
        self.model_terms = inference.model_terms(model)
        if sensitivity is not None:
            self.__dict__["variance_sensitivity"] = sensitivity
        self.theta = float(theta)
        self.theta_source = core["theta_source"]
        self.se_theta = core["se_theta"]
        self.theta_at_limit = core["theta_at_limit"]
        self._llf, self.llf_start = core["llf"], core["llf_start"]
        self.cov_joint = core["cov_joint"]
        self._phi = core["phi"]
        self.ddf = np.asarray(ddf)
        self.n_iter = pql.n_iter
        self.converged = core["converged"]
        self.fit_options = dict(fit_options)
        self.nobs = model.nobs
        self.n_groups = model.n_groups
        self.group_sizes = np.bincount(model.levels[0].codes)
        self.df_resid = float(self.ddf.max())
        self.fittedvalues = pql.mu
        self.resid = model.endog - pql.mu
        self.df_model = model.df_model
        # PQL's final working LMM (an ML fit has none)
        self._working_weights = getattr(pql, "weights", None)
        self._working_response = getattr(pql, "working_response", None)
        if getattr(pql, "lmm", None) is not None:
            # R's residuals(fit, type = "response"): zz minus the last lme's fitted values
            self.resid_working = pql.working_response - pql.lmm.fitted
        self.cov_re = core["cov_re"][0]
        self.vcomp = np.array([c[0, 0] for c in core["cov_re"][1:]])
        self._ranef = core["random_effects"]
        # an ML fit has no residual scale: its covariances are the relative ones
        self.singular_components = _singular_components(
            model, core["cov_re"], pql.lmm.scale if self.method == "pql" else 1.0)
        self.is_singular = bool(self.singular_components)
        self.separation = separation
        self._level_labels = model.group_labels
        self._outermost = _outermost_groups(model.levels)
        self.exog_re_names = list(model.exog_re_names)
        self.vc_names = list(model.vc_names)
        # per-row arrays that remove_data() should drop; the summary does not need them
        self._data_attr.extend(["fittedvalues", "resid", "resid_working", "_working_weights",
                                "_working_response"])

    @cached_property
    def variance_sensitivity(self) -> VarianceSensitivity:
        """Satterthwaite's pieces on the working LMM (:mod:`glmmnb.core.satterthwaite`)."""
        return inference.sensitivity(self)

    @cached_property
    def pvalues(self) -> np.ndarray:
        """Two-sided p-values from the t distribution with ``ddf`` (normal if ``use_t=False``)."""
        if not self.use_t:
            return 2.0 * stats.norm.sf(np.abs(self.tvalues))
        with np.errstate(invalid="ignore"):
            return 2.0 * stats.t.sf(np.abs(self.tvalues), self.ddf)

    def conf_int(self, alpha: float = 0.05, cols: Sequence[int] | None = None) -> np.ndarray:
        """t-based confidence intervals on the fit's ``ddf``.

        The standard errors are those of the summary (``bse``, nlme's
        ``N / (N - p)`` adjusted ones); R's ``intervals(fit)`` uses the
        unadjusted covariance, see :meth:`intervals`.

        Parameters
        ----------
        alpha : float
            1 - confidence level.
        cols : array_like of int, optional
            Parameters to include.

        Returns
        -------
        ndarray, shape (p, 2)

        Examples
        --------
        >>> from glmmnb import NegBinMixedGLM
        >>> from glmmnb.datasets import microscopy
        >>> res = NegBinMixedGLM.from_formula(
        ...     "counts ~ RNAi", microscopy.load_pandas().data, groups="slide").fit()
        >>> res.conf_int().round(3).values.tolist()[1]
        [0.120, 0.677]
        """
        alpha = check_alpha(alpha)
        q = (stats.t.ppf(1.0 - alpha / 2.0, self.ddf) if self.use_t
             else np.full(len(self.ddf), stats.norm.ppf(1.0 - alpha / 2.0)))
        ci = np.column_stack([self.params - q * self.bse, self.params + q * self.bse])
        return ci if cols is None else ci[np.asarray(cols)]

    def t_test(self, r_matrix: Any, cov_p: np.ndarray | None = None,
               use_t: bool | None = None) -> ContrastResults:
        """statsmodels' ``t_test`` with each row tested on its own df.

        With nlme's rule a contrast is tested on the smallest ``ddf`` of the
        parameters it involves, so ``t_test("RNAi[T.Target] = 0")``
        reproduces the table; with ``fit(ddf="satterthwaite")`` each row gets
        its Satterthwaite df.  String hypotheses and arrays work as in
        statsmodels.

        Parameters
        ----------
        r_matrix : str, array_like or tuple
            The hypotheses, as for statsmodels' ``t_test``.
        cov_p : ndarray, optional
            Alternative covariance.
        use_t : bool, optional
            Ignored: the fit's ``use_t`` decides (PQL is always t-based).

        Returns
        -------
        statsmodels.stats.contrast.ContrastResults

        Examples
        --------
        >>> from glmmnb import NegBinMixedGLM
        >>> from glmmnb.datasets import microscopy
        >>> res = NegBinMixedGLM.from_formula(
        ...     "counts ~ RNAi", microscopy.load_pandas().data, groups="slide").fit()
        >>> round(float(res.t_test("RNAi[T.Target] = 0").pvalue), 4)
        0.0253
        """
        if not self.use_t:
            return super().t_test(r_matrix, cov_p=cov_p, use_t=False)
        plain = super().t_test(r_matrix, cov_p=cov_p, use_t=True)
        R = constraint_matrix(r_matrix, self.model.data.cov_names)
        ddf = inference.hypothesis_ddf(self, R)
        return ContrastResults(effect=plain.effect, t=plain.tvalue, sd=plain.sd,
                               df_denom=ddf[0] if ddf.size == 1 else ddf)

    def wald_test(self, r_matrix: Any, cov_p: np.ndarray | None = None,
                  invcov: np.ndarray | None = None, use_f: bool | None = None,
                  df_constraints: int | None = None, scalar: bool = True) -> ContrastResults:
        """statsmodels' ``wald_test`` as an F test on the hypothesis' own df.

        The denominator df are those of the parameters the hypothesis
        involves: with nlme's rule the smallest ``ddf`` among them, with
        Satterthwaite's lmerTest's F-test df.  ``f_test`` calls this.

        Parameters
        ----------
        r_matrix : str, array_like or tuple
            The hypotheses, as for statsmodels (``"RNAi[T.Target] = 0"``).
        cov_p, invcov : ndarray, optional
            Alternative covariance or its inverse.
        use_f : bool, optional
            ``False`` asks for a chi-square test; it ignores the grouping
            (infinite denominator df) and warns so.
        df_constraints : int, optional
            Numerator df to use instead of the rank.
        scalar : bool
            Return the statistic as a scalar.

        Returns
        -------
        statsmodels.stats.contrast.ContrastResults

        See Also
        --------
        nlme::anova.lme : with ``L =`` (R insists on equal df; we take the smallest).

        Examples
        --------
        >>> from glmmnb import NegBinMixedGLM
        >>> from glmmnb.datasets import microscopy
        >>> res = NegBinMixedGLM.from_formula(
        ...     "counts ~ RNAi", microscopy.load_pandas().data, groups="slide").fit()
        >>> ft = res.f_test("RNAi[T.Target] = 0")
        >>> int(ft.df_denom), round(float(ft.pvalue), 4)
        (2, 0.0253)
        """
        return inference.wald_test(self, r_matrix, cov_p=cov_p, invcov=invcov, use_f=use_f,
                                   df_constraints=df_constraints, scalar=scalar)

    def wald_test_terms(self, skip_single: bool = False, extra_constraints: Any = None,
                        combine_terms: Any = None, scalar: bool = True) -> WaldTestResults:
        """F test of every model term on its own df (``anova(type="marginal")``).

        Parameters
        ----------
        skip_single : bool
            Leave out terms of a single column.
        extra_constraints : list of (str, ndarray), optional
            More hypotheses to test, each a name and a constraint matrix.
        combine_terms : list of str, optional
            Test all columns of the terms whose name contains each string jointly.
        scalar : bool
            As statsmodels.

        Returns
        -------
        statsmodels.stats.contrast.WaldTestResults
            ``table`` has ``statistic`` (F), ``pvalue``, ``df_constraint`` and
            ``df_denom``.

        Examples
        --------
        >>> from glmmnb import NegBinMixedGLM
        >>> from glmmnb.datasets import microscopy
        >>> res = NegBinMixedGLM.from_formula(
        ...     "counts ~ RNAi", microscopy.load_pandas().data, groups="slide").fit()
        >>> res.wald_test_terms().table["df_denom"].tolist()
        [196.0, 2.0]
        """
        return inference.wald_test_terms(self, skip_single, extra_constraints, combine_terms,
                                         scalar)

    def anova(self, type: str = "sequential") -> pd.DataFrame:
        """F tests of the model terms, as R's ``anova.lme`` on the glmmPQL fit.

        Parameters
        ----------
        type : {"sequential", "marginal"}
            ``"sequential"`` (R's and statsmodels' default): each term given
            the ones before it; ``"marginal"``: each term given all the
            others (the test of a treatment adjusted for everything else,
            what :meth:`wald_test_terms` gives).

        Returns
        -------
        pandas.DataFrame
            ``numDF``, ``denDF``, ``F-value``, ``p-value`` per term.  F uses
            the summary's covariance (``adjustSigma`` as in R); ``denDF`` is
            nlme's term df (or Satterthwaite's / ``N - p``, per ``fit(ddf=)``).

        Warns
        -----
        UserWarning
            If a term mixes columns estimated between and within groups: nlme
            then tests all of it on the within-group df.

        See Also
        --------
        nlme::anova.lme : the R function this reproduces.

        Examples
        --------
        >>> from glmmnb import NegBinMixedGLM
        >>> from glmmnb.datasets import microscopy
        >>> res = NegBinMixedGLM.from_formula(
        ...     "counts ~ RNAi", microscopy.load_pandas().data, groups="slide").fit()
        >>> res.anova("marginal").loc["RNAi", ["numDF", "denDF"]].tolist()
        [1.0, 2.0]
        """
        return inference.anova(self, type)

    def intervals(self, alpha: float = 0.05, which: str = "all") -> inference.Intervals:
        """Confidence intervals of all parameters, as R's ``intervals(fit)``.

        Fixed effects: t intervals on the fit's ``ddf`` with the unadjusted
        ML covariance (R's ``vcov(fit)``; :meth:`conf_int` uses the summary's
        adjusted one).  Random-effect SDs and correlations and the residual
        SD: Wald intervals on nlme's transformed scale (log SD, log-odds-like
        correlation, log sigma) from the approximate covariance nlme calls
        ``apVar``, mapped back.

        Parameters
        ----------
        alpha : float
            1 - confidence level (R's ``level = 1 - alpha``).
        which : {"all", "fixed", "var-cov"}
            As R.

        Returns
        -------
        glmmnb.inference.Intervals
            ``fixed`` (DataFrame ``lower``, ``est.``, ``upper``), ``random``
            (dict of DataFrames per level) and ``sigma`` (Series).

        Raises
        ------
        ValueError
            If the approximate covariance of the variance parameters is not
            positive definite (R's intervals() stops too); ``which="fixed"``
            still works.  A variance at or near zero alone does not raise:
            its limits are 0 and infinity.

        Notes
        -----
        nlme's ``apVar`` is a finite-difference Hessian (``fdHess``) with a
        relative step of 6e-6, at which rounding moves R's printed
        variance-parameter limits by up to a few percent; the Hessian here
        is extrapolated to convergence and matches R's with
        ``lmeControl(.relStep = 1e-4)``.

        See Also
        --------
        nlme::intervals.lme : the R function this reproduces.

        Examples
        --------
        >>> from glmmnb import NegBinMixedGLM
        >>> from glmmnb.datasets import microscopy
        >>> res = NegBinMixedGLM.from_formula(
        ...     "counts ~ RNAi", microscopy.load_pandas().data, groups="slide").fit()
        >>> res.intervals().fixed.loc["RNAi[T.Target]"].round(4).tolist()
        [0.1218, 0.3988, 0.6759]
        """
        return inference.intervals(self, alpha, which)

    @cached_property
    def llf(self) -> float:
        """Maximised log-likelihood (ML methods); ``nan`` for PQL, as R's ``NA``."""
        return self._llf

    @cached_property
    def df_modelwc(self) -> float:
        """Estimated parameters: fixed effects, variance parameters and theta if estimated."""
        if self.method == "pql":
            return np.nan
        k_cov = sum(lev.n_theta for lev in self.model.levels)
        return float(len(self.params) + k_cov + (self.theta_source == "ML"))

    @cached_property
    def aic(self) -> float:
        """``-2 llf + 2 df_modelwc``; ``nan`` for PQL, as R's ``AIC`` of a glmmPQL fit."""
        return -2.0 * self.llf + 2.0 * self.df_modelwc

    @cached_property
    def bic(self) -> float:
        """``-2 llf + log(nobs) df_modelwc``; ``nan`` for PQL."""
        return -2.0 * self.llf + np.log(self.nobs) * self.df_modelwc

    def compare_lr_test(
            self, restricted: NegBinMixedGLMResults | NegBinMixedGLMResultsWrapper,
    ) -> tuple[float, float, float]:
        """Likelihood-ratio test against a nested model (R: ``anova(m0, m1)``).

        Parameters
        ----------
        restricted : NegBinMixedGLMResults
            A fit of a sub-model to the same rows and groups, by the same method.

        Returns
        -------
        lr_stat : float
        p_value : float
        df_diff : float

        Raises
        ------
        ValueError
            If either fit is PQL, the methods differ, or the models are not nested.

        Examples
        --------
        >>> from glmmnb import NegBinMixedGLM
        >>> from glmmnb.datasets import microscopy
        >>> dat = microscopy.load_pandas().data
        >>> m1 = NegBinMixedGLM.from_formula("counts ~ RNAi", dat, groups="slide")
        >>> m0 = NegBinMixedGLM.from_formula("counts ~ 1", dat, groups="slide")
        >>> stat, p, df = m1.fit(method="laplace").compare_lr_test(m0.fit(method="laplace"))
        >>> round(stat, 2), df
        (9.83, 1.0)
        """
        from ._ml import lr_test

        return lr_test(self, restricted)

    def profile_ci(self, name: str = "theta", alpha: float = 0.05) -> tuple[float, float]:
        """Profile-likelihood interval of theta or of a random-effect SD (ML fits).

        Parameters
        ----------
        name : str
            ``"theta"``, the groups' name (SD of a scalar random intercept)
            or a nested level in ``vc_names``.
        alpha : float
            1 - confidence level.

        Returns
        -------
        (lower, upper) : tuple of float

        See Also
        --------
        glmmnb._ml.profile_ci : how the profile is taken.

        Examples
        --------
        >>> from glmmnb import NegBinMixedGLM
        >>> from glmmnb.datasets import microscopy
        >>> res = NegBinMixedGLM.from_formula(
        ...     "counts ~ RNAi", microscopy.load_pandas().data, groups="slide").fit(
        ...     method="laplace")
        >>> lo, hi = res.profile_ci("theta")
        >>> bool(lo < res.theta < hi)
        True
        """
        from ._ml import profile_ci

        return profile_ci(self, name, alpha)

    @property
    def scale_sd(self) -> float:
        """Residual SD of the working model (R's ``fit$sigma``)."""
        return float(np.sqrt(self.scale))

    def ranef(self, level: str | None = None) -> pd.DataFrame:
        """Predicted random effects of one level as a DataFrame (R: ``ranef``).

        Parameters
        ----------
        level : str, optional
            A name in ``vc_names``; default the groups.

        Returns
        -------
        pandas.DataFrame
            One row per group, one column per random coefficient.

        Examples
        --------
        >>> from glmmnb import NegBinMixedGLM
        >>> from glmmnb.datasets import microscopy
        >>> res = NegBinMixedGLM.from_formula(
        ...     "counts ~ RNAi", microscopy.load_pandas().data, groups="slide").fit()
        >>> res.ranef().shape
        (4, 1)
        """
        k = 0 if check_level(level, self.vc_names) is None else 1 + self.vc_names.index(level)
        cols = self.exog_re_names if k == 0 else [level]
        return pd.DataFrame(self._ranef[k], index=pd.Index(self._level_labels[k]),
                            columns=cols)

    @cached_property
    def random_effects(self) -> RandomEffects:
        """Mapping of each group to its predicted random effects (MixedLM's layout).

        ``res.random_effects[label]`` is a Series of the group's random
        coefficients; nested components are added to their group's Series as
        ``"name[label]"`` entries.  The mapping is read-only and builds each
        Series when it is read (thousands of groups cost no time until then);
        ``dict(res.random_effects)`` is statsmodels' plain dict.

        Examples
        --------
        >>> from glmmnb import NegBinMixedGLM
        >>> from glmmnb.datasets import microscopy
        >>> res = NegBinMixedGLM.from_formula(
        ...     "counts ~ RNAi", microscopy.load_pandas().data, groups="slide").fit()
        >>> len(res.random_effects), res.random_effects["Target_day2"].index.tolist()
        (4, ['slide'])
        """
        nested = [(name, self._ranef[k + 1][:, 0], self._level_labels[k + 1], outer)
                  for k, (name, outer) in enumerate(zip(self.vc_names, self._outermost))]
        return RandomEffects(self._level_labels[0], self._ranef[0], self.exog_re_names, nested)

    def rate_ratios(self, alpha: float = 0.05) -> pd.DataFrame:
        """Incidence-rate ratios ``exp(params)`` with t-based confidence limits.

        For a log link these are the multiplicative effects on the expected
        count per cell (R: ``exp(fixef(fit))``, with ``exp(intervals(fit))``).

        Parameters
        ----------
        alpha : float
            1 - confidence level.

        Returns
        -------
        pandas.DataFrame
            Columns ``IRR`` and the interval limits, one row per effect.

        Examples
        --------
        >>> from glmmnb import NegBinMixedGLM
        >>> from glmmnb.datasets import microscopy
        >>> res = NegBinMixedGLM.from_formula(
        ...     "counts ~ RNAi", microscopy.load_pandas().data, groups="slide").fit()
        >>> res.rate_ratios()["IRR"].round(3).tolist()
        [5.04, 1.49]
        """
        ci = np.exp(np.asarray(self.conf_int(alpha)))
        return pd.DataFrame({"IRR": np.exp(np.asarray(self.params)),
                             f"[{alpha / 2:g}": ci[:, 0], f"{1 - alpha / 2:g}]": ci[:, 1]},
                            index=list(self.model.exog_names))

    def subsample(self, size: int, n_rep: int, random_state: Any = None,
                  n_jobs: int | None = None, progress: bool = False,
                  **fit_kwargs: Any) -> SubsampleResults:
        """The tutorial's subsampling study: refit on random subsets of rows.

        Theta is held at this fit's value; see :func:`glmmnb.workflows.subsample.subsample`.

        Parameters
        ----------
        size : int
            Rows per subset.
        n_rep : int
            Number of subsets.
        random_state : int or numpy.random.Generator, optional
            Seed; the numbers do not depend on ``n_jobs``.
        n_jobs : int, optional
            joblib workers; the default follows an active
            ``joblib.parallel_config`` (e.g. a Dask cluster), else one.
        progress : bool
            Show a tqdm progress bar.
        **fit_kwargs
            Passed to each refit.

        Returns
        -------
        glmmnb.workflows.subsample.SubsampleResults
            ``.params`` and ``.pvalues`` DataFrames, ``summary()`` of the
            p-value quantiles like R's ``summary(pvals)``.

        Examples
        --------
        >>> from glmmnb import NegBinMixedGLM
        >>> from glmmnb.datasets import microscopy
        >>> res = NegBinMixedGLM.from_formula(
        ...     "counts ~ RNAi", microscopy.load_pandas().data, groups="slide").fit()
        >>> res.subsample(100, 10, random_state=0).pvalues.shape
        (10, 2)
        """
        from .workflows.subsample import subsample

        return subsample(self, size, n_rep, random_state=random_state, n_jobs=n_jobs,
                         progress=progress, **fit_kwargs)

    def summary(self, yname: str | None = None, xname: Sequence[str] | None = None,
                title: str | None = None, alpha: float = 0.05, rate_ratios: bool = False,
                corr: bool = False) -> Summary:
        """Summary table in R's terms (text, HTML and LaTeX).

        Parameters
        ----------
        yname : str, optional
            Name of the response; default ``model.endog_names``.
        xname : list of str, optional
            Names of the fixed effects, one per parameter.
        title : str, optional
            Title line.
        alpha : float
            1 - confidence level of the intervals.
        rate_ratios : bool
            Add a table of incidence-rate ratios ``exp(params)`` with their
            intervals (:meth:`rate_ratios`).
        corr : bool
            Add the correlation of the fixed effects (:meth:`corr_params`),
            as R's ``summary`` prints it.

        Returns
        -------
        statsmodels.iolib.summary2.Summary

        Examples
        --------
        >>> from glmmnb import NegBinMixedGLM
        >>> from glmmnb.datasets import microscopy
        >>> res = NegBinMixedGLM.from_formula(
        ...     "counts ~ RNAi", microscopy.load_pandas().data, groups="slide").fit()
        >>> "PQL" in res.summary().as_text()
        True
        """
        from .summary import build_summary

        return build_summary(self, alpha, rate_ratios, yname=yname, xname=xname,
                             title=title, corr=corr)

    def summary2(self, yname: str | None = None, xname: Sequence[str] | None = None,
                 title: str | None = None, alpha: float = 0.05, rate_ratios: bool = False,
                 corr: bool = False) -> Summary:
        """The same as :meth:`summary` (already built with statsmodels' ``summary2``).

        Parameters
        ----------
        yname, xname, title, alpha, rate_ratios, corr
            As for :meth:`summary`.

        Returns
        -------
        statsmodels.iolib.summary2.Summary

        Examples
        --------
        >>> from glmmnb import NegBinMixedGLM
        >>> from glmmnb.datasets import microscopy
        >>> res = NegBinMixedGLM.from_formula(
        ...     "counts ~ RNAi", microscopy.load_pandas().data, groups="slide").fit()
        >>> res.summary2(title="Seed").as_text().splitlines()[0].strip()
        'Seed'
        """
        return self.summary(yname, xname, title, alpha, rate_ratios, corr)


def _singular_components(model, cov_re, scale):
    """Descriptions of the random-effects components at the boundary (lme4's isSingular)."""
    group = getattr(model, "group_name", "Group")
    coefs = ["(Intercept)" if n == group else n for n in model.exog_re_names]
    found = find_boundaries(cov_re, scale, model._Z, model.levels, coefs,
                            [group] + list(model.vc_names))
    return [str(b) for b in found]


class NegBinMixedGLMResultsWrapper(base.LikelihoodResultsWrapper):
    """Pandas labels for :class:`NegBinMixedGLMResults` (statsmodels' wrapper)."""

    _attrs = {
        "ddf": "columns",
        "resid_pearson": "rows",
        "resid_deviance": "rows",
        "resid_working": "rows",
        "fe_params": "columns",
        "bse_fe": "columns",
        "cov_re": ("generic_columns_2d", "exog_re_names"),
    }
    _wrap_attrs = wrap.union_dicts(base.LikelihoodResultsWrapper._wrap_attrs, _attrs)
    # conf_int is labelled below: statsmodels' "columns" wrapping labels all
    # parameters, and fails on the rows that ``cols`` selects
    _wrap_methods = {k: v for k, v in base.LikelihoodResultsWrapper._wrap_methods.items()
                     if k != "conf_int"}

    def conf_int(self, alpha: float = 0.05,
                 cols: Sequence[int] | None = None) -> pd.DataFrame | np.ndarray:
        ci = self._results.conf_int(alpha=alpha, cols=cols)
        names = getattr(self.model.data, "param_names", None)
        if not isinstance(self.model.data, PandasData) or names is None:
            return ci
        if cols is not None:
            names = np.asarray(names, dtype=object)[np.asarray(cols)]
        return pd.DataFrame(ci, index=list(np.atleast_1d(names)))

    conf_int.__doc__ = NegBinMixedGLMResults.conf_int.__doc__


wrap.populate_wrapper(NegBinMixedGLMResultsWrapper, NegBinMixedGLMResults)
