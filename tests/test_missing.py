"""missing="drop" drops a row with a NaN in ANY input, and only those rows.

For each input that can hold a missing value, the fit with NaNs in three rows
must equal (by value) the fit on the data without those rows.
"""

import warnings

import numpy as np
import pandas as pd
import pytest

from conftest import DATA, REFERENCE, fit_cache
from glmmnb import NegBinMixedGLM

NESTED = pd.read_csv(DATA / "r" / "x06_slope_and_nested" / "data.csv")
OFFSET = pd.read_csv(REFERENCE / "v05_offset" / "data.csv")
ROWS = [5, 60, 300]


def formula_fit(data, column, **kw):
    base = dict(groups="experiment", re_formula="~area", vc_formula={"slide": "0 + C(slide)"})
    formula = "counts ~ treatment" if column == "area" else "counts ~ treatment + area"
    return NegBinMixedGLM.from_formula(formula, data, **{**base, **kw})


def offset_fit(data, column, **kw):
    if column == "offset":
        return NegBinMixedGLM.from_formula("counts ~ treatment", data, groups="slide",
                                           offset=np.log(data["exposure"]), **kw)
    return NegBinMixedGLM.from_formula("counts ~ treatment", data, groups="slide",
                                       exposure="exposure", **kw)


def array_fit(data, column, **kw):
    d = {"endog": data["counts"].to_numpy(float),
         # area only in exog_re, so that its NaN is in no other array
         "exog": np.column_stack([np.ones(len(data)), data["treatment"] == "target"]).astype(float),
         "groups": data["experiment"].to_numpy(object),
         "exog_re": np.column_stack([np.ones(len(data)), data["area"]]),
         "vc_groups": {"slide": data["slide"].to_numpy(object)}}
    return NegBinMixedGLM(d["endog"], d["exog"], d["groups"], exog_re=d["exog_re"],
                          vc_groups=d["vc_groups"], **kw)


# (input, builder, data, column whose value goes missing)
SCENARIOS = {
    "response": (formula_fit, NESTED, "counts"),
    "formula_covariate": (formula_fit, NESTED, "treatment"),
    "re_formula_column": (formula_fit, NESTED, "area"),      # area is only in re_formula
    "vc_formula_column": (formula_fit, NESTED, "slide"),
    "groups_column": (formula_fit, NESTED, "experiment"),
    "offset_array": (offset_fit, OFFSET, "offset"),
    "exposure_column": (offset_fit, OFFSET, "exposure"),
    "array_endog": (array_fit, NESTED, "counts"),
    "array_groups": (array_fit, NESTED, "experiment"),
    "array_exog_re": (array_fit, NESTED, "area"),
    "array_vc_groups": (array_fit, NESTED, "slide"),
}


def _poison(data, column):
    out = data.copy()
    if column == "offset":
        column = "exposure"   # the offset is computed from it: log(NaN) is NaN
    if out[column].dtype == object:
        out[column] = out[column].astype(object)
    out.loc[ROWS, column] = np.nan
    return out


def _fit(model):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.fit()


@fit_cache
def _clean_fit(build, area_only_in_re):
    """The fit on the data without ROWS (one per design, shared by the scenarios)."""
    data = OFFSET if build is offset_fit else NESTED
    column = "area" if area_only_in_re else "exposure" if build is offset_fit else "counts"
    return _fit(build(data.drop(index=ROWS).reset_index(drop=True), column))


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_drop_equals_fit_without_those_rows(scenario):
    build, data, column = SCENARIOS[scenario]
    poisoned = _poison(data, column)
    before = poisoned.copy()
    got = _fit(build(poisoned, column, missing="drop"))
    want = _clean_fit(build, column == "area")
    pd.testing.assert_frame_equal(poisoned, before)     # the caller's frame is untouched
    assert got.nobs == len(data) - len(ROWS) and got.model.n_dropped == len(ROWS)
    np.testing.assert_allclose(got.params, want.params, rtol=1e-10)
    np.testing.assert_allclose(got.bse, want.bse, rtol=1e-8)
    np.testing.assert_allclose(np.asarray(got.cov_re), np.asarray(want.cov_re), rtol=1e-8,
                               atol=1e-14)
    np.testing.assert_allclose(got.vcomp, want.vcomp, rtol=1e-8, atol=1e-14)
    assert got.ddf.tolist() == want.ddf.tolist()


