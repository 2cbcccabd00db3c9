"""Residuals, MixedLM attributes, public tables and the summary options (R where R has them)."""

import json

import numpy as np
import pandas as pd
import pytest

from conftest import DATA
from glmmnb import NegBinMixedGLM

PREDICTION = DATA / "r" / "prediction"


@pytest.fixture(scope="module", params=["seed", "trt_area", "trt_area_slope"])
def case(request):
    folder = PREDICTION / request.param
    expected = json.loads((folder / "expected.json").read_text())
    data = pd.read_csv(folder / "data.csv")
    res = NegBinMixedGLM.from_formula(expected["formula"], data, groups=expected["groups"],
                                      re_formula=expected["re_formula"]).fit()
    return res, expected


@pytest.mark.parametrize("kind", ["pearson", "deviance", "working"])
def test_residuals_match_r(case, kind):
    res, expected = case
    ours = np.asarray(getattr(res, f"resid_{kind}"))[:20]
    np.testing.assert_allclose(ours, expected["residuals_head"][kind], rtol=1e-3, atol=1e-5)


def test_r_standardized_residuals_are_working_scaled(case):
    """R's residuals(glmmPQL_fit, type = "pearson"): working residual / (sigma sqrt(invwt))."""
    res, expected = case
    w = res._working_weights[:20]
    np.testing.assert_allclose(np.asarray(res.resid_working)[:20] * np.sqrt(w) / res.scale_sd,
                               expected["residuals_head"]["r_pearson"], rtol=1e-3, atol=1e-5)


def test_random_effects_cov_matches_r(case):
    res, expected = case
    ours = np.array([v.to_numpy() for v in res.random_effects_cov.values()])
    r = np.asarray(expected["random_effects_cov"], dtype=float).reshape(ours.shape)
    # near-zero variances are flat in the likelihood (reference README): 2e-2 relative
    np.testing.assert_allclose(ours, r, rtol=2e-2, atol=1e-8)
    assert list(res.random_effects_cov) == list(res.ranef().index)


def test_mixedlm_names(seed_fit):
    pd.testing.assert_series_equal(seed_fit.fe_params, seed_fit.params)
    pd.testing.assert_series_equal(seed_fit.bse_fe, seed_fit.bse)
    assert seed_fit.df_model == 1.0
    assert isinstance(seed_fit.resid_pearson, pd.Series)
    assert isinstance(seed_fit.cov_re, pd.DataFrame)


def test_public_tables(seed_fit):
    table = seed_fit.fixed_effects_table()
    np.testing.assert_allclose(table["Coef."], [1.6174, 0.3988], atol=1e-4)
    assert table["DF"].tolist() == [196, 2]
    vc = seed_fit.varcorr()
    np.testing.assert_allclose(vc.loc["Residual", "Std.Dev."], 0.9936, atol=1e-4)
    corr = seed_fit.corr_params()
    cov = np.asarray(seed_fit.cov_params())
    assert corr.iloc[0, 1] == pytest.approx(cov[0, 1] / np.sqrt(cov[0, 0] * cov[1, 1]))
    assert np.allclose(np.diag(corr), 1.0)


def test_summary_options(seed_fit):
    text = seed_fit.summary(yname="cells", xname=["b0", "Target"], title="Seed fit",
                            alpha=0.1, corr=True).as_text()
    assert text.splitlines()[0].strip() == "Seed fit"
    assert "cells" in text and "Target" in text and "[0.05" in text
    assert "Correlation" in text
    assert seed_fit.summary2().as_text() == seed_fit.summary().as_text()
    with pytest.raises(ValueError, match="xname needs 2 names"):
        seed_fit.summary(xname=["a"])


def test_summary_rules_have_one_width(seed_fit):
    text = seed_fit.summary(rate_ratios=True, corr=True).as_text()
    widths = {len(line) for line in text.splitlines() if set(line) <= set("=-") and line}
    assert len(widths) == 1


def test_conditional_covariances_need_the_data(seed_data):
    res = NegBinMixedGLM.from_formula("counts ~ RNAi", seed_data, groups="slide").fit()
    res.remove_data()
    with pytest.raises(ValueError, match="remove_data"):
        res.random_effects_cov
    with pytest.raises(ValueError, match="remove_data"):
        res.predict()
    assert res.predict(pd.DataFrame({"RNAi": ["Target"]})).iloc[0] == pytest.approx(7.51, abs=5e-3)


def test_variance_parameter_covariance_matches_nlme_apvar(case):
    res, expected = case
    r = expected["apvar"]
    # the seed's RE variance is near 0, where the likelihood is flat and R's own
    # fdHess moves by several % with the step: a loose check only there
    rtol = 0.1 if expected["formula"] == "counts ~ RNAi" else 2e-2
    np.testing.assert_allclose(res.bse_re, np.atleast_1d(r["bse_re"]), rtol=rtol)
    if rtol < 0.1:
        np.testing.assert_allclose(res.cov_re_natural, r["apVar"], rtol=rtol, atol=1e-5)
    assert res.cov_re_natural.index[-1] == "log(sigma)"
    assert list(res.bse_re.index)[0] == "slide: (Intercept)"


def test_variance_at_zero_has_an_unbounded_standard_error():
    """v11_nested: the experiment variance is at 0, where R's intervals() gives 0 to infinity."""
    data = pd.read_csv(DATA / "reference" / "v11_nested" / "data.csv")
    with pytest.warns(UserWarning, match="singular"):
        res = NegBinMixedGLM.from_formula("counts ~ treatment", data, groups="experiment",
                                          vc_formula={"slide": "0 + C(slide)"}).fit()
    bse = res.bse_re
    assert list(bse.index) == ["experiment: (Intercept)", "slide (in experiment): (Intercept)"]
    assert np.isinf(bse.iloc[0]) and 0 < bse.iloc[1] < np.inf


@pytest.mark.filterwarnings("ignore::glmmnb.core.singular.SingularFitWarning")
@pytest.mark.parametrize("name", ["v04_within_covariate", "v06_random_slope",
                                  "v09_within_factor_interaction", "v11_nested"])
def test_corr_params_is_r_correlation_of_fixed_effects(name):
    """R's summary(fit) prints cov2cor(vcov(fit)); the N / (N - p) inflation cancels."""
    from conftest import REFERENCE, fit_case, load_case

    data, expected = load_case(REFERENCE / name)
    res = fit_case(data, expected)
    cov = np.asarray(expected["pql"]["cov_params"], dtype=float)
    sd = np.sqrt(np.diag(cov))
    np.testing.assert_allclose(res.corr_params(), cov / np.outer(sd, sd), atol=1e-5)
