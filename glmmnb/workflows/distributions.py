"""Single-sample count distributions: ML fits and QQ-plot coordinates.

These reproduce the "Data Distribution" step of the seed tutorial, where
``MASS::fitdistr`` fits a Poisson and a negative binomial to the raw counts
and ``car::qqp`` compares the counts with each candidate distribution.

The negative binomial uses R's ``dnbinom(size, mu)`` parametrisation
(``size`` is the ``theta`` of ``glm.nb``).  Its ML estimate of ``mu`` is the
sample mean exactly, so only ``size`` needs a numerical search; it is solved
to machine precision, whereas ``fitdistr``'s BFGS stops earlier (agreement
to about 1e-4 relative).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy import optimize, special, stats

__all__ = ["DistFit", "QQPoints", "fit_poisson", "fit_negbin", "ppoints", "qq_points"]


@dataclass(frozen=True)
class DistFit:
    """A maximum-likelihood fit of one distribution (R: ``fitdistr`` object).

    Attributes
    ----------
    name : str
        ``"poisson"`` or ``"negative binomial"``.
    params : dict
        Estimates under R's argument names (``lambda``; ``size``, ``mu``).
    bse : dict
        Standard errors from the observed information, same keys.
    loglike : float
        Maximised log-likelihood.
    nobs : int
        Number of observations.
    """

    name: str
    params: dict
    bse: dict
    loglike: float
    nobs: int


@dataclass(frozen=True)
class QQPoints:
    """Coordinates of a QQ plot with car's reference line and envelope.

    Attributes
    ----------
    theoretical : ndarray
        Quantiles of the distribution at ``ppoints(n)``.
    sample : ndarray
        The sorted sample.
    lower, upper : ndarray
        Pointwise confidence envelope around the reference line.
    intercept, slope : float
        Reference line through the sample and theoretical quartiles.
    """

    theoretical: np.ndarray
    sample: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    intercept: float
    slope: float


def _counts(y: ArrayLike) -> np.ndarray:
    y = np.asarray(y, dtype=float)
    if y.ndim != 1 or y.size == 0:
        raise ValueError("y must be a non-empty one-dimensional array")
    if not np.all(np.isfinite(y)) or np.any(y < 0) or np.any(y != np.round(y)):
        raise ValueError("y must contain finite non-negative integers")
    return y


def fit_poisson(y: ArrayLike) -> DistFit:
    """Maximum-likelihood Poisson fit of a count vector.

    Parameters
    ----------
    y : array_like
        Non-negative integer counts.

    Returns
    -------
    DistFit
        ``params["lambda"]`` is the sample mean, with standard error
        ``sqrt(lambda / n)``.

    See Also
    --------
    fit_negbin : The overdispersed alternative.
    MASS::fitdistr : the R function mirrored, as ``fitdistr(y, "Poisson")``.

    Examples
    --------
    >>> fit = fit_poisson([2, 3, 3, 5, 7])
    >>> fit.params["lambda"], round(fit.bse["lambda"], 4)
    (4.0, 0.8944)
    """
    y = _counts(y)
    lam = y.mean()
    return DistFit(name="poisson", params={"lambda": float(lam)},
                   bse={"lambda": float(np.sqrt(lam / y.size))},
                   loglike=float(stats.poisson.logpmf(y, lam).sum()), nobs=y.size)


def _size_score(size: float, values: np.ndarray, freq: np.ndarray, mu: float) -> float:
    """Derivative of the NB log-likelihood in ``size`` at the ML ``mu``.

    The sums run over the distinct counts because digamma dominates the cost
    and count data have few distinct values.
    """
    n = freq.sum()
    return (freq @ special.digamma(values + size) - n * special.digamma(size)
            + n * np.log(size / (size + mu)))


def _bracket_size(score: Callable[[float], float], start: float) -> tuple[float, float]:
    """Geometric search for sizes where the score changes sign."""
    lo = hi = start
    for _ in range(80):
        if score(lo) <= 0:
            lo /= 4
        elif score(hi) >= 0:
            hi *= 4
        else:
            return lo, hi
    raise RuntimeError("could not bracket the ML size of the negative binomial")


def fit_negbin(y: ArrayLike) -> DistFit:
    """Maximum-likelihood negative-binomial fit (``size``, ``mu``) of counts.

    Parameters
    ----------
    y : array_like
        Non-negative integer counts, overdispersed: the ML ``size`` is finite
        only when the variance (divisor n) exceeds the mean.

    Returns
    -------
    DistFit
        ``params`` has ``size`` (the ``theta`` of ``glm.nb``) and ``mu``;
        ``bse`` their standard errors from the observed information, which
        is diagonal at the optimum because ``mu`` is the sample mean.

    Raises
    ------
    ValueError
        If the counts are not overdispersed (the ML ``size`` is infinite and
        the Poisson fit is the ML fit).

    See Also
    --------
    fit_poisson : The ``size -> inf`` limit.
    MASS::fitdistr : the R function mirrored, as ``fitdistr(y, "negative binomial")``.

    Examples
    --------
    >>> fit = fit_negbin([0, 1, 1, 2, 3, 5, 8, 13])
    >>> round(fit.params["size"], 3), fit.params["mu"]
    (1.216, 4.125)
    """
    y = _counts(y)
    mu, var = y.mean(), y.var()
    if var <= mu:
        raise ValueError("counts are not overdispersed (variance <= mean): the ML size "
                         "is infinite; use fit_poisson")
    values, freq = np.unique(y, return_counts=True)

    def score(size: float) -> float:
        return _size_score(size, values, freq, mu)

    lo, hi = _bracket_size(score, mu**2 / (var - mu))
    size = np.exp(optimize.brentq(lambda u: score(np.exp(u)), np.log(lo), np.log(hi),
                                  xtol=1e-14, rtol=4 * np.finfo(float).eps))
    n = y.size
    info_size = -(freq @ special.polygamma(1, values + size) - n * special.polygamma(1, size)
                  + n / size - n / (size + mu))
    loglike = stats.nbinom.logpmf(y, size, size / (size + mu)).sum()
    bse = {"size": 1 / np.sqrt(info_size), "mu": np.sqrt((mu + mu**2 / size) / n)}
    return DistFit(name="negative binomial", params={"size": float(size), "mu": float(mu)},
                   bse={k: float(v) for k, v in bse.items()}, loglike=float(loglike), nobs=n)


_DISTRIBUTIONS = {
    # R's argument names and defaults -> scipy frozen distribution
    "norm": (("mean", "sd"), {"mean": 0.0, "sd": 1.0},
             lambda p: stats.norm(p["mean"], p["sd"])),
    "lnorm": (("meanlog", "sdlog"), {"meanlog": 0.0, "sdlog": 1.0},
              lambda p: stats.lognorm(p["sdlog"], scale=np.exp(p["meanlog"]))),
    "pois": (("lambda",), None, lambda p: stats.poisson(p["lambda"])),
    "nbinom": (("size", "mu"), None,
               lambda p: stats.nbinom(p["size"], p["size"] / (p["size"] + p["mu"]))),
}


def _frozen(dist: str, params: dict | None, y: np.ndarray) -> Any:
    try:
        names, defaults, make = _DISTRIBUTIONS[dist]
    except KeyError:
        raise ValueError(f"dist must be one of {sorted(_DISTRIBUTIONS)}, got {dist!r}") from None
    if params is None:
        # R has no default for the count distributions; the tutorial passes
        # the fitdistr estimates, so do the same.
        params = defaults or {"pois": fit_poisson, "nbinom": fit_negbin}[dist](y).params
    if set(params) != set(names):
        raise ValueError(f"{dist} needs params {names}, got {tuple(params)}")
    return make(params)


def ppoints(n: int) -> np.ndarray:
    """Probability points ``(i - a) / (n + 1 - 2a)`` of R's ``ppoints``.

    Parameters
    ----------
    n : int
        Number of points; ``a = 3/8`` if ``n <= 10`` else ``1/2``.

    Returns
    -------
    ndarray

    See Also
    --------
    stats::ppoints : the R function mirrored.

    Examples
    --------
    >>> ppoints(4)
    array([0.14705882, 0.38235294, 0.61764706, 0.85294118])
    """
    a = 3 / 8 if n <= 10 else 0.5
    return (np.arange(1, n + 1) - a) / (n + 1 - 2 * a)


def qq_points(y: ArrayLike, dist: str = "norm", params: dict | None = None,
              level: float = 0.95) -> QQPoints:
    """QQ-plot coordinates, reference line and envelope as ``car::qqPlot``.

    The envelope is car's: the asymptotic standard error of the order
    statistics, ``slope / f(z) * sqrt(p (1 - p) / n)``, around the line
    through the quartiles.  For the discrete distributions ``f`` is the
    probability mass at the quantile, exactly as car evaluates ``dpois`` and
    ``dnbinom``; this is a heuristic there (the band jumps between count
    values) but it is what the tutorial's plots show.

    Parameters
    ----------
    y : array_like
        Sample (for ``"pois"`` and ``"nbinom"``: counts).
    dist : {"norm", "lnorm", "pois", "nbinom"}
        Reference distribution, named as R's ``q<dist>`` functions.
    params : dict, optional
        Its parameters under R's names (``mean``, ``sd``; ``meanlog``,
        ``sdlog``; ``lambda``; ``size``, ``mu``).  Defaults: R's standard
        ones for ``norm`` and ``lnorm``; the ML fit for ``pois`` and
        ``nbinom``.
    level : float
        Pointwise confidence level of the envelope.

    Returns
    -------
    QQPoints

    See Also
    --------
    fit_poisson, fit_negbin : Parameters for the count distributions.
    car::qqPlot : the R function mirrored (alias ``car::qqp``).

    Examples
    --------
    >>> qq = qq_points([3, 1, 4, 1, 5, 9, 2, 6], "norm")
    >>> qq.sample
    array([1., 1., 2., 3., 4., 5., 6., 9.])
    >>> round(qq.slope, 4)
    2.5946
    """
    sample = np.sort(np.asarray(y, dtype=float))
    if sample.ndim != 1 or sample.size == 0 or not np.all(np.isfinite(sample)):
        raise ValueError("y must be a non-empty one-dimensional array of finite values")
    frozen = _frozen(dist, params, sample)
    p = ppoints(sample.size)
    z = frozen.ppf(p)
    q_z = frozen.ppf([0.25, 0.75])
    if q_z[0] == q_z[1]:
        raise ValueError(f"the quartiles of {dist} coincide; no reference line")
    q_y = np.quantile(sample, [0.25, 0.75])
    slope = (q_y[1] - q_y[0]) / (q_z[1] - q_z[0])
    intercept = q_y[0] - slope * q_z[0]
    density = frozen.pmf(z) if dist in ("pois", "nbinom") else frozen.pdf(z)
    half = stats.norm.ppf((1 + level) / 2) * slope / density * np.sqrt(p * (1 - p) / sample.size)
    line = intercept + slope * z
    return QQPoints(theoretical=z, sample=sample, lower=line - half, upper=line + half,
                    intercept=float(intercept), slope=float(slope))
