"""The one training loop every method in the course runs through.

``fit(method, images)`` samples batches from a pool of ``uint8`` images kept on the device,
asks the method for a loss, steps the optimiser on a warm-up + cosine schedule, and keeps a
:class:`History`. What each method does differently lives in the method
(:mod:`sslkit.methods`); what every run needs lives here:

- a budget in steps (reproducible; what notebooks use), epochs, or seconds;
- ``tqdm.auto`` progress, images/s, and an optional online kNN accuracy every ``knn_every`` steps;
- bf16 autocast on a GPU, and on a CPU with native bf16 arithmetic when asked (``amp="bf16"``);
  channels_last (the small CNN is channels_last everywhere);
- a NaN/Inf guard that stops with the step and the usual causes;
- checkpoint and resume, and a cache keyed by the full configuration so that a notebook can
  "load if it exists, else train". Every file is read with ``torch.load(weights_only=True)``;
- DistributedDataParallel when launched by ``torchrun`` (each rank takes its slice of the batch);
- the method contract (:class:`sslkit.methods.Method`): sample indices for methods that set
  ``uses_index``, and ``on_epoch_start`` each time the sampler starts a new pass over the pool.

Schedule: linear warm-up then cosine decay, "SGDR: Stochastic Gradient Descent with Warm
Restarts" (2016, arXiv 1608.03983), as in "Accurate, Large Minibatch SGD" (2017, arXiv 1706.02677).
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ._distributed import rank_world
from ._validate import check_choice, check_positive_int, check_range
from .evaluate import extract_features, knn_accuracy
from .methods import Method
from .runs import (
    CheckpointError,
    History,
    LoopState,
    atomic_save,
    default_cache_dir,
    load_cached,
    resume_checkpoint,
    run_key,
    save_checkpoint,
)

__all__ = [
    "TrainConfig", "History", "fit", "lr_at", "NonFiniteLossError", "CheckpointError",
    "default_cache_dir", "cache_path",
]


class NonFiniteLossError(FloatingPointError):
    """Raised when the loss becomes NaN or infinite; the message names the step and causes."""


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes in bf16 natively (the ``avx512_bf16`` or ``amx_bf16`` flag of
    ``/proc/cpuinfo``). Without it, bf16 autocast on CPU is emulated and slower than float32."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


@dataclass
class TrainConfig:
    """Everything that decides a training run (and therefore its cache key).

    Exactly one budget: ``steps`` (reproducible), ``epochs`` (passes over the pool) or
    ``seconds`` (wall clock; the schedule follows elapsed time, so runs are not reproducible).
    ``amp``: ``"auto"`` (bf16 autocast on CUDA, float32 on CPU), ``"bf16"`` (bf16 autocast on
    CUDA and on a CPU with native bf16, where a SimCLR step is about 1.7x faster:
    ``benchmarks/step.py``) or ``"off"`` (float32 everywhere).
    """

    steps: int | None = None
    epochs: float | None = None
    seconds: float | None = None
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-4
    optimizer: str = "adamw"
    momentum: float = 0.9
    warmup: float = 0.05
    min_lr_ratio: float = 0.0
    grad_clip: float | None = None
    seed: int = 0
    knn_every: int = 0
    log_every: int = 1
    checkpoint_every: int = 0
    amp: str = "auto"

    def __post_init__(self):
        budgets = [b for b in ("steps", "epochs", "seconds") if getattr(self, b) is not None]
        if len(budgets) != 1:
            raise ValueError(
                f"TrainConfig needs exactly one budget among steps/epochs/seconds, got "
                f"{budgets or 'none'}: e.g. TrainConfig(steps=500)"
            )
        if self.steps is not None:
            check_positive_int("steps", self.steps)
        if self.epochs is not None:
            check_range("epochs", self.epochs, 0, None, low_open=True)
        if self.seconds is not None:
            check_range("seconds", self.seconds, 0, None, low_open=True)
        check_positive_int("batch_size", self.batch_size)
        check_range("lr", self.lr, 0, 10.0, low_open=True)
        check_range("weight_decay", self.weight_decay, 0, None)
        check_choice("optimizer", self.optimizer, ("adamw", "sgd"))
        check_range("momentum", self.momentum, 0, 1, high_open=True)
        check_range("warmup", self.warmup, 0, 1, high_open=True,
                    hint="warmup is the fraction of the budget spent warming up")
        check_range("min_lr_ratio", self.min_lr_ratio, 0, 1)
        if self.grad_clip is not None:
            check_range("grad_clip", self.grad_clip, 0, None, low_open=True)
        check_positive_int("knn_every", self.knn_every, allow_zero=True)
        check_positive_int("log_every", self.log_every)
        check_positive_int("checkpoint_every", self.checkpoint_every, allow_zero=True)
        check_choice("amp", self.amp, ("auto", "bf16", "off"))


def lr_at(progress: float, config: TrainConfig) -> float:
    """Learning rate at ``progress`` ∈ [0, 1] of the budget: linear warm-up, then cosine decay
    from ``lr`` to ``lr * min_lr_ratio``."""
    base, floor = config.lr, config.lr * config.min_lr_ratio
    if config.warmup > 0 and progress < config.warmup:
        return base * (progress / config.warmup)
    t = (progress - config.warmup) / (1 - config.warmup)
    return floor + (base - floor) * 0.5 * (1 + math.cos(math.pi * min(max(t, 0.0), 1.0)))


def cache_path(method: Method, images, labels=None, config: TrainConfig | None = None,
               cache_dir: str | Path | None = None, name: str | None = None) -> Path:
    """The file ``fit(..., cache=...)`` would read and write for this exact run."""
    config = config or TrainConfig(steps=1)
    stem = f"{name or type(method).__name__.lower()}-{run_key(method, images, labels, config)}"
    return Path(cache_dir or default_cache_dir()) / f"{stem}.pt"


# ----------------------------------------------------------------------------- the loop
def _total_steps(config: TrainConfig, pool_size: int) -> int | None:
    if config.steps is not None:
        return config.steps
    if config.epochs is not None:
        return max(1, math.ceil(config.epochs * pool_size / config.batch_size))
    return None  # a seconds budget: progress follows the clock


def _make_optimizer(method: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    # No weight decay on biases and normalisation parameters (1-D tensors), as is standard.
    decay = [p for p in method.parameters() if p.requires_grad and p.ndim > 1]
    no_decay = [p for p in method.parameters() if p.requires_grad and p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": config.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum)
    return torch.optim.AdamW(groups, lr=config.lr)


def _nonfinite_message(loss: float, step: int, lr: float, last: float | None) -> str:
    return (
        f"The loss became {loss} at step {step} (learning rate {lr:.3g}; last finite loss "
        f"{last if last is None else f'{last:.4f}'}). Likely causes: a learning rate too high "
        f"(try lr/10 or a longer warm-up), a temperature too small (logits overflow), a "
        f"division by a vanishing std/norm (add eps), or bf16 overflow (set amp='off'). "
        f"Training stopped so that no NaN reaches the weights."
    )


def fit(
    method: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor | None = None,
    config: TrainConfig | None = None,
    *,
    cache: bool | str | Path | None = None,
    name: str | None = None,
    checkpoint: str | Path | None = None,
    resume: bool = False,
    knn_data: tuple | None = None,
    progress: bool | None = None,
    device: torch.device | str | None = None,
    on_log: Callable[[int, float, dict], None] | None = None,
) -> History:
    """Train ``method`` in place on a pool of images and return its :class:`History`.

    Args:
        method: a :class:`sslkit.methods.Method` (``training_step(images, labels)`` → loss, logs).
        images: ``uint8`` pool ``(N, 3, H, W)``, ideally already on the training device.
        labels: ``(N,)`` int64, only for methods trained with labels.
        config: :class:`TrainConfig` (default: 100 steps).
        cache: ``True`` (``$SSLKIT_CACHE`` or ``~/.cache/sslkit``) or a directory: load the
            result of an identical earlier run if there is one, else train and save it.
        name: prefix of the cache file name (default: the method's class name).
        checkpoint: file to save every ``config.checkpoint_every`` steps and at the end.
        resume: continue from ``checkpoint`` if it exists (raises :class:`CheckpointError` if it
            is unreadable or from a different configuration).
        knn_data: ``(train_x, train_y, test_x, test_y)`` for the online kNN monitor.
        progress: show a ``tqdm.auto`` bar (default: unless ``SSLKIT_PROGRESS=0``).
        device: where to train (default: the device of ``images``).
        on_log: called on rank 0 as ``on_log(step, loss, logs)`` each time a step is logged
            (every ``config.log_every`` steps), with the values the history records; lets a
            widget draw live curves. It is not part of the cache key and is not called when the
            run is loaded from the cache.

    Raises:
        NonFiniteLossError: the loss became NaN/Inf (message names the step and likely causes).

    Examples:
        >>> method = methods.SimCLR(models.SmallCNN())
        >>> history = fit(method, splits.unlabeled, config=TrainConfig(steps=500), cache=True)
        >>> history.summary()   # a second call with the same everything loads from the cache
    """
    if not isinstance(method, Method):
        raise TypeError(f"fit() trains a sslkit.methods.Method, got {type(method).__name__}")
    config = config or TrainConfig(steps=100)
    if images.ndim != 4 or images.shape[0] == 0:
        raise ValueError(
            f"images must be a non-empty (N, 3, H, W) tensor, got {tuple(images.shape)}")
    if labels is not None and labels.shape[0] != images.shape[0]:
        raise ValueError(f"labels has {labels.shape[0]} entries for {images.shape[0]} images")
    if on_log is not None and not callable(on_log):
        raise TypeError(f"on_log must be a function (step, loss, logs), got {on_log!r}")
    device = torch.device(device) if device is not None else images.device
    method.to(device)
    rank, world = rank_world()

    path = None
    if cache:
        path = cache_path(method, images, labels, config,
                          None if cache is True else cache, name)
        if path.exists():
            history = load_cached(path, method)
            if history is not None:
                method.to(device)
                return history

    history = _train(method, images, labels, config, device=device, rank=rank, world=world,
                     checkpoint=Path(checkpoint) if checkpoint else None, resume=resume,
                     knn_data=knn_data, progress=progress, on_log=on_log)
    if path is not None and rank == 0:
        atomic_save({"state_dict": method.state_dict(), "history": history.to_dict(),
                      "config": dataclasses.asdict(config)}, path)
    return history


def _train(method, images, labels, config, *, device, rank, world, checkpoint, resume,
           knn_data, progress, on_log=None) -> History:
    from tqdm.auto import tqdm

    pool = images.shape[0]
    total = _total_steps(config, pool)
    model = method
    if world > 1:
        model = nn.parallel.DistributedDataParallel(
            method, device_ids=[device.index] if device.type == "cuda" else None)
    optimizer = _make_optimizer(method, config)
    use_bf16 = (device.type == "cuda" and config.amp in ("auto", "bf16")
                or device.type == "cpu" and config.amp == "bf16" and cpu_has_native_bf16())
    if config.amp == "bf16" and not use_bf16:
        warnings.warn(f"amp='bf16' needs CUDA or a CPU with native bf16 arithmetic (AVX-512 BF16 "
                      f"or AMX); training in float32 on {device.type}.", stacklevel=3)

    state = LoopState.start(pool, config.seed)
    torch.manual_seed(config.seed + rank)  # the methods' own randomness (views, masks)
    resumed = resume and checkpoint is not None and checkpoint.exists()
    if resumed:
        resume_checkpoint(checkpoint, method, optimizer, state, config)
    history = state.history

    show = rank == 0 and (progress if progress is not None
                          else os.environ.get("SSLKIT_PROGRESS", "1") != "0")
    bar = tqdm(total=total, initial=state.step, disable=not show, desc=type(method).__name__,
               unit="step", leave=True)
    per_rank = max(1, config.batch_size // world)
    t_start, elapsed0, last_finite = time.perf_counter(), history.seconds, None
    method.train()
    if not resumed:  # a resumed run already ran the hook of its current epoch
        _start_epoch(method, state.epoch, images)
    while True:
        elapsed = elapsed0 + time.perf_counter() - t_start
        if total is not None and state.step >= total:
            break
        if total is None and elapsed >= config.seconds:
            break
        progress_frac = state.step / total if total is not None else elapsed / config.seconds
        lr = lr_at(progress_frac, config)
        for group in optimizer.param_groups:
            group["lr"] = lr

        # Every rank draws the same global batch and keeps its own slice of it.
        idx, new_epoch = state.next_batch(config.batch_size)
        if new_epoch:
            _start_epoch(method, state.epoch, images)
        idx = idx[rank * per_rank:(rank + 1) * per_rank].to(images.device)
        x = images[idx].to(device, non_blocking=True)
        y = labels[idx].to(device, non_blocking=True) if labels is not None else None
        extra = {"index": idx.to(device)} if method.uses_index else {}

        t0 = time.perf_counter()
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=use_bf16):
            loss, logs = model(x, y, **extra)
        loss_value = float(loss.detach())
        if not math.isfinite(loss_value):
            bar.close()
            raise NonFiniteLossError(
                _nonfinite_message(loss_value, state.step + 1, lr, last_finite))
        last_finite = loss_value
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if config.grad_clip is not None:
            nn.utils.clip_grad_norm_(method.parameters(), config.grad_clip)
        optimizer.step()
        state.step += 1
        step = state.step
        method.on_step_end(step, total)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        dt = time.perf_counter() - t0

        if step % config.log_every == 0 or step == total:
            history.step.append(step)
            history.loss.append(loss_value)
            history.lr.append(lr)
            history.images_per_s.append(config.batch_size / max(dt, 1e-9))
            for k, v in logs.items():
                history.logs.setdefault(k, []).append(float(v))
            if on_log is not None and rank == 0:
                on_log(step, loss_value, {k: float(v) for k, v in logs.items()})
        if config.knn_every and knn_data is not None and step % config.knn_every == 0:
            acc = _online_knn(method, knn_data)
            history.knn_step.append(step)
            history.knn_acc.append(acc)
            bar.set_postfix(loss=f"{loss_value:.3f}", knn=f"{acc:.3f}", refresh=False)
        else:
            bar.set_postfix(loss=f"{loss_value:.3f}", refresh=False)
        bar.update(1)
        every = config.checkpoint_every
        if checkpoint is not None and every and step % every == 0:
            history.seconds = elapsed0 + time.perf_counter() - t_start
            save_checkpoint(checkpoint, method, optimizer, state, config, rank)
    bar.close()
    history.seconds = elapsed0 + time.perf_counter() - t_start
    if checkpoint is not None:
        save_checkpoint(checkpoint, method, optimizer, state, config, rank)
    method.eval()
    return history


def _start_epoch(method, epoch: int, images: torch.Tensor) -> None:
    """Run the method's epoch hook on the whole pool, then put it back in training mode."""
    method.on_epoch_start(epoch, images)
    method.train()


def _online_knn(method, knn_data) -> float:
    train_x, train_y, test_x, test_y = knn_data
    f_train = extract_features(method.backbone, train_x)
    f_test = extract_features(method.backbone, test_x)
    return knn_accuracy(f_train, train_y, f_test, test_y)


