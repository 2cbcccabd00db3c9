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
