"""How a deep linear network learns: one singular mode at a time, each along a sigmoid.

*Exact solutions to the nonlinear dynamics of learning in deep linear neural networks* (Saxe,
McClelland & Ganguli, 2013, arXiv 1312.6120): a two-layer linear network trained by gradient
descent from a small initialisation learns the singular modes of the input-output correlation
one at a time, each along a sigmoid whose timescale is ``1/s`` (:func:`deep_linear_dynamics`,
:func:`mode_strength_closed_form`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from .._validate import check_choice, check_positive_int, check_range

__all__ = ["mode_strength_closed_form", "deep_linear_dynamics"]


def mode_strength_closed_form(s, u0, t) -> torch.Tensor:
    """Strength ``u(t)`` of one singular mode of a two-layer linear network under gradient flow.

    Whitened inputs, small balanced start ``u0 > 0``, learning rate 1 (time = steps × lr):
    ``u(t) = s·e^{2st} / (e^{2st} − 1 + s/u0)``, a sigmoid from ``u0`` to ``s`` whose rise time is
    ``∝ 1/s`` and which is half done at ``t½ = ln(s/u0 − 1) / (2s)``. Broadcasts ``s``, ``u0``,
    ``t``. *Exact solutions to the nonlinear dynamics of learning in deep linear neural networks*
    (Saxe, McClelland & Ganguli, 2013, arXiv 1312.6120).
    """
    s, u0, t = (torch.as_tensor(v, dtype=torch.float64) for v in (s, u0, t))
    e = torch.exp(2 * s * t)
    return s * e / (e - 1 + s / u0)


def deep_linear_dynamics(
    singular_values: Sequence[float],
    *,
    dim_in: int = 8,
    dim_out: int = 8,
    hidden: int = 8,
    lr: float = 0.02,
    steps: int = 500,
    init_scale: float = 1e-3,
    init: str = "balanced",
    seed: int = 0,
) -> dict[str, torch.Tensor]:
    """Train ``y = W2 W1 x`` by full-batch gradient descent on whitened inputs.

    The target correlation is ``Σ_yx = U diag(s) Vᵀ`` with random orthonormal ``U``, ``V``;
    the loss is ``½ E||y − W2 W1 x||² = ½||Σ_yx − W2 W1||²_F`` + const. ``init="balanced"``
    starts every mode at strength ``init_scale`` with ``W1 = √u0 · R Vᵀ``, ``W2 = √u0 · U Rᵀ``
    (``R`` a random orthonormal basis of the hidden layer: the paper's decoupled start, which the
    closed form describes exactly); ``init="random"`` draws ``N(0, init_scale)`` entries.

    Returns ``{"time": (steps+1,), "strength": (steps+1, r), "loss": (steps+1,)}`` where
    ``strength[:, a] = u_aᵀ W2 W1 v_a`` and ``time = step·lr``. *Exact solutions to the
    nonlinear dynamics of learning in deep linear neural networks* (2013, arXiv 1312.6120).
    """
    s = torch.as_tensor(list(singular_values), dtype=torch.float64)
    r = s.numel()
    check_positive_int("steps", steps)
    check_positive_int("hidden", hidden)
    check_range("hidden", hidden, r, hint="the hidden layer must hold every mode")
    check_range("dim_in", dim_in, r)
    check_range("dim_out", dim_out, r)
    check_range("lr", lr, 0.0, low_open=True)
    check_range("init_scale", init_scale, 0.0, low_open=True)
    check_choice("init", init, ("balanced", "random"))
    if bool((s <= 0).any()):
        check_range("singular_values", float(s.min()), 0.0, low_open=True)
    g = torch.Generator().manual_seed(seed)

    def orthonormal(rows, cols):
        q, _ = torch.linalg.qr(torch.randn(rows, cols, generator=g, dtype=torch.float64))
        return q

    u, v, rot = orthonormal(dim_out, r), orthonormal(dim_in, r), orthonormal(hidden, r)
    target = u @ torch.diag(s) @ v.T  # (dim_out, dim_in)
    if init == "balanced":
        w1 = math.sqrt(init_scale) * rot @ v.T
        w2 = math.sqrt(init_scale) * u @ rot.T
    else:
        w1 = init_scale * torch.randn(hidden, dim_in, generator=g, dtype=torch.float64)
        w2 = init_scale * torch.randn(dim_out, hidden, generator=g, dtype=torch.float64)
    strengths, losses = [], []
    for step in range(steps + 1):
        prod = w2 @ w1
        strengths.append(torch.einsum("oa,oi,ia->a", u, prod, v))
        err = target - prod
        losses.append(0.5 * err.square().sum())
        if step == steps:
            break
        w1, w2 = w1 + lr * (w2.T @ err), w2 + lr * (err @ w1.T)
    return {"time": torch.arange(steps + 1, dtype=torch.float64) * lr,
            "strength": torch.stack(strengths), "loss": torch.stack(losses)}
