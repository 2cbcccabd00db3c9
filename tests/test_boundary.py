"""The random-intercept SD is found wherever it lies (issue 9, item 1).

The R cases x07_tiny_theta and x08_large_counts (tests/data/r/
make_boundary_references.R) put glmmPQL's ratio of slide SD to residual SD
beyond 100, where the search used to stop; test_reference_r.py compares
every number of them with R, this file checks the regime and the optimiser.
"""

import numpy as np
import pytest

from conftest import DATA, fit_case, load_case
from glmmnb.core.lmm import Level, fit_lmm

BEYOND_OLD_CAP = ["x07_tiny_theta", "x08_large_counts"]


@pytest.mark.parametrize("name", BEYOND_OLD_CAP)
def test_sd_ratio_beyond_100_matches_r(name):
    data, exp = load_case(DATA / "r" / name)
    ratio_r = exp["pql"]["sd_ratio"]
    assert ratio_r > 100                          # the case is in the regime
    res = fit_case(data, exp)
    ratio = np.sqrt(np.asarray(res.cov_re)[0, 0] / res.scale)
    assert ratio == pytest.approx(ratio_r, rel=2e-2)
    np.testing.assert_allclose(res.bse, exp["pql"]["bse"], rtol=1e-3)
    np.testing.assert_allclose(res.pvalues, exp["pql"]["pvalues"], rtol=1e-2, atol=1e-8)
    assert res.converged


def _lmm_data(resid_sd, seed=0, n_groups=15, size=12):
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(n_groups), size)
    X = np.column_stack([np.ones(g.size), rng.normal(size=g.size)])
    z = X @ [1.0, 0.5] + rng.normal(size=n_groups)[g] + resid_sd * rng.normal(size=g.size)
    return X, z, g


def _deviance_at(X, z, g, ratio, weight=1.0):
    from glmmnb.core.lmm import _Reducer, group_crossproducts
    w = np.full(g.size, weight)
    T = group_crossproducts(g, g.max() + 1, np.column_stack([np.ones(g.size), X, z]), w)
    red = _Reducer(T, [Level(g, g.max() + 1, (0,))], g.size, X.shape[1],
                   float(np.log(w).sum()))
    return red.deviance(np.array([ratio]))


@pytest.mark.parametrize("resid_sd", [1e-2, 1e-3, 1e-5])
def test_optimum_far_beyond_100_is_a_minimum(resid_sd):
    X, z, g = _lmm_data(resid_sd)
    fit = fit_lmm(X, z, np.ones(g.size), np.ones((g.size, 1)), [Level(g, g.max() + 1, (0,))])
    ratio = float(fit.theta[0])
    assert fit.converged
    assert 0.3 / resid_sd < ratio < 3.0 / resid_sd   # groups' SD 1 against resid_sd
    best = _deviance_at(X, z, g, ratio)
    for step in (1.001, 1 / 1.001):
        assert _deviance_at(X, z, g, ratio * step) > best


@pytest.mark.parametrize("resid_sd", [0.5, 1 / 150])
@pytest.mark.parametrize("start", [100.0, 1e4, 1e-4, 0.0])
def test_warm_start_never_traps_the_search(resid_sd, start):
    """A start on a grid point or far off (an earlier PQL iteration) finds the same optimum."""
    X, z, g = _lmm_data(resid_sd, seed=3)
    levels = [Level(g, g.max() + 1, (0,))]
    cold = fit_lmm(X, z, np.ones(g.size), np.ones((g.size, 1)), levels)
    warm = fit_lmm(X, z, np.ones(g.size), np.ones((g.size, 1)), levels, theta0=[start])
    # the deviance is flat to rounding within ~1e-5 of the optimum, and
    # different brackets stop at different points there
    assert warm.theta[0] == pytest.approx(cold.theta[0], rel=1e-4)


@pytest.mark.parametrize("weight", [1.0, 0.05])
def test_deviance_rounding_far_beyond_100(weight):
    """At an SD ratio of 8e3 the deviance's rounding noise stays below its curvature.

    Second differences over relative steps of 1e-4 around the optimum: the
    curvature gives 5.9e-7 each; their noise (SD) was 7.0e-6 with the direct
    form ``sum T_g - sum l^2 / (1 + l^2 T_rr) t t'`` and is 1.8e-6 with the
    limit form (measured; the bound leaves a factor 2 either side).  With
    working weights of 0.05 (``T_rr`` = 0.6 < 1) the noise is 6.6e-6 direct
    and 1.2e-6 limit: the limit form holds for any positive ``T_rr``.
    """
    X, z, g = _lmm_data(1e-4)
    ratio = 0.79e4 / np.sqrt(weight)
    dev = np.array([_deviance_at(X, z, g, ratio * (1 + 1e-4 * k), weight)
                    for k in range(-50, 51)])
    assert np.diff(dev, 2).std() < 3.5e-6


@pytest.mark.parametrize("resid_sd", [0.5, 0.01])
@pytest.mark.parametrize("factor", [0.3, 1.0, 3.0])
def test_scalar_derivatives_are_those_of_the_deviance(resid_sd, factor):
    """The polish's deviance, slope and curvature in s = log(l^2), against central differences."""
    from glmmnb.core.lmm import _Reducer, group_crossproducts

    X, z, g = _lmm_data(resid_sd, seed=2)
    G = g.max() + 1
    w = np.linspace(0.5, 2.0, g.size)
    T = group_crossproducts(g, G, np.column_stack([np.ones(g.size), X, z]), w)
    red = _Reducer(T, [Level(g, G, (0,))], g.size, X.shape[1], float(np.log(w).sum()))
    l = factor / resid_sd
    dev, d1, d2 = red.derivatives_scalar(l)
    assert dev == pytest.approx(float(red.deviance(np.array([l]))), rel=1e-12, abs=1e-9)
    h = 1e-3
    at = lambda s: float(red.deviance_scalar([np.exp(s / 2)])[0])  # noqa: E731
    s = np.log(l * l)
    assert d1 == pytest.approx((at(s + h) - at(s - h)) / (2 * h), rel=1e-5, abs=1e-7)
    assert d2 == pytest.approx((at(s + h) - 2 * at(s) + at(s - h)) / h ** 2, rel=1e-3, abs=1e-6)


@pytest.mark.parametrize("l", [0.6, 2.0])
def test_scalar_curvature_on_unbalanced_groups(l):
    """The curvature's beta term ``2 g' (X'V^-1X)^-1 g`` vanishes when all groups weigh
    alike; with sizes 2 to 40 and a between-group covariate it is 0.3 % of the
    curvature at l = 0.6, which central differences resolve to 1e-7."""
    from glmmnb.core.lmm import _Reducer, group_crossproducts

    rng = np.random.default_rng(5)
    G = 15
    g = np.repeat(np.arange(G), rng.integers(2, 40, G))
    X = np.column_stack([np.ones(g.size), rng.normal(size=g.size), rng.integers(0, 2, G)[g]])
    z = X @ [1.0, 0.5, 0.3] + rng.normal(size=G)[g] + 0.5 * rng.normal(size=g.size)
    w = np.linspace(0.5, 2.0, g.size)
    T = group_crossproducts(g, G, np.column_stack([np.ones(g.size), X, z]), w)
    red = _Reducer(T, [Level(g, G, (0,))], g.size, X.shape[1], float(np.log(w).sum()))
    _, _, d2 = red.derivatives_scalar(l)
    h = 1e-3
    at = lambda s: float(red.deviance_scalar([np.exp(s / 2)])[0])  # noqa: E731
    s = np.log(l * l)
    assert d2 == pytest.approx((at(s + h) - 2 * at(s) + at(s - h)) / h ** 2, rel=2e-6)


def test_a_group_without_its_random_slope_column_raises_no_runtime_warning():
    """``re_formula="0 + area"`` with area 0 in every row of one slide: that slide's
    ``T_rr`` is 0, so the far-l limit form (``1 / T_rr``) is not formed at all."""
    import warnings

    import pandas as pd

    from glmmnb import NegBinMixedGLM

    rng = np.random.default_rng(1)
    g = np.repeat(np.arange(12), 20)
    area = rng.normal(size=g.size)
    area[g == 0] = 0.0
    y = rng.poisson(np.exp(1 + 0.3 * area + rng.normal(0, 0.3, 12)[g] * area))
    data = pd.DataFrame({"y": y, "area": area, "slide": [f"s{k}" for k in g]})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = NegBinMixedGLM.from_formula("y ~ area", data, groups="slide",
                                          re_formula="0 + area", theta=5).fit()
    assert res.converged and np.isfinite(res.bse).all()
    assert 0.01 < float(res.cov_re.iloc[0, 0]) < 1.0
