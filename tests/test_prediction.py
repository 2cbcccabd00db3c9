"""get_prediction, predict and marginal_means against R.

References: tests/data/r/make_prediction_references.R.
"""

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from statsmodels.tools.sm_exceptions import MissingDataError

from conftest import DATA, REFERENCE
from glmmnb import NegBinMixedGLM

PREDICTION = DATA / "r" / "prediction"
CASES = ["seed", "trt_area", "trt_area_slope"]
FACTOR = {"seed": "RNAi", "trt_area": "trt", "trt_area_slope": "trt"}
# R stops where its tolerances stop (shared/reference/README): estimates to
# 1e-4 relative, standard errors and interval limits to 1e-3, p-values to 1e-2
EST, SE, P = 1e-4, 1e-3, 1e-2


@pytest.fixture(scope="module", params=CASES)
def case(request):
    folder = PREDICTION / request.param
    expected = json.loads((folder / "expected.json").read_text())
    data = pd.read_csv(folder / "data.csv")
    res = NegBinMixedGLM.from_formula(expected["formula"], data, groups=expected["groups"],
                                      re_formula=expected["re_formula"]).fit()
    return request.param, res, expected, data


def test_population_intervals_match_r(case):
    _, res, expected, _ = case
    frame = res.get_prediction(pd.DataFrame(expected["grid"])).summary_frame()
    r = expected["population"]
    np.testing.assert_allclose(frame["mean"], r["mean"], rtol=EST)
    np.testing.assert_allclose(frame["mean_se"], r["mean_se"], rtol=SE)
    np.testing.assert_allclose(frame[["mean_ci_lower", "mean_ci_upper"]],
                               np.column_stack([r["mean_ci_lower"], r["mean_ci_upper"]]),
                               rtol=SE)
    np.testing.assert_array_equal(frame["df"], r["df"])


def test_linear_scale_uses_inflated_vcov(case):
    """R users with vcov(fit) get SEs smaller by sqrt((N - p) / N); ours are summary.lme's."""
    _, res, expected, _ = case
    pred = res.get_prediction(pd.DataFrame(expected["grid"]), which="linear")
    np.testing.assert_allclose(pred.se, expected["population"]["se_link"], rtol=SE)
    n, p = expected["N"], len(expected["tTable_df"])
    np.testing.assert_allclose(pred.se * np.sqrt((n - p) / n),
                               expected["population"]["se_link_vcov"], rtol=SE)
    np.testing.assert_allclose(np.exp(pred.conf_int()), res.get_prediction(
        pd.DataFrame(expected["grid"])).conf_int(), rtol=1e-12)


def test_conditional_predictions_match_r(case):
    _, res, expected, _ = case
    cond = expected["conditional"]
    pred = res.get_prediction(pd.DataFrame(cond["grid"]), which="linear", conditional=True)
    np.testing.assert_allclose(pred.predicted, cond["linpred"], rtol=EST, atol=1e-5)
    np.testing.assert_allclose(pred.se, cond["se_link"], rtol=SE)


def test_marginal_means_and_ratios_match_r(case):
    name, res, expected, _ = case
    mm = res.marginal_means(FACTOR[name])
    r = expected["marginal_means"]
    np.testing.assert_allclose(mm.means["mean"], r["mean"], rtol=EST)
    np.testing.assert_allclose(mm.means[["mean_ci_lower", "mean_ci_upper"]],
                               np.column_stack([r["mean_ci_lower"], r["mean_ci_upper"]]),
                               rtol=SE)
    ratios = {k: np.atleast_1d(v) for k, v in expected["ratios"].items()}
    assert list(mm.ratios.index) == list(ratios["contrast"])
    np.testing.assert_allclose(mm.ratios["ratio"], ratios["ratio"], rtol=EST)
    np.testing.assert_allclose(mm.ratios[["ci_lower", "ci_upper"]],
                               np.column_stack([ratios["ci_lower"], ratios["ci_upper"]]),
                               rtol=SE)
    np.testing.assert_array_equal(mm.ratios["df"], ratios["df"])
    np.testing.assert_allclose(mm.ratios["p"], ratios["p"], rtol=P)


def test_marginal_means_match_emmeans(case):
    """R's emmeans() and pairs(reverse = TRUE) themselves, where the script found emmeans."""
    name, res, expected, _ = case
    emm = expected.get("emmeans")
    if not isinstance(emm, dict):
        pytest.skip("emmeans was not installed when the references were made")
    mm = res.marginal_means(FACTOR[name])
    for col in ("mean", "mean_se", "mean_ci_lower", "mean_ci_upper"):
        np.testing.assert_allclose(mm.means[col], emm["means"][col], rtol=SE)
    np.testing.assert_array_equal(mm.means["df"], emm["means"]["df"])
    ratios = {k: np.atleast_1d(v) for k, v in emm["ratios"].items()}
    assert list(mm.ratios.index) == list(ratios["contrast"])
    for col in ("ratio", "ci_lower", "ci_upper", "t"):
        np.testing.assert_allclose(mm.ratios[col], ratios[col], rtol=SE)
    np.testing.assert_allclose(mm.ratios["p"], ratios["p"], rtol=P)


def test_intercept_only_rows_use_the_groups_df(seed_fit):
    """emmeans' containment rule: the Control mean is judged on 4 slides (3 df), not 196."""
    frame = seed_fit.get_prediction(pd.DataFrame({"RNAi": ["Control"]})).summary_frame()
    assert frame["df"].iloc[0] == 3
    assert seed_fit.ddf.iloc[0] == 196  # the summary table keeps nlme's df, as R prints


def test_seed_target_interval_is_the_t_test_interval():
    expected = json.loads((PREDICTION / "seed" / "expected.json").read_text())
    data = pd.read_csv(PREDICTION / "seed" / "data.csv")
    res = NegBinMixedGLM.from_formula("counts ~ RNAi", data, groups="slide").fit()
    frame = res.get_prediction(pd.DataFrame({"RNAi": ["Target"]})).summary_frame()
    lims = frame[["mean_ci_lower", "mean_ci_upper"]].to_numpy()[0]
    r = expected["t_test_target_mean"]
    np.testing.assert_allclose(lims, [r["lower"], r["upper"]], rtol=SE)
    np.testing.assert_allclose(lims, [6.27, 9.00], atol=5e-3)
    tt = res.t_test("Intercept + RNAi[T.Target] = 0")
    np.testing.assert_allclose(lims, np.exp(tt.conf_int()[0]), rtol=1e-10)


def test_predict_rule_is_the_same_for_fitted_and_new_rows(seed_fit, seed_data):
    fitted = seed_fit.predict()
    assert isinstance(fitted, pd.Series) and fitted.index.equals(seed_data.index)
    np.testing.assert_allclose(fitted, seed_fit.predict(seed_data))
    np.testing.assert_allclose(seed_fit.predict(seed_data, conditional=True),
                               seed_fit.fittedvalues, rtol=1e-12)
    np.testing.assert_allclose(seed_fit.predict(seed_data, which="linear"), np.log(fitted))
    arr = seed_fit.predict(np.array([[1.0, 0.0], [1.0, 1.0]]))
    assert isinstance(arr, np.ndarray)


def test_exposure_column_is_carried_into_new_data():
    data = pd.read_csv(REFERENCE / "v05_offset" / "data.csv")
    res = NegBinMixedGLM.from_formula("counts ~ treatment", data, groups="slide",
                                      exposure="exposure").fit()
    new = pd.DataFrame({"treatment": ["control", "control"], "exposure": [1.0, 3.0]})
    pred = res.predict(new)
    assert pred.iloc[1] == pytest.approx(3 * pred.iloc[0], rel=1e-12)
    assert res.predict(new[["treatment"]], exposure=[3.0, 3.0]).iloc[0] == pytest.approx(
        pred.iloc[1], rel=1e-12)
    with pytest.raises(ValueError, match="'exposure'"):
        res.predict(new[["treatment"]])


def test_offset_array_needs_an_offset_for_new_rows():
    data = pd.read_csv(REFERENCE / "v05_offset" / "data.csv")
    res = NegBinMixedGLM.from_formula("counts ~ treatment", data, groups="slide",
                                      offset=np.log(data["exposure"])).fit()
    with pytest.raises(ValueError, match="offset= or exposure="):
        res.predict(pd.DataFrame({"treatment": ["control"]}))
    assert res.predict(pd.DataFrame({"treatment": ["control"]}), offset=0.0).iloc[0] == \
        pytest.approx(np.exp(res.params.iloc[0]))


@pytest.mark.parametrize("new, match", [
    (pd.DataFrame({"x": [1.0]}), r"lack the column\(s\) \['RNAi'\]"),
    (pd.DataFrame({"RNAi": ["Control", "Tagret"]}), r"'RNAi'.*\['Tagret'\].*not seen"),
])
def test_new_data_errors_name_the_column(seed_fit, new, match):
    with pytest.raises(ValueError, match=match):
        seed_fit.get_prediction(new)


def test_new_data_with_nan_names_the_rows(seed_fit):
    new = pd.DataFrame({"RNAi": ["Control", np.nan, "Target"]}, index=[10, 11, 12])
    with pytest.raises(MissingDataError, match=r"\['RNAi'\] in 1 row\(s\) \(11\)"):
        seed_fit.predict(new)


def test_nan_rows_predict_nan_when_the_model_drops_missing(seed_data):
    res = NegBinMixedGLM.from_formula("counts ~ RNAi", seed_data, groups="slide",
                                      missing="drop").fit()
    with pytest.warns(UserWarning, match=r"predictions are NaN"):
        pred = res.predict(pd.DataFrame({"RNAi": ["Control", None]}))
    assert np.isfinite(pred.iloc[0]) and np.isnan(pred.iloc[1])


def test_conditional_needs_a_seen_group(seed_fit):
    new = pd.DataFrame({"RNAi": ["Control"], "slide": ["Control_day9"]})
    with pytest.raises(ValueError, match=r"\['Control_day9'\] were not in the fit"):
        seed_fit.get_prediction(new, conditional=True)
    with pytest.raises(ValueError, match="lack the column"):
        seed_fit.predict(new[["RNAi"]], conditional=True)


def test_bad_options_are_errors(seed_fit):
    with pytest.raises(ValueError, match="which"):
        seed_fit.predict(which="response")
    with pytest.raises(ValueError, match="alpha"):
        seed_fit.get_prediction(alpha=1.5)
    with pytest.raises(ValueError, match="not a factor"):
        seed_fit.marginal_means("slide")


def test_prediction_does_not_touch_the_callers_frame(seed_fit):
    new = pd.DataFrame({"RNAi": pd.Categorical(["Target", "Control"]), "z": [1, 2]})
    before = new.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        seed_fit.get_prediction(new, alpha=0.1).summary_frame()
    pd.testing.assert_frame_equal(new, before)


def _load(name):
    folder = PREDICTION / name
    return json.loads((folder / "expected.json").read_text()), pd.read_csv(folder / "data.csv")


def test_conditional_on_the_outer_level_of_a_nested_model_matches_r():
    """R's predict(fit, level = 1): the experiment's effect, the slides integrated out."""
    expected, data = _load("nested")
    res = NegBinMixedGLM.from_formula(expected["formula"], data, groups="experiment",
                                      vc_formula=expected["vc_formula"]).fit()
    assert res.cov_re.iloc[0, 0] == pytest.approx(expected["cov_re"]["experiment"], rel=2e-2)
    cond = expected["conditional"]
    pred = res.get_prediction(pd.DataFrame(cond["grid"]), which="linear", conditional=True)
    np.testing.assert_allclose(pred.predicted, cond["linpred"], rtol=EST, atol=1e-5)
    np.testing.assert_allclose(pred.se, cond["se_link"], rtol=SE)
    ours = np.array([v.iloc[0, 0] for v in res.random_effects_cov.values()])
    np.testing.assert_allclose(ours, expected["random_effects_cov"], rtol=2e-2)


def test_exposure_column_predictions_match_r():
    expected, data = _load("offset")
    res = NegBinMixedGLM.from_formula(expected["formula"], data, groups="slide",
                                      exposure=expected["exposure"]).fit()
    frame = res.get_prediction(pd.DataFrame(expected["grid"])).summary_frame()
    r = expected["population"]
    np.testing.assert_allclose(frame["mean"], expected["r_predict"], rtol=EST)
    np.testing.assert_allclose(frame[["mean_ci_lower", "mean_ci_upper"]],
                               np.column_stack([r["mean_ci_lower"], r["mean_ci_upper"]]),
                               rtol=SE)


@pytest.mark.parametrize("exog, error, match", [
    (pd.Series({"RNAi": "Target"}), TypeError, "DataFrame"),
    (np.array(["a", "b"]), TypeError, "numeric design rows"),
    (np.ones((2, 3)), ValueError, "3 columns but the model has 2"),
])
def test_exog_of_the_wrong_kind_is_named(seed_fit, exog, error, match):
    with pytest.raises(error, match=match):
        seed_fit.predict(exog)


def test_dict_and_design_rows(seed_fit):
    assert seed_fit.predict({"RNAi": ["Target"]}).iloc[0] == pytest.approx(
        float(seed_fit.predict(np.array([1.0, 1.0]))[0]))


# the v09 slide variance is at 0: a singular fit, beside the point here
@pytest.mark.filterwarnings("ignore::glmmnb.core.singular.SingularFitWarning")
@pytest.mark.parametrize("factor", ["treatment", "phase"])
def test_marginal_means_average_over_an_interacting_factor(factor):
    """emmeans' equal weights over the other factor's levels, with its containment df."""
    expected, data = _load("interaction")
    res = NegBinMixedGLM.from_formula(expected["formula"], data, groups="slide").fit()
    mm = res.marginal_means(factor)
    ref = expected[factor]
    blocks = [ref["means"], ref["emmeans"]["means"]] if isinstance(ref["emmeans"], dict) \
        else [ref["means"]]
    for r in blocks:
        np.testing.assert_allclose(mm.means["mean"], r["mean"], rtol=EST)
        np.testing.assert_allclose(mm.means[["mean_ci_lower", "mean_ci_upper"]],
                                   np.column_stack([r["mean_ci_lower"], r["mean_ci_upper"]]),
                                   rtol=SE)
        np.testing.assert_array_equal(mm.means["df"], r["df"])
    ratios = {k: np.atleast_1d(v) for k, v in ref["ratios"].items()}
    assert list(mm.ratios.index) == list(ratios["contrast"])
    np.testing.assert_allclose(mm.ratios["ratio"], ratios["ratio"], rtol=EST)
    np.testing.assert_array_equal(mm.ratios["df"], ratios["df"])
    np.testing.assert_allclose(mm.ratios["p"], ratios["p"], rtol=P)


@pytest.mark.filterwarnings("ignore::glmmnb.core.singular.SingularFitWarning")
def test_non_finite_design_rows_are_named(seed_data):
    data = seed_data.assign(area=np.linspace(1.0, 2.0, len(seed_data)))
    res = NegBinMixedGLM.from_formula("counts ~ RNAi + np.log(area)", data,
                                      groups="slide").fit()
    new = pd.DataFrame({"RNAi": ["Control", "Target"], "area": [1.0, 0.0]}, index=[5, 6])
    with pytest.raises(ValueError, match=r"'np.log\(area\)'.*\(6\)"):
        res.predict(new)
    with pytest.raises(ValueError, match="non-finite"):
        res.predict(np.array([[1.0, np.inf, 0.0]]))
    assert res.predict({"RNAi": "Target", "area": 1.0}).shape == (1,)


def test_satterthwaite_fit_gives_each_row_its_contrast_df(seed_data):
    """With fit(ddf="satterthwaite") a prediction is the t_test of its row (lmerTest's df)."""
    res = NegBinMixedGLM.from_formula("counts ~ RNAi", seed_data, groups="slide").fit(
        ddf="satterthwaite")
    pred = res.get_prediction(pd.DataFrame({"RNAi": ["Target"]}))
    tt = res.t_test("Intercept + RNAi[T.Target] = 0")
    assert pred.df[0] == pytest.approx(float(tt.df_denom), rel=1e-10)
    np.testing.assert_allclose(pred.conf_int(), np.exp(tt.conf_int()), rtol=1e-10)
