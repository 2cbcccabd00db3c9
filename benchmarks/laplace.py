"""Maximum-likelihood benchmark: ``fit(method="laplace")`` against glmmTMB and glmer.nb.

``python -m benchmarks.laplace`` (or ``python -m benchmarks --configs laplace``)
times, on the simulated data of :mod:`benchmarks.data` with string slide
labels in a pandas frame:

* ``ml_ri``: ``counts ~ treatment + area``, random intercept per slide, theta
  estimated jointly, at 50,000 rows / 500 slides and 100,000 / 1,000 (R:
  ``glmmTMB(..., family = nbinom2)`` and ``glmer.nb`` on the same data in the
  same run), and at 1,000,000 / 10,000 (glmmnb only unless ``--r-max-rows``);
* ``ml_rs``: the same with a correlated random slope of ``area`` at 100,000
  rows (R: glmmTMB).

Each row reports glmmnb's wall time (the whole ``from_formula(...).fit``
from the frame), R's times, their ratios, the largest relative difference of
the fixed effects and theta from glmmTMB's, the log-likelihood difference,
and the ratio of glmmnb's time to a numpy floor measured in the same process
(one pass of ``exp`` and ``bincount`` over the rows: what any fit must at
least do once per evaluation), so that machine load can be told apart.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np

from .data import simulate

__all__ = ["main", "PLAN", "run_row"]

FORMULA = "counts ~ treatment + area"
PLAN = [("ml_ri", 50_000, 500, None, ("glmmTMB", "glmer.nb")),
        ("ml_ri", 100_000, 1_000, None, ("glmmTMB", "glmer.nb")),
        ("ml_ri", 1_000_000, 10_000, None, ("glmmTMB",)),
        ("ml_rs", 100_000, 1_000, "~area", ("glmmTMB",))]

_R_SCRIPT = r"""
suppressMessages({library(glmmTMB); library(lme4)})
args <- commandArgs(trailingOnly = TRUE)
dat <- read.csv(args[1]); dat$slide <- factor(dat$slide)
f <- as.formula(args[2]); which <- args[3]
t <- system.time({
  fit <- if (which == "glmmTMB") glmmTMB(f, dat, family = nbinom2) else glmer.nb(f, dat)
})[["elapsed"]]
theta <- if (which == "glmmTMB") sigma(fit) else getME(fit, "glmer.nb.theta")
cf <- if (which == "glmmTMB") fixef(fit)$cond else fixef(fit)
cat("elapsed=", t, " theta=", sprintf("%.15g", theta), " llf=",
    sprintf("%.15g", as.numeric(logLik(fit))), " params=",
    paste(sprintf("%.15g", cf), collapse = ","), "\n", sep = "")
"""


def _frame(n, g):
    data = simulate(n, g)
    data["slide"] = "slide" + data["slide"].astype(str)
    return data


def numpy_floor(n, g, repeat=5):
    """Median seconds of one ``exp`` + ``bincount`` pass over ``n`` rows."""
    rng = np.random.default_rng(0)
    eta = rng.normal(size=n)
    codes = rng.integers(0, g, n)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        np.bincount(codes, weights=np.exp(eta), minlength=g)
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def time_glmmnb(data, re_formula):
    """Seconds, params, theta and llf of ``fit(method="laplace")`` on the frame."""
    from glmmnb import NegBinMixedGLM

    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = NegBinMixedGLM.from_formula(FORMULA, data, groups="slide",
                                          re_formula=re_formula).fit(method="laplace")
    return (time.perf_counter() - t0, np.asarray(res.params), float(res.theta),
            float(res.llf))


def time_r(data, re_formula, which, timeout=3600):
    """Seconds, params, theta and llf of glmmTMB or glmer.nb on the same frame."""
    lhs = "1" if re_formula is None else re_formula.lstrip("~")
    formula = f"{FORMULA} + ({lhs} | slide)"
    with tempfile.TemporaryDirectory(prefix="glmmnb-ml-") as tmp:
        csv, script = os.path.join(tmp, "d.csv"), os.path.join(tmp, "fit.R")
        data.to_csv(csv, index=False, float_format="%.17g")
        with open(script, "w") as fh:
            fh.write(_R_SCRIPT)
        out = subprocess.run([shutil.which("Rscript"), "--vanilla", script, csv, formula,
                              which], capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"Rscript ({which}) failed:\n{out.stderr[-2000:]}")
    line = [ln for ln in out.stdout.splitlines() if ln.startswith("elapsed=")][-1]
    f = dict(kv.split("=", 1) for kv in line.split())
    return (float(f["elapsed"]), np.array([float(v) for v in f["params"].split(",")]),
            float(f["theta"]), float(f["llf"]))


def run_row(config, n, g, re_formula, r_programs, use_r=True):
    """One benchmark row as a dict."""
    data = _frame(n, g)
    floor = numpy_floor(n, g)
    secs, params, theta, llf = time_glmmnb(data, re_formula)
    row = {"config": config, "rows": n, "groups": g, "glmmnb_s": secs,
           "floor_ratio": secs / floor, "theta": theta, "llf": llf, "params": params.tolist()}
    for prog in (r_programs if use_r else ()):
        r_secs, r_params, r_theta, r_llf = time_r(data, re_formula, prog)
        diff = max(np.max(np.abs(params - r_params) / np.abs(r_params)),
                   abs(theta - r_theta) / r_theta)
        row[prog] = {"s": r_secs, "ratio": r_secs / secs, "max_rel_diff": float(diff),
                     "llf_diff": llf - r_llf}
    return row


def _print(row):
    parts = [f"{row['config']:<6}{row['rows']:>9}{row['groups']:>7}{row['glmmnb_s']:>9.2f}s"
             f"  floor x{row['floor_ratio']:.0f}"]
    for prog in ("glmmTMB", "glmer.nb"):
        if prog in row:
            r = row[prog]
            parts.append(f"{prog} {r['s']:.1f}s ({r['ratio']:.0f}x, rel diff "
                         f"{r['max_rel_diff']:.1e}, llf diff {r['llf_diff']:+.2e})")
    print("  ".join(parts), flush=True)


def main(argv=None):
    """Command line; returns the rows."""
    ap = argparse.ArgumentParser(prog="python -m benchmarks.laplace", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--no-r", action="store_true", help="do not time R")
    ap.add_argument("--r-max-rows", type=int, default=100_000,
                    help="time R only up to this many rows (default 1e5)")
    ap.add_argument("--quick", action="store_true", help="only the 50,000-row fit")
    ap.add_argument("--json", metavar="PATH", help="also write the rows as JSON")
    args = ap.parse_args(argv)
    use_r = not args.no_r and shutil.which("Rscript") is not None
    plan = PLAN[:1] if args.quick else PLAN
    rows = []
    for config, n, g, re_formula, progs in plan:
        row = run_row(config, n, g, re_formula, progs, use_r=use_r and n <= args.r_max_rows)
        _print(row)
        rows.append(row)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"python": sys.version.split()[0], "rows": rows}, fh, indent=2)
    return rows


if __name__ == "__main__":
    main()
