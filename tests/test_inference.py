"""Tests, anova, Satterthwaite df and intervals against R (tests/data/inference/).

The references were made by tests/data/inference/make_inference_references.R:
``nlme:::anova.lme(fit, type = ...)`` and ``intervals(fit)`` on the glmmPQL
fit, and lmerTest's Satterthwaite df on glmmPQL's final working data.
"""

import functools
import json
import pathlib
import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from glmmnb import NegBinMixedGLM
from glmmnb._formula import term_columns

DATA = pathlib.Path(__file__).parent / "data"
CASES = sorted(p.stem for p in (DATA / "inference").glob("*.json"))
MIXED_TERMS = {"trt3_mixed_term"}     # a term with columns at two levels


def _reference(case):
    return json.loads((DATA / "inference" / f"{case}.json").read_text())


@functools.lru_cache(maxsize=None)
def _fit(case, ddf="nlme"):
    """One fit per case and ddf rule for the whole module (the tests only read them)."""
    exp = _reference(case)
    data = pd.read_csv(DATA / exp["data_file"])
    offset = None
    if exp["offset"]:
        assert exp["offset"] == "log(exposure)"
        offset = np.log(data["exposure"].to_numpy())
    model = NegBinMixedGLM.from_formula(exp["formula"], data, groups=exp["groups"],
                                        re_formula=exp["re_formula"],
                                        vc_formula=exp["vc_formula"], offset=offset)
    return model.fit(ddf=ddf), exp


@pytest.fixture(params=CASES)
def nlme_case(request):
    return _fit(request.param) + (request.param,)


@pytest.fixture(params=CASES)
def satt_case(request):
    return _fit(request.param, ddf="satterthwaite") + (request.param,)


def _quiet_anova(res, case, type):
    if case in MIXED_TERMS:
        with pytest.warns(UserWarning, match="mixes columns estimated at different levels"):
            return res.anova(type)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return res.anova(type)


def _assert_p(ours, theirs):
    np.testing.assert_allclose(ours, theirs, rtol=1e-3, atol=1e-8)


# -- item 1: anova and whole-term tests on nlme's df ------------------------------------

@pytest.mark.parametrize("type", ["marginal", "sequential"])
def test_anova_matches_anova_lme(nlme_case, type):
    res, exp, case = nlme_case
    ref = exp[f"anova_{type}"]
    table = _quiet_anova(res, case, type)
    assert list(table.columns) == ["numDF", "denDF", "F-value", "p-value"]
    assert len(table) == len(ref["terms"])
    np.testing.assert_array_equal(table["numDF"], ref["numDF"])
    np.testing.assert_array_equal(table["denDF"], ref["denDF"])
    np.testing.assert_allclose(table["F-value"], ref["F"], rtol=1e-4)
    _assert_p(table["p-value"], ref["p"])


def test_wald_test_terms_is_the_marginal_anova(nlme_case):
    res, exp, case = nlme_case
    ref = exp["anova_marginal"]
    if case in MIXED_TERMS:
        with pytest.warns(UserWarning):
            table = res.wald_test_terms().table
    else:
        table = res.wald_test_terms().table
    np.testing.assert_array_equal(table["df_constraint"], ref["numDF"])
    np.testing.assert_array_equal(table["df_denom"], ref["denDF"])
    np.testing.assert_allclose(table["statistic"], ref["F"], rtol=1e-4)
    _assert_p(table["pvalue"], ref["p"])


def test_f_test_of_a_term_uses_the_smallest_column_df(nlme_case):
    """f_test on a term's columns: R's F, on the smallest nlme df of those columns."""
    res, exp, case = nlme_case
    ref = exp["anova_marginal"]
    col_df = np.asarray(exp["fixDF_X"])
    terms = term_columns(res.model.data.model_spec, len(res.params))
    assert len(terms) == len(ref["terms"])
    for i, (_, cols) in enumerate(terms):
        ft = res.f_test(np.eye(len(res.params))[cols])
        assert ft.df_num == ref["numDF"][i]
        assert ft.df_denom == col_df[cols].min()
        np.testing.assert_allclose(ft.fvalue, ref["F"][i], rtol=1e-4)
        if len(np.unique(col_df[cols])) == 1 and case not in MIXED_TERMS:
            assert ft.df_denom == ref["denDF"][i]


def test_seed_f_and_wald_tests_are_on_two_df(seed_fit):
    ref = _reference("seed")["anova_marginal"]
    for test in (seed_fit.f_test("RNAi[T.Target] = 0"),
                 seed_fit.wald_test("RNAi[T.Target] = 0", scalar=True),
                 seed_fit.wald_test(np.array([[0.0, 1.0]]), scalar=False)):
        assert test.df_denom == 2
        np.testing.assert_allclose(np.squeeze(test.fvalue), ref["F"][1], rtol=1e-4)
        np.testing.assert_allclose(test.pvalue, 0.0253378, rtol=1e-3)


def test_chi_square_warns_that_it_ignores_the_grouping(seed_fit):
    with pytest.warns(UserWarning, match="ignores the grouping"):
        test = seed_fit.wald_test("RNAi[T.Target] = 0", use_f=False, scalar=True)
    assert test.distribution == "chi2"


def test_three_level_treatment_is_tested_between_slides():
    """The issue's design: trt (3 levels) between 12 slides, area within."""
    res, exp = _fit("trt3")
    row = res.anova("marginal").loc["trt"]
    assert (row["numDF"], row["denDF"]) == (2, 9)
    ft = res.f_test("trt[T.drugA] = 0, trt[T.drugB] = 0")
    assert (ft.df_num, ft.df_denom) == (2, 9)
    np.testing.assert_allclose(ft.fvalue, exp["anova_marginal"]["F"][1], rtol=1e-4)


def test_combined_and_extra_constraints_get_their_own_df():
    res, exp = _fit("trt3_interaction")
    extra = [("area only", np.eye(6)[[3]])]
    table = res.wald_test_terms(combine_terms=["trt"], extra_constraints=extra).table
    assert table.loc["trt"].iloc[-1]["df_denom"] == min(exp["fixDF_X"])   # 4 columns, min df
    assert table.loc["area only", "df_denom"] == exp["fixDF_X"][3]
    skipped = res.wald_test_terms(skip_single=True).table
    assert list(skipped.index) == ["trt", "trt:area"]


def test_anova_rejects_an_unknown_type(seed_fit):
    with pytest.raises(ValueError, match="marginal"):
        seed_fit.anova("III")


# -- item 4: Satterthwaite df ---------------------------------------------------------------

def test_satterthwaite_df_match_lmertest(satt_case):
    res, exp, _ = satt_case
    np.testing.assert_allclose(np.asarray(res.ddf), exp["satterthwaite"]["df"], rtol=1e-3)
    t = res.t_test(np.eye(len(res.params)))
    np.testing.assert_allclose(t.df_denom, exp["satterthwaite"]["df"], rtol=1e-3)


def _rotated_ddf(res, L, Q):
    """lmerTest's joint df of ``L beta = 0`` with the directions ``Q L``, ``Q`` orthogonal."""
    from glmmnb.core.satterthwaite import contrast_ddf

    nu = contrast_ddf(res.variance_sensitivity, Q @ L)
    if np.any(nu <= 2):
        return 2.0
    E = float(np.sum(nu / (nu - 2.0)))
    return 2.0 * E / (E - len(nu))


def _rotations(q, n=300, seed=0):
    rng = np.random.default_rng(seed)
    return [np.eye(q)] + [np.linalg.qr(rng.normal(size=(q, q)))[0] for _ in range(n)]


@pytest.mark.parametrize("type", ["marginal", "sequential"])
def test_satterthwaite_term_df_match_lmertest_contest(satt_case, type):
    res, exp, _ = satt_case
    key = "terms" if type == "marginal" else "terms_sequential"
    ref = exp["satterthwaite"][key]
    table = res.anova(type)
    np.testing.assert_array_equal(table["numDF"], [t["NumDF"] for t in ref])
    want = np.array([t["DenDF"] for t in ref])
    if type == "marginal":
        np.testing.assert_allclose(table["denDF"], want, rtol=1e-3)
    else:
        # nlme's sequential rows satisfy L C L' = c I, so a term of several df
        # has tied eigenvalues; lmerTest's per-direction df then depend on
        # which rotation of that space eigen() returns (set by rounding: R's
        # and this machine's differ), and R's figure is one of a range.  Ours
        # takes the rows of L themselves.
        from glmmnb.inference import _sequential_factor, _terms

        U = _sequential_factor(res)
        for (name, cols), ours, theirs in zip(_terms(res), table["denDF"], want):
            if len(cols) == 1:
                assert ours == pytest.approx(theirs, rel=1e-3), name
                continue
            span = [_rotated_ddf(res, U[cols], Q) for Q in _rotations(len(cols))]
            assert ours == pytest.approx(span[0], rel=1e-12)
            assert min(span) * (1 - 1e-3) <= theirs <= max(span) * (1 + 1e-3), name
    # the F statistic is the fit's (summary covariance); only its df change
    np.testing.assert_allclose(table["F-value"], exp[f"anova_{type}"]["F"], rtol=1e-4)


def test_satterthwaite_f_test_and_summary():
    res, exp = _fit("trt3", ddf="satterthwaite")
    ft = res.f_test("trt[T.drugA] = 0, trt[T.drugB] = 0")
    np.testing.assert_allclose(ft.df_denom, exp["satterthwaite"]["terms"][1]["DenDF"], rtol=1e-3)
    text = res.summary().as_text()
    assert "Satterthwaite" in text
    assert f"{exp['satterthwaite']['df'][1]:.2f}" in text


def test_satterthwaite_is_one_option_not_a_different_fit(seed_fit):
    satt = seed_fit.model.fit(ddf="satterthwaite")
    np.testing.assert_array_equal(satt.params, seed_fit.params)
    np.testing.assert_array_equal(satt.bse, seed_fit.bse)
    assert satt.ddf_method == "satterthwaite" and seed_fit.ddf_method == "nlme"


def test_residual_df_say_they_ignore_the_grouping(seed_fit):
    res = seed_fit.model.fit(ddf="residual")
    assert np.all(np.asarray(res.ddf) == 198)
    assert res.f_test("RNAi[T.Target] = 0").df_denom == 198
    text = " ".join(res.summary().as_text().split())
    assert "WARNING: DF are the N - p residual degrees of freedom" in text
    assert "they ignore the grouping" in text
    assert "ignore the grouping" in res.anova().attrs["note"]
    assert "ignore the grouping" in str(res.intervals(which="fixed"))


def test_unknown_ddf_is_an_error(seed_fit):
    with pytest.raises(ValueError, match="ddf must be one of"):
        seed_fit.model.fit(ddf="kenward-roger")


# -- item 5: intervals() ------------------------------------------------------------------------

def _r_block(block):
    """lower, est., upper columns (R's Inf, null in the JSON, becomes NaN)."""
    return np.column_stack([np.atleast_1d(np.array(block[k], dtype=float))
                            for k in ("lower", "est", "upper")])


def test_fixed_intervals_match_intervals_lme(nlme_case):
    res, exp, _ = nlme_case
    ours = res.intervals(which="fixed").fixed
    assert list(ours.columns) == ["lower", "est.", "upper"]
    np.testing.assert_allclose(ours.to_numpy(), _r_block(exp["intervals"]["fixed"]),
                               rtol=1e-4, atol=1e-6)


def test_seed_fixed_interval_is_rs_not_conf_int(seed_fit):
    ours = seed_fit.intervals().fixed.loc["RNAi[T.Target]"]
    np.testing.assert_allclose([ours["lower"], ours["upper"]], [0.12175, 0.67591], atol=5e-6)
    # conf_int uses the summary's adjusted standard errors, hence a wider interval
    assert np.asarray(seed_fit.conf_int())[1, 0] < ours["lower"]


def _natural(frame_values, names):
    """R's transformed scale: log for SDs, log((1 + r) / (1 - r)) for correlations."""
    v = np.asarray(frame_values, dtype=float)
    is_cor = np.array([n.startswith("cor(") for n in names], dtype=bool)
    out = np.log(np.where(is_cor[:, None], 1.0, v))
    cor = v[is_cor]
    out[is_cor] = np.log((1 + cor) / (1 - cor))
    return out


@pytest.mark.parametrize("case", CASES)
def test_variance_intervals_match_apvar(case):
    """Against R's intervals() with a converged finite-difference Hessian (.relStep = 1e-4).

    On the transformed scale the estimate must agree to 1e-3 and the half-width
    to 1e-3 relative.  A variance at zero (R: limits 0 and Inf) must get the
    same limits, and its SD agree to 2e-3 absolute (the likelihood is flat
    there, so optimisers stop at different tiny values).
    """
    res, exp = _fit(case)
    ref = exp["intervals_relstep_1e4"]
    iv = res.intervals()
    assert list(iv.random) == list(ref["reStruct"])
    for name, frame in iv.random.items():
        rr = ref["reStruct"][name]
        assert list(frame.index) == list(np.atleast_1d(rr["names"]))
        theirs = _r_block(rr)
        flat = np.isnan(theirs[:, 2])                    # R's Inf is null in the JSON
        np.testing.assert_array_equal(np.isinf(frame["upper"]), flat)
        np.testing.assert_allclose(frame["est."][flat], theirs[flat, 1], atol=2e-3)
        assert np.all(frame["lower"][flat] == 0)
        ours = _natural(frame.to_numpy()[~flat], frame.index[~flat])
        theirs = _natural(theirs[~flat], frame.index[~flat])
        np.testing.assert_allclose(ours[:, 1], theirs[:, 1], atol=1e-3)
        np.testing.assert_allclose(ours[:, 2] - ours[:, 1], theirs[:, 2] - theirs[:, 1],
                                   rtol=1e-3)
    sig = ref["sigma"]
    np.testing.assert_allclose(iv.sigma.to_numpy(), [sig["lower"], sig["est"], sig["upper"]],
                               rtol=1e-4)


@pytest.mark.parametrize("case", ["trt3", "trt3_interaction", "trt3_mixed_term"])
def test_variance_intervals_match_default_intervals(case):
    """Where R's default-step apVar is not swamped by rounding, the printed numbers too."""
    res, exp = _fit(case)
    ref = exp["intervals"]
    iv = res.intervals()
    np.testing.assert_allclose(iv.random["slide"].to_numpy(), _r_block(ref["reStruct"]["slide"]),
                               rtol=1e-3)
    sig = ref["sigma"]
    np.testing.assert_allclose(iv.sigma.to_numpy(), [sig["lower"], sig["est"], sig["upper"]],
                               rtol=1e-3)


def test_variance_near_zero_gets_limits_zero_and_infinity():
    """v11: nlme's default step refuses; a converged one gives the experiments' SD
    [0, Inf] and the slides' a finite interval, as glmmnb does."""
    res, exp = _fit("v11_nested")
    assert "Non-positive definite" in exp["intervals"]["error"]
    random = res.intervals().random
    assert random["experiment"].iloc[0]["lower"] == 0
    assert np.isinf(random["experiment"].iloc[0]["upper"])
    assert np.all(np.isfinite(random["slide"].to_numpy()))
    np.testing.assert_allclose(res.intervals(which="fixed").fixed.to_numpy(),
                               _r_block(exp["intervals"]["fixed"]), rtol=1e-4)


def test_intervals_options_and_printing(seed_fit):
    iv = seed_fit.intervals(alpha=0.1, which="var-cov")
    assert iv.fixed is None and iv.level == pytest.approx(0.9)
    assert "Within-group standard error" in str(iv)
    with pytest.raises(ValueError, match="which"):
        seed_fit.intervals(which="random")


# -- the audit: no public test or interval ignores the grouping -------------------------

def test_every_public_test_on_the_seed_uses_two_df(seed_fit):
    """The seed's treatment varies only between its 4 slides: every route gives 2 df."""
    res = seed_fit
    q = stats.t.ppf(0.975, 2)
    assert np.asarray(res.ddf)[1] == 2
    assert res.t_test("RNAi[T.Target] = 0").df_denom == 2
    assert res.f_test("RNAi[T.Target] = 0").df_denom == 2
    assert res.wald_test("RNAi[T.Target] = 0", scalar=True).df_denom == 2
    assert res.wald_test_terms().table.loc["RNAi", "df_denom"] == 2
    assert res.anova("marginal").loc["RNAi", "denDF"] == 2
    assert res.anova().loc["RNAi", "denDF"] == 2
    ci = np.asarray(res.conf_int())[1]
    np.testing.assert_allclose(ci[1] - ci[0], 2 * q * np.asarray(res.bse)[1])
    fixed = res.intervals(which="fixed").fixed.loc["RNAi[T.Target]"]
    se_r = np.sqrt(np.asarray(res.cov_params())[1, 1] * 198 / 200)
    np.testing.assert_allclose(fixed["upper"] - fixed["lower"], 2 * q * se_r)
    pw = res.t_test_pairwise("RNAi").result_frame
    np.testing.assert_allclose(pw["P>|t|"].iloc[0], 0.0253378, rtol=1e-3)
    rr = res.rate_ratios()
    np.testing.assert_allclose(np.log(rr.iloc[1, 1:].to_numpy(float)), ci)
    assert "0.0253" in res.summary().as_text()


def test_tests_survive_pickling(seed_fit):
    res = pickle.loads(pickle.dumps(seed_fit))
    assert res.f_test("RNAi[T.Target] = 0").df_denom == 2
    np.testing.assert_allclose(res.intervals().sigma.to_numpy(),
                               seed_fit.intervals().sigma.to_numpy())


def test_anova_and_intervals_survive_remove_data(seed_data):
    res = NegBinMixedGLM.from_formula("counts ~ RNAi", seed_data, groups="slide").fit()
    before = res.anova("marginal"), res.intervals().sigma
    res.remove_data()
    pd.testing.assert_frame_equal(res.anova("marginal"), before[0])
    pd.testing.assert_series_equal(res.intervals().sigma, before[1])


def test_satterthwaite_warns_off_a_minimum():
    from statsmodels.tools.sm_exceptions import ConvergenceWarning

    from glmmnb._validation import check_variance_hessian

    with pytest.warns(ConvergenceWarning, match="negative eigenvalue"):
        check_variance_hessian(np.array([-0.5, 3.0]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_variance_hessian(np.array([0.5, 3.0]))
