"""Self-checks of exercise 04 (MoCo): the queue of negatives and the momentum update.

The references are ``sslkit.losses.update_queue`` and ``sslkit.methods.base.ema_update_``, the
momentum update of ``sslkit.methods.MoCo.on_step_end`` (*Momentum Contrast for Unsupervised
Visual Representation Learning*, 2019, arXiv 1911.05722). A wrong queue is described row by row
(which key or old row each holds); a wrong momentum update is compared with a swapped ``m``, a
plain copy and an update of the wrong encoder.
"""

from __future__ import annotations

import copy
import operator
from collections.abc import Callable

import torch
from torch import nn

from ._core import CheckFailed, compare, randn, run_checks, with_hint

__all__ = ["update_queue", "momentum_update"]


# ---------------------------------------------------------------------------- the queue
_QUEUE_RULE = ("rows ptr, ptr + 1, … wrapping past Q − 1 to 0 receive the keys in order: "
               "queue[(ptr + torch.arange(B)) % Q] = keys.detach().to(queue.dtype); return "
               "(ptr + B) % Q")


def _errors_hint(case: Callable[[], None], hint: str) -> Callable[[], None]:
    """Add ``hint`` to an exception raised by the learner's code (a check's own messages already
    carry theirs)."""
    def run() -> None:
        try:
            case()
        except (NotImplementedError, AssertionError):
            raise
        except Exception as err:
            raise CheckFailed(f"your code raised {type(err).__name__}: {err}. Hint: {hint}"
                              ) from err

    return run


def _queue(q: int, d: int, seed: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return randn(q, d, seed=seed, dtype=dtype)


def _keys(b: int, d: int, seed: int) -> torch.Tensor:
    """Keys far from the queue's values (``100 + …``), so every written row is recognisable."""
    return 100.0 + randn(b, d, seed=seed)


def _describe_rows(got: torch.Tensor, before: torch.Tensor, keys: torch.Tensor) -> str:
    """``row r ← key j`` / ``unchanged`` / ``other`` for every row of ``got``."""
    parts = []
    for r in range(got.shape[0]):
        row = got[r].to(keys.dtype)
        j = next((j for j in range(keys.shape[0]) if torch.equal(row, keys[j])), None)
        if j is not None:
            parts.append(f"{r}: key {j}")
        elif torch.equal(got[r], before[r]):
            parts.append(f"{r}: old")
        else:
            parts.append(f"{r}: ?")
    return ", ".join(parts)


def _compare_update_queue(learner_fn: Callable, queue: torch.Tensor, keys: torch.Tensor,
                          ptr: int) -> None:
    """Run ``learner_fn(queue, keys, ptr)`` on copies; compare the queue (in place) and the
    returned pointer with ``losses.update_queue``."""
    from .. import losses

    want = queue.clone()
    want_ptr = losses.update_queue(want, keys.clone(), ptr)
    got, k = queue.clone(), keys.clone()
    got_ptr = learner_fn(got, k, ptr)
    if not torch.equal(k.detach(), keys.detach()):
        raise CheckFailed("your function modified keys; only the queue changes")
    size, b = queue.shape[0], keys.shape[0]
    written = ((ptr + torch.arange(b)) % size).tolist()
    if torch.equal(got, queue):
        raise CheckFailed("the queue passed in is unchanged: update it in place (queue[rows] = "
                          "keys writes into the caller's tensor; queue = torch.cat(...) only "
                          f"rebinds a local name). Expected rows {written} to receive keys "
                          f"0…{b - 1}")
    if not torch.equal(got, want):
        layout = _describe_rows(got, queue, keys.to(queue.dtype))
        hint = _QUEUE_RULE
        if ptr + b > size and torch.equal(got[:b].to(keys.dtype), keys):
            hint = (f"you started over at row 0, but the reference wraps around: with Q={size}, "
                    f"B={b}, ptr={ptr} the keys go to rows {written} (Q need not be a multiple "
                    f"of B). {_QUEUE_RULE}")
        raise CheckFailed(f"queue (Q={size}, B={b}, ptr={ptr}): expected rows {written} to hold "
                          f"keys 0…{b - 1} in order and every other row unchanged; your rows "
                          f"({{row: content}}): {layout}. Hint: {hint}")
    if isinstance(got_ptr, torch.Tensor) and got_ptr.numel() == 1 and not (
            got_ptr.is_floating_point()):
        got_ptr = got_ptr.item()
    try:
        value = operator.index(got_ptr)
    except TypeError:
        raise CheckFailed(f"the new pointer must be an int, got {got_ptr!r} "
                          f"({type(got_ptr).__name__}). Hint: return (ptr + B) % Q") from None
    if value != want_ptr:
        hint = ("the pointer must wrap around too: return (ptr + B) % Q, a row index in [0, Q)"
                if value == ptr + b else "return (ptr + B) % Q, the row of the oldest entry")
        raise CheckFailed(f"returned pointer {value}, expected ({ptr} + {b}) % {size} = "
                          f"{want_ptr}. Hint: {hint}")
    if got.requires_grad or got.grad_fn is not None:
        raise CheckFailed("the queue now requires grad (it is part of the keys' autograd graph): "
                          "the queue is a constant. Hint: write keys.detach() into it, or "
                          "decorate the function with @torch.no_grad()")


def _fifo(learner_fn: Callable) -> None:
    """Six calls in a row on Q = 7, B = 3: the pointer goes 0 → 3 → 6 → 2 → 5 → 1 → 4."""
    from .. import losses

    got, want = _queue(7, 2, seed=60), _queue(7, 2, seed=60)
    got_ptr = want_ptr = 0
    for step in range(6):
        keys = _keys(3, 2, seed=61 + step)
        want_ptr = losses.update_queue(want, keys.clone(), want_ptr)
        got_ptr = operator.index(learner_fn(got, keys.clone(), got_ptr))
        if got_ptr != want_ptr:
            raise CheckFailed(f"call {step + 1}: pointer {got_ptr}, expected {want_ptr}. "
                              f"Hint: {_QUEUE_RULE}")
    compare("queue after 6 calls", got, want)


def _no_graph(learner_fn: Callable) -> None:
    queue = _queue(6, 3, seed=62)
    keys = _keys(2, 3, seed=63).requires_grad_(True)
    got = queue.clone()
    learner_fn(got, keys * 1.0, 1)
    if got.requires_grad or got.grad_fn is not None:
        raise CheckFailed("the queue now requires grad (it joined the keys' autograd graph, "
                          f"grad_fn={type(got.grad_fn).__name__}): the queue is a constant of "
                          "the loss. Hint: write keys.detach() into it, or decorate the function "
                          "with @torch.no_grad()")
    compare("queue", got[1:3], keys.detach())


def _raises_value_error(learner_fn: Callable, queue: torch.Tensor, keys: torch.Tensor,
                        ptrs, why: str) -> None:
    for ptr in ptrs:
        try:
            learner_fn(queue.clone(), keys.clone(), ptr)
        except ValueError:
            continue
        except NotImplementedError:
            raise
        except Exception as err:
            raise CheckFailed(f"Q={queue.shape[0]}, B={keys.shape[0]}, ptr={ptr}: your code "
                              f"raised {type(err).__name__}: {err}; expected ValueError. "
                              f"Hint: {why}") from err
        raise CheckFailed(f"Q={queue.shape[0]}, B={keys.shape[0]}, ptr={ptr}: no ValueError. "
                          f"Hint: {why}")


def update_queue(learner_fn: Callable) -> None:
    """Check ``learner_fn(queue, keys, ptr) -> new_ptr`` against ``sslkit.losses.update_queue``.

    MoCo's FIFO queue of negatives (*Momentum Contrast for Unsupervised Visual Representation
    Learning*, 2019, arXiv 1911.05722): ``queue`` ``(Q, D)`` updated **in place**, ``keys``
    ``(B, D)`` with ``B ≤ Q`` written to rows ``ptr, ptr + 1, …`` wrapping past ``Q − 1`` to 0,
    detached and cast to the queue's dtype; returns ``(ptr + B) % Q``. Cases (10): rows 0…2 at
    ``ptr = 0``; a middle ``ptr`` (other rows unchanged); wrap-around (``Q`` not a multiple of
    ``B``; starting over at row 0 is named); a queue filled exactly (pointer 0, not ``Q``);
    ``B = Q``; six calls in a row (the queue holds the newest keys); keys that require grad (the
    queue must not join the graph); a float64 queue with float32 keys; ``B > Q`` and a ``ptr``
    outside ``[0, Q)`` raise ``ValueError``.
    """
    def same(q, d, b, ptr, seed, dtype=torch.float32):
        return _errors_hint(lambda: _compare_update_queue(
            learner_fn, _queue(q, d, seed, dtype), _keys(b, d, seed + 1), ptr), _QUEUE_RULE)

    run_checks("update_queue", {
        "Q=8, B=3, ptr=0: keys go to rows 0, 1, 2 in place; returns 3": same(8, 4, 3, 0, 70),
        "ptr=2: rows 2, 3, 4; every other row unchanged; returns 5": same(8, 4, 3, 2, 72),
        "wrap-around: Q=8, B=3, ptr=6 → rows 6, 7, 0; returns 1": same(8, 4, 3, 6, 74),
        "the queue fills exactly: Q=8, B=3, ptr=5 → rows 5, 6, 7; returns 0, not 8":
            same(8, 4, 3, 5, 76),
        "B = Q = 4, ptr=2: every row replaced (rows 2, 3, 0, 1); returns 2": same(4, 3, 4, 2, 78),
        "six calls in a row (Q=7, B=3): pointer 0 → 3 → 6 → 2 → 5 → 1 → 4": _errors_hint(
            lambda: _fifo(learner_fn), _QUEUE_RULE),
        "keys that require grad: the queue stays a constant (no autograd graph)": lambda: (
            _no_graph(learner_fn)),
        "a float64 queue and float32 keys: keys are cast to the queue's dtype": _errors_hint(
            same(6, 3, 2, 5, 80, dtype=torch.float64), "cast the keys to the queue's dtype: "
            "queue[rows] = keys.detach().to(queue.dtype) (index assignment does not convert)"),
        "B=5 > Q=4 raises ValueError (the batch would overwrite its own keys)": lambda: (
            _raises_value_error(learner_fn, _queue(4, 3, 82), _keys(5, 3, 83), [0],
                                "check keys.shape[0] <= queue.shape[0] first and raise "
                                "ValueError: a queue must hold at least one batch")),
        "ptr=4 or ptr=-1 with Q=4 raises ValueError": lambda: _raises_value_error(
            learner_fn, _queue(4, 3, 84), _keys(2, 3, 85), [4, -1],
            "ptr is a row index: raise ValueError unless 0 <= ptr < Q"),
    })


# ---------------------------------------------------------------------------- momentum update
def _mlp(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 3))


def _cnn(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(2, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))


def _encoders(make: Callable[[int], nn.Module], seed: int, *, key_requires_grad: bool = False
              ) -> tuple[nn.Module, nn.Module]:
    """A query encoder and a key encoder that differ in every parameter and in their BatchNorm
    statistics (each ran a forward pass in train mode on its own data); the key encoder does not
    require grad, as in MoCo, unless ``key_requires_grad``."""
    generator = torch.Generator().manual_seed(seed)
    query = make(seed)
    key = make(seed + 1).requires_grad_(key_requires_grad)
    shape = (8, 4) if isinstance(query[0], nn.Linear) else (8, 2, 5, 5)
    with torch.no_grad():
        for p in [*query.parameters(), *key.parameters()]:  # BatchNorm starts at 1 and 0
            p.add_(0.1 * torch.randn(p.shape, generator=generator))
        query(torch.randn(shape, generator=generator))
        key(torch.randn(shape, generator=generator) * 3 + 1)
    return key, query


def _snapshot(module: nn.Module) -> dict[str, torch.Tensor]:
    return {name: t.detach().clone() for name, t in module.state_dict().items()}


def _compare_momentum(learner_fn: Callable, make: Callable[[int], nn.Module], seed: int,
                      m: float, *, steps: int = 1, key_requires_grad: bool = False) -> None:
    """Run ``learner_fn(key, query, m)`` ``steps`` times on fresh encoders and compare with the
    reference ``ema_update_`` (the rule of ``MoCo.on_step_end``), diagnosing the usual
    mistakes."""
    from ..methods.base import ema_update_

    key, query = _encoders(make, seed, key_requires_grad=key_requires_grad)
    want_key, want_query = copy.deepcopy(key), copy.deepcopy(query)
    key_before, query_before = _snapshot(key), _snapshot(query)
    objects = {name: id(p) for name, p in key.named_parameters()}
    flags = {name: p.requires_grad for name, p in key.named_parameters()}
    for _ in range(steps):
        ema_update_(want_key, want_query, m)
        learner_fn(key, query, m)

    for name, value in query.state_dict().items():
        if not torch.equal(value, query_before[name]):
            raise CheckFailed(
                f"the query encoder's {name!r} changed: only the key encoder moves; the "
                "query encoder is trained by the optimiser and must be left as it is. Hint: "
                "momentum_update(key_encoder, query_encoder, m) updates its FIRST argument "
                "towards the second (p_k.mul_(m).add_(p_q, alpha=1 - m)), not the other way")
    for name, p in key.named_parameters():
        if id(p) != objects[name]:
            raise CheckFailed(f"the key encoder's parameter {name!r} is a new object: "
                              "update the parameters in place (p_k.mul_(m).add_(...) or "
                              "p_k.copy_(...)); replacing them breaks every reference to them")
        if p.grad_fn is not None or p.requires_grad != flags[name]:
            grad_fn = type(p.grad_fn).__name__ if p.grad_fn is not None else None
            raise CheckFailed(
                f"the key encoder's parameter {name!r} now has requires_grad="
                f"{p.requires_grad}, grad_fn={grad_fn} (before: requires_grad={flags[name]}): "
                "autograd recorded the update. Hint: do it under torch.no_grad() (a "
                "`with torch.no_grad():` block or the @torch.no_grad() decorator)")
    buffers = dict(key.named_buffers())
    for name, value in buffers.items():
        if not torch.equal(value, key_before[name]):
            raise CheckFailed(
                f"the key encoder's buffer {name!r} changed: only parameters follow the "
                "query encoder (as in MoCo.on_step_end, which loops over .parameters()); "
                "BatchNorm's running statistics are not weights, the key encoder keeps its own, "
                "computed by its own forward passes. Hint: iterate over "
                "zip(key_encoder.parameters(), query_encoder.parameters()), not state_dict()")
    want = dict(want_key.named_parameters())
    got = dict(key.named_parameters())
    for name in want:
        try:
            compare(f"key parameter {name!r}", got[name], want[name], atol=1e-6, rtol=1e-5)
        except CheckFailed as err:
            raise CheckFailed(f"{err} (m={m}, {steps} update{'s' * (steps > 1)}). Hint: "
                              f"{_momentum_diagnosis(key_before, query_before, got, m, steps)}"
                              ) from None


def _momentum_diagnosis(key_before, query_before, got, m: float, steps: int) -> str:
    """Name the mistake whose result the learner's key parameters are."""
    def close(a, b):
        return torch.allclose(a.detach(), b, atol=1e-6, rtol=1e-5)

    names = list(got)
    mistakes = [
        (lambda k, q: k, "the key encoder did not move: update its parameters in place "
         "(p_k.mul_(m).add_(...)); `p_k = m * p_k + ...` only rebinds a local name"),
        (lambda k, q: q, "the key encoder became a copy of the query encoder: m is ignored "
         "(θ_k ← θ_q is MoCo with m = 0, which the paper found fails to train)"),
    ]
    if steps == 1:
        mistakes += [
            (lambda k, q: (1 - m) * k + m * q,
             "m and 1 − m are swapped: m multiplies the key encoder's OWN parameters, so that "
             "it moves only a little towards the query encoder at each step (θ_k ← m·θ_k + "
             "(1 − m)·θ_q, m close to 1)"),
            (lambda k, q: m * k + q, "the query's weight is 1 − m, not 1: θ_k ← m·θ_k + "
             "(1 − m)·θ_q is a weighted average"),
        ]
    for formula, hint in mistakes:
        if all(close(got[n], formula(key_before[n], query_before[n])) for n in names):
            return hint
    return ("θ_k ← m·θ_k + (1 − m)·θ_q for every pair of parameters, "
            "zip(key_encoder.parameters(), query_encoder.parameters()), in place, under "
            "torch.no_grad()")


def momentum_update(learner_fn: Callable) -> None:
    """Check ``learner_fn(key_encoder, query_encoder, m)`` against MoCo's momentum update.

    *Momentum Contrast for Unsupervised Visual Representation Learning* (2019, arXiv
    1911.05722), as ``sslkit.methods.MoCo.on_step_end`` does it: for every pair of parameters,
    in place and under ``torch.no_grad()``, ``θ_k ← m·θ_k + (1 − m)·θ_q``; the query encoder and
    the key encoder's buffers (BatchNorm running statistics) are left alone, and the key
    parameters keep their ``requires_grad`` and stay leaves. Cases (8) on small modules whose
    key and query encoders differ in parameters and in BatchNorm statistics: ``m = 0.9`` (a
    swapped ``m``, a copy, an update that does not stick, or an update of the query encoder is
    named); the query encoder unchanged; ``m = 0`` copies; ``m = 1`` freezes; buffers unchanged;
    no autograd graph; key parameters that require grad; three updates of a small CNN with
    ``m = 0.99``.
    """
    def query_unchanged() -> None:
        key, query = _encoders(_mlp, 92)
        before = _snapshot(query)
        learner_fn(key, query, 0.9)
        for name, value in query.state_dict().items():
            compare(f"query encoder {name!r}", value, before[name], atol=0, rtol=0)

    def buffers_unchanged() -> None:
        key, query = _encoders(_cnn, 94)
        before = {name: b.clone() for name, b in key.named_buffers()}
        learner_fn(key, query, 0.5)
        for name, value in key.named_buffers():
            if not torch.equal(value, before[name]):
                raise CheckFailed(f"the key encoder's buffer {name!r} changed. Hint: only "
                                  "parameters are averaged (MoCo.on_step_end loops over "
                                  ".parameters()); BatchNorm's running statistics stay the key "
                                  "encoder's own")

    def no_graph() -> None:
        key, query = _encoders(_mlp, 96)
        assert all(p.requires_grad for p in query.parameters())
        learner_fn(key, query, 0.9)
        for name, p in key.named_parameters():
            if p.requires_grad or p.grad_fn is not None:
                raise CheckFailed(
                    f"the key encoder's parameter {name!r} now requires grad (grad_fn="
                    f"{type(p.grad_fn).__name__ if p.grad_fn is not None else None}): the "
                    "update was recorded by autograd, linking the key encoder to the query "
                    "encoder's graph. Hint: wrap the loop in `with torch.no_grad():`")

    def case(make, seed, m, **kwargs):
        return lambda: _compare_momentum(learner_fn, make, seed, m, **kwargs)

    run_checks("momentum_update", {
        "m=0.9, a small MLP with BatchNorm: θ_k ← m·θ_k + (1 − m)·θ_q": case(_mlp, 90, 0.9),
        "the query encoder is left unchanged (parameters and buffers)": query_unchanged,
        "m=0: the key encoder becomes a copy of the query encoder": case(_mlp, 98, 0.0),
        "m=1: the key encoder does not move": case(_mlp, 100, 1.0),
        "buffers (BatchNorm running statistics) are not averaged": buffers_unchanged,
        "no autograd graph: key parameters stay leaves with requires_grad=False": no_graph,
        "key parameters that require grad (a plain deepcopy) are updated under no_grad":
            with_hint(case(_mlp, 102, 0.7, key_requires_grad=True),
                       "PyTorch refuses an in-place change of a parameter that requires grad "
                       "while autograd records: do the update under torch.no_grad()"),
        "a small CNN, m=0.99, three updates in a row": case(_cnn, 104, 0.99, steps=3),
    })
