"""Odd inputs (issue 9, input half): each is fitted as R fits it, or stops with our
own exception whose message names the input; the caller's data are never modified."""

import json
import threading
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from statsmodels.tools.sm_exceptions import MissingDataError

from conftest import DATA, REFERENCE, load_case
from glmmnb import NegBinMixedGLM

FORMULA = "counts ~ RNAi"
SEED = json.loads((REFERENCE / "v01_seed" / "expected.json").read_text())["pql"]
LEVELS = json.loads((DATA / "input_levels.json").read_text())


def fit(data, formula=FORMULA, fit_kwargs=None, **kwargs):
    kwargs.setdefault("groups", "slide")
    return NegBinMixedGLM.from_formula(formula, data, **kwargs).fit(**(fit_kwargs or {}))


def assert_r_seed(res):
    np.testing.assert_allclose(res.params, SEED["params"], rtol=1e-5)
    np.testing.assert_allclose(res.bse, SEED["bse"], rtol=1e-4)


@pytest.fixture(scope="module")
def data(seed_data):
    n = len(seed_data)
    return seed_data.assign(area=np.linspace(1.0, 3.0, n), e=np.linspace(0.5, 2.0, n))


@pytest.fixture(scope="module")
def perm(data):
    return np.random.default_rng(3).permutation(len(data))


# --- item 2: Series are aligned on the data's index, never used by position ---

def test_permuted_groups_series_is_aligned(data, perm):
    assert_r_seed(fit(data, groups=data["slide"].iloc[perm]))


def test_full_data_series_with_a_subset_frame_is_aligned(data):
    day2 = data[data["experiment"] == "day2"]
    poisoned = data["e"].where(data["experiment"] == "day2", -1.0)  # rows that are not fitted
    res = fit(day2, "counts ~ 1", groups=data["slide"], exposure=poisoned)
    direct = fit(day2, "counts ~ 1", groups="slide", exposure="e")
    np.testing.assert_array_equal(res.params, direct.params)


def test_reversed_offset_and_permuted_exposure_are_aligned():
    data, expected = load_case(REFERENCE / "v05_offset")
    log_e = np.log(data["exposure"])
    perm = np.random.default_rng(0).permutation(len(data))
    for kwargs in ({"offset": log_e.iloc[::-1]}, {"exposure": data["exposure"].iloc[perm]}):
        res = fit(data, "counts ~ treatment", **kwargs)
        np.testing.assert_allclose(res.params, expected["pql"]["params"], rtol=1e-5)


@pytest.mark.parametrize("what", ["groups", "offset", "exposure"])
def test_series_with_other_index_is_rejected(data, what):
    values = data["slide"] if what == "groups" else data["e"]
    shifted = values.set_axis(data.index + 1000)
    with pytest.raises(ValueError, match=f"{what} is a pandas Series whose index does not "
                                         r"match.*200 row\(s\) \(0, 1"):
        NegBinMixedGLM.from_formula(FORMULA, data, **{"groups": "slide", what: shifted})


# --- item 3: 2-D inputs are errors, never cut to their first column ----------

@pytest.mark.parametrize("what, make", [
    ("groups", lambda d: np.column_stack([d["slide"], d["slide"]])),
    ("offset", lambda d: np.zeros((len(d), 2))),
    ("exposure", lambda d: np.ones((len(d), 2))),
])
def test_two_column_arrays_are_rejected(data, what, make):
    kwargs = {"groups": "slide", what: make(data)}
    with pytest.raises(ValueError, match=rf"{what} must be one value per row.*\(200, 2\)"):
        NegBinMixedGLM.from_formula(FORMULA, data, **kwargs)


def test_three_dimensional_exog_re_is_rejected(data):
    y, g = data["counts"].to_numpy(float), data["slide"].to_numpy()
    with pytest.raises(ValueError, match=r"exog_re must be .* \(200, 1, 2\)"):
        NegBinMixedGLM(y, np.ones((200, 1)), g, exog_re=np.ones((200, 1, 2)))


# --- items 7 and 8: booleans, alpha, keywords that would be ignored ----------

@pytest.fixture(scope="module")
def seed_res(data):
    return fit(data)


@pytest.mark.parametrize("alpha", [1.5, 0.0, 1.0, -0.1])
def test_alpha_outside_zero_one(seed_res, alpha):
    with pytest.raises(ValueError, match="alpha must be between 0 and 1"):
        seed_res.conf_int(alpha=alpha)
    with pytest.raises(ValueError, match="alpha must be between 0 and 1"):
        seed_res.summary(alpha=alpha)


def test_ranef_unknown_level(seed_res):
    with pytest.raises(ValueError, match=r"level must be None .* got 7"):
        seed_res.ranef(level=7)


@pytest.mark.parametrize("kwargs, error, message", [
    ({"theta": True}, TypeError, "theta must be None or a positive number.*bool True"),
    ({"theta": "2"}, TypeError, "theta must be None or a positive number.*str '2'"),
    ({"weights": np.ones(200)}, NotImplementedError, "weights= is not supported"),
    ({"family": "poisson"}, NotImplementedError, "family= is not supported.*theta=numpy.inf"),
    ({"link": "log"}, NotImplementedError, "link= is not supported"),
    ({"colour": 1}, TypeError, "unexpected keyword.*'colour'"),
])
def test_model_arguments(data, kwargs, error, message):
    with pytest.raises(error, match=message):
        NegBinMixedGLM.from_formula(FORMULA, data, groups="slide", **kwargs)


@pytest.mark.parametrize("kwargs, error, message", [
    ({"cov_type": "HC0"}, NotImplementedError, r"fit\(cov_type=...\) is not supported"),
    ({"maxiter": "10"}, TypeError, "maxiter must be a number, got str"),
    ({"maxiter": None}, TypeError, "maxiter must be a number, got NoneType"),
    ({"tol": "1e-6"}, TypeError, "tol must be a number, got str"),
    ({"maxiter": 0}, ValueError, "maxiter must be an integer >= 1"),
])
def test_fit_arguments(data, kwargs, error, message):
    model = NegBinMixedGLM.from_formula(FORMULA, data, groups="slide")
    with pytest.raises(error, match=message):
        model.fit(**kwargs)


def test_weights_in_the_array_interface(data):
    y, g = data["counts"].to_numpy(float), data["slide"].to_numpy()
    with pytest.raises(NotImplementedError, match="weights= is not supported"):
        NegBinMixedGLM(y, np.ones((200, 1)), g, weights=np.ones(200))


# --- item 9: unused levels are dropped as R does -----------------------------

def test_unused_category_is_dropped(data):
    extra = data.assign(RNAi=data["RNAi"].cat.add_categories(["Spare"]))
    assert_r_seed(fit(extra))


def test_subset_removing_a_level_matches_r(data):
    batch = pd.Categorical(np.array(["a", "b", "c"])[np.arange(len(data)) % 3])
    with_batch = data.assign(batch=batch)
    res = fit(with_batch, "counts ~ RNAi + batch", theta=2.0, subset=with_batch["batch"] != "c")
    np.testing.assert_allclose(res.params, LEVELS["subset"]["params"], rtol=1e-5)
    np.testing.assert_allclose(res.bse, LEVELS["subset"]["bse"], rtol=1e-4)
    assert res.ddf.tolist() == LEVELS["subset"]["df"]


def test_factor_left_with_one_level_errors_as_in_r(data):
    assert "2 or more levels" in LEVELS["single_level_error"]
    with pytest.raises(ValueError, match=r"'experiment' has a single level \(\['day1'\]\).*"
                                         "2 or more levels"):
        fit(data, "counts ~ RNAi + experiment", subset=data["experiment"] == "day1")


def test_collinearity_message_says_why(data):
    with pytest.raises(ValueError, match="aliased column.*linear combination of 'twin'|"
                                         "aliased column.*linear combination of 'area'"):
        fit(data.assign(twin=2 * data["area"]), "counts ~ area + twin")
    with pytest.raises(ValueError, match=r"aliased column.*zero in every row.*levels="):
        fit(data, "counts ~ C(RNAi, levels=['Control', 'Target', 'Spare'])")


# --- missing="drop", re/vc formulas, subset ----------------------------------

@pytest.mark.parametrize("name, term", [("cell area", 'Q("cell area")'), ("größe", "größe")])
def test_missing_drop_reads_the_formula_engines_variables(data, name, term):
    bad = data.rename(columns={"area": name})
    bad[name] = bad[name].where(bad.index != 3)
    res = fit(bad, f"counts ~ RNAi + {term}", missing="drop")
    assert res.nobs == 199 and res.model.n_dropped == 1
    with pytest.raises(MissingDataError, match=rf"column '{name}' has missing values in "
                                               r"1 row\(s\) \(3\)"):
        fit(bad, f"counts ~ RNAi + {term}")


def test_re_formula_sees_the_callers_namespace(data):
    res = fit(data, "counts ~ RNAi", re_formula="~np.log(area)")
    assert res.model.exog_re_names == ["slide", "np.log(area)"]
    factor_k = 3.0  # noqa: F841 - read by the formula below
    model = NegBinMixedGLM.from_formula("counts ~ RNAi", data, groups="slide",
                                        re_formula="~I(area * factor_k)")
    assert model.exog_re_names[1] == "I(area * factor_k)"


def test_subset_with_duplicated_index(data):
    doubled = pd.concat([data, data])
    res = fit(doubled, subset=np.arange(len(doubled)) < len(data))
    assert_r_seed(res)
    res = fit(doubled, subset=pd.Series(np.arange(len(doubled)) < len(data), index=doubled.index))
    assert_r_seed(res)


# --- wrong argument types and misleading messages ----------------------------

def _call(data, formula=FORMULA, **kwargs):
    kwargs.setdefault("groups", "slide")
    return NegBinMixedGLM.from_formula(formula, data, **kwargs)


ODD = {
    "counts as strings": (lambda d: _call(d.assign(counts=d["counts"].astype(str))),
                          ValueError, "response column 'counts' is non-numeric"),
    "counts as object": (lambda d: _call(d.assign(counts=d["counts"].astype(object))),
                         ValueError, "response column 'counts' is non-numeric.*object"),
    "counts as bools": (lambda d: _call(d.assign(counts=d["counts"] > 4)),
                        ValueError, "response column 'counts' is boolean"),
    "infinite covariate": (lambda d: _call(d.assign(area=d["area"].where(d.index != 5, np.inf)),
                                           "counts ~ area"),
                           ValueError, r"exog column 'area' has non-finite .* \(5\)"),
    "groups=3": (lambda d: _call(d, groups=3), TypeError, "groups must be a column name.*3"),
    "offset=1.0": (lambda d: _call(d, offset=1.0), TypeError, "offset must be a column.*1.0"),
    "offset a string column": (lambda d: _call(d, offset="slide"), TypeError,
                               "offset must be numeric.*column 'slide'"),
    "data as dict": (lambda d: _call(d.to_dict("list")), TypeError, "data must be a pandas"),
    "data as ndarray": (lambda d: _call(d.to_numpy()), TypeError, "data must be a pandas"),
    "data as Series": (lambda d: _call(d["counts"]), TypeError, "data must be a pandas"),
    "formula=42": (lambda d: _call(d, 42), TypeError, "formula must be a string.*42"),
    "formula without ~": (lambda d: _call(d, "counts RNAi"), ValueError,
                          "formula 'counts RNAi' needs the response on the left of '~'"),
    "vc_formula as a string": (lambda d: _call(d, groups="experiment",
                                               vc_formula="0 + C(slide)"),
                               TypeError, "vc_formula must be a dict"),
    "re_formula='0'": (lambda d: _call(d, re_formula="0"), ValueError,
                       "re_formula='0' has no columns"),
    "re_formula not a string": (lambda d: _call(d, re_formula=["area"]), TypeError,
                                "re_formula must be a string"),
    "groups=['slide']": (lambda d: _call(d, groups=["slide"]), TypeError,
                         r"groups=\['slide'\] is a list.*groups='slide'"),
    "lme4 bars": (lambda d: _call(d, "counts ~ RNAi + (1|slide)"), ValueError,
                  r"lme4's \(x \| g\) syntax.*from_formula\('counts ~ RNAi', data, "
                  r"groups='slide'\)"),
    "lme4 slope": (lambda d: _call(d, "counts ~ area + (area | slide)"), ValueError,
                   r"groups='slide', re_formula='~area'\)"),
    "lme4 nested": (lambda d: _call(d, "counts ~ RNAi + (1 | experiment/slide)"), ValueError,
                    r"groups='experiment', vc_formula=\{'slide': '0 \+ C\(slide\)'\}"),
    "bar without parentheses": (lambda d: _call(d, "counts ~ RNAi | slide"), ValueError,
                                r"uses '\|', which has no meaning.*groups='slide'"),
    "labels as a list": (lambda d: _call(d, groups=list(d["slide"]), subset=[999]), KeyError,
                         r"subset has labels that are not in the data's index: \[999\]"),
    "re_formula with a bar": (lambda d: _call(d, re_formula="~area|slide"), ValueError,
                              r"re_formula='~area\|slide'.*re_formula='~area', groups='slide'"),
    "groups column missing": (lambda d: _call(d, groups="plate"), KeyError,
                              "groups column 'plate' is not in the data"),
    "unknown fixed variable": (lambda d: _call(d, "counts ~ nothere"), ValueError,
                               r"cannot evaluate the formula 'counts ~ nothere'.*nothere"),
    "unparsable formula": (lambda d: _call(d, "counts ~ RNAi +"), ValueError,
                           r"cannot parse the formula 'counts ~ RNAi \+'"),
    "unparsable re_formula": (lambda d: _call(d, re_formula="~nothere"), ValueError,
                              "cannot evaluate re_formula='~nothere'"),
}


@pytest.mark.parametrize("case", ODD)
def test_odd_inputs_name_the_input(data, case):
    call, error, message = ODD[case]
    with pytest.raises(error, match=message):
        call(data)


ARRAY = {
    "string counts": (lambda y, X, g: (y.astype(str), X, g), ValueError,
                      "y is non-numeric|endog is non-numeric"),
    "bool counts": (lambda y, X, g: (y > 4, X, g), ValueError, "is boolean"),
    "exog=None": (lambda y, X, g: (y, None, g), ValueError, "exog is required"),
    "two-column endog": (lambda y, X, g: (np.column_stack([y, y]), X, g), ValueError,
                         r"endog must be one column of counts.*\(200, 2\)"),
    "string exog": (lambda y, X, g: (y, np.where(X > 0, "a", "b"), g), TypeError,
                    "exog must be numeric"),
    "3-D exog": (lambda y, X, g: (y, X[:, :, None], g), ValueError,
                 r"exog must be an \(nobs, p\) matrix"),
    "infinite exog": (lambda y, X, g: (y, np.where(np.arange(200)[:, None] == 3, np.inf, X), g),
                      ValueError, r"exog column 0 has non-finite .* \(3\)"),
    "vc_groups a string": (lambda y, X, g: (y, X, g, None, "field"), TypeError,
                           "vc_groups must be a dict"),
}


@pytest.mark.parametrize("case", ARRAY)
def test_array_interface_odd_inputs(data, case):
    make, error, message = ARRAY[case]
    y, g = data["counts"].to_numpy(float), data["slide"].to_numpy()
    X = np.column_stack([np.ones(200), data["RNAi"] == "Target"]).astype(float)
    with pytest.raises(error, match=message):
        NegBinMixedGLM(*make(y, X, g))


def test_groups_integer_column_name(data):
    numbered = data.rename(columns={"slide": 0})
    assert_r_seed(fit(numbered, groups=0))


def test_one_column_frame_is_one_grouping_factor(data):
    assert_r_seed(fit(data, groups=data[["slide"]]))
    with pytest.raises(NotImplementedError, match="crossed random effects"):
        fit(data, groups=data[["slide", "experiment"]])


# --- the caller's data and bit-identical runs --------------------------------

def test_callers_frame_is_never_modified(data, perm):
    odd = data.assign(RNAi=data["RNAi"].cat.add_categories(["Spare"]),
                      area=data["area"].where(data.index != 3))
    odd = odd.rename(columns={"area": "cell area"})
    before = odd.copy(deep=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit(odd, 'counts ~ RNAi + Q("cell area")', missing="drop",
            groups=odd["slide"].iloc[perm], subset=odd.index[:190],
            re_formula="~np.log(e)")
    pd.testing.assert_frame_equal(odd, before)
    assert list(odd["RNAi"].cat.categories) == ["Control", "Target", "Spare"]


def test_runs_are_bit_identical(data, perm):
    extra = data.assign(RNAi=data["RNAi"].cat.add_categories(["Spare"]))
    one = fit(extra, groups=extra["slide"].iloc[perm])
    two = fit(extra, groups=extra["slide"].iloc[perm])
    np.testing.assert_array_equal(one.params, two.params)
    np.testing.assert_array_equal(one.bse, two.bse)


# --- subsample ----------------------------------------------------------------

def test_subsample_floating_point_error_is_a_nan_row(seed_fit):
    # at 5 rows some subsets reproduce the counts exactly: the refit raises
    # FloatingPointError, which used to abort the whole study
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = seed_fit.subsample(size=5, n_rep=40, random_state=1, n_jobs=1)
    reasons = list(out.failures.values())
    assert any(r.startswith("FloatingPointError") for r in reasons)
    assert out.pvalues.loc[list(out.failures)].isna().all().all()
    assert any("refits failed" in str(w.message) for w in caught)


def test_subsample_keeps_each_refits_warnings(seed_fit):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = seed_fit.subsample(size=6, n_rep=40, random_state=1, n_jobs=1)
    nan_rows = set(np.flatnonzero(out.pvalues.isna().any(axis=1)))
    assert nan_rows <= set(out.failures) | set(out.refit_warnings)
    assert any("0 denominator df" in line for notes in out.refit_warnings.values()
               for line in notes)
    assert any("refits warned" in str(w.message) for w in caught)


@pytest.mark.parametrize("kwargs, error, message", [
    ({"size": 100.0}, TypeError, "size must be an integer, got float"),
    ({"n_rep": 2.5}, TypeError, "n_rep must be an integer, got float"),
    ({"random_state": "abc"}, TypeError, "random_state must be None, an integer seed"),
    ({"maxiter": 0}, ValueError, "maxiter must be an integer >= 1"),
    ({"cov_type": "HC0"}, NotImplementedError, "cov_type"),
])
def test_subsample_arguments_checked_before_any_refit(seed_fit, monkeypatch, kwargs, error,
                                                      message):
    from glmmnb.workflows import subsample

    def no_refit(*args):
        raise AssertionError("a refit ran before the arguments were checked")

    monkeypatch.setattr(subsample, "_refit_chunk", no_refit)
    kwargs = {"size": 100, "n_rep": 3, **kwargs}
    with pytest.raises(error, match=message):
        seed_fit.subsample(**kwargs)


def test_subsample_progress_counts_refits(seed_fit, capsys):
    pytest.importorskip("tqdm")
    seed_fit.subsample(size=50, n_rep=7, random_state=1, n_jobs=1, progress=True)
    assert "7/7" in capsys.readouterr().err


def test_subsample_default_n_jobs_honours_parallel_config(seed_fit, monkeypatch):
    joblib = pytest.importorskip("joblib")
    from glmmnb.workflows import subsample

    threads = []
    original = subsample._refit_chunk

    def recording(*args):
        threads.append(threading.current_thread() is threading.main_thread())
        return original(*args)

    monkeypatch.setattr(subsample, "_refit_chunk", recording)
    plain = seed_fit.subsample(size=100, n_rep=4, random_state=2, n_jobs=1)
    with joblib.parallel_config(backend="threading", n_jobs=2):
        configured = seed_fit.subsample(size=100, n_rep=4, random_state=2)
    assert all(threads[:4]) and not any(threads[4:])
    np.testing.assert_array_equal(plain.pvalues, configured.pvalues)


# --- property: any row order of the Series inputs gives R's fit ---------------

@settings(derandomize=True, max_examples=4, deadline=None, database=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_series_inputs_in_any_order_match_r(seed):
    data, expected = load_case(REFERENCE / "v05_offset")
    perm = np.random.default_rng(seed).permutation(len(data))
    shuffled = data.iloc[perm]
    res = fit(data, "counts ~ treatment", groups=shuffled["slide"],
              exposure=shuffled["exposure"])
    np.testing.assert_allclose(res.params, expected["pql"]["params"], rtol=1e-5)
    np.testing.assert_allclose(res.bse, expected["pql"]["bse"], rtol=1e-4)
