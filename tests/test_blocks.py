"""Block-wise passes: with tiny row blocks every fit still matches R.

The numerical core streams long arrays in blocks of ``BLOCK`` rows and
accumulates sums across blocks; the reference cases are shorter than one
block, so they would not notice a sum that keeps only its last block.
"""

import warnings

import numpy as np
import pytest

import glmmnb.core._blocks as _blocks
from conftest import DATA, REFERENCE, fit_case, load_case
from tolerances import assert_close, assert_cov_re_close

CASES = [REFERENCE / "v01_seed", REFERENCE / "v06_random_slope", REFERENCE / "v11_nested",
         DATA / "r" / "x01_slope_offset"]


@pytest.mark.parametrize("folder", CASES, ids=lambda p: p.name)
def test_tiny_blocks_match_r(folder, monkeypatch):
    monkeypatch.setattr(_blocks, "BLOCK", 7)
    data, exp = load_case(folder)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = fit_case(data, exp)
    assert_close(res.theta, exp["theta"], "regression", "theta")
    assert_close(res.params, exp["pql"]["params"], "regression", "params")
    assert_close(res.bse, exp["pql"]["bse"], "regression", "bse")
    assert_close(np.sqrt(res.scale), exp["pql"]["resid_sd"], "regression", "resid_sd")
    assert_close(np.log(np.asarray(res.fittedvalues)[:10]), exp["pql"]["fitted_head"],
                 "regression", "fitted")
    assert_cov_re_close(res.cov_re, exp["pql"]["cov_re"][exp["groups"]], "regression")
    assert res.n_iter == exp["pql"]["n_iter"]
    if exp["theta_source"] == "glm.nb":
        assert_close(res.se_theta, exp["glm_nb"]["se_theta"], "regression", "se_theta")
