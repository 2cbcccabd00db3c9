"""Diagnostic plots of the seed tutorial, drawn with matplotlib.

matplotlib is an optional dependency (``pip install "glmmnb[plot]"``), so it
is imported only when a plot is requested.  Every function draws on the
``ax`` it is given (or a new one) and returns it, so panels can be composed.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from .distributions import fit_negbin, fit_poisson, qq_points

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from ..prediction import MarginalMeans
    from ..results import NegBinMixedGLMResults

__all__ = ["plot_qq", "plot_distribution_checks", "plot_groups", "plot_residuals",
           "plot_ranef_qq", "plot_volcano", "plot_pvalue_histogram",
           "plot_marginal_means"]

_POINT_COLOR = "#00000088"  # the tutorial's translucent black, so ties stay visible
_LINE_COLOR = "tab:blue"


def _pyplot() -> ModuleType:
    try:
        import matplotlib.pyplot as plt
    except ImportError as err:
        raise ImportError('plotting needs matplotlib: pip install "glmmnb[plot]"') from err
    return plt


def _axes(ax: Axes | None) -> Axes:
    return _pyplot().subplots()[1] if ax is None else ax


def plot_qq(y: ArrayLike, dist: str = "nbinom", ax: Axes | None = None,
            envelope: float | None = 0.95, params: dict | None = None) -> Axes:
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


def plot_distribution_checks(y: ArrayLike, envelope: float | None = 0.95) -> Figure:
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


def _swarm_offsets(values: np.ndarray, width: float) -> np.ndarray:
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


def _group_colours(data: pd.DataFrame, group: str, color_by: str,
                   categories: Sequence) -> tuple[list, dict]:
    """One colour per group from the treatment column ``color_by`` (constant within groups)."""
    pairs = data[[group, color_by]].dropna().drop_duplicates()
    mixed = pairs[group][pairs[group].duplicated()].unique()
    if len(mixed):
        raise ValueError(f"color_by={color_by!r} must be constant within each {group}; "
                         f"it varies in {[str(g) for g in mixed[:5]]}")
    treatment = pairs.set_index(group)[color_by]
    levels = list(pd.Categorical(treatment).categories)
    cycle = _pyplot().rcParams["axes.prop_cycle"].by_key()["color"]
    colour = {lev: cycle[k % len(cycle)] for k, lev in enumerate(levels)}
    return [colour[treatment[g]] for g in categories], colour


def plot_groups(data: pd.DataFrame, y: str, group: str, ax: Axes | None = None,
                color_by: str | None = None) -> Axes:
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
    color_by : str, optional
        A treatment column, constant within each group: each group's box
        and points take its treatment's colour, with a legend.

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
    >>> df = pd.DataFrame({"counts": [3, 5, 4, 9, 8, 11], "slide": list("aaabbb"),
    ...                    "RNAi": ["C"] * 3 + ["T"] * 3})
    >>> ax = plot_groups(df, "counts", "slide", color_by="RNAi")
    >>> [t.get_text() for t in ax.get_xticklabels()], ax.get_legend().get_title().get_text()
    (['a', 'b'], 'RNAi')
    """
    rows = data[[y, group]].dropna()
    codes = pd.Categorical(rows[group]).remove_unused_categories()
    values = rows[y].to_numpy(dtype=float)
    ax = _axes(ax)
    positions = np.arange(1, len(codes.categories) + 1)
    colours, legend = [_POINT_COLOR] * len(positions), None
    if color_by is not None:
        colours, legend = _group_colours(data, group, color_by, codes.categories)
    per_group = [values[codes.codes == k] for k in range(len(positions))]
    boxes = ax.boxplot(per_group, positions=positions, widths=0.6, patch_artist=True,
                       showfliers=False,  # every point is drawn by the swarm already
                       boxprops={"facecolor": "none"}, medianprops={"color": "black"})
    x = positions[codes.codes].astype(float)
    for k, members in enumerate(per_group):
        x[codes.codes == k] += _swarm_offsets(members, width=0.5)
        if legend is not None:
            boxes["boxes"][k].set_edgecolor(colours[k])
    ax.scatter(x, values, s=12, color=np.asarray(colours, dtype=object)[codes.codes], zorder=3)
    if legend is not None:
        handles = [ax.scatter([], [], s=12, color=c, label=str(lev)) for lev, c in legend.items()]
        ax.legend(handles=handles, title=color_by)
    ax.set_xticks(positions, [str(c) for c in codes.categories])
    ax.set_xlabel(group)
    ax.set_ylabel(y)
    return ax


def plot_residuals(fitted: NegBinMixedGLMResults | ArrayLike, resid: ArrayLike | None = None,
                   ax: Axes | None = None, by_group: bool = False,
                   groups: ArrayLike | None = None) -> Axes:
    """Pearson residuals against fitted values, or per group.

    Parameters
    ----------
    fitted : NegBinMixedGLMResults or array_like
        A fit (its ``fittedvalues`` and ``resid_pearson`` are drawn), or
        fitted values.
    resid : array_like, optional
        Residuals of the same length, when ``fitted`` is an array.
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure if omitted.
    by_group : bool
        Draw one box of residuals per group instead (R:
        ``plot(fit, slide ~ resid(., type = "p"))``).
    groups : array_like, optional
        Group labels for ``by_group`` with arrays; a fit uses its groups.

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
    'Pearson residuals'
    """
    if hasattr(fitted, "resid_pearson"):
        res = fitted
        fitted, resid = res.fittedvalues, res.resid_pearson
        groups = res.model.groups if groups is None else groups
    fitted = np.asarray(fitted, dtype=float)
    resid = np.asarray(resid, dtype=float)
    if fitted.shape != resid.shape or fitted.ndim != 1:
        raise ValueError("fitted and resid must be one-dimensional and of equal length")
    ax = _axes(ax)
    if by_group:
        if groups is None or len(groups) != len(resid):
            raise ValueError("by_group needs groups=, one label per residual")
        codes = pd.Categorical(np.asarray(groups))
        per_group = [resid[codes.codes == k] for k in range(len(codes.categories))]
        positions = np.arange(1, len(per_group) + 1)
        ax.boxplot(per_group, positions=positions, widths=0.6,
                   medianprops={"color": "black", "gid": "median"})
        ax.set_xticks(positions, [str(c) for c in codes.categories])
        ax.axhline(0.0, color=_LINE_COLOR, lw=1)
        ax.set_ylabel("Pearson residuals")
        return ax
    ax.scatter(fitted, resid, s=12, color=_POINT_COLOR)
    ax.axhline(0.0, color=_LINE_COLOR, lw=1)
    ax.set_xlabel("Fitted values")
    ax.set_ylabel("Pearson residuals")
    return ax


def plot_ranef_qq(ranef: NegBinMixedGLMResults | pd.DataFrame | ArrayLike, ax: Axes | None = None,
                  term: str | None = None) -> Axes:
    """Normal QQ plot of predicted random effects, with the quartile line.

    Parameters
    ----------
    ranef : NegBinMixedGLMResults, pandas.DataFrame or array_like
        A fit (its :meth:`ranef`), a frame of random effects, or one per
        group.
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure if omitted.
    term : str, optional
        Which column of a frame (or fit) with several random coefficients;
        default the first.

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
    intercept = None
    if hasattr(ranef, "ranef"):
        # MixedLM names the random intercept after the groups; R says (Intercept)
        intercept = getattr(ranef.model, "group_name", None)
        ranef = ranef.ranef()
    label = "Random effects"
    if isinstance(ranef, pd.DataFrame):
        term = ranef.columns[0] if term is None else term
        shown = "(Intercept)" if term == intercept else term
        ranef, label = ranef[term], f"Random effects: {shown}"
    # A pointwise envelope from a handful of groups would be meaningless.
    ax = plot_qq(np.asarray(ranef, dtype=float), "norm", ax=ax, envelope=None)
    ax.set_xlabel("Standard normal quantiles")
    ax.set_ylabel(label)
    return ax


def plot_marginal_means(means: MarginalMeans, ax: Axes | None = None) -> Axes:
    """Marginal means with their confidence intervals, one point per level.

    Parameters
    ----------
    means : glmmnb.prediction.MarginalMeans
        From ``res.marginal_means(factor)``.
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure if omitted.

    Returns
    -------
    matplotlib.axes.Axes

    See Also
    --------
    emmeans::plot.emmGrid : the R plot mirrored.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from glmmnb import NegBinMixedGLM
    >>> from glmmnb.datasets import microscopy
    >>> res = NegBinMixedGLM.from_formula(
    ...     "counts ~ RNAi", microscopy.load_pandas().data, groups="slide").fit()
    >>> ax = plot_marginal_means(res.marginal_means("RNAi"))
    >>> [t.get_text() for t in ax.get_xticklabels()]
    ['Control', 'Target']
    """
    table = means.means
    x = np.arange(len(table))
    est = table["mean"].to_numpy()
    err = np.vstack([est - table["mean_ci_lower"], table["mean_ci_upper"] - est])
    ax = _axes(ax)
    ax.errorbar(x, est, yerr=err, fmt="o", color="black", ecolor=_LINE_COLOR, capsize=4)
    ax.set_xticks(x, [str(v) for v in table.index])
    ax.set_xlim(-0.5, len(table) - 0.5)
    ax.set_xlabel(means.factor)
    ax.set_ylabel(f"Marginal mean ({1 - means.alpha:.0%} CI)")
    return ax


def _term_rows(table: pd.DataFrame, term: str | None) -> tuple[pd.DataFrame, str]:
    """The rows of one term of a :func:`glmmnb.fit_many` table (default: the last term)."""
    terms = table.index.get_level_values("term").unique()
    term = terms[-1] if term is None else term
    if term not in terms:
        raise KeyError(f"term {term!r} is not in the table; terms are {list(terms)}")
    return table.xs(term, level="term"), term


def plot_volcano(table: pd.DataFrame, term: str | None = None, alpha: float = 0.05,
                 ax: Axes | None = None, label_top: int = 0) -> Axes:
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


def plot_pvalue_histogram(table: pd.DataFrame, term: str | None = None, bins: int = 20,
                          ax: Axes | None = None) -> Axes:
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
