"""nlme's approximate covariance of the variance parameters (``apVar``).

``intervals.lme`` gives Wald intervals for the random-effect SDs,
correlations and the residual SD on a transformed ("natural") scale:
``log(sd)`` of every random coefficient, ``log((1 + r) / (1 - r))`` of every
correlation and ``log(sigma)``, from the inverse of minus the Hessian of the
ML log-likelihood in those parameters, with ``beta`` at its conditional
optimum (``nlme:::lmeApVar``).  The random-effect covariance here is the
absolute one, ``sigma^2 Psi``, so moving ``log(sigma)`` with the others held
keeps the random-effect SDs fixed.  nlme's Hessian is a finite-difference
fit (``fdHess``); ours is a Richardson-extrapolated central difference of
the same function, evaluated from the working LMM's group statistics.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from .satterthwaite import WorkingLMM, deviance_varpar, hessian

__all__ = ["NaturalParameters", "natural_parameters", "approximate_cov", "FLAT"]

FLAT = 1e-6
"""Curvature of the log-likelihood (in a log-SD) below which it counts as flat."""


@dataclass(frozen=True)
class NaturalParameters:
    """Variance parameters on nlme's natural scale.

    Attributes
    ----------
    values : ndarray
        Per level (outermost first) the ``log(sd)`` of each coefficient, then
        ``log((1 + r) / (1 - r))`` of each correlation (pairs ``(j, k)``,
        ``j < k``, ordered by ``j`` then ``k`` as R's ``pdNatural``); last
        ``log(sigma)``.
    sizes : tuple of int
        Number of random coefficients of each level.

    Examples
    --------
    >>> import numpy as np
    >>> from glmmnb.core.lmm import Level, fit_lmm
    >>> from glmmnb.core.satterthwaite import WorkingLMM
    >>> rng = np.random.default_rng(0)
    >>> g = np.repeat(np.arange(20), 10)
    >>> X = np.column_stack([np.ones(200), g % 2])
    >>> z = X @ [1.0, 0.5] + rng.normal(size=20)[g] + rng.normal(size=200)
    >>> levels = [Level(g, 20, (0,))]
    >>> fit = fit_lmm(X, z, np.ones(200), np.ones((200, 1)), levels)
    >>> work = WorkingLMM.from_fit(fit, levels, np.eye(2))
    >>> nat = natural_parameters(work)
    >>> nat.sizes, np.exp(nat.values).round(3)
    ((1,), array([0.893, 0.981]))
    """

    values: np.ndarray
    sizes: tuple

    def split(self,
              values: ArrayLike | None = None) -> tuple[list[tuple[np.ndarray, np.ndarray]], float]:
        """Per level ``(log_sd, z_corr)`` and ``log_sigma`` of ``values`` (default own)."""
        v = self.values if values is None else np.asarray(values)
        out, start = [], 0
        for q in self.sizes:
            n_cor = q * (q - 1) // 2
            out.append((v[start:start + q], v[start + q:start + q + n_cor]))
            start += q + n_cor
        return out, v[-1]


def _pairs(q: int) -> list[tuple[int, int]]:
    return [(j, k) for j in range(q) for k in range(j + 1, q)]


def natural_parameters(work: WorkingLMM) -> NaturalParameters:
    """The natural-scale parameters at the fit's optimum.

    Parameters
    ----------
    work : WorkingLMM
        The final working LMM of a fit.

    Returns
    -------
    NaturalParameters

    A random-effect SD of exactly zero has the value ``-inf``.

    Examples
    --------
    >>> import numpy as np
    >>> from glmmnb.core.lmm import Level, fit_lmm
    >>> from glmmnb.core.satterthwaite import WorkingLMM
    >>> rng = np.random.default_rng(0)
    >>> g = np.repeat(np.arange(20), 10)
    >>> X = np.column_stack([np.ones(200), g % 2])
    >>> z = X @ [1.0, 0.5] + rng.normal(size=20)[g] + rng.normal(size=200)
    >>> levels = [Level(g, 20, (0,))]
    >>> fit = fit_lmm(X, z, np.ones(200), np.ones((200, 1)), levels)
    >>> work = WorkingLMM.from_fit(fit, levels, np.eye(2))
    >>> round(float(natural_parameters(work).split()[1]), 4)
    -0.0188
    """
    sizes = tuple(lev.k_re for lev in work.levels)
    values, start = [], 0
    for q in sizes:
        n = q * (q + 1) // 2
        L = np.zeros((q, q))
        L[np.tril_indices(q)] = work.theta[start:start + n]
        start += n
        D = work.scale * (L @ L.T)
        sd = np.sqrt(np.diag(D))
        with np.errstate(divide="ignore"):
            values.extend(np.log(sd))            # -inf for a variance at exactly zero
        for j, k in _pairs(q):
            # a coefficient without variance has no correlation; 0 is a placeholder
            r = D[j, k] / (sd[j] * sd[k]) if sd[j] * sd[k] > 0 else 0.0
            values.append(np.log((1.0 + r) / (1.0 - r)))
    values.append(0.5 * np.log(work.scale))
    return NaturalParameters(np.asarray(values, float), sizes)


def _to_varpar(nat: NaturalParameters, values: np.ndarray) -> np.ndarray:
    """``(theta, sigma)`` of natural-scale ``values``."""
    levels, log_sigma = nat.split(values)
    sigma = np.exp(log_sigma)
    theta = []
    for (log_sd, z), q in zip(levels, nat.sizes):
        sd = np.exp(log_sd)
        R = np.eye(q)
        for (j, k), zc in zip(_pairs(q), z):
            R[j, k] = R[k, j] = (np.exp(zc) - 1.0) / (np.exp(zc) + 1.0)
        # Psi = diag(sd) R diag(sd) / sigma^2, so diag(sd / sigma) chol(R) is its
        # Cholesky factor, also when an SD is zero
        L = (sd / sigma)[:, None] * np.linalg.cholesky(R)
        theta.extend(L[np.tril_indices(q)])
    return np.append(theta, sigma)


def approximate_cov(work: WorkingLMM) -> tuple[NaturalParameters, np.ndarray]:
    """nlme's ``apVar``: covariance of the natural-scale variance parameters.

    Parameters
    ----------
    work : WorkingLMM
        The final working LMM of a fit.

    Returns
    -------
    nat : NaturalParameters
        The estimates on the natural scale.
    cov : ndarray
        Their approximate covariance, the inverse of minus the Hessian of
        the ML log-likelihood.

        Parameters in which the log-likelihood is flat (a variance at or
        near zero, and its correlations) get an infinite variance.

    Raises
    ------
    ValueError
        If the Hessian of the other parameters is not negative definite
        (nlme then refuses too: "Non-positive definite approximate
        variance-covariance").

    See Also
    --------
    nlme:::lmeApVar : the R function this mirrors.

    Examples
    --------
    >>> import numpy as np
    >>> from glmmnb.core.lmm import Level, fit_lmm
    >>> from glmmnb.core.satterthwaite import WorkingLMM
    >>> rng = np.random.default_rng(0)
    >>> g = np.repeat(np.arange(20), 10)
    >>> X = np.column_stack([np.ones(200), g % 2])
    >>> z = X @ [1.0, 0.5] + rng.normal(size=20)[g] + rng.normal(size=200)
    >>> levels = [Level(g, 20, (0,))]
    >>> fit = fit_lmm(X, z, np.ones(200), np.ones((200, 1)), levels)
    >>> work = WorkingLMM.from_fit(fit, levels, np.eye(2))
    >>> nat, cov = approximate_cov(work)
    >>> np.sqrt(np.diag(cov)).round(3)
    array([0.177, 0.053])
    """
    nat = natural_parameters(work)
    red = work.reducer()
    active = np.flatnonzero(np.isfinite(nat.values))

    def deviance(v: np.ndarray) -> float:
        full = nat.values.copy()
        full[active] = v
        return deviance_varpar(red, _to_varpar(nat, full))

    H = 0.5 * hessian(deviance, nat.values[active])
    # A variance at (or numerically at) zero leaves the likelihood flat in its
    # log-SD.  Below FLAT its standard error exceeds 1000 and the limits
    # overflow to 0 and infinity at any usual level, which is what nlme prints
    # for it with a converged finite-difference step; the other parameters
    # keep their intervals.
    flat = np.diag(H) < FLAT
    keep = active[~flat]
    Hk = H[np.ix_(~flat, ~flat)]
    if not np.all(np.linalg.eigvalsh(Hk) > 0):
        raise ValueError("non-positive definite approximate variance-covariance of the "
                         "variance parameters")
    cov = np.zeros((nat.values.size, nat.values.size))
    cov[np.ix_(keep, keep)] = np.linalg.inv(Hk)
    gone = np.setdiff1d(np.arange(nat.values.size), keep)
    cov[gone, gone] = np.inf
    return nat, cov
