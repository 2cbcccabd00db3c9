"""glmmnb against R's glmmPQL on the stored reference fits (tolerances from their README)."""

import numpy as np
import pytest

from conftest import DATA, REFERENCE, fit_case, load_case

# the shared reference fits, then our own (tests/data/r/make_extra_references.R)
CASES = sorted(p for p in REFERENCE.iterdir() if p.is_dir()) + sorted(
    p for p in (DATA / "r").iterdir() if p.is_dir())
SINGLE_LEVEL = [p for p in CASES if load_case(p)[1]["vc_formula"] is None]


@pytest.fixture(scope="module", params=CASES, ids=lambda p: p.name)
def case(request):
    data, expected = load_case(request.param)
    return fit_case(data, expected), expected


def test_singular_flag_follows_lme4_rule(case):
    """lme4's isSingular rule on R's glmmPQL covariances (relative Cholesky diagonal < 1e-4)."""
    from glmmnb.core.singular import relative_cholesky_diagonal

    res, exp = case
    s2 = exp["pql"]["resid_sd"] ** 2
    want = any(relative_cholesky_diagonal(np.array(c), s2).min() < 1e-4
               for c in exp["pql"]["cov_re"].values())
    assert res.is_singular == want


def test_theta(case):
    res, exp = case
    assert res.theta == pytest.approx(exp["theta"], rel=1e-4)


def test_params(case):
    res, exp = case
    np.testing.assert_allclose(res.params, exp["pql"]["params"], rtol=1e-4, atol=1e-6)


def test_bse(case):
    res, exp = case
    np.testing.assert_allclose(res.bse, exp["pql"]["bse"], rtol=1e-3)


def test_ddf_exact(case):
    res, exp = case
    assert res.ddf.tolist() == exp["pql"]["df"]


def test_pvalues(case):
    res, exp = case
    np.testing.assert_allclose(res.pvalues, exp["pql"]["pvalues"], rtol=1e-2, atol=1e-8)


def test_tvalues(case):
    res, exp = case
    np.testing.assert_allclose(res.tvalues, exp["pql"]["tvalues"], rtol=1e-3)


def test_vcov_is_unadjusted_cov_params(case):
    """R's vcov(fit) is our cov_params() without summary.lme's N / (N - p)."""
    res, exp = case
    n, p = res.nobs, len(res.params)
    np.testing.assert_allclose(np.asarray(res.cov_params()) * (n - p) / n,
                               exp["pql"]["cov_params"], rtol=2e-3, atol=1e-9)


def test_resid_sd(case):
    res, exp = case
    assert np.sqrt(res.scale) == pytest.approx(exp["pql"]["resid_sd"], rel=1e-3)


def test_n_iter(case):
    res, exp = case
    assert res.n_iter == exp["pql"]["n_iter"]
    assert res.converged


def test_random_effect_sds(case):
    res, exp = case
    got = np.sqrt(np.diag(np.asarray(res.cov_re)))
    want = np.sqrt(np.diag(np.asarray(exp["pql"]["cov_re"][exp["groups"]])))
    np.testing.assert_allclose(got, want, rtol=2e-2, atol=2e-3)


def test_nested_component_sds(case):
    res, exp = case
    names = list(exp.get("vc_formula") or {})
    assert list(res.model.vc_names) == names
    want = [np.sqrt(exp["pql"]["cov_re"][n][0][0]) for n in names]
    np.testing.assert_allclose(np.sqrt(res.vcomp), want, rtol=2e-2, atol=2e-3)


def test_fitted_head(case):
    res, exp = case
    eta = np.log(np.asarray(res.fittedvalues)[:10])
    np.testing.assert_allclose(eta, exp["pql"]["fitted_head"], rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("folder", SINGLE_LEVEL, ids=lambda p: p.name)
def test_ranef(folder):
    data, exp = load_case(folder)
    res = fit_case(data, exp)
    ref = exp["pql"]["ranef"]
    got = res.ranef().loc[ref["groups"]].to_numpy()
    np.testing.assert_allclose(got, ref["values"], rtol=2e-2, atol=2e-3)


def test_glm_nb_theta_se(case):
    res, exp = case
    if exp["theta_source"] == "glm.nb":
        assert res.se_theta == pytest.approx(exp["glm_nb"]["se_theta"], rel=1e-3)
