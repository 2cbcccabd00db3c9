"""The results methods' arguments reach the numbers (R's seed fit, tests/data/reference/v01_seed).

Each expectation is a hand calculation from R's printed glmmPQL table
(estimates, summary SEs, df 196 and 2), so a method that drops or swaps an
argument fails here.
"""

import json
import pathlib

import numpy as np
import pytest
from scipy import stats

from glmmnb import NegBinMixedGLM

REF = json.loads((pathlib.Path(__file__).parent / "data" / "reference" / "v01_seed"
                  / "expected.json").read_text())["pql"]
B, SE, DF = (np.array(REF[k], float) for k in ("params", "bse", "df"))


@pytest.fixture
def fit(seed_data):
    return NegBinMixedGLM.from_formula("counts ~ RNAi", seed_data, groups="slide").fit()


def test_conf_int_alpha_and_cols(fit):
    q = stats.t.ppf(0.95, DF)
    expect = np.column_stack([B - q * SE, B + q * SE])
    np.testing.assert_allclose(np.asarray(fit.conf_int(0.1)), expect, rtol=1e-5)
    np.testing.assert_allclose(fit._results.conf_int(0.1, cols=[1]), expect[[1]], rtol=1e-5)


@pytest.mark.parametrize("cols", [[1], [1, 0], None])
def test_conf_int_cols_labelled_on_pandas_data(fit, cols):
    # statsmodels' wrapper labels every parameter and raised on a selection
    names = ["Intercept", "RNAi[T.Target]"]
    q = stats.t.ppf(0.975, DF)
    expect = np.column_stack([B - q * SE, B + q * SE])
    rows = list(range(2)) if cols is None else cols
    ci = fit.conf_int(cols=cols)
    assert list(ci.index) == [names[j] for j in rows] and list(ci.columns) == [0, 1]
    np.testing.assert_allclose(ci.to_numpy(), expect[rows], rtol=1e-5)


def test_conf_int_of_array_data_is_an_array(seed_data):
    X = np.column_stack([np.ones(200), seed_data["RNAi"] == "Target"])
    res = NegBinMixedGLM(seed_data["counts"].to_numpy(), X, seed_data["slide"].to_numpy()).fit()
    ci = res.conf_int(cols=[1])
    assert isinstance(ci, np.ndarray) and ci.shape == (1, 2)
    np.testing.assert_allclose(ci[0], np.asarray(res.conf_int())[1])


def test_wald_test_terms_passes_its_arguments(fit):
    assert list(fit.wald_test_terms(skip_single=True).table.index) == []
    extra = fit.wald_test_terms(extra_constraints=[("both", np.eye(2))]).table
    assert extra.loc["both", "df_constraint"] == 2 and extra.loc["both", "df_denom"] == 2


def test_results_defaults_without_the_wrapper(fit):
    """The results class's own defaults (the wrapper passes its arguments on)."""
    inner = fit._results
    q = stats.t.ppf(0.975, DF)
    np.testing.assert_allclose(np.asarray(inner.conf_int()),
                               np.column_stack([B - q * SE, B + q * SE]), rtol=1e-5)
    rr = inner.rate_ratios()
    assert list(rr.index) == ["Intercept", "RNAi[T.Target]"]
    np.testing.assert_allclose(rr["IRR"], np.exp(B), rtol=1e-6)


def test_rate_ratios_alpha(fit):
    rr = fit.rate_ratios(0.1)
    q = stats.t.ppf(0.95, DF)
    assert list(rr.columns) == ["IRR", "[0.05", "0.95]"]
    np.testing.assert_allclose(rr.to_numpy(float),
                               np.exp(np.column_stack([B, B - q * SE, B + q * SE])), rtol=1e-5)


def test_summary2_is_summary_with_every_argument(fit):
    kw = dict(yname="Y", xname=["a", "b"], title="T", alpha=0.1, rate_ratios=True, corr=True)
    text = fit.summary2(**kw).as_text()
    assert text == fit.summary(**kw).as_text()
    assert "T" == text.splitlines()[0].strip()
    assert "[0.05" in text and "0.95]" in text and "Y" in text
    assert text != fit.summary2(**dict(kw, corr=False)).as_text()
    assert text != fit.summary2(**dict(kw, rate_ratios=False)).as_text()
    assert text != fit.summary2(**dict(kw, xname=["c", "d"])).as_text()


def test_attributes_from_the_fit(fit):
    assert fit.nobs == 200 and fit.n_groups == 4
    np.testing.assert_array_equal(fit.group_sizes, [50, 50, 50, 50])
    assert fit.df_resid == 196.0 and fit.df_model == 1
    np.testing.assert_allclose(fit.fittedvalues[:10], np.exp(REF["fitted_head"]), rtol=1e-5)
    np.testing.assert_allclose(fit.resid, fit.model.endog - fit.fittedvalues)
    np.testing.assert_allclose(np.asarray(fit.ddf), DF)
    assert fit.n_iter == REF["n_iter"] and fit.converged
    np.testing.assert_allclose(np.asarray(fit.cov_re), REF["cov_re"]["slide"], rtol=1e-3)
    assert fit.vcomp.shape == (0,) and fit.separation is None and not fit.is_singular
    assert fit.exog_re_names == ["slide"] and fit.vc_names == []
    assert fit.theta_source == "glm.nb" and fit.method == "pql"
    assert fit.fit_options["ddf"] == "nlme" and fit.ddf_method == "nlme"
    np.testing.assert_allclose(fit.scale_sd, REF["resid_sd"], rtol=1e-4)
    fit.remove_data()
    for name in ("fittedvalues", "resid", "resid_working", "_working_weights",
                 "_working_response"):
        assert getattr(fit._results if hasattr(fit, "_results") else fit, name) is None


def test_pql_use_t_false_gives_z_tests(seed_data):
    """``fit(use_t=False)`` reaches a PQL fit: normal intervals and p-values, z in the summary.

    Before, a PQL fit kept its t-tests on 2 df without a word.
    """
    res = NegBinMixedGLM.from_formula("counts ~ RNAi", seed_data, groups="slide").fit(use_t=False)
    q = stats.norm.ppf(0.975)
    np.testing.assert_allclose(np.asarray(res.conf_int()),
                               np.column_stack([B - q * SE, B + q * SE]), rtol=1e-5)
    # the slope's p-value only: the intercept's (1e-237) amplifies the rounding of R's SE
    np.testing.assert_allclose(np.asarray(res.pvalues)[1], 2 * stats.norm.sf(abs(B[1] / SE[1])),
                               rtol=1e-3)
    assert "P>|z|" in res.summary().as_text() and not res.use_t


def test_t_test_of_a_z_fit_is_a_z_test(seed_data):
    """``t_test`` on a ``use_t=False`` fit: normal p-values, the covariance it is given."""
    res = NegBinMixedGLM.from_formula("counts ~ RNAi", seed_data, groups="slide").fit(use_t=False)
    zt = res.t_test("RNAi[T.Target] = 0")
    assert zt.distribution == "norm"
    np.testing.assert_allclose(float(np.squeeze(zt.effect)), B[1], rtol=1e-6)
    np.testing.assert_allclose(float(np.squeeze(zt.sd)), SE[1], rtol=1e-5)
    np.testing.assert_allclose(float(zt.pvalue), 2 * stats.norm.sf(abs(B[1] / SE[1])), rtol=1e-3)
    cov = np.array(REF["cov_params"], float)
    wide = res.t_test("RNAi[T.Target] = 0", cov_p=4.0 * cov)
    se = np.sqrt(cov[1, 1])
    np.testing.assert_allclose(float(np.squeeze(wide.sd)), 2 * se, rtol=1e-5)
    np.testing.assert_allclose(float(wide.pvalue), 2 * stats.norm.sf(abs(B[1] / se) / 2),
                               rtol=1e-3)


P, T, COV = (np.array(REF[k], float) for k in ("pvalues", "tvalues", "cov_params"))


def test_t_test_of_several_rows_uses_each_rows_df(fit):
    tt = fit.t_test(np.eye(2))
    np.testing.assert_array_equal(np.asarray(tt.df_denom), DF)
    np.testing.assert_allclose(np.ravel(tt.effect), B, rtol=1e-6)
    np.testing.assert_allclose(np.ravel(tt.sd), SE, rtol=1e-5)
    np.testing.assert_allclose(np.ravel(tt.tvalue), T, rtol=1e-5)
    # R prints p from t on 196 and 2 df; p is as accurate as the rounded SE
    np.testing.assert_allclose(np.ravel(tt.pvalue), P, rtol=1e-3)


def test_t_test_with_another_covariance(fit):
    # twice the variance: t / sqrt(2), on the same df (a hand calculation)
    tt = fit.t_test("RNAi[T.Target] = 0", cov_p=2.0 * np.asarray(fit.cov_params()))
    t = T[1] / np.sqrt(2.0)
    assert float(tt.df_denom) == 2
    np.testing.assert_allclose(float(np.squeeze(tt.tvalue)), t, rtol=1e-5)
    np.testing.assert_allclose(float(tt.pvalue), 2 * stats.t.sf(t, 2), rtol=1e-4)


def test_wald_test_arguments(fit):
    cov = np.asarray(fit.cov_params())
    F = T[1] ** 2
    # invcov is the inverse covariance of the contrast (statsmodels), here 1 / var(b1)
    for kw in ({}, {"cov_p": cov}, {"invcov": np.array([[1.0 / cov[1, 1]]])}):
        wt = fit.wald_test("RNAi[T.Target] = 0", **kw)
        np.testing.assert_allclose(float(np.squeeze(wt.fvalue)), F, rtol=1e-5)
        assert (int(wt.df_num), int(wt.df_denom)) == (1, 2)
        np.testing.assert_allclose(float(wt.pvalue), P[1], rtol=1e-3)
    wt = fit.wald_test("RNAi[T.Target] = 0", cov_p=2.0 * cov)
    np.testing.assert_allclose(float(np.squeeze(wt.fvalue)), F / 2, rtol=1e-5)
    # an invcov of its own is used as given: twice the precision, twice F
    wt = fit.wald_test("RNAi[T.Target] = 0", invcov=np.array([[2.0 / cov[1, 1]]]))
    np.testing.assert_allclose(float(np.squeeze(wt.fvalue)), 2 * F, rtol=1e-5)
    assert np.ndim(fit.wald_test("RNAi[T.Target] = 0").fvalue) == 0   # scalar by default
    wt = fit.wald_test("RNAi[T.Target] = 0", df_constraints=2)
    # statsmodels divides the statistic by the numerator df it is given
    assert int(wt.df_num) == 2
    np.testing.assert_allclose(float(np.squeeze(wt.fvalue)), F / 2, rtol=1e-5)
    np.testing.assert_allclose(float(wt.pvalue), stats.f.sf(F / 2, 2, 2), rtol=1e-4)
    wt = fit.wald_test("RNAi[T.Target] = 0", scalar=False)
    assert np.shape(wt.fvalue) == (1, 1)
    with pytest.warns(UserWarning, match="ignores the grouping"):
        chi = fit.wald_test("RNAi[T.Target] = 0", use_f=False)
    np.testing.assert_allclose(float(np.squeeze(chi.statistic)), F, rtol=1e-5)
    np.testing.assert_allclose(float(chi.pvalue), stats.chi2.sf(F, 1), rtol=1e-3)


def test_working_residuals_are_the_last_working_response_minus_its_fit(fit, seed_data):
    """R's residuals(glmmPQL_fit): zz - fitted(lme); at convergence (y - mu) / mu."""
    y = seed_data["counts"].to_numpy(float)
    mu = np.asarray(fit.fittedvalues)
    # zz is built from the means before the last lme, fitted values after it:
    # they differ by the last iteration's step (up to 3e-3 on the seed)
    np.testing.assert_allclose(np.asarray(fit.resid_working), (y - mu) / mu, rtol=5e-3, atol=2e-3)
    assert np.abs(np.asarray(fit.resid_working)).max() > 0.1


def test_sensitivity_of_an_nlme_fit_is_computed_when_asked(fit):
    satt = fit.model.fit(ddf="satterthwaite")
    sens = fit.variance_sensitivity
    assert sens is not None
    np.testing.assert_allclose(sens.cov_params, satt.variance_sensitivity.cov_params, rtol=1e-12)
