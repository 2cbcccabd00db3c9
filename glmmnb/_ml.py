"""Maximum-likelihood fits (Laplace, adaptive quadrature) behind ``NegBinMixedGLM.fit``.

``fit(method="laplace" | "agq")`` lands here: start values from the PQL fit,
the numerical fit in :mod:`glmmnb.core.laplace` / :mod:`glmmnb.core.agq`,
then the same results class as PQL.  Also the likelihood-ratio test and the
profile-likelihood intervals, which need a likelihood.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import numpy as np
from scipy import optimize, stats
from statsmodels.tools.sm_exceptions import ConvergenceWarning

from .core.agq import fit_agq, make_agq_objective
from .core.ddf import nlme_ddf
from .core.laplace import LaplaceObjective, fit_laplace, make_objective
from .core.scaling import standardizing_transform
from .core.singular import SingularFitWarning

if TYPE_CHECKING:
    from .core.mlfit import MLFit
    from .core.pql import PQLFit
    from .core.theta import ThetaFit
    from .model import NegBinMixedGLM
    from .results import NegBinMixedGLMResults, NegBinMixedGLMResultsWrapper

__all__ = ["fit_ml", "lr_test", "core_view", "profile_ci", "METHODS"]

METHODS = ("pql", "laplace", "agq")


def check_method(method: str, nagq: int) -> tuple[str, int]:
    """``method`` one of :data:`METHODS`; ``nagq`` a positive integer."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if isinstance(nagq, (bool, np.bool_)) or not float(nagq).is_integer() or nagq < 1:
        raise ValueError(f"nagq must be a positive integer (quadrature points), got {nagq!r}")
    return method, int(nagq)


def fit_ml(model: NegBinMixedGLM, method: str, nagq: int = 25,
           use_t: bool = True) -> NegBinMixedGLMResultsWrapper:
    """Fit ``model`` by maximum likelihood and return its results wrapper.

    Parameters
    ----------
    model : NegBinMixedGLM
        The model; its ``theta`` is ``None`` (estimated jointly), a number
        (fixed) or ``inf`` (Poisson GLMM).
    method : {"laplace", "agq"}
        glmmTMB's Laplace approximation, or ``nagq``-point adaptive
        Gauss-Hermite quadrature (one scalar random effect only).
    nagq : int
        Quadrature points for ``"agq"``.
    use_t : bool
        t-tests on nlme's between/within df (default) or z-tests as glmer.

    Returns
    -------
    NegBinMixedGLMResultsWrapper
    """
    from .results import NegBinMixedGLMResults, NegBinMixedGLMResultsWrapper

    if method == "agq" and (len(model.levels) != 1 or model.levels[0].k_re != 1):
        raise NotImplementedError(
            "method='agq' needs a single scalar random effect (one grouping factor with a "
            "random intercept, no re_formula slopes and no vc_formula, as lme4's nAGQ > 1); "
            "use method='laplace'")
    X = model.exog
    T = standardizing_transform(X)
    Xs = X @ T
    start = _pql_start(model, T)
    core = fit_laplace if method == "laplace" else fit_agq
    kwargs = {} if method == "laplace" else {"nagq": nagq}
    fit = core(model.endog, Xs, model._offset, model._Z, model.levels, theta=model.theta,
               start=start, **kwargs)
    if fit.theta_at_limit:
        warnings.warn(f"the ML theta of the mixed model ran off towards infinity (stopped at "
                      f"{fit.theta:.3g}): no overdispersion beyond the random effects; "
                      "consider the Poisson GLMM (theta=numpy.inf)", UserWarning, stacklevel=3)
    elif not fit.converged:
        warnings.warn(f"the {method} fit stopped before its gradient vanished; the estimates "
                      "may not be the maximum likelihood", ConvergenceWarning, stacklevel=3)
    fit.params = T @ fit.params
    fit.cov_params = T @ fit.cov_params @ T.T
    ddf = nlme_ddf(X, [lev.codes for lev in model.levels], model._nlme_strata())
    res = NegBinMixedGLMResults(
        model, fit.params, fit.cov_params, 1.0, pql=fit, theta=fit.theta, theta_fit=None,
        ddf=ddf, fit_options={"method": method, "nagq": fit.nagq, "use_t": bool(use_t)},
        use_t=bool(use_t))
    if res.is_singular:
        warnings.warn("boundary (singular) fit: " + "; ".join(res.singular_components)
                      + " (see res.singular_components)", SingularFitWarning, stacklevel=3)
    return NegBinMixedGLMResultsWrapper(res)


def _pql_start(model: NegBinMixedGLM, T: np.ndarray) -> tuple | None:
    """``(beta, cov_re, theta, vcomp)`` of the PQL fit in the standardised basis.

    A PQL fit that fails is no reason to fail: the ML fit then starts from
    the GLM-like default.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pql = model.fit()
    except (FloatingPointError, np.linalg.LinAlgError, ValueError):
        return None
    beta = np.linalg.solve(T, np.asarray(pql.params))
    return beta, np.asarray(pql.cov_re), pql.theta, np.asarray(pql.vcomp)


def lr_test(full: NegBinMixedGLMResults,
            restricted: NegBinMixedGLMResults) -> tuple[float, float, float]:
    """Likelihood-ratio test of ``restricted`` against ``full`` (R: ``anova(m0, m1)``).

    Returns
    -------
    (statistic, p-value, df_diff)
    """
    for r in (full, restricted):
        if r.method == "pql":
            raise ValueError("compare_lr_test needs likelihoods: PQL has none (R reports NA); "
                             "refit both models with method='laplace'")
    if full.method != restricted.method or full.nagq != restricted.nagq:
        raise ValueError(f"the models were fitted by different methods ({full.method} and "
                         f"{restricted.method}); their likelihoods are not comparable")
    df = full.df_modelwc - restricted.df_modelwc
    if df <= 0:
        raise ValueError(f"the restricted model has {restricted.df_modelwc:g} parameters and "
                         f"the full model {full.df_modelwc:g}: call full.compare_lr_test("
                         "restricted) with the larger model first")
    _check_nested(full.model, restricted.model)
    stat = max(2.0 * (full.llf - restricted.llf), 0.0)
    return stat, float(stats.chi2.sf(stat, df)), df


def _check_nested(big: NegBinMixedGLM, small: NegBinMixedGLM) -> None:
    """Same rows, same groups, and the small fixed design in the span of the big one."""
    if big.endog.shape != small.endog.shape or not np.array_equal(big.endog, small.endog):
        raise ValueError("the models are not fitted to the same rows (endog differs); a "
                         "likelihood-ratio test needs the same data")
    if not np.array_equal(big.levels[0].codes, small.levels[0].codes):
        raise ValueError("the models have different groups; a likelihood-ratio test needs "
                         "the same grouping")
    if not np.allclose(big._offset, small._offset):
        raise ValueError("the models have different offsets; they are not nested")
    coef, *_ = np.linalg.lstsq(big.exog, small.exog, rcond=None)
    resid = small.exog - big.exog @ coef
    if np.max(np.abs(resid)) > 1e-8 * max(1.0, np.max(np.abs(small.exog))):
        raise ValueError("the restricted model's fixed effects are not a subset of the full "
                         "model's (its design is not in their span); the models are not nested")
    if small.k_re > big.k_re or len(small.levels) > len(big.levels):
        raise ValueError("the restricted model has more random effects than the full model; "
                         "the models are not nested")
    if small.theta is not None and big.theta is None:
        return
    if (small.theta is None) != (big.theta is None) or (
            small.theta is not None and small.theta != big.theta):
        raise ValueError("the models treat theta differently (estimated vs fixed); they are "
                         "not nested that way round")


def core_view(fit: PQLFit | MLFit, theta_fit: ThetaFit | None = None) -> dict:
    """What the results class reads from a core fit, PQL or ML, as one dict.

    Parameters
    ----------
    fit : glmmnb.core.pql.PQLFit or glmmnb.core.mlfit.MLFit
        The numerical fit.
    theta_fit : glmmnb.core.theta.ThetaFit, optional
        The ``glm.nb`` fit that gave PQL its theta (``None`` if it was given).

    Returns
    -------
    dict
    """
    lmm = getattr(fit, "lmm", None)
    if lmm is not None:
        return {"method": "pql", "nagq": 0, "llf": np.nan, "llf_start": np.nan,
                "cov_joint": None, "converged": bool(fit.converged and lmm.converged),
                "cov_re": lmm.cov_re, "random_effects": lmm.random_effects,
                "theta_source": "fixed" if theta_fit is None else "glm.nb",
                "se_theta": np.nan if theta_fit is None else theta_fit.se_theta,
                "theta_at_limit": bool(theta_fit is not None and theta_fit.at_limit),
                "phi": None}
    return {"method": fit.method, "nagq": fit.nagq, "llf": fit.llf, "llf_start": fit.llf_start,
            "cov_joint": fit.cov_joint, "converged": fit.converged, "cov_re": fit.cov_re,
            "random_effects": fit.random_effects,
            "theta_source": "ML" if fit.theta_estimated else "fixed",
            "se_theta": fit.se_theta, "theta_at_limit": fit.theta_at_limit, "phi": fit.phi}


def profile_ci(res: NegBinMixedGLMResults, name: str = "theta",
               alpha: float = 0.05) -> tuple[float, float]:
    """Profile-likelihood interval of theta or of a random-effect SD.

    The interval holds the values where ``2 (llf - llf_profile) <= chi2_1(1 -
    alpha)``, each profile point maximising over all other parameters (R:
    ``confint(fit, method = "profile")``).

    Parameters
    ----------
    res : NegBinMixedGLMResults
        A Laplace or AGQ fit.
    name : str
        ``"theta"``, the groups' name (the SD of their random intercept) or
        a name in ``vc_names``.
    alpha : float
        1 - confidence level.

    Returns
    -------
    (lower, upper) : tuple of float
        On the scale of theta or of the SD.  An SD's lower limit is 0 when
        the profile stays below the cut-off down to a zero variance; theta's
        upper limit is ``inf`` when the data cannot rule out the Poisson limit.
    """
    if res.method == "pql":
        raise ValueError("profile_ci needs a likelihood: refit with method='laplace' or 'agq'")
    obj, j, is_theta = _profile_setup(res, name)
    phi_hat = np.array(res._phi, float)
    phi_hat[j] = phi_hat[j] if is_theta else abs(phi_hat[j])
    prof = _Profile(obj, phi_hat, j)
    cut = -res.llf + stats.chi2.ppf(1.0 - alpha, 1) / 2.0
    se = np.sqrt(max(res.cov_joint[j, j], 1e-8))
    if is_theta:
        lo = _outward(prof, cut, phi_hat[j], -se)
        hi = _outward(prof, cut, phi_hat[j], se)
        return float(np.exp(lo)), float(np.exp(hi))
    lower = 0.0 if prof(0.0) <= cut else _root(prof, cut, 0.0, phi_hat[j])
    return lower, float(_outward(prof, cut, phi_hat[j], max(se, 0.05 * phi_hat[j], 1e-3)))


def _outward(prof: _Profile, cut: float, start: float, step: float, max_steps: int = 12) -> float:
    """Step from ``start`` by doubling steps until the profile crosses ``cut``; then the root."""
    inner, outer = start, start + step
    for _ in range(max_steps):
        if prof(outer) > cut:
            return _root(prof, cut, inner, outer)
        inner, step = outer, 2.0 * step
        outer = inner + step
    return np.sign(step) * np.inf


def _root(prof: _Profile, cut: float, a: float, b: float) -> float:
    return float(optimize.brentq(lambda v: prof(v) - cut, a, b, xtol=1e-7))


class _Profile:
    """``v -> min F`` over all parameters but entry ``j`` of ``phi``, held at ``v``."""

    def __init__(self, obj: LaplaceObjective, phi_hat: np.ndarray, j: int) -> None:
        self.obj, self.j, self.phi_hat = obj, j, phi_hat
        self.free = np.arange(phi_hat.size) != j

    def __call__(self, v: float) -> float:
        phi = self.phi_hat.copy()
        phi[self.j] = v

        def fun_grad(psi: np.ndarray) -> tuple[float, np.ndarray]:
            phi[self.free] = psi
            f, g = self.obj.value_and_grad(phi)
            return f, g[self.free]

        out = optimize.minimize(fun_grad, self.phi_hat[self.free], jac=True, method="L-BFGS-B",
                                options={"maxiter": 1000, "ftol": 1e-14, "gtol": 1e-9})
        return float(out.fun)


def _profile_setup(res: NegBinMixedGLMResults, name: str) -> tuple[LaplaceObjective, int, bool]:
    """The objective of the fit, the entry of ``phi`` profiled and whether it is log theta."""
    model = res.model
    X = model.exog
    Xs = X @ standardizing_transform(X)
    args = (model.endog, Xs, model._offset, model._Z, model.levels, model.theta)
    obj = make_objective(*args) if res.method == "laplace" else make_agq_objective(
        *args, res.nagq)
    spec = obj.spec
    group = getattr(model, "group_name", "Group")
    if name == "theta":
        if not spec.estimate_theta:
            raise ValueError("theta was held fixed in this fit: there is no profile to take")
        return obj, spec.size - 1, True
    if name in (group, *model.exog_re_names[:1]) and spec.q == 1:
        return obj, spec.p, False
    if name in model.vc_names:
        return obj, spec.p + spec.n_chol + model.vc_names.index(name), False
    raise ValueError(f"profile_ci takes 'theta', {group!r} (the SD of a scalar random "
                     f"intercept) or one of {model.vc_names}; got {name!r} (the SDs of "
                     "correlated random slopes are not profiled)")
