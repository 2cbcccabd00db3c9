"""Foci counts per cell on four microscopy slides (the seed tutorial's data).

200 cells: two RNAi treatments (``Control``, the reference level, and
``Target``) on two days; each treatment-day pair is one slide of 50 cells.
Provided by Natalia Kochanova (LMU, Imhof group) for the tutorial
"Generalized Linear Mixed Effect Models" by Tamas Schauer (2019).

Columns: ``slide``, ``experiment`` (``day1``/``day2``), ``RNAi`` and
``counts``.
"""

from __future__ import annotations

from importlib import resources

import pandas as pd
from statsmodels.datasets.utils import Dataset

__all__ = ["load_pandas", "load"]

TITLE = "Foci per cell on microscopy slides"
NOTE = __doc__


def load_pandas():
    """Load the data as a statsmodels ``Dataset`` with pandas objects.

    Returns
    -------
    statsmodels.datasets.utils.Dataset
        ``data`` is the DataFrame, ``endog`` the counts, ``exog`` the RNAi
        factor; ``RNAi`` and ``experiment`` are categoricals with ``Control``
        and ``day1`` as reference levels.

    Examples
    --------
    >>> from glmmnb.datasets import microscopy
    >>> microscopy.load_pandas().data.shape
    (200, 4)
    """
    with resources.files(__package__).joinpath("microscopy.csv").open() as fh:
        data = pd.read_csv(fh)
    data["RNAi"] = pd.Categorical(data["RNAi"], categories=["Control", "Target"])
    data["experiment"] = pd.Categorical(data["experiment"], categories=["day1", "day2"])
    return Dataset(data=data, names=list(data.columns), endog=data["counts"],
                   exog=data[["RNAi"]], endog_name="counts", exog_name=["RNAi"],
                   title=TITLE, note=NOTE)


def load():
    """Alias of :func:`load_pandas` (statsmodels' convention).

    Returns
    -------
    statsmodels.datasets.utils.Dataset

    Examples
    --------
    >>> from glmmnb.datasets import microscopy
    >>> int(microscopy.load().data["counts"].sum())
    1255
    """
    return load_pandas()
