"""Largest differences between glmmnb and the R references in prediction/.

The figures of the closing note; the tests assert them within tolerances.
Run from the repository root: ``python tests/data/r/prediction_differences.py``.
"""

import json
import pathlib

import numpy as np
import pandas as pd

from glmmnb import NegBinMixedGLM

ROOT = pathlib.Path(__file__).parent / "prediction"
LIMITS = ["mean_ci_lower", "mean_ci_upper"]


def load(case):
    folder = ROOT / case
    return json.loads((folder / "expected.json").read_text()), pd.read_csv(folder / "data.csv")


def rel(a, b):
    a, b = np.asarray(a, dtype=float).ravel(), np.asarray(b, dtype=float).ravel()
    return float(np.max(np.abs(a / b - 1.0)))


def limits(block):
    return np.column_stack([block[k] for k in LIMITS])


def single_level(out):
    for case, factor in [("seed", "RNAi"), ("trt_area", "trt"), ("trt_area_slope", "trt")]:
        e, d = load(case)
        res = NegBinMixedGLM.from_formula(e["formula"], d, groups="slide",
                                          re_formula=e["re_formula"]).fit()
        frame = res.get_prediction(pd.DataFrame(e["grid"])).summary_frame()
        out[f"{case}: population interval"] = rel(frame[LIMITS], limits(e["population"]))
        cond = res.get_prediction(pd.DataFrame(e["conditional"]["grid"]), which="linear",
                                  conditional=True)
        out[f"{case}: conditional SE"] = rel(cond.se, e["conditional"]["se_link"])
        mm = res.marginal_means(factor)
        out[f"{case}: emmeans interval"] = rel(mm.means[LIMITS], limits(e["emmeans"]["means"]))
        out[f"{case}: emmeans ratio p"] = rel(mm.ratios["p"], e["emmeans"]["ratios"]["p"])
        recov = [v.to_numpy() for v in res.random_effects_cov.values()]
        out[f"{case}: random_effects_cov"] = rel(recov, e["random_effects_cov"])
        out[f"{case}: bse_re vs apVar"] = rel(res.bse_re, e["apvar"]["bse_re"])
        for kind in ("pearson", "deviance", "working"):
            ours = np.asarray(getattr(res, f"resid_{kind}"))[:20]
            out[f"{case}: resid_{kind} (abs)"] = float(
                np.max(np.abs(ours - e["residuals_head"][kind])))


def other_cases(out):
    e, d = load("nested")
    res = NegBinMixedGLM.from_formula(e["formula"], d, groups="experiment",
                                      vc_formula=e["vc_formula"]).fit()
    cond = res.get_prediction(pd.DataFrame(e["conditional"]["grid"]), which="linear",
                              conditional=True)
    out["nested: conditional SE"] = rel(cond.se, e["conditional"]["se_link"])
    e, d = load("offset")
    res = NegBinMixedGLM.from_formula(e["formula"], d, groups="slide", exposure="exposure").fit()
    frame = res.get_prediction(pd.DataFrame(e["grid"])).summary_frame()
    out["offset: mean vs R's predict"] = rel(frame["mean"], e["r_predict"])
    e, d = load("interaction")
    res = NegBinMixedGLM.from_formula(e["formula"], d, groups="slide").fit()
    for factor in ("treatment", "phase"):
        mm = res.marginal_means(factor)
        out[f"interaction: emmeans {factor}"] = rel(mm.means[LIMITS],
                                                    limits(e[factor]["emmeans"]["means"]))


if __name__ == "__main__":
    figures = {}
    single_level(figures)
    other_cases(figures)
    for name, value in figures.items():
        print(f"{name:40s} {value:.1e}")
