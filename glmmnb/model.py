"""The model class: data, formula handling and ``fit``."""

from __future__ import annotations

import contextlib
import dataclasses
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from statsmodels.base import model as base
from statsmodels.base.data import PandasData
from statsmodels.formula._manager import FormulaManager
from patsy import PatsyError
from statsmodels.tools.sm_exceptions import ConvergenceWarning, MissingDataError

from . import _formula, _ml, _validation, _validation_formula, inference
from .core.ddf import nlme_strata
from .core.negbin import degenerate_means, separated_rows
from .core.nbglm import SeparationError, fit_nb_glm
from .core.grouping import build_levels
from .core._threads import one_blas_thread
from .core.lmm import _row_structure
from .core.pql import fit_pql
from .results import NegBinMixedGLMResults, NegBinMixedGLMResultsWrapper
from .core.scaling import standardizing_transform
from .core.separation import separated_params, separation_transform
from .core.singular import SingularFitWarning, check_re_design
from .core.theta import estimate_theta

__all__ = ["NegBinMixedGLM"]

_SAME = object()  # refit(theta=...) default: this model's own theta setting

# what _design() and _nlme_strata() keep: recomputed on demand, never pickled
_DESIGN_CACHES = ("_design_cache", "_strata_cache")


def _take(values, keep):
    if values is None or keep is None:
        return values
    if isinstance(values, (pd.Series, pd.DataFrame)):
        return values.loc[keep]
    return np.asarray(values)[keep]


class NegBinMixedGLM(base.LikelihoodModel):
    """Negative-binomial GLMM with a log link, fitted by PQL or maximum likelihood.

    ``log E[y | b] = X beta + Z b + offset`` with ``Var(y | b) = mu + mu^2 /
    theta``.  The random part is a random intercept per group, correlated
    random coefficients per group (``exog_re``), and optionally random
    intercepts of factors nested in the groups (``vc_groups``).

    Parameters
    ----------
    endog : array_like, shape (nobs,)
        Counts.
    exog : array_like, shape (nobs, p)
        Fixed-effects design (include a constant for an intercept).
    groups : array_like, shape (nobs,)
        Group labels (R: the ``slide`` in ``random = ~ 1 | slide``).
    exog_re : array_like, shape (nobs, q), optional
        Random-coefficient design for the groups; default a random intercept.
    vc_groups : dict of str -> array_like, optional
        Labels of factors nested in the groups, outermost first, each with a
        random intercept (R: ``random = ~ 1 | groups/slide``).
    offset : array_like, optional
        Offset on the log scale.
    exposure : array_like, optional
        Exposure; its log is added to the offset.
    theta : float, optional
        NB2 shape.  ``None`` estimates it: for PQL as the ML theta of the
        fixed-effects NB GLM (R: ``MASS::glm.nb(fixed)$theta``), for
        ``fit(method="laplace" | "agq")`` jointly with the mixed model (R:
        ``glmmTMB(family = nbinom2)``); a positive number fixes it;
        ``numpy.inf`` is the Poisson limit.
    missing : {"none", "drop", "raise"}
        Missing values: ``"drop"`` drops the rows, the others raise
        :class:`statsmodels.tools.sm_exceptions.MissingDataError`.
    **kwargs
        Passed to statsmodels' model base (formula bookkeeping).

    Notes
    -----
    Inputs are checked before any fitting (:mod:`glmmnb._validation`): a
    missing value, a negative, infinite, all-zero or constant response, a
    non-finite design, offset or exposure, ``exposure <= 0``, collinear
    fixed effects or inputs of different lengths raise an error naming the
    input and rows.  Non-integer counts are kept with a warning, as R's
    ``glm`` keeps them.  Fits that can go on but deserve care warn: a single
    group, one row per group, groups whose counts are all zero, a theta that
    runs off to infinity, a fixed effect with 0 denominator df (NaN p-value,
    as in R) and PQL non-convergence; the summary repeats these.

    See Also
    --------
    MASS::glmmPQL : the R function whose results this reproduces.
    statsmodels.regression.mixed_linear_model.MixedLM : the Gaussian analogue.

    Examples
    --------
    >>> from glmmnb import NegBinMixedGLM
    >>> from glmmnb.datasets import microscopy
    >>> dat = microscopy.load_pandas().data
    >>> res = NegBinMixedGLM.from_formula("counts ~ RNAi", dat, groups="slide").fit()
    >>> res.params.round(4).tolist(), res.ddf.tolist()
    ([1.6174, 0.3988], [196, 2])
    """

    def __init__(self, endog: Any, exog: Any, groups: Any, exog_re: Any = None,
                 vc_groups: Mapping[str, Any] | None = None, offset: Any = None,
                 exposure: Any = None, theta: float | None = None, missing: str = "none",
                 **kwargs: Any) -> None:
        _validation.check_array_inputs(endog, exog, vc_groups)
        vc_groups = dict(vc_groups or {})
        arrays = {"endog": endog, "exog": exog, "groups": groups, "exog_re": exog_re,
                  "offset": offset, "exposure": exposure}
        arrays.update({f"vc_groups[{k!r}]": v for k, v in vc_groups.items()})
        keep = _validation.missing_mask(arrays, missing, getattr(endog, "index", None))
        if keep is not None:
            endog, exog, groups, exog_re, offset, exposure = (
                _take(a, keep) for a in (endog, exog, groups, exog_re, offset, exposure))
            vc_groups = {k: _take(v, keep) for k, v in vc_groups.items()}
        self.n_dropped = 0 if keep is None else int((~keep).sum())
        kwargs.pop("missing_idx", None)
        _validation.check_model_kwargs(kwargs)
        super().__init__(endog, exog, groups=groups, exog_re=exog_re, offset=offset,
                         exposure=exposure, missing="none", **kwargs)
        self.theta = _validation.check_theta(theta)
        self.vc_groups = vc_groups
        self.missing = missing
        self._init_keys.extend(["theta", "vc_groups"])
        self._setup()
        # remove_data() wipes these too (statsmodels lists only endog/exog).
        self._data_attr.extend(
            ["groups", "exog_re", "offset", "exposure", "_offset", "_Z", "levels",
             *_DESIGN_CACHES])

    def _setup(self):
        index = getattr(self.data, "row_labels", None)
        self.endog = _validation.check_counts(self.endog, self.endog_names, index)
        self.exog = _validation.check_design(self.exog, self.exog_names)
        nobs = self.endog.shape[0]
        labels = self.groups
        self.groups = _validation.check_groups(labels, nobs)
        coded = _category_codes(labels)
        self._offset = _validation.check_offset(self.offset, self.exposure, nobs, index)
        if self.exog_re is None:
            Z = np.ones((nobs, 1))
            names = getattr(self.data, "exog_re_names", None) or ["Group"]
        else:
            Z = _validation.exog_re_matrix(self.exog_re, nobs)
            names = getattr(self.data, "exog_re_names", None) or [
                f"re{j + 1}" for j in range(Z.shape[1])]
            Z = _validation.check_exog_re(Z, names)
        k_re = Z.shape[1]
        nested = [(k, _validation.check_groups(v, nobs, f"vc_groups[{k!r}]"))
                  for k, v in self.vc_groups.items()]
        if nested:
            Z = np.column_stack([Z, np.ones(nobs)])
        self.levels, self.group_labels = build_levels(self.groups, nested, k_re, Z.shape[1] - 1,
                                                      coded)
        _validation.check_grouping(self.endog, self.levels[0].codes, self.group_labels[0])
        self._Z = Z
        self.k_re = k_re
        self.exog_re_names = list(names)
        self.data.exog_re_names = self.exog_re_names
        self.vc_names = [k for k, _ in nested]
        self.n_groups = self.levels[0].n_groups
        self.nobs = float(nobs)
        if nobs <= self.exog.shape[1]:
            raise ValueError(f"{nobs} observations cannot estimate {self.exog.shape[1]} "
                             "fixed effects; more rows are needed")

    def initialize(self) -> None:
        """Set the model degrees of freedom (statsmodels' convention)."""
        # full column rank is enforced by the input checks (collinear columns
        # are an error), so the rank is the number of columns
        nobs, p = np.shape(self.exog)
        self.df_model = float(p - 1)
        self.df_resid = float(nobs - p)

    @classmethod
    def from_formula(cls, formula: str, data: pd.DataFrame, groups: Any = None,
                     re_formula: str | None = None, vc_formula: Mapping[str, str] | None = None,
                     offset: Any = None, exposure: Any = None, theta: float | None = None,
                     missing: str = "none", subset: Any = None, *args: Any,
                     **kwargs: Any) -> NegBinMixedGLM:
        """Create a model from a formula and a DataFrame.

        Parameters
        ----------
        formula : str
            Fixed part, e.g. ``"counts ~ RNAi"`` (patsy syntax, treatment
            contrasts: the names match R's ``(Intercept)``, ``RNAiTarget``
            as ``Intercept``, ``RNAi[T.Target]``).
        data : pandas.DataFrame
            The data; it is never modified.
        groups : str or array_like
            Column name or labels of the groups (R: ``random = ~ 1 | slide``).
            A pandas Series (here and for ``offset``/``exposure``) is matched
            to ``data`` by its index, never by position; an array is taken
            in row order.
        re_formula : str, optional
            Random coefficients of the groups, e.g. ``"~area"`` (intercept and
            slope, R: ``~ area | slide``) or ``"0 + area"``; default a random
            intercept.
        vc_formula : dict of str -> str, optional
            Factors nested in the groups, each ``"0 + C(col)"`` (R:
            ``~ 1 | groups/col``); the groups keep their random intercept.
        offset, exposure : str or array_like, optional
            Column name or values; ``exposure`` enters as its log.
        theta : float, optional
            Fixed NB2 shape; ``None`` estimates it (R: ``glm.nb``).
        missing : {"none", "drop", "raise"}
            Missing-value policy over every column the model uses.
        subset : array_like, optional
            Row labels or boolean mask selecting rows of ``data``.  Factor
            levels that no selected row has are dropped, as in R.
        *args, **kwargs
            Passed to the model constructor; ``eval_env`` sets the namespace
            of every formula (default: the caller's, as statsmodels does).

        Returns
        -------
        NegBinMixedGLM

        Raises
        ------
        TypeError, ValueError, KeyError
            For an input of the wrong type or shape, a column that is not in
            ``data``, lme4's ``(x | g)`` syntax (the message shows the call to
            write instead), or a Series whose index cannot be matched.
        NotImplementedError
            For ``weights=``, ``family=`` and crossed grouping factors.

        Examples
        --------
        >>> from glmmnb import NegBinMixedGLM
        >>> from glmmnb.datasets import microscopy
        >>> dat = microscopy.load_pandas().data
        >>> NegBinMixedGLM.from_formula("counts ~ RNAi", dat, groups="slide").exog_names
        ['Intercept', 'RNAi[T.Target]']
        """
        env = _formula.caller_env(kwargs.pop("eval_env", None), 1)
        _validation_formula.check_formula_call(formula, data, groups, re_formula, vc_formula,
                                               kwargs)
        extra = {"groups": groups, "offset": offset, "exposure": exposure}
        names = {k: v if isinstance(v, str) else k for k, v in extra.items()}
        data, frame, extra, keep = _formula_rows(data, formula, re_formula, vc_formula, extra,
                                                 names, subset, missing)
        group_name = names["groups"] if names["groups"] != "groups" else "Group"
        exog_re, re_names = None, [group_name]
        if re_formula is not None:
            exog_re, re_names = _formula.re_design(re_formula, frame, group_name, env)
        vc_groups = {k: _formula.nested_labels(k, v, data, env)
                     for k, v in (vc_formula or {}).items()}
        with _transform_nan_is_missing(formula):
            mod = super().from_formula(
                formula, frame, *args, groups=extra["groups"], exog_re=exog_re,
                vc_groups=vc_groups, offset=extra["offset"], exposure=extra["exposure"],
                theta=theta, missing="none", eval_env=env, **kwargs)
        mod.exog_re_names = mod.data.exog_re_names = re_names
        mod.re_formula, mod.vc_formula, mod.group_name = re_formula, vc_formula, group_name
        # new rows for predict() carry these columns, as the fit did
        mod.offset_column, mod.exposure_column, mod.groups_column = (
            v if isinstance(v, str) else None for v in (offset, exposure, groups))
        mod.n_dropped = 0 if keep is None else int((~keep).sum())
        mod.data.frame = data  # the user's columns, not the Categorical copy
        mod.missing = missing  # the user's policy (the arrays above are already clean)
        if type(mod.data) is PandasData:
            mod.data.__class__ = _FormulaData  # picklable anywhere (see _FormulaData)
        return mod

    def fit(self, maxiter: int = 10, tol: float = 1e-6, ddf: str = "nlme", method: str = "pql",
            nagq: int = 25, use_t: bool = True, **kwargs: Any) -> NegBinMixedGLMResultsWrapper:
        """Fit by penalized quasi-likelihood (``MASS::glmmPQL``) or maximum likelihood.

        Parameters
        ----------
        maxiter : int
            Maximum number of inner linear mixed-model fits (R's ``niter``,
            default 10 as in R).
        tol : float
            The stopping rule ``sum((eta - etaold)^2) < tol * sum(eta^2)``
            (R hard-codes 1e-6; pass a smaller value for a tighter fit).
        ddf : {"nlme", "satterthwaite", "residual"}
            Denominator df of every t and F test and interval: nlme's
            between/within rule (R's glmmPQL, the default), Satterthwaite's
            on the final working linear mixed model (R: lmerTest on glmmPQL's
            working data), or ``N - p``, which ignores the grouping (the
            summary says so).  Standard errors are the same for all three.
        method : {"pql", "laplace", "agq"}
            ``"pql"`` (default) reproduces ``glmmPQL``.  ``"laplace"``
            maximises glmmTMB's Laplace approximation of the likelihood with
            theta estimated jointly (``theta=None``), fixed (a number) or
            infinite (Poisson); ``"agq"`` uses ``nagq``-point adaptive
            Gauss-Hermite quadrature (a single scalar random intercept only).
            Both start from the PQL fit and give ``llf``, ``aic``, ``bic``,
            ``compare_lr_test`` and ``se_theta`` from the joint Hessian.
            ``ddf`` applies to PQL only: the ML fits use nlme's df.
        nagq : int
            Quadrature points of ``method="agq"`` (25 as lme4's maximum).
        use_t : bool
            t-tests on the denominator df of ``ddf`` (default; for the ML
            methods nlme's between/within df) or, with ``False``, z-tests as
            ``glmer``/``glmmTMB`` print; glmmPQL itself always uses t.
        **kwargs
            None is accepted: ``cov_type`` (robust covariances) and the like
            raise rather than be ignored.

        Returns
        -------
        NegBinMixedGLMResultsWrapper

        Raises
        ------
        TypeError, ValueError
            If ``maxiter`` or ``tol`` is invalid, or for an unknown keyword;
            ValueError also if the random-effects design cannot be estimated
            (an all-zero column, more random coefficients than groups), if a
            fitted mean is numerically 0 against a positive count, or under
            complete separation that leaves no residual variation (R errors).
        NotImplementedError
            For ``cov_type=`` and other options PQL does not have.
        FloatingPointError
            If the fit breaks down (zero residual variance, non-finite
            estimates, the ``glm.nb`` theta or the PQL iterations diverging,
            e.g. from one extreme exposure) instead of returning NaN.

        Warns
        -----
        ConvergenceWarning
            If the stopping rule did not hold within ``maxiter`` fits; the
            results then have ``converged = False``.  Also if the ``glm.nb``
            estimate of theta did not converge, and with
            ``ddf="satterthwaite"`` if the variance parameters are not at a
            minimum of the deviance (as lmerTest warns).  Also under complete
            separation (zero counts whose fitted means run to 0, e.g. a factor
            level with only zeros): the fit goes on as R's ``glmmPQL`` does,
            the coefficients along the separated direction run off (huge SE,
            p ~ 1) and ``res.separation`` names them and the rows.
        glmmnb.core.singular.SingularFitWarning
            If a random-effects component is at the boundary (lme4's
            ``isSingular``): the results have ``is_singular = True`` and
            ``singular_components`` says which and what it means.
        UserWarning
            If theta ran off to infinity (no overdispersion: the Poisson
            limit, flagged ``theta_at_limit`` and noted in the summary), or if
            a fixed effect has 0 denominator df (NaN p-value, as in R).

        Examples
        --------
        >>> from glmmnb import NegBinMixedGLM
        >>> from glmmnb.datasets import microscopy
        >>> dat = microscopy.load_pandas().data
        >>> res = NegBinMixedGLM.from_formula("counts ~ RNAi", dat, groups="slide").fit()
        >>> round(res.theta, 4), res.converged, res.n_iter
        (25.3326, True, 1)
        >>> ml = NegBinMixedGLM.from_formula("counts ~ RNAi", dat, groups="slide").fit(
        ...     method="laplace")
        >>> round(ml.llf, 4), round(ml.theta, 2)
        (-474.6587, 25.37)
        """
        method, nagq = _ml.check_method(method, nagq)
        if method != "pql":
            if ddf != "nlme":
                raise ValueError(f"ddf={ddf!r} applies to PQL's working model; the ML fits "
                                 "use nlme's between/within df (or use_t=False for z-tests)")
            _validation.check_fit_kwargs(kwargs)
            return _ml.fit_ml(self, method, nagq=nagq, use_t=use_t)
        maxiter, tol = _validation.check_fit_options(maxiter, tol)
        ddf_method = _validation.check_ddf_method(ddf)
        _validation.check_fit_kwargs(kwargs)
        check_re_design(self._Z, self.levels, self.exog_re_names)
        y, X = self.endog, self.exog
        T, Xs, rows = self._design()
        # an overflow in the fits shows in their means, which are checked
        with np.errstate(over="ignore"):
            theta, theta_fit, glm, separation = self._start(Xs)
            if separation is not None:
                # the separated basis: a new design for the inner solver
                T, Xs, rows = T @ separation[2], Xs @ separation[2], None
            pql = fit_pql(y, Xs, self._offset, theta, self._Z, self.levels,
                          maxiter=maxiter, tol=tol, glm=glm, rows=rows)
        if not np.isfinite(pql.mu).all():
            index = getattr(self.data, "row_labels", None)
            raise FloatingPointError(
                f"the PQL iterations diverged: after {pql.n_iter} inner fit(s) the fitted "
                "means overflowed (beyond 1e308) in "
                f"{_validation.describe_rows(~np.isfinite(pql.mu), index)}"
                f"{self._offset_hint()}; the working model is dominated by a few rows")
        self._check_means(pql.mu, "the PQL fit")
        if not pql.converged:
            # under separation the runaway rows move eta by ~1 per iteration: R's
            # rule cannot hold however long PQL runs
            advice = ("increase maxiter" if separation is None else "the separated rows' "
                      "linear predictor falls by ~1 per iteration, see the separation warning")
            warnings.warn(f"PQL did not converge in {maxiter} iterations (the change in "
                          f"eta stayed above tol); {advice}", ConvergenceWarning,
                          stacklevel=2)
        elif not pql.lmm.converged:
            warnings.warn("the optimiser of the random-effects variances stopped without "
                          "meeting its tolerance in the last PQL iteration; the variance "
                          "components (and so the standard errors) may be off",
                          ConvergenceWarning, stacklevel=2)
        nobs, p = X.shape
        scale = pql.lmm.scale
        # summary.lme inflates ML standard errors by N / (N - p) (adjustSigma);
        # bse, t and p-values follow it so that they match R's printed table.
        params = T @ pql.lmm.params
        normalized = T @ pql.lmm.cov_params @ T.T / scale * nobs / (nobs - p)
        _validation.check_fit_finite(params, np.sqrt(np.diag(normalized) * scale),
                                     scale, self.exog_names)
        ddf, working, sens = inference.ddf_for_fit(ddf_method, self, pql.lmm, T)
        if separation is not None:
            separation = self._warn_separation(separation, pql.mu)
        res = NegBinMixedGLMResults(
            self, params, normalized, scale, pql=pql, theta=theta,
            theta_fit=theta_fit, ddf=ddf, separation=separation,
            fit_options={"maxiter": maxiter, "tol": tol, "ddf": ddf_method, "use_t": bool(use_t)},
            ddf_method=ddf_method, working_lmm=working, sensitivity=sens, use_t=bool(use_t))
        if res.is_singular:
            warnings.warn("boundary (singular) fit: " + "; ".join(res.singular_components)
                          + " (see res.singular_components)", SingularFitWarning, stacklevel=2)
        return NegBinMixedGLMResultsWrapper(res)

    def _start(self, Xs):
        """theta, its glm.nb fit, the NB GLM, and the separation found (or None).

        Under complete separation (zero counts whose means the GLM drives to
        0) the fits are redone in the basis ``Xs @ V`` whose last columns are
        the directions the other rows cannot see, where the vanishing weights
        survive the cross-products (see :mod:`glmmnb.core.separation`); the
        separation is then ``(rows, separated parameters, V)`` and the GLM is
        that of ``Xs @ V``.
        """
        stage = "the fixed-effects NB GLM"
        try:
            theta, theta_fit, glm = self._glm_fits(Xs)
            mu = glm.mu
        except SeparationError as err:
            mu = err.mu
        rows = separated_rows(self.endog, mu)
        if not rows.any():
            self._check_means(glm.mu, stage, separation=True)
            self._warn_theta(theta_fit)
            return theta, theta_fit, glm, None
        V, rank = separation_transform(Xs, rows)
        if rank == Xs.shape[1] or (~rows).sum() <= rank:
            self._check_means(mu, stage, separation=True)
        try:
            theta, theta_fit, glm = self._glm_fits(Xs @ V)
        except SeparationError as err:
            self._check_means(err.mu, stage, separation=True)
            raise
        self._check_means(glm.mu, stage, separation=~rows)
        self._warn_theta(theta_fit)
        T = self._design()[0]
        return theta, theta_fit, glm, (rows, separated_params(T @ V, rank), V)

    def _glm_fits(self, Xs):
        """theta (estimated or given), its glm.nb fit and the NB GLM, for the design ``Xs``."""
        try:
            theta, theta_fit = self._theta_for_fit(Xs)
        except FloatingPointError as err:
            raise FloatingPointError("the glm.nb estimate of theta broke down (R's glm.nb stops "
                                     "too: \"no valid set of coefficients has been found\"): "
                                     f"{err}"
                                     f"{self._offset_hint()}; or pass theta=") from None
        glm = fit_nb_glm(self.endog, Xs, self._offset, theta) if theta_fit is None else theta_fit.glm
        return theta, theta_fit, glm

    def _offset_hint(self):
        """Name the row whose offset lies farthest from the others (if far), for messages."""
        off = self._offset
        dev = np.abs(off - np.median(off))
        i = int(np.argmax(dev))
        if dev[i] < np.log(1e4):
            return ""
        index = getattr(self.data, "row_labels", None)
        label = i if index is None else np.asarray(index)[i]
        return (f" (the offset of row {label}, {off[i]:.3g} = log({np.exp(off[i]):.3g}), lies "
                f"{dev[i]:.3g} log-units from the median: check that exposure or offset)")

    def _warn_separation(self, separation, mu):
        """Warn that fitted means vanished and which fixed effects run off; their record."""
        rows, params, _ = separation
        index = getattr(self.data, "row_labels", None)
        names = [n for n, s in zip(self.exog_names, params) if s]
        where = _validation.describe_rows(rows, index)
        warnings.warn(
            f"complete separation: fitted means numerically 0 occurred in {where}, all with "
            f"count 0 (smallest {mu[rows].min():.3g}); {', '.join(names)} run(s) off to +-infinity "
            "along a direction the other rows cannot see, so its estimate, "
            "standard error and p-value (~1) are not meaningful, as in R's glmmPQL; the "
            "other fixed effects, the random-effects and residual SDs are. Drop or merge the "
            "factor level (or covariate range) that has only zero counts",
            ConvergenceWarning, stacklevel=3)
        labels = np.flatnonzero(rows) if index is None else np.asarray(index)[rows]
        return {"rows": labels.tolist(), "params": names}

    def _check_means(self, mu, stage, separation=False):
        """Stop where a fitted mean is numerically 0 against its count (or not finite).

        With ``separation``, also where the means of zero counts run to 0 (the
        GLM's fixed effects; in PQL the random effects are shrunk and groups of
        zeros only warn, see ``check_grouping``).
        """
        index = getattr(self.data, "row_labels", None)
        sep = separated_rows(self.endog, mu) & separation if np.any(separation) else np.zeros(0, dtype=bool)
        if sep.any():
            raise ValueError(
                f"complete separation: {stage} drives the fitted means of "
                f"{_validation.describe_rows(sep, index)}, all with count 0, to 0 (first: "
                f"{mu[sep][0]:.3g}), and the other rows leave no residual variation to fit "
                "the mixed model to (R's glmmPQL stops here too). Drop or merge the factor "
                "level (or covariate range) that has only zero counts")
        bad = degenerate_means(self.endog, mu)
        if bad.any():
            rows = _validation.describe_rows(bad, index)
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"{stage} gives fitted means numerically 0 against their counts, or not "
                f"finite, in {rows} (first: count {self.endog[i]:g}, fitted mean "
                f"{mu[i]:.3g}); R's glm warns \"fitted rates numerically 0 occurred\" and "
                "glm.nb stops (\"no valid set of coefficients\"). The standard errors would "
                "be driven by those rows alone: check their exposure or offset")

    def _design(self):
        """What a fit needs from the design alone, computed once per design.

        The standardizing transform, the standardized design and the inner
        solver's row structure depend on ``exog``, ``exog_re`` and the groups
        only, so refits for new responses (:meth:`refit`) share them.
        """
        cache = self.__dict__.get("_design_cache")
        if cache is None:
            T = standardizing_transform(self.exog)
            # a tall (nobs, p) @ (p, p) product: OpenBLAS's threaded gemm took
            # 0.36 s at 1e6 rows on 2 cores, one thread 0.015 s
            with one_blas_thread():
                Xs = self.exog @ T
            cache = (T, Xs, _row_structure(Xs, self._Z, self.levels))
            self._design_cache = cache
        return cache

    def _nlme_strata(self):
        """nlme's placement of the fixed effects (:func:`~glmmnb.core.ddf.nlme_strata`), once.

        Both the df of the coefficients and those of the terms read it, and
        it depends on the design alone, so refits share it too.
        """
        strata = self.__dict__.get("_strata_cache")
        if strata is None:
            strata = nlme_strata(self.exog, [lev.codes for lev in self.levels])
            self._strata_cache = strata
        return strata

    def refit(self, endog: Any, theta: Any = _SAME,
              **fit_kwargs: Any) -> NegBinMixedGLMResultsWrapper:
        """Fit the same design to a new response, without rebuilding the design.

        The formula, the input checks of the design, the grouping, the
        standardized design and the denominator df are those of this model;
        only the new counts are checked.  Use it for many responses on one
        design (genes, markers, simulated responses).

        Parameters
        ----------
        endog : array_like, shape (nobs,)
            New counts, one per row of this model (after its missing-value
            handling).
        theta : float or None, optional
            NB2 shape for the new fit; default this model's setting (``None``
            estimates it by ``glm.nb`` for each response).
        **fit_kwargs
            Passed to :meth:`fit` (``maxiter``, ``tol``).

        Returns
        -------
        NegBinMixedGLMResultsWrapper
            Its ``model`` is a copy of this one holding the new response.

        Raises
        ------
        ValueError
            If ``endog`` has the wrong length or is not valid counts.
        MissingDataError
            If ``endog`` has missing values (build a new model to drop rows).

        Examples
        --------
        >>> from glmmnb import NegBinMixedGLM
        >>> from glmmnb.datasets import microscopy
        >>> dat = microscopy.load_pandas().data
        >>> model = NegBinMixedGLM.from_formula("counts ~ RNAi", dat, groups="slide")
        >>> res = model.refit(dat["counts"].to_numpy()[::-1])
        >>> res.params.index.tolist(), bool(res.model.endog[0] == dat["counts"].iloc[-1])
        (['Intercept', 'RNAi[T.Target]'], True)
        """
        return self._with_endog(endog, self.theta if theta is _SAME else theta).fit(
            **fit_kwargs)

    def _with_endog(self, endog, theta):
        """A shallow copy of this model with a new, checked response and theta."""
        nobs = self.endog.shape[0]
        endog = np.asarray(endog)
        if endog.ndim != 1 or endog.shape[0] != nobs:
            raise ValueError(f"endog must have one value per row of the model ({nobs}), "
                             f"got shape {endog.shape}")
        _validation.missing_mask({"endog": endog}, "raise")
        self._design()
        new = _shallow_copy(self)
        index = getattr(self.data, "row_labels", None)
        new.endog = _validation.check_counts(endog, self.endog_names, index)
        new.theta = _validation.check_theta(theta)
        new.data = _shallow_copy(self.data)
        new.data.endog = new.endog
        _validation.check_grouping(new.endog, self.levels[0].codes, self.group_labels[0])
        return new

    def __getstate__(self):
        state = self.__dict__.copy()
        for key in _DESIGN_CACHES:
            state.pop(key, None)
        return state

    def _theta_for_fit(self, X):
        """The theta PQL holds fixed, and the glm.nb fit that estimated it (or None).

        A runaway estimate (no overdispersion) is flagged ``at_limit`` even
        when the optimiser stopped short of ``THETA_MAX``, so that the warning
        and the summary note never depend on where it happened to stop.
        """
        if self.theta is not None:
            return self.theta, None
        fit = estimate_theta(self.endog, X, self._offset)
        if not fit.at_limit and _validation.theta_ran_away(fit.theta, fit.glm.mu):
            fit = dataclasses.replace(fit, at_limit=True)
        return fit.theta, fit

    @staticmethod
    def _warn_theta(fit):
        """Warn about a theta that ran off or did not converge (``fit`` None: theta was given)."""
        if fit is None:
            return
        if fit.at_limit:
            warnings.warn(f"the ML theta ran off towards infinity (stopped at {fit.theta:.3g}): "
                          "the data show no overdispersion and the fit is the Poisson limit; "
                          "consider a Poisson GLMM (theta=numpy.inf)", UserWarning, stacklevel=4)
        elif not fit.converged:
            warnings.warn(f"the glm.nb estimate of theta did not converge (last value "
                          f"{fit.theta:.4g}); the PQL fit uses it as it stands",
                          ConvergenceWarning, stacklevel=4)

    def predict(self, params: Any, exog: Any = None, offset: Any = None, exposure: Any = None,
                linear: bool = False) -> np.ndarray:
        """Population-level mean (random effects at zero).

        Parameters
        ----------
        params : ndarray
            Fixed effects.
        exog : array_like, optional
            Design; default the model's.
        offset, exposure : array_like, optional
            For new rows; default zero (or the model's, with the model's exog).
        linear : bool
            Return the linear predictor instead of the mean.

        Returns
        -------
        ndarray

        Examples
        --------
        >>> import numpy as np
        >>> from glmmnb import NegBinMixedGLM
        >>> m = NegBinMixedGLM(np.array([1., 2, 3, 4]), np.ones((4, 1)), [0, 0, 1, 1])
        >>> m.predict(np.array([0.0]), np.ones((1, 1)))
        array([1.])
        """
        if exog is None:
            exog, off = self.exog, self._offset
        else:
            exog = np.asarray(exog, dtype=float)
            off = _validation.check_offset(offset, exposure, exog.shape[0])
        eta = exog @ np.asarray(params) + off
        return eta if linear else np.exp(eta)

    def loglike(self, params: Any) -> float:
        """Not available: PQL maximises no likelihood (R reports NA too)."""
        return np.nan


def _formula_rows(data, formula, re_formula, vc_formula, extra, names, subset, missing):
    """The rows ``from_formula`` fits: ``subset``, then ``missing``, then unused levels dropped.

    Returns the data, its copy with the string columns as Categoricals (the
    formula's input), the per-row inputs as Series on its index, and the
    kept-rows mask of ``missing="drop"`` (None when nothing was dropped).
    """
    extra = {k: _validation_formula.resolve_input(data, v, k, numeric=k != "groups")
             for k, v in extra.items()}
    if extra["groups"] is None:
        raise ValueError("groups is required: a column name or an array of group labels")
    if subset is not None:
        rows = _validation_formula.subset_positions(data, subset)
        data = data.iloc[rows]
        extra = {k: None if v is None else v.iloc[rows] for k, v in extra.items()}
    _validation_formula.check_response_columns(data, _formula.response_columns(data, formula))
    cols = _formula.referenced_columns(data, formula, re_formula, *(vc_formula or {}).values())
    # strings become Categoricals first: every later check then reads codes
    frame = _formula.strings_as_categorical(data, cols)
    extra["groups"] = _formula.string_categorical(extra["groups"])
    arrays = {f"column {c!r}": frame[c] for c in cols}
    arrays.update({f"{k} ({names[k]!r})": v for k, v in extra.items() if v is not None})
    keep = _validation.missing_mask(arrays, missing, data.index)
    if keep is not None:
        data, frame = data.loc[keep], frame.loc[keep]
        extra = {k: None if v is None else v.loc[keep] for k, v in extra.items()}
    data = _formula.drop_unused_levels(data, cols)
    frame = _formula.drop_unused_levels(frame, cols)
    _validation_formula.check_factor_levels(frame, _formula.factor_columns(data, formula))
    return data, frame, extra, keep


def _category_codes(groups):
    """``factorize(groups)`` read off a pandas Categorical, or None if it must be computed.

    Only a Categorical whose categories are sorted, all used and never
    missing has the codes and labels that factorizing its values would give.
    """
    cat = _validation.categorical_of(groups)
    if cat is None:
        return None
    codes = np.asarray(cat.codes, dtype=np.intp)
    cats = cat.categories
    if len(codes) == 0 or not cats.is_monotonic_increasing or codes.min() < 0 \
            or np.bincount(codes, minlength=len(cats)).min() == 0:
        return None
    return codes, np.asarray(cats)


def _shallow_copy(obj):
    """A new object sharing ``obj``'s attributes.

    ``copy.copy`` would go through pickling's ``__getstate__``/``__setstate__``,
    which drop the model's design cache and re-run the formula for its data.
    """
    new = object.__new__(type(obj))
    new.__dict__.update(obj.__dict__)
    return new


@contextlib.contextmanager
def _transform_nan_is_missing(formula):
    """Turn patsy's errors into ours: a NaN is MissingDataError (the raw columns were
    already clean, so a transform in the formula, e.g. ``np.log`` of a negative, made
    it); any other is a ValueError naming the formula, with patsy's first line."""
    try:
        yield
    except PatsyError as err:
        if "missing values" not in str(err):
            raise ValueError(f"cannot evaluate the formula {formula!r}: "
                             f"{str(err).splitlines()[0]}") from None
        raise MissingDataError(
            f"the formula {formula!r} produces missing values (a transform such as "
            "np.log of a negative number?); transform or filter the data first") from err


class _FormulaData(PandasData):
    """statsmodels' pandas data whose formula spec survives pickling anywhere.

    ``PandasData.__setstate__`` rebuilds the formula spec in a namespace it
    finds by guessing a stack depth, and fails (``AttributeError``) when
    ``pickle.load`` runs at module level.  Here the formula is evaluated with
    numpy available as ``np``/``numpy`` first, and only then by statsmodels'
    guess; if both fail the results still load, without formula prediction.
    """

    def __setstate__(self, d):
        if d.pop("restore_model_spec", False):
            d["model_spec"] = _rebuild_spec(d)
        self.__dict__.update(d)


def _rebuild_spec(d):
    frame = d.get("frame")
    if frame is None:
        return None
    mgr = FormulaManager()
    for env in ({"np": np, "numpy": np}, 2, 3, 1, 0, 4):
        try:
            mgr.get_matrices(d["formula"], frame, eval_env=env, pandas=True)
            return mgr.spec
        except Exception:  # noqa: BLE001 - any failure means "try the next namespace"
            continue
    warnings.warn(f"could not rebuild the formula {d['formula']!r} after unpickling; "
                  "predict() on new data frames is unavailable", UserWarning, stacklevel=2)
    return None
