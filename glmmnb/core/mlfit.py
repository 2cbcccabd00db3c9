"""The maximum-likelihood driver shared by the Laplace and quadrature fits.

Both fits minimise a negative log-likelihood ``F(phi)`` of one parameter
vector ``phi = (beta, lower-triangle of L, log theta)`` where ``Sigma = L L'``
is the random-effects covariance.  ``L`` is unconstrained, as lme4's
``theta``: ``F`` is even in each column of ``L``, so a variance whose optimum
is zero sits at a regular interior minimum (``L = 0``) instead of running a
log-SD off to minus infinity, and the singular fits of the reference cases
converge in a few steps.  The driver runs L-BFGS on ``F`` and its gradient,
polishes with Newton steps on a finite-difference Hessian of the gradient,
and inverts that Hessian for the joint covariance (glmmTMB's ``sdreport``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike
from scipy import optimize

__all__ = ["MLFit", "Params", "minimize_nll", "fd_hessian"]


@dataclass
class MLFit:
    """Result of :func:`glmmnb.core.laplace.fit_laplace` or :func:`glmmnb.core.agq.fit_agq`.

    Attributes
    ----------
    params : ndarray
        Fixed effects ``beta`` (in the basis of the ``X`` given).
    cov_params : ndarray
        Their block of the inverse joint Hessian.
    cov_joint : ndarray
        Inverse joint Hessian over ``phi = (beta, L entries, log theta)``.
    theta, se_theta : float
        NB2 shape and its standard error (``nan`` when held fixed).
    theta_estimated : bool
        Whether theta was estimated jointly.
    cov_re : list of ndarray
        Random-effects covariance per level (``L L'``).
    random_effects : list of ndarray
        Conditional modes of the random effects, ``(n_groups, k_re)`` per level.
    mu : ndarray
        Conditional means at the modes.
    llf, llf_start : float
        Maximised log-likelihood and its value at the start.
    n_iter : int
        Objective evaluations.
    converged : bool
        Whether the gradient vanished at the end.
    method : str
        ``"laplace"`` or ``"agq"``.
    nagq : int
        Quadrature points (1 for Laplace).
    phi : ndarray
        The optimum ``phi``.
    theta_at_limit : bool
        Whether theta ran to the top of its range (no overdispersion).
    """

    params: np.ndarray
    cov_params: np.ndarray
    cov_joint: np.ndarray
    theta: float
    se_theta: float
    theta_estimated: bool
    cov_re: list
    random_effects: list
    mu: np.ndarray
    llf: float
    llf_start: float
    n_iter: int
    converged: bool
    method: str
    nagq: int
    phi: np.ndarray = field(repr=False)
    theta_at_limit: bool = False


@dataclass(frozen=True)
class Params:
    """How ``phi`` splits into ``beta``, the Cholesky factor and log theta."""

    p: int
    q: int
    estimate_theta: bool
    n_vc: int = 0

    @property
    def n_chol(self) -> int:
        """Free entries of the lower-triangular ``L``."""
        return self.q * (self.q + 1) // 2

    @property
    def size(self) -> int:
        """Length of ``phi``."""
        return self.p + self.n_chol + self.n_vc + int(self.estimate_theta)

    def split(self, phi: np.ndarray,
              theta_fixed: float | None) -> tuple[np.ndarray, np.ndarray, float]:
        """``(beta, L, theta)`` from ``phi``."""
        beta = phi[:self.p]
        L = np.zeros((self.q, self.q))
        L[np.tril_indices(self.q)] = phi[self.p:self.p + self.n_chol]
        theta = float(np.exp(phi[-1])) if self.estimate_theta else theta_fixed
        return beta, L, theta

    def vc(self, phi: np.ndarray) -> np.ndarray:
        """The SDs of the nested levels' intercepts (any sign: only their squares matter)."""
        start = self.p + self.n_chol
        return phi[start:start + self.n_vc]

    def join(self, beta: ArrayLike, L: np.ndarray, theta: float, vc: ArrayLike = ()) -> np.ndarray:
        """``phi`` from its parts (``theta`` ignored when fixed)."""
        parts = [np.asarray(beta, float), L[np.tril_indices(self.q)],
                 np.asarray(vc, float).reshape(-1)]
        if self.estimate_theta:
            parts.append([np.log(theta)])
        return np.concatenate(parts)


def start_cholesky(cov: np.ndarray, floor: float = 0.05) -> np.ndarray:
    """Cholesky factor of a start covariance, its diagonal kept off zero.

    A factor of exactly zero is a stationary point of the even objective that
    the optimiser would never leave; ``floor`` (an SD) moves it off.
    """
    cov = np.atleast_2d(np.asarray(cov, float))
    q = cov.shape[0]
    sd = np.sqrt(np.maximum(np.diag(cov), floor ** 2))
    corr = cov / np.outer(np.sqrt(np.maximum(np.diag(cov), 1e-300)),
                          np.sqrt(np.maximum(np.diag(cov), 1e-300)))
    corr = np.clip(corr, -0.9, 0.9)
    corr[np.diag_indices(q)] = 1.0
    return np.linalg.cholesky(corr * np.outer(sd, sd))


def fd_hessian(grad: Callable[[np.ndarray], np.ndarray], phi: np.ndarray,
               rel: float = 1e-5) -> np.ndarray:
    """Symmetrised central-difference Jacobian of ``grad`` at ``phi``."""
    k = phi.size
    H = np.empty((k, k))
    for j in range(k):
        h = rel * max(1.0, abs(phi[j]))
        e = np.zeros(k)
        e[j] = h
        H[:, j] = (grad(phi + e) - grad(phi - e)) / (2.0 * h)
    return 0.5 * (H + H.T)


def minimize_nll(fun_grad: Callable[[np.ndarray], tuple[float, np.ndarray]], phi0: np.ndarray, *,
                 tol: float = 1e-8, polish: int = 4,
                 bounds: Sequence[tuple[float | None, float | None]] | None = None,
                 ) -> tuple[np.ndarray, float, np.ndarray, int, bool]:
    """Minimise ``F`` with L-BFGS, then Newton steps on a finite-difference Hessian.

    Parameters
    ----------
    fun_grad : callable
        ``phi -> (F, grad F)``.
    phi0 : ndarray
        Start.
    tol : float
        Converged when the Newton decrement ``g' H^{-1} g / 2`` (how much
        further ``F`` could fall on its quadratic model) is below ``tol``.
    polish : int
        Most Newton steps after L-BFGS (none when a bound is active).
    bounds : sequence of (low, high), optional
        Box constraints for L-BFGS-B (``None`` entries: unbounded).

    Returns
    -------
    phi : ndarray
    value : float
    hessian : ndarray
        Finite-difference Hessian at ``phi``.
    n_eval : int
    converged : bool
    """
    count = [0]

    def counted(phi: np.ndarray) -> tuple[float, np.ndarray]:
        count[0] += 1
        value, g = fun_grad(phi)
        # a trial point far out (a runaway theta, exp overflow) must read as
        # uphill, so that the line search backs off instead of stopping
        if not (np.isfinite(value) and np.all(np.isfinite(g))):
            return np.inf, np.zeros_like(phi)
        return value, g

    res = optimize.minimize(counted, phi0, jac=True, method="L-BFGS-B", bounds=bounds,
                            options={"maxiter": 2000, "maxfun": 5000, "ftol": 1e-15,
                                     "gtol": 1e-10, "maxcor": 20})
    phi, value = res.x, float(res.fun)
    grad = lambda x: counted(x)[1]  # noqa: E731 - a one-line adaptor
    # L-BFGS's own last gradient is that of phi (it returns its best point)
    g = res.jac if np.all(np.isfinite(res.jac)) else counted(phi)[1]
    hess = fd_hessian(grad, phi)
    at_bound = bounds is not None and any(
        b is not None and np.isclose(x, b) for x, pair in zip(phi, bounds) for b in pair)
    for _ in range(0 if at_bound else polish):
        if _decrement(hess, g) < 1e-3 * tol:
            break
        moved = _backtrack(counted, phi, value, _newton_step(hess, g))
        if moved is None:
            break
        moved_by = np.max(np.abs(moved[0] - phi) / np.maximum(1.0, np.abs(phi)))
        phi, value, g = moved
        # a Hessian is 2 k gradients: refresh it only after a real move (the
        # standard errors then come from it at the optimum to O(1e-5))
        if moved_by > 1e-5:
            hess = fd_hessian(grad, phi)
    converged = bool(_decrement(hess, g) < tol) or (at_bound and res.success)
    return phi, value, hess, count[0], converged


def _decrement(hess: np.ndarray, g: np.ndarray) -> float:
    """``g' H^{-1} g / 2``, infinite when ``H`` is not positive definite."""
    try:
        c = np.linalg.cholesky(hess)
    except np.linalg.LinAlgError:
        return np.inf
    z = np.linalg.solve(c, g)
    return 0.5 * float(z @ z)


def _newton_step(hess: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Newton step, with eigenvalues floored so that it points downhill."""
    if not np.all(np.isfinite(hess)):
        return np.zeros_like(g)
    vals, vecs = np.linalg.eigh(hess)
    vals = np.maximum(vals, 1e-8 * max(1.0, np.max(np.abs(vals))))
    return vecs @ ((vecs.T @ g) / vals)


def _backtrack(fun_grad: Callable[[np.ndarray], tuple[float, np.ndarray]], phi: np.ndarray,
               value: float, step: np.ndarray) -> tuple[np.ndarray, float, np.ndarray] | None:
    """``(phi, F, grad)`` after the longest halving of ``step`` that does not raise ``F``.

    ``None`` when no halving helps (the start is already optimal to rounding).
    """
    for _ in range(20):
        new_value, new_g = fun_grad(phi - step)
        if new_value <= value:
            return phi - step, float(new_value), new_g
        step = step / 2.0
    return None
