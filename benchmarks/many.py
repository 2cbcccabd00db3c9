"""Many responses: ``python -m benchmarks many [--quick] [--large] [--json PATH]``.

Single-cell-like data (cells in donors, ``condition`` constant per donor,
a size factor per cell as exposure, NB counts per gene with its own theta
and a random intercept per donor), fitted with :func:`glmmnb.fit_many`:

* ``batch``: 2,000 genes x 5,000 cells x 20 donors, serial and ``n_jobs=2``,
  against a loop of single array fits (``NegBinMixedGLM(...).fit()``, timed
  on 50 genes and extrapolated) and glmmTMB (``nbinom2``, the same model by
  Laplace ML; timed on 3 genes in the same run and extrapolated);
* ``scaling``: the time per feature as the features and the cells grow;
* ``cluster``: a 2-worker ``distributed.LocalCluster`` against ``n_jobs=2``;
* ``large`` (``--large``): 20,000 genes x 100,000 cells x 100 donors from a
  ``scipy.sparse`` CSC matrix, with the peak resident memory of the fit.

The machine is shared, so every time is the median of repeats and is also
given as a ratio to a numpy floor measured in the same process
(``numpy.exp`` over 10^7 doubles).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import sparse

__all__ = ["simulate", "main"]

SEED = 20241212
# glibc settings for Dask workers (see _cluster): the thresholds that
# fit_many's own pool workers set (glmmnb.workflows._workers)
WORKER_MALLOC = {"MALLOC_MMAP_THRESHOLD_": 256 * 2 ** 20, "MALLOC_TRIM_THRESHOLD_": 256 * 2 ** 20,
                 "MALLOC_ARENA_MAX": 1}


def simulate(n_features, n_cells, n_donors, seed=SEED, as_sparse=False, block=500):
    """Cells and counts (cells x features; CSC if ``as_sparse``, built block by block)."""
    rng = np.random.default_rng(seed)
    donor = np.sort(rng.integers(0, n_donors, n_cells))
    stim = donor % 2 == 1
    size = rng.lognormal(0.0, 0.4, n_cells)
    cells = pd.DataFrame({"donor": [f"donor{d:03d}" for d in donor],
                          "condition": np.where(stim, "stim", "ctrl"),
                          "total_counts": size * 1000.0})
    base = rng.normal(-2.5, 1.2, n_features)   # about 90 % zeros, as in scRNA-seq
    theta = rng.uniform(0.5, 10.0, n_features)
    lfc = np.where(rng.random(n_features) < 0.1, 0.5, 0.0)
    parts = []
    for a in range(0, n_features, block):
        b = min(a + block, n_features)
        re = rng.normal(0.0, 0.2, (n_donors, b - a))[donor]
        mu = size[:, None] * np.exp(base[a:b] + lfc[a:b] * stim[:, None] + re)
        y = rng.negative_binomial(theta[a:b], theta[a:b] / (theta[a:b] + mu)).astype(np.float32)
        parts.append(sparse.csc_matrix(y) if as_sparse else y)
    Y = sparse.hstack(parts, format="csc") if as_sparse else np.hstack(parts)
    return cells, Y


def _median_time(fn, repeat):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def numpy_floor(repeat=5):
    """Median seconds of ``numpy.exp`` over 10^7 doubles: the machine's speed right now."""
    x = np.linspace(-1.0, 1.0, 10_000_000)
    out = np.empty_like(x)
    return _median_time(lambda: np.exp(x, out=out), repeat)


def _fit(cells, Y, **kw):
    from glmmnb import fit_many

    return fit_many(Y, "~ condition", data=cells, groups="donor", exposure="total_counts", **kw)


def _loop_per_feature(cells, Y, k=50):
    from glmmnb import NegBinMixedGLM

    X = np.column_stack([np.ones(len(cells)), (cells["condition"] == "stim").to_numpy(float)])
    groups, expo = cells["donor"].to_numpy(), cells["total_counts"].to_numpy()

    def run():
        for j in range(k):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                NegBinMixedGLM(np.asarray(Y[:, j], float), X, groups, exposure=expo).fit()
    return _median_time(run, 1) / k


_TMB = r"""
suppressMessages(library(glmmTMB))
d <- read.csv(commandArgs(trailingOnly = TRUE)[1])
genes <- grep("^g", names(d), value = TRUE)
el <- system.time(for (g in genes) {
  d$y <- d[[g]]
  fit <- glmmTMB(y ~ condition + (1 | donor) + offset(log(total_counts)), data = d,
                 family = nbinom2)
})[["elapsed"]]
cat(el / length(genes), as.character(packageVersion("glmmTMB")), "\n")
"""


def _glmmtmb_per_feature(cells, Y, k=3):
    """Seconds per gene for glmmTMB, or None without R/glmmTMB."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "d.csv"
        d = cells.copy()
        for j in range(k):
            d[f"g{j}"] = np.asarray(Y[:, j])
        d.to_csv(path, index=False)
        script = Path(tmp) / "tmb.R"
        script.write_text(_TMB)
        try:
            out = subprocess.run(["Rscript", str(script), str(path)], capture_output=True,
                                 text=True, timeout=600)
        except (OSError, subprocess.TimeoutExpired):
            return None, None
    if out.returncode != 0:
        return None, None
    sec, version = out.stdout.split()[:2]
    return float(sec), version


def _batch(args, floor):
    F, n, G = (200, 2000, 20) if args.quick else (2000, 5000, 20)
    cells, Y = simulate(F, n, G)
    _fit(cells, Y[:, :20])                          # warm-up: imports, first calls
    _fit(cells, Y[:, :40], n_jobs=2)                # and the worker processes
    serial = _median_time(lambda: _fit(cells, Y), args.repeat)
    jobs2 = _median_time(lambda: _fit(cells, Y, n_jobs=2), args.repeat)
    loop = _loop_per_feature(cells, Y, 10 if args.quick else 50)
    tmb, version = (None, None) if args.no_r else _glmmtmb_per_feature(cells, Y)
    row = {"features": F, "cells": n, "donors": G, "serial_s": serial, "n_jobs2_s": jobs2,
           "loop_extrapolated_s": loop * F, "glmmtmb_extrapolated_s": None if tmb is None
           else tmb * F, "glmmtmb_version": version, "floor_s": floor,
           "serial_per_floor": serial / floor, "features_per_s": F / serial}
    print(f"batch {F} x {n} x {G}: fit_many {serial:.2f} s (n_jobs=2 {jobs2:.2f} s), "
          f"loop of single fits {loop * F:.1f} s, glmmTMB "
          f"{'-' if tmb is None else format(tmb * F, '.0f')} s; "
          f"{F / serial:.0f} features/s; {serial / floor:.0f} x floor", flush=True)
    return row


def _scaling(args):
    rows = []
    base_f, base_n = (100, 2000) if args.quick else (500, 5000)
    for F, n in [(base_f, base_n), (2 * base_f, base_n), (4 * base_f, base_n),
                 (base_f, 2 * base_n), (base_f, 4 * base_n)]:
        cells, Y = simulate(F, n, 20)
        t = _median_time(lambda: _fit(cells, Y), args.repeat)
        rows.append({"features": F, "cells": n, "s": t, "us_per_feature_cell": 1e6 * t / (F * n)})
        print(f"scaling {F:>6} features x {n:>7} cells: {t:7.2f} s "
              f"({1e6 * t / (F * n):.3f} us per feature-cell)", flush=True)
    return rows


def _cluster(args):
    import distributed

    F, n = (200, 2000) if args.quick else (1000, 5000)
    cells, Y = simulate(F, n, 20)
    _fit(cells, Y[:, :40], n_jobs=2)
    jobs = _median_time(lambda: _fit(cells, Y, n_jobs=2), args.repeat)
    import dask

    # distributed's nannies set MALLOC_TRIM_THRESHOLD_=65536, which turns off
    # glibc's dynamic mmap threshold: every numpy temporary then comes from
    # mmap and its pages fault in afresh (a block fitted 4x slower); fixed
    # mmap and trim thresholds above a block's arrays keep the heap's pages
    # (docs/many_responses.rst)
    with dask.config.set({f"distributed.nanny.pre-spawn-environ.{k}": v
                          for k, v in WORKER_MALLOC.items()}), \
            distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                     dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        _fit(cells, Y[:, :20], client=client)
        dask_t = _median_time(lambda: _fit(cells, Y, client=client), args.repeat)
    print(f"cluster {F} x {n}: LocalCluster(2) {dask_t:.2f} s, n_jobs=2 {jobs:.2f} s, "
          f"throughput ratio {jobs / dask_t:.2f}", flush=True)
    return {"features": F, "cells": n, "localcluster2_s": dask_t, "n_jobs2_s": jobs,
            "throughput_ratio": jobs / dask_t}


def _large(args):
    from .timing import _peak_memory, _peak_tree_memory

    F, n, G = args.large_shape
    cells, Y = simulate(F, n, G, as_sparse=True)
    box = {}
    measure = _peak_memory if args.jobs == 1 else _peak_tree_memory
    start = time.perf_counter()
    peak, method = measure(lambda: box.update(t=_fit(cells, Y, n_jobs=args.jobs)))
    wall = time.perf_counter() - start
    data_mib = (Y.data.nbytes + Y.indices.nbytes + Y.indptr.nbytes) / 2**20
    print(f"large {F} x {n} x {G} (sparse, {Y.nnz / (F * n):.0%} non-zero, {data_mib:.0f} MiB): "
          f"{wall:.1f} s, {F / wall:.1f} features/s, peak extra memory {peak:.0f} MiB "
          f"({method})", flush=True)
    return {"features": F, "cells": n, "donors": G, "s": wall, "features_per_s": F / wall,
            "peak_mib": peak, "memory_method": method, "sparse_mib": data_mib,
            "density": Y.nnz / (F * n), "n_jobs": args.jobs}


def _parser():
    ap = argparse.ArgumentParser(prog="python -m benchmarks many", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes (well under a minute)")
    ap.add_argument("--repeat", type=int, default=3, help="timed repeats, median reported")
    ap.add_argument("--parts", default="batch,scaling,cluster",
                    help="comma-separated subset of batch,scaling,cluster,large")
    ap.add_argument("--large", action="store_true", help="also run the large sparse case")
    ap.add_argument("--large-shape", type=lambda s: tuple(int(float(x)) for x in s.split(",")),
                    default=(20_000, 100_000, 100), help="features,cells,donors of 'large'")
    ap.add_argument("--jobs", type=int, default=1,
                    help="n_jobs of the large case (1: the peak memory is this process's "
                         "high-water mark; more: the process tree's, sampled)")
    ap.add_argument("--no-r", action="store_true", help="do not time glmmTMB")
    ap.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    return ap


def main(argv=None):
    args = _parser().parse_args(argv)
    parts = args.parts.split(",") + (["large"] if args.large else [])
    floor = numpy_floor()
    print(f"numpy floor (exp over 1e7 doubles): {floor * 1e3:.1f} ms", flush=True)
    out = {"floor_s": floor}
    if "batch" in parts:
        out["batch"] = _batch(args, floor)
    if "scaling" in parts:
        out["scaling"] = _scaling(args)
    if "cluster" in parts:
        out["cluster"] = _cluster(args)
    if "large" in parts:
        out["large"] = _large(args)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
