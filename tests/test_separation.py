"""Complete separation and huge exposures against R (issue 9, "complete separation").

The R numbers come from ``tests/data/r_separation/make_r_separation.R`` (R
4.2.2, MASS 7.3-58, nlme 3.1-162).  Under separation R's ``glmmPQL`` stops
where its iteration limit stops: the coefficients along the separated
direction (a factor level with only zero counts) are wherever the last
iteration left them (about -30, standard error about 1e6, p = 1).  glmmnb's
GLM iterates to a tighter tolerance, so they run further (about -40); only
their being far off is compared (|estimate| > 20, SE > 1e4, p > 0.99).
Everything the other rows determine (their linear predictor, the fixed
effects off the separated direction, the random-effects and residual SDs, the
df) is compared within the reference tolerances (shared/reference/README.md).
"""

import json
import pathlib
import warnings

import numpy as np
import pandas as pd
import pytest
from statsmodels.tools.sm_exceptions import ConvergenceWarning

from glmmnb import NegBinMixedGLM

HERE = pathlib.Path(__file__).parent / "data" / "r_separation"
R = json.loads((HERE / "r_separation.json").read_text())
SEPARATED = {"s1_issue": "a", "s2_between": "a", "s4_more_rows": "b"}


def _fit(name, theta):
    data = pd.read_csv(HERE / f"{name}.csv")
    model = NegBinMixedGLM.from_formula(R[name]["formula"], data, groups="g", theta=theta)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = model.fit()
    return data, model, res, [str(w.message) for w in caught if w.category is ConvergenceWarning]


def _re_sd(res):
    return float(np.sqrt(np.asarray(res.cov_re)[0, 0]))


@pytest.mark.parametrize("name", sorted(SEPARATED))
@pytest.mark.parametrize("block", ["pql_fixed_theta", "pql"])
def test_separation_fits_what_r_fits(name, block):
    ref = R[name][block]
    data, model, res, conv = _fit(name, 2.0 if block == "pql_fixed_theta" else None)
    zero = (data["f"] == SEPARATED[name]).to_numpy()
    assert res.separation["rows"] == np.flatnonzero(zero).tolist()
    assert any("complete separation: fitted means numerically 0 occurred" in m for m in conv)
    summary = " ".join(str(res.summary()).split())      # its notes are wrapped
    assert "complete separation" in summary and "keep running off" in summary
    sep = np.isin(model.exog_names, res.separation["params"])
    params, bse, pvalues = (np.asarray(a) for a in (res.params, res.bse, res.pvalues))
    # R's bse of the parameters along the separated direction are huge, the others are not
    assert np.array_equal(sep, np.asarray(ref["bse"]) > 1e4)
    assert (np.abs(params[sep]) > 20).all() and (bse[sep] > 1e4).all()
    assert (pvalues[sep] > 0.99).all()
    assert np.asarray(res.ddf).tolist() == ref["df"]
    # what the other rows determine: their linear predictor and the other fixed effects
    X = model.exog[~zero]
    np.testing.assert_allclose(X @ params, X @ np.asarray(ref["params"]), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(params[~sep], np.asarray(ref["params"])[~sep], rtol=1e-4)
    np.testing.assert_allclose(bse[~sep], np.asarray(ref["bse"])[~sep], rtol=1e-3)
    np.testing.assert_allclose(pvalues[~sep], np.asarray(ref["pvalues"])[~sep], rtol=1e-2)
    np.testing.assert_allclose(np.sqrt(res.scale), ref["resid_sd"], rtol=1e-3)
    np.testing.assert_allclose(_re_sd(res), ref["re_sd"], rtol=2e-2, atol=2e-3)
    if block == "pql" and "iteration limit reached" not in R[name]["glm_nb"]["warnings"]:
        np.testing.assert_allclose(res.theta, ref["theta"], rtol=1e-4)


def test_separation_with_a_theta_that_ran_off_is_flagged_as_in_r():
    """R's glm.nb: "iteration limit reached" (theta 2.4e4 and rising); glmmnb flags the limit."""
    _, _, res, _ = _fit("s1_issue", None)
    assert "iteration limit reached" in R["s1_issue"]["glm_nb"]["warnings"]
    assert res.theta_at_limit


@pytest.mark.parametrize("theta", [2.0, None])
def test_quasi_separation_is_an_ordinary_fit(theta):
    """One non-zero count in the level: finite estimates, no separation warning, as R."""
    _, _, res, conv = _fit("s3_quasi", theta)
    ref = R["s3_quasi"]["pql_fixed_theta" if theta else "pql"]
    assert res.separation is None and not any("separation" in m for m in conv)
    np.testing.assert_allclose(res.params, ref["params"], rtol=1e-4)
    np.testing.assert_allclose(res.bse, ref["bse"], rtol=1e-3)
    np.testing.assert_allclose(np.sqrt(res.scale), ref["resid_sd"], rtol=1e-3)
    np.testing.assert_allclose(_re_sd(res), ref["re_sd"], atol=2e-3)


def test_separation_leaving_nothing_to_fit_is_a_clear_error():
    """A single positive count: R's glmmPQL stops (nlminb "false convergence") after
    "glm.fit: fitted rates numerically 0 occurred"; so do we, naming the rows."""
    assert "error" in R["s6_single_count"]
    d = pd.read_csv(HERE / "s6_single_count.csv")
    model = NegBinMixedGLM.from_formula("y ~ f + x", d, groups="g", exposure=d["e"],
                                        theta=np.inf)
    with pytest.raises(ValueError, match=r"complete separation.*row\(s\).*no residual"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit()


def _seed_with_exposure(seed_data, exposure):
    ex = np.ones(len(seed_data))
    ex[7] = exposure
    return ex


@pytest.mark.parametrize("key", ["e_exposure_1e+06", "e_exposure_1e+09"])
def test_one_huge_exposure_at_a_fixed_theta_matches_r(seed_data, key):
    ref = R[key]["pql_fixed_theta"]
    ex = _seed_with_exposure(seed_data, R[key]["exposure"])
    res = NegBinMixedGLM.from_formula("counts ~ RNAi", seed_data, groups="slide", exposure=ex,
                                      theta=ref["theta"]).fit()
    np.testing.assert_allclose(res.params, ref["params"], rtol=1e-4)
    np.testing.assert_allclose(res.bse, ref["bse"], rtol=1e-3)
    np.testing.assert_allclose(np.sqrt(res.scale), ref["resid_sd"], rtol=1e-3)
    np.testing.assert_allclose(_re_sd(res), ref["re_sd"], rtol=2e-2, atol=2e-3)


@pytest.mark.parametrize("key", ["e_exposure_1e+06", "e_exposure_1e+09"])
def test_one_huge_exposure_with_theta_estimated_is_a_clear_error(seed_data, key):
    """R's glm.nb: "no valid set of coefficients has been found"."""
    assert "no valid set of coefficients" in R[key]["glm_nb"]["error"]
    ex = _seed_with_exposure(seed_data, R[key]["exposure"])
    model = NegBinMixedGLM.from_formula("counts ~ RNAi", seed_data, groups="slide", exposure=ex)
    with pytest.raises(FloatingPointError, match=r"glm.nb estimate of theta broke down.*row 7"):
        model.fit()


def test_one_exposure_of_1e9_poisson_matches_r(seed_data):
    ref = R["e_exposure_1e+09"]["pql_poisson"]
    ex = _seed_with_exposure(seed_data, 1e9)
    res = NegBinMixedGLM.from_formula("counts ~ RNAi", seed_data, groups="slide", exposure=ex,
                                      theta=np.inf).fit()
    np.testing.assert_allclose(res.params, ref["params"], rtol=1e-4)
    np.testing.assert_allclose(res.bse, ref["bse"], rtol=1e-3)
    np.testing.assert_allclose(np.sqrt(res.scale), ref["resid_sd"], rtol=1e-3)


def test_one_exposure_of_1e6_poisson_diverging_is_a_clear_error(seed_data):
    """R fits this one (RE SD ~0): its first working LMM stops at a local optimum with the
    variance at 0, while glmmnb's search finds the lower one at ~26 residual SDs, after
    which exp(eta) overflows.  Not R's number, so a clear error naming the exposure."""
    assert "params" in R["e_exposure_1e+06"]["pql_poisson"]
    ex = _seed_with_exposure(seed_data, 1e6)
    model = NegBinMixedGLM.from_formula("counts ~ RNAi", seed_data, groups="slide", exposure=ex,
                                        theta=np.inf)
    with pytest.raises(FloatingPointError, match=r"PQL iterations diverged.*row 7"):
        model.fit()


def test_separation_with_many_iterations_keeps_fitting_as_r():
    """R floors the means at .Machine$double.eps, so its runaway coefficient moves on
    by 1 per iteration without the weights reaching 0; so does glmmnb's."""
    ref = R["s4_more_rows"]["pql_fixed_theta"]
    data = pd.read_csv(HERE / "s4_more_rows.csv")
    model = NegBinMixedGLM.from_formula("y ~ f + x", data, groups="g", theta=2.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = model.fit(maxiter=100)
    params = np.asarray(res.params)
    assert params[1] < -100
    np.testing.assert_allclose(params[[0, 2, 3]], np.asarray(ref["params"])[[0, 2, 3]], rtol=1e-4)
    np.testing.assert_allclose(np.sqrt(res.scale), ref["resid_sd"], rtol=1e-3)
