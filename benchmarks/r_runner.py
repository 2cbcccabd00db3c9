"""Time R's ``MASS::glm.nb`` + ``MASS::glmmPQL`` on the benchmark data.

The data frame is written to a temporary CSV (full float precision, so R
reads the very numbers Python fitted) and fitted inside one ``Rscript``
process.  The model fitting is timed with ``system.time`` around
``glm.nb`` and ``glmmPQL``; reading the CSV and making the factors is timed
separately and reported apart (glmmnb's time likewise starts from a data
frame in memory).  The script prints one line of ``key=value`` pairs: the
elapsed seconds of each timed repeat, the read time, theta and the fixed
effects, so the caller can check that both programs agree.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile

__all__ = ["r_available", "time_r", "RResult"]

_SCRIPT = r"""
suppressMessages({library(MASS); library(nlme)})
args <- commandArgs(trailingOnly = TRUE)
read_s <- system.time({
  dat <- read.csv(args[1])
  for (col in strsplit(args[6], ",")[[1]]) dat[[col]] <- factor(dat[[col]])
})[["elapsed"]]
fixed <- as.formula(args[2])
random <- as.formula(args[3])
theta_fixed <- as.numeric(args[4])
reps <- as.integer(args[5])
times <- numeric(reps)
for (i in seq_len(reps)) {
  times[i] <- system.time({
    theta <- if (is.na(theta_fixed)) glm.nb(fixed, data = dat)$theta else theta_fixed
    fit <- glmmPQL(fixed, random = random, data = dat, verbose = FALSE,
                   family = negative.binomial(theta = theta))
  })[["elapsed"]]
}
cf <- fixef(fit)
out <- c(read = read_s, theta = theta, params = unname(cf))
cat("elapsed=", paste(sprintf("%.6f", times), collapse = ","), " ",
    paste(names(out), sprintf("%.15g", out), sep = "=", collapse = " "), "\n", sep = "")
"""

_CHECK = 'ok <- all(sapply(c("MASS", "nlme"), requireNamespace, quietly = TRUE)); cat(ok)'


class RResult:
    """Elapsed seconds of each repeat, theta, the fixed effects, and R's read time."""

    def __init__(self, times, theta, params, read_s=None):
        self.times = times
        self.theta = theta
        self.params = params
        self.read_s = read_s

    @property
    def median(self):
        s = sorted(self.times)
        n = len(s)
        return s[n // 2] if n % 2 else 0.5 * (s[n // 2 - 1] + s[n // 2])


def r_available():
    """True when ``Rscript`` is on the PATH and has MASS and nlme."""
    exe = shutil.which("Rscript")
    if exe is None:
        return False
    try:
        out = subprocess.run([exe, "-e", _CHECK], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.stdout.strip().endswith("TRUE")


def time_r(data, formula, random="~ 1 | slide", theta=None, repeat=1, timeout=3600):
    """Fit ``data`` with R and return an :class:`RResult`.

    Parameters
    ----------
    data : pandas.DataFrame
        The very frame glmmnb fitted.
    formula : str
        Fixed part, e.g. ``"counts ~ treatment + area"``.
    random : str
        R's random part, e.g. ``"~ area | slide"`` or ``"~ 1 | experiment/slide"``.
    theta : float, optional
        Fixed theta; ``None`` times ``glm.nb`` too.
    repeat : int
        Timed repeats inside the one R process.

    Notes
    -----
    The grouping columns and every string column become factors, timed with
    ``read.csv`` as ``read_s`` and not part of the fit time.
    """
    factors = [c for c in data.columns
               if data[c].dtype.kind not in "iufb" or c in ("slide", "experiment")]
    with tempfile.TemporaryDirectory(prefix="glmmnb-bench-") as tmp:
        csv = os.path.join(tmp, "data.csv")
        script = os.path.join(tmp, "fit.R")
        data.to_csv(csv, index=False, float_format="%.17g")
        with open(script, "w") as fh:
            fh.write(_SCRIPT)
        args = [shutil.which("Rscript"), "--vanilla", script, csv, formula, random,
                "NA" if theta is None else repr(float(theta)), str(int(repeat)),
                ",".join(factors)]
        out = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"Rscript failed:\n{out.stderr[-2000:]}")
    line = [ln for ln in out.stdout.splitlines() if ln.startswith("elapsed=")][-1]
    fields = dict(kv.split("=", 1) for kv in line.split())
    times = [float(t) for t in fields.pop("elapsed").split(",")]
    theta_r = float(fields.pop("theta"))
    read_s = float(fields.pop("read"))
    params = [float(v) for k, v in sorted(
        ((k, v) for k, v in fields.items() if k.startswith("params")),
        key=lambda kv: int(kv[0][6:] or 0))]
    return RResult(times, theta_r, params, read_s)
