"""Fresh simulated designs fitted by R in the same run (skipped without Rscript)."""

import pathlib
import subprocess

import numpy as np
import pandas as pd
import pytest

from conftest import requires_r
from glmmnb import NegBinMixedGLM

SCRIPT = pathlib.Path(__file__).parent / "r" / "fit_glmmpql.R"


def _simulate(seed, n_slides=12, cells=40):
    rng = np.random.default_rng(seed)
    slide = np.repeat([f"s{i:02d}" for i in range(n_slides)], cells)
    treat = np.repeat(np.where(np.arange(n_slides) % 2, "target", "control"), cells)
    area = rng.normal(size=slide.size)
    exposure = rng.uniform(0.5, 2.0, slide.size)
    b0 = np.repeat(rng.normal(scale=0.3, size=n_slides), cells)
    b1 = np.repeat(rng.normal(scale=0.2, size=n_slides), cells)
    mu = exposure * np.exp(1.2 + 0.4 * (treat == "target") + (0.3 + b1) * area + b0)
    counts = rng.negative_binomial(3.0, 3.0 / (3.0 + mu))
    return pd.DataFrame({"slide": slide, "treatment": treat, "area": area,
                         "exposure": exposure, "counts": counts})


def _r_fit(path, formula, groups, lhs="", offset=""):
    out = subprocess.run(["Rscript", str(SCRIPT), str(path), formula, groups, lhs, offset],
                         capture_output=True, text=True, check=True, timeout=120).stdout
    pairs = [kv.split("=") for kv in out.split()]
    vals = {}
    for key, value in pairs:
        vals.setdefault(key.rstrip("0123456789"), []).append(float(value))
    return vals


@requires_r
@pytest.mark.parametrize("seed, lhs, offset", [(11, "", "exposure"), (12, "area", "")])
def test_matches_r_on_a_fresh_design(tmp_path, seed, lhs, offset):
    data = _simulate(seed)
    path = tmp_path / "data.csv"
    data.to_csv(path, index=False)
    r = _r_fit(path, "counts ~ treatment + area", "slide", lhs, offset)
    res = NegBinMixedGLM.from_formula(
        "counts ~ treatment + area", data, groups="slide",
        re_formula="~area" if lhs else None, exposure=offset or None).fit()
    assert res.theta == pytest.approx(r["theta"][0], rel=1e-4)
    np.testing.assert_allclose(res.params, r["params"], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(res.bse, r["bse"], rtol=1e-3)
    assert res.ddf.tolist() == [int(d) for d in r["df"]]
    np.testing.assert_allclose(res.pvalues, r["pvalues"], rtol=1e-2, atol=1e-8)
    assert np.sqrt(res.scale) == pytest.approx(r["sigma"][0], rel=1e-3)
