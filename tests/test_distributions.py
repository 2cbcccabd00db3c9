"""ML count-distribution fits and QQ coordinates against stored R numbers.

The numbers come from tests/data/fitdistr_seed.R (MASS::fitdistr, glm.nb and
car::qqPlot on the seed counts); R is not called here.
"""

import json
import pathlib

import numpy as np
import pandas as pd
import pytest

from glmmnb.workflows.distributions import fit_negbin, fit_poisson, ppoints, qq_points

DATA = pathlib.Path(__file__).parent / "data"
SEED_CSV = pathlib.Path(__file__).parents[1] / "glmmnb/datasets/microscopy/microscopy.csv"


@pytest.fixture(scope="module")
def r_numbers():
    return json.loads((DATA / "fitdistr_seed.json").read_text())


@pytest.fixture(scope="module")
def counts():
    return pd.read_csv(SEED_CSV)["counts"].to_numpy()


def test_poisson_matches_fitdistr(counts, r_numbers):
    r = r_numbers["fitdistr"]["poisson"]
    fit = fit_poisson(counts)
    assert fit.name == "poisson" and fit.nobs == r["n"] == 200
    assert fit.params["lambda"] == pytest.approx(r["estimate"]["lambda"], rel=1e-12)
    assert fit.bse["lambda"] == pytest.approx(r["sd"]["lambda"], rel=1e-12)
    assert fit.loglike == pytest.approx(r["loglik"], rel=1e-12)


def test_negbin_matches_fitdistr(counts, r_numbers):
    r = r_numbers["fitdistr"]["negative_binomial"]
    fit = fit_negbin(counts)
    assert fit.name == "negative binomial" and fit.nobs == r["n"]
    for key in ("size", "mu"):
        assert fit.params[key] == pytest.approx(r["estimate"][key], rel=1e-3), key
        assert fit.bse[key] == pytest.approx(r["sd"][key], rel=1e-2), key
    assert fit.loglike == pytest.approx(r["loglik"], rel=1e-8)


def test_negbin_is_the_exact_maximum(counts, r_numbers):
    # fitdistr's BFGS stops short; glm.nb(counts ~ 1) reaches the optimum.
    r = r_numbers["glm_nb_intercept"]
    fit = fit_negbin(counts)
    assert fit.params["size"] == pytest.approx(r["theta"], rel=1e-8)
    assert fit.params["mu"] == pytest.approx(r["mu"], rel=1e-12)
    assert fit.bse["size"] == pytest.approx(r["se_theta"], rel=1e-4)
    assert fit.loglike == pytest.approx(r["loglik"], rel=1e-12)
    assert fit.loglike >= r_numbers["fitdistr"]["negative_binomial"]["loglik"]


def test_negbin_rejects_underdispersed_counts():
    with pytest.raises(ValueError, match="not overdispersed"):
        fit_negbin([3, 4, 4, 5, 5, 6])


@pytest.mark.parametrize("bad", [[1.5, 2.0], [-1, 2], [1, np.nan], [], [[1, 2]]])
def test_fits_reject_non_counts(bad):
    for fit in (fit_poisson, fit_negbin):
        with pytest.raises(ValueError):
            fit(bad)


def test_ppoints_follows_r():
    np.testing.assert_allclose(ppoints(4), [0.1470588, 0.3823529, 0.6176471, 0.8529412], atol=1e-7)
    np.testing.assert_allclose(ppoints(11), (np.arange(1, 12) - 0.5) / 11)


@pytest.mark.parametrize("dist", ["norm", "lnorm", "pois", "nbinom"])
def test_qq_points_match_car(counts, r_numbers, dist):
    fits = r_numbers["fitdistr"]
    params = {"pois": fits["poisson"]["estimate"],
              "nbinom": fits["negative_binomial"]["estimate"]}.get(dist)
    car = r_numbers["qqplot"][dist]
    qq = qq_points(counts, dist, params=params)
    np.testing.assert_array_equal(qq.sample, np.sort(counts))
    np.testing.assert_allclose(qq.theoretical, car["z"], rtol=1e-10, atol=1e-12)
    assert qq.intercept == pytest.approx(car["a"], rel=1e-10, abs=1e-12)
    assert qq.slope == pytest.approx(car["b"], rel=1e-10)
    np.testing.assert_allclose(qq.lower, car["lower"], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(qq.upper, car["upper"], rtol=1e-10, atol=1e-12)


def test_qq_count_distributions_default_to_the_ml_fit(counts):
    default = qq_points(counts, "nbinom")
    explicit = qq_points(counts, "nbinom", params=fit_negbin(counts).params)
    np.testing.assert_array_equal(default.upper, explicit.upper)
    np.testing.assert_array_equal(
        qq_points(counts, "pois").theoretical,
        qq_points(counts, "pois", params=fit_poisson(counts).params).theoretical)


def test_qq_envelope_widens_with_level(counts):
    narrow, wide = qq_points(counts, "norm", level=0.5), qq_points(counts, "norm", level=0.99)
    assert np.all(wide.lower < narrow.lower) and np.all(wide.upper > narrow.upper)
    midline = narrow.intercept + narrow.slope * narrow.theoretical
    np.testing.assert_allclose((narrow.lower + narrow.upper) / 2, midline)


def test_qq_points_validates_its_arguments(counts):
    with pytest.raises(ValueError, match="dist must be one of"):
        qq_points(counts, "gamma")
    with pytest.raises(ValueError, match="needs params"):
        qq_points(counts, "nbinom", params={"size": 5.0})
    with pytest.raises(ValueError, match="quartiles"):
        qq_points(counts, "pois", params={"lambda": 0.01})
