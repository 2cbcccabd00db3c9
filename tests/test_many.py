"""fit_many: the numbers of one NegBinMixedGLM fit per feature, whatever the input and backend."""

import types
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import sparse
from statsmodels.stats.multitest import multipletests

from glmmnb import NegBinMixedGLM, fit_many
from glmmnb.datasets import singlecell

TERM = "condition[T.stim]"


@pytest.fixture(scope="module")
def cells():
    return singlecell.load().cells


@pytest.fixture(scope="module")
def counts(cells):
    """Twenty genes of the shipped data set plus hard features."""
    Y = singlecell.load().counts.iloc[:, :20].copy()
    rng = np.random.default_rng(5)
    Y["all_zero"] = 0
    Y["constant"] = 2
    Y["tiny"] = rng.poisson(0.05, len(Y))
    Y["poisson"] = rng.poisson(2.0 * cells["total_counts"].to_numpy() / 1000.0)
    Y["separated"] = np.where(cells["condition"].to_numpy() == "stim", rng.poisson(2.0, len(Y)), 0)
    return Y


@pytest.fixture(scope="module")
def table(counts, cells):
    return fit_many(counts, "~ condition", data=cells, groups="donor", exposure="total_counts")


def _single(y, cells):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = NegBinMixedGLM.from_formula("y ~ condition", cells.assign(y=y), groups="donor",
                                          exposure="total_counts").fit()
    return res, [str(w.message) for w in caught]


def test_every_feature_is_its_single_fit(table, counts, cells):
    for name in counts.columns:
        rows = table.loc[name]
        if name in ("all_zero", "constant"):
            assert rows["error"].notna().all() and rows["coef"].isna().all()
            with pytest.raises(ValueError):
                _single(counts[name].to_numpy(), cells)
            continue
        try:
            res, caught = _single(counts[name].to_numpy(), cells)
        except ValueError as err:
            # a feature the single fit refuses is refused here too, for the same reason
            assert rows["error"].notna().all() and rows["coef"].isna().all(), name
            assert str(err).split(":")[0] in rows["error"].iloc[0], name
            continue
        if res.separation is not None:
            # the single fit goes on in a separated basis (as R); fit_many still refuses
            assert rows["error"].str.contains("complete separation").all(), name
            continue
        assert rows["error"].isna().all(), name
        # issue 12: within 1e-10 of the single fit (both take Newton's
        # optimum of the same deviance); measured 7e-13 and 2e-12, and 2e-9 for
        # the bse of a feature whose variance sits at the boundary (0 against 1e-14)
        np.testing.assert_allclose(rows["coef"], res.params, atol=1e-10 * res.bse.min())
        np.testing.assert_allclose(rows["bse"], res.bse, rtol=1e-8)
        np.testing.assert_allclose(rows["p"], res.pvalues, rtol=1e-7, atol=1e-14)
        np.testing.assert_array_equal(rows["ddf"], res.ddf)
        assert rows["n_iter"].iloc[0] == res.n_iter
        assert bool(rows["converged"].iloc[0]) == res.converged
        if res.theta < 1e4:
            assert abs(rows["theta"].iloc[0] - res.theta) <= 1e-6 * res.se_theta
        # boundary floor: at a zero variance the batched Newton lands on 0 and
        # the single fit's bounded search a relative SD of ~1e-7 (variance 1e-14)
        assert rows["var_re"].iloc[0] == pytest.approx(res.cov_re.iloc[0, 0], rel=1e-9, abs=1e-12)
        ran_away = any("ran off" in m for m in caught)
        warning = rows["warning"].iloc[0]
        assert ran_away == (not pd.isna(warning) and "ran off" in warning)
        singular = any("singular" in m for m in caught)
        assert singular == (not pd.isna(warning) and "singular" in warning), name


def test_table_layout_and_bh(table, counts):
    assert table.index.names == ["feature", "term"]
    assert list(table.index.get_level_values("feature").unique()) == list(counts.columns)
    p = table.xs(TERM, level="term")["p"]
    ok = p.notna()
    expected = multipletests(p[ok], method="fdr_bh")[1]
    np.testing.assert_allclose(table.xs(TERM, level="term")["p_adj"][ok], expected)
    assert table.loc["tiny", "warning"].notna().all()   # donors with no count at all


@pytest.mark.parametrize("kind", ["array", "csr", "csc", "chunks", "jobs", "dask"])
def test_same_numbers_whatever_the_input(kind, table, counts, cells):
    names = list(counts.columns)
    Y = counts.to_numpy()
    kwargs = dict(data=cells, groups="donor", exposure="total_counts")
    if kind == "array":
        out = fit_many(Y, "~ condition", feature_names=names, **kwargs)
    elif kind in ("csr", "csc"):
        M = sparse.csr_matrix(Y) if kind == "csr" else sparse.csc_matrix(Y)
        out = fit_many(M, "~ condition", feature_names=names, **kwargs)
    elif kind == "chunks":
        out = fit_many(counts, "~ condition", chunk_size=3, progress=True, **kwargs)
    elif kind == "dask":
        da = pytest.importorskip("dask.array")
        out = fit_many(da.from_array(Y, chunks=(len(Y), 5)), "~ condition",
                       feature_names=names, **kwargs)
    else:
        from joblib import parallel_config

        # threads: the same path as worker processes, without seconds of process start-up
        with parallel_config(backend="threading"):
            out = fit_many(counts, "~ condition", chunk_size=6, n_jobs=2, **kwargs)
    pd.testing.assert_frame_equal(out, table)


def test_anndata_like_object_uses_obs_and_layer(table, counts, cells):
    adata = types.SimpleNamespace(obs=cells, var_names=pd.Index(counts.columns),
                                  X=np.zeros(counts.shape), layers={"counts": counts.to_numpy()})
    out = fit_many(adata, "~ condition", groups="donor", exposure="total_counts",
                   layer="counts")
    pd.testing.assert_frame_equal(out, table)


def test_real_anndata(table, counts, cells):
    anndata = pytest.importorskip("anndata")
    adata = anndata.AnnData(X=sparse.csr_matrix(counts.to_numpy(float)), obs=cells.copy())
    adata.var_names = list(counts.columns)
    out = fit_many(adata, "~ condition", groups="donor", exposure="total_counts")
    pd.testing.assert_frame_equal(out, table)


def test_dask_cluster_gives_the_serial_numbers(table, counts, cells):
    distributed = pytest.importorskip("distributed")
    da = pytest.importorskip("dask.array")
    kwargs = dict(data=cells, groups="donor", exposure="total_counts")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        out = fit_many(counts, "~ condition", chunk_size=8, client=client, **kwargs)
        pd.testing.assert_frame_equal(out, table)
        Yd = da.from_array(counts.to_numpy(), chunks=(len(counts), 8))
        out = fit_many(Yd, "~ condition", feature_names=list(counts.columns), client=client,
                       chunk_size=8, **kwargs)
        pd.testing.assert_frame_equal(out, table)
        from joblib import parallel_config

        with parallel_config(backend="dask"):
            out = fit_many(counts, "~ condition", chunk_size=8, n_jobs=2, **kwargs)
        pd.testing.assert_frame_equal(out, table)


def test_pool_workers_tune_their_malloc(table, counts, cells, monkeypatch):
    """joblib tasks tune glibc's heap in a pool's worker process, never in the caller."""
    import glmmnb.workflows.many as many

    calls = []
    monkeypatch.setattr(many, "tune_malloc", lambda: calls.append(1))
    kwargs = dict(data=cells, groups="donor", exposure="total_counts", chunk_size=13)
    from joblib import parallel_config

    with parallel_config(backend="threading"):
        out = fit_many(counts, "~ condition", n_jobs=2, **kwargs)
        assert calls == []                                # threads: the caller's process
        monkeypatch.setattr(many, "in_worker_process", lambda: True)
        tuned = fit_many(counts, "~ condition", n_jobs=2, **kwargs)
    assert len(calls) == 2                                # once per task
    pd.testing.assert_frame_equal(out, table)
    pd.testing.assert_frame_equal(tuned, table)


def test_worker_process_detection_and_tuning():
    import multiprocessing
    import sys

    from glmmnb.workflows import _workers

    assert not _workers.in_worker_process()
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        assert pool.apply(_workers.in_worker_process)
        tuned = pool.apply(_workers.tune_malloc)
    assert tuned == (sys.platform == "linux" and __import__("platform").libc_ver()[0] == "glibc")
    assert not _workers._tuned                            # the caller's heap is untouched


def test_dask_workers_keep_their_malloc(monkeypatch):
    """In a Dask worker the malloc settings are the cluster's (its nanny's environment)."""
    distributed = pytest.importorskip("distributed")
    import multiprocessing

    from glmmnb.workflows import _workers

    monkeypatch.setattr(multiprocessing, "parent_process", lambda: object())
    assert _workers.in_worker_process()                   # a child, outside Dask
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        assert client.submit(_workers.in_worker_process, pure=False).result() is False


def test_bad_input_is_a_clear_error(counts, cells):
    before = cells.copy()
    with pytest.raises(ValueError, match="right-hand side"):
        fit_many(counts, "y ~ condition", data=cells, groups="donor")
    with pytest.raises(ValueError, match="rows"):
        fit_many(counts.iloc[:10], "~ condition", data=cells, groups="donor")
    with pytest.raises(ValueError, match="AnnData"):
        fit_many(counts, "~ condition", data=cells, groups="donor", layer="counts")
    with pytest.raises(ValueError, match="feature_names"):
        fit_many(counts.to_numpy(), "~ condition", data=cells, groups="donor",
                 feature_names=["a"])
    with pytest.raises(NotImplementedError):
        fit_many(counts, "~ condition", data=cells, groups="donor", method="laplace")
    pd.testing.assert_frame_equal(cells, before)


def test_missing_count_is_recorded_not_raised(cells):
    Y = singlecell.load().counts.iloc[:, :3].astype(float)
    Y.iloc[4, 1] = np.nan
    out = fit_many(Y, "~ condition", data=cells, groups="donor", exposure="total_counts")
    assert "missing" in out.loc["gene001", "error"].iloc[0]
    assert out.loc["gene000", "error"].isna().all()


@pytest.mark.parametrize("theta", [3.0, np.inf])
def test_fixed_theta(cells, theta):
    Y = singlecell.load().counts.iloc[:, :3]
    out = fit_many(Y, "~ condition", data=cells, groups="donor", exposure="total_counts",
                   theta=theta)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = NegBinMixedGLM.from_formula("y ~ condition", cells.assign(y=Y["gene002"].to_numpy()),
                                          groups="donor", exposure="total_counts",
                                          theta=theta).fit()
    np.testing.assert_allclose(out.loc["gene002", "coef"], res.params, atol=1e-6 * res.bse.min())
    np.testing.assert_allclose(out.loc["gene002", "bse"], res.bse, rtol=1e-6)
    assert (out["theta"] == theta).all() and out.loc["gene002", "n_iter"].iloc[0] == res.n_iter


def test_cli_fit_many(tmp_path, cells, capsys):
    from glmmnb.cli import main

    genes = singlecell.load().counts.iloc[:, :4].reset_index(drop=True)
    path = tmp_path / "cells.csv"
    pd.concat([cells, genes], axis=1).to_csv(path, index=False)
    out = tmp_path / "results.csv"
    assert main(["fit-many", str(path), "--formula", "~ condition", "--groups", "donor",
                 "--exposure", "total_counts", "--features-from-column", "gene000",
                 "--out", str(out)]) == 0
    table = pd.read_csv(out, index_col=["feature", "term"])
    direct = fit_many(genes, "~ condition", data=cells, groups="donor", exposure="total_counts")
    np.testing.assert_allclose(table["coef"], direct["coef"], rtol=1e-12)
    assert list(table.index.get_level_values(0).unique()) == list(genes.columns)
    # default features: the numeric columns the model does not use
    assert main(["fit-many", str(path), "--formula", "~ condition", "--groups", "donor",
                 "--exposure", "total_counts"]) == 0
    assert "gene003" in capsys.readouterr().out
    assert main(["fit-many", str(path), "--formula", "~ condition", "--groups", "plate"]) == 2
    assert "plate" in capsys.readouterr().err


def test_volcano_and_histogram_draw_the_table(table):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from glmmnb.workflows.plotting import plot_pvalue_histogram, plot_volcano

    rows = table.xs(TERM, level="term").dropna(subset=["p"])
    ax = plot_volcano(table, TERM, label_top=2)
    hits = rows["p_adj"] < 0.05
    red = ax.collections[1].get_offsets()
    np.testing.assert_allclose(np.sort(red[:, 0]), np.sort(rows["coef"][hits]))
    assert len(ax.texts) == 2
    ax = plot_pvalue_histogram(table, TERM, bins=5)
    heights = [p.get_height() for p in ax.patches]
    assert heights == np.histogram(rows["p"], bins=5, range=(0, 1))[0].tolist()
    with pytest.raises(KeyError, match="terms are"):
        plot_volcano(table, "nothere")
    plt.close("all")


def test_benchmark_data_is_deterministic_and_sparse_matches_dense():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from benchmarks.many import simulate

    cells, dense = simulate(30, 400, 6, block=7)
    cells2, csc = simulate(30, 400, 6, as_sparse=True, block=7)
    assert cells.equals(cells2) and sparse.isspmatrix_csc(csc)
    np.testing.assert_array_equal(csc.toarray(), dense)
    assert (cells.groupby("donor")["condition"].nunique() == 1).all()


def test_an_unforeseen_failure_costs_one_feature_not_the_run(monkeypatch, cells):
    import glmmnb.workflows.many as many

    fit_sub = many._fit_sub

    def failing(md, Ys, sub, *args):
        if 2 in sub:
            raise FloatingPointError("overflow in a place nobody checked")
        return fit_sub(md, Ys, sub, *args)

    monkeypatch.setattr(many, "_fit_sub", failing)
    Y = singlecell.load().counts.iloc[:, :5]
    out = fit_many(Y, "~ condition", data=cells, groups="donor", exposure="total_counts")
    errors = out["error"].groupby(level="feature").first()
    assert errors.isna().sum() == 4 and "nobody checked" in errors["gene002"]
    assert out.loc["gene002", "coef"].isna().all() and out.loc["gene003", "coef"].notna().all()


def test_bad_counts_are_recorded_per_feature_as_the_single_fit_words_them():
    from glmmnb._validation import count_problems

    codes = np.repeat(np.arange(3), 4)
    base = np.arange(12, dtype=float) % 5 + 1
    Y = np.vstack([base] * 6)
    Y[0, 2] = np.nan
    Y[1, 5] = np.inf
    Y[2, 7] = -1.0
    Y[3, 1] = 2.5
    Y[4, 4:8] = 0.0                       # group 1 has no count
    Y[5, 0], Y[5, 1] = np.nan, -3.0       # NaN is named before the negative value
    errors, warns = count_problems(Y, codes, 3)
    assert "missing (NaN) values in 1 row(s) (2)" in errors[0]
    assert "infinite values in 1 row(s) (5)" in errors[1]
    assert "negative values in 1 row(s) (7)" in errors[2]
    assert errors[3] is None and "non-integer values in 1 row(s)" in warns[3][0]
    assert errors[4] is None and warns[4][0].startswith("1 group(s) have a zero count")
    assert "missing (NaN)" in errors[5]
    clean, _ = count_problems(Y[[3, 4]], codes, 3)
    assert clean == [None, None]
