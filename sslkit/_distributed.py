"""Where this process stands among the ranks of a ``torchrun`` job, and the one collective the
losses need.

Without ``torch.distributed`` (every CPU notebook of the course) a process is rank 0 of 1 and
:func:`gather_with_grad` returns its input, so code written for several GPUs runs unchanged on
one device.
"""

from __future__ import annotations

import torch
import torch.distributed as dist

__all__ = ["rank_world", "gather_with_grad", "rank_offset"]


def rank_world() -> tuple[int, int]:
    """``(rank, world_size)`` of this process; ``(0, 1)`` without ``torch.distributed``."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class _GatherWithGrad(torch.autograd.Function):
    """all_gather forward; backward sums the gradients of all ranks and keeps the local slice."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, x.contiguous())
        return torch.cat(parts)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        # Rank r's loss depends on every rank's slice; the slice of rank s must receive the
        # gradients computed on all ranks. all_reduce(SUM) then slicing does that on any backend
        # (gloo has no reduce-scatter on CPU); embeddings are small, so the extra traffic is too.
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        b = grad.shape[0] // dist.get_world_size()
        start = dist.get_rank() * b
        return grad[start:start + b]


def gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x`` from every rank, keeping the gradient path to the local slice.

    ``x`` ``(B, ...)`` → ``(world·B, ...)`` ordered by rank, when ``torch.distributed`` is
    initialised with more than one process; ``x`` itself otherwise. Every rank must pass the same
    shape. In the backward pass, the gradient of the local slice is the *sum* of the gradients
    that all ranks' losses send to it, so a loss averaged over local anchors on each rank plus
    DDP's gradient averaging gives the gradient of the full-batch loss. Integer tensors (labels)
    can be gathered too; they simply carry no gradient.
    """
    _, world = rank_world()
    if world == 1:
        return x
    return _GatherWithGrad.apply(x)


def rank_offset(batch_size: int) -> int:
    """Index of this rank's first sample in a :func:`gather_with_grad` result: ``rank·B``.

    ``0`` without ``torch.distributed``. Use it to find the local anchors' own entries (their
    positives, their self-similarities) among the gathered keys.
    """
    rank, _ = rank_world()
    return rank * batch_size
