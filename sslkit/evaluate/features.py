"""Frozen features: run a backbone over images once, and the checks every reader of
features shares (``(N, D)`` floats, ``(N,)`` integer labels).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from .._validate import check_positive_int, check_tensor
from ..views import to_float

__all__ = ["extract_features"]


def _check_features(name: str, z: torch.Tensor, *, min_rows: int = 1) -> torch.Tensor:
    return check_tensor(name, z, ("N", "D"), min_rows=min_rows)


def _check_labels(name: str, y: torch.Tensor, n: int) -> torch.Tensor:
    if not isinstance(y, torch.Tensor) or y.ndim != 1 or y.shape[0] != n:
        shape = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
        raise ValueError(f"{name} must have shape ({n},), got {shape}")
    if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        raise ValueError(f"{name} must hold integer class indices, got dtype {y.dtype}")
    if n and int(y.min()) < 0:
        raise ValueError(f"{name} must hold class indices >= 0, got {int(y.min())}")
    return y.long()


def extract_features(
    encoder: nn.Module,
    images: torch.Tensor,
    *,
    batch_size: int = 1024,
    device: torch.device | str | None = None,
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """Frozen features of ``images``: ``(N, 3, H, W)`` uint8 (any device) → ``(N, D)`` float32.

    The encoder runs in eval mode (BatchNorm uses its running statistics, dropout is off) under
    ``torch.no_grad()``; every submodule's previous train/eval mode is restored afterwards, even
    on error. Images are moved batch by batch to ``device`` (default: the encoder's device),
    converted by ``transform`` (default ``sslkit.views.to_float``, the evaluation path: no
    augmentation) and the features are returned on ``device``.
    """
    check_positive_int("batch_size", batch_size)
    transform = transform or to_float  # the evaluation path of sslkit.views: no augmentation
    if device is None:
        param = next(encoder.parameters(), None)
        device = param.device if param is not None else images.device
    device = torch.device(device)
    modes = [(m, m.training) for m in encoder.modules()]
    encoder.eval()
    chunks = []
    try:
        with torch.no_grad():
            for start in range(0, images.shape[0], batch_size):
                batch = transform(images[start : start + batch_size].to(device))
                chunks.append(encoder(batch).float())
    finally:
        for m, mode in modes:
            m.training = mode
    if not chunks:
        raise ValueError("images is empty: nothing to extract")
    return torch.cat(chunks)
