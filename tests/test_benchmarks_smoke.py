"""The benchmark package runs: deterministic data and one quick configuration.

No timing thresholds here: the numbers depend on the machine.
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import data, suite, timing  # noqa: E402
from benchmarks.__main__ import main, scaling_exponent  # noqa: E402


def test_simulate_is_deterministic():
    a = data.simulate(2000, 20)
    b = data.simulate(2000, 20)
    assert a.equals(b)
    assert list(a.columns) == ["counts", "treatment", "area", "slide"]
    assert a["slide"].nunique() == 20
    # treatment is constant within a slide, area varies
    assert (a.groupby("slide")["treatment"].nunique() == 1).all()
    assert (a.groupby("slide")["area"].nunique() > 1).all()
    assert not a.equals(data.simulate(2000, 20, seed=1))


def test_quick_configuration_runs_in_process():
    config = suite.CONFIGS["ri"]
    df = suite.load_data(config, 2000, 20)
    params, theta = suite.make_fit(config, df)()
    assert params.shape == (3,) and np.all(np.isfinite(params)) and theta > 0


def test_worker_and_cli(tmp_path, capsys):
    res = timing.run_worker(suite.CONFIGS["ri"], 2000, 20, repeat=1)
    assert res["median"] > 0 and len(res["params"]) == 3 and res["floor_s"] > 0
    out_json = tmp_path / "bench.json"
    out_csv = tmp_path / "bench.csv"
    assert main(["--sizes", "2000", "--repeat", "1", "--no-r", "--no-memory",
                 "--configs", "ri", "--json", str(out_json), "--csv", str(out_csv)]) == 0
    printed = capsys.readouterr().out
    assert "glmmnb s" in printed and "ri" in printed
    assert out_json.exists() and out_csv.read_text().startswith("config,rows")


def test_scaling_exponent():
    rows = [{"config": "ri", "rows": n, "glmmnb_s": n * 1e-6} for n in (10**5, 10**6, 10**7)]
    assert abs(scaling_exponent(rows) - 1.0) < 1e-12


def test_string_and_integer_labels_hold_the_same_numbers():
    s = data.simulate(2000, 20, n_experiments=4)
    i = data.simulate(2000, 20, labels="int", n_experiments=4)
    assert s["slide"].dtype.kind in "OT" and i["slide"].dtype.kind == "i"
    assert (s["treatment"] == "treated").astype(int).equals(i["treatment"])
    assert s["experiment"].nunique() == 4 and s[["counts", "area"]].equals(i[["counts", "area"]])


def test_floor_iteration_sums():
    from benchmarks.floor import floor_arrays, floor_iteration

    y, X, g, n_groups = floor_arrays(data.simulate(2000, 20))
    sums, xtwx = floor_iteration(y, X, g, n_groups, np.zeros(3), np.zeros(n_groups), 5.0)
    w = 1.0 / (1.0 + 1.0 / 5.0)
    np.testing.assert_allclose(sums[0], np.bincount(g) * w)
    np.testing.assert_allclose(xtwx, w * X.T @ X)
