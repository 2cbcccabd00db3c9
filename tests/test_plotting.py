"""What the plotting functions draw (not merely that they run)."""

import pathlib
import sys

import numpy as np
import pandas as pd
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after selecting the backend)

from glmmnb.workflows import plotting  # noqa: E402
from glmmnb.workflows.distributions import qq_points  # noqa: E402

SEED_CSV = pathlib.Path(__file__).parents[1] / "glmmnb/datasets/microscopy/microscopy.csv"


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture
def seed():
    return pd.read_csv(SEED_CSV)


def scatter_points(ax):
    """Offsets of every scatter collection on ``ax``, stacked."""
    return np.vstack([c.get_offsets() for c in ax.collections])


def envelope_lines(ax):
    return [line for line in ax.get_lines() if line.get_gid() == "envelope"]


def test_plot_qq_draws_points_line_and_envelope(seed):
    y = seed["counts"]
    ax = plotting.plot_qq(y, "nbinom")
    qq = qq_points(y, "nbinom")
    np.testing.assert_allclose(scatter_points(ax), np.column_stack([qq.theoretical, qq.sample]))
    lower, upper = envelope_lines(ax)
    np.testing.assert_allclose(lower.get_ydata(), qq.lower)
    np.testing.assert_allclose(upper.get_ydata(), qq.upper)
    assert len(ax.get_lines()) == 3  # reference line + two envelope lines
    assert ax.get_xlabel() == "nbinom quantiles"
    assert ax.get_ylabel() == "counts"


def test_plot_qq_without_envelope_on_given_axes():
    fig, ax = plt.subplots()
    assert plotting.plot_qq(np.arange(1.0, 21.0), "norm", ax=ax, envelope=None) is ax
    assert envelope_lines(ax) == [] and len(ax.get_lines()) == 1
    assert len(scatter_points(ax)) == 20
    assert ax.get_ylabel() == "sample quantiles"


def test_distribution_checks_has_the_four_tutorial_panels(seed):
    fig = plotting.plot_distribution_checks(seed["counts"])
    assert [ax.get_xlabel() for ax in fig.axes] == [
        "norm quantiles", "lnorm quantiles", "pois quantiles", "nbinom quantiles"]
    for ax in fig.axes:
        assert len(scatter_points(ax)) == len(seed)
        assert len(envelope_lines(ax)) == 2


def test_plot_groups_one_box_and_all_points_per_group(seed):
    ax = plotting.plot_groups(seed, "counts", "slide")
    levels = sorted(seed["slide"].unique())
    assert len(ax.patches) == len(levels) == 4
    assert [t.get_text() for t in ax.get_xticklabels()] == levels
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("slide", "counts")
    xy = scatter_points(ax)
    assert len(xy) == len(seed)
    # every point sits over its own box, and tied counts are spread apart
    group = np.rint(xy[:, 0]).astype(int) - 1
    assert np.all(np.abs(xy[:, 0] - (group + 1)) <= 0.25)
    for k, level in enumerate(levels):
        np.testing.assert_array_equal(np.sort(xy[group == k, 1]),
                                      np.sort(seed.loc[seed["slide"] == level, "counts"]))
    assert len(np.unique(xy, axis=0)) == len(seed)


def test_plot_groups_keeps_categorical_order_and_drops_missing():
    df = pd.DataFrame({"y": [1.0, 2.0, np.nan, 4.0, 5.0, 6.0],
                       "g": pd.Categorical(["b", "b", "a", "a", None, "c"],
                                           categories=["c", "b", "a"])})
    ax = plotting.plot_groups(df, "y", "g")
    assert [t.get_text() for t in ax.get_xticklabels()] == ["c", "b", "a"]
    assert len(ax.patches) == 3
    assert len(scatter_points(ax)) == 4


def test_plotting_leaves_the_callers_data_alone(seed):
    before = seed.copy(deep=True)
    plotting.plot_groups(seed, "counts", "slide")
    plotting.plot_qq(seed["counts"], "pois")
    plotting.plot_distribution_checks(seed["counts"])
    pd.testing.assert_frame_equal(seed, before)


def test_plot_residuals():
    fitted, resid = np.linspace(1.5, 2.1, 30), np.sin(np.arange(30.0))
    ax = plotting.plot_residuals(fitted, resid)
    np.testing.assert_allclose(scatter_points(ax), np.column_stack([fitted, resid]))
    (zero,) = ax.get_lines()
    np.testing.assert_array_equal(zero.get_ydata(), [0.0, 0.0])
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("Fitted values", "Pearson residuals")
    with pytest.raises(ValueError):
        plotting.plot_residuals(fitted, resid[:-1])


def test_plot_ranef_qq():
    ranef = np.array([-0.012, 0.004, 0.009, -0.001])
    ax = plotting.plot_ranef_qq(ranef)
    xy = scatter_points(ax)
    np.testing.assert_array_equal(xy[:, 1], np.sort(ranef))
    assert np.all(np.diff(xy[:, 0]) > 0)
    assert envelope_lines(ax) == [] and len(ax.get_lines()) == 1
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("Standard normal quantiles", "Random effects")


def test_missing_matplotlib_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r'pip install "glmmnb\[plot\]"'):
        plotting.plot_residuals([1.0], [0.0])


@pytest.fixture(scope="module")
def seed_res():
    from glmmnb import NegBinMixedGLM

    return NegBinMixedGLM.from_formula("counts ~ RNAi", pd.read_csv(SEED_CSV),
                                       groups="slide").fit()


def test_plot_residuals_takes_the_fit_and_its_pearson_residuals(seed_res):
    ax = plotting.plot_residuals(seed_res)
    np.testing.assert_allclose(scatter_points(ax), np.column_stack(
        [seed_res.fittedvalues, seed_res.resid_pearson]))


def test_plot_residuals_per_group(seed_res):
    ax = plotting.plot_residuals(seed_res, by_group=True)
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels == sorted(seed_res.ranef().index)
    medians = [line.get_ydata()[0] for line in ax.get_lines() if line.get_gid() == "median"]
    resid = np.asarray(seed_res.resid_pearson)
    groups = np.asarray(seed_res.model.groups)
    np.testing.assert_allclose(medians, [np.median(resid[groups == g]) for g in labels])
    with pytest.raises(ValueError, match="groups="):
        plotting.plot_residuals([1.0, 2.0], [0.1, -0.1], by_group=True)


def test_plot_ranef_qq_takes_the_fit(seed_res):
    ax = plotting.plot_ranef_qq(seed_res)
    np.testing.assert_allclose(np.sort(scatter_points(ax)[:, 1]),
                               np.sort(seed_res.ranef().iloc[:, 0]))
    assert ax.get_ylabel() == "Random effects: (Intercept)"


def test_plot_groups_colours_by_treatment(seed):
    ax = plotting.plot_groups(seed, "counts", "slide", color_by="RNAi")
    colours = ax.collections[0].get_facecolors()
    first = {tuple(colours[i]) for i in np.flatnonzero(seed.sort_values("slide")
                                                       ["RNAi"].to_numpy() == "Control")}
    assert len(first) == 1
    assert {t.get_text() for t in ax.get_legend().get_texts()} == {"Control", "Target"}
    with pytest.raises(ValueError, match="constant within each slide"):
        plotting.plot_groups(seed.assign(x=np.arange(len(seed)) % 2), "counts", "slide",
                             color_by="x")


def test_plot_marginal_means_draws_the_intervals(seed_res):
    mm = seed_res.marginal_means("RNAi")
    ax = plotting.plot_marginal_means(mm)
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), mm.means["mean"])
    assert ax.get_xlabel() == "RNAi" and ax.get_ylabel() == "Marginal mean (95% CI)"
