"""glmmnb against R's glmmPQL on the stored reference fits, in two tolerance tiers.

Every number R stored is compared: the fixed-effects table, the covariance of
the fixed effects, the full random-effects covariance of the groups (SDs,
correlations, entries), each nested component, the BLUPs of every level
(nested levels from tests/data/r/make_nested_ranef.R), the fitted values, the
residual SD, the iteration count, theta with its SE, and the glm.nb fit of the
fixed part (theta, coefficients, SEs, log-likelihood).  Not compared: the
glmer.nb and glmmTMB blocks (Laplace fits; glmmnb fits PQL only).  A test is generated
only for the cases that hold its quantity.
"""

import json
import warnings

import numpy as np
import pytest

from conftest import DATA, REFERENCE, fit_cache, fit_case, load_case
from tolerances import TIERS, assert_close, assert_cov_re_close, assert_ranef_close, case_tier

# the shared reference fits, then our own (tests/data/r/make_extra_references.R)
CASES = sorted(p for p in REFERENCE.iterdir() if p.is_dir()) + sorted(
    p for p in (DATA / "r").iterdir() if (p / "expected.json").exists())
EXPECTED = {p.name: load_case(p)[1] for p in CASES}
NESTED_RANEF = DATA / "r_nested_ranef"

NESTED = [(p, name) for p in CASES for name in EXPECTED[p.name]["vc_formula"] or {}]
ESTIMATED_THETA = [p for p in CASES if EXPECTED[p.name]["theta_source"] == "glm.nb"]


def _ranef_levels(folder):
    """(level, R's groups, R's values) for every level R's ranef was stored for."""
    exp = EXPECTED[folder.name]
    path = NESTED_RANEF / f"{folder.name}.json"
    if path.exists():
        stored = json.loads(path.read_text())
        return [(lev, r["groups"], r["values"]) for lev, r in stored["ranef"].items()]
    ref = exp["pql"]["ranef"]
    return [] if ref is None else [(exp["groups"], ref["groups"], ref["values"])]


RANEF = [(p, lev) for p in CASES for lev, _, _ in _ranef_levels(p)]


@fit_cache
def _fit(folder):
    data, expected = load_case(folder)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fit_case(data, expected)


def _ids(param):
    return param.name if hasattr(param, "name") else str(param)


@pytest.fixture(params=CASES, ids=_ids)
def case(request):
    return _fit(request.param), EXPECTED[request.param.name]


@pytest.fixture(params=sorted(TIERS))
def tier(request, case):
    """The tier's name, widened for a case in ``tolerances.FLAT_OPTIMUM``."""
    return case_tier(request.param, case[1]["name"])


def test_singular_flag_follows_lme4_rule(case):
    """lme4's isSingular rule on R's glmmPQL covariances (relative Cholesky diagonal < 1e-4)."""
    from glmmnb.core.singular import relative_cholesky_diagonal

    res, exp = case
    s2 = exp["pql"]["resid_sd"] ** 2
    want = any(relative_cholesky_diagonal(np.array(c), s2).min() < 1e-4
               for c in exp["pql"]["cov_re"].values())
    assert res.is_singular == want


def test_theta(case, tier):
    res, exp = case
    assert_close(res.theta, exp["theta"], tier, "theta")


def test_params(case, tier):
    res, exp = case
    assert_close(res.params, exp["pql"]["params"], tier, "params")


def test_bse(case, tier):
    res, exp = case
    assert_close(res.bse, exp["pql"]["bse"], tier, "bse")


def test_tvalues(case, tier):
    res, exp = case
    assert_close(res.tvalues, exp["pql"]["tvalues"], tier, "tvalues")


def test_pvalues(case, tier):
    res, exp = case
    assert_close(res.pvalues, exp["pql"]["pvalues"], tier, "pvalues")


def test_ddf_exact(case):
    res, exp = case
    assert res.ddf.tolist() == exp["pql"]["df"]


def test_vcov_is_unadjusted_cov_params(case, tier):
    """R's vcov(fit) is our cov_params() without summary.lme's N / (N - p)."""
    res, exp = case
    n, p = res.nobs, len(res.params)
    assert_close(np.asarray(res.cov_params()) * (n - p) / n, exp["pql"]["cov_params"],
                 tier, "cov_params")


def test_resid_sd(case, tier):
    res, exp = case
    assert_close(np.sqrt(res.scale), exp["pql"]["resid_sd"], tier, "resid_sd")


def test_rows_groups_and_names(case):
    """R's N, its number of groups per level, and its coefficient names (patsy's order)."""
    res, exp = case
    assert res.nobs == exp["n_obs"]
    counts = {exp["groups"]: res.n_groups}
    counts.update({name: len(res.ranef(name)) for name in res.model.vc_names})
    assert counts == exp["pql"]["n_groups"]
    r_names = [n.replace("(Intercept)", "Intercept") for n in exp["pql"]["param_names_r"]]
    ours = [n.replace("[T.", "").replace("]", "") for n in res.model.exog_names]
    assert ours == r_names


def test_n_iter(case):
    res, exp = case
    assert res.n_iter == exp["pql"]["n_iter"]
    assert res.converged


def test_fitted_head(case, tier):
    res, exp = case
    eta = np.log(np.asarray(res.fittedvalues)[:10])
    assert_close(eta, exp["pql"]["fitted_head"], tier, "fitted")


def test_cov_re_of_the_groups(case, tier):
    """The whole matrix: a sign flip of a slope covariance must fail."""
    res, exp = case
    assert list(res.cov_re.columns) == _re_names(exp)
    assert_cov_re_close(res.cov_re, exp["pql"]["cov_re"][exp["groups"]], tier)


def _re_names(exp):
    """glmmnb's labels for R's cov_re_names of the groups."""
    names = exp["pql"]["cov_re_names"][exp["groups"]]
    names = [names] if isinstance(names, str) else names
    return [exp["groups"] if n == "(Intercept)" else n for n in names]


@pytest.mark.parametrize("folder, name", NESTED, ids=lambda v: _ids(v))
@pytest.mark.parametrize("tier_", sorted(TIERS))
def test_nested_component_variance(folder, name, tier_):
    res, exp = _fit(folder), EXPECTED[folder.name]
    assert list(res.model.vc_names) == list(exp["vc_formula"])
    got = res.vcomp[list(res.model.vc_names).index(name)]
    assert_cov_re_close([[got]], exp["pql"]["cov_re"][name], case_tier(tier_, exp["name"]))


@pytest.mark.parametrize("folder, level", RANEF, ids=lambda v: _ids(v))
@pytest.mark.parametrize("tier_", sorted(TIERS))
def test_ranef_every_level(folder, level, tier_):
    res, exp = _fit(folder), EXPECTED[folder.name]
    _, groups, values = next(r for r in _ranef_levels(folder) if r[0] == level)
    frame = res.ranef() if level == exp["groups"] else res.ranef(level)
    assert sorted(frame.index) == sorted(groups)
    variances = np.diag(np.atleast_2d(exp["pql"]["cov_re"][level]))
    got, want = frame.loc[groups].to_numpy(), np.asarray(values, float)
    for j, var in enumerate(variances):
        assert_ranef_close(got[:, j], want[:, j], var, case_tier(tier_, exp["name"]))


@pytest.mark.parametrize("folder", [p for p in CASES if (NESTED_RANEF / f"{p.name}.json").exists()],
                         ids=_ids)
def test_nested_ranef_file_is_the_stored_fit(folder):
    """make_nested_ranef.R refitted the same model expected.json describes."""
    stored = json.loads((NESTED_RANEF / f"{folder.name}.json").read_text())
    exp = EXPECTED[folder.name]
    np.testing.assert_allclose(stored["params"], exp["pql"]["params"], rtol=1e-12)
    assert stored["theta"] == pytest.approx(exp["theta"], rel=1e-12)


@pytest.mark.parametrize("folder", ESTIMATED_THETA, ids=_ids)
@pytest.mark.parametrize("tier_", sorted(TIERS))
def test_glm_nb_theta_se(folder, tier_):
    assert_close(_fit(folder).se_theta, EXPECTED[folder.name]["glm_nb"]["se_theta"], tier_,
                 "se_theta")


def test_fixed_theta_has_no_se():
    res = _fit(REFERENCE / "v08_fixed_theta")
    assert res.theta == 2 and res.theta_source == "fixed" and np.isnan(res.se_theta)


def test_every_case_is_compared():
    """Guards the parametrisation: all cases, all nested levels, every BLUP level."""
    stored = {p.parent for d in (REFERENCE, DATA / "r") for p in d.glob("*/expected.json")}
    assert set(CASES) == stored and len(CASES) >= 23
    assert {p.name for p, _ in NESTED} == {"v11_nested", "x04_three_levels",
                                           "x05_nested_covariate", "x06_slope_and_nested"}
    levels = {}
    for p, lev in RANEF:
        levels.setdefault(p.name, []).append(lev)
    for p in CASES:
        exp = EXPECTED[p.name]
        assert levels[p.name] == [exp["groups"], *(exp["vc_formula"] or {})], p.name


@pytest.mark.parametrize("folder", [p for p in CASES if (NESTED_RANEF / f"{p.name}.json").exists()],
                         ids=_ids)
def test_random_effects_dict_holds_each_groups_nested_blups(folder):
    """MixedLM's layout: each outer group carries the BLUPs of the groups nested in it.

    R's labels say where a group lies: "day1/s001/f2" is in experiment day1.
    """
    res = _fit(folder)
    re = res.random_effects
    levels = _ranef_levels(folder)
    _, outer_groups, outer_values = levels[0]
    assert sorted(re) == sorted(outer_groups)
    for g, top in zip(outer_groups, outer_values):
        want = dict(zip(res.ranef().columns, top))
        for level, groups, values in levels[1:]:
            want.update({f"{level}[{lab}]": v[0] for lab, v in zip(groups, values)
                         if lab.split("/")[0] == g})
        got = re[g]
        assert sorted(got.index) == sorted(want), g
        np.testing.assert_allclose(got[list(want)].to_numpy(), list(want.values()),
                                   rtol=0, atol=1e-5, err_msg=g)


@fit_cache
def _glm_nb(folder):
    from glmmnb.core.theta import estimate_theta

    model = _fit(folder).model
    return estimate_theta(model.endog, model.exog, model._offset)


@pytest.mark.parametrize("folder", CASES, ids=_ids)
@pytest.mark.parametrize("tier_", sorted(TIERS))
def test_glm_nb_block(folder, tier_):
    """R's glm.nb of the fixed part: theta, its SE, coefficients, SEs, log-likelihood."""
    fit, ref = _glm_nb(folder), EXPECTED[folder.name]["glm_nb"]
    assert fit.converged and not fit.at_limit
    assert_close(fit.theta, ref["theta"], tier_, "theta")
    assert_close(fit.se_theta, ref["se_theta"], tier_, "se_theta")
    assert_close(fit.glm.params, ref["params"], tier_, "params")
    assert_close(np.sqrt(np.diag(fit.glm.cov_params)), ref["bse"], tier_, "bse")
    assert_close(fit.loglike, ref["loglik"], tier_, "loglik")
