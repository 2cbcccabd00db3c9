"""Fitted means that collapse: tiny exposures and complete separation (issue 9, items 5, 6).

What R does on the same inputs (Rscript, MASS 7.3-58, nlme 3.1-162): with
the seed data and one exposure of 1e-10 (or 1e-6 .. 1e-300) ``glm.nb`` stops
with "no valid set of coefficients has been found" (at 1e-300 after
"glm.fit: fitted rates numerically 0 occurred"); ``glmmPQL`` at a fixed theta
returns standard errors of 921 (1e-10) and 1.4e6 (1e-300).  On the complete
separation ``glmmPQL`` returns an intercept of -30.8 with a standard error of
7e5 and p = 1: glmmnb fits it too, with a warning (tests/test_separation.py).
"""

import numpy as np
import pandas as pd
import pytest
from statsmodels.tools.sm_exceptions import ConvergenceWarning

from glmmnb import NegBinMixedGLM


@pytest.mark.parametrize("exposure", [1e-10, 1e-300])
@pytest.mark.parametrize("theta", [None, 25.0])
def test_one_tiny_exposure_is_an_error_naming_the_row(seed_data, exposure, theta):
    ex = np.ones(len(seed_data))
    ex[7] = exposure
    model = NegBinMixedGLM.from_formula("counts ~ RNAi", seed_data, groups="slide",
                                        exposure=ex, theta=theta)
    with pytest.raises(ValueError, match=r"numerically 0 .* 1 row\(s\) \(7\).*exposure"):
        model.fit()


def test_small_exposure_still_fits(seed_data):
    """A mean of 1e-3 of the count is an outlier, not a numerical failure: R fits it too."""
    ex = np.ones(len(seed_data))
    ex[7] = 1e-3
    res = NegBinMixedGLM.from_formula("counts ~ RNAi", seed_data, groups="slide",
                                      exposure=ex, theta=25.0).fit()
    assert np.isfinite(res.bse).all()


@pytest.mark.parametrize("theta", [None, 2.0])
def test_complete_separation_fits_with_a_warning_and_no_numpy_noise(theta):
    """The issue's design (R's numbers: tests/test_separation.py)."""
    d = pd.DataFrame({"y": [0, 0, 0, 0, 2, 5, 3, 1], "f": list("aaaabbbb"),
                      "g": list("abababab")})
    model = NegBinMixedGLM.from_formula("y ~ f", d, groups="g", theta=theta)
    with pytest.warns(ConvergenceWarning, match=r"complete separation.*\(0, 1, 2, 3\)"):
        with np.errstate(all="raise"):            # no numpy warning on the way
            res = model.fit()
    assert res.separation == {"rows": [0, 1, 2, 3], "params": ["Intercept", "f[T.b]"]}


def test_theta_too_small_to_compute_with_is_a_clear_error(seed_data):
    """R: glmmPQL(..., negative.binomial(1e-308)) stops, "NA/NaN/Inf in foreign function call"."""
    model = NegBinMixedGLM.from_formula("counts ~ RNAi", seed_data, groups="slide",
                                        theta=1e-308)
    with pytest.raises(FloatingPointError, match="theta = 1e-308"):
        model.fit()


def test_theta_1e300_still_matches_r(seed_data):
    """R 4.2.2, MASS 7.3-58, nlme 3.1-162 on the seed data:
    glmmPQL(counts ~ RNAi, ~1 | slide, negative.binomial(1e-300)) gives these SEs."""
    res = NegBinMixedGLM.from_formula("counts ~ RNAi", seed_data, groups="slide",
                                      theta=1e-300).fit()
    np.testing.assert_allclose(res.bse, [0.04427042, 0.06260783], rtol=1e-3)
    np.testing.assert_allclose(res.params, [1.6174061, 0.3988294], rtol=1e-4)
