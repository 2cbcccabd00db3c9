"""Residuals, MixedLM-named attributes and the numeric tables of a fit.

A mixin of :class:`glmmnb.NegBinMixedGLMResults`: everything here is
computed on request from what the fit stored (the conditional means, the
final working LMM's response and weights), so fitting stays as cheap as it
was.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from functools import cached_property

import numpy as np
import pandas as pd

from . import summary as _summary
from .core.apvar import approximate_cov, natural_parameters
from .core.negbin import unit_deviance
from .core.varcomp import variance_jacobian
from .prediction import conditional_covariances

__all__ = ["DiagnosticsMixin"]


class DiagnosticsMixin:
    """Residuals, variance-parameter uncertainty and tables (see ``NegBinMixedGLMResults``)."""

    @cached_property
    def resid_pearson(self) -> np.ndarray:
        """Pearson residuals ``(y - mu) / sqrt(mu + mu^2 / theta)`` at the conditional means.

        statsmodels' GLM definition (R: ``residuals(glm, type = "pearson")``
        at these means).  R's ``residuals(glmmPQL_fit, type = "pearson")``
        is the working-scale version, :attr:`resid_working` ``* sqrt(w) /
        sigma``, close to this divided by the residual SD.
        """
        mu = self.fittedvalues
        return self.resid / np.sqrt(mu + mu * mu / self.theta)

    @cached_property
    def resid_deviance(self) -> np.ndarray:
        """Deviance residuals ``sign(y - mu) sqrt(d_i)`` of the NB2 family at the conditional means.

        ``d_i`` is R's ``negative.binomial(theta)$dev.resids`` (as
        ``residuals(glm, type = "deviance")``).
        """
        d = unit_deviance(self.model.endog, self.fittedvalues, self.theta)
        return np.sign(self.resid) * np.sqrt(np.maximum(d, 0.0))

    @property
    def fe_params(self) -> np.ndarray:
        """Fixed effects (statsmodels' MixedLM name for ``params``)."""
        return self.params

    @property
    def bse_fe(self) -> np.ndarray:
        """Standard errors of the fixed effects (MixedLM's name for ``bse``)."""
        return self.bse

    @cached_property
    def cov_re_natural(self) -> pd.DataFrame:
        """Approximate covariance of the variance parameters (R: ``fit$apVar``).

        nlme's approximation (:func:`glmmnb.core.apvar.approximate_cov`, the
        one :meth:`intervals` uses) on its natural scale: per level the log
        SDs, then ``log((1 + r) / (1 - r))`` of each correlation, and
        ``log(sigma)`` last, as a labelled DataFrame.  A parameter in which
        the likelihood is flat (a variance at or near zero) has an infinite
        variance; NaN, with a warning, where the Hessian is not positive
        definite (R's ``intervals()`` then stops).
        """
        labels = self._natural_labels()
        if self.working_lmm is None:
            raise ValueError("this fit keeps no working linear mixed model, so its variance "
                             "parameters have no approximate covariance")
        try:
            _, cov = approximate_cov(self.working_lmm)
        except ValueError as err:
            warnings.warn(f"{err}: cov_re_natural and bse_re are NaN (R's intervals() stops "
                          "with 'Non-positive definite approximate variance-covariance')",
                          UserWarning, stacklevel=2)
            cov = np.full((len(labels), len(labels)), np.nan)
        return pd.DataFrame(cov, index=labels, columns=labels)

    def _re_names(self) -> tuple[str, list[str]]:
        group = getattr(self.model, "group_name", "Group")
        return group, ["(Intercept)" if n == group else n for n in self.exog_re_names]

    def _natural_labels(self) -> list[str]:
        group, names = self._re_names()
        labels = [f"{group}: log sd({n})" for n in names]
        labels += [f"{group}: logit((1 + cor({names[j]}, {names[k]})) / 2)"
                   for j, k in zip(*np.triu_indices(len(names), 1))]
        labels += [f"{name} (in {group}): log sd((Intercept))" for name in self.vc_names]
        return labels + ["log(sigma)"]

    def _level_covs(self) -> list[np.ndarray]:
        return [np.asarray(self.cov_re, dtype=float)] + [
            np.array([[v]]) for v in np.asarray(self.vcomp, dtype=float)]

    @cached_property
    def bse_re(self) -> pd.Series:
        """Standard errors of the random-effect variances and covariances.

        The delta method applied to :attr:`cov_re_natural` (nlme's
        approximation, the one ``intervals(fit)`` uses), on the variance
        scale of :attr:`cov_re` and :attr:`vcomp`; labelled as in
        :meth:`varcorr`, covariances as ``Cov(a, b)``.
        """
        cov = self.cov_re_natural.to_numpy()
        nat = natural_parameters(self.working_lmm)
        J = variance_jacobian(nat.values, nat.sizes)
        flat = np.isinf(np.diag(cov))
        finite = np.where(np.isfinite(cov), cov, 0.0)
        with np.errstate(invalid="ignore"):
            se = np.sqrt(np.diag(J @ finite @ J.T))
        # an entry built from a flat parameter (a variance at zero) is unbounded
        se[_depends_on(nat.sizes, flat)] = np.inf
        if np.isnan(cov).any():
            se[:] = np.nan
        group, names = self._re_names()
        labels = [f"{group}: {names[j]}" if j == k else f"{group}: Cov({names[j]}, {names[k]})"
                  for j, k in zip(*np.triu_indices(len(names)))]
        labels += [f"{name} (in {group}): (Intercept)" for name in self.vc_names]
        return pd.Series(se, index=labels)

    @cached_property
    def random_effects_cov(self) -> dict:
        """Conditional covariance of each group's random effects, by group label.

        ``(Z_g' W_g Z_g / sigma^2 + G^-1)^-1`` in the final working LMM, at
        the estimated fixed effects (lme4's ``condVar``; MixedLM's
        ``random_effects_cov``).  Groups only (not nested components).
        """
        A, _ = conditional_covariances(self)
        names = list(self.exog_re_names)
        return {label: pd.DataFrame(A[g], index=names, columns=names)
                for g, label in enumerate(self._level_labels[0])}

    def corr_params(self) -> pd.DataFrame:
        """Correlation of the fixed-effect estimates (R prints it in ``summary``).

        Returns
        -------
        pandas.DataFrame

        Examples
        --------
        >>> from glmmnb import NegBinMixedGLM
        >>> from glmmnb.datasets import microscopy
        >>> res = NegBinMixedGLM.from_formula(
        ...     "counts ~ RNAi", microscopy.load_pandas().data, groups="slide").fit()
        >>> round(float(res.corr_params().iloc[0, 1]), 3)
        -0.76
        """
        cov = np.asarray(self.cov_params(), dtype=float)
        sd = np.sqrt(np.diag(cov))
        names = list(self.model.exog_names)
        return pd.DataFrame(cov / np.outer(sd, sd), index=names, columns=names)

    def fixed_effects_table(self, alpha: float = 0.05) -> pd.DataFrame:
        """The summary's coefficient table as numbers (R: ``summary(fit)$tTable``).

        Parameters
        ----------
        alpha : float
            1 - confidence level.

        Returns
        -------
        pandas.DataFrame
            ``Coef.``, ``Std.Err.``, ``DF``, ``t``, ``P>|t|`` and the interval.

        Examples
        --------
        >>> from glmmnb import NegBinMixedGLM
        >>> from glmmnb.datasets import microscopy
        >>> res = NegBinMixedGLM.from_formula(
        ...     "counts ~ RNAi", microscopy.load_pandas().data, groups="slide").fit()
        >>> res.fixed_effects_table()["DF"].tolist()
        [196, 2]
        """
        return _summary.fixed_effects_table(self, alpha)

    def varcorr(self) -> pd.DataFrame:
        """Variances, SDs and correlations of the random effects (R: ``VarCorr(fit)``).

        Returns
        -------
        pandas.DataFrame
            ``Variance`` and ``Std.Dev.``, one row per component, the
            residual last, correlations as ``Corr(a, b)`` rows.

        Examples
        --------
        >>> from glmmnb import NegBinMixedGLM
        >>> from glmmnb.datasets import microscopy
        >>> res = NegBinMixedGLM.from_formula(
        ...     "counts ~ RNAi", microscopy.load_pandas().data, groups="slide").fit()
        >>> res.varcorr().index.tolist()
        ['slide: (Intercept)', 'Residual']
        """
        return _summary.random_effects_table(self)


def _depends_on(sizes: Sequence[int], flat: np.ndarray) -> np.ndarray:
    """Which variances/covariances (upper triangles, row by row) involve a flagged parameter."""
    out, i = [], 0
    for q in sizes:
        sd = flat[i:i + q]
        rho = dict(zip(zip(*np.triu_indices(q, 1)), flat[i + q:i + q * (q + 1) // 2]))
        i += q * (q + 1) // 2
        out += [bool(sd[j] or sd[k] or (j != k and rho[(j, k)]))
                for j, k in zip(*np.triu_indices(q))]
    return np.asarray(out, dtype=bool)
