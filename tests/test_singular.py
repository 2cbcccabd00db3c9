"""Singular (boundary) fits: lme4's isSingular rule, warnings and errors (issue 9, item 4).

R's glmmPQL has no singularity check; the reference is lme4's rule (the
relative Cholesky diagonal below 1e-4) applied to glmmPQL's own covariances
in the stored cases, and what R does on the odd designs
(tests/data/r_singular/r_behaviour.txt, from check_r_behaviour.R there).
"""

import warnings

import numpy as np
import pandas as pd
import pytest

from conftest import DATA, REFERENCE, fit_case, load_case
from glmmnb import NegBinMixedGLM
from glmmnb.core.singular import SingularFitWarning, find_boundaries
from glmmnb.core.lmm import Level

def _fit(data, exp):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = fit_case(data, exp)
    return res, [w for w in caught if issubclass(w.category, SingularFitWarning)]


def test_seed_is_not_singular(seed_fit):
    """Slide SD 0.0097 against a residual SD of 0.99: small, but not at the boundary."""
    assert not seed_fit.is_singular
    assert "singular" not in seed_fit.summary().as_text()


def test_seed_subsample_2_warns_names_the_component_and_says_so_in_summary():
    data, exp = load_case(REFERENCE / "v02_seed_sub2")
    res, caught = _fit(data, exp)
    assert res.is_singular and len(caught) == 1
    msg = str(caught[0].message)
    assert "slide: (Intercept)" in msg and "variance at 0" in msg
    assert res.singular_components[0].startswith("slide: (Intercept)")
    assert "boundary (singular) fit: slide: (Intercept)" in res.summary().as_text()


def test_slope_at_boundary_is_singular_as_in_r():
    data, exp = load_case(DATA / "r_singular" / "x09_slope_singular")
    assert min(exp["pql"]["rel_chol_diag"]) < 1e-4
    res, caught = _fit(data, exp)
    assert res.is_singular and caught
    assert "slide" in res.singular_components[0]
    # every stored R case: see test_reference_r.test_singular_flag_follows_lme4_rule


def test_correlation_at_one_and_rank_deficiency():
    lev = [Level(np.repeat(np.arange(4), 3), 4, (0, 1, 2))]
    Z = np.column_stack([np.ones(12), np.arange(12.0), np.arange(12.0) ** 2])
    corr = np.array([[1.0, 0.5, 0.0], [0.5, 0.25, 0.0], [0.0, 0.0, 1.0]])
    found = [str(b) for b in find_boundaries([corr], 1.0, Z, lev, ["a", "b", "c"], ["g"])]
    assert found == [found[0]] and "Corr(a, b)" in found[0] and "+1.0000" in found[0]
    a = np.array([1.0, 0.3, 0.2])
    b = np.array([0.2, 1.0, 0.1])
    rank2 = np.outer(a, a) + np.outer(b, b)
    found = [str(b) for b in find_boundaries([rank2], 1.0, Z, lev, ["a", "b", "c"], ["g"])]
    assert len(found) == 1 and found[0].startswith("g: c:") and "rank-deficient" in found[0]
    ok = find_boundaries([np.diag([1e-6, 1.0, 1.0])], 1e-4, Z, lev, ["a", "b", "c"], ["g"])
    assert ok == []                            # SD 0.1 of the residual's: not at 0


@pytest.fixture(scope="module")
def odd():
    rng = np.random.default_rng(1)
    g = np.repeat([f"g{i}" for i in range(8)], 15)
    d = pd.DataFrame({"g": g, "x": rng.normal(size=g.size), "x2": rng.normal(size=g.size),
                      "x3": rng.normal(size=g.size), "c": 1.0, "zero": 0.0})
    d["g2"] = d.g
    u = rng.normal(0, 0.4, 8)[np.repeat(np.arange(8), 15)]
    d["y"] = rng.negative_binomial(3, 3 / (3 + np.exp(1 + 0.3 * d.x + u)))
    return d


def _odd_fit(d, **kw):
    return NegBinMixedGLM.from_formula("y ~ x", d, groups="g", theta=3.0, **kw).fit()


def test_constant_re_column_warns_collinear(odd):
    """R fits it (glmmPQL silently, glmer with convergence warnings): fit, and say why."""
    with pytest.warns(SingularFitWarning, match="collinear"):
        res = _odd_fit(odd, re_formula="~c")
    assert res.is_singular and "(Intercept), c" in res.singular_components[0]


def test_all_zero_re_column_is_an_error(odd):
    """R's glmmPQL stops ("leading minor of order 1 is not positive definite")."""
    with pytest.raises(ValueError, match="'zero' is zero in every row"):
        _odd_fit(odd, re_formula="0 + zero")


def test_nested_factor_equal_to_groups_warns(odd):
    """R fits it and splits the variance in two equal halves: only the sum is identified."""
    with pytest.warns(SingularFitWarning, match="one group per group of g"):
        res = _odd_fit(odd, vc_formula={"g2": "0 + C(g2)"})
    assert res.is_singular


def test_nested_factor_with_one_row_per_group_warns(odd):
    d = odd.assign(cell=np.tile(np.arange(15), 8))
    with pytest.warns(SingularFitWarning, match="one row per group"):
        res = _odd_fit(d, vc_formula={"cell": "0 + C(cell)"})
    assert res.is_singular


def test_more_random_coefficients_than_groups_is_an_error(odd):
    """R's glmmPQL fails there (nlminb: iteration limit reached without convergence)."""
    few = odd[odd.g.isin(["g0", "g1", "g2"])]
    with pytest.raises(ValueError, match="4 random coefficients per group .* from 3 groups"):
        _odd_fit(few, re_formula="~x + x2 + x3")


def test_singular_components_survive_remove_data():
    data, exp = load_case(REFERENCE / "v02_seed_sub2")
    res, _ = _fit(data, exp)
    res.remove_data()
    assert res.is_singular and "singular" in res.summary().as_text()


@pytest.mark.parametrize("method", ["pql", "laplace"])
def test_singular_check_reads_the_fits_own_scale(method, monkeypatch):
    """lme4's rule is on the covariance relative to the residual variance: PQL's
    working scale (here 0.17, theta held at 1 against counts with theta ~ 25),
    and 1 for an ML fit, whose covariances are already the relative ones."""
    import glmmnb.results

    data = pd.read_csv(REFERENCE / "v01_seed" / "data.csv")
    data = data.assign(fake=np.tile(list("abcde"), len(data) // 5))
    seen = []
    real = glmmnb.results._singular_components

    def spy(model, cov_re, scale):
        seen.append((np.asarray(cov_re[0]).copy(), scale))
        return real(model, cov_re, scale)

    monkeypatch.setattr(glmmnb.results, "_singular_components", spy)
    theta = 1.0 if method == "pql" else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = NegBinMixedGLM.from_formula("counts ~ RNAi", data, groups="fake",
                                          theta=theta).fit(method=method)
    cov, scale = seen[-1]                                 # an ML fit starts from PQL's
    np.testing.assert_array_equal(cov, np.asarray(res.cov_re))
    if method == "pql":
        assert scale == res.scale and abs(scale - 1.0) > 0.5
    else:
        assert scale == 1.0
    assert res.is_singular
