"""Command line: ``python -m benchmarks [--sizes 1e5,1e6,1e7] [--quick] ...``.

Prints one row per configuration: glmmnb's median wall time of the whole
``from_formula(...).fit()`` and its split into the two, the numpy floor (one
PQL iteration's unavoidable data passes, :mod:`benchmarks.floor`, timed in
the same process) and every time as a multiple of it ("floor iterations"),
the peak extra memory and the data frame's own size, R's time for
``glm.nb`` + ``glmmPQL`` on the identical data (and, apart, its ``read.csv``
+ ``factor()``), the speed ratio, the largest relative difference of the
fixed effects and whether the two agree (every fixed effect and theta within
1e-4 relative).

R runs only where ``Rscript`` with MASS and nlme is installed, and by
default only up to 1e5 rows (about 5 s there; 1e6 rows take minutes):
raise ``--r-max-rows`` to time it on more.

``python -m benchmarks many ...`` runs the many-responses suite instead
(:mod:`benchmarks.many`: ``fit_many`` on thousands of features).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import platform
import sys

from . import r_runner, suite, timing

AGREE_RTOL = 1e-4
QUICK_SIZES = [10_000, 100_000]
DEFAULT_SIZES = [100_000, 1_000_000, 10_000_000]


def _sizes(text):
    return [int(float(s)) for s in text.split(",") if s.strip()]


def _rel_diff(a, b):
    return max(abs(x - y) / max(abs(y), 1e-12) for x, y in zip(a, b))


def _fmt(x, spec):
    return "-" if x is None else format(x, spec)


def scaling_exponent(rows):
    """Least-squares slope of log(time) on log(rows) for the ``ri`` rows, 1e5..1e7."""
    pts = [(math.log(r["rows"]), math.log(r["glmmnb_s"])) for r in rows
           if r["config"] == "ri" and 100_000 <= r["rows"] <= 10_000_000]
    if len(pts) < 2:
        return None
    mx = sum(p[0] for p in pts) / len(pts)
    my = sum(p[1] for p in pts) / len(pts)
    sxx = sum((p[0] - mx) ** 2 for p in pts)
    return sum((p[0] - mx) * (p[1] - my) for p in pts) / sxx


def _parser():
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=_sizes, default=None,
                    help="comma-separated row counts (groups = rows / 100); "
                         "default 1e5,1e6,1e7 (quick: 1e4,1e5)")
    ap.add_argument("--repeat", type=int, default=None,
                    help="timed repeats per configuration, median reported (default 5, quick 3)")
    ap.add_argument("--no-r", action="store_true", help="do not time R")
    ap.add_argument("--r-max-rows", type=int, default=100_000,
                    help="time R only up to this many rows (default 1e5)")
    ap.add_argument("--r-repeat", type=int, default=1, help="timed R repeats (default 1)")
    ap.add_argument("--no-memory", action="store_true", help="skip the peak-memory runs")
    ap.add_argument("--configs", default="ri,ri_int,rs,nested,subsample",
                    help="comma-separated subset of ri,ri_int,rs,nested,subsample,laplace "
                         "(laplace: the maximum-likelihood benchmark of benchmarks/laplace.py)")
    ap.add_argument("--csv", metavar="PATH", help="also write the table as CSV")
    ap.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    ap.add_argument("--quick", action="store_true",
                    help="small sizes and few repeats (well under a minute)")
    return ap


def _run_one(config, n, g, args, repeat, use_r):
    """Time one configuration (and R on the same data where asked); one table row."""
    res = timing.measure(config, n, g, repeat=repeat, memory=not args.no_memory)
    floor = res.get("floor_s")
    row = {"config": config.name, "rows": n, "groups": g, "glmmnb_s": res["median"],
           "glmmnb_times": res["times"], "formula_s": res.get("formula_s"),
           "fit_s": res.get("fit_s"), "floor_s": floor,
           "floor_iters": None if not floor else res["median"] / floor,
           "peak_mib": res.get("peak_mib"), "frame_mib": res.get("frame_mib"),
           "memory_method": res.get("memory_method"), "params": res["params"],
           "theta": res["theta"], "r_s": None, "r_read_s": None, "ratio": None,
           "max_rel_diff": None, "agree": None}
    if use_r and config.r_random is not None and n <= args.r_max_rows:
        data = suite.load_data(config, n, g)
        r = r_runner.time_r(data, suite.FORMULA, config.r_random, repeat=args.r_repeat)
        diff = _rel_diff(res["params"], r.params)
        theta_diff = abs(res["theta"] - r.theta) / r.theta
        row.update(r_s=r.median, r_times=r.times, r_read_s=r.read_s, r_params=r.params,
                   r_theta=r.theta, ratio=r.median / res["median"], max_rel_diff=diff,
                   theta_rel_diff=theta_diff,
                   agree="yes" if max(diff, theta_diff) <= AGREE_RTOL else "no")
    return row


_HEADER = ["config", "rows", "groups", "glmmnb_s", "formula_s", "fit_s", "floor_s",
           "floor_iters", "peak_mib", "frame_mib", "r_s", "r_read_s", "ratio",
           "max_rel_diff", "agree"]
_COLUMNS = [("config", "<10", "s"), ("rows", ">10", "d"), ("groups", ">8", "d"),
            ("glmmnb_s", ">10", ".3f"), ("formula_s", ">9", ".3f"), ("fit_s", ">8", ".3f"),
            ("floor_s", ">9", ".4f"), ("floor_iters", ">7", ".1f"), ("peak_mib", ">10", ".0f"),
            ("frame_mib", ">10", ".0f"), ("r_s", ">8", ".2f"), ("r_read_s", ">8", ".2f"),
            ("ratio", ">7", ".1f"), ("max_rel_diff", ">10", ".1e"), ("agree", ">6", "s")]
_TITLES = {"glmmnb_s": "glmmnb s", "formula_s": "formula", "fit_s": "fit",
           "floor_s": "floor s", "floor_iters": "floors", "peak_mib": "peak MiB",
           "frame_mib": "frame MiB", "r_s": "R s", "r_read_s": "R read",
           "max_rel_diff": "rel diff"}


def _line(row=None):
    """One printed line of the table (the header without ``row``)."""
    cells = []
    for key, align, spec in _COLUMNS:
        width = align[1:]
        if row is None:
            cells.append(format(_TITLES.get(key, key), align[0] + width))
        else:
            cells.append(format(_fmt(row.get(key), spec), align[0] + width))
    return "".join(cells)


def _write(rows, args, repeat, expo):
    if args.csv:
        with open(args.csv, "w", newline="") as fh:
            wr = csv.DictWriter(fh, fieldnames=_HEADER, extrasaction="ignore")
            wr.writeheader()
            wr.writerows(rows)
    if args.json:
        meta = {"python": sys.version.split()[0], "platform": platform.platform(),
                "repeat": repeat, "scaling_exponent": expo, "agree_rtol": AGREE_RTOL}
        with open(args.json, "w") as fh:
            json.dump({"meta": meta, "results": rows}, fh, indent=2)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["many"]:
        from . import many

        return many.main(argv[1:])
    args = _parser().parse_args(argv)
    sizes = args.sizes or (QUICK_SIZES if args.quick else DEFAULT_SIZES)
    repeat = args.repeat or (3 if args.quick else 5)
    wanted = set(args.configs.split(","))
    use_r = False
    if not args.no_r:
        use_r = r_runner.r_available()
        if not use_r:
            print("R not found (Rscript with MASS and nlme): R is not timed", flush=True)
    print(_line(), flush=True)
    rows = []
    for config, n, g in suite.plan(sizes, quick=args.quick):
        if config.name not in wanted:
            continue
        row = _run_one(config, n, g, args, repeat, use_r)
        rows.append(row)
        print(_line(row), flush=True)
    if "laplace" in wanted:
        from . import laplace

        laplace.main(["--no-r"] if args.no_r else [])
    expo = scaling_exponent(rows)
    if expo is not None:
        print(f"scaling exponent of the ri fit time, 1e5..1e7 rows: {expo:.2f} "
              "(1 = linear)")
    _write(rows, args, repeat, expo)
    return 0


if __name__ == "__main__":
    sys.exit(main())
