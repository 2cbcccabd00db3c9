"""Many responses at once: one NB GLMM per count feature, on one shared design.

An imaging screen measures dozens of counts per cell, single-cell RNA-seq
thousands of genes; the question per feature is the seed tutorial's (the
treatment effect, cells nested in slides or donors).  :func:`fit_many`
builds the design once (formula, groups, offset, nlme's df), then fits the
features block by block with the batched numerical core
(:mod:`glmmnb.core.batched_glm`, :mod:`glmmnb.core.batched_pql`), serially,
on joblib workers or on a Dask cluster, and returns one tidy table.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from .. import _validation
from ..core import negbin
from ..core.batched_glm import fit_nb_glm_batch
from ..core.batched_theta import estimate_theta_batch
from ..core.batched_pql import BatchPQL, GroupDesign, fit_pql_batch
from ..core.ddf import nlme_ddf
from ..core.scaling import standardizing_transform
from ._workers import in_worker_process, tune_malloc

__all__ = ["fit_many", "ManyDesign"]

CACHE_ELEMENTS = 1 << 18
"""Features fitted together in the core hold this many counts (2 MiB): its arrays stay in cache."""

TASK_ELEMENTS = 1 << 22
"""Default size of one task (features x rows read and fitted at once): 32 MiB of counts."""

SINGULAR_TOL = 1e-4
"""lme4's ``isSingular`` tolerance on the relative random-intercept SD."""

_RESPONSE = "_glmmnb_response_"
_COLUMNS = ["coef", "bse", "ddf", "t", "p", "p_adj", "theta", "se_theta", "var_re", "scale",
            "n_iter", "converged", "warning", "error"]


@dataclass
class ManyDesign:
    """Everything the features share, built once and sent once to every worker.

    Attributes
    ----------
    design : GroupDesign
        Standardised fixed effects, offset and groups, rows sorted by group.
    transform : ndarray
        Maps standardised coefficients back to those of ``exog``.
    exog_names : list of str
    ddf : ndarray of int
        nlme's denominator df of every fixed effect.
    theta : float or None
        Fixed NB2 shape, or ``None`` to estimate one per feature (``glm.nb``).
    maxiter, tol : int, float
        PQL's options (R's ``niter`` and its stopping rule).
    """

    design: GroupDesign
    transform: np.ndarray
    exog_names: list
    ddf: np.ndarray
    theta: float | None
    maxiter: int
    tol: float

    @property
    def nobs(self) -> int:
        return self.design.X.shape[0]


def _build_design(formula: str, data: pd.DataFrame, groups: str | ArrayLike | None,
                  exposure: str | ArrayLike | None, offset: str | ArrayLike | None,
                  theta: float | None, maxiter: int, tol: float) -> ManyDesign:
    from ..model import NegBinMixedGLM

    if not isinstance(formula, str) or not formula.strip().startswith("~"):
        raise ValueError(f"formula must be the right-hand side only, e.g. '~ condition' (the "
                         f"responses are the features of Y), got {formula!r}")
    if not isinstance(data, pd.DataFrame):
        raise TypeError("data must be a pandas DataFrame of the per-row covariates "
                        f"(one row per row of Y), got {type(data).__name__}")
    # a placeholder response (1, 2, 1, 2, ...) that passes the count checks;
    # assign returns a new frame, so the caller's data is never modified
    frame = data.assign(**{_RESPONSE: 1.0 + np.arange(len(data)) % 2})
    model = NegBinMixedGLM.from_formula(f"{_RESPONSE} {formula}", frame, groups=groups,
                                        exposure=exposure, offset=offset, theta=theta)
    maxiter, tol = _validation.check_fit_options(maxiter, tol)
    X = model.exog
    T = standardizing_transform(X)
    lev = model.levels[0]
    ddf = nlme_ddf(X, [lev.codes])
    _validation.check_ddf(ddf, model.exog_names)
    design = GroupDesign(X @ T, model._offset, lev.codes, lev.n_groups)
    return ManyDesign(design, T, list(model.exog_names), ddf, model.theta, maxiter, tol)


def _fit_block(md: ManyDesign, Y: np.ndarray) -> dict:
    """Fit the features in the rows of ``Y`` (features x rows, the data's row order).

    Returns a dict of arrays, one entry per feature, and the messages.
    """
    F = Y.shape[0]
    out = _empty(md, F)
    errors, warns = _validation.count_problems(Y, md.design.codes[np.argsort(md.design.order)],
                                               md.design.n_groups)
    good = np.array([e is None for e in errors], dtype=bool)
    step = max(1, CACHE_ELEMENTS // max(md.nobs, 1))
    idx = np.flatnonzero(good)
    for s in range(0, idx.size, step):
        _guarded(md, Y, idx[s:s + step], out, errors, warns)
    out["warning"] = ["; ".join(w) if w else None for w in warns]
    out["error"] = errors
    return out


def _guarded(md: ManyDesign, Y: np.ndarray, sub: np.ndarray, out: dict, errors: list[str | None],
             warns: list[list[str]]) -> None:
    """Fit the features ``sub``; if the block fails, fit them one by one and record who fails.

    A failure the checks did not foresee then costs one feature its numbers
    (with the reason in ``error``), never the run.
    """
    saved = [list(warns[f]) for f in sub]
    try:
        with np.errstate(all="ignore"):
            _fit_sub(md, md.design.sort(Y[sub]), sub, out, errors, warns)
        return
    except (ValueError, ArithmeticError, np.linalg.LinAlgError):
        if sub.size == 1:
            raise
    for f, w in zip(sub, saved):
        warns[f] = w
    for f in sub:
        try:
            with np.errstate(all="ignore"):
                _fit_sub(md, md.design.sort(Y[[f]]), np.array([f]), out, errors, warns)
        except (ValueError, ArithmeticError, np.linalg.LinAlgError) as err:
            errors[f] = f"{type(err).__name__}: {err}"
            warns[f] = []


def _empty(md: ManyDesign, F: int) -> dict:
    p = len(md.exog_names)
    nan = np.full((F, p), np.nan)
    return {"coef": nan, "bse": nan.copy(), "theta": np.full(F, np.nan),
            "se_theta": np.full(F, np.nan), "var_re": np.full(F, np.nan),
            "scale": np.full(F, np.nan), "n_iter": np.zeros(F, dtype=int),
            "converged": np.zeros(F, dtype=bool)}


def _fit_sub(md: ManyDesign, Ys: np.ndarray, sub: np.ndarray, out: dict, errors: list[str | None],
             warns: list[list[str]]) -> None:
    """The model's ``fit`` steps for one cache-sized block of valid features."""
    d = md.design
    F, n = Ys.shape
    if md.theta is None:
        tf = estimate_theta_batch(Ys, d.cross, d.offset)
        theta, glm = tf.theta, tf.glm
        with np.errstate(divide="ignore"):
            runaway = tf.at_limit | (np.max(glm.mu, axis=1) / theta < _validation.THETA_RUNAWAY)
        theta_conv, se = tf.converged, tf.se_theta
    else:
        theta = np.full(F, md.theta)
        glm = fit_nb_glm_batch(Ys, d.cross, d.offset, theta)
        runaway = np.zeros(F, dtype=bool)
        theta_conv, se = np.ones(F, dtype=bool), np.full(F, np.nan)
    with np.errstate(invalid="ignore"):
        sep = negbin.separated_rows(Ys, glm.mu, axis=1)
        glm_bad = _degenerate(Ys, glm.mu, "the fixed-effects NB GLM", separated=sep)
    separated = sep.any(axis=1)
    # a separated feature can also leave the normal equations singular (the
    # weights of its zero rows underflow); separation is the cause to report
    for f in np.flatnonzero(~glm.ok & ~separated):
        errors[sub[f]] = ("LinAlgError: the NB GLM's normal equations are not positive "
                          "definite; the counts cannot identify the fixed effects")
    for f in np.flatnonzero((glm.ok | separated) & (glm_bad != "")):
        errors[sub[f]] = glm_bad[f]
    ok = glm.ok & (glm_bad == "")
    pql = fit_pql_batch(d, Ys[ok], theta[ok], glm.eta[ok], glm.mu[ok],
                        maxiter=md.maxiter, tol=md.tol)
    T = md.transform
    p = T.shape[0]
    params = pql.params @ T.T
    # summary.lme inflates ML standard errors by N / (N - p) (adjustSigma), as the model does
    cov = np.einsum("ij,fjk,lk->fil", T, pql.cov_params, T) * n / (n - p)
    with np.errstate(invalid="ignore"):
        bse = np.sqrt(np.diagonal(cov, axis1=1, axis2=2))
    rows = sub[ok]
    out["coef"][rows], out["bse"][rows] = params, bse
    out["theta"][sub], out["se_theta"][sub] = theta, se
    out["var_re"][rows], out["scale"][rows] = pql.cov_re, pql.scale
    out["n_iter"][rows] = pql.n_iter
    out["converged"][rows] = pql.converged & pql.lmm_converged
    out["theta"][sub[~ok]] = np.nan
    pql_bad = _degenerate(Ys[ok], pql.mu, "the PQL fit")
    for i, f in enumerate(rows):
        if pql_bad[i]:
            errors[f] = pql_bad[i]
            out["coef"][f] = out["bse"][f] = np.nan
            out["converged"][f] = False
        else:
            _flag(f, i, pql, runaway[ok][i], theta_conv[ok][i], theta[ok][i], errors, warns, out)


def _degenerate(Y: np.ndarray, mu: np.ndarray, stage: str,
                separated: np.ndarray | None = None) -> np.ndarray:
    """The model's checks of fitted means (``NegBinMixedGLM._check_means``), row by row.

    ``separated`` is the mask of :func:`glmmnb.core.negbin.separated_rows`,
    to report complete separation first.  Returns the error message of every
    feature ('' where its means are fine).
    """
    msg = np.full(Y.shape[0], "", dtype=object)
    if separated is not None:
        for f in np.flatnonzero(separated.any(axis=1)):
            msg[f] = (f"ValueError: complete separation: {stage} drives the fitted means of "
                      f"{int(separated[f].sum())} row(s), all with count 0, to 0; a fixed "
                      "effect is running off to minus infinity (its estimate means nothing)")
    bad = negbin.degenerate_means(Y, mu)
    for f in np.flatnonzero(bad.any(axis=1) & (msg == "")):
        msg[f] = (f"ValueError: {stage} gives fitted means numerically 0 against their "
                  f"counts, or not finite, in {int(bad[f].sum())} row(s); check their "
                  "exposure or offset")
    return msg


def _flag(f: int, i: int, pql: BatchPQL, runaway: bool, theta_conv: bool, theta: float,
          errors: list[str | None], warns: list[list[str]], out: dict) -> None:
    """The model's warnings and its broken-fit error, recorded for feature ``f``."""
    if not (np.all(np.isfinite(out["coef"][f])) and np.all(np.isfinite(out["bse"][f]))
            and np.isfinite(pql.scale[i]) and pql.scale[i] > 0):
        errors[f] = ("FloatingPointError: the fit broke down (zero residual variance or "
                     "non-finite estimates)")
        out["coef"][f] = out["bse"][f] = np.nan
        out["converged"][f] = False
        return
    if runaway:
        warns[f].append(f"the ML theta ran off towards infinity (stopped at {theta:.3g}): no "
                        "overdispersion, the fit is the Poisson limit")
    elif not theta_conv:
        warns[f].append(f"the glm.nb estimate of theta did not converge (last value "
                        f"{theta:.4g})")
    if pql.rel_sd[i] < SINGULAR_TOL:
        warns[f].append(f"singular fit: the random-intercept SD is {pql.rel_sd[i]:.2g} residual "
                        "SDs (lme4's isSingular rule: below 1e-4 it is at the boundary, zero)")
    if not pql.converged[i]:
        warns[f].append(f"PQL did not converge in {pql.n_iter[i]} iterations")
    elif not pql.lmm_converged[i]:
        warns[f].append("the optimiser of the random-intercept variance stopped without "
                        "meeting its tolerance in the last PQL iteration")


class _Source:
    """The features of ``Y`` as blocks of dense rows (features x observations).

    A DataFrame, an array, a scipy.sparse matrix (read column block by
    column block; CSR is converted to CSC once, still sparse), an AnnData
    (``layer`` picks the counts) or a dask array (computed block by block).
    """

    def __init__(self, Y: Any, feature_names: Sequence[str] | None, layer: str | None) -> None:
        self.obs = Y.obs if _is_anndata(Y) else None
        names = None
        if self.obs is not None:
            names = list(map(str, Y.var_names))
            Y = Y.X if layer is None else Y.layers[layer]
        elif layer is not None:
            raise ValueError("layer= applies to an AnnData object only")
        if isinstance(Y, pd.DataFrame):
            names = list(Y.columns)
            Y = Y.to_numpy()
        self.kind = ("dask" if type(Y).__module__.startswith("dask") else
                     "sparse" if hasattr(Y, "tocsc") else "dense")
        if self.kind == "sparse":
            Y = Y.tocsc()
        elif self.kind == "dense":
            Y = np.asarray(Y)
        if Y.ndim != 2:
            raise ValueError(f"Y must be two-dimensional (observations x features), got shape "
                             f"{Y.shape}")
        self.Y = Y
        self.nobs, self.n_features = (int(k) for k in Y.shape)
        if feature_names is not None:
            names = list(feature_names)
        elif names is None:
            names = [f"feature{j}" for j in range(self.n_features)]
        if len(names) != self.n_features:
            raise ValueError(f"feature_names has {len(names)} names but Y has "
                             f"{self.n_features} features (columns)")
        if len(set(names)) != len(names):
            raise ValueError("feature names must be unique; they index the result table")
        self.names = names

    def block(self, a: int, b: int) -> np.ndarray:
        part = self.Y[:, a:b]
        if self.kind == "sparse":
            part = part.toarray()
        elif self.kind == "dask":
            part = np.asarray(part.compute())
        return np.ascontiguousarray(np.asarray(part, dtype=float).T)

    def delayed_block(self, a: int, b: int) -> Any:
        """A dask-delayed block, so that workers read their own part of a dask array."""
        import dask

        return dask.delayed(lambda x: np.ascontiguousarray(np.asarray(x, float).T))(
            self.Y[:, a:b])


def _is_anndata(Y: object) -> bool:
    return all(hasattr(Y, a) for a in ("obs", "var_names", "X", "layers"))


def _table(md: ManyDesign, names: Sequence[str], parts: Sequence[dict]) -> pd.DataFrame:
    """The tidy result: one row per (feature, term)."""
    res = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]
           if k not in ("warning", "error")}
    warn = [w for p in parts for w in p["warning"]]
    err = [e for p in parts for e in p["error"]]
    F, p = res["coef"].shape
    terms = md.exog_names
    index = pd.MultiIndex.from_product([names, terms], names=["feature", "term"])
    per_feature = lambda a: np.repeat(a, p)  # noqa: E731
    coef, bse = res["coef"].ravel(), res["bse"].ravel()
    ddf = np.tile(md.ddf, F)
    from scipy import stats

    with np.errstate(invalid="ignore", divide="ignore"):
        t = coef / bse
        pval = 2.0 * stats.t.sf(np.abs(t), np.where(ddf > 0, ddf, np.nan))
    table = pd.DataFrame({
        "coef": coef, "bse": bse, "ddf": ddf, "t": t, "p": pval, "p_adj": np.nan,
        "theta": per_feature(res["theta"]), "se_theta": per_feature(res["se_theta"]),
        "var_re": per_feature(res["var_re"]), "scale": per_feature(res["scale"]),
        "n_iter": per_feature(res["n_iter"]), "converged": per_feature(res["converged"]),
        "warning": pd.array(np.repeat(np.array(warn, dtype=object), p), dtype="string"),
        "error": pd.array(np.repeat(np.array(err, dtype=object), p), dtype="string"),
    }, index=index)
    table["p_adj"] = _bh_by_term(table["p"].to_numpy(), np.tile(np.arange(p), F))
    return table[_COLUMNS]


def _bh_by_term(p: np.ndarray, term: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values within each term, NaN kept as NaN."""
    from statsmodels.stats.multitest import multipletests

    out = np.full(p.shape, np.nan)
    for j in np.unique(term):
        sel = (term == j) & np.isfinite(p)
        if sel.any():
            out[sel] = multipletests(p[sel], method="fdr_bh")[1]
    return out


def fit_many(Y: Any, formula: str, data: pd.DataFrame | None = None,
             groups: str | ArrayLike | None = None, *, exposure: str | ArrayLike | None = None,
             offset: str | ArrayLike | None = None, theta: float | None = None, method: str = "pql",
             feature_names: Sequence[str] | None = None, layer: str | None = None,
             maxiter: int = 10, tol: float = 1e-6, chunk_size: int | None = None, n_jobs: int = 1,
             client: Any = None, progress: bool = False) -> pd.DataFrame:
    """Fit one NB GLMM per feature (column of ``Y``) with a shared design.

    Every feature gets the model ``NegBinMixedGLM.from_formula("y ~ ...",
    data, groups=...).fit()`` would fit to it alone: theta per feature by
    ``glm.nb`` (or fixed), PQL with a random intercept per group, nlme's
    denominator df.  The design is built once; features are fitted in blocks
    by the batched core.

    Parameters
    ----------
    Y : DataFrame, ndarray, scipy.sparse matrix, AnnData or dask array
        Counts, observations x features.  A DataFrame's columns name the
        features; a sparse matrix is read block by block of columns, never
        densified whole; for an AnnData ``layer`` picks the counts
        (default ``.X``) and ``data`` defaults to ``.obs``.
    formula : str
        Right-hand side of the fixed part, e.g. ``"~ condition"``.
    data : pandas.DataFrame, optional
        Per-observation covariates, one row per row of ``Y``.
    groups : str or array_like
        Column (or labels) of the groups: a random intercept per group.
    exposure, offset : str or array_like, optional
        As in :meth:`glmmnb.NegBinMixedGLM.from_formula` (e.g. total counts
        per cell as exposure).
    theta : float, optional
        Fixed NB2 shape for every feature; ``None`` estimates one per feature.
    method : {"pql"}
        Fitting method.
    feature_names : sequence of str, optional
        Names for the features of an array (default ``feature0, ...``).
    layer : str, optional
        AnnData layer holding the counts.
    maxiter, tol : int, float
        PQL options, as in :meth:`glmmnb.NegBinMixedGLM.fit`.
    chunk_size : int, optional
        Features per task (default about 32 MiB of dense counts).
    n_jobs : int
        joblib workers (inside ``joblib.parallel_config(backend="dask")`` they
        are a Dask cluster's).
    client : dask.distributed.Client, optional
        Run the tasks on this cluster; the design is sent to the workers once.
    progress : bool
        Show a tqdm progress bar over the tasks.

    Returns
    -------
    pandas.DataFrame
        Indexed by (feature, term); columns ``coef``, ``bse``, ``ddf``, ``t``,
        ``p``, ``p_adj`` (Benjamini-Hochberg within each term), ``theta``,
        ``se_theta``, ``var_re`` (random-intercept variance), ``scale``,
        ``n_iter``, ``converged``, ``warning`` and ``error``.  A feature that
        cannot be fitted keeps its rows, with NaN numbers and the reason in
        ``error``; warnings a single fit would raise are in ``warning``.

    See Also
    --------
    glmmnb.NegBinMixedGLM : the single-feature model.
    MASS::glmmPQL : the R fit repeated per feature.

    Examples
    --------
    >>> from glmmnb import fit_many
    >>> from glmmnb.datasets import singlecell
    >>> ds = singlecell.load()
    >>> table = fit_many(ds.counts, "~ condition", data=ds.cells, groups="donor",
    ...                  exposure="total_counts")
    >>> row = table.loc[("gene000", "condition[T.stim]")]
    >>> round(float(row["coef"]), 4), int(row["ddf"]), bool(row["converged"])
    (0.5592, 6, True)
    """
    if method != "pql":
        raise NotImplementedError(f"method={method!r}: only 'pql' is available")
    src = _Source(Y, feature_names, layer)
    data = src.obs if data is None else data
    if data is None:
        raise ValueError("data is required: the per-observation covariates")
    if len(data) != src.nobs:
        raise ValueError(f"Y has {src.nobs} rows (observations) but data has {len(data)}")
    md = _build_design(formula, data, groups, exposure, offset, theta, maxiter, tol)
    size = chunk_size or _default_chunk(src, n_jobs, client)
    bounds = [(a, min(a + size, src.n_features)) for a in range(0, src.n_features, size)]
    parts = _run(md, src, bounds, n_jobs, client, progress)
    return _table(md, src.names, parts)


def _default_chunk(src: _Source, n_jobs: int, client: Any) -> int:
    """Features per task: at most TASK_ELEMENTS counts, and four tasks per worker."""
    import os

    if client is not None:
        workers = max(1, len(client.scheduler_info().get("workers", {})))
    else:
        workers = (os.cpu_count() or 1) if n_jobs < 0 else n_jobs
    size = max(1, TASK_ELEMENTS // max(src.nobs, 1))
    if workers > 1:
        size = min(size, -(-src.n_features // (4 * workers)))
    return max(1, size)


def _run(md: ManyDesign, src: _Source, bounds: Sequence[tuple[int, int]], n_jobs: int, client: Any,
         progress: bool) -> list[dict]:
    if client is not None:
        return _run_dask(md, src, bounds, client, progress)
    if n_jobs == 1:
        gen = (_fit_block(md, src.block(a, b)) for a, b in bounds)
    else:
        try:
            from joblib import Parallel, delayed
        except ImportError:
            raise ImportError('n_jobs != 1 needs joblib: pip install "glmmnb[parallel]"') from None
        gen = Parallel(n_jobs=n_jobs, return_as="generator")(
            delayed(_pool_fit_block)(md, src.block(a, b)) for a, b in bounds)
    return list(_progress(gen, len(bounds), progress))


def _pool_fit_block(md: ManyDesign, Y: np.ndarray) -> dict:
    """:func:`_fit_block` as a joblib task: in a pool's worker process, with its malloc tuned.

    A fresh worker's glibc heap faults in the pages of every few-MiB array
    anew, which made blocks 2x slower than in the calling process
    (:mod:`glmmnb.workflows._workers`).
    """
    if in_worker_process():
        tune_malloc()
    return _fit_block(md, Y)


def _run_dask(md: ManyDesign, src: _Source, bounds: Sequence[tuple[int, int]], client: Any,
              progress: bool) -> list[dict]:
    """Tasks on a Dask cluster: the design scattered once, a bounded number of blocks in flight.

    A dask array's blocks are read by the workers themselves; other inputs
    are read here one block at a time as tasks finish, so that no more than
    two blocks per worker are ever dense at once.
    """
    from distributed import as_completed

    shared = client.scatter(md, broadcast=True)
    workers = max(1, len(client.scheduler_info().get("workers", {})))
    todo = iter(range(len(bounds)))
    index, parts = {}, [None] * len(bounds)
    running = as_completed()

    def submit() -> None:
        i = next(todo, None)
        if i is None:
            return
        a, b = bounds[i]
        if src.kind == "dask":
            import dask

            fut = client.compute(dask.delayed(_fit_block)(shared, src.delayed_block(a, b)))
        else:
            fut = client.submit(_fit_block, shared, src.block(a, b), pure=False)
        index[fut.key] = i
        running.add(fut)

    for _ in range(2 * workers):
        submit()
    for fut in _progress(running, len(bounds), progress):
        parts[index.pop(fut.key)] = fut.result()
        fut.release()
        submit()
    return parts


def _progress(iterable: Iterable, total: int, progress: bool) -> Iterable:
    if not progress:
        return iterable
    try:
        from tqdm.auto import tqdm
    except ImportError:
        raise ImportError('progress=True needs tqdm: pip install "glmmnb[parallel]"') from None
    return tqdm(iterable, total=total, desc="feature blocks")
