"""nlme's between/within denominator df, on hand-built designs with known answers."""

import numpy as np

from glmmnb.core.ddf import is_constant, nlme_ddf


def test_seed_design():
    slide = np.repeat(np.arange(4), 50)
    X = np.column_stack([np.ones(200), slide >= 2])
    assert nlme_ddf(X, [slide]).tolist() == [196, 2]


def test_within_covariate_gets_residual_df():
    slide = np.repeat(np.arange(10), 20)
    rng = np.random.default_rng(0)
    X = np.column_stack([np.ones(200), slide % 2, rng.normal(size=200)])
    # level 1: 10 - 1 - 1 = 8; residual: 200 - 10 - 1 = 189
    assert nlme_ddf(X, [slide]).tolist() == [189, 8, 189]


def test_nested_term_between_slides_within_experiments():
    experiment = np.repeat(np.arange(3), 120)
    slide = np.repeat(np.arange(12), 30)
    X = np.column_stack([np.ones(360), slide % 2])
    assert nlme_ddf(X, [experiment, slide]).tolist() == [348, 8]


def test_no_intercept_follows_nlme():
    slide = np.repeat(np.arange(4), 5)
    X = np.column_stack([slide < 2, slide >= 2]).astype(float)
    # no constant column: getFixDF adds one to the inner levels instead
    assert nlme_ddf(X, [slide]).tolist() == [2, 2]


def test_zero_between_df():
    slide = np.repeat(np.arange(2), 5)
    X = np.column_stack([np.ones(10), slide])
    assert nlme_ddf(X, [slide]).tolist() == [8, 0]


def test_is_constant_relative_tolerance():
    assert is_constant(np.full(4, 3.0) * (1 + 1e-12))
    assert not is_constant(np.array([0.0, 1e-3]))
    assert is_constant(np.zeros(3))


def _no_intercept_designs():
    """3 experiments x 4 slides x 5 cells; g constant within experiments, dose within slides."""
    experiment = np.repeat(np.arange(3), 20)
    slide = np.repeat(np.arange(12), 5)
    ga = (experiment != 1).astype(float)
    dose = np.tile([0.0, 1.0, 2.0, 3.0], 3)[slide]
    x = np.sin(np.arange(60.0))               # varies within slides
    return experiment, slide, ga, dose, x


def test_no_intercept_with_a_within_column_matches_r():
    """R: lme(y ~ 0 + g + x, random = ~ 1 | slide, method = "ML")$fixDF$X is 10 10 48."""
    _, slide, ga, _, x = _no_intercept_designs()
    out = nlme_ddf(np.column_stack([ga, 1 - ga, x]), [slide])
    assert out.tolist() == [10, 10, 48]


def test_no_intercept_nested_matches_r():
    """R: lme(y ~ 0 + g + dose + x, random = ~ 1 | experiment / slide, method = "ML")
    $fixDF$X is 1 1 9 48: without an intercept every inner level gets one back."""
    experiment, slide, ga, dose, x = _no_intercept_designs()
    out = nlme_ddf(np.column_stack([ga, 1 - ga, dose, x]), [experiment, slide])
    assert out.tolist() == [1, 1, 9, 48]


def test_ddf_are_integers():
    slide = np.repeat(np.arange(4), 50)
    out = nlme_ddf(np.column_stack([np.ones(200), slide >= 2]), [slide])
    assert out.dtype.kind == "i"


def test_is_constant_edge_cases():
    assert is_constant(np.array([5.0]))            # one value is constant
    assert not is_constant(np.array([]))           # nothing to be constant
    # a tiny first value is not "zero": the test stays relative
    assert not is_constant(np.array([1e-9, 0.0]))
    # the tolerance is strict: exactly sqrt(eps) = 2**-26 apart is not constant
    assert not is_constant(np.array([1.0, 1.0 + 2.0 ** -26]))
    assert is_constant(np.array([1.0, 1.0 + 2.0 ** -27]))
