"""Shared fixtures: the R reference cases stored beside the tests."""

import json
import pathlib
import shutil

import numpy as np
import pandas as pd
import pytest

DATA = pathlib.Path(__file__).parent / "data"
REFERENCE = DATA / "reference"

requires_r = pytest.mark.skipif(shutil.which("Rscript") is None, reason="Rscript is not installed")


def load_case(folder):
    """Data (subset to the fitted rows) and R's expected numbers of one case."""
    expected = json.loads((folder / "expected.json").read_text())
    data = pd.read_csv(folder / "data.csv")
    if expected.get("rows"):
        data = data.iloc[expected["rows"]]
    return data, expected


def fit_case(data, expected, **fit_kwargs):
    """Fit a reference case with glmmnb the way R fitted it."""
    from glmmnb import NegBinMixedGLM

    offset = None
    if expected.get("offset"):
        assert expected["offset"] == "log(exposure)"
        offset = np.log(data["exposure"].to_numpy())
    theta = expected["theta"] if expected["theta_source"] == "fixed" else None
    model = NegBinMixedGLM.from_formula(
        expected["formula"], data, groups=expected["groups"],
        re_formula=expected.get("re_formula"), vc_formula=expected.get("vc_formula"),
        offset=offset, theta=theta)
    return model.fit(**fit_kwargs)


def printed_random_effect(text, label):
    """The variance and SD a summary prints on the line of one random effect."""
    line = next(ln for ln in text.splitlines() if ln.strip().startswith(label))
    return tuple(float(v) for v in line.split()[-2:])


@pytest.fixture(scope="session")
def seed_data():
    from glmmnb.datasets import microscopy

    return microscopy.load_pandas().data


@pytest.fixture(scope="session")
def seed_fit(seed_data):
    from glmmnb import NegBinMixedGLM

    return NegBinMixedGLM.from_formula("counts ~ RNAi", seed_data, groups="slide").fit()
