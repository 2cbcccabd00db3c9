"""The exact gradient of the nested inner-LMM deviance against central differences."""

import numpy as np
import pytest

from conftest import lmm_reducer as _reducer
from glmmnb.core.lmm import Level, fit_lmm
from glmmnb.core.lmm_optimize import _nested_gradient


def _data(seed=3, n=600):
    rng = np.random.default_rng(seed)
    outer = rng.integers(0, 6, n)
    mid = outer * 4 + rng.integers(0, 4, n)
    inner = mid * 3 + rng.integers(0, 3, n)
    X = np.column_stack([np.ones(n), rng.normal(size=n)])
    x2 = rng.normal(size=n)
    z = (1 + rng.normal(size=6)[outer] + rng.normal(size=24)[mid] + rng.normal(size=72)[inner]
         + x2 * rng.normal(size=6)[outer] + rng.normal(size=n))
    return outer, mid, inner, X, x2, z, rng.uniform(0.3, 3, n)


_outer, _mid, _inner, _X, _x2, _z, _w = _data()
_n = len(_z)
_CASES = {
    "two levels": ([Level(_outer, 6, (0,)), Level(_mid, 24, (0,), np.repeat(np.arange(6), 4))],
                   np.ones((_n, 1)), [0.7, 0.4]),
    "three levels": ([Level(_outer, 6, (0,)), Level(_mid, 24, (0,), np.repeat(np.arange(6), 4)),
                      Level(_inner, 72, (0,), np.repeat(np.arange(24), 3))],
                     np.ones((_n, 1)), [0.7, 0.4, 0.3]),
    "slope outside": ([Level(_outer, 6, (0, 1)), Level(_mid, 24, (0,), np.repeat(np.arange(6), 4))],
                      np.column_stack([np.ones(_n), _x2]), [0.7, 0.2, 0.5, 0.4]),
}


@pytest.mark.parametrize("name", list(_CASES))
def test_nested_gradient_matches_central_differences(name):
    levels, Z, theta = _CASES[name]
    theta = np.asarray(theta)
    red = _reducer(levels, _X, Z, _z, _w)
    dev, grad = _nested_gradient(red, theta)
    assert dev == pytest.approx(red.deviance(theta), rel=1e-12)
    h = 1e-6
    numeric = np.array([(red.deviance(theta + e) - red.deviance(theta - e)) / (2 * h)
                        for e in np.eye(theta.size) * h])
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-6)


def test_nested_gradient_vanishes_at_the_fitted_optimum():
    levels, Z, _ = _CASES["two levels"]
    fit = fit_lmm(_X, _z, _w, Z, levels)
    _, grad = _nested_gradient(_reducer(levels, _X, Z, _z, _w), np.asarray(fit.theta))
    np.testing.assert_allclose(grad, 0.0, atol=1e-4)
