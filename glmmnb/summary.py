"""The results summary, laid out like R's ``summary(glmmPQL_fit)``.

Built with statsmodels' ``summary2.Summary`` so that it renders as text, HTML
(notebooks) and LaTeX.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np
import pandas as pd
from statsmodels.iolib import summary2

from .inference import DDF_NOTES

if TYPE_CHECKING:
    from .results import NegBinMixedGLMResults

__all__ = ["build_summary", "fixed_effects_table", "random_effects_table"]


def _names(res: NegBinMixedGLMResults) -> list[str]:
    return list(res.model.exog_names)


def fixed_effects_table(res: NegBinMixedGLMResults, alpha: float = 0.05) -> pd.DataFrame:
    """Coef., Std.Err., DF, t, P>|t| and the confidence interval, one row per effect.

    Parameters
    ----------
    res : NegBinMixedGLMResults
        A fit.
    alpha : float
        1 - confidence level.

    Returns
    -------
    pandas.DataFrame
    """
    ci = np.asarray(res.conf_int(alpha))
    lo, hi = f"[{alpha / 2:g}", f"{1 - alpha / 2:g}]"
    return pd.DataFrame({
        "Coef.": np.asarray(res.params), "Std.Err.": np.asarray(res.bse),
        "DF": _ddf_column(res), "t": np.asarray(res.tvalues),
        "P>|t|": np.asarray(res.pvalues), lo: ci[:, 0], hi: ci[:, 1],
    }, index=_names(res))


def _ddf_method(res: NegBinMixedGLMResults) -> str:
    return getattr(res, "ddf_method", "nlme")


def _ddf_column(res: NegBinMixedGLMResults) -> np.ndarray:
    """Integer df for the counting rules, Satterthwaite's as they are."""
    ddf = np.asarray(res.ddf, dtype=float)
    return ddf if _ddf_method(res) == "satterthwaite" else ddf.astype(int)


def random_effects_table(res: NegBinMixedGLMResults) -> pd.DataFrame:
    """Standard deviations (and correlations) of the random effects and residual.

    Parameters
    ----------
    res : NegBinMixedGLMResults
        A fit.

    Returns
    -------
    pandas.DataFrame
        Columns ``Variance`` and ``Std.Dev.``; rows named like R's ``VarCorr``.
    """
    cov = np.asarray(res.cov_re)
    names = list(res.exog_re_names)
    group = getattr(res.model, "group_name", "Group")
    rows: list[str] = []
    var: list[float] = []
    for j, name in enumerate(names):
        rows.append(f"{group}: {_r_name(name, group)}")
        var.append(cov[j, j])
    for name, v in zip(res.vc_names, np.asarray(res.vcomp)):
        rows.append(f"{name} (in {group}): (Intercept)")
        var.append(v)
    if getattr(res, "method", "pql") == "pql":
        rows.append("Residual")
        var.append(res.scale)
    variance = np.asarray(var, dtype=float)
    table = pd.DataFrame({"Variance": variance, "Std.Dev.": np.sqrt(variance)}, index=rows)
    sd = np.sqrt(np.diag(cov))
    for j in range(len(names)):
        for k in range(j):
            corr = cov[j, k] / (sd[j] * sd[k]) if sd[j] * sd[k] > 0 else np.nan
            label = [_r_name(names[i], group) for i in (k, j)]
            table.loc[f"{group}: Corr({label[0]}, {label[1]})"] = [np.nan, corr]
    return table


def _r_name(name: str, group: str) -> str:
    """R's label for a random coefficient: MixedLM names the intercept after the group."""
    return "(Intercept)" if name == group else name


_METHODS = {"pql": "PQL (as MASS::glmmPQL)",
            "laplace": "ML, Laplace (as glmmTMB nbinom2)",
            "agq": "ML, adaptive Gauss-Hermite ({nagq} points)"}
_TITLES = {"pql": "penalized quasi-likelihood", "laplace": "maximum likelihood, Laplace",
           "agq": "maximum likelihood, adaptive quadrature"}
ML_DF_NOTE = ("DF: t-tests on nlme's between/within denominator df (as SAS PROC GLIMMIX "
              "offers); glmer and glmmTMB print z-tests instead (fit with use_t=False).")
Z_NOTE = ("z-tests (normal reference, use_t=False), as glmer and glmmTMB print them; they "
          "ignore how few groups there are.")


def _method(res: NegBinMixedGLMResults) -> str:
    return getattr(res, "method", "pql")


def _theta_text(res: NegBinMixedGLMResults) -> str:
    if np.isinf(res.theta):
        return "inf (fixed: Poisson GLMM)"
    if res.theta_source == "ML" and not res.theta_at_limit:
        return f"{res.theta:.4f} (ML of the mixed model, SE {res.se_theta:.3g})"
    if res.theta_source == "fixed":
        return f"{res.theta:.4g} (fixed)"
    if res.theta_at_limit:
        # the digits of a runaway estimate mean nothing; say what it is instead
        return f"{res.theta:.3g} (runaway: Poisson limit)"
    return f"{res.theta:.4f} (ML of glm.nb, SE {res.se_theta:.3g})"


def _model_info(res: NegBinMixedGLMResults, yname: str | None = None) -> dict[str, str]:
    sizes = res.group_sizes
    model = res.model
    info = {
        "Model:": "NegBinMixedGLM",
        "Method:": _METHODS[_method(res)].format(nagq=getattr(res, "nagq", 0)),
        "Family:": "Negative binomial",
        "Theta:": _theta_text(res),
        "Link:": "log",
        "Dependent variable:": str(model.endog_names if yname is None else yname),
        "No. observations:": f"{int(res.nobs)}",
        "No. groups:": f"{res.n_groups}",
        "Group size min/mean/max:": f"{sizes.min()} / {sizes.mean():.1f} / {sizes.max()}",
        "PQL iterations:": f"{res.n_iter}",
        "Converged:": "Yes" if res.converged else "No",
        "Residual SD (sigma):": f"{res.scale_sd:.4f}",
    }
    if _method(res) != "pql":
        del info["PQL iterations:"], info["Residual SD (sigma):"]
        info.update({"Log-likelihood:": f"{res.llf:.4f}", "AIC:": f"{res.aic:.4f}",
                     "BIC:": f"{res.bic:.4f}"})
    dropped = getattr(model, "n_dropped", 0)
    if dropped:
        info["Rows dropped (missing):"] = f"{dropped}"
    return info


def _formatted(table: pd.DataFrame, formats: Mapping[str, str], default: str,
               na_rep: str = "") -> pd.DataFrame:
    out = pd.DataFrame(index=table.index)
    for col in table.columns:
        fmt = formats.get(col, default)
        out[col] = [(na_rep if pd.isna(v) else fmt.format(v)) for v in table[col]]
    return out


def _warnings(res: NegBinMixedGLMResults) -> list[str]:
    """Notes for everything a reader must not miss: each fit problem, in words."""
    notes = []
    sep = getattr(res, "separation", None)
    if not res.converged and _method(res) != "pql":
        notes.append(f"WARNING: the {_method(res)} fit stopped before its gradient vanished; "
                     "the estimates may not be the maximum likelihood.")
    elif not res.converged and res.n_iter >= res.fit_options["maxiter"] and sep:
        notes.append(f"WARNING: PQL did not converge in {res.n_iter} iterations: the "
                     "separated coefficients keep running off (the others are settled).")
    elif not res.converged and res.n_iter >= res.fit_options["maxiter"]:
        notes.append(f"WARNING: PQL did not converge in {res.n_iter} iterations; "
                     "the estimates are not final (refit with a larger maxiter).")
    elif not res.converged:
        notes.append("WARNING: the optimiser of the random-effects variances did not "
                     "converge; the variance components and standard errors are not final.")
    if res.theta_at_limit:
        notes.append("WARNING: theta ran off to infinity (no overdispersion); "
                     "the model is effectively a Poisson GLMM.")
    if sep:
        notes.append(f"WARNING: complete separation: fitted means numerically 0 in "
                     f"{len(sep['rows'])} row(s) with count 0; {', '.join(sep['params'])} "
                     "run(s) off to +-infinity (estimate, SE and p-value not meaningful).")
    for comp in getattr(res, "singular_components", ()):
        notes.append(f"WARNING: boundary (singular) fit: {comp}.")
    zero_df = [n for n, d in zip(_names(res), np.asarray(res.ddf)) if d <= 0]
    if zero_df:
        one = len(zero_df) == 1
        notes.append(f"WARNING: {', '.join(zero_df)} {'has' if one else 'have'} 0 denominator "
                     "DF (no more groups than between-group effects): "
                     f"{'its' if one else 'their'} p-value and interval are NaN, as in R.")
    return notes


def _add_labelled(smry: summary2.Summary, table: pd.DataFrame, label: str) -> None:
    """Add a table whose row labels become a first column headed ``label``.

    summary2 pads a narrow table's separators to the widest table but does
    not count the index column's separator; without an index the padding
    comes out right.
    """
    smry.add_df(table.rename_axis(label).reset_index(), index=False)


def build_summary(res: NegBinMixedGLMResults, alpha: float = 0.05, rate_ratios: bool = False,
                  yname: str | None = None, xname: Sequence[str] | None = None,
                  title: str | None = None, corr: bool = False) -> summary2.Summary:
    """Assemble the summary of a fit.

    Parameters
    ----------
    res : NegBinMixedGLMResults
        A fit.
    alpha : float
        1 - confidence level of the intervals.
    rate_ratios : bool
        Add the incidence-rate ratios ``exp(params)`` with their intervals.
    yname : str, optional
        Name of the response.
    xname : list of str, optional
        Names of the fixed effects, one per parameter.
    title : str, optional
        Title line.
    corr : bool
        Add the correlation of the fixed-effect estimates.

    Returns
    -------
    statsmodels.iolib.summary2.Summary
    """
    names = _names(res)
    if xname is not None:
        xname = [str(x) for x in xname]
        if len(xname) != len(names):
            raise ValueError(f"xname needs {len(names)} names (one per fixed effect), "
                             f"got {len(xname)}")
    rename = dict(zip(names, xname or names))
    smry = summary2.Summary()
    smry.add_title(title or f"Negative-binomial GLMM ({_TITLES[_method(res)]})")
    smry.add_dict(_model_info(res, yname))
    # NaN spelled out in the coefficient table: a blank p-value would read as missing output.
    df_format = "{:.2f}" if _ddf_method(res) == "satterthwaite" else "{:d}"
    table = fixed_effects_table(res, alpha)
    if not res.use_t:
        table = table.drop(columns="DF").rename(columns={"t": "z", "P>|t|": "P>|z|"})
    fixed = _formatted(table, {"DF": df_format}, "{:.4f}", "NaN")
    _add_labelled(smry, fixed.rename(index=rename), "")
    if rate_ratios:
        _add_labelled(smry, _formatted(res.rate_ratios(alpha), {}, "{:.4f}", "NaN")
                      .rename(index=rename), "Rate ratio")
    _add_labelled(smry, _formatted(random_effects_table(res), {}, "{:.4g}"), "Random effects")
    if corr:
        table = res.corr_params().rename(index=rename, columns=rename)
        _add_labelled(smry, _formatted(table, {}, "{:.3f}"), "Correlation")
    smry.add_text(Z_NOTE if not res.use_t else DDF_NOTES[_ddf_method(res)]
                  if _method(res) == "pql" else ML_DF_NOTE)
    for note in _warnings(res):
        smry.add_text(note)
    return smry
