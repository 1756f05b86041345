"""Redundancy-reduction losses: make two views agree while the embedding's dimensions carry
different information, so that collapse (every dimension the same, or constant) is penalised.

- :func:`barlow_twins_loss` — drive the cross-correlation matrix of the two views' standardised
  embeddings to the identity ("Barlow Twins: Self-Supervised Learning via Redundancy
  Reduction", 2021, arXiv 2103.03230).
- :func:`vicreg_loss` — three named terms, each its own function: :func:`invariance` (the views
  agree), :func:`variance` (every dimension keeps a standard deviation of at least γ) and
  :func:`covariance` (off-diagonal covariances vanish) ("VICReg: Variance-Invariance-Covariance
  Regularization for Self-Supervised Learning", 2021, arXiv 2105.04906).
- :func:`whiten` and :func:`wmse_loss` — whiten each view's batch of embeddings (zero mean,
  identity covariance), then pull the views together ("Whitening for Self-Supervised
  Representation Learning", W-MSE, 2020, arXiv 2007.06346).

Statistics are over the batch, in float32 even under bf16 autocast. Under DDP each rank sees its
own slice of the batch; for full-batch statistics, pass ``gather_with_grad(z)`` of both views
(every rank then computes the full-batch loss, and the gather's backward plus DDP's averaging
give exactly the single-process gradient).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .._validate import check_range, check_same_shape, check_tensor
from .distillation import normalized_mse

__all__ = ["cross_correlation", "barlow_twins_loss", "invariance", "variance", "covariance",
           "vicreg_loss", "whiten", "wmse_loss"]


def _pair(z1: torch.Tensor, z2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    check_tensor("z1", z1, ("B", "D"), min_rows=2)
    check_same_shape("z1", z1, "z2", z2)
    return z1.float(), z2.float()


def _off_diagonal(m: torch.Tensor) -> torch.Tensor:
    """The ``D² − D`` off-diagonal entries of a square ``(D, D)`` matrix, flattened."""
    d = m.shape[0]
    return m.flatten()[:-1].view(d - 1, d + 1)[:, 1:].flatten()


def cross_correlation(z1: torch.Tensor, z2: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """``C[i, j]``: correlation over the batch of dimension ``i`` of ``z1`` with dimension ``j`` of
    ``z2``. ``z1``, ``z2`` ``(B, D)`` → ``(D, D)``, entries in [-1, 1] (each column standardised
    to mean 0 and variance 1 over the batch, ``eps`` added to the variance as BatchNorm does)."""
    z1, z2 = _pair(z1, z2)
    with torch.autocast(device_type=z1.device.type, enabled=False):
        a = F.batch_norm(z1, None, None, training=True, eps=eps)     # (B, D) standardised
        b = F.batch_norm(z2, None, None, training=True, eps=eps)
        return a.T @ b / z1.shape[0]                                 # (D, D)


def barlow_twins_loss(z1: torch.Tensor, z2: torch.Tensor, lambd: float = 5e-3) -> torch.Tensor:
    """Barlow Twins: ``Σ_i (1 − C_ii)² + λ Σ_{i≠j} C_ij²`` with ``C = cross_correlation(z1, z2)``.

    The diagonal term makes each dimension invariant to the views; the off-diagonal term
    decorrelates the dimensions (redundancy reduction). ``z1``, ``z2`` ``(B, D)`` → scalar. The
    paper uses λ = 5·10⁻³ at D = 8192; the balance of the two terms depends on D.

    Examples:
        >>> loss = barlow_twins_loss(projector(backbone(x1)), projector(backbone(x2)))
    """
    check_range("lambd", lambd, 0.0, None)
    c = cross_correlation(z1, z2)
    return (1 - c.diagonal()).pow(2).sum() + lambd * _off_diagonal(c).pow(2).sum()


def invariance(z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
    """VICReg's invariance term: mean squared distance between the views, ``(B, D)`` → scalar
    (averaged over the batch and the dimensions, as ``F.mse_loss``)."""
    z1, z2 = _pair(z1, z2)
    return F.mse_loss(z1, z2)


def variance(z: torch.Tensor, gamma: float = 1.0, eps: float = 1e-4) -> torch.Tensor:
    """VICReg's variance term: ``mean_j max(0, γ − sqrt(Var_j + ε))`` over the ``D`` dimensions of
    ``z`` ``(B, D)`` (unbiased variance over the batch). Zero when every dimension's std is at
    least γ; 1 for a collapsed embedding with γ = 1 (up to ε)."""
    check_tensor("z", z, ("B", "D"), min_rows=2)
    check_range("gamma", gamma, 0.0, None, low_open=True)
    std = torch.sqrt(z.float().var(dim=0) + eps)                     # (D,)
    return F.relu(gamma - std).mean()


def covariance(z: torch.Tensor) -> torch.Tensor:
    """VICReg's covariance term: ``Σ_{i≠j} Cov(z)_ij² / D`` for ``z`` ``(B, D)`` (unbiased
    covariance over the batch). Zero when the dimensions are uncorrelated."""
    check_tensor("z", z, ("B", "D"), min_rows=2)
    z = z.float() - z.float().mean(dim=0)
    cov = z.T @ z / (z.shape[0] - 1)                                 # (D, D)
    return _off_diagonal(cov).pow(2).sum() / z.shape[1]


def vicreg_loss(z1: torch.Tensor, z2: torch.Tensor, sim_weight: float = 25.0,
                var_weight: float = 25.0, cov_weight: float = 1.0) -> torch.Tensor:
    """VICReg: ``λ·invariance + μ·[variance(z1) + variance(z2)] + ν·[covariance(z1) +
    covariance(z2)]`` with the paper's weights λ = μ = 25, ν = 1 (its Eq. 6). ``(B, D)`` each →
    scalar. Setting a weight to 0 ablates its term (the lecture's collapse experiments)."""
    for name, w in (("sim_weight", sim_weight), ("var_weight", var_weight),
                    ("cov_weight", cov_weight)):
        check_range(name, w, 0.0, None)
    return (sim_weight * invariance(z1, z2)
            + var_weight * (variance(z1) + variance(z2))
            + cov_weight * (covariance(z1) + covariance(z2)))


def whiten(z: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    """Batch whitening by a Cholesky factor, as in W-MSE (2020, arXiv 2007.06346).

    ``z`` ``(N, D)`` with ``N > D`` → ``(N, D)``: ``L⁻¹ (z − mean)`` per row, where ``L Lᵀ`` is the
    batch covariance plus ``eps·I`` (unbiased). The output has zero mean and, up to ``eps``, the
    identity covariance, so every direction carries the same variance and none can collapse.
    Differentiable (the gradient flows through the mean and the factor), in float32.
    """
    check_tensor("z", z, ("N", "D"), min_rows=2)
    check_range("eps", eps, 0.0, None, low_open=True)
    n, d = z.shape
    if n <= d:
        raise ValueError(f"whiten needs more rows than dimensions to estimate a covariance, got "
                         f"z of shape {tuple(z.shape)}: use a batch larger than {d}")
    with torch.autocast(device_type=z.device.type, enabled=False):
        c = z.float() - z.float().mean(dim=0)                          # (N, D)
        cov = c.T @ c / (n - 1) + eps * torch.eye(d, device=z.device)   # (D, D)
        factor = torch.linalg.cholesky(cov)                             # lower triangular L
        return torch.linalg.solve_triangular(factor, c.T, upper=False).T


def wmse_loss(z1: torch.Tensor, z2: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    """W-MSE with one whitening batch per view: ``normalized_mse(whiten(z1), whiten(z2))``.

    ``z1``, ``z2`` ``(B, D)`` with ``B > D`` → scalar in [0, 4]. The paper splits a large batch
    into several whitening sub-batches and may repeat with other splits; one sub-batch per view
    is the compact form. Whitening makes collapse impossible (a whitened batch always spans all
    ``D`` directions), so the views can simply be pulled together.
    """
    check_same_shape("z1", z1, "z2", z2)
    return normalized_mse(whiten(z1, eps), whiten(z2, eps))

