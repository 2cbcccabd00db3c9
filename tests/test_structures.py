"""Random slopes and nested components: layouts, labels and unsupported structures."""

import numpy as np
import pandas as pd
import pytest

from conftest import REFERENCE, fit_scope
from glmmnb import NegBinMixedGLM


@pytest.fixture(scope=fit_scope)
def nested():
    data = pd.read_csv(REFERENCE / "v11_nested" / "data.csv")
    return NegBinMixedGLM.from_formula("counts ~ treatment", data, groups="experiment",
                                       vc_formula={"slide": "0 + C(slide)"}).fit()


@pytest.fixture(scope=fit_scope)
def slope():
    data = pd.read_csv(REFERENCE / "v06_random_slope" / "data.csv")
    return NegBinMixedGLM.from_formula("counts ~ treatment + area", data, groups="slide",
                                       re_formula="~area").fit()


def test_nested_vcomp_and_summary(nested):
    assert nested.model.vc_names == ["slide"]
    assert nested.vcomp.shape == (1,)
    assert np.sqrt(nested.vcomp[0]) == pytest.approx(np.sqrt(0.0608119018183141), rel=2e-2)
    assert "slide (in experiment)" in nested.summary().as_text()
    assert nested.ranef("slide").shape == (12, 1)


def test_nested_random_effects_dict_carries_inner_levels(nested):
    re = nested.random_effects
    assert sorted(re) == ["day1", "day2", "day3"]
    assert sum(k.startswith("slide[") for k in re["day1"].index) == 4


def test_slope_random_effects_every_coefficient(slope):
    re = slope.random_effects
    assert len(re) == 15
    assert list(next(iter(re.values())).index) == ["slide", "area"]
    np.testing.assert_allclose(np.asarray(slope.cov_re), np.asarray(slope.cov_re).T)


def test_slope_without_intercept():
    data = pd.read_csv(REFERENCE / "v06_random_slope" / "data.csv")
    res = NegBinMixedGLM.from_formula("counts ~ treatment + area", data, groups="slide",
                                      re_formula="0 + area").fit()
    assert list(res.cov_re.columns) == ["area"]
    assert res.ddf.tolist() == [434, 13, 434]


def test_crossed_groups_are_rejected_with_what_is_supported(seed_data):
    with pytest.raises(NotImplementedError, match="crossed random effects.*supported"):
        NegBinMixedGLM.from_formula("counts ~ RNAi", seed_data, groups=["slide", "experiment"])


def test_vc_slope_is_rejected(seed_data):
    with pytest.raises(NotImplementedError, match="nested in the groups"):
        NegBinMixedGLM.from_formula("counts ~ RNAi", seed_data, groups="experiment",
                                    vc_formula={"slide": "0 + C(slide):counts"})
