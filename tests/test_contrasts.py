"""Contrasts whose parameters have different nlme df, checked by hand from R's numbers.

On the seed the intercept has 196 df and ``RNAi[T.Target]`` 2; a contrast that
involves the treatment effect is tested on 2 df (R's ``anova.lme`` refuses to
mix df at all; the smaller df is the conservative choice).
"""

import numpy as np
import pytest
from scipy import stats

from conftest import REFERENCE, load_case
from tolerances import assert_close

_, SEED = load_case(REFERENCE / "v01_seed")
N, P = SEED["n_obs"], len(SEED["pql"]["params"])
R_PARAMS = np.asarray(SEED["pql"]["params"])
# summary.lme's covariance: vcov(fit) * N / (N - p) (see the reference README)
R_COV = np.asarray(SEED["pql"]["cov_params"]) * N / (N - P)


def by_hand(c, df, alpha=0.05):
    """Estimate, SE, t, two-sided p and interval of c'beta from R's fit."""
    est = c @ R_PARAMS
    se = np.sqrt(c @ R_COV @ c)
    t = est / se
    q = stats.t.ppf(1 - alpha / 2, df)
    return est, se, t, 2 * stats.t.sf(abs(t), df), (est - q * se, est + q * se)


def test_intercept_plus_treatment_uses_two_df(seed_fit):
    tt = seed_fit.t_test("Intercept + RNAi[T.Target] = 0")
    est, se, t, p, _ = by_hand(np.array([1.0, 1.0]), 2)
    assert float(np.squeeze(tt.df_denom)) == 2
    assert_close(np.squeeze(tt.effect), est, "regression", "params")
    assert_close(np.squeeze(tt.sd), se, "regression", "bse")
    assert_close(np.squeeze(tt.tvalue), t, "regression", "tvalues")
    assert_close(np.squeeze(tt.pvalue), p, "regression", "pvalues")
    # on 196 df the p-value would be ~1e-110: make sure we are nowhere near it
    assert float(np.squeeze(tt.pvalue)) > 1e-4


@pytest.mark.parametrize("alpha", [0.05, 0.1])
def test_conf_int_of_a_mixed_contrast(seed_fit, alpha):
    lo_hi = np.squeeze(seed_fit.t_test("Intercept + RNAi[T.Target] = 0").conf_int(alpha=alpha))
    *_, ci = by_hand(np.array([1.0, 1.0]), 2, alpha)
    assert_close(lo_hi, ci, "regression", "params")


def test_each_row_of_a_contrast_matrix_has_its_own_df(seed_fit):
    C = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 2.0]])
    tt = seed_fit.t_test(C)
    np.testing.assert_array_equal(np.ravel(tt.df_denom), [196, 2, 2])
    want = [by_hand(c, df)[3] for c, df in zip(C, [196, 2, 2])]
    assert_close(np.ravel(tt.pvalue), want, "regression", "pvalues")


def test_parameter_intervals_use_each_parameters_df(seed_fit):
    """R's intervals(fit, which = "fixed"): est -/+ qt(0.975, DF) * Std.Error."""
    ci = np.asarray(seed_fit.conf_int())
    q = stats.t.ppf(0.975, SEED["pql"]["df"])
    assert_close(ci.mean(axis=1), R_PARAMS, "regression", "params")
    assert_close((ci[:, 1] - ci[:, 0]) / (2 * q), SEED["pql"]["bse"], "regression", "bse")


def test_wald_test_of_a_mixed_contrast_uses_two_df(seed_fit):
    wt = seed_fit.wald_test("Intercept + RNAi[T.Target] = 0", scalar=True)
    *_, p, _ = by_hand(np.array([1.0, 1.0]), 2)
    assert float(wt.df_denom) == 2
    assert_close(wt.pvalue, p, "regression", "pvalues")
