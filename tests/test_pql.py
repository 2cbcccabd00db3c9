"""The PQL loop against R's glmmPQL internals (tests/data/r/make_pql_unit_references.R).

Beyond the fixed effects these check what R keeps from its last iteration:
the working weights of the last lme fit, the conditional linear predictor,
the starting GLM, and the iteration count with R's defaults (niter = 10,
tolerance 1e-6).
"""

import json

import numpy as np
import pandas as pd
import pytest

from conftest import DATA, REFERENCE, fit_scope
from glmmnb.core.lmm import Level
from glmmnb.core.pql import fit_pql
from tolerances import assert_close

R = json.loads((DATA / "r" / "pql_unit.json").read_text())


def _tiny():
    ref = R["tiny"]
    y = np.asarray(ref["y"], float)
    g = np.asarray(ref["groups"])
    return ref, (y, np.ones((y.size, 1)), np.zeros(y.size), ref["theta"], np.ones((y.size, 1)),
                 [Level(g, int(g.max()) + 1, (0,))])


def _offset_case():
    ref = R["offset_fixed_theta"]
    data = pd.read_csv(REFERENCE / "v05_offset" / "data.csv")
    codes, labels = pd.factorize(data["slide"], sort=True)
    X = np.column_stack([np.ones(len(data)), data["treatment"] == "target"]).astype(float)
    return ref, (data["counts"].to_numpy(float), X, np.log(data["exposure"].to_numpy()),
                 ref["theta"], np.ones((len(data), 1)), [Level(codes, len(labels), (0,))])


@pytest.fixture(scope=fit_scope, params=["tiny", "offset_fixed_theta"])
def case(request):
    ref, args = _tiny() if request.param == "tiny" else _offset_case()
    return ref, args, fit_pql(*args)           # R's defaults: niter 10, tolerance 1e-6


def test_fixed_effects_sigma_and_iterations_with_rs_defaults(case):
    ref, _, fit = case
    assert fit.converged is True and fit.n_iter == ref["n_iter"]
    assert_close(fit.lmm.params, ref["params"], "regression", "params")
    assert_close(np.sqrt(fit.lmm.scale), ref["sigma"], "regression", "resid_sd")


def test_last_iterations_weights_and_linear_predictor(case):
    ref, _, fit = case
    assert_close(fit.weights, ref["weights"], "regression", "fitted")
    assert_close(fit.eta, ref["eta"], "regression", "fitted")
    np.testing.assert_allclose(fit.mu, np.exp(fit.eta), rtol=1e-12)


def test_starting_glm_uses_the_offset(case):
    """R: glm(fixed, family = negative.binomial(theta)), offset included.

    R's glm stops at its deviance tolerance (1e-8), a few 1e-7 short of the
    optimum, so this comparison has only the acceptance tier.
    """
    ref, _, fit = case
    assert_close(fit.glm.params, ref["glm_params"], "acceptance", "params")


def test_niter_default_is_rs_ten():
    """With a tolerance no fit can meet, R stops after niter = 10 lme fits."""
    _, args = _tiny()
    fit = fit_pql(*args, tol=0.0)
    assert fit.n_iter == 10 and fit.converged is False
