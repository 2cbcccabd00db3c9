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
