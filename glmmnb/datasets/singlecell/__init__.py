"""A small simulated single-cell data set: 60 genes in 1,200 cells from 8 donors.

Four donors are ``ctrl``, four ``stim``; each donor gives 150 cells.  The
counts are negative binomial with a per-gene theta, a random intercept per
donor and gene, and a cell size factor recorded as ``total_counts`` (use it
as the exposure).  The first ten genes (``gene000`` .. ``gene009``) respond
to ``stim`` with a log fold change of 0.5; the others do not.  Made by
:mod:`glmmnb.datasets.singlecell.simulate`; no download needed.
"""

from __future__ import annotations

from importlib import resources

import pandas as pd
from statsmodels.datasets.utils import Dataset

__all__ = ["load", "load_pandas", "TRUE_EFFECTS"]

TRUE_EFFECTS = [f"gene{j:03d}" for j in range(10)]
"""The genes with a true ``condition`` effect."""


def load_pandas():
    """Load the cells and the counts.

    Returns
    -------
    statsmodels.datasets.utils.Dataset
        ``cells`` (one row per cell: ``cell``, ``donor``, ``condition``,
        ``total_counts``; also as ``data``) and ``counts`` (cells x genes,
        indexed by cell).

    Examples
    --------
    >>> from glmmnb.datasets import singlecell
    >>> ds = singlecell.load()
    >>> ds.cells.shape, ds.counts.shape
    ((1200, 4), (1200, 60))
    """
    files = resources.files(__package__)
    with files.joinpath("cells.csv").open() as fh:
        cells = pd.read_csv(fh)
    with files.joinpath("counts.csv.gz").open("rb") as fh:
        counts = pd.read_csv(fh, index_col="cell", compression="gzip")
    cells["condition"] = pd.Categorical(cells["condition"], categories=["ctrl", "stim"])
    return Dataset(data=cells, cells=cells, counts=counts, title="Simulated single-cell counts",
                   note=__doc__)


def load():
    """Alias of :func:`load_pandas` (statsmodels' convention).

    Returns
    -------
    statsmodels.datasets.utils.Dataset

    Examples
    --------
    >>> from glmmnb.datasets import singlecell
    >>> singlecell.load().counts.columns[0]
    'gene000'
    """
    return load_pandas()
