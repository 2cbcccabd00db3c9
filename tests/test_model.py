"""The statsmodels contract of NegBinMixedGLM and its results."""

import numpy as np
import pandas as pd
import pytest

import glmmnb.api as gnb
from conftest import REFERENCE, printed_random_effect
from glmmnb import NegBinMixedGLM
from glmmnb.results import NegBinMixedGLMResultsWrapper

NAMES = ["Intercept", "RNAi[T.Target]"]


def test_results_are_labelled_pandas(seed_fit):
    assert isinstance(seed_fit, NegBinMixedGLMResultsWrapper)
    for attr in ("params", "bse", "tvalues", "pvalues", "ddf"):
        assert list(getattr(seed_fit, attr).index) == NAMES, attr
    assert list(seed_fit.conf_int().index) == NAMES
    assert list(seed_fit.cov_params().columns) == NAMES
    assert list(seed_fit.cov_re.columns) == ["slide"]


def test_seed_numbers_match_the_tutorial(seed_fit):
    np.testing.assert_allclose(seed_fit.params, [1.6174061, 0.3988294], rtol=1e-6)
    np.testing.assert_allclose(seed_fit.bse, [0.04919156, 0.06472175], rtol=1e-4)
    assert seed_fit.ddf.tolist() == [196, 2]
    assert seed_fit.pvalues.iloc[1] == pytest.approx(0.0253, abs=1e-4)
    assert np.sqrt(seed_fit.cov_re.iloc[0, 0]) == pytest.approx(0.009718551, rel=2e-2)
    assert np.sqrt(seed_fit.scale) == pytest.approx(0.9935715, rel=1e-4)
    assert seed_fit.nobs == 200 and seed_fit.n_groups == 4
    assert seed_fit.n_iter == 1 and seed_fit.converged
    assert seed_fit.theta_source == "glm.nb"


def test_conf_int_uses_ddf(seed_fit):
    """R's intervals(glmm)$fixed: est -/+ qt(0.975, c(196, 2)) * Std.Error."""
    from scipy import stats

    R_EST, R_SE = np.array([1.6174061, 0.3988294]), np.array([0.04919156, 0.06472175])
    for alpha in (0.05, 0.1):
        half = stats.t.ppf(1 - alpha / 2, [196, 2]) * R_SE
        np.testing.assert_allclose(seed_fit.conf_int(alpha=alpha),
                                   np.column_stack([R_EST - half, R_EST + half]), rtol=1e-5)


def test_t_test_string_hypothesis_matches_table(seed_fit):
    tt = seed_fit.t_test("RNAi[T.Target] = 0")
    assert np.ravel(tt.tvalue)[0] == pytest.approx(seed_fit.tvalues.iloc[1])
    assert float(tt.pvalue) == pytest.approx(seed_fit.pvalues.iloc[1])
    both = seed_fit.t_test(np.eye(2))
    np.testing.assert_allclose(np.ravel(both.pvalue), seed_fit.pvalues)


def test_wald_test_runs(seed_fit):
    wt = seed_fit.wald_test("RNAi[T.Target] = 0", scalar=True)
    assert wt.statistic == pytest.approx(seed_fit.tvalues.iloc[1] ** 2)


def test_no_likelihood_like_r(seed_fit):
    assert np.isnan(seed_fit.llf) and np.isnan(seed_fit.aic) and np.isnan(seed_fit.bic)


def test_predict_population_and_conditional(seed_fit, seed_data):
    new = pd.DataFrame({"RNAi": ["Control", "Target"]})
    # R: exp(fixef(glmm)) and exp(sum(fixef(glmm))) of the tutorial's fit
    np.testing.assert_allclose(seed_fit.predict(new), np.exp([1.6174061, 1.6174061 + 0.3988294]),
                               rtol=1e-6)
    # R: fitted(glmm) is conditional (predict(fit, level = 1)); its first value, link scale
    assert np.log(np.asarray(seed_fit.predict(conditional=True))[0]) == pytest.approx(
        1.61787544351045, rel=1e-6)
    # one rule for fitted and new rows: population-level unless conditional=True
    np.testing.assert_allclose(seed_fit.predict(conditional=True), seed_fit.fittedvalues)
    np.testing.assert_allclose(seed_fit.predict().iloc[[0, -1]], seed_fit.predict(
        seed_data.iloc[[0, -1]]))


def test_random_effects_dict(seed_fit):
    re = seed_fit.random_effects
    assert sorted(re) == ["Control_day1", "Control_day2", "Target_day1", "Target_day2"]
    assert re["Target_day2"].iloc[0] == pytest.approx(0.00204654531800536, rel=2e-2, abs=2e-4)
    assert seed_fit.ranef().loc["Target_day2"].iloc[0] == re["Target_day2"].iloc[0]


def test_array_interface_equals_formula(seed_fit, seed_data):
    X = np.column_stack([np.ones(200), seed_data["RNAi"] == "Target"])
    res = NegBinMixedGLM(seed_data["counts"].to_numpy(), X, seed_data["slide"].to_numpy()).fit()
    # the RE variance is near its boundary, where the optimum is flat: rounding
    # differences between the two designs move the SEs in the 8th digit
    np.testing.assert_allclose(res.params, seed_fit.params, rtol=1e-8)
    np.testing.assert_allclose(res.bse, seed_fit.bse, rtol=1e-6)
    assert list(res.ddf) == [196, 2]


def test_lowercase_api_and_groups_array(seed_fit, seed_data):
    res = gnb.negbinmixedglm("counts ~ RNAi", seed_data, groups=seed_data["slide"].to_numpy()).fit()
    np.testing.assert_allclose(res.params, seed_fit.params, rtol=1e-10)


def test_fixed_theta_and_poisson_limit(seed_data):
    res = NegBinMixedGLM.from_formula("counts ~ RNAi", seed_data, groups="slide", theta=10).fit()
    assert res.theta == 10 and res.theta_source == "fixed"
    pois = NegBinMixedGLM.from_formula("counts ~ RNAi", seed_data, groups="slide",
                                       theta=np.inf).fit()
    big = NegBinMixedGLM.from_formula("counts ~ RNAi", seed_data, groups="slide",
                                      theta=1e9).fit()
    np.testing.assert_allclose(pois.params, big.params, rtol=1e-6)


def test_exposure_is_log_offset():
    data = pd.read_csv(REFERENCE / "v05_offset" / "data.csv")
    a = NegBinMixedGLM.from_formula("counts ~ treatment", data, groups="slide",
                                    exposure="exposure").fit()
    b = NegBinMixedGLM.from_formula("counts ~ treatment", data, groups="slide",
                                    offset=np.log(data["exposure"])).fit()
    np.testing.assert_allclose(a.params, b.params, rtol=1e-10)
    new = pd.DataFrame({"treatment": ["control"]})
    assert float(a.predict(new, exposure=[2.0]).iloc[0]) == pytest.approx(
        2 * float(a.predict(new, exposure=[1.0]).iloc[0]))


def test_subset_selects_rows(seed_data):
    mask = seed_data["experiment"] == "day1"
    model = NegBinMixedGLM.from_formula("counts ~ RNAi", seed_data, groups="slide", subset=mask)
    # two slides, one per treatment: the RNAi effect has 0 df, as R reports
    with pytest.warns(UserWarning, match="0 denominator df"):
        res = model.fit()
    assert res.nobs == 100 and res.n_groups == 2 and res.ddf.tolist() == [98, 0]


def test_tighter_tol_iterates_further(seed_data):
    loose = NegBinMixedGLM.from_formula("counts ~ RNAi", seed_data, groups="slide").fit()
    tight = NegBinMixedGLM.from_formula("counts ~ RNAi", seed_data, groups="slide").fit(tol=1e-14)
    assert tight.n_iter > loose.n_iter
    np.testing.assert_allclose(tight.params, loose.params, rtol=1e-4)


def test_summary_renders_everywhere(seed_fit):
    smry = seed_fit.summary()
    text = smry.as_text()
    for piece in ("PQL", "Negative binomial", "25.3326", "glm.nb", "log", "200", "196",
                  "0.0253", "Std.Err.", "DF", "P>|t|", "0.9936",
                  "between/within", "Converged", "50 / 50.0 / 50"):
        assert piece in text, piece
    variance, sd = printed_random_effect(text, "slide: (Intercept)")
    # R's VarCorr(glmm): 9.4450e-05 and 0.0097186, within the printed digits
    assert variance == pytest.approx(9.4450e-05, rel=1e-3)
    assert sd == pytest.approx(0.0097186, rel=1e-3)
    assert "<table" in smry.as_html() and "0.0253" in smry._repr_html_()
    assert "tabular" in smry.as_latex()


def test_random_slope_summary_shows_correlation():
    data = pd.read_csv(REFERENCE / "v06_random_slope" / "data.csv")
    res = NegBinMixedGLM.from_formula("counts ~ treatment + area", data, groups="slide",
                                      re_formula="~area").fit()
    text = res.summary().as_text()
    assert "Corr((Intercept), area)" in text and "slide: area" in text
    assert list(res.cov_re.columns) == ["slide", "area"]
    assert res.ranef().shape == (15, 2)


def test_rate_ratios_and_their_summary_table(seed_fit):
    """R: exp(fixef(glmm)) and exp(intervals(glmm)$fixed)."""
    from scipy import stats

    R_EST, R_SE = np.array([1.6174061, 0.3988294]), np.array([0.04919156, 0.06472175])
    half = stats.t.ppf(0.975, [196, 2]) * R_SE
    irr = seed_fit.rate_ratios()
    np.testing.assert_allclose(irr["IRR"], np.exp(R_EST), rtol=1e-6)
    np.testing.assert_allclose(irr.iloc[:, 1:], np.exp(np.column_stack([R_EST - half,
                                                                        R_EST + half])),
                               rtol=1e-5)
    assert list(irr.columns) == ["IRR", "[0.025", "0.975]"]
    plain, with_irr = seed_fit.summary().as_text(), seed_fit.summary(rate_ratios=True).as_text()
    assert "IRR" not in plain and "IRR" in with_irr and "1.4901" in with_irr
