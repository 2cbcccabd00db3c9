"""Diagnostic plots of the seed tutorial, drawn with matplotlib.

matplotlib is an optional dependency (``pip install "glmmnb[plot]"``), so it
is imported only when a plot is requested.  Every function draws on the
``ax`` it is given (or a new one) and returns it, so panels can be composed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .distributions import fit_negbin, fit_poisson, qq_points

__all__ = ["plot_qq", "plot_distribution_checks", "plot_groups", "plot_residuals",
           "plot_ranef_qq", "plot_volcano", "plot_pvalue_histogram"]

_POINT_COLOR = "#00000088"  # the tutorial's translucent black, so ties stay visible
_LINE_COLOR = "tab:blue"


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as err:
        raise ImportError('plotting needs matplotlib: pip install "glmmnb[plot]"') from err
    return plt


def _axes(ax):
    return _pyplot().subplots()[1] if ax is None else ax


def plot_qq(y, dist="nbinom", ax=None, envelope=0.95, params=None):
    """QQ plot against a distribution, with car's reference line and envelope.

    Parameters
    ----------
    y : array_like
        Sample; a named :class:`pandas.Series` labels the y axis.
    dist : {"norm", "lnorm", "pois", "nbinom"}
        Reference distribution.
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure if omitted.
    envelope : float or None
        Level of the pointwise envelope (dashed lines); ``None`` omits it.
    params : dict, optional
        Distribution parameters under R's names; see
        :func:`glmmnb.workflows.distributions.qq_points` for the defaults.

    Returns
    -------
    matplotlib.axes.Axes

    See Also
    --------
    car::qqp : the R function mirrored (``car::qqPlot``).
    glmmnb.workflows.distributions.qq_points : the coordinates drawn here.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> ax = plot_qq([2, 3, 3, 4, 6, 6, 7, 9, 12, 15], dist="nbinom")
    >>> ax.get_xlabel()
    'nbinom quantiles'
    """
    qq = qq_points(y, dist, params=params, level=0.95 if envelope is None else envelope)
    ax = _axes(ax)
    ax.scatter(qq.theoretical, qq.sample, s=12, color=_POINT_COLOR)
    ends = np.array([qq.theoretical[0], qq.theoretical[-1]])
    ax.plot(ends, qq.intercept + qq.slope * ends, color=_LINE_COLOR, lw=2)
    if envelope is not None:
        for bound in (qq.lower, qq.upper):
            ax.plot(qq.theoretical, bound, color=_LINE_COLOR, lw=1.5, ls="--", gid="envelope")
    ax.set_xlabel(f"{dist} quantiles")
    ax.set_ylabel(getattr(y, "name", None) or "sample quantiles")
    return ax


def plot_distribution_checks(y, envelope=0.95):
    """The tutorial's 1 x 4 panel: QQ plots against norm, lnorm, pois, nbinom.

    The Poisson and negative binomial use the ML fits of ``y``, as the
    tutorial passes ``fitdistr``'s estimates to ``qqp``.

    Parameters
    ----------
    y : array_like
        Non-negative integer counts, overdispersed (for the NB fit).
    envelope : float or None
        Level of the pointwise envelopes; ``None`` omits them.

    Returns
    -------
    matplotlib.figure.Figure

    See Also
    --------
    car::qqp : the R function drawing each panel.
    MASS::fitdistr : the fits behind the count panels.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> fig = plot_distribution_checks([1, 2, 2, 3, 4, 4, 5, 7, 9, 14])
    >>> [ax.get_title() for ax in fig.axes]
    ['Normal', 'Log-normal', 'Poisson', 'Negative binomial']
    """
    fig, axes = _pyplot().subplots(1, 4, figsize=(16, 4), layout="constrained")
    panels = [("norm", None, "Normal"), ("lnorm", None, "Log-normal"),
              ("pois", fit_poisson(y).params, "Poisson"),
              ("nbinom", fit_negbin(y).params, "Negative binomial")]
    for ax, (dist, params, title) in zip(axes, panels):
        plot_qq(y, dist, ax=ax, envelope=envelope, params=params)
        ax.set_title(title)
    return fig


def _swarm_offsets(values, width):
    """Horizontal offsets fanning out points of (nearly) equal value.

    Like ``beeswarm``, points are binned on the value axis and spread
    symmetrically within a bin; this matters for counts, where ties are the
    rule and plain jitter would hide how many points share a value.
    """
    step = (np.ptp(values) or 1.0) / 60
    bins = np.round((values - values.min()) / step)
    order = np.argsort(bins, kind="stable")
    sorted_bins = bins[order]
    starts = np.searchsorted(sorted_bins, sorted_bins, side="left")
    sizes = np.searchsorted(sorted_bins, sorted_bins, side="right") - starts
    rank = np.arange(values.size) - starts
    spacing = min(width / max(sizes.max() - 1, 1), width / 8)
    offsets = np.empty_like(values)
    offsets[order] = (rank - (sizes - 1) / 2) * spacing
    return offsets


def plot_groups(data, y, group, ax=None):
    """Box plot of ``y`` per group with the points swarmed on top.

    Rows with a missing ``y`` or ``group`` are left out, as R's formula
    interface does.  ``data`` is not modified.

    Parameters
    ----------
    data : pandas.DataFrame
        The data.
    y, group : str
        Column names of the response and the grouping factor; groups are
        ordered as the categories of a categorical column, else sorted.
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure if omitted.

    Returns
    -------
    matplotlib.axes.Axes

    See Also
    --------
    graphics::boxplot, beeswarm::beeswarm : the R functions mirrored.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import pandas as pd
    >>> df = pd.DataFrame({"counts": [3, 5, 4, 9, 8, 11], "slide": list("aaabbb")})
    >>> ax = plot_groups(df, "counts", "slide")
    >>> [t.get_text() for t in ax.get_xticklabels()]
    ['a', 'b']
    """
    rows = data[[y, group]].dropna()
    codes = pd.Categorical(rows[group]).remove_unused_categories()
    values = rows[y].to_numpy(dtype=float)
    ax = _axes(ax)
    positions = np.arange(1, len(codes.categories) + 1)
    per_group = [values[codes.codes == k] for k in range(len(positions))]
    ax.boxplot(per_group, positions=positions, widths=0.6, patch_artist=True,
               showfliers=False,  # every point is drawn by the swarm already
               boxprops={"facecolor": "none"}, medianprops={"color": "black"})
    x = positions[codes.codes].astype(float)
    for k, members in enumerate(per_group):
        x[codes.codes == k] += _swarm_offsets(members, width=0.5)
    ax.scatter(x, values, s=12, color=_POINT_COLOR, zorder=3)
    ax.set_xticks(positions, [str(c) for c in codes.categories])
    ax.set_xlabel(group)
    ax.set_ylabel(y)
    return ax


def plot_residuals(fitted, resid, ax=None):
    """Standardized residuals against fitted values, with a zero line.

    Parameters
    ----------
    fitted, resid : array_like
        Fitted values and standardized residuals, of equal length.
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure if omitted.

    Returns
    -------
    matplotlib.axes.Axes

    See Also
    --------
    nlme::plot.lme : the R function mirrored (its default plot).

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> ax = plot_residuals([1.5, 1.6, 2.0], [-0.4, 1.1, -0.7])
    >>> ax.get_ylabel()
    'Standardized residuals'
    """
    fitted, resid = np.asarray(fitted, dtype=float), np.asarray(resid, dtype=float)
    if fitted.shape != resid.shape or fitted.ndim != 1:
        raise ValueError("fitted and resid must be one-dimensional and of equal length")
    ax = _axes(ax)
    ax.scatter(fitted, resid, s=12, color=_POINT_COLOR)
    ax.axhline(0.0, color=_LINE_COLOR, lw=1)
    ax.set_xlabel("Fitted values")
    ax.set_ylabel("Standardized residuals")
    return ax


def plot_ranef_qq(ranef, ax=None):
    """Normal QQ plot of predicted random effects, with the quartile line.

    Parameters
    ----------
    ranef : array_like
        One-dimensional predicted random effects (one per group).
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure if omitted.

    Returns
    -------
    matplotlib.axes.Axes

    See Also
    --------
    nlme::qqnorm.lme : the R function mirrored (``qqnorm(fit, ~ ranef(.))``).

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> ax = plot_ranef_qq([-0.012, 0.004, 0.009, -0.001])
    >>> ax.get_xlabel()
    'Standard normal quantiles'
    """
    # A pointwise envelope from a handful of groups would be meaningless.
    ax = plot_qq(ranef, "norm", ax=ax, envelope=None)
    ax.set_xlabel("Standard normal quantiles")
    ax.set_ylabel("Random effects")
    return ax


def _term_rows(table, term):
    """The rows of one term of a :func:`glmmnb.fit_many` table (default: the last term)."""
    terms = table.index.get_level_values("term").unique()
    term = terms[-1] if term is None else term
    if term not in terms:
        raise KeyError(f"term {term!r} is not in the table; terms are {list(terms)}")
    return table.xs(term, level="term"), term


def plot_volcano(table, term=None, alpha=0.05, ax=None, label_top=0):
    """Volcano plot of a :func:`glmmnb.fit_many` table: effect against -log10 p.

    Parameters
    ----------
    table : pandas.DataFrame
        The table of :func:`glmmnb.fit_many`.
    term : str, optional
        The fixed effect to show (default the last, e.g. ``"condition[T.stim]"``).
    alpha : float
        Features with ``p_adj < alpha`` are highlighted; a dashed line marks
        the largest such p-value.
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure if omitted.
    label_top : int
        Label this many features with the smallest p-values.

    Returns
    -------
    matplotlib.axes.Axes

    See Also
    --------
    plot_pvalue_histogram : the distribution of the same p-values.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from glmmnb import fit_many
    >>> from glmmnb.datasets import singlecell
    >>> ds = singlecell.load()
    >>> table = fit_many(ds.counts.iloc[:, :12], "~ condition", data=ds.cells,
    ...                  groups="donor", exposure="total_counts")
    >>> plot_volcano(table).get_xlabel()
    'condition[T.stim] (log scale)'
    """
    rows, term = _term_rows(table, term)
    rows = rows[rows["p"].notna()]
    hit = (rows["p_adj"] < alpha).to_numpy()
    y = -np.log10(rows["p"].to_numpy())
    ax = _axes(ax)
    ax.scatter(rows["coef"][~hit], y[~hit], s=10, color="0.6", label="not significant")
    ax.scatter(rows["coef"][hit], y[hit], s=14, color="tab:red",
               label=f"BH p_adj < {alpha:g}")
    if hit.any():
        ax.axhline(-np.log10(rows["p"][hit].max()), color="0.3", lw=1, ls="--", gid="fdr")
    ax.axvline(0.0, color="0.3", lw=0.8)
    for name in rows["p"].nsmallest(label_top).index:
        ax.annotate(str(name), (rows.loc[name, "coef"], -np.log10(rows.loc[name, "p"])),
                    fontsize=8, xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel(f"{term} (log scale)")
    ax.set_ylabel("-log10 p")
    ax.legend(frameon=False, fontsize=8)
    return ax


def plot_pvalue_histogram(table, term=None, bins=20, ax=None):
    """Histogram of one term's p-values over the features, with the uniform level.

    Under no effect anywhere the p-values are uniform; a spike near 0 shows
    the features with effects, and a hump near 1 or a dip in the middle a
    miscalibrated test.

    Parameters
    ----------
    table : pandas.DataFrame
        The table of :func:`glmmnb.fit_many`.
    term : str, optional
        The fixed effect (default the last).
    bins : int
        Number of bins on [0, 1].
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure if omitted.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import pandas as pd
    >>> idx = pd.MultiIndex.from_product([["a", "b", "c"], ["x"]], names=["feature", "term"])
    >>> t = pd.DataFrame({"p": [0.01, 0.5, 0.9]}, index=idx)
    >>> len(plot_pvalue_histogram(t, bins=4).patches)
    4
    """
    rows, term = _term_rows(table, term)
    p = rows["p"].dropna().to_numpy()
    ax = _axes(ax)
    ax.hist(p, bins=bins, range=(0.0, 1.0), color="tab:blue", edgecolor="white")
    ax.axhline(len(p) / bins, color="0.3", lw=1, ls="--", gid="uniform")
    ax.set_xlabel(f"p-value of {term}")
    ax.set_ylabel("features")
    return ax
