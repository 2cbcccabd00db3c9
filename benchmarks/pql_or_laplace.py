"""Simulation study: PQL, Laplace and adaptive quadrature on designs where they differ.

``python -m benchmarks.pql_or_laplace --reps 200`` runs the full study (the
docs page ``docs/pql_or_laplace.rst`` runs a small version at build time).
For every scenario, ``reps`` data sets are drawn with the treatment effect
``beta1 = 0.4`` (bias, coverage) and ``reps`` more with ``beta1 = 0``
(type-I error), and each is fitted by

* ``pql``: ``fit()``, theta from ``glm.nb`` (the seed tutorial's recipe);
* ``laplace``: ``fit(method="laplace")``, theta estimated jointly;
* ``agq``: ``fit(method="agq", nagq=25)`` (scalar random intercept only),

all with t-tests on nlme's between/within df.  Scenarios (treatment constant
within a slide, as in the microscopy tutorial):

* ``low_means``: mean count about 0.05, slide SD 1, 20 slides of 50 cells;
* ``few_groups``: 4 slides of 100 cells, slide SD 0.3;
* ``tiny_groups``: 300 slides of 2-3 cells, slide SD 0.3;
* ``slope_corr``: a cell-level covariate with a random slope (SD 0.3)
  correlated +0.95 with the intercept (SD 0.5), 20 slides of 40 cells
  (``counts ~ treatment + area``, ``re_formula="~area"``).
"""

from __future__ import annotations

import argparse
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["SCENARIOS", "simulate", "run_study", "summarize"]

BETA1 = 0.4


@dataclass(frozen=True)
class Scenario:
    """One simulated design."""

    name: str
    n_groups: int
    sizes: tuple
    beta0: float
    sd0: float
    theta: float
    sd1: float = 0.0
    corr: float = 0.0


SCENARIOS = {
    "low_means": Scenario("low_means", 20, (50, 50), np.log(0.05), 1.0, 2.0),
    "few_groups": Scenario("few_groups", 4, (100, 100), 1.0, 0.3, 5.0),
    "tiny_groups": Scenario("tiny_groups", 300, (2, 3), 1.0, 0.3, 5.0),
    "slope_corr": Scenario("slope_corr", 20, (40, 40), 1.0, 0.5, 5.0, sd1=0.3, corr=0.95),
}


def simulate(sc, beta1, rng):
    """One data set of scenario ``sc`` as a DataFrame (string slide labels)."""
    sizes = rng.integers(sc.sizes[0], sc.sizes[1] + 1, sc.n_groups)
    g = np.repeat(np.arange(sc.n_groups), sizes)
    treated = (np.arange(sc.n_groups) % 2).astype(float)
    z = rng.normal(size=(sc.n_groups, 2))
    b = np.column_stack([sc.sd0 * z[:, 0],
                         sc.sd1 * (sc.corr * z[:, 0] + np.sqrt(1 - sc.corr ** 2) * z[:, 1])])
    area = rng.normal(size=g.size)
    slope = sc.sd1 > 0
    eta = sc.beta0 + beta1 * treated[g] + b[g, 0] + (0.3 * area + b[g, 1] * area if slope else 0.0)
    mu = np.exp(eta)
    y = rng.poisson(rng.gamma(sc.theta, mu / sc.theta))
    frame = pd.DataFrame({"counts": y.astype(float), "treatment": treated[g], "area": area,
                          "slide": [f"s{k:03d}" for k in g]})
    return frame


def _fit_one(sc, data, method):
    from glmmnb import NegBinMixedGLM

    slope = sc.sd1 > 0
    formula = "counts ~ treatment + area" if slope else "counts ~ treatment"
    term = "treatment"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = NegBinMixedGLM.from_formula(formula, data, groups="slide",
                                            re_formula="~area" if slope else None)
        res = (model.fit() if method == "pql" else
               model.fit(method=method, nagq=25) if method == "agq" else
               model.fit(method=method))
    k = list(model.exog_names).index(term)
    ci = np.asarray(res.conf_int())[k]
    return {"est": float(np.asarray(res.params)[k]), "lo": ci[0], "hi": ci[1],
            "p": float(np.asarray(res.pvalues)[k]),
            "sd": float(np.sqrt(np.asarray(res.cov_re)[0, 0]))}


def run_study(reps, seed=2024, scenarios=None, methods=("pql", "laplace", "agq")):
    """One row per scenario, method, effect and replicate (failed fits have NaN)."""
    rows = []
    for name in scenarios or SCENARIOS:
        sc = SCENARIOS[name]
        rng = np.random.default_rng([seed, list(SCENARIOS).index(name)])
        for beta1 in (BETA1, 0.0):
            for rep in range(reps):
                data = simulate(sc, beta1, rng)
                for method in methods:
                    if method == "agq" and sc.sd1 > 0:
                        continue
                    try:
                        out = _fit_one(sc, data, method)
                    except (ValueError, FloatingPointError, np.linalg.LinAlgError,
                            RuntimeError):
                        out = {"est": np.nan, "lo": np.nan, "hi": np.nan, "p": np.nan,
                               "sd": np.nan}
                    rows.append({"scenario": name, "method": method, "beta1": beta1,
                                 "rep": rep, **out})
    return pd.DataFrame(rows)


def summarize(runs):
    """Bias of the effect and of the slide SD, coverage, type-I error, failures."""
    out = []
    for (name, method), d in runs.groupby(["scenario", "method"], sort=False):
        sc = SCENARIOS[name]
        eff, null = d[d.beta1 == BETA1], d[d.beta1 == 0.0]
        covered = (eff.lo <= BETA1) & (BETA1 <= eff.hi)
        out.append({"scenario": name, "method": method,
                    "bias_effect": eff.est.mean() - BETA1,
                    "rel_bias_sd": eff.sd.mean() / sc.sd0 - 1.0,
                    "coverage": covered[eff.lo.notna()].mean(),
                    "type1": (null.p < 0.05)[null.p.notna()].mean(),
                    "failed": int(d.est.isna().sum()), "reps": int(len(eff))})
    return pd.DataFrame(out).set_index(["scenario", "method"])


def main(argv=None):
    """Command line: run the study and print the summary table."""
    ap = argparse.ArgumentParser(prog="python -m benchmarks.pql_or_laplace", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=200, help="data sets per scenario and effect")
    ap.add_argument("--seed", type=int, default=2024)
    ap.add_argument("--csv", metavar="PATH", help="also write the summary as CSV")
    args = ap.parse_args(argv)
    table = summarize(run_study(args.reps, args.seed))
    with pd.option_context("display.width", 120, "display.precision", 3):
        print(table)
    if args.csv:
        table.to_csv(args.csv)
    return table


if __name__ == "__main__":
    main()
