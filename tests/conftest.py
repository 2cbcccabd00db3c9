"""Shared fixtures: the R reference cases stored beside the tests."""

import functools
import json
import os
import pathlib
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

DATA = pathlib.Path(__file__).parent / "data"
REFERENCE = DATA / "reference"

# Tests that run R live carry this marker (optionally naming R packages beyond
# MASS and nlme: @pytest.mark.requires_r("lme4")). Without R they skip, unless
# GLMMNB_REQUIRE_R=1 (CI sets it): then they fail, so R's absence is never silent.
requires_r = pytest.mark.requires_r
R_PACKAGES = ("MASS", "nlme")


@functools.lru_cache(maxsize=None)
def r_missing(packages=R_PACKAGES):
    """Why R cannot run these tests (a message), or None when it can."""
    exe = shutil.which("Rscript")
    if exe is None:
        return "Rscript is not installed"
    code = "for (p in commandArgs(TRUE)) if (!requireNamespace(p, quietly = TRUE)) cat(p, '')"
    out = subprocess.run([exe, "-e", code, *packages], capture_output=True,
                         text=True, timeout=120)
    lacking = out.stdout.split()
    return f"R lacks the package(s) {', '.join(lacking)}" if lacking else None


def pytest_configure(config):
    config.addinivalue_line("markers", "requires_r(*packages): the test runs Rscript live")


def pytest_runtest_setup(item):
    marker = item.get_closest_marker("requires_r")
    if marker is None:
        return
    why = r_missing(tuple(dict.fromkeys(R_PACKAGES + tuple(marker.args))))
    if why is None:
        return
    if os.environ.get("GLMMNB_REQUIRE_R") == "1":
        pytest.fail(f"GLMMNB_REQUIRE_R=1 but {why}", pytrace=False)
    pytest.skip(why)


# Under mutmut (tox -e mutation) every test fits afresh. mutmut forks its
# workers from the process that ran the suite, so a cached fit would be the
# unmutated one, and it runs for a mutant only the tests that called the
# mutated function, so a fit shared by several tests would be charged to the
# first of them alone.
UNDER_MUTATION = "MUTANT_UNDER_TEST" in os.environ


def fit_scope(fixture_name, config):
    """Scope of a fixture that holds a fit: the module, or each test under mutmut."""
    return "function" if UNDER_MUTATION else "module"


def fit_cache(func):
    """``functools.lru_cache`` for functions that fit, except under mutmut."""
    return func if UNDER_MUTATION else functools.lru_cache(maxsize=None)(func)


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


def lmm_reducer(levels, X, Z, z, w):
    """The inner LMM's profiled deviance (``core.lmm._Reducer``) of one working data set."""
    from glmmnb.core._blocks import sum_log
    from glmmnb.core.lmm import _Reducer, _row_structure

    T = _row_structure(X, Z, levels).crossproducts(z, w)
    return _Reducer(T, levels, len(z), X.shape[1], float(sum_log(w)))


def printed_random_effect(text, label):
    """The variance and SD a summary prints on the line of one random effect."""
    line = next(ln for ln in text.splitlines() if ln.strip().startswith(label))
    return tuple(float(v) for v in line.split()[-2:])


@pytest.fixture(scope="session")
def seed_data():
    from glmmnb.datasets import microscopy

    return microscopy.load_pandas().data


@pytest.fixture(scope=fit_scope)
def seed_fit(seed_data):
    from glmmnb import NegBinMixedGLM

    return NegBinMixedGLM.from_formula("counts ~ RNAi", seed_data, groups="slide").fit()
