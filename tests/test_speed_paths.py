"""The fast paths of issue 14 give what the plain paths give."""

import pickle

import numpy as np
import pandas as pd
import pytest
from statsmodels.formula._manager import FormulaManager
from statsmodels.tools.sm_exceptions import MissingDataError

from conftest import REFERENCE
from glmmnb import NegBinMixedGLM
from glmmnb._validation import _clearly_full_rank, _qr_pivot, check_design, check_groups


def _string_columns(data):
    return [c for c in data.columns if data[c].dtype.kind in "OT"]


@pytest.mark.parametrize("formula", [
    "counts ~ treatment", "counts ~ treatment * area",
    "counts ~ C(treatment, Treatment('Target'))",
    "counts ~ C(treatment, levels=['Target', 'Control'])"])
def test_categorical_route_gives_patsys_design_of_the_strings(seed_data, formula):
    data = seed_data.assign(treatment=seed_data["RNAi"], area=np.arange(200) % 7)
    _, X = FormulaManager().get_matrices(formula, data, pandas=True)
    model = NegBinMixedGLM.from_formula(formula, data, groups="slide")
    assert model.exog_names == list(X.columns)
    np.testing.assert_array_equal(model.exog, X.to_numpy())


def test_categorical_route_leaves_the_callers_frame(seed_data):
    data = seed_data.copy()
    dtypes = data.dtypes.copy()
    model = NegBinMixedGLM.from_formula("counts ~ RNAi", data, groups="slide")
    pd.testing.assert_series_equal(data.dtypes, dtypes)
    assert model.data.frame["RNAi"].dtype == dtypes["RNAi"]
    assert "RNAi" in _string_columns(data)


def test_prediction_and_unseen_level_as_for_strings(seed_fit):
    new = pd.DataFrame({"RNAi": ["Target", "Control"]})
    _, X = FormulaManager().get_matrices("counts ~ RNAi", seed_fit.model.data.frame, pandas=True)
    np.testing.assert_allclose(seed_fit.predict(new), np.exp(np.array([[1, 1], [1, 0]])
                                                            @ np.asarray(seed_fit.params)))
    # our message, naming the column and its levels (issue 9), not patsy's
    with pytest.raises(ValueError, match=r"'RNAi'.*\['Other'\] not seen in the fit"):
        seed_fit.predict(pd.DataFrame({"RNAi": ["Other"]}))
    assert X.design_info.column_names == list(seed_fit.params.index)


def test_pickled_fit_predicts_new_rows(seed_fit):
    back = pickle.loads(pickle.dumps(seed_fit))
    new = pd.DataFrame({"RNAi": ["Target"]})
    np.testing.assert_allclose(back.predict(new), seed_fit.predict(new))


def test_missing_drop_with_string_columns(seed_data):
    data = seed_data.copy()
    data.loc[[3, 50], "RNAi"] = np.nan
    res = NegBinMixedGLM.from_formula("counts ~ RNAi", data, groups="slide",
                                      missing="drop").fit()
    assert res.model.n_dropped == 2 and res.nobs == 198
    assert list(res.params.index) == ["Intercept", "RNAi[T.Target]"]


@pytest.mark.parametrize("make", [
    lambda s: s.astype("category"),
    lambda s: pd.Categorical(s, categories=sorted(set(s), reverse=True)),
    lambda s: pd.Categorical(s, categories=sorted(set(s)) + ["unused"]),
    lambda s: pd.Series(s.to_numpy(), index=s.index).astype("string"),
], ids=["sorted", "unsorted", "unused-category", "string-dtype"])
def test_group_codes_from_categoricals_as_from_strings(seed_data, seed_fit, make):
    # the codes of a Categorical are read only when they are factorize's codes
    data = seed_data.assign(slide=make(seed_data["slide"].astype(object)))
    res = NegBinMixedGLM.from_formula("counts ~ RNAi", data, groups="slide").fit()
    assert res.model.group_labels[0].tolist() == seed_fit.model.group_labels[0].tolist()
    np.testing.assert_array_equal(res.model.levels[0].codes, seed_fit.model.levels[0].codes)
    np.testing.assert_allclose(res.ranef(), seed_fit.ranef(), rtol=1e-12)
    np.testing.assert_allclose(res.params, seed_fit.params, rtol=1e-12)


def test_missing_group_label_in_strings(seed_data):
    data = seed_data.astype({"slide": object})
    data.loc[[7, 120], "slide"] = None
    with pytest.raises(MissingDataError, match=r"groups \('slide'\) has missing values in "
                                               r"2 row\(s\) \(7, 120\)"):
        NegBinMixedGLM.from_formula("counts ~ RNAi", data, groups="slide")
    res = NegBinMixedGLM.from_formula("counts ~ RNAi", data, groups="slide", missing="drop")
    kept = seed_data.drop(index=[7, 120])
    plain = NegBinMixedGLM.from_formula("counts ~ RNAi", kept, groups="slide")
    np.testing.assert_array_equal(res.levels[0].codes, plain.levels[0].codes)
    assert res.group_labels[0].tolist() == plain.group_labels[0].tolist()
    assert data["slide"].isna().sum() == 2


@pytest.mark.parametrize("labels, kinds", [
    (np.array(["a", "b"], dtype=object), None),
    (np.array([1, 2.5], dtype=object), None),
    (np.array([1, "1"], dtype=object), "number, str"),
    (np.array([("a", 1), "b"], dtype=object), "str, tuple"),
])
def test_check_groups_label_kinds(labels, kinds):
    if kinds is None:
        assert len(check_groups(labels, 2)) == 2
    else:
        with pytest.raises(TypeError, match=f"mixes label types \\({kinds}\\)"):
            check_groups(labels, 2)


def test_categorical_labels_are_checked_by_their_used_categories():
    mixed = pd.Series(pd.Categorical([1, "1", 1], categories=[1, "1", "x"]))
    with pytest.raises(TypeError, match=r"mixes label types \(number, str\)"):
        check_groups(mixed, 3)
    # an unused category of another kind has no row to merge or split
    unused = pd.Series(pd.Categorical(["a", "b"], categories=["a", "b", 3]))
    assert check_groups(unused, 2).tolist() == ["a", "b"]
    assert check_groups(pd.Categorical(["b", "a"]), 2).tolist() == ["b", "a"]


def _qr_rank(X):
    _, r, _ = _qr_pivot(X)
    return int(np.sum(np.abs(np.diag(r)) > np.abs(r[0, 0]) * max(X.shape) * np.finfo(float).eps))


@pytest.mark.parametrize("kind", ["plain", "scaled", "near_collinear", "collinear", "zero",
                                  "wide"])
def test_gram_shortcut_only_claims_what_the_qr_finds(kind):
    rng = np.random.default_rng(3)
    X = np.column_stack([np.ones(500), rng.normal(size=500), rng.normal(size=500)])
    if kind == "scaled":
        X[:, 2] *= 1e-9
    elif kind == "near_collinear":
        X[:, 2] = X[:, 1] + 1e-7 * rng.normal(size=500)
    elif kind == "collinear":
        X[:, 2] = 2.0 * X[:, 1] - X[:, 0]
    elif kind == "zero":
        X[:, 2] = 0.0
    elif kind == "wide":
        X = X[:2]
    full = _qr_rank(X) == X.shape[1]
    assert _clearly_full_rank(X) == (kind == "plain")
    assert full == (kind in ("plain", "scaled", "near_collinear"))
    if full:
        assert check_design(X, ["a", "b", "c"]) is not None
    else:
        with pytest.raises(ValueError, match="collinear"):
            check_design(X, ["a", "b", "c"])


def _plain_random_effects(res):
    """statsmodels' dict layout built directly from the ranef() frames."""
    top = res.ranef()
    out = {g: list(zip(top.columns, row)) for g, row in zip(top.index, top.to_numpy())}
    for name, outer in zip(res.vc_names, res._outermost):
        frame = res.ranef(name)
        for g, lab, val in zip(outer, frame.index, frame.iloc[:, 0]):
            out[top.index[g]].append((f"{name}[{lab}]", val))
    return {g: pd.Series(dict(v)) for g, v in out.items()}


def test_random_effects_mapping_equals_the_dict_layout():
    data = pd.read_csv(REFERENCE / "v11_nested" / "data.csv")
    res = NegBinMixedGLM.from_formula("counts ~ treatment", data, groups="experiment",
                                      vc_formula={"slide": "0 + C(slide)"}).fit()
    re = res.random_effects
    plain = _plain_random_effects(res)
    assert list(re) == list(plain) and len(re) == len(plain)
    for g, series in plain.items():
        pd.testing.assert_series_equal(re[g], series)
    assert set(dict(re)) == set(plain)
    with pytest.raises(KeyError):
        re["no such group"]
    back = pickle.loads(pickle.dumps(res)).random_effects
    pd.testing.assert_series_equal(back["day1"], plain["day1"])


def _glm_nb_cases():
    from conftest import DATA, load_case

    cases = sorted(p for p in REFERENCE.iterdir() if p.is_dir()) + sorted(
        p for p in (DATA / "r").iterdir() if (p / "expected.json").is_file())
    return [p for p in cases if load_case(p)[1]["theta_source"] == "glm.nb"]


# R's own alternation stops within ~1e-7 of the maximum on these (the
# reference README: "refitting with tolerances of 1e-12 moves it by less than
# 1e-7"); the test also checks that our theta is at least as good a maximum.
_R_LOOSE = {"v07_low_counts_unbalanced": 5e-8, "x01_slope_offset": 3e-7,
            "x08_large_counts": 3e-8}


@pytest.mark.parametrize("start_rows", [None, 30], ids=["default", "subsampled-start"])
@pytest.mark.parametrize("folder", _glm_nb_cases(), ids=lambda p: p.name)
def test_theta_is_glm_nbs_ml_theta(folder, start_rows, monkeypatch):
    from conftest import load_case
    from glmmnb.core import negbin, theta as theta_mod
    from glmmnb.core.nbglm import fit_nb_glm
    from glmmnb.core.scaling import standardizing_transform

    if start_rows is not None:
        # a subsample far smaller than the data: the joint Newton steps start
        # far from the maximum (or fall back to the alternation) and must still land on it
        monkeypatch.setattr(theta_mod, "START_ROWS", start_rows)
    data, exp = load_case(folder)
    offset = np.log(data["exposure"].to_numpy()) if exp.get("offset") else None
    model = NegBinMixedGLM.from_formula(exp["formula"], data, groups=exp["groups"],
                                        offset=offset)
    X = model.exog @ standardizing_transform(model.exog)
    fit = theta_mod.estimate_theta(model.endog, X, model._offset)
    r_theta = exp["glm_nb"]["theta"]
    assert fit.converged and not fit.at_limit
    assert fit.theta == pytest.approx(r_theta, rel=_R_LOOSE.get(folder.name, 1e-8))
    assert fit.se_theta == pytest.approx(exp["glm_nb"]["se_theta"], rel=1e-3)
    assert fit.loglike == pytest.approx(exp["glm_nb"]["loglik"], rel=1e-10)
    at_r = fit_nb_glm(model.endog, X, model._offset, r_theta)
    at_r_loglike = negbin.loglike(model.endog, at_r.mu, r_theta)
    # rounding of a sum of thousands of terms aside (large counts: ~1e-12 relative)
    assert fit.loglike >= at_r_loglike - 1e-11 * abs(at_r_loglike)
    np.testing.assert_allclose(fit.glm.mu, np.exp(fit.glm.eta))


@pytest.fixture(scope="module")
def slope_model():
    data = pd.read_csv(REFERENCE / "v06_random_slope" / "data.csv")
    return data, NegBinMixedGLM.from_formula("counts ~ treatment + area", data,
                                             groups="slide", re_formula="~area")


def _new_counts(data):
    return np.random.default_rng(5).permutation(data["counts"].to_numpy())


@pytest.mark.parametrize("theta", [None, 3.0])
def test_refit_equals_a_fresh_fit(slope_model, theta):
    data, model = slope_model
    y = _new_counts(data)
    fresh = NegBinMixedGLM.from_formula("counts ~ treatment + area", data.assign(counts=y),
                                        groups="slide", re_formula="~area", theta=theta).fit()
    res = model.refit(y, theta=theta)
    for name in ("params", "bse", "pvalues", "ddf"):
        pd.testing.assert_series_equal(getattr(res, name), getattr(fresh, name),
                                       rtol=1e-10, atol=1e-12)
    assert res.theta == fresh.theta and res.n_iter == fresh.n_iter
    pd.testing.assert_frame_equal(res.cov_re, fresh.cov_re, rtol=1e-10)
    np.testing.assert_allclose(res.fittedvalues, fresh.fittedvalues, rtol=1e-10)
    assert model.endog[0] == data["counts"].iloc[0]      # the original is untouched
    assert res.summary().as_text() == fresh.summary().as_text()


def test_refit_checks_the_new_response(slope_model):
    from statsmodels.tools.sm_exceptions import MissingDataError

    data, model = slope_model
    with pytest.raises(ValueError, match="one value per row"):
        model.refit(np.ones(3))
    y = _new_counts(data).astype(float)
    y[4] = np.nan
    with pytest.raises(MissingDataError, match="endog has missing values"):
        model.refit(y)
    with pytest.raises(ValueError, match="negative values"):
        model.refit(-_new_counts(data))


def test_refit_results_pickle_and_remove_data(slope_model):
    data, model = slope_model
    res = model.refit(_new_counts(data))
    back = pickle.loads(pickle.dumps(res))
    pd.testing.assert_series_equal(back.params, res.params)
    assert "_design_cache" not in back.model.__dict__
    assert "_strata_cache" not in back.model.__dict__
    again = back.model.refit(data["counts"].to_numpy())
    pd.testing.assert_series_equal(again.params, model.fit().params, rtol=1e-10)
    res.remove_data()
    assert res.model._design_cache is None and res.model._strata_cache is None


def test_nlme_strata_are_computed_once_per_design(slope_model, monkeypatch):
    """A fit reads nlme's placement of the columns twice (coefficient and term df)
    and refits reuse it: one computation per design, and the same df as without it."""
    import glmmnb.model
    from glmmnb.core import ddf

    data = slope_model[0]
    calls = []

    def counted(X, codes):
        calls.append(1)
        return ddf.nlme_strata(X, codes)

    monkeypatch.setattr(glmmnb.model, "nlme_strata", counted)
    model = NegBinMixedGLM.from_formula("counts ~ treatment + area", data, groups="slide")
    res = model.fit()
    model.refit(_new_counts(data))
    assert len(calls) == 1
    codes = [lev.codes for lev in model.levels]
    np.testing.assert_array_equal(res.ddf, ddf.nlme_ddf(model.exog, codes))
    assert [d for _, _, d in res.model_terms] == list(
        ddf.nlme_term_ddf(model.exog, codes, [[0], [1], [2]]))


@pytest.mark.parametrize("k_re", [2, 3])
def test_variance_gradient_matches_differences(k_re):
    from glmmnb.core import lmm, lmm_optimize
    from glmmnb.core._blocks import sum_log

    rng = np.random.default_rng(3)
    g = np.repeat(np.arange(40), 12)
    n = g.size
    x, x2 = rng.normal(size=n), rng.normal(size=n)
    X = np.column_stack([np.ones(n), x, rng.integers(0, 2, 40)[g]])
    Z = np.column_stack([np.ones(n), x, x2])[:, :k_re]
    z = 1 + 0.5 * x + rng.normal(size=40)[g] + 0.3 * rng.normal(size=40)[g] * x + rng.normal(size=n)
    w = rng.uniform(0.5, 2, n)
    levels = [lmm.Level(g, 40, tuple(range(k_re)))]
    red = lmm._Reducer(lmm._row_structure(X, Z, levels).crossproducts(z, w), levels, n, 3,
                       float(sum_log(w)))
    starts = {2: [[1.0, 0.2, 0.5], [0.3, -0.4, 0.05], [2.0, 0.0, 0.0]],
              3: [[1.0, 0.2, 0.5, -0.1, 0.3, 0.4]]}[k_re]
    for theta in map(np.array, starts):
        dev, grad = lmm_optimize._single_level_gradient(red, theta)
        h = 1e-6
        diff = [(red.deviance(theta + e) - red.deviance(theta - e)) / (2 * h)
                for e in np.eye(theta.size) * h]
        assert dev == pytest.approx(red.deviance(theta), rel=1e-13)
        np.testing.assert_allclose(grad, diff, rtol=1e-6, atol=1e-5)


@pytest.mark.parametrize("fallback", [False, True])
def test_factorize_strings_is_pandas_sorted_factorize(fallback, monkeypatch):
    from glmmnb._formula import factorize_strings

    rng = np.random.default_rng(4)
    labels = np.array(["s10", "s9", "S1", "é", "s1", "a b", ""], dtype=object)
    values = labels[rng.integers(0, labels.size, 500)]
    values[rng.integers(0, 500, 20)] = None
    values[3] = np.nan
    if fallback:
        import pandas._libs.hashtable as ht

        monkeypatch.delattr(ht, "StringHashTable")
    codes, uniques = factorize_strings(values)
    want_codes, want_uniques = pd.factorize(values, sort=True)
    np.testing.assert_array_equal(codes, want_codes)
    assert list(uniques) == list(want_uniques) == sorted(set(labels))


def test_joint_pass_is_the_same_in_any_block_size(monkeypatch):
    """The Newton pass's sums over blocks (a reused buffer, a short last block) equal one block."""
    import glmmnb.core._blocks as blocks_mod
    from glmmnb.core.theta import _CountTable, _JointPass

    rng = np.random.default_rng(3)
    n = 5000
    X = np.column_stack([np.ones(n), rng.normal(size=n), rng.integers(0, 2, n)])
    y = rng.negative_binomial(4, 4 / (4 + np.exp(X @ [1.0, 0.3, -0.5]))).astype(float)
    args = (y, np.ascontiguousarray(X.T), rng.normal(0, 0.1, n), np.array([0.9, 0.25, -0.4]),
            3.0, _CountTable(y))
    one = _JointPass(*args)
    monkeypatch.setattr(blocks_mod, "BLOCK", 700)
    many = _JointPass(*args)
    for name in ("grad", "hess", "_fisher"):
        np.testing.assert_allclose(getattr(many, name), getattr(one, name), rtol=1e-12)
    assert many.loglike == pytest.approx(one.loglike, rel=1e-13)
