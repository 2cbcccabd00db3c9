"""theta_ml against MASS::theta.ml (tests/data/r/make_theta_references.R), from any start.

The Newton iteration on log(theta) must land on R's optimum whether it starts
from the moment estimate, far below or far above; the Poisson limit is
reported as such.
"""

import json

import numpy as np
import pytest

from conftest import DATA
from glmmnb.core.theta import THETA_MAX, estimate_theta, theta_ml
from tolerances import assert_close

R = json.loads((DATA / "r" / "theta_unit.json").read_text())


@pytest.mark.parametrize("name", ["seed", "v07_constant_mean"])
@pytest.mark.parametrize("theta0", [None, 1e-6, 1e-2, 1.0, 1e3, 1e7])
def test_theta_ml_matches_r_from_any_start(name, theta0):
    ref = R[name]
    y, mu = np.asarray(ref["y"], float), np.asarray(ref["mu"], float)
    theta, info = theta_ml(y, mu, theta0=theta0)
    assert_close(theta, ref["theta"], "regression", "theta")
    # R's SE is 1 / sqrt(observed information) at its estimate
    assert_close(1.0 / np.sqrt(info), ref["se"], "regression", "bse")


def test_underdispersed_counts_run_to_the_poisson_limit():
    """Variance below the mean: the likelihood increases with theta without bound."""
    y = np.tile([4.0, 5.0, 6.0, 5.0], 50)
    theta, info = theta_ml(y, np.full(y.size, y.mean()))
    assert theta == THETA_MAX
    fit = estimate_theta(y, np.ones((y.size, 1)), np.zeros(y.size))
    assert fit.at_limit and fit.theta == THETA_MAX and fit.se_theta == np.inf
    assert fit.converged
    # the GLM is then the Poisson GLM: its mean is the sample mean
    assert float(np.exp(fit.glm.params[0])) == pytest.approx(5.0, rel=1e-10)


def test_alternation_cut_short_is_not_converged():
    """One glm.nb alternation cannot reach the joint optimum: say so."""
    ref = R["seed"]
    y = np.asarray(ref["y"], float)
    X = np.column_stack([np.ones(y.size), np.repeat([0.0, 0.0, 1.0, 1.0], 50)])  # RNAi
    full = estimate_theta(y, X, np.zeros(y.size))
    short = estimate_theta(y, X, np.zeros(y.size), maxiter=1)
    assert full.converged and not short.converged and short.n_iter == 1


@pytest.mark.parametrize("theta0", [2e6, 1e7, THETA_MAX])
def test_poisson_side_read_off_the_leading_term(theta0):
    """Past 1e6 the score is rounding noise; underdispersion still means the limit.

    Hand calculation: the score's leading term is sum(y - (y - mu)^2) / (2 theta^2),
    here (1000 - 100) / (2 theta^2) > 0 for means a rounding away from the mean.
    """
    from glmmnb.core.batched_theta import theta_ml_batch

    y = np.tile([4.0, 5.0, 6.0, 5.0], 50)
    mu = np.full(y.size, 5.0 * (1 + 1e-12))
    assert theta_ml(y, mu, theta0=theta0)[0] == THETA_MAX
    theta, _ = theta_ml_batch(np.vstack([y, y]), np.vstack([mu, mu]), theta0=np.full(2, theta0))
    assert theta.tolist() == [THETA_MAX, THETA_MAX]
    # overdispersed counts keep a finite estimate from the same far start
    y2 = np.tile([0.0, 10.0, 2.0, 8.0], 50)
    assert theta_ml(y2, np.full(y2.size, 5.0), theta0=theta0)[0] < 10
    far, _ = theta_ml_batch(y2[None], np.full((1, y2.size), 5.0), theta0=np.array([theta0]))
    assert far[0] == pytest.approx(theta_ml(y2, np.full(y2.size, 5.0))[0], rel=1e-8)
