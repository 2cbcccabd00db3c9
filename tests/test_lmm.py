"""The inner weighted LMM solver against statsmodels' MixedLM and a dense computation."""

import warnings

import numpy as np
import pytest
import statsmodels.api as sm

from glmmnb.core.lmm import Level, fit_lmm, group_crossproducts


def _simulate(seed, n_groups=25, size=12, slope=False):
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(n_groups), size)
    x = rng.normal(size=g.size)
    X = np.column_stack([np.ones(g.size), x, rng.integers(0, 2, n_groups)[g]])
    b0 = rng.normal(scale=0.7, size=n_groups)[g]
    b1 = rng.normal(scale=0.4, size=n_groups)[g] if slope else 0.0
    y = X @ [1.0, 0.5, -0.3] + b0 + b1 * x + rng.normal(size=g.size)
    return g, X, y


def test_group_crossproducts_match_dense_sums():
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 5, 50)
    A = rng.normal(size=(50, 3))
    w = rng.uniform(0.5, 2, 50)
    T = group_crossproducts(codes, 5, A, w)
    for g in range(5):
        Ag = A[codes == g]
        np.testing.assert_allclose(T[g], Ag.T @ (w[codes == g, None] * Ag))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_intercept_matches_mixedlm_ml(seed):
    g, X, y = _simulate(seed)
    ours = fit_lmm(X, y, np.ones_like(y), np.ones((len(y), 1)), [Level(g, 25, (0,))])
    sm_fit = sm.MixedLM(y, X, groups=g).fit(reml=False)
    np.testing.assert_allclose(ours.params, sm_fit.fe_params, rtol=1e-5)
    assert ours.scale == pytest.approx(sm_fit.scale, rel=1e-4)
    assert ours.cov_re[0][0, 0] == pytest.approx(np.asarray(sm_fit.cov_re)[0, 0], rel=1e-3)
    assert ours.deviance == pytest.approx(-2 * sm_fit.llf, rel=1e-8)


def test_random_slope_matches_mixedlm_ml():
    g, X, y = _simulate(3, slope=True)
    Z = X[:, :2]
    ours = fit_lmm(X, y, np.ones_like(y), Z, [Level(g, 25, (0, 1))])
    sm_fit = sm.MixedLM(y, X, groups=g, exog_re=Z).fit(reml=False, method="lbfgs")
    np.testing.assert_allclose(ours.params, sm_fit.fe_params, rtol=1e-4)
    np.testing.assert_allclose(ours.cov_re[0], np.asarray(sm_fit.cov_re), rtol=1e-3, atol=1e-5)
    assert ours.deviance == pytest.approx(-2 * sm_fit.llf, rel=1e-7)


def _dense_deviance(X, y, w, Z_full, G, sigma2_ratio_blocks):
    """-2 loglik at the profiled beta and sigma^2, from the dense N x N V (small N only)."""
    n = len(y)
    V = np.diag(1 / w) + Z_full @ sigma2_ratio_blocks @ Z_full.T
    Vi = np.linalg.inv(V)
    beta = np.linalg.solve(X.T @ Vi @ X, X.T @ Vi @ y)
    r = y - X @ beta
    s2 = r @ Vi @ r / n
    return n * np.log(2 * np.pi * s2) + n + np.linalg.slogdet(V)[1]


def test_weighted_nested_deviance_matches_dense_formula():
    rng = np.random.default_rng(5)
    outer = np.repeat(np.arange(4), 30)
    inner_lab = np.tile(np.repeat(np.arange(3), 10), 4)
    inner = outer * 3 + inner_lab
    X = np.column_stack([np.ones(120), rng.normal(size=120)])
    y = 1 + rng.normal(size=4)[outer] + rng.normal(size=12)[inner] + rng.normal(size=120)
    w = rng.uniform(0.3, 3, 120)
    levels = [Level(outer, 4, (0,)), Level(inner, 12, (0,), np.repeat(np.arange(4), 3))]
    fit = fit_lmm(X, y, w, np.ones((120, 1)), levels)
    Zo = (outer[:, None] == np.arange(4)).astype(float)
    Zi = (inner[:, None] == np.arange(12)).astype(float)
    psi = np.diag(np.r_[np.full(4, fit.theta[0] ** 2), np.full(12, fit.theta[1] ** 2)])
    dense = _dense_deviance(X, y, w, np.hstack([Zo, Zi]), 16, psi)
    assert fit.deviance == pytest.approx(dense, rel=1e-9)
    # the optimum: nudging either variance ratio does not lower the dense deviance
    for k in range(2):
        for step in (0.9, 1.1):
            t = fit.theta.copy()
            t[k] *= step
            psi_k = np.diag(np.r_[np.full(4, t[0] ** 2), np.full(12, t[1] ** 2)])
            assert _dense_deviance(X, y, w, np.hstack([Zo, Zi]), 16, psi_k) >= dense - 1e-8


def test_blups_match_dense_conditional_mean():
    g, X, y = _simulate(7)
    w = np.random.default_rng(1).uniform(0.5, 2.0, len(y))
    fit = fit_lmm(X, y, w, np.ones((len(y), 1)), [Level(g, 25, (0,))])
    Zf = (g[:, None] == np.arange(25)).astype(float)
    psi = fit.cov_re[0][0, 0] / fit.scale
    V = np.diag(1 / w) + psi * Zf @ Zf.T
    b = psi * Zf.T @ np.linalg.solve(V, y - X @ fit.params)
    np.testing.assert_allclose(fit.random_effects[0][:, 0], b, rtol=1e-6, atol=1e-10)
    np.testing.assert_allclose(fit.fitted, X @ fit.params + Zf @ b, rtol=1e-8)


@pytest.mark.parametrize("q", [2, 3])
def test_gradient_falls_back_to_forward_differences(q, monkeypatch):
    """Where the closed form gives up (a trial M_g not numerically PD), L-BFGS-B
    gets the forward difference of the deviance with step 1e-7, which agrees
    with the exact gradient to about that step."""
    import glmmnb.core.lmm_optimize as opt
    from glmmnb.core.lmm import _Reducer

    rng = np.random.default_rng(7)
    G, m = 12, 10
    g = np.repeat(np.arange(G), m)
    Z = np.column_stack([np.ones(G * m)] + [rng.normal(size=G * m) for _ in range(q - 1)])
    X = Z[:, :2]
    z = X @ [1.0, 0.5] + (rng.normal(size=(G, q)) * 0.5)[g].sum(axis=1) + rng.normal(size=G * m)
    T = group_crossproducts(g, G, np.column_stack([Z, X, z]), np.ones(G * m))
    red = _Reducer(T, [Level(g, G, tuple(range(q)))], G * m, 2, 0.0)
    theta = np.concatenate([np.eye(q)[np.tril_indices(q)] * 0.7]) + 0.05
    f_exact, g_exact = opt._deviance_and_gradient(red)(theta)
    monkeypatch.setattr(opt, "_single_level_gradient", lambda red, theta: None)
    monkeypatch.setattr(opt, "_pair_gradient", lambda red, theta: None)
    f, grad = opt._deviance_and_gradient(red)(theta)
    assert f == pytest.approx(f_exact, rel=1e-12)
    # forward differences: off by ~ step * curvature, so 1e-5 absolute here
    np.testing.assert_allclose(grad, g_exact, rtol=1e-4, atol=1e-5)
    assert np.all(np.abs(grad - g_exact) > 0)            # a difference, not the closed form


def test_newton_polish_keeps_brents_point_where_it_cannot_step():
    """A singular X'V^-1X, a flat or concave deviance, or an uphill step: Brent's point stands."""
    from glmmnb.core.lmm_optimize import _newton_polish

    class Singular:
        def derivatives_scalar(self, l):
            raise np.linalg.LinAlgError("Singular matrix")

    class Curved:
        """deviance (s - s0)^2 + c in s = log(l^2), optionally flat or uphill."""

        def __init__(self, s0, curvature=2.0, uphill=False):
            self.s0, self.c, self.uphill = s0, curvature, uphill

        def derivatives_scalar(self, l):
            s = np.log(l * l)
            dev = self.c / 2 * (s - self.s0) ** 2
            return (dev if not self.uphill or s == np.log(4.0) else dev + 1.0,
                    self.c * (s - self.s0), self.c)

    assert _newton_polish(Singular(), 2.0, 1.0) == (2.0, False)
    assert _newton_polish(Curved(np.log(4.0) + 1e-3, curvature=1e-4), 2.0, 0.0) == (2.0, False)
    assert _newton_polish(Curved(np.log(4.0) + 0.3, uphill=True), 2.0, 0.0) == (2.0, False)
    # a quadratic: one Newton step lands on the optimum exactly, the next is 0
    l, done = _newton_polish(Curved(np.log(4.0) + 0.3), 2.0, 1.0)
    assert l == pytest.approx(np.exp((np.log(4.0) + 0.3) / 2), rel=1e-14) and done
    # ... unless steps run out first: the point stands, not converged
    l, done = _newton_polish(Curved(np.log(4.0) + 0.3), 2.0, 1.0, steps=1)
    assert l == pytest.approx(np.exp((np.log(4.0) + 0.3) / 2), rel=1e-14) and not done
    # a step is at most 0.5 in log(l^2), however far Newton would go
    far, done = _newton_polish(Curved(np.log(4.0) + 3.0), 2.0, 10.0, steps=1)
    assert far == pytest.approx(2.0 * np.exp(0.25), rel=1e-14) and not done
    near, _ = _newton_polish(Curved(np.log(4.0) - 3.0), 2.0, 10.0, steps=1)
    assert near == pytest.approx(2.0 * np.exp(-0.25), rel=1e-14)
    # a step out of the bracket ends the search where it stands
    assert _newton_polish(Curved(np.log(4.0) + 0.3), 2.0, 1.0, bracket=(1.0, 2.1)) == (
        2.0, False)
    assert _newton_polish(Curved(np.log(4.0) - 0.3), 2.0, 1.0, bracket=(1.9, 3.0)) == (
        2.0, False)
    l, done = _newton_polish(Curved(np.log(4.0) + 0.3), 2.0, 1.0, bracket=(1.9, 3.0))
    assert done and l == pytest.approx(np.exp((np.log(4.0) + 0.3) / 2), rel=1e-14)


def test_scalar_optimum_by_newton_or_brent_is_the_same(monkeypatch):
    """Newton from the grid (the fast path) and Brent then the polish (where Newton
    cannot finish) reach the same optimum, to the polish's precision."""
    import glmmnb.core.lmm_optimize as opt
    from glmmnb.core.lmm import _Reducer

    rng = np.random.default_rng(3)
    G, m = 30, 8
    g = np.repeat(np.arange(G), m)
    X = np.column_stack([np.ones(G * m), rng.normal(size=G * m)])
    z = X @ [1.0, 0.3] + rng.normal(size=G)[g] * 0.7 + rng.normal(size=G * m)
    w = rng.uniform(0.5, 2.0, G * m)
    T = group_crossproducts(g, G, np.column_stack([np.ones(G * m), X, z]), w)
    red = _Reducer(T, [Level(g, G, (0,))], G * m, 2, float(np.log(w).sum()))
    calls = []
    orig = opt.optimize.minimize_scalar

    def brent(*args, **kwargs):
        calls.append(1)
        return orig(*args, **kwargs)

    monkeypatch.setattr(opt.optimize, "minimize_scalar", brent)
    fast, ok = opt._optimize_scalar(red, 0.5)
    assert ok and not calls                           # Newton finished: no Brent
    monkeypatch.setattr(opt, "_NEWTON_STEPS", 0)      # Newton cannot finish: Brent
    with warnings.catch_warnings():
        warnings.simplefilter("error")                # Brent's options are all known ones
        slow, ok2 = opt._optimize_scalar(red, 0.5)
    assert ok2 and calls
    np.testing.assert_allclose(fast, slow, rtol=1e-9)
    # and it is a minimum: the slope in log(l^2) vanishes there
    _, slope, curv = red.derivatives_scalar(fast[0])
    assert abs(slope) < 1e-8 and curv > 0


def test_group_crossproducts_of_integer_columns_are_float():
    g = np.array([0, 0, 1, 1, 1])
    A = np.array([[1, 2], [1, 3], [1, 0], [1, 5], [1, 1]])
    w = np.array([1, 2, 1, 1, 3])
    T = group_crossproducts(g, 2, A, w)
    # hand calculation: T_g = sum over the group's rows of w a a'
    want = np.array([[[3.0, 8.0], [8.0, 22.0]], [[5.0, 8.0], [8.0, 28.0]]])
    assert T.dtype == np.float64
    np.testing.assert_array_equal(T, want)
    np.testing.assert_array_equal(group_crossproducts(g, 2, A / 2, w / 2), want / 8)


def test_three_coefficients_inner_fit_on_rs_working_data():
    """glmmPQL's last inner lme of x10 (3 x 3 covariance), on R's own zz and invwt.

    The deviance at R's estimates equals R's ML log-likelihood (the 3 x 3
    Cholesky route: log-determinants, solves), and the optimum glmmnb finds
    is at least as high: nlme stops 3.9e-10 below it (the reason x10 is in
    ``tolerances.FLAT_OPTIMUM``).
    """
    import json

    import pandas as pd

    from conftest import DATA, lmm_reducer

    folder = DATA / "r" / "x10_three_coefficients"
    d = pd.read_csv(folder / "data.csv")
    work = pd.read_csv(folder / "working.csv")
    ref = json.loads((folder / "working.json").read_text())
    codes, labels = pd.factorize(d["slide"], sort=True)
    X = np.column_stack([np.ones(len(d)), d["treatment"] == "target", d["area"], d["depth"]])
    Z = np.column_stack([np.ones(len(d)), d["area"], d["depth"]])
    z, w = work["zz"].to_numpy(), 1.0 / work["invwt"].to_numpy()
    levels = [Level(codes, len(labels), (0, 1, 2))]
    fit = fit_lmm(X, z, w, Z, levels)
    red = lmm_reducer(levels, X, Z, z, w)
    L = np.linalg.cholesky(np.asarray(ref["cov_re"]) / ref["sigma"] ** 2)
    at_r = red.deviance(L[np.tril_indices(3)])
    assert at_r == pytest.approx(-2 * ref["loglik"], rel=1e-12)
    assert fit.deviance <= at_r + 1e-11
    assert fit.converged
    np.testing.assert_allclose(fit.params, ref["params"], rtol=1e-5)
    np.testing.assert_allclose(fit.cov_re[0], ref["cov_re"], rtol=2e-4, atol=1e-6)
    assert fit.deviance == pytest.approx(red.deviance(fit.theta), rel=1e-12)
    # BLUPs and fitted values by the dense formula, group by group:
    # b_g = Psi Z_g' V_g^-1 (z_g - X_g beta), V_g = Z_g Psi Z_g' + scale W_g^-1
    psi, r = fit.cov_re[0], z - X @ fit.params
    for g in range(len(labels)):
        rows = codes == g
        Zg = Z[rows]
        V = Zg @ psi @ Zg.T + np.diag(fit.scale / w[rows])
        blup = psi @ Zg.T @ np.linalg.solve(V, r[rows])
        np.testing.assert_allclose(fit.random_effects[0][g], blup,
                                   rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(
        fit.fitted, X @ fit.params + np.einsum("ij,ij->i", Z, fit.random_effects[0][codes]),
        rtol=1e-12)


def _one_row_per_group_reducer():
    from conftest import lmm_reducer

    rng = np.random.default_rng(0)
    n = 30
    X = np.column_stack([np.ones(n), rng.normal(size=n)])
    levels = [Level(np.arange(n), n, (0,))]
    return lmm_reducer(levels, X, np.ones((n, 1)), rng.normal(size=n), np.ones(n))


def test_an_exact_fit_is_an_infinite_deviance_not_minus_infinity():
    """One row per group: at an SD ratio of 1e8 the random intercepts absorb every
    residual and r^2 rounds to 0.  log(0) would make that the best point of the
    search (-inf); the deviance is +inf there, by both routes."""
    red = _one_row_per_group_reducer()
    ls = np.array([1.0, 1e3, 1e8, 1e10])
    dev = red.deviance_scalar(ls)
    assert np.all(np.isfinite(dev[:2])) and np.all(dev[2:] == np.inf)
    assert [red.deviance(np.array([v])) for v in ls[2:]] == [np.inf, np.inf]
    np.testing.assert_allclose(dev[:2], [red.deviance(np.array([v])) for v in ls[:2]],
                               rtol=1e-12)


def test_the_optimisers_convergence_flag_reaches_the_fit(monkeypatch):
    import glmmnb.core.lmm as lmm

    g, X, y = _simulate(0)
    real = lmm._optimize
    monkeypatch.setattr(lmm, "_optimize", lambda *a: (real(*a)[0], False))
    fit = fit_lmm(X, y, np.ones_like(y), np.ones((len(y), 1)), [Level(g, 25, (0,))])
    assert fit.converged is False
    monkeypatch.setattr(lmm, "_optimize", real)
    assert fit_lmm(X, y, np.ones_like(y), np.ones((len(y), 1)), [Level(g, 25, (0,))]).converged


@pytest.mark.parametrize("A, minor", [
    (np.array([[0.0, 0.0], [0.0, 1.0]]), 1),
    (np.array([[-1.0, 0.0], [0.0, 1.0]]), 1),
    (np.array([[1.0, 2.0], [2.0, 1.0]]), 2),
])
def test_cho_solve_refuses_what_is_not_positive_definite(A, minor):
    """scipy's cho_factor's error, which solve_fixed turns into its least-squares fallback."""
    from glmmnb.core.lmm import _cho_solve

    with pytest.raises(np.linalg.LinAlgError, match=f"^{minor}-th leading minor"):
        _cho_solve(A, np.ones(2))


def test_cho_solve_solves():
    from glmmnb.core.lmm import _cho_solve

    A = np.array([[4.0, 1.0, 0.5], [1.0, 3.0, 0.2], [0.5, 0.2, 2.0]])
    b = np.array([1.0, -2.0, 0.5])
    np.testing.assert_allclose(_cho_solve(A, b), np.linalg.solve(A, b), rtol=1e-14)
    np.testing.assert_allclose(_cho_solve(A, b, lower=False), np.linalg.solve(A, b), rtol=1e-14)


def test_non_finite_cross_products_are_a_clear_error():
    red = _one_row_per_group_reducer()
    S = red.T_inner.sum(axis=0).copy()
    S[-1, -1] = np.inf
    with pytest.raises(ValueError, match=r"^the working LMM's cross-products are not finite: "
                                         r"the working weights or response overflowed "
                                         r"\(fitted means at 0 or beyond 1e308\)$"):
        red.solve_fixed(S)


def test_a_singular_fixed_effects_block_falls_back_to_least_squares():
    """A trial covariance that absorbs a fixed effect leaves ``X' V^-1 X`` singular;
    the deviance stays finite: beta from least squares, r^2 the residual sum of
    squares of that fit (here: the duplicated column, by hand)."""
    from glmmnb.core.lmm import _Reducer

    rng = np.random.default_rng(4)
    x, z = rng.normal(size=40), rng.normal(size=40)
    A = np.column_stack([np.ones(40), x, x, z])          # [Z, X (x twice), z]
    S = A.T @ A
    red = _Reducer(np.zeros((1, 4, 4)), [Level(np.zeros(40, int), 1, (0,))], 40, 2, 0.0)
    beta, r2, _ = red.solve_fixed(S)
    slope = (x @ z) / (x @ x)
    np.testing.assert_allclose(beta, [slope / 2, slope / 2], rtol=1e-10)
    assert r2 == pytest.approx(float(((z - slope * x) ** 2).sum()), rel=1e-10)


@pytest.mark.parametrize("layout", ["sorted", "shuffled", "two_rows_reversed", "one_row",
                                    "across_blocks"])
def test_group_rows_give_the_plain_group_sums(layout):
    """The reordered, block-wise cross-products of ``_GroupRows`` against
    ``group_crossproducts`` on the same columns: intercepts, a per-group
    constant, a repeated column, a varying one and the response."""
    from glmmnb.core._blocks import BLOCK
    from glmmnb.core.lmm import _GroupRows

    rng = np.random.default_rng(7)
    sizes = {"sorted": (6, 40), "shuffled": (6, 40), "two_rows_reversed": (2, 2),
             "one_row": (1, 1), "across_blocks": (3, BLOCK + 500)}
    G, n = sizes[layout]
    codes = np.sort(rng.integers(0, G, n))
    codes[:G] = np.arange(G)
    codes = np.sort(codes)
    if layout == "shuffled":
        codes = rng.permutation(codes)
    elif layout == "two_rows_reversed":
        codes = np.array([1, 0])
    ones, x = np.ones(n), rng.normal(size=n)
    per_group = rng.normal(size=G)[codes]
    F = [ones, x, ones, per_group, x]
    z, w = rng.normal(size=n), rng.uniform(0.5, 2.0, n)
    got = _GroupRows(codes, G, F).crossproducts(z, w)
    want = group_crossproducts(codes, G, np.column_stack(F + [z]), w)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_a_deviance_still_falling_at_the_largest_sd_is_not_converged():
    """The grid is extended a decade at a time up to 1e8 residual SDs; a deviance
    still falling there is reported at the cap and as not converged."""
    from glmmnb.core import lmm_optimize as opt

    class Falling:
        def deviance_scalar(self, ls):
            return -np.log1p(np.square(np.asarray(ls, float)))

    theta, ok = opt._optimize_scalar(Falling(), 0.0)
    assert not ok
    assert theta.shape == (1,) and opt._SCALAR_MAX <= theta[0] < 10 * opt._SCALAR_MAX


def test_a_random_slope_fit_raises_no_optimizer_warning():
    """L-BFGS-B's options are all ones scipy knows (an unknown key is an OptimizeWarning)."""
    import warnings

    g, X, y = _simulate(4, slope=True)
    Z = np.column_stack([np.ones(len(y)), X[:, 1]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit = fit_lmm(X, y, np.ones_like(y), Z, [Level(g, 25, (0, 1))])
    assert fit.converged


@pytest.mark.parametrize("value", [1.0, 2.0, 0.5])
def test_fitted_values_of_a_group_constant_random_coefficient(value):
    """A single random coefficient on a column constant in every group (the intercept,
    or a per-slide dose): fitted = X beta + z_g b_g, whatever the constant."""
    g, X, y = _simulate(1)
    Z = np.full((len(y), 1), value)
    fit = fit_lmm(X, y, np.ones_like(y), Z, [Level(g, 25, (0,))])
    b = fit.random_effects[0][:, 0]
    np.testing.assert_allclose(fit.fitted, X @ fit.params + value * b[g], rtol=1e-12)
