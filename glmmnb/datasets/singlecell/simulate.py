"""The script that made ``counts.csv.gz`` and ``cells.csv`` (run it to regenerate them).

``python -m glmmnb.datasets.singlecell.simulate`` writes the files beside
this module.  Negative-binomial counts per cell with a log-normal size
factor (``total_counts``), a random intercept per donor and, for the first
ten genes, a true effect of ``condition`` (log fold change 0.5).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

N_DONORS, CELLS_PER_DONOR, N_GENES, N_DE, LFC = 8, 150, 60, 10, 0.5


def simulate(seed=2024):
    """Cells (obs) and counts (cells x genes) as two DataFrames."""
    rng = np.random.default_rng(seed)
    donor = np.repeat(np.arange(N_DONORS), CELLS_PER_DONOR)
    stim = donor % 2 == 1
    size = rng.lognormal(0.0, 0.3, donor.size)
    cells = pd.DataFrame({
        "cell": [f"cell{i:04d}" for i in range(donor.size)],
        "donor": [f"donor{d}" for d in donor],
        "condition": np.where(stim, "stim", "ctrl"),
    })
    base = rng.normal(0.0, 1.0, N_GENES)
    theta = rng.uniform(1.0, 10.0, N_GENES)
    lfc = np.where(np.arange(N_GENES) < N_DE, LFC, 0.0)
    re = rng.normal(0.0, 0.2, (N_DONORS, N_GENES))[donor]
    mu = size[:, None] * np.exp(base + lfc * stim[:, None] + re)
    counts = rng.negative_binomial(theta, theta / (theta + mu))
    genes = [f"gene{j:03d}" for j in range(N_GENES)]
    cells["total_counts"] = np.round(size * 1000.0).astype(int)
    return cells, pd.DataFrame(counts, columns=genes, index=cells["cell"])


if __name__ == "__main__":
    here = Path(__file__).parent
    cells, counts = simulate()
    cells.to_csv(here / "cells.csv", index=False)
    counts.to_csv(here / "counts.csv.gz", index_label="cell")
