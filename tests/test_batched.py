"""The batched core against the single-response core, feature by feature.

Each feature of a block must get the numbers of fitting it alone: the GLM
and glm.nb theta to rounding, the PQL fit to the precision at which the
single fit's optimiser locates the variance optimum (its bounded Brent
search stops within ~1e-8 of the relative SD, where the profiled deviance is
flat to the last digit; the batched Newton iteration on the analytic slope
finds the optimum itself), and the same iteration counts.
"""

import numpy as np
import pytest

from glmmnb.core.batched_glm import fit_nb_glm_batch
from glmmnb.core.batched_theta import CountTables, estimate_theta_batch, theta_ml_batch
from glmmnb.core.batched_pql import GroupDesign, _Stats, _optimize, fit_pql_batch
from glmmnb.core.lmm import Level, _Reducer, _row_structure
from glmmnb.core._blocks import sum_log
from glmmnb.core.nbglm import fit_nb_glm
from glmmnb.core.pql import fit_pql
from glmmnb.core.scaling import standardizing_transform
from glmmnb.core.theta import THETA_MAX, estimate_theta, theta_ml


def simulate(n_features=24, nobs=1200, n_groups=20, seed=0):
    """NB counts with a donor-level condition, a random intercept and a cell-level offset."""
    rng = np.random.default_rng(seed)
    g = rng.permutation(np.repeat(np.arange(n_groups), nobs // n_groups))
    X = np.column_stack([np.ones(nobs), (g % 2).astype(float), rng.normal(size=nobs)])
    off = np.log(rng.uniform(0.5, 2.0, nobs))
    base = rng.normal(-0.5, 1.2, n_features)[:, None]
    re = rng.normal(0.0, 0.3, (n_features, n_groups))[:, g]
    mu = np.exp(base + 0.3 * X[:, 1] + 0.1 * X[:, 2] + off + re)
    theta = rng.uniform(0.5, 20.0, n_features)[:, None]
    Y = rng.negative_binomial(theta, theta / (theta + mu)).astype(float)
    Y[0] = rng.poisson(mu[0])                  # no overdispersion
    Y[1] = rng.poisson(0.02 * np.exp(off))     # tiny counts
    return Y, X, off, g


@pytest.fixture(scope="module")
def case():
    return simulate()


def test_glm_matches_single_fit(case):
    Y, X, off, _ = case
    theta = np.linspace(0.5, 30.0, Y.shape[0])
    theta[3] = np.inf
    batch = fit_nb_glm_batch(Y, X, off, theta)
    for f in range(Y.shape[0]):
        one = fit_nb_glm(Y[f], X, off, theta[f])
        np.testing.assert_allclose(batch.params[f], one.params, rtol=1e-11, atol=1e-12)
        np.testing.assert_allclose(batch.cov_params[f], one.cov_params, rtol=1e-9)
        assert batch.n_iter[f] == one.n_iter and batch.converged[f] == one.converged


def test_theta_ml_and_glm_nb_match_single_fit(case):
    Y, X, off, _ = case
    batch = estimate_theta_batch(Y, X, off)
    for f in range(Y.shape[0]):
        one = estimate_theta(Y[f], X, off)
        if one.theta > 1e4:
            # no overdispersion: the likelihood is flat in theta, and both stop far out
            assert batch.theta[f] > 1e4
            continue
        assert batch.theta[f] == pytest.approx(one.theta, rel=1e-8)
        np.testing.assert_allclose(batch.glm.params[f], one.glm.params, rtol=1e-9, atol=1e-12)
        assert batch.converged[f] == one.converged
    mu = np.repeat(Y.mean(axis=1, keepdims=True), Y.shape[1], axis=1)
    t_batch, _ = theta_ml_batch(Y[2:6], mu[2:6])
    for k, f in enumerate(range(2, 6)):
        assert t_batch[k] == pytest.approx(theta_ml(Y[f], mu[f])[0], rel=1e-9)


def test_runaway_theta_is_flagged_as_in_the_single_fit():
    rng = np.random.default_rng(3)
    Y = rng.poisson(3.0, size=(6, 4000)).astype(float)
    fit = estimate_theta_batch(Y, np.ones((4000, 1)), None)
    for f in range(6):
        one = estimate_theta(Y[f], np.ones((4000, 1)), np.zeros(4000))
        assert fit.at_limit[f] == one.at_limit
        if one.theta < 1e4:
            # a flat likelihood fixes theta only to its rounding noise: compare in SEs
            assert abs(fit.theta[f] - one.theta) <= 1e-6 * one.se_theta
        else:
            assert fit.theta[f] > 1e4
    assert (fit.theta > 1e4).any() and THETA_MAX >= fit.theta.max()


def test_count_tables():
    Y = np.array([[0.0, 2.0, 2.0, 5.0], [1.0, 1.0, 1.0, 1.0], [0.5, 0.0, 0.5, 0.0]])
    t = CountTables(Y)
    for f in range(3):
        vals, cnt = np.unique(Y[f], return_counts=True)
        keep = t.counts[f] > 0
        np.testing.assert_array_equal(t.values[f][keep], vals)
        np.testing.assert_array_equal(t.counts[f][keep], cnt)


def _stats(case, theta=5.0):
    Y, X, off, g = case
    d = GroupDesign(X, off, g, int(g.max()) + 1)
    Ys = d.sort(Y)
    th = np.full(Y.shape[0], theta)
    glm = fit_nb_glm_batch(Ys, d.X, d.offset, th)
    return d, Ys, glm, _Stats(d, Ys, glm.eta, glm.mu, th)


def test_deviance_derivatives_are_the_slope_and_curvature(case):
    _, _, _, st = _stats(case)
    u = np.full(st.a.shape[0], 0.07)
    h = 1e-4
    dev, d1, d2 = st.derivatives(u)
    up, _, _ = st.derivatives(u * np.exp(h))
    down, _, _ = st.derivatives(u * np.exp(-h))
    np.testing.assert_allclose(d1, (up - down) / (2 * h), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(d2, (up - 2 * dev + down) / h ** 2, rtol=1e-3, atol=1e-3)


def test_optimum_is_at_least_as_good_as_the_single_optimiser(case):
    d, Ys, glm, st = _stats(case)
    u, ok = _optimize(st, None)
    assert ok.all()
    w = glm.mu / (1 + glm.mu / 5.0)
    z = glm.eta + (Ys - glm.mu) / glm.mu - d.offset
    lev = [Level(d.codes, d.n_groups, (0,))]
    Z = np.ones((Ys.shape[1], 1))
    for f in range(Ys.shape[0]):
        rows = _row_structure(d.X, Z, lev)
        red = _Reducer(rows.crossproducts(z[f], w[f]), lev, Ys.shape[1], d.X.shape[1],
                       float(sum_log(w[f])))
        from glmmnb.core.lmm_optimize import _optimize as single_optimize

        l_single = single_optimize(red, np.array([1.0]), 1e-12)[0]
        mine = red.deviance(np.array([np.sqrt(u[f])]))
        theirs = red.deviance(l_single)
        assert mine <= theirs + 1e-9 * abs(theirs)
        assert np.sqrt(u[f]) == pytest.approx(l_single[0], rel=1e-6, abs=1e-6)


def test_pql_matches_single_fit(case):
    Y, X, off, g = case
    T = standardizing_transform(X)
    d = GroupDesign(X @ T, off, g, int(g.max()) + 1)
    Ys = d.sort(Y)
    theta = np.linspace(1.0, 20.0, Y.shape[0])
    glm = fit_nb_glm_batch(Ys, d.X, d.offset, theta)
    batch = fit_pql_batch(d, Ys, theta, glm.eta, glm.mu)
    lev = [Level(g, int(g.max()) + 1, (0,))]
    for f in range(Y.shape[0]):
        one = fit_pql(Y[f], X @ T, off, theta[f], np.ones((len(g), 1)), lev)
        bse = np.sqrt(np.diag(one.lmm.cov_params))
        np.testing.assert_allclose(batch.params[f], one.lmm.params, atol=1e-6 * bse.min())
        np.testing.assert_allclose(np.sqrt(np.diag(batch.cov_params[f])), bse, rtol=1e-6)
        assert batch.cov_re[f] == pytest.approx(one.lmm.cov_re[0][0, 0], rel=2e-6, abs=1e-12)
        assert batch.n_iter[f] == one.n_iter
        assert batch.converged[f] == one.converged


def test_a_feature_does_not_depend_on_its_block(case):
    """Bitwise: the same feature fitted in blocks of different sizes gets the same numbers."""
    Y, X, off, g = case
    d = GroupDesign(X, off, g, int(g.max()) + 1)
    Ys = d.sort(Y)
    theta = np.full(Y.shape[0], 4.0)

    def fit(rows):
        glm = fit_nb_glm_batch(Ys[rows], d.X, d.offset, theta[rows])
        return fit_pql_batch(d, Ys[rows], theta[rows], glm.eta, glm.mu)

    whole = fit(np.arange(Y.shape[0]))
    part = fit(np.arange(5, 12))
    np.testing.assert_array_equal(whole.params[5:12], part.params)
    np.testing.assert_array_equal(whole.cov_params[5:12], part.cov_params)
    th_whole = estimate_theta_batch(Ys, d.X, d.offset)
    th_part = estimate_theta_batch(Ys[5:12], d.X, d.offset)
    np.testing.assert_array_equal(th_whole.theta[5:12], th_part.theta)
