"""The fast paths of issue 14 give what the plain paths give."""

import pickle

import numpy as np
import pandas as pd
import pytest
from patsy import PatsyError
from statsmodels.formula._manager import FormulaManager

from conftest import REFERENCE
from glmmnb import NegBinMixedGLM
from glmmnb._validation import check_groups


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
    with pytest.raises(PatsyError, match="does not match any of the expected levels"):
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
