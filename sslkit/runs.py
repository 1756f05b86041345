"""A training run on disk: its :class:`History`, the cache of finished runs, and checkpoints.

- The **cache** lets a notebook "load if it exists, else train": a finished run is saved under a
  key hashed from everything that decides it (method class, architecture, hyperparameters,
  initial weights, data, training config), so a changed hyperparameter never reloads a stale
  model. A corrupt entry is reported and retrained.
- A **checkpoint** holds a run in progress (weights, optimiser, :class:`LoopState`, RNG) so that
  ``fit(..., resume=True)`` continues it exactly; one from another configuration is refused.

Every file is read with ``torch.load(weights_only=True)``: only tensors and plain containers.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

__all__ = [
    "History", "CheckpointError", "LoopState", "default_cache_dir", "run_key", "load_cached",
    "atomic_save", "save_checkpoint", "resume_checkpoint",
]

# TrainConfig fields that change how a run is watched, not what it learns: left out of the cache
# key and of the check that a checkpoint belongs to this run.
_NOT_IN_KEY = ("log_every", "knn_every", "checkpoint_every")


def _what_it_learns(config) -> dict:
    return {k: v for k, v in dataclasses.asdict(config).items() if k not in _NOT_IN_KEY}


class CheckpointError(RuntimeError):
    """Raised when a checkpoint to resume from cannot be read or does not match the run."""


@dataclass
class History:
    """What happened during training, one entry per logged step.

    ``logs`` holds the method's extra scalars (name → list aligned with ``step``); ``knn`` holds
    ``(step, accuracy)`` pairs of the online kNN monitor. ``seconds`` is the training wall time.
    """

    step: list = field(default_factory=list)
    loss: list = field(default_factory=list)
    lr: list = field(default_factory=list)
    images_per_s: list = field(default_factory=list)
    logs: dict = field(default_factory=dict)
    knn_step: list = field(default_factory=list)
    knn_acc: list = field(default_factory=list)
    seconds: float = 0.0
    from_cache: bool = False

    def to_dict(self) -> dict:
        """Plain Python containers only (safe for ``torch.load(weights_only=True)``)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> History:
        return cls(**d)

    def as_dataframe(self):
        """The per-step history as a ``pandas.DataFrame`` (columns step, loss, lr, …)."""
        import pandas as pd

        return pd.DataFrame({"step": self.step, "loss": self.loss, "lr": self.lr,
                             "images_per_s": self.images_per_s, **self.logs})

    def summary(self) -> str:
        """One line: steps, final loss (mean of the last 10 logs), wall time, throughput."""
        if not self.step:
            return "empty history"
        tail = self.loss[-10:]
        ips = sum(self.images_per_s[-20:]) / len(self.images_per_s[-20:])
        src = " (loaded from cache)" if self.from_cache else ""
        return (f"{self.step[-1]} steps, final loss {sum(tail) / len(tail):.4f}, "
                f"{self.seconds:.1f} s, {ips:,.0f} images/s{src}")


def default_cache_dir() -> Path:
    """``$SSLKIT_CACHE`` if set, else ``~/.cache/sslkit``."""
    return Path(os.environ.get("SSLKIT_CACHE", "~/.cache/sslkit")).expanduser()


def _tensor_digest(h, t: torch.Tensor) -> None:
    t = t.detach().cpu().contiguous()
    h.update(f"{t.dtype}{tuple(t.shape)}".encode())
    h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")


def run_key(method: nn.Module, images, labels, config) -> str:
    """Hash of the full configuration: method class, architecture, hyperparameters, initial
    weights (which carry the init seed), the training data, and the training config."""
    h = hashlib.sha256()
    meta = {
        "class": type(method).__qualname__, "repr": repr(method),
        "hparams": getattr(method, "hparams", {}),
        "config": _what_it_learns(config),
    }
    h.update(json.dumps(meta, sort_keys=True, default=str).encode())
    for name, value in sorted(method.state_dict().items()):
        h.update(name.encode())
        _tensor_digest(h, value)
    _tensor_digest(h, images)
    if labels is not None:
        _tensor_digest(h, labels)
    return h.hexdigest()[:16]


def load_cached(path: Path, method: nn.Module) -> History | None:
    """Load a cache entry into ``method``; ``None`` (with a warning) if it is corrupt."""
    try:
        entry = torch.load(path, map_location="cpu", weights_only=True)
        method.load_state_dict(entry["state_dict"])
        history = History.from_dict(entry["history"])
    except Exception as err:  # any failure to read means: retrain, never crash the notebook
        warnings.warn(f"training cache entry {path} could not be read ({type(err).__name__}: "
                      f"{err}); training again and overwriting it.", stacklevel=3)
        return None
    history.from_cache = True
    return history


def atomic_save(obj, path: Path) -> None:
    """``torch.save`` to a temporary file, then rename: a crash never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


@dataclass
class LoopState:
    """Where the loop stands: everything a checkpoint saves and a resume restores.

    Sampling is by epochs: ``order`` is a permutation of the pool drawn from ``sampler``;
    each step takes the next ``batch_size`` entries from ``cursor``, and a new permutation (a
    new epoch) is drawn when fewer than ``batch_size`` are left.
    """

    sampler: torch.Generator
    order: torch.Tensor
    cursor: int = 0
    epoch: int = 0
    step: int = 0
    history: History = field(default_factory=History)

    @classmethod
    def start(cls, pool: int, seed: int) -> LoopState:
        """A fresh run over a pool of ``pool`` images: epoch 0, its permutation drawn."""
        sampler = torch.Generator().manual_seed(seed)
        return cls(sampler=sampler, order=torch.randperm(pool, generator=sampler))

    def next_batch(self, batch_size: int) -> tuple[torch.Tensor, bool]:
        """``(indices of the global batch, whether a new epoch started)``."""
        new_epoch = self.cursor + batch_size > self.order.shape[0]
        if new_epoch:
            self.order = torch.randperm(self.order.shape[0], generator=self.sampler)
            self.cursor, self.epoch = 0, self.epoch + 1
        idx = self.order[self.cursor:self.cursor + batch_size]
        self.cursor += batch_size
        return idx, new_epoch

    def state_dict(self) -> dict:
        """Tensors and plain containers only (readable with ``weights_only=True``)."""
        return {"sampler_state": self.sampler.get_state(), "order": self.order,
                "cursor": self.cursor, "epoch": self.epoch, "step": self.step,
                "history": self.history.to_dict()}

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` returned."""
        self.sampler.set_state(state["sampler_state"])
        self.order, self.cursor = state["order"], state["cursor"]
        self.epoch, self.step = state["epoch"], state["step"]
        self.history = History.from_dict(state["history"])


def save_checkpoint(path, method, optimizer, state: LoopState, config, rank) -> None:
    """Write the method, optimiser, loop state and RNG to ``path`` (rank 0 only)."""
    if rank != 0:
        return
    atomic_save({
        "method": method.state_dict(), "optimizer": optimizer.state_dict(),
        "loop": state.state_dict(), "torch_rng_state": torch.get_rng_state(),
        "config": dataclasses.asdict(config),
    }, path)


def resume_checkpoint(path, method, optimizer, state: LoopState, config) -> None:
    """Restore what :func:`save_checkpoint` wrote, after checking it belongs to this run."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        saved, loop = ckpt["config"], ckpt["loop"]
    except Exception as err:
        raise CheckpointError(
            f"cannot resume from {path}: the file is unreadable or not a sslkit checkpoint "
            f"({type(err).__name__}: {err}). Delete it to start from scratch, or pass "
            f"resume=False.") from err
    differs = {k: (saved.get(k), v) for k, v in _what_it_learns(config).items()
               if saved.get(k) != v}
    if differs:
        raise CheckpointError(
            f"cannot resume from {path}: it was written with a different configuration "
            f"({', '.join(f'{k}: saved {a!r}, now {b!r}' for k, (a, b) in differs.items())}). "
            f"Use the same TrainConfig or another checkpoint file.")
    try:
        method.load_state_dict(ckpt["method"])
        optimizer.load_state_dict(ckpt["optimizer"])
    except (RuntimeError, KeyError, ValueError) as err:
        raise CheckpointError(
            f"cannot resume from {path}: its weights do not fit this method ({err}).") from err
    state.load_state_dict(loop)
    torch.set_rng_state(ckpt["torch_rng_state"])
