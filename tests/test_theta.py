"""theta_ml against MASS::theta.ml (tests/data/r/make_theta_references.R), from any start.

The Newton iteration on log(theta) must land on R's optimum whether it starts
from the moment estimate, far below or far above; the Poisson limit is
reported as such.
"""

import json

import numpy as np
import pytest

from conftest import DATA
from glmmnb.core.theta import THETA_MAX, estimate_theta, theta_ml
from tolerances import assert_close

R = json.loads((DATA / "r" / "theta_unit.json").read_text())


@pytest.mark.parametrize("name", ["seed", "v07_constant_mean"])
@pytest.mark.parametrize("theta0", [None, 1e-6, 1e-2, 1.0, 1e3, 1e7])
def test_theta_ml_matches_r_from_any_start(name, theta0):
    ref = R[name]
    y, mu = np.asarray(ref["y"], float), np.asarray(ref["mu"], float)
    theta, info = theta_ml(y, mu, theta0=theta0)
    assert_close(theta, ref["theta"], "regression", "theta")
    # R's SE is 1 / sqrt(observed information) at its estimate
    assert_close(1.0 / np.sqrt(info), ref["se"], "regression", "bse")


def test_underdispersed_counts_run_to_the_poisson_limit():
    """Variance below the mean: the likelihood increases with theta without bound."""
    y = np.tile([4.0, 5.0, 6.0, 5.0], 50)
    theta, info = theta_ml(y, np.full(y.size, y.mean()))
    assert theta == THETA_MAX
    fit = estimate_theta(y, np.ones((y.size, 1)), np.zeros(y.size))
    assert fit.at_limit and fit.theta == THETA_MAX and fit.se_theta == np.inf
    assert fit.converged
    # the GLM is then the Poisson GLM: its mean is the sample mean
    assert float(np.exp(fit.glm.params[0])) == pytest.approx(5.0, rel=1e-10)


def test_alternation_cut_short_is_not_converged():
    """One glm.nb alternation cannot reach the joint optimum: say so."""
    ref = R["seed"]
    y = np.asarray(ref["y"], float)
    X = np.column_stack([np.ones(y.size), np.repeat([0.0, 0.0, 1.0, 1.0], 50)])  # RNAi
    full = estimate_theta(y, X, np.zeros(y.size))
    short = estimate_theta(y, X, np.zeros(y.size), maxiter=1)
    assert full.converged and not short.converged and short.n_iter == 1


@pytest.mark.parametrize("theta0", [2e6, 1e7, THETA_MAX])
def test_poisson_side_read_off_the_leading_term(theta0):
    """Past 1e6 the score is rounding noise; underdispersion still means the limit.

    Hand calculation: the score's leading term is sum(y - (y - mu)^2) / (2 theta^2),
    here (1000 - 100) / (2 theta^2) > 0 for means a rounding away from the mean.
    """
    from glmmnb.core.batched_theta import theta_ml_batch

    y = np.tile([4.0, 5.0, 6.0, 5.0], 50)
    mu = np.full(y.size, 5.0 * (1 + 1e-12))
    assert theta_ml(y, mu, theta0=theta0)[0] == THETA_MAX
    theta, _ = theta_ml_batch(np.vstack([y, y]), np.vstack([mu, mu]), theta0=np.full(2, theta0))
    assert theta.tolist() == [THETA_MAX, THETA_MAX]
    # overdispersed counts keep a finite estimate from the same far start
    y2 = np.tile([0.0, 10.0, 2.0, 8.0], 50)
    assert theta_ml(y2, np.full(y2.size, 5.0), theta0=theta0)[0] < 10
    far, _ = theta_ml_batch(y2[None], np.full((1, y2.size), 5.0), theta0=np.array([theta0]))
    assert far[0] == pytest.approx(theta_ml(y2, np.full(y2.size, 5.0))[0], rel=1e-8)


def _nb_data(n=3000, seed=11, offset=True):
    rng = np.random.default_rng(seed)
    X = np.column_stack([np.ones(n), rng.normal(size=n), rng.integers(0, 2, n)])
    off = rng.normal(0.0, 0.3, n) if offset else np.zeros(n)
    mu = np.exp(X @ [1.2, 0.4, -0.3] + off)
    y = rng.negative_binomial(2.5, 2.5 / (2.5 + mu)).astype(float)
    return y, X, off


def test_joint_pass_is_the_nb_likelihood_and_its_derivatives():
    """Log-likelihood, gradient and Hessian in (beta, log theta) of one pass, against
    negbin.loglike and central differences; X'WX and theta's information by hand."""
    from glmmnb.core import negbin
    from glmmnb.core.theta import _CountTable, _JointPass, _score_info

    y, X, off = _nb_data()
    table = _CountTable(y)
    XT = np.ascontiguousarray(X.T)

    def ll(v):
        return negbin.loglike(y, np.exp(X @ v[:3] + off), float(np.exp(v[3])))

    point = np.array([1.1, 0.35, -0.25, np.log(2.0)])
    jp = _JointPass(y, XT, off, point[:3], 2.0, table)
    mu = np.exp(X @ point[:3] + off)
    assert jp.loglike == pytest.approx(ll(point), rel=1e-13)
    h = 1e-5
    eye = np.eye(4) * h
    num_grad = np.array([(ll(point + e) - ll(point - e)) / (2 * h) for e in eye])
    np.testing.assert_allclose(jp.grad, num_grad, rtol=1e-6, atol=1e-6)

    def grad_at(v):
        return _JointPass(y, XT, off, v[:3], float(np.exp(v[3])), table).grad

    num_hess = np.array([(grad_at(point + e) - grad_at(point - e)) / (2 * h) for e in eye])
    np.testing.assert_allclose(jp.hess, num_hess, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(jp.hess, jp.hess.T, rtol=1e-13)
    w = 2.0 * mu / (mu + 2.0)
    np.testing.assert_allclose(jp.cov_params(), np.linalg.inv(X.T @ (w[:, None] * X)),
                               rtol=1e-10)
    assert jp.info_theta == pytest.approx(_score_info(2.0, y, mu, table)[1], rel=1e-10)
    no_offset = _JointPass(y, XT, None, point[:3], 2.0, table)
    assert no_offset.loglike == pytest.approx(
        negbin.loglike(y, np.exp(X @ point[:3]), 2.0), rel=1e-13)


@pytest.mark.parametrize("offset", [True, False])
def test_joint_newton_lands_on_the_alternations_maximum(offset):
    """From a start 5 % off, Newton's steps on (beta, log theta) reach glm.nb's joint
    maximum (the alternation on all rows) in a few passes, with the same GLM."""
    from glmmnb.core.nbglm import fit_nb_glm
    from glmmnb.core.theta import _alternate, _CountTable, _joint_newton

    y, X, off = _nb_data(offset=offset)
    table = _CountTable(y)
    ref = _alternate(y, X, off, 1e-12, 200, table)
    fit = _joint_newton(y, X, off, ref.glm.params * 1.05, ref.theta * 1.05, table)
    assert fit is not None
    assert fit.converged is True and fit.at_limit is False and 2 <= fit.n_iter <= 6
    assert fit.theta == pytest.approx(ref.theta, rel=1e-10)
    assert fit.se_theta == pytest.approx(ref.se_theta, rel=1e-8)
    assert fit.loglike == pytest.approx(ref.loglike, rel=1e-13)
    np.testing.assert_allclose(fit.glm.params, ref.glm.params, rtol=1e-9)
    np.testing.assert_allclose(fit.glm.mu, np.exp(X @ fit.glm.params + off), rtol=1e-13)
    np.testing.assert_allclose(fit.glm.eta, X @ fit.glm.params + off, rtol=1e-13)
    at = fit_nb_glm(y, X, off, fit.theta, start=fit.glm.params)
    np.testing.assert_allclose(fit.glm.cov_params, at.cov_params, rtol=1e-7)
    assert fit.glm.converged is True and fit.glm.n_iter == fit.n_iter


@pytest.mark.parametrize("n, joint", [(10_000, False), (12_000, True)])
def test_large_data_take_the_subsample_start_and_the_joint_steps(n, joint, monkeypatch):
    """Above 2 * START_ROWS rows the alternation sees only the subsample (its
    distinct draws), and the joint steps finish; at or below, it sees all rows.
    A broken start or joint step would fall back to the alternation on all rows
    and give the same theta, only slower, so the route is what is checked."""
    from glmmnb.core import theta as theta_mod

    y, X, off = _nb_data(n=n)
    seen = []
    real = theta_mod._alternate

    def spy(y_, *args):
        seen.append(len(y_))
        return real(y_, *args)

    monkeypatch.setattr(theta_mod, "_alternate", spy)
    fit = estimate_theta(y, X, off)
    if joint:
        assert len(seen) == 1 and 0.6 * theta_mod.START_ROWS < seen[0] <= theta_mod.START_ROWS
    else:
        assert seen == [n]
    assert fit.converged and fit.theta == pytest.approx(real(
        y, X, off, 1e-12, 200, theta_mod._CountTable(y)).theta, rel=1e-9)


def test_subsample_start_is_reproducible_and_honours_the_offset(monkeypatch):
    from glmmnb.core import theta as theta_mod

    y, X, off = _nb_data(n=12_000)
    one = theta_mod._subsample_start(y, X, off, 1e-10, 100)
    two = theta_mod._subsample_start(y, X, off, 1e-10, 100)
    assert one[1] == two[1] and np.array_equal(one[0], two[0])
    # where the joint steps give up, the alternation on all rows keeps the offset
    monkeypatch.setattr(theta_mod, "_joint_newton", lambda *a: None)
    fit = estimate_theta(y, X, off)
    ref = theta_mod._alternate(y, X, off, 1e-10, 100, theta_mod._CountTable(y))
    assert fit.theta == ref.theta and fit.n_iter == ref.n_iter


def test_poisson_side_is_read_per_feature_in_a_batch():
    from glmmnb.core.batched_theta import theta_ml_batch

    under = np.tile([4.0, 5.0, 6.0, 5.0], 50)
    over = np.tile([0.0, 10.0, 2.0, 8.0], 50)
    # the under-dispersed feature's means a rounding off its mean, as above
    mu = np.vstack([np.full(200, 5.0 * (1 + 1e-12)), np.full(200, 5.0)])
    theta, _ = theta_ml_batch(np.vstack([under, over]), mu, theta0=np.full(2, 1e7))
    assert theta[0] == THETA_MAX
    assert theta[1] == pytest.approx(theta_ml(over, np.full(200, 5.0))[0], rel=1e-8)
